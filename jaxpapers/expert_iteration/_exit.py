"""Online Expert Iteration (Anthony et al. 2017, Algorithm 1): one run's kernels.

One ExIt iteration is: apprentice self-play -> a few sampled states per game -> the expert
(N-MCTS guided by the apprentice) labels them -> the labels join an aggregated dataset -> the
apprentice is trained on it (warm-started) -> the new apprentice defines the next expert.

Everything here is a pure function of one run (one seed); the reproduction maps them over runs
and drives the iterations (checkpoints, progress). Shapes are fixed: each *chunk* is ``games``
self-play games and ``games * positions_per_game`` labelled states, and the dataset is a ring
buffer of fixed ``capacity``, so nothing recompiles as the data grows.

Dataset aggregation (spec Sec. 4, the paper's Sec. 6.1 variants):

* ``"buffer"``: one chunk per iteration; train on the latest ``capacity`` states;
* ``"exponential"``: keep all the data (``capacity`` bounds it) and let the dataset grow by the
  fraction ``growth`` per iteration: each iteration adds ``max(1, ceil(growth * size / chunk))``
  chunks. The paper's variant grows by 10% from a large imitation dataset; started from nothing,
  ours adds one chunk per iteration until ``growth * size`` exceeds a chunk.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxpapers._src import checks, threefry
from jaxpapers._src.checks import require_positive_int_field
from jaxpapers.expert_iteration import hex
from jaxpapers.expert_iteration._network import (
    ApprenticeConfig,
    imitation_loss,
    make_apprentice,
    network_evaluator,
)
from jaxpapers.expert_iteration._search import (
    SearchConfig,
    chosen_action_target,
    tree_policy_target,
)
from jaxpapers.expert_iteration._selfplay import (
    Positions,
    label_positions,
    sample_positions,
    self_play,
)

__all__ = ["ExItConfig", "ExItState", "ExItInfo", "init_exit", "generate_positions",
           "add_positions", "exit_step", "chunks_for_iteration", "train_steps_for_iteration"]

DATASETS = ("buffer", "exponential")
TARGETS = ("tpt", "cat")


@dataclasses.dataclass(frozen=True)
class ExItConfig:
    """Settings of online ExIt.

    Attributes:
      board_size: ``n``.
      network: :class:`ApprenticeConfig`.
      search: the expert's :class:`SearchConfig` (the default, ``w_a = S / n^2`` with
        temperature 1 and unvisited edges first, is the first expert, which the prior barely
        steered; the reproduction's scales use the settings its sweep chose).
      games: self-play games per chunk.
      positions_per_game: states sampled per game (the paper: 1 at scale; a few on small boards).
      dataset: ``"buffer"`` or ``"exponential"`` (see the module docstring).
      capacity: ring-buffer size (positions).
      growth: dataset growth per iteration of the exponential variant (the paper's 10%).
      target: ``"tpt"`` (tree-policy target, the visit distribution) or ``"cat"`` (chosen-action
        target, one-hot of the most visited move).
      target_temperature: TPT sharpening ``n^(1/T)`` (1: the paper's target; CAT is the
        limit ``T -> 0``).
      value_loss_weight: weight of the value head's loss (0: policy only, as in the paper's
        ExIt-vs-REINFORCE comparison).
      batch_size: minibatch size.
      epochs: passes over the current dataset per iteration; the steps are rounded up to a
        multiple of ``step_chunk`` and capped at ``max_train_steps``.
      step_chunk: optimiser steps per compiled scan.
      max_train_steps: cap on the steps of one iteration.
      learning_rate: Adam's step size (the paper: Adam, settings not recovered).
      l2: L2 penalty on the weights (spec: 1e-4, inferred).
      selfplay_temperature: temperature of the apprentice's sampled self-play moves.
      augment: random 180-degree rotations of training states.

    Raises:
      ValueError: a size not a positive int; ``positions_per_game > 2 * board_size - 1``; an
        unknown ``dataset`` or ``target``; ``capacity`` below one chunk; ``growth``,
        ``value_loss_weight`` or ``l2`` negative; ``epochs``, ``learning_rate`` or a
        temperature not ``> 0``.
    """

    board_size: int = 5
    network: ApprenticeConfig = ApprenticeConfig()
    search: SearchConfig = SearchConfig(num_simulations=64, prior_weight=64 / 25)
    games: int = 64
    positions_per_game: int = 6
    dataset: str = "exponential"
    capacity: int = 4096
    growth: float = 0.1
    target: str = "tpt"
    target_temperature: float = 1.0
    value_loss_weight: float = 0.0
    batch_size: int = 128
    epochs: float = 20.0
    step_chunk: int = 50
    max_train_steps: int = 600
    learning_rate: float = 1e-3
    l2: float = 1e-4
    selfplay_temperature: float = 1.0
    augment: bool = True

    def __post_init__(self):
        for name in ("board_size", "games", "positions_per_game", "capacity", "batch_size",
                     "step_chunk", "max_train_steps"):
            require_positive_int_field("ExItConfig", name, getattr(self, name))
        if self.positions_per_game > 2 * self.board_size - 1:
            raise ValueError(f"ExItConfig.positions_per_game must be <= 2 * board_size - 1 = "
                             f"{2 * self.board_size - 1}; got {self.positions_per_game}")
        if self.dataset not in DATASETS:
            raise ValueError(f"ExItConfig.dataset must be one of {DATASETS}; got "
                             f"{self.dataset!r}")
        if self.target not in TARGETS:
            raise ValueError(f"ExItConfig.target must be one of {TARGETS}; got {self.target!r}")
        if self.chunk_size > self.capacity:
            raise ValueError(f"ExItConfig.capacity ({self.capacity}) must hold one chunk of "
                             f"games * positions_per_game = {self.chunk_size} positions")
        for name in ("growth", "value_loss_weight", "l2"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"ExItConfig.{name} must be >= 0; got {getattr(self, name)}")
        for name in ("epochs", "learning_rate", "target_temperature", "selfplay_temperature"):
            if not getattr(self, name) > 0:
                raise ValueError(f"ExItConfig.{name} must be > 0; got {getattr(self, name)}")

    @property
    def chunk_size(self) -> int:
        """Positions labelled per chunk."""
        return self.games * self.positions_per_game


class ExItState(NamedTuple):
    """One run's ExIt state (what a checkpoint holds, with the iteration counter).

    Attributes:
      params: apprentice parameters (a Flax variable dict).
      opt_state: Adam's state.
      buffer: :class:`~jaxpapers.expert_iteration.selfplay.Positions` ``[capacity]`` (the ring
        buffer).
      count: ``int32[]`` positions written so far (``min(count, capacity)`` are valid).
      evaluations: ``float32[]`` network evaluations spent so far (self-play + expert).
    """

    params: Any
    opt_state: Any
    buffer: Positions
    count: jax.Array
    evaluations: jax.Array


class ExItInfo(NamedTuple):
    """What one :func:`exit_step` reports (each ``float32[]``; NaN for a negative ``count``).

    Attributes:
      loss: the minimised loss (policy + weighted value + L2 penalty).
      policy_loss: the cross-entropy to the expert's target.
      value_loss: the value head's binary cross-entropy.
    """

    loss: jax.Array
    policy_loss: jax.Array
    value_loss: jax.Array


@functools.lru_cache(maxsize=16)
def _optimizer(learning_rate: float):
    return optax.adam(learning_rate)


def _check_config(config) -> None:
    if not isinstance(config, ExItConfig):
        raise ValueError(f"config must be an ExItConfig; got {type(config).__name__}")


def init_exit(key, config: ExItConfig) -> ExItState:
    """A fresh apprentice (random weights), Adam's state and an empty buffer.

    Args:
      key: PRNG key of the network's initial weights.
      config: :class:`ExItConfig`.

    Returns:
      :class:`ExItState` with a zero ``count`` and ``evaluations`` and a ``buffer`` of
      ``capacity`` empty positions (``visit_counts int32[capacity, n * n]``).

    Raises:
      ValueError: ``key`` is not a PRNG key; ``config`` is not an :class:`ExItConfig`.
    """
    threefry.check_key(key)
    _check_config(config)
    n = config.board_size
    module = make_apprentice(config.network)
    params = module.init(key, jnp.zeros((1, n, n, hex.NUM_FEATURES), jnp.float32))
    empty = jax.tree_util.tree_map(lambda x: jnp.zeros((config.capacity,) + x.shape, x.dtype),
                                   hex.init(n))
    buffer = Positions(empty, jnp.zeros((config.capacity, n * n), jnp.int32),
                       jnp.zeros(config.capacity, jnp.float32))
    return ExItState(params, _optimizer(config.learning_rate).init(params), buffer,
                     jnp.int32(0), jnp.float32(0.0))


def generate_positions(key, params: Any, config: ExItConfig) -> tuple[Positions, jax.Array]:
    """One chunk: self-play of the apprentice, sampled states, expert labels.

    Args:
      key: PRNG key (split into the games, the sampled plies and the searches).
      params: the apprentice's parameters (the expert searches with it as its prior).
      config: :class:`ExItConfig` (``games``, ``positions_per_game``, ``search``, ...).

    Returns:
      ``(positions, evaluations)``: :class:`~jaxpapers.expert_iteration.selfplay.Positions`
      ``[games * positions_per_game]`` with the expert's visit counts, and ``float32[]``
      network evaluations spent (self-play moves + the expert's evaluator calls).

    Raises:
      ValueError: ``key`` is not a PRNG key; ``config`` is not an :class:`ExItConfig`.
    """
    threefry.check_key(key)
    _check_config(config)
    module = make_apprentice(config.network)
    key_play, key_pick, key_label = jax.random.split(key, 3)
    games = self_play(key_play, params, module.apply, config.board_size, config.games,
                      config.selfplay_temperature)
    positions = sample_positions(key_pick, games, config.positions_per_game)
    positions, expert_evals = label_positions(key_label, positions, params,
                                              network_evaluator(module), config.search)
    evaluations = jnp.sum(games.alive).astype(jnp.float32) + expert_evals.astype(jnp.float32)
    return positions, evaluations


def add_positions(state: ExItState, positions: Positions, evaluations) -> ExItState:
    """Write a chunk into the ring buffer (overwriting the oldest entries when full).

    Args:
      state: :class:`ExItState`.
      positions: :class:`~jaxpapers.expert_iteration.selfplay.Positions` ``[M]`` of the
        buffer's board size (``M <= capacity``).
      evaluations: ``float32[]`` network evaluations the chunk cost (added to the state's).

    Returns:
      :class:`ExItState` with ``count`` advanced by ``M``.

    Raises:
      ValueError: ``positions`` of another board size; eagerly, ``evaluations`` not finite or
        negative (under ``jit`` the state's ``evaluations`` become NaN).
    """
    for name in ("visit_counts", "value_target"):
        got, want = getattr(positions, name).shape[1:], getattr(state.buffer, name).shape[1:]
        checks.require(got == want, f"positions.{name} must have trailing shape {want} (the "
                                    f"buffer's board); got {got}")
    checks.require(positions.states.board.shape[1:] == state.buffer.states.board.shape[1:],
                   f"positions must be of the buffer's board size; got boards of shape "
                   f"{positions.states.board.shape[1:]}")
    evaluations = jnp.asarray(evaluations, jnp.float32)
    checks.raise_if_concrete(lambda e: ~(jnp.isfinite(e) & (e >= 0)),
                             f"evaluations must be finite and >= 0; got {evaluations}",
                             evaluations)
    evaluations = jnp.where(jnp.isfinite(evaluations) & (evaluations >= 0), evaluations,
                            jnp.nan)
    capacity = state.buffer.value_target.shape[0]
    size = positions.value_target.shape[0]
    slots = (state.count + jnp.arange(size)) % capacity
    buffer = jax.tree_util.tree_map(lambda b, x: b.at[slots].set(x), state.buffer, positions)
    return state._replace(buffer=buffer, count=state.count + size,
                          evaluations=state.evaluations + evaluations)


def _targets(visit_counts, config: ExItConfig):
    if config.target == "cat":
        return chosen_action_target(visit_counts)
    return tree_policy_target(visit_counts, config.target_temperature)


def _l2(params):
    return sum(jnp.sum(w ** 2) for w in jax.tree_util.tree_leaves(params) if w.ndim > 1)


def exit_step(key, state: ExItState, config: ExItConfig) -> tuple[ExItState, ExItInfo]:
    """One Adam step of the apprentice on a minibatch drawn uniformly from the valid part of
    the buffer (``config.augment``: each state rotated by 180 degrees with probability 1/2).

    Args:
      key: PRNG key (the minibatch and the rotations).
      state: :class:`ExItState`; its ``buffer`` and ``count`` are read, not changed.
      config: :class:`ExItConfig`.

    Returns:
      ``(state, info)``: the state with new ``params`` and ``opt_state``, and an
      :class:`ExItInfo`.

    Raises:
      ValueError: ``key`` is not a PRNG key; ``config`` is not an :class:`ExItConfig`; a
        buffer of another board size (``visit_counts`` not ``[capacity, n * n]``); ``count``
        not an integer scalar; eagerly, a negative ``count`` (under ``jit`` the info is NaN).
    """
    threefry.check_key(key)
    _check_config(config)
    module = make_apprentice(config.network)
    params, opt_state, buffer, count = state.params, state.opt_state, state.buffer, state.count
    capacity = buffer.value_target.shape[0]
    n = config.board_size
    checks.require(buffer.visit_counts.shape == (capacity, n * n),
                   f"buffer.visit_counts must be [capacity, n * n] = {(capacity, n * n)}; got "
                   f"{buffer.visit_counts.shape}")
    count = jnp.asarray(count)
    checks.require(count.ndim == 0 and jnp.issubdtype(count.dtype, jnp.integer),
                   f"count must be an integer scalar; got {count.dtype}{list(count.shape)}")
    checks.raise_if_concrete(lambda c: c < 0, f"count must be >= 0; got {count}", count)
    count_ok = count >= 0
    key_pick, key_rot = jax.random.split(key)
    valid = jnp.maximum(jnp.minimum(count, capacity), 1)
    index = jax.random.randint(key_pick, (config.batch_size,), 0, valid)
    batch = jax.tree_util.tree_map(lambda x: x[index], buffer)
    states, counts = batch.states, batch.visit_counts
    if config.augment:
        turn = jax.random.bernoulli(key_rot, 0.5, (config.batch_size,))
        rotate = lambda x: jnp.where(turn[:, None, None], x[:, ::-1, ::-1], x)
        states = states._replace(board=rotate(states.board), labels=rotate(states.labels))
        counts = jnp.where(turn[:, None], counts[:, ::-1], counts)
    features = jax.vmap(hex.features)(states)
    legal = jax.vmap(hex.legal_mask)(states)
    targets = _targets(counts, config)
    weight = (jnp.sum(counts, axis=-1) > 0).astype(jnp.float32)

    def loss_fn(p):
        logits, value_logit = module.apply(p, features)
        loss, parts = imitation_loss(logits, value_logit, legal, targets, batch.value_target,
                                     weight, config.value_loss_weight)
        return loss + config.l2 * _l2(p), parts

    (loss, (policy_loss, value_loss)), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
    updates, opt_state = _optimizer(config.learning_rate).update(grads, opt_state, params)
    params = optax.apply_updates(params, updates)
    nan = lambda v: jnp.where(count_ok, v, jnp.nan)  # noqa: E731
    return state._replace(params=params, opt_state=opt_state), ExItInfo(
        nan(loss), nan(policy_loss), nan(value_loss))


def chunks_for_iteration(config: ExItConfig, count: int) -> int:
    """Chunks to generate in an iteration that starts with ``count`` positions written."""
    if config.dataset == "buffer":
        return 1
    size = min(count, config.capacity)
    return max(1, math.ceil(config.growth * size / config.chunk_size))


def train_steps_for_iteration(config: ExItConfig, count: int) -> int:
    """Optimiser steps of an iteration whose dataset holds ``count`` written positions:
    ``epochs`` passes, rounded up to a multiple of ``step_chunk``, capped."""
    size = min(count, config.capacity)
    steps = math.ceil(config.epochs * size / config.batch_size)
    steps = config.step_chunk * max(1, math.ceil(steps / config.step_chunk))
    return min(steps, max(config.step_chunk,
                          config.step_chunk * (config.max_train_steps // config.step_chunk)))
