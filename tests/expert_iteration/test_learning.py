"""The apprentice, self-play, the ExIt and REINFORCE updates, matches and the Elo fit."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpapers.expert_iteration import (
    ApprenticeConfig,
    ExItConfig,
    ReinforceConfig,
    SearchConfig,
    add_positions,
    exit_step,
    hex,
    imitation_loss,
    init_exit,
    init_reinforce,
    reinforce_step,
)
from jaxpapers.expert_iteration.evaluate import (
    bradley_terry,
    expert_settings,
    make_agent,
    play_match,
)
from jaxpapers.expert_iteration.models import make_apprentice, policy_distribution
from jaxpapers.expert_iteration.selfplay import sample_positions, self_play
from tests.contracts import check_kernel_contract

NET = ApprenticeConfig(channels=8, depth=1, value_hidden=8)
CONFIG = ExItConfig(board_size=3, network=NET, search=SearchConfig(num_simulations=6),
                    games=4, positions_per_game=2, capacity=16, batch_size=8)
MODULE = make_apprentice(NET)


@pytest.fixture(scope="module")
def params():
    return init_exit(jax.random.key(1), CONFIG).params


def test_network_is_board_size_agnostic_and_masks_illegal_cells(params):
    for n in (3, 5):
        logits, value = MODULE.apply(params, jnp.zeros((2, n, n, hex.NUM_FEATURES)))
        assert logits.shape == (2, n * n) and value.shape == (2,)
    logits, value = MODULE.apply(params, hex.features(hex.init(3)))
    assert logits.shape == (9,) and value.shape == ()
    legal = jnp.arange(9) % 2 == 0
    dist = policy_distribution(jnp.zeros(9), legal)
    np.testing.assert_allclose(np.asarray(dist.probs), np.where(np.asarray(legal), 0.2, 0.0),
                               atol=1e-7)
    assert float(dist.log_prob(1)) < -1e8
    np.testing.assert_allclose(float(dist.log_prob(2)), np.log(0.2), rtol=1e-6)


def test_imitation_loss_matches_numpy_float64():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(5, 9))
    legal = rng.random((5, 9)) < 0.7
    legal[:, 0] = True
    target = rng.random((5, 9)) * legal
    target /= target.sum(1, keepdims=True)
    v_logit, z = rng.normal(size=5), (rng.random(5) < 0.5).astype(float)
    weight = np.array([1.0, 1.0, 0.0, 1.0, 1.0])
    masked = np.where(legal, logits, -np.inf)
    log_p = masked - np.log(np.exp(masked).sum(1, keepdims=True))
    policy = -(target * np.where(legal, log_p, 0)).sum(1)
    value = -(z * np.log(1 / (1 + np.exp(-v_logit))) + (1 - z) * np.log(
        1 - 1 / (1 + np.exp(-v_logit))))
    expected = ((weight * policy).sum() + 0.5 * (weight * value).sum()) / weight.sum()
    loss, _ = imitation_loss(jnp.asarray(logits, jnp.float32), jnp.asarray(v_logit, jnp.float32),
                             jnp.asarray(legal), jnp.asarray(target, jnp.float32),
                             jnp.asarray(z, jnp.float32), jnp.asarray(weight, jnp.float32),
                             value_loss_weight=0.5)
    np.testing.assert_allclose(float(loss), expected, rtol=1e-5)


def _play_and_sample(key, p):
    k1, k2 = jax.random.split(key)
    games = self_play(k1, p, MODULE.apply, 3, 4)
    return games, sample_positions(k2, games, 2)


_PLAY = jax.jit(_play_and_sample)


def test_self_play_and_position_sampling(params):
    """Games are legal, end with the winner connected, last at least 2n - 1 plies; sampled
    positions are distinct plies of their game with the right value target."""
    games, positions = _PLAY(jax.random.key(0), params)
    alive = np.asarray(games.alive)
    length = np.asarray(games.length)
    np.testing.assert_array_equal(alive.sum(0), length)
    assert np.all(length >= 5)
    for g in range(4):
        last = jax.tree_util.tree_map(lambda x, g=g: x[length[g] - 1, g], games.states)
        final = hex.play(last, games.actions[length[g] - 1, g])
        assert bool(final.done) and int(hex.winner(final)) == int(games.winner[g])
    boards = np.asarray(positions.states.board).reshape(4, 2, 9)
    assert np.all(np.any(boards[:, 0] != boards[:, 1], axis=-1)), "positions must be distinct"
    movers = np.asarray(positions.states.color).reshape(4, 2)
    won = np.asarray(positions.value_target).reshape(4, 2)
    np.testing.assert_array_equal(won, movers == np.asarray(games.winner)[:, None])


def _buffer_state():
    state = init_exit(jax.random.key(2), CONFIG)
    _, positions = _PLAY(jax.random.key(3), state.params)
    counts = jax.random.randint(jax.random.key(5), positions.visit_counts.shape, 0, 5)
    legal = jax.vmap(hex.legal_mask)(positions.states)
    positions = positions._replace(visit_counts=jnp.where(legal, counts, 0).at[:, 0].add(
        legal[:, 0]))
    return add_positions(state, positions, jnp.float32(10.0))


@pytest.mark.slow
def test_exit_step_learns():
    """Repeated Adam steps on a fixed buffer lower the imitation loss."""
    state = _buffer_state()
    assert int(state.count) == 8 and float(state.evaluations) == 10.0
    step = jax.jit(lambda k, s: exit_step(k, s, CONFIG))
    first = None
    for i in range(60):
        state, info = step(jax.random.key(i), state)
        first = float(info.policy_loss) if first is None else first
    assert float(info.policy_loss) < first


RF_CONFIG = ReinforceConfig(board_size=3, network=NET, games=4, pool_size=2, snapshot_every=1)


@pytest.mark.slow
def test_reinforce_step_and_pool(params):
    state = init_reinforce(params, RF_CONFIG)
    new, info = jax.jit(lambda k, s: reinforce_step(k, s, jnp.int32(0), RF_CONFIG))(
        jax.random.key(0), state)
    assert int(new.pool_count) == 2   # snapshot after the first update
    assert 5 <= float(new.evaluations) / 4 <= 9 and float(info.mean_length) >= 5


@pytest.mark.slow
@pytest.mark.parametrize("kernel", ["self_play", "exit_step", "reinforce_step"])
def test_training_kernel_contracts(kernel, params):
    """The kernel contract (jit = eager, deterministic per key, vmaps over keys, stable state
    structure and dtypes) for the training kernels; slow: each eager run compiles a scan."""
    if kernel == "self_play":
        check_kernel_contract(_play_and_sample, params)
    elif kernel == "exit_step":
        check_kernel_contract(lambda k, s: exit_step(k, s, CONFIG), _buffer_state(),
                              state_arg=0, output_state=lambda out: out[0])
    else:
        check_kernel_contract(lambda k, s: reinforce_step(k, s, jnp.int32(0), RF_CONFIG),
                              init_reinforce(params, RF_CONFIG), state_arg=0,
                              output_state=lambda out: out[0])


@pytest.mark.slow
def test_balanced_match_consistency(params):
    """An agent against itself plays the same game in both rows (greedy, deterministic), so it
    wins exactly one of each pair; pure MCTS beats the random player."""
    config = SearchConfig(num_simulations=32)
    greedy = make_agent(params)
    result = jax.jit(lambda k, a, b: play_match(k, a, b, MODULE, 3, config))(
        jax.random.key(0), greedy, greedy)
    won = np.asarray(result.a_won)
    assert won.shape == (2, 9)
    np.testing.assert_array_equal(won[0], ~won[1])
    mcts = make_agent(params, use_network=False, simulations=32)
    rand = make_agent(params, use_network=False, greedy=False)
    result = jax.jit(lambda k, a, b: play_match(k, a, b, MODULE, 3, config))(
        jax.random.key(1), mcts, rand)
    assert np.asarray(result.a_won).mean() >= 0.8


def test_bradley_terry_against_scipy_and_truth():
    """The Newton fit equals a generic optimiser's maximum likelihood, and recovers known
    ratings from simulated games within 3 standard errors."""
    scipy_opt = pytest.importorskip("scipy.optimize")
    rng = np.random.default_rng(0)
    truth = np.array([0.0, 150.0, 400.0, -100.0])
    k = truth.size
    games = 400
    p = 1 / (1 + 10 ** (-(truth[:, None] - truth[None, :]) / 400))
    wins = np.zeros((k, k))
    for i in range(k):
        for j in range(i + 1, k):
            w = rng.binomial(games, p[i, j])
            wins[i, j], wins[j, i] = w, games - w
    fit = bradley_terry(wins, prior_games=0.0)

    def nll(free):
        r = np.concatenate([[0.0], free]) * np.log(10) / 400
        d = r[:, None] - r[None, :]
        return -np.sum(wins * -np.logaddexp(0, -d))

    best = scipy_opt.minimize(nll, np.zeros(k - 1), method="BFGS").x
    np.testing.assert_allclose(fit.ratings[1:], best, atol=0.5)
    assert fit.ratings[0] == 0 and fit.se[0] == 0
    assert np.all(np.abs(fit.ratings - truth)[1:] < 3 * fit.se[1:])
    perfect = np.array([[0.0, 10.0], [0.0, 0.0]])
    assert np.isfinite(bradley_terry(perfect).ratings).all()
    with pytest.raises(ValueError, match="no games"):
        bradley_terry(np.zeros((3, 3)))


def test_bad_configs_raise():
    with pytest.raises(ValueError, match="dataset"):
        ExItConfig(dataset="all")
    with pytest.raises(ValueError, match="positions_per_game"):
        ExItConfig(board_size=3, positions_per_game=6)
    with pytest.raises(ValueError, match="capacity"):
        ExItConfig(games=64, positions_per_game=6, capacity=100)
    with pytest.raises(ValueError, match="channels"):
        ApprenticeConfig(channels=0)
    with pytest.raises(ValueError, match="even"):
        ReinforceConfig(games=3)


def test_make_agent_refuses_bad_settings(params):
    for kwargs, name in (({"prior_weight": float("nan")}, "prior_weight"),
                         ({"uct_c": -10.0}, "uct_c"),
                         ({"value_weight": 1.5}, "value_weight"),
                         ({"prior_temperature": 0.0}, "prior_temperature"),
                         ({"simulations": -5}, "simulations")):
        with pytest.raises(ValueError, match=name):
            make_agent(params, **kwargs)
    config = SearchConfig(num_simulations=8, prior_weight=3.0, prior_temperature=0.2,
                          uct_c=0.5, value_weight=0.25, unvisited_value=0.0)
    agent = make_agent(params, simulations=8, **expert_settings(config))
    assert (float(agent.prior_temperature), float(agent.uct_c), float(agent.unvisited_value)) \
        == (pytest.approx(0.2), 0.5, 0.0)
