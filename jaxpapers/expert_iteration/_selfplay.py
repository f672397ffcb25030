"""Apprentice self-play, state sampling and expert labelling (fixed shapes, one ``lax.scan``).

ExIt's training states come from the apprentice's own games (as in DAgger), a few per game to
decorrelate them (spec Sec. 6.4). The value target of a sampled state is the outcome of the rest
of its self-play game from the mover's view: that game *is* one Monte Carlo rollout of the
apprentice policy from the state, the paper's value target (spec Sec. 3.3).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jaxpapers._src import checks, threefry
from jaxpapers.expert_iteration import hex
from jaxpapers.expert_iteration._network import masked_policy
from jaxpapers.expert_iteration._search import Evaluator, SearchConfig, search

__all__ = ["Games", "Positions", "self_play", "sample_positions", "label_positions",
           "broadcast_state"]


class Games(NamedTuple):
    """A batch of ``G`` finished games, ply by ply (``T = n * n`` plies, padded).

    Attributes:
      states: :class:`hex.State` ``[T, G]``, the position before each ply.
      actions: ``int32[T, G]`` canonical-frame moves (meaningless where not ``alive``).
      alive: ``bool[T, G]``: a move was made at this ply (the game was running).
      winner: ``int8[G]`` absolute colour of the winner.
      length: ``int32[G]`` moves played.
    """

    states: hex.State
    actions: jax.Array
    alive: jax.Array
    winner: jax.Array
    length: jax.Array


class Positions(NamedTuple):
    """Sampled positions with their labels (a flat batch ``[M]``).

    Attributes:
      states: :class:`hex.State` ``[M]``.
      visit_counts: ``int32[M, A]`` the expert's root visit counts (zeros before labelling).
      value_target: ``float32[M]`` 1 if the player to move went on to win its game, else 0.
    """

    states: hex.State
    visit_counts: jax.Array
    value_target: jax.Array


def broadcast_state(state: hex.State, shape: tuple[int, ...]) -> hex.State:
    """``state`` repeated to leading ``shape`` (a batch of identical positions)."""
    return jax.tree_util.tree_map(lambda x: jnp.broadcast_to(x, shape + x.shape), state)


def self_play(key, params: Any, apply_fn, board_size: int, num_games: int,
              temperature: float = 1.0) -> Games:
    """Play ``num_games`` games of the apprentice against itself, sampling its policy.

    Args:
      key: PRNG key.
      params: network parameters.
      apply_fn: ``apply_fn(params, features [G, n, n, C]) -> (logits [G, A], value_logit [G])``.
      board_size: ``n``.
      num_games: ``G``.
      temperature: policy temperature of the sampled moves.

    Returns:
      :class:`Games` with ``T = n * n`` plies of ``G`` games.

    Raises:
      ValueError: ``key`` is not a PRNG key; ``num_games`` or ``board_size`` not a positive
        int; ``temperature`` traced, not finite or not ``> 0``.
    """
    threefry.check_key(key)
    num_games = checks.require_positive_int(num_games, "num_games")
    n = hex._check_size(board_size)
    if not checks.is_concrete(temperature):
        raise ValueError("temperature must be a static number (a configuration value)")
    from jaxpapers.expert_iteration._network import _temperature_ok
    _temperature_ok(temperature)
    start = broadcast_state(hex.init(n), (num_games,))

    def ply(states, k):
        logits, _ = apply_fn(params, jax.vmap(hex.features)(states))
        dist = masked_policy(logits, jax.vmap(hex.legal_mask)(states), temperature)
        actions = dist.sample(seed=k).astype(jnp.int32)
        alive = ~states.done
        return jax.vmap(hex.play)(states, actions), (states, actions, alive)

    final, (states, actions, alive) = jax.lax.scan(ply, start, jax.random.split(key, n * n))
    return Games(states, actions, alive, jax.vmap(hex.winner)(final), final.num_moves)


def sample_positions(key, games: Games, per_game: int) -> Positions:
    """``per_game`` distinct positions of each game, uniformly among its plies.

    Every game lasts at least ``2n - 1`` plies, so ``per_game <= 2n - 1`` always has enough.

    Args:
      key: PRNG key.
      games: :class:`Games` ``[T, G]``.
      per_game: positions drawn per game, a static int in ``[1, 2n - 1]``.

    Returns:
      :class:`Positions` ``[G * per_game]`` (game-major) with zero visit counts and the
      mover's outcome as value target.

    Raises:
      ValueError: ``key`` is not a PRNG key; ``per_game`` not a positive int or above
        ``2n - 1``.
    """
    threefry.check_key(key)
    num_plies, num_games = games.alive.shape
    n = games.states.board.shape[-1]
    per_game = checks.require_positive_int(per_game, "per_game")
    checks.require(per_game <= 2 * n - 1, f"per_game must be <= 2n - 1 = {2 * n - 1} (the "
                                          f"shortest game); got {per_game}")
    u = jnp.where(games.alive, jax.random.uniform(key, games.alive.shape), -1.0)
    _, plies = jax.lax.top_k(u.T, per_game)                       # [G, K]
    game = jnp.broadcast_to(jnp.arange(num_games)[:, None], plies.shape)
    plies, game = plies.reshape(-1), game.reshape(-1)
    states = jax.tree_util.tree_map(lambda x: x[plies, game], games.states)
    mover_won = (plies % 2) == games.winner[game]                   # Black moves at even plies
    num_actions = n * n
    return Positions(states, jnp.zeros((plies.size, num_actions), jnp.int32),
                     mover_won.astype(jnp.float32))


def label_positions(key, positions: Positions, params: Any, evaluate: Evaluator,
                    config: SearchConfig) -> tuple[Positions, jax.Array]:
    """Run the expert (a batch of searches) on every position.

    Args:
      key: PRNG key (one search key per position).
      positions: :class:`Positions` ``[M]``.
      params: passed to ``evaluate``.
      evaluate: the search's evaluator (``network_evaluator(module)`` or
        ``uniform_evaluator``).
      config: the expert's :class:`~jaxpapers.expert_iteration.SearchConfig`.

    Returns:
      ``(positions, evaluations)``: the positions with the expert's root ``visit_counts
      int32[M, A]``, and ``int32[]`` evaluator calls.

    Raises:
      ValueError: ``key`` is not a PRNG key; ``config`` is not a ``SearchConfig``.
    """
    threefry.check_key(key)
    if not isinstance(config, SearchConfig):
        raise ValueError(f"config must be a SearchConfig; got {type(config).__name__}")
    keys = jax.random.split(key, positions.value_target.shape[0])
    out = jax.vmap(lambda k, s: search(k, s, params, evaluate, config))(keys, positions.states)
    return positions._replace(visit_counts=out.visit_counts), jnp.sum(out.num_evaluations)
