"""Random weight guessing (the control of Hochreiter & Schmidhuber, NIPS 9)."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from jaxpapers._src.checks import require_positive_int_field
from jaxpapers.moving_targets._model import free_run_error
from jaxpapers.moving_targets._trainers._base import Trainer

__all__ = ["RandomSearch", "init", "step"]


@dataclasses.dataclass(frozen=True)
class RandomSearch(Trainer):
    """Random weight guessing (the control of Hochreiter & Schmidhuber, NIPS 9).

    ``batch`` candidates ``W ~ U[-scale, scale]`` per iteration, each scored by its free-run
    error on the evaluation events (one evaluation each); the best so far is kept. It never
    stalls (no restarts).

    Attributes:
      scale: half-width of the uniform weight draw, ``> 0``.
      batch: candidates per iteration.

    Raises:
      ValueError: ``scale`` not ``> 0``; ``batch`` not a positive int.
    """

    scale: float = 10.0
    batch: int = 50

    restartable = False

    def __post_init__(self):
        if not self.scale > 0:
            raise ValueError(f"RandomSearch.scale must be > 0; got {self.scale}")
        require_positive_int_field("RandomSearch", "batch", self.batch)

    def init_opt(self, key, spec, activation, weights=None, targets=None):
        return init(key, spec, self, activation, weights, targets)

    def advance(self, key, state, spec, budget, activation):
        return step(key, state, spec, self, budget, activation)


def init(key, spec, method: RandomSearch, activation, weights=None, targets=None):
    """No candidate yet: zero weights and the largest float as the best error."""
    dtype = spec.value.dtype
    n = spec.kind.shape[-1]
    W = jnp.zeros((n, n), dtype)
    big = jnp.asarray(jnp.finfo(dtype).max, dtype)
    return big, W, big, jnp.int32(0)


def step(key, state, spec, method: RandomSearch, budget, activation):
    """``batch`` candidates (never beyond the budget); each free run counts as one evaluation."""
    remaining = budget.evaluations - state.evals
    n = spec.kind.shape[-1]
    dtype = spec.value.dtype
    cands = jax.random.uniform(key, (method.batch, n, n), dtype, -method.scale, method.scale)
    errors = jax.vmap(lambda W: free_run_error(W, spec, None, activation))(cands)
    take = jnp.arange(method.batch) < remaining
    errors = jnp.where(take, errors, jnp.inf)
    best = jnp.argmin(errors)
    better = errors[best] < state.opt
    W = jnp.where(better, cands[best], state.weights)
    err = jnp.minimum(errors[best], state.opt)
    return err, W, err, jnp.minimum(method.batch, remaining).astype(jnp.int32)
