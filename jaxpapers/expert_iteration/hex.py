"""Hex in pure JAX, any board size, no swap rule, in the canonical side-to-move frame.

Black moves first and connects rows ``0`` and ``n - 1``; White connects the columns; cell
``i = r * n + c`` (the OpenSpiel and pgx neighbourhood). A :class:`State` stores the board as
the player to move sees it: ``+1`` its stones, ``-1`` the opponent's, and it always connects
row ``0`` to row ``n - 1`` (after a move the next board is ``-board.T``); actions index the cells
of that frame (:func:`to_absolute` and :func:`absolute_action` translate). Fixed-shape arrays
throughout: ``jax.vmap`` batches games. An illegal :func:`step` raises eagerly and under ``jit``
sets ``illegal = done = True``.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxpapers._src import checks
from jaxpapers._src.errors import InvalidInputError

__all__ = [
    "NUM_FEATURES",
    "State",
    "absolute_action",
    "features",
    "from_absolute",
    "has_won",
    "init",
    "legal_mask",
    "play",
    "random_fill",
    "rollout_value",
    "rot180",
    "rot180_action",
    "step",
    "to_absolute",
    "winner",
]

#: neighbour offsets (dr, dc) of a hex cell
NEIGHBOURS = ((-1, 0), (-1, 1), (0, 1), (1, 0), (1, -1), (0, -1))
#: number of feature planes of :func:`features`
NUM_FEATURES = 8
_MAX_SIZE = 181  # labels are int16 cell numbers: n * n must stay below 2**15


class State(NamedTuple):
    """A Hex position in the canonical frame of the player to move.

    Attributes:
      board: ``int8[n, n]``: ``+1`` the mover's stones, ``-1`` the opponent's, ``0`` empty; the
        mover connects row 0 to row ``n - 1``.
      labels: ``int16[n, n]``: group labels, positive for the mover's groups and negative for
        the opponent's (``0`` empty); stones of one connected group share a label.
      color: ``int8[]``: the absolute colour of the player to move (0 Black, 1 White).
      num_moves: ``int32[]``: stones on the board.
      done: ``bool[]``: the game is over; the player to move has lost (the last mover won).
      illegal: ``bool[]``: an illegal move was attempted (then also ``done``).
    """

    board: jax.Array
    labels: jax.Array
    color: jax.Array
    num_moves: jax.Array
    done: jax.Array
    illegal: jax.Array


def _check_size(n) -> int:
    n = checks.require_positive_int(n, "board size n")
    checks.require(n <= _MAX_SIZE, f"board size n must be at most {_MAX_SIZE}; got {n}")
    return n


def init(n: int) -> State:
    """The empty ``n x n`` board, Black to move.

    Args:
      n: board size, an int in ``[1, 181]``.

    Returns:
      :class:`State` with ``board int8[n, n]`` of zeros.

    Raises:
      ValueError: ``n`` not a positive int or above 181.

    >>> init(3).board.shape
    (3, 3)
    """
    n = _check_size(n)
    return State(board=jnp.zeros((n, n), jnp.int8), labels=jnp.zeros((n, n), jnp.int16),
                 color=jnp.int8(0), num_moves=jnp.int32(0), done=jnp.bool_(False),
                 illegal=jnp.bool_(False))


def _size(board) -> int:
    if board.ndim != 2 or board.shape[0] != board.shape[1]:
        raise ValueError(f"a Hex board must be square [n, n]; got shape {board.shape}")
    return board.shape[0]


def legal_mask(state: State) -> jax.Array:
    """The legal moves of a position.

    Args:
      state: a :class:`State` (unbatched).

    Returns:
      ``bool[n * n]``: the empty cells of the canonical board; all False once the game is over.

    >>> int(legal_mask(init(3)).sum())
    9
    """
    return (state.board.reshape(-1) == 0) & ~state.done


def _shift(x, dr: int, dc: int, fill):
    """``y[r, c] = x[r + dr, c + dc]`` with ``fill`` outside the board."""
    n = x.shape[0]
    padded = jnp.pad(x, 1, constant_values=fill)
    return jax.lax.dynamic_slice(padded, (1 + dr, 1 + dc), (n, n))


def _dilate(reach):
    """Cells adjacent (hex) to or in ``reach``."""
    out = reach
    for dr, dc in NEIGHBOURS:
        out = out | _shift(reach, dr, dc, False)
    return out


def has_won(board: jax.Array) -> jax.Array:
    """Whether the ``+1`` stones of ``board`` connect row 0 to row ``n - 1``.

    Flood fill by hex dilation from row 0 through ``+1`` stones, to a fixed point (at most
    ``n * n`` rounds, usually about the length of the longest chain). For the ``-1`` player
    (who connects the columns) call ``has_won(-board.T)``.

    Args:
      board: integer ``[n, n]`` board (``+1``, ``-1``, ``0``).

    Returns:
      ``bool[]``.

    Raises:
      ValueError: ``board`` not square.
    """
    board = jnp.asarray(board)
    n = _size(board)
    own = board == 1
    reach0 = own & (jnp.arange(n)[:, None] == 0)

    def cond(carry):
        reach, changed = carry
        return changed & ~jnp.any(reach[n - 1])

    def body(carry):
        reach, _ = carry
        new = own & _dilate(reach)
        return new, jnp.any(new != reach)

    reach, _ = jax.lax.while_loop(cond, body, (reach0, jnp.bool_(True)))
    return jnp.any(reach[n - 1])


def play(state: State, action) -> State:
    """Play ``action`` without checks (the search's step): the caller guarantees a legal move.

    Idempotent on finished games (a ``done`` state is returned unchanged), so a search can expand
    past a terminal node. Label merging: the new stone gets label ``action + 1``; every group of
    the mover's adjacent to it is relabelled to it; the mover wins iff that label appears in
    rows 0 and ``n - 1``. The next state is the opponent's frame: ``board -> -board.T``,
    ``labels -> -labels.T``.

    Args:
      state: a :class:`State` (unbatched).
      action: integer cell index of the canonical frame (a legal move).

    Returns:
      the opponent's :class:`State`.

    Raises:
      ValueError: a board that is not square.
    """
    board, labels = state.board, state.labels
    n = _size(board)
    action = jnp.asarray(action, jnp.int32)
    r, c = action // n, action % n
    new_label = (action + 1).astype(jnp.int16)
    merged = labels
    for dr, dc in NEIGHBOURS:
        rr, cc = r + dr, c + dc
        inside = (rr >= 0) & (rr < n) & (cc >= 0) & (cc < n)
        neighbour = labels[jnp.clip(rr, 0, n - 1), jnp.clip(cc, 0, n - 1)]
        join = inside & (neighbour > 0)
        merged = jnp.where(join & (labels == neighbour), new_label, merged)
    merged = merged.at[r, c].set(new_label)
    won = jnp.any(merged[0] == new_label) & jnp.any(merged[n - 1] == new_label)
    placed = board.at[r, c].set(jnp.int8(1))
    moved = State(board=-placed.T, labels=-merged.T, color=(1 - state.color).astype(jnp.int8),
                  num_moves=state.num_moves + 1, done=won, illegal=state.illegal)
    return jax.tree_util.tree_map(lambda old, new: jnp.where(state.done, old, new), state, moved)


def _is_legal(state: State, action) -> jax.Array:
    n = state.board.shape[0]
    inside = (action >= 0) & (action < n * n)
    cell = state.board.reshape(-1)[jnp.clip(action, 0, n * n - 1)]
    return inside & (cell == 0) & ~state.done


def step(state: State, action) -> State:
    """Play ``action`` and return the opponent's state (the checked step).

    Args:
      state: a :class:`State` (unbatched).
      action: integer scalar, a cell index of the canonical frame.

    Returns:
      the opponent's :class:`State`.

    Raises:
      ValueError: ``action`` not an integer scalar.
      InvalidInputError: when called eagerly with an illegal move (occupied cell, index out of
        ``[0, n * n)``, or the game already over). Under ``jit``/``vmap`` the move is not played
        and the state comes back with ``illegal = done = True``.

    >>> state = step(init(3), 4)
    >>> int(state.color), int(state.num_moves)
    (1, 1)
    """
    action = jnp.asarray(action)
    if action.ndim != 0 or not jnp.issubdtype(action.dtype, jnp.integer):
        raise ValueError(f"action must be an integer scalar (use jax.vmap for batches); got "
                         f"shape {action.shape} dtype {action.dtype}")
    legal = _is_legal(state, action)
    if checks.is_concrete(state, action) and not bool(legal):
        n = state.board.shape[0]
        a = int(action)
        if bool(state.done):
            why = "the game is over"
        elif not 0 <= a < n * n:
            why = f"index out of [0, {n * n})"
        else:
            why = f"cell ({a // n}, {a % n}) of the canonical frame is occupied"
        raise InvalidInputError(f"illegal Hex move {a}: {why}")
    played = play(state, jnp.where(legal, action, 0))
    flagged = state._replace(done=jnp.bool_(True), illegal=jnp.bool_(True))
    return jax.tree_util.tree_map(lambda ok, bad: jnp.where(legal, ok, bad), played, flagged)


def winner(state: State) -> jax.Array:
    """The absolute colour of the winner.

    Args:
      state: a :class:`State` (unbatched).

    Returns:
      ``int8[]``: 0 Black, 1 White, or -1 while the game runs (or after an illegal move).
    """
    return jnp.where(state.done & ~state.illegal, 1 - state.color, -1).astype(jnp.int8)


def to_absolute(state: State) -> jax.Array:
    """The board in absolute colours.

    Args:
      state: a :class:`State` (unbatched).

    Returns:
      ``int8[n, n]`` with Black ``+1`` (connecting rows) and White ``-1``.
    """
    return jnp.where(state.color == 0, state.board, -state.board.T).astype(jnp.int8)


def absolute_action(state: State, action) -> jax.Array:
    """Translate a cell index between the absolute board and ``state``'s canonical frame.

    The map is its own inverse: the identity when Black is to move, the transpose for White.

    Args:
      state: a :class:`State` (unbatched).
      action: integer cell index (any shape).

    Returns:
      ``int32`` cell index of the other frame, shaped like ``action``.
    """
    n = state.board.shape[0]
    action = jnp.asarray(action, jnp.int32)
    transposed = (action % n) * n + action // n
    return jnp.where(state.color == 0, action, transposed)


def _own_components(board):
    """Labels of the ``+1`` stones' groups in ``board``'s frame: ``i + 1`` with ``i`` the largest
    cell index of the group (label propagation to a fixed point); 0 elsewhere."""
    n = board.shape[0]
    own = board == 1
    ids = jnp.arange(n * n, dtype=jnp.int32).reshape(n, n) + 1
    start = jnp.where(own, ids, 0)

    def body(carry):
        lab, _ = carry
        best = lab
        for dr, dc in NEIGHBOURS:
            best = jnp.maximum(best, _shift(lab, dr, dc, 0))
        best = jnp.where(own, best, 0)
        return best, jnp.any(best != lab)

    lab, _ = jax.lax.while_loop(lambda c: c[1], body, (start, jnp.bool_(True)))
    return lab.astype(jnp.int16)


def from_absolute(board, color) -> State:
    """The :class:`State` of an absolute position (Black ``+1`` connecting rows, White ``-1``)
    with ``color`` (0 Black, 1 White) to move. ``done`` is set when either side is connected;
    ``num_moves`` counts the stones. The position is taken as given (stone counts unchecked).

    Each side's group labels are numbered in that side's own frame, as :func:`play` numbers them,
    so play can continue from the returned state.

    Args:
      board: integer ``[n, n]`` absolute board.
      color: 0 (Black) or 1 (White), the player to move.

    Returns:
      :class:`State`.

    Raises:
      ValueError: ``board`` not square.
    """
    board = jnp.asarray(board, jnp.int8)
    _size(board)
    color = jnp.asarray(color, jnp.int8)
    canonical = jnp.where(color == 0, board, -board.T).astype(jnp.int8)
    labels = _own_components(canonical) - _own_components(-canonical.T).T
    done = has_won(board) | has_won(-board.T)
    return State(board=canonical, labels=labels, color=color,
                 num_moves=jnp.sum(board != 0).astype(jnp.int32), done=done,
                 illegal=jnp.bool_(False))


def random_fill(key, board: jax.Array) -> jax.Array:
    """The full board a uniformly random playout ends with.

    ``board``'s ``E`` empty cells are filled, the player to move's stones (``+1``) on a
    uniformly random ``ceil(E / 2)`` of them and the opponent's on the rest.

    Args:
      key: PRNG key.
      board: integer ``[n, n]`` canonical board.

    Returns:
      ``int8[n, n]`` with no empty cell.

    Raises:
      ValueError: ``board`` not square.
    """
    board = jnp.asarray(board)
    n = _size(board)
    empty = (board == 0).reshape(-1)
    num_empty = jnp.sum(empty)
    u = jnp.where(empty, jax.random.uniform(key, (n * n,)), 2.0)
    order = jnp.argsort(u)                       # the empty cells first, in random order
    mine = jnp.zeros(n * n, bool).at[order].set(jnp.arange(n * n) < (num_empty + 1) // 2)
    full = jnp.where(empty, jnp.where(mine, 1, -1), board.reshape(-1))
    return full.astype(jnp.int8).reshape(n, n)


def rollout_value(key, board: jax.Array) -> jax.Array:
    """``float32[]``: ``+1`` if a uniformly random playout from ``board`` is won by the player to
    move (``+1``), else ``-1``; the random-fill trick with one connectivity check.

    Because stones never move and a full board has exactly one winner, the winner of a random
    playout is the winner of :func:`random_fill`'s full board, decided by one :func:`has_won`.
    On a finished game (the opponent connected) it returns ``-1``.

    Args:
      key: PRNG key.
      board: integer ``[n, n]`` canonical board.

    Returns:
      ``float32[]``, ``+1`` or ``-1``.

    Raises:
      ValueError: ``board`` not square.
    """
    return jnp.where(has_won(random_fill(key, board)), 1.0, -1.0).astype(jnp.float32)


def _connected_to(labels, edge, sign):
    """Cells of the ``sign`` player's groups whose label also occurs on ``edge`` (a line)."""
    hit = jnp.any(labels[:, :, None] == edge[None, None, :], axis=-1)
    return hit & (labels * sign > 0)


def features(state: State) -> jax.Array:
    """The network's input planes in the canonical frame (spec Sec. 2.4).

    Planes: own stones, opponent stones, empty, own stones connected to row 0, own stones
    connected to row ``n - 1``, opponent stones connected to column 0, opponent stones connected
    to column ``n - 1`` (the opponent's edges in this frame), constant ones.

    Args:
      state: a :class:`State` (unbatched).

    Returns:
      ``float32[n, n, NUM_FEATURES]`` (``NUM_FEATURES = 8``).

    >>> features(init(3)).shape
    (3, 3, 8)
    """
    board, labels = state.board, state.labels
    own, opp = board == 1, board == -1
    planes = [own, opp, board == 0,
              _connected_to(labels, labels[0], 1), _connected_to(labels, labels[-1], 1),
              _connected_to(labels, labels[:, 0], -1), _connected_to(labels, labels[:, -1], -1),
              jnp.ones_like(own)]
    return jnp.stack(planes, axis=-1).astype(jnp.float32)


def rot180(x: jax.Array, *, flat: bool = False) -> jax.Array:
    """Rotate board or per-cell data by 180 degrees.

    Maps winning boards to winning boards for the same player (the colour-preserving symmetry
    used for augmentation). On a :class:`State`, rotate ``board`` and ``labels``.

    Args:
      x: board-shaped data ``[n, n, ...]`` (boards, labels, feature planes), or with
        ``flat=True`` per-cell data ``[n * n, ...]`` (policies, visit counts: cell
        ``i -> n * n - 1 - i``).
      flat: ``x`` is per-cell data.

    Returns:
      the rotated array, shaped like ``x``.

    Raises:
      ValueError: ``x`` not ``[n, n, ...]`` (without ``flat``).

    >>> import jax.numpy as jnp
    >>> rot180(jnp.arange(4), flat=True).tolist()
    [3, 2, 1, 0]
    """
    x = jnp.asarray(x)
    if flat:
        return x[::-1]
    if x.ndim < 2 or x.shape[0] != x.shape[1]:
        raise ValueError(f"rot180 expects board-shaped data [n, n, ...]; got shape {x.shape} "
                         "(pass flat=True for per-cell vectors)")
    return x[::-1, ::-1]


def rot180_action(action, n: int) -> jax.Array:
    """The cell index of ``action`` after :func:`rot180` on an ``n x n`` board.

    Args:
      action: integer cell index (any shape).
      n: board size.

    Returns:
      ``n * n - 1 - action``.

    >>> int(rot180_action(0, 3))
    8
    """
    return n * n - 1 - jnp.asarray(action)
