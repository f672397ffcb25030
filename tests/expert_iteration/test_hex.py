"""Hex in JAX against independent oracles (spec Sec. 6.6, oracles 1-4 and 10) and against pgx."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpapers import InvalidInputError
from jaxpapers.expert_iteration import hex
from tests.contracts import check_kernel_contract


def bfs_connected(board: np.ndarray) -> bool:
    """Oracle: breadth-first search of the +1 stones from row 0 to row n - 1 (plain Python)."""
    n = board.shape[0]
    frontier = [(0, c) for c in range(n) if board[0, c] == 1]
    seen = set(frontier)
    while frontier:
        r, c = frontier.pop()
        if r == n - 1:
            return True
        for dr, dc in ((-1, 0), (-1, 1), (0, 1), (1, 0), (1, -1), (0, -1)):
            rr, cc = r + dr, c + dc
            if 0 <= rr < n and 0 <= cc < n and board[rr, cc] == 1 and (rr, cc) not in seen:
                seen.add((rr, cc))
                frontier.append((rr, cc))
    return False


def random_boards(rng, n, count, fill):
    """Random absolute boards: each cell Black/White with probability fill/2, else empty."""
    u = rng.random((count, n, n))
    return np.where(u < fill / 2, 1, np.where(u < fill, -1, 0)).astype(np.int8)


_won = jax.jit(jax.vmap(hex.has_won))


@pytest.mark.parametrize("n", [2, 3, 5, 7, 9])
def test_win_detection_matches_bfs_and_no_draws(n):
    """Oracles 1 and 2: flood fill = BFS on 1,000 full and 1,000 partial boards per size; a full
    board has exactly one winner; a partial board never two."""
    rng = np.random.default_rng(n)
    for fill in (1.0, 0.6):
        boards = random_boards(rng, n, 1000, fill)
        black = np.asarray(_won(jnp.asarray(boards)))
        white = np.asarray(_won(jnp.asarray(-np.swapaxes(boards, 1, 2))))
        np.testing.assert_array_equal(black, [bfs_connected(b) for b in boards])
        np.testing.assert_array_equal(white, [bfs_connected(-b.T) for b in boards])
        assert not np.any(black & white)
        if fill == 1.0:
            assert np.all(black ^ white), "a full board must have exactly one winner"


def _random_games(key, n, num_games):
    """Uniformly random games by `step`, recording the state after every ply."""
    start = jax.tree_util.tree_map(lambda x: jnp.broadcast_to(x, (num_games,) + x.shape),
                                   hex.init(n))

    def ply(states, k):
        legal = jax.vmap(hex.legal_mask)(states)
        logits = jnp.where(legal, 0.0, -jnp.inf)
        actions = jax.random.categorical(k, logits).astype(jnp.int32)
        actions = jnp.where(states.done, 0, actions)
        new = jax.vmap(lambda s, a: jax.lax.cond(s.done, lambda: s, lambda: hex.step(s, a)))(
            states, actions)
        return new, new

    _, trace = jax.lax.scan(ply, start, jax.random.split(key, n * n))
    return trace


_games = jax.jit(_random_games, static_argnums=(1, 2))


@pytest.mark.parametrize("n", [6])
def test_label_merge_agrees_with_flood_fill_move_by_move(n, key):
    """Oracle 3: the label-merge win flag equals flood fill on the absolute board after every
    move, and the labels group exactly the connected stones."""
    trace = _games(key, n, 32)
    flat = jax.tree_util.tree_map(lambda x: x.reshape((-1,) + x.shape[2:]), trace)
    absolute = np.asarray(jax.vmap(hex.to_absolute)(flat))
    done = np.asarray(flat.done)
    expected = np.array([bfs_connected(b) or bfs_connected(-b.T) for b in absolute])
    np.testing.assert_array_equal(done, expected)
    rebuilt = jax.vmap(hex.from_absolute)(jnp.asarray(absolute), flat.color)
    np.testing.assert_array_equal(np.asarray(rebuilt.board), np.asarray(flat.board))
    # same partition of the stones into groups (labels may differ by name)
    for lab, ref in zip(np.asarray(flat.labels)[::7], np.asarray(rebuilt.labels)[::7],
                        strict=True):
        pairs = {(a, b) for a, b in zip(lab.ravel(), ref.ravel(), strict=True) if a}
        assert len({a for a, _ in pairs}) == len(pairs) == len({b for _, b in pairs})
        assert np.all((lab > 0) == (ref > 0)) and np.all((lab < 0) == (ref < 0))


def test_canonical_frame_transforms(key):
    """Oracle 4: stepping in the canonical frame equals stepping the absolute board; the
    transpose is an involution; rot180 maps winners to winners."""
    n = 5
    rng = np.random.default_rng(0)
    state = hex.init(n)
    for _ in range(12):
        if bool(state.done):
            break
        absolute = np.asarray(hex.to_absolute(state))
        empty = np.flatnonzero(absolute.ravel() == 0)
        cell = int(rng.choice(empty))
        colour = 1 if int(state.color) == 0 else -1
        expected = absolute.copy().ravel()
        expected[cell] = colour
        state = hex.step(state, hex.absolute_action(state, cell))
        np.testing.assert_array_equal(np.asarray(hex.to_absolute(state)).ravel(), expected)
        assert int(hex.absolute_action(state, hex.absolute_action(state, cell))) == cell
    board = np.asarray(state.board)
    np.testing.assert_array_equal(board.T.T, board)
    boards = random_boards(rng, 7, 500, 1.0)
    rotated = np.asarray(jax.vmap(hex.rot180)(jnp.asarray(boards)))
    np.testing.assert_array_equal(np.asarray(_won(jnp.asarray(boards))),
                                  np.asarray(_won(jnp.asarray(rotated))))
    np.testing.assert_array_equal(np.asarray(hex.rot180(jnp.arange(9), flat=True)),
                                  np.arange(9)[::-1])
    assert int(hex.rot180_action(3, 3)) == 5
    # mirroring is not a symmetry: some board changes winner under (r, c) -> (r, n-1-c)
    mirrored = boards[:, :, ::-1]
    assert np.any(np.asarray(_won(jnp.asarray(boards))) != np.asarray(
        _won(jnp.asarray(mirrored))))


def test_features_planes_against_bfs():
    """Connectivity planes equal a BFS from each edge; the planes of a rotated position are the
    rotated planes with the two edge planes of each side swapped."""
    rng = np.random.default_rng(1)
    n = 5
    boards = random_boards(rng, n, 40, 0.7)
    states = jax.vmap(hex.from_absolute)(jnp.asarray(boards), jnp.zeros(40, jnp.int8))
    planes = np.asarray(jax.jit(jax.vmap(hex.features))(states))
    assert planes.shape == (40, n, n, hex.NUM_FEATURES) and planes.dtype == np.float32

    def reach(board, start_rows):
        out = np.zeros_like(board, bool)
        frontier = [(r, c) for r in start_rows for c in range(n) if board[r, c] == 1]
        for cell in frontier:
            out[cell] = True
        while frontier:
            r, c = frontier.pop()
            for dr, dc in ((-1, 0), (-1, 1), (0, 1), (1, 0), (1, -1), (0, -1)):
                rr, cc = r + dr, c + dc
                if 0 <= rr < n and 0 <= cc < n and board[rr, cc] == 1 and not out[rr, cc]:
                    out[rr, cc] = True
                    frontier.append((rr, cc))
        return out

    for board, p in zip(boards, planes, strict=True):
        np.testing.assert_array_equal(p[..., 0], board == 1)
        np.testing.assert_array_equal(p[..., 1], board == -1)
        np.testing.assert_array_equal(p[..., 2], board == 0)
        np.testing.assert_array_equal(p[..., 3], reach(board, [0]))
        np.testing.assert_array_equal(p[..., 4], reach(board, [n - 1]))
        np.testing.assert_array_equal(p[..., 5], reach(-board.T, [0]).T)
        np.testing.assert_array_equal(p[..., 6], reach(-board.T, [n - 1]).T)
        assert np.all(p[..., 7] == 1)


def test_illegal_moves_raise_eagerly_and_are_flagged_in_batches():
    state = hex.step(hex.init(3), 4)
    with pytest.raises(InvalidInputError, match="occupied"):
        hex.step(state, 4)
    with pytest.raises(InvalidInputError, match="out of"):
        hex.step(state, 9)
    with pytest.raises(ValueError, match="integer scalar"):
        hex.step(state, jnp.array([1, 2]))
    with pytest.raises(ValueError, match="positive"):
        hex.init(0)
    won = hex.init(1)
    won = hex.step(won, 0)
    assert bool(won.done) and int(hex.winner(won)) == 0
    with pytest.raises(InvalidInputError, match="over"):
        hex.step(won, 0)
    batch = jax.tree_util.tree_map(lambda x: jnp.stack([x, x]), state)
    out = jax.jit(jax.vmap(hex.step))(batch, jnp.array([4, 0]))   # 4 is taken in both frames
    np.testing.assert_array_equal(np.asarray(out.illegal), [True, False])
    np.testing.assert_array_equal(np.asarray(out.done), [True, False])
    np.testing.assert_array_equal(np.asarray(out.board[0]), np.asarray(state.board))
    assert int(hex.winner(jax.tree_util.tree_map(lambda x: x[0], out))) == -1


def _random_playout(key, state):
    """Move-by-move uniformly random playout; +1 if the player to move at `state` wins."""
    n = state.board.shape[0]

    def ply(s, k):
        legal = hex.legal_mask(s)
        a = jax.random.categorical(k, jnp.where(legal, 0.0, -jnp.inf)).astype(jnp.int32)
        return hex.play(s, a), None

    final, _ = jax.lax.scan(ply, state, jax.random.split(key, n * n))
    mover_won = (final.num_moves - state.num_moves) % 2 == 1
    return jnp.where(mover_won, 1.0, -1.0)


def test_rollout_trick_has_the_law_of_random_playouts(key):
    """Oracle 10: the random-fill outcome and move-by-move random playouts agree in law
    (10^4 samples each from two positions; two-sample test on the win frequency within 4
    standard errors)."""
    rng = np.random.default_rng(3)
    samples = 10_000
    positions = [hex.init(5)]
    while len(positions) < 2:
        state = hex.from_absolute(random_boards(rng, 5, 1, 0.4)[0], 0)
        if not bool(state.done):
            positions.append(state)
    states = jax.tree_util.tree_map(lambda *x: jnp.stack(x), *positions)
    fill = jax.jit(jax.vmap(jax.vmap(hex.rollout_value, in_axes=(0, None)), in_axes=(None, 0)))
    playout = jax.jit(jax.vmap(jax.vmap(_random_playout, in_axes=(0, None)), in_axes=(None, 0)))
    a = np.asarray(fill(jax.random.split(key, samples), states.board)) > 0
    b = np.asarray(playout(jax.random.split(jax.random.fold_in(key, 1), samples), states)) > 0
    for pa, pb in zip(a.mean(1), b.mean(1), strict=True):
        pooled = (pa + pb) / 2
        se = math.sqrt(max(pooled * (1 - pooled), 1e-4) * 2 / samples)
        assert abs(pa - pb) < 4 * se, (pa, pb)


def test_random_fill_contract_and_finished_games(key):
    board = hex.step(hex.init(4), 5).board
    full = check_kernel_contract(hex.random_fill, board)
    assert full.dtype == jnp.int8 and np.all(np.asarray(full) != 0)
    assert int(np.sum(np.asarray(full) == 1)) == 8 and int(full[1, 1]) == -1
    won = hex.play(hex.play(hex.init(1), 0), 0)
    assert float(hex.rollout_value(key, won.board)) == -1.0


def test_step_contract():
    state = hex.step(hex.init(3), 4)
    check_kernel_contract(lambda key, s, a: hex.step(s, a), state, jnp.int32(0),
                          deterministic=True, state_arg=0)


def test_cross_check_against_pgx_11x11(key):
    """The same random games (swap never chosen) step identically in pgx's Hex: absolute
    boards, legal cells, termination and winner after every move."""
    pgx = pytest.importorskip("pgx")
    env = pgx.make("hex")
    n, games = 11, 8

    def play(k):
        k_init, k_moves = jax.random.split(k)
        ours, theirs = hex.init(n), env.init(k_init)

        def ply(carry, kk):
            ours, theirs = carry
            legal = jnp.zeros(n * n, bool).at[jax.vmap(
                lambda a: hex.absolute_action(ours, a))(jnp.arange(n * n))].set(
                hex.legal_mask(ours))
            cell = jax.random.categorical(kk, jnp.where(legal, 0.0, -jnp.inf)).astype(jnp.int32)
            cell = jnp.where(ours.done, 0, cell)
            new_ours = hex.play(ours, hex.absolute_action(ours, cell))
            new_theirs = jax.lax.cond(theirs.terminated, lambda: theirs,
                                      lambda: env.step(theirs, cell))
            sign = jnp.where(new_theirs._x.color == 0, 1, -1)
            board = (jnp.sign(new_theirs._x.board) * sign).reshape(n, n)
            live = ~ours.done
            record = (live, legal, theirs.legal_action_mask[:n * n], hex.to_absolute(new_ours),
                      board, new_ours.done, new_theirs.terminated)
            return (new_ours, new_theirs), record

        (ours, theirs), rec = jax.lax.scan(ply, (ours, theirs), jax.random.split(k_moves, n * n))
        winner_theirs = (theirs._x.step_count - 1) % 2
        return rec, hex.winner(ours), winner_theirs

    rec, w_ours, w_theirs = jax.jit(jax.vmap(play))(jax.random.split(key, games))
    live, legal, legal_theirs, board, board_theirs, done, term = (np.asarray(x) for x in rec)
    np.testing.assert_array_equal(legal[live], legal_theirs[live])
    np.testing.assert_array_equal(board[live], board_theirs[live])
    np.testing.assert_array_equal(done[live], term[live])
    np.testing.assert_array_equal(np.asarray(w_ours), np.asarray(w_theirs))
