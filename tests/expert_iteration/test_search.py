"""The ExIt search against exact game solutions and its bookkeeping (spec Sec. 6.6, oracles 5-9
and 11)."""

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpapers.expert_iteration import (
    SearchConfig,
    chosen_action_target,
    hex,
    search,
    tree_policy_target,
    uniform_evaluator,
)
from tests.contracts import check_kernel_contract

NEIGHBOURS = ((-1, 0), (-1, 1), (0, 1), (1, 0), (1, -1), (0, -1))


def connected(board: tuple, n: int, player: int) -> bool:
    """Oracle: does ``player`` (+1 Black: rows, -1 White: columns) connect its edges (BFS)."""
    cells = {(r, c) for r in range(n) for c in range(n) if board[r * n + c] == player}
    start, goal = (0, n - 1)
    axis = 0 if player == 1 else 1
    frontier = [cell for cell in cells if cell[axis] == start]
    seen = set(frontier)
    while frontier:
        r, c = frontier.pop()
        if (r, c)[axis] == goal:
            return True
        for dr, dc in NEIGHBOURS:
            nxt = (r + dr, c + dc)
            if nxt in cells and nxt not in seen:
                seen.add(nxt)
                frontier.append(nxt)
    return False


@functools.cache
def wins(board: tuple, n: int, player: int) -> bool:
    """Exact minimax: does ``player``, to move on the absolute ``board``, win?"""
    for a, v in enumerate(board):
        if v == 0:
            after = board[:a] + (player,) + board[a + 1:]
            if connected(after, n, player) or not wins(after, n, -player):
                return True
    return False


def winning_moves(board: tuple, n: int, player: int) -> set:
    out = set()
    for a, v in enumerate(board):
        if v == 0:
            after = board[:a] + (player,) + board[a + 1:]
            if connected(after, n, player) or not wins(after, n, -player):
                out.add(a)
    return out


def immediate_wins(board: tuple, n: int, player: int) -> set:
    return {a for a, v in enumerate(board)
            if v == 0 and connected(board[:a] + (player,) + board[a + 1:], n, player)}


def random_positions(rng, n, stones, count, keep):
    """Random absolute positions with ``stones`` stones, nobody connected, accepted by
    ``keep(board, player)``; returns ``[(board tuple, player)]``."""
    out = []
    while len(out) < count:
        board = [0] * (n * n)
        player = 1
        for cell in rng.permutation(n * n)[:stones]:
            board[cell] = player
            player = -player
        board = tuple(board)
        if connected(board, n, 1) or connected(board, n, -1) or not keep(board, player):
            continue
        out.append((board, player))
    return out


def to_states(positions, n):
    boards = jnp.asarray([np.reshape(b, (n, n)) for b, _ in positions], jnp.int8)
    colours = jnp.asarray([0 if p == 1 else 1 for _, p in positions], jnp.int8)
    return jax.vmap(hex.from_absolute)(boards, colours)


def canonical(states, index, cell):
    return int(hex.absolute_action(jax.tree_util.tree_map(lambda x: x[index], states), cell))


def table_evaluator(params, state):
    """A fixed prior (``params`` = logits over the cells), value 0: N-MCTS with a given prior;
    zero logits and ``w_a = 0`` give pure MCTS."""
    return params, jnp.float32(0.0)


CONFIG4 = SearchConfig(num_simulations=160, uct_c=1.0)
_search4 = jax.jit(jax.vmap(
    lambda k, s, logits, w, sims: search(k, s, logits, table_evaluator, CONFIG4,
                                         simulations=sims, prior_weight=w),
    in_axes=(0, 0, None, None, None)))


BATCH4 = 40  # every 4x4 batch is padded to this size: one compile serves every test


def run4(key, states, prior_weight, simulations, logits=None):
    logits = jnp.zeros(16) if logits is None else logits
    size = states.board.shape[0]
    assert size <= BATCH4
    padded = jax.tree_util.tree_map(
        lambda x: jnp.concatenate([x, jnp.repeat(x[:1], BATCH4 - size, axis=0)]), states)
    keys = jax.random.split(key, BATCH4)
    out = _search4(keys, padded, logits, jnp.float32(prior_weight), jnp.int32(simulations))
    return jax.tree_util.tree_map(lambda x: x[:size], out)


AGENTS = {"pure MCTS": (0.0, None),
          "N-MCTS, random prior": (4.0, jax.random.normal(jax.random.key(7), (16,)))}


def test_bookkeeping_and_targets(key):
    """Oracles 5 and 6 on a batch of 4x4 trees (the compiled search of the win/block tests):
    root visits = S + 1 and its children's visits sum to S; illegal cells are never visited or
    expanded; every child's visits equal its edge's visits; TPT sums to one over legal cells
    and vanishes on occupied ones; CAT is one-hot."""
    rng = np.random.default_rng(5)
    positions = random_positions(rng, 4, 6, 4, lambda b, p: True)
    states = to_states(positions, 4)
    out = run4(key, states, 2.0, 40, jnp.linspace(-1.0, 1.0, 16))
    trees = jax.tree_util.tree_map(np.asarray, out.tree)
    for i in range(4):
        tree = jax.tree_util.tree_map(lambda x, i=i: x[i], trees)
        assert tree.node_visits[0] == 41 and out.visit_counts[i].sum() == 40
        legal = np.asarray(states.board[i]).ravel() == 0
        assert np.all(np.asarray(out.visit_counts[i])[~legal] == 0)
        for node in range(41):
            if node and tree.parents[node] < 0:
                continue
            board = tree.states.board[node].ravel()
            children = tree.children_index[node]
            assert np.all(board[children >= 0] == 0), "expanded an occupied cell"
            assert not (tree.terminal[node] and np.any(children >= 0))
            np.testing.assert_array_equal(
                tree.node_visits[children[children >= 0]],
                tree.children_visits[node][children >= 0])
            assert np.all(tree.children_visits[node][children < 0] == 0)
        tpt = np.asarray(out.tree_policy[i])
        assert np.all(tpt >= 0) and abs(tpt.sum() - 1) < 1e-6 and np.all(tpt[~legal] == 0)
    counts = jnp.asarray([[0, 3, 1], [2, 2, 0], [0, 0, 0]])
    np.testing.assert_allclose(np.asarray(tree_policy_target(counts)),
                               [[0, 0.75, 0.25], [0.5, 0.5, 0], [0, 0, 0]], atol=1e-7)
    np.testing.assert_allclose(np.asarray(tree_policy_target(counts, 0.5)),
                               [[0, 0.9, 0.1], [0.5, 0.5, 0], [0, 0, 0]], atol=1e-6)
    # no visit, no chosen move: all zeros (never a default move 0)
    np.testing.assert_array_equal(np.asarray(chosen_action_target(counts)),
                                  [[0, 1, 0], [1, 0, 0], [0, 0, 0]])


@pytest.mark.slow
def test_contract_determinism_and_bookkeeping():
    """Oracle 11 (slow: the eager run compiles the search again): jit = eager for the same key,
    deterministic per key, vmaps over keys; plus the bookkeeping of oracle 5 on a 3x3 tree."""
    config = SearchConfig(num_simulations=24, prior_weight=2.0)
    state = hex.step(hex.step(hex.init(3), 4), 0)
    logits = jnp.linspace(-1.0, 1.0, 9)
    out = check_kernel_contract(lambda k, s, p: search(k, s, p, table_evaluator, config),
                                state, logits)
    tree = jax.tree_util.tree_map(np.asarray, out.tree)
    assert tree.node_visits[0] == 25 and out.visit_counts.sum() == 24
    legal = np.asarray(hex.legal_mask(state))
    assert np.all(np.asarray(out.visit_counts)[~legal] == 0)


@pytest.mark.parametrize("agent", [pytest.param("pure MCTS", marks=pytest.mark.slow),
                                   "N-MCTS, random prior"])
def test_win_in_one(agent, key):
    """Oracle 7: (a) every visited immediately winning root move has Q = +1 exactly and no Q
    exceeds 1; (b) with S >= 4 x (legal moves) the most visited move wins game-theoretically
    (exact minimax) in at least 95% of 4x4 positions that have a win-in-one."""
    rng = np.random.default_rng(11)
    n = 4
    positions = random_positions(rng, n, 8, 40, lambda b, p: bool(immediate_wins(b, n, p)))
    states = to_states(positions, n)
    prior_weight, logits = AGENTS[agent]
    out = run4(key, states, prior_weight, 4 * 8, logits)
    q = np.asarray(out.q_values)
    visits = np.asarray(out.visit_counts)
    assert np.all(q <= 1.0)
    good = 0
    for i, (board, player) in enumerate(positions):
        for cell in immediate_wins(board, n, player):
            a = canonical(states, i, cell)
            if visits[i, a] > 0:
                assert q[i, a] == 1.0, (i, cell, q[i, a])
        winning = {canonical(states, i, c) for c in winning_moves(board, n, player)}
        good += int(out.action[i]) in winning
    assert good >= 0.95 * len(positions), f"{good} of {len(positions)}"


@pytest.mark.parametrize("agent", ["pure MCTS",
                                   pytest.param("N-MCTS, random prior", marks=pytest.mark.slow)])
def test_block_in_one(agent, key):
    """Oracle 8: the opponent threatens one immediate win, the mover has none, and blocking
    wins (exact minimax): every other move loses at once, so the search must block (4x4,
    S = 160). Lost positions are left out: there every move loses and a search need not
    prefer the block."""
    rng = np.random.default_rng(12)
    n = 4

    def threat(board, player):
        if immediate_wins(board, n, player):
            return False
        threats = immediate_wins(board, n, -player)
        return len(threats) == 1 and winning_moves(board, n, player) == threats

    positions = random_positions(rng, n, 7, 20, threat)
    states = to_states(positions, n)
    prior_weight, logits = AGENTS[agent]
    out = run4(key, states, prior_weight, 160, logits)
    blocked = [int(out.action[i]) == canonical(states, i, immediate_wins(b, n, -p).pop())
               for i, (b, p) in enumerate(positions)]
    assert all(blocked), f"missed blocks at {np.flatnonzero(~np.asarray(blocked))}"


def test_three_by_three_truth(key):
    """Oracle 9: exact minimax says the first player wins 3x3 (with openings 2-6 winning);
    MCTS with many simulations opens on a winning cell, from every seed tried."""
    empty = (0,) * 9
    assert wins(empty, 3, 1)
    winning = winning_moves(empty, 3, 1)
    assert winning == {2, 3, 4, 5, 6}
    config = SearchConfig(num_simulations=600)
    out = jax.jit(jax.vmap(lambda k: search(k, hex.init(3), None, uniform_evaluator, config)))(
        jax.random.split(key, 4))
    assert set(np.asarray(out.action).tolist()) <= winning


@pytest.mark.slow
def test_four_by_four_first_player_wins():
    """Oracle 9 (4x4, memoised minimax; about a minute in Python)."""
    assert wins((0,) * 16, 4, 1)


def test_bad_config_raises():
    with pytest.raises(ValueError, match="num_simulations"):
        SearchConfig(num_simulations=0)
    with pytest.raises(ValueError, match="value_weight"):
        SearchConfig(value_weight=1.5)
    with pytest.raises(ValueError, match="num_rollouts"):
        SearchConfig(num_rollouts=0)
    with pytest.raises(ValueError, match="uct_c"):
        SearchConfig(uct_c=float("nan"))
    with pytest.raises(ValueError, match="prior_weight"):
        SearchConfig(prior_weight=float("inf"))
    with pytest.raises(ValueError, match="prior_temperature"):
        SearchConfig(prior_temperature=0.0)
    with pytest.raises(ValueError, match="unvisited_value"):
        SearchConfig(unvisited_value=float("nan"))
    with pytest.raises(ValueError, match="unvisited_value"):
        SearchConfig(unvisited_value=-2.0)
    with pytest.raises(ValueError, match="uct_c"):
        SearchConfig(uct_c="1")


SMALL = SearchConfig(num_simulations=12)


def test_concrete_overrides_out_of_range_raise(key):
    state = hex.init(3)
    for kwargs, name in (({"simulations": -5}, "num_simulations"),
                         ({"simulations": 13}, "num_simulations"),
                         ({"uct_c": -10.0}, "uct_c"),
                         ({"prior_weight": float("nan")}, "prior_weight"),
                         ({"value_weight": jnp.float32(2.0)}, "value_weight"),
                         ({"prior_temperature": -1.0}, "prior_temperature")):
        with pytest.raises(ValueError, match=name):
            search(key, state, None, uniform_evaluator, SMALL, **kwargs)


@functools.lru_cache(maxsize=1)
def _traced_search():
    return jax.jit(lambda k, sims, c, w, v, t, u: search(
        k, hex.init(3), None, uniform_evaluator, SMALL, simulations=sims, uct_c=c,
        prior_weight=w, value_weight=v, prior_temperature=t, unvisited_value=u))


def test_traced_overrides_out_of_range_give_invalid(key):
    """Under jit a bad setting cannot raise: the search runs no simulation and says
    ``valid = False``; good settings give ``valid = True`` and the full budget."""
    good = dict(sims=12, c=1.0, w=0.0, v=0.0, t=1.0, u=float("inf"))
    fn = _traced_search()

    def call(**changes):
        args = {**good, **changes}
        return fn(key, jnp.int32(args["sims"]), *(jnp.float32(args[k]) for k in "cwvtu"))

    out = call()
    assert bool(out.valid) and int(out.visit_counts.sum()) == 12
    for bad in ({"sims": -5}, {"sims": 13}, {"c": -10.0}, {"w": float("nan")},
                {"w": -1.0}, {"v": 1.5}, {"t": 0.0}, {"t": float("inf")},
                {"u": float("nan")}, {"c": float("inf")}):
        out = call(**bad)
        assert not bool(out.valid), bad
        assert int(out.visit_counts.sum()) == 0 and int(out.num_evaluations) == 1, bad
        assert np.all(np.isfinite(np.asarray(out.prior))), bad


def test_finite_unvisited_value_follows_a_sharp_prior(key):
    """UCT's rule (``unvisited_value = inf``) tries all 16 root moves once before anything else;
    with a finite value and a strong prior bonus the search follows the prior and leaves
    low-prior moves unvisited."""
    logits = jnp.zeros(16).at[5].set(8.0)
    state = hex.init(4)
    config = SearchConfig(num_simulations=24, prior_weight=10.0)
    ucb = search(key, state, logits, table_evaluator, config)
    assert np.all(np.asarray(ucb.visit_counts) >= 1)
    fpu = search(key, state, logits, table_evaluator,
                 dataclasses.replace(config, unvisited_value=0.0))
    counts = np.asarray(fpu.visit_counts)
    assert counts.sum() == 24 and counts[5] == counts.max() and np.sum(counts == 0) >= 4
    assert int(fpu.action) == 5


def test_prior_temperature_override_equals_config(key):
    logits = jax.random.normal(jax.random.key(3), (16,))
    config = SearchConfig(num_simulations=20, prior_weight=3.0)
    sharp = dataclasses.replace(config, prior_temperature=0.1)
    a = search(key, hex.init(4), logits, table_evaluator, sharp)
    b = search(key, hex.init(4), logits, table_evaluator, config,
               prior_temperature=jnp.float32(0.1))
    np.testing.assert_array_equal(np.asarray(a.visit_counts), np.asarray(b.visit_counts))
    np.testing.assert_allclose(np.asarray(a.prior), np.asarray(b.prior), rtol=1e-6)
    assert float(np.asarray(a.prior).max()) > 0.5
