"""The REINFORCE baseline (the policy-gradient stage of AlphaGo, as the paper compares it).

The same apprentice network plays ``games`` games against an opponent drawn uniformly from a
pool of its own earlier snapshots (the learner takes Black in half the games and White in the
other half), both sampling their policies; the learner's moves are reinforced by the terminal
reward ``+1 / -1`` minus a baseline (the batch mean), with Adam. Every ``snapshot_every``
updates the current weights join the pool (a ring of ``pool_size``). The pool's details were not
recovered from the paper (spec Sec. 5); these are ours.

Network evaluations are counted as in ExIt: one per move made in a game (learner and opponent),
so the two methods can be compared at equal evaluations (the paper's Fig. 2 x-axis).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxpapers._src import checks, threefry
from jaxpapers._src.checks import require_positive_int_field
from jaxpapers.expert_iteration import hex
from jaxpapers.expert_iteration._network import (
    ApprenticeConfig,
    make_apprentice,
    masked_policy,
)
from jaxpapers.expert_iteration._selfplay import broadcast_state

__all__ = ["ReinforceConfig", "ReinforceState", "ReinforceInfo", "init_reinforce",
           "reinforce_step"]


@dataclasses.dataclass(frozen=True)
class ReinforceConfig:
    """Settings of the REINFORCE baseline.

    Attributes:
      board_size: ``n``.
      network: :class:`ApprenticeConfig` (the same as ExIt's for a fair comparison).
      games: games per update (even: half with each colour).
      learning_rate: Adam's step size.
      l2: L2 penalty on the weights.
      pool_size: snapshots kept as opponents.
      snapshot_every: updates between snapshots.
      temperature: policy temperature of both players' sampled moves.

    Raises:
      ValueError: a size not a positive int; an odd ``games``; ``learning_rate`` or
        ``temperature`` not ``> 0``; ``l2`` negative.
    """

    board_size: int = 5
    network: ApprenticeConfig = ApprenticeConfig()
    games: int = 64
    learning_rate: float = 1e-3
    l2: float = 1e-4
    pool_size: int = 10
    snapshot_every: int = 8
    temperature: float = 1.0

    def __post_init__(self):
        for name in ("board_size", "games", "pool_size", "snapshot_every"):
            require_positive_int_field("ReinforceConfig", name, getattr(self, name))
        if self.games % 2:
            raise ValueError(f"ReinforceConfig.games must be even (half per colour); got "
                             f"{self.games}")
        for name in ("learning_rate", "temperature"):
            if not getattr(self, name) > 0:
                raise ValueError(f"ReinforceConfig.{name} must be > 0; got "
                                 f"{getattr(self, name)}")
        if not self.l2 >= 0:
            raise ValueError(f"ReinforceConfig.l2 must be >= 0; got {self.l2}")


class ReinforceState(NamedTuple):
    """One run's REINFORCE state.

    Attributes:
      params, opt_state: the learner and Adam's state.
      pool: parameters stacked ``[pool_size, ...]`` (opponents).
      pool_count: ``int32[]`` snapshots added so far (the first is the initial network).
      evaluations: ``float32[]`` network evaluations spent so far.
    """

    params: Any
    opt_state: Any
    pool: Any
    pool_count: jax.Array
    evaluations: jax.Array


class ReinforceInfo(NamedTuple):
    """What one :func:`reinforce_step` reports (each ``float32[]``).

    Attributes:
      loss: the policy-gradient surrogate loss plus the L2 penalty (NaN for a negative
        ``step``).
      win_rate: the learner's share of won games in the batch.
      mean_length: network evaluations (moves, both players) per game.
    """

    loss: jax.Array
    win_rate: jax.Array
    mean_length: jax.Array


@functools.lru_cache(maxsize=16)
def _optimizer(learning_rate: float):
    return optax.adam(learning_rate)


def _check_config(config) -> None:
    if not isinstance(config, ReinforceConfig):
        raise ValueError(f"config must be a ReinforceConfig; got {type(config).__name__}")


def init_reinforce(params: Any, config: ReinforceConfig) -> ReinforceState:
    """The REINFORCE state that starts from ``params`` (the same initial network as ExIt).

    Args:
      params: apprentice parameters (of ``make_apprentice(config.network)``).
      config: :class:`ReinforceConfig`.

    Returns:
      :class:`ReinforceState` whose pool holds ``params`` in every slot (one counted).

    Raises:
      ValueError: ``config`` is not a :class:`ReinforceConfig`.
    """
    _check_config(config)
    pool = jax.tree_util.tree_map(
        lambda p: jnp.broadcast_to(p, (config.pool_size,) + p.shape), params)
    return ReinforceState(params, _optimizer(config.learning_rate).init(params), pool,
                          jnp.int32(1), jnp.float32(0.0))


def _take(tree, index):
    return jax.tree_util.tree_map(lambda x: x[index], tree)


def _play(key, params, opponent, config: ReinforceConfig):
    """Learner vs opponent, ``games / 2`` with each colour; returns the learner's positions,
    moves and alive flags ``[T, G/2]`` and its return ``[2, G/2]`` (group 0: learner Black)."""
    module = make_apprentice(config.network)
    n, half = config.board_size, config.games // 2
    start = broadcast_state(hex.init(n), (2, half))

    def policy(p, states, k):
        logits, _ = module.apply(p, jax.vmap(hex.features)(states))
        dist = masked_policy(logits, jax.vmap(hex.legal_mask)(states), config.temperature)
        return dist.sample(seed=k).astype(jnp.int32)

    def ply(states, xs):
        t, k = xs
        k_l, k_o = jax.random.split(k)
        mine = t % 2  # the learner moves in group 0 at even plies (Black) and group 1 at odd
        learner_states, other_states = _take(states, mine), _take(states, 1 - mine)
        a_l = policy(params, learner_states, k_l)
        a_o = policy(opponent, other_states, k_o)
        new_l = jax.vmap(hex.play)(learner_states, a_l)
        new_o = jax.vmap(hex.play)(other_states, a_o)
        stacked = jax.tree_util.tree_map(
            lambda x, y: jnp.where(mine == 0, jnp.stack([x, y]), jnp.stack([y, x])), new_l, new_o)
        alive_moves = jnp.sum(~learner_states.done) + jnp.sum(~other_states.done)
        return stacked, (learner_states, a_l, ~learner_states.done, alive_moves)

    plies = jnp.arange(n * n)
    final, (states, actions, alive, moves) = jax.lax.scan(
        ply, start, (plies, jax.random.split(key, n * n)))
    winner = jax.vmap(jax.vmap(hex.winner))(final)                     # [2, G/2]
    learner_colour = jnp.arange(2)[:, None]
    returns = jnp.where(winner == learner_colour, 1.0, -1.0)
    return states, actions, alive, returns, jnp.sum(moves)


def reinforce_step(key, state: ReinforceState, step,
                   config: ReinforceConfig) -> tuple[ReinforceState, ReinforceInfo]:
    """One policy-gradient update from a batch of games against a pool opponent.

    Args:
      key: PRNG key (the opponent and the games).
      state: :class:`ReinforceState`.
      step: ``int32[]`` updates done so far (a snapshot joins the pool after every
        ``snapshot_every``-th update).
      config: :class:`ReinforceConfig`.

    Returns:
      ``(state, info)``: the new :class:`ReinforceState` and a :class:`ReinforceInfo`.

    Raises:
      ValueError: ``key`` is not a PRNG key; ``config`` is not a :class:`ReinforceConfig`;
        ``step`` not an integer scalar; eagerly, a negative ``step`` (under ``jit`` the
        info's loss is NaN).
    """
    threefry.check_key(key)
    _check_config(config)
    step = jnp.asarray(step)
    checks.require(step.ndim == 0 and jnp.issubdtype(step.dtype, jnp.integer),
                   f"step must be an integer scalar; got {step.dtype}{list(step.shape)}")
    checks.raise_if_concrete(lambda s: s < 0, f"step must be >= 0; got {step}", step)
    step_ok = step >= 0
    module = make_apprentice(config.network)
    key_pick, key_play = jax.random.split(key)
    available = jnp.minimum(state.pool_count, config.pool_size)
    opponent = _take(state.pool, jax.random.randint(key_pick, (), 0, available))
    states, actions, alive, returns, moves = _play(key_play, state.params, opponent, config)
    num_plies = actions.shape[0]
    group = jnp.arange(num_plies) % 2
    ret = returns[group]                                               # [T, G/2]
    advantage = ret - jnp.mean(returns)
    flat = jax.tree_util.tree_map(lambda x: x.reshape((-1,) + x.shape[2:]), states)
    features = jax.vmap(hex.features)(flat)
    legal = jax.vmap(hex.legal_mask)(flat)
    weight = (alive * advantage).reshape(-1)

    def loss_fn(p):
        logits, _ = module.apply(p, features)
        log_prob = masked_policy(logits, legal, config.temperature).log_prob(
            actions.reshape(-1))
        l2 = sum(jnp.sum(w ** 2) for w in jax.tree_util.tree_leaves(p) if w.ndim > 1)
        return -jnp.sum(weight * log_prob) / config.games + config.l2 * l2

    loss, grads = jax.value_and_grad(loss_fn)(state.params)
    updates, opt_state = _optimizer(config.learning_rate).update(grads, state.opt_state,
                                                                 state.params)
    params = optax.apply_updates(state.params, updates)
    snap = (step + 1) % config.snapshot_every == 0
    slot = jnp.where(snap, state.pool_count % config.pool_size, config.pool_size)
    pool = jax.tree_util.tree_map(lambda pl, p: pl.at[slot].set(p, mode="drop"), state.pool,
                                  params)
    new = ReinforceState(params, opt_state, pool, state.pool_count + snap.astype(jnp.int32),
                         state.evaluations + moves.astype(jnp.float32))
    return new, ReinforceInfo(jnp.where(step_ok, loss, jnp.nan), jnp.mean(returns > 0),
                              moves.astype(jnp.float32) / config.games)
