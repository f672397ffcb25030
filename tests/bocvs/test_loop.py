"""Whole BO runs: schedules, budget accounting, determinism, faults that keep the history."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpapers.bocvs import (
    STATUS,
    BOConfig,
    BOError,
    History,
    OptimizerConfig,
    etc_ada,
    history,
    init,
    problem_spec,
    raise_for_status,
    run_bo,
    step,
    ucb_psq,
)
from jaxpapers.bocvs._loop import (
    BUDGET_EXHAUSTED,
    INVALID_INPUT,
    NAN_OBSERVATION,
    NOT_POSITIVE_DEFINITE,
)
from jaxpapers.bocvs.metrics import final_simple_regret, simple_regret_curve
from jaxpapers.bocvs.problems import hartmann3, make_problem
from tests.contracts import check_kernel_contract

# Tiny acquisition (random search over 4 candidates, N = 4): these tests check bookkeeping.
TINY = BOConfig(num_samples=4, num_eval_samples=32,
                optimizer=OptimizerConfig(num_raw=4, num_restarts=1, num_steps=0),
                buckets=(128,), num_features=16)


@pytest.fixture(autouse=True)
def x64():
    with jax.enable_x64(True):
        yield


@functools.cache
def _runner(objective=hartmann3):
    with jax.enable_x64(True):
        return jax.jit(jax.vmap(lambda k, s, p: run_bo(k, s, p, objective, TINY),
                                in_axes=(0, None, None)))


def _run(problem, policy, seeds=2, seed=0, objective=hartmann3):
    keys = jax.random.split(jax.random.key(seed), seeds)
    return jax.tree_util.tree_map(np.asarray, _runner(objective)(keys, problem_spec(problem),
                                                                 policy))


def test_etc_ada_plays_the_schedule_and_accounts_the_budget_exactly():
    problem = make_problem("hartmann3", "moderate", 0.02, budget=50.5)
    h = _run(problem, etc_ada(problem.costs))
    costs = np.asarray(problem.costs)
    for s in range(2):
        idx = h.set_index[s][h.set_index[s] >= 0]
        assert np.all(np.isin(idx[:40], [0, 1, 2])) and np.all(np.isin(idx[40:60], [3, 4, 5]))
        assert np.all(idx[60:] == 6) and len(idx) == 60 + 42 == h.num_rounds[s]
        assert h.status[s] == BUDGET_EXHAUSTED and h.last_choice[s] == 6
        spent = h.total_spent[s]
        assert spent <= problem.budget + 1e-9
        assert problem.budget - spent < costs[h.last_choice[s]]  # 0.5 left: no cheaper fallback
        np.testing.assert_allclose(np.nansum(h.cost[s]), spent, rtol=1e-12)
        np.testing.assert_allclose(h.cost[s][: len(idx)], costs[idx])
        np.testing.assert_allclose(h.spent[s][: len(idx)], np.cumsum(costs[idx]), rtol=1e-12)
        # realised inputs keep the controlled coordinates of the query
        m = problem.masks[idx] > 0
        np.testing.assert_array_equal(h.x[s][: len(idx)][m], h.query[s][: len(idx)][m])
        assert np.all((h.x[s][: len(idx)] >= 0) & (h.x[s][: len(idx)] <= 1))
    curve = simple_regret_curve(h, problem.f_star, np.linspace(0.1, 50.5, 200))
    assert np.all(np.diff(curve, axis=1) <= 0)
    assert np.all(final_simple_regret(h, problem.f_star) >= -0.01)


@pytest.mark.slow  # determinism per key is also in the loop contract
def test_same_key_same_trajectory_and_keys_matter():
    problem = make_problem("hartmann3", "expensive", 0.08)
    pol = etc_ada(problem.costs)
    a, b = _run(problem, pol), _run(problem, pol)
    for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b), strict=True):
        np.testing.assert_array_equal(x, y)
    c = _run(problem, pol, seed=1)
    assert not np.array_equal(a.y, c.y)
    np.testing.assert_array_equal(etc_ada(problem.costs).targets, [6, 5])
    idx = a.set_index[0][a.set_index[0] >= 0]
    assert np.all(np.isin(idx[:6], [0, 1, 2])) and np.all(np.isin(idx[6:11], [3, 4, 5]))
    assert problem.budget - a.total_spent[0] < problem.costs[a.last_choice[0]]


def test_ucb_psq_plays_the_full_set():
    problem = make_problem("hartmann3", "moderate", 0.02)
    h = _run(problem, ucb_psq(7))
    assert np.all(h.set_index[:, :50] == 6) and np.all(h.num_rounds == 50)
    np.testing.assert_allclose(h.total_spent, 50.0)


def _nan_in_good_region(x):
    f = hartmann3(x)
    return jnp.where(f > 2.5, jnp.nan, f)


def test_nan_observation_stops_the_run_and_keeps_the_history():
    problem = make_problem("hartmann3", "moderate", 0.02)
    h = _run(problem, etc_ada(problem.costs), objective=_nan_in_good_region)
    assert np.all(h.status == NAN_OBSERVATION), [STATUS[int(s)] for s in h.status]
    for s in range(2):
        k = h.num_rounds[s]
        assert k > 0
        assert np.all(np.isfinite(h.y[s][:k])) and np.all(h.set_index[s][:k] >= 0)
        assert np.all(h.set_index[s][k:] == -1) and np.all(np.isnan(h.y[s][k:]))
    with pytest.raises(BOError, match="NaN") as err:
        raise_for_status(h)
    assert err.value.history is h


def test_invalid_traced_spec_is_reported():
    # a NaN lengthscale used to surface as a non-positive-definite kernel in round 0; the spec
    # check now reports it before any round
    problem = make_problem("hartmann3", "moderate", 0.02)
    spec = problem_spec(problem)._replace(lengthscale=jnp.full(3, jnp.nan))
    keys = jax.random.split(jax.random.key(0), 2)
    h = _runner(hartmann3)(keys, spec, etc_ada(problem.costs))
    assert np.all(np.asarray(h.status) == INVALID_INPUT)
    assert np.all(np.asarray(h.num_rounds) == 0)
    with pytest.raises(BOError, match="invalid problem spec"):
        raise_for_status(h)


def test_bad_static_input():
    problem = make_problem("hartmann3")
    with pytest.raises(ValueError, match="acquisition"):
        BOConfig(acquisition="pi")
    with pytest.raises(ValueError, match="buckets"):
        BOConfig(buckets=(64, 32))
    with pytest.raises(ValueError, match="num_samples"):
        BOConfig(num_samples=0)
    with pytest.raises(ValueError, match="stage_of_set"):
        run_bo(jax.random.key(0), problem_spec(problem), ucb_psq(5), hartmann3, TINY)


def test_run_contract():
    problem = make_problem("hartmann3", "expensive", 0.02, budget=2.0)
    spec, pol = problem_spec(problem), etc_ada(problem.costs)
    cfg = TINY.replace(buckets=(16,))
    # unused log slots are NaN by design, hence check_finite=False; the used ones must be finite
    out = check_kernel_contract(lambda k: run_bo(k, spec, pol, hartmann3, cfg),
                                check_finite=False)
    k = int(out.num_rounds)
    assert k > 0 and np.all(np.isfinite(np.asarray(out.value)[:k]))


def test_hyper_parameters_refitted_between_rounds():
    """fit_steps > 0 refits lengthscale and signal variance by marginal likelihood each round:
    the run still accounts its budget exactly, and its choices differ from fixed hypers."""
    problem = make_problem("hartmann3", "moderate", 0.02, budget=3.0)
    fitted = TINY.replace(fit_steps=20, fit_restarts=2, buckets=(32,))
    run = jax.jit(lambda k: run_bo(k, problem_spec(problem), ucb_psq(7), hartmann3, fitted))
    fixed = jax.jit(lambda k: run_bo(k, problem_spec(problem), ucb_psq(7), hartmann3,
                                     TINY.replace(buckets=(32,))))
    h, g = (jax.tree_util.tree_map(np.asarray, f(jax.random.key(4))) for f in (run, fixed))
    assert int(h.status) == BUDGET_EXHAUSTED and int(h.num_rounds) == 3
    assert np.all(np.isfinite(h.y[:3])) and float(h.total_spent) == pytest.approx(3.0)
    assert not np.allclose(h.query[:3], g.query[:3])   # the fitted GP proposes other points
    with pytest.raises(ValueError, match="fit_steps"):
        TINY.replace(fit_steps=-1)


def test_exploration_phases_name_the_groups_that_explore():
    from jaxpapers.bocvs import etc
    from jaxpapers.bocvs._loop import _exploration_phases

    problem = make_problem("hartmann3", "moderate", 0.02)
    masks = jnp.asarray(problem.masks)
    assert _exploration_phases(etc_ada(problem.costs), masks, 5) == [
        (45, (0, 1, 2)), (65, (3, 4, 5)), (None, None)]
    # a group with the full set keeps all sets; a zero target is skipped
    assert _exploration_phases(etc(7, (4, 0, 2), ((0, 6), (1,), (2, 3))), masks, 5) == [
        (9, None), (11, (2, 3)), (None, None)]
    assert _exploration_phases(ucb_psq(7), masks, 5) == [(None, None)]
    traced = jax.jit(lambda p: jnp.asarray(len(_exploration_phases(p, masks, 5))))
    assert int(traced(etc_ada(problem.costs))) == 1  # a traced policy: all sets throughout


def test_exploring_rounds_optimise_only_their_group_and_agree_with_all_sets():
    """With the policy known when the run is traced, exploring rounds optimise only the group's
    sets (same candidates); a traced policy optimises all sets every round. Both runs must
    choose the same sets and points, with acquisition values equal up to rounding. The stage
    ends fall on a bucket edge (n = 8) and inside a bucket (n = 10)."""
    from jaxpapers.bocvs import etc

    problem = make_problem("hartmann3", "moderate", 0.02, budget=4.0)
    spec = problem_spec(problem)
    policy = etc(7, (3, 2))
    # scoring only (closed-form scorer on 8 of 16 rows, no refinement): a small program; the
    # refinement is per set, so it cannot tell a subset from all sets
    opt = OptimizerConfig(16, 2, 0, 0.1, 16, "newton", 8, 1)
    cfg = BOConfig(num_samples=16, num_eval_samples=32, optimizer=opt, buckets=(8, 16))
    key = jax.random.key(3)
    known = jax.jit(lambda k: run_bo(k, spec, policy, hartmann3, cfg))(key)
    traced = jax.jit(lambda k, p: run_bo(k, spec, p, hartmann3, cfg))(key, policy)
    rounds = int(known.num_rounds)
    assert rounds == int(traced.num_rounds) and rounds > 6
    idx = np.asarray(known.set_index[:rounds])
    np.testing.assert_array_equal(idx, np.asarray(traced.set_index[:rounds]))
    assert np.all(np.isin(idx[:3], [0, 1, 2])) and np.all(np.isin(idx[3:5], [3, 4, 5]))
    np.testing.assert_allclose(known.query[:rounds], traced.query[:rounds], rtol=0, atol=1e-9)
    np.testing.assert_allclose(known.acq_value[:rounds], traced.acq_value[:rounds], rtol=1e-10)


def test_non_positive_definite_kernel_is_reported():
    # a valid spec whose kernel matrix is numerically singular: a signal variance of 1e20 with
    # a lengthscale of 1e9 makes every kernel entry 1e20 up to relative differences far below
    # float64's resolution, so no jitter in the escalation (at most 1e-2) makes it factor
    problem = make_problem("hartmann3", "moderate", 0.02)
    spec = problem_spec(problem)._replace(lengthscale=jnp.full(3, 1e9))
    config = TINY.replace(signal_variance=1e20)
    keys = jax.random.split(jax.random.key(0), 2)
    h = jax.jit(jax.vmap(lambda k: run_bo(k, spec, etc_ada(problem.costs), hartmann3, config)))(
        keys)
    assert np.all(np.asarray(h.status) == NOT_POSITIVE_DEFINITE)
    assert np.all(np.asarray(h.num_rounds) == 0)
    with pytest.raises(BOError, match="not positive definite"):
        raise_for_status(h)


def test_init_and_step_replay_run_bo_round_by_round():
    # one bucket and a policy without exploration stages: run_bo's rounds are the steps
    problem = make_problem("hartmann3", "moderate", 0.02, budget=2.0)
    spec, policy = problem_spec(problem), ucb_psq(len(problem.costs))
    config = BOConfig(num_samples=16, num_eval_samples=16, num_init=3, buckets=(12,),
                      optimizer=OptimizerConfig(num_raw=16, num_restarts=2, num_steps=5))
    key = jax.random.key(7)
    whole = jax.jit(lambda k: run_bo(k, spec, policy, hartmann3, config))(key)

    @jax.jit
    def rounds(k):
        def body(state, _):
            return step(state, spec, policy, hartmann3, config)
        state, infos = jax.lax.scan(body, init(k, spec, policy, hartmann3, config), None,
                                    length=config.max_rounds + 1)
        return history(state, spec, config), infos

    stepped, infos = rounds(key)
    for name, a, b in zip(History._fields, whole, stepped, strict=True):
        a, b = np.asarray(a), np.asarray(b)
        if np.issubdtype(a.dtype, np.integer):      # the same rounds, sets and stops ...
            np.testing.assert_array_equal(a, b, err_msg=name)
        else:                                       # ... from two compiled loops (scan, while)
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=0, err_msg=name)
    played = np.asarray(infos.accepted)
    assert played.sum() == int(whole.num_rounds) > 0
    np.testing.assert_array_equal(np.asarray(infos.set_index)[played],
                                  np.asarray(whole.set_index)[:played.sum()])
    assert np.all(np.isnan(np.asarray(infos.y)[~played]))
    # a stopped run stays stopped
    assert int(infos.status[-1]) == int(whole.status)


def test_step_refuses_a_foreign_state():
    problem = make_problem("hartmann3", "moderate", 0.02)
    with pytest.raises(ValueError, match="BOState"):
        step((1, 2), problem_spec(problem), ucb_psq(7), hartmann3, BOConfig())
    with pytest.raises(ValueError, match="capacity"):
        init(jax.random.key(0), problem_spec(problem), ucb_psq(7), hartmann3,
             BOConfig(num_init=5), capacity=5)
