"""What every trainer shares: the budget, the training state, the config validators, the
initial weights and moving targets, and the :class:`Trainer` interface.

A trainer is a frozen config dataclass whose module defines two pure functions, the shape of
one algorithm per module:

* ``init(key, spec, method, activation, weights=None, targets=None)`` ->
  ``(opt, weights, loss, evals)``: the minimiser state at the start of a run (or restart);
* ``step(key, state, spec, method, budget, activation)`` -> ``(opt, weights, loss, evals)``:
  one iteration, using at most the evaluations left in the budget.

The config class binds them (``Trainer.init_opt`` / ``Trainer.advance``) and says how its
parameters map to weights and moving targets, so the driver never dispatches on the type.
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jaxpapers._src import checks
from jaxpapers._src.checks import require_positive_int_field
from jaxpapers.moving_targets._events import HIDDEN, EventSpec
from jaxpapers.moving_targets._model import free_run, preacts

__all__ = ["Budget", "Trainer", "TrainState", "TrainInfo", "INITS", "positive_int",
           "non_negative", "check_init", "initial_weights", "initial_targets", "start_targets",
           "select"]

INITS = ("free_run", "normal", "constant")


positive_int = require_positive_int_field  # the shared check of a positive int setting


def non_negative(owner: str, name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
        raise ValueError(f"{owner}.{name} must be a number >= 0; got {value!r}")


def check_init(owner: str, init: str, init_scale: float) -> None:
    if init not in INITS:
        raise ValueError(f"{owner}.init must be one of {INITS}; got {init!r}")
    if not init_scale > 0:
        raise ValueError(f"{owner}.init_scale must be > 0; got {init_scale}")


@dataclasses.dataclass(frozen=True)
class Budget:
    """The protocol of one training run ([TT]: 10,000 gradient evaluations, success when the
    free-running network's max target error is below 0.1).

    Attributes:
      evaluations: the cap on gradient evaluations.
      threshold: success when the free-run max error on the evaluation events is below
        ``threshold * (1 - tolerance)``.
      tolerance: relative; an error within ``tolerance * threshold`` of the threshold is not a
        success: a saturated output sitting on the threshold (e.g. output 1e-12 on a target of
        0.1 at threshold 0.1, error 0.1 - 1e-12) must not pass by rounding.
      check_every: iterations between free-run checks (the resolution of evaluations-to-success).
      stop_on_success: a seed stops at its first successful check.
      restarts: a seed whose minimiser stalls without success restarts from a fresh draw (keeps
        its evaluation count) instead of stopping; off in the paper's protocol.
    """

    evaluations: int = 10_000
    threshold: float = 0.1
    tolerance: float = 1e-6
    check_every: int = 10
    stop_on_success: bool = True
    restarts: bool = False

    def __post_init__(self):
        positive_int("Budget", "evaluations", self.evaluations)
        positive_int("Budget", "check_every", self.check_every)
        if not 0 < self.threshold:
            raise ValueError(f"Budget.threshold must be > 0; got {self.threshold}")
        if not 0 <= self.tolerance < 1:
            raise ValueError(f"Budget.tolerance must be in [0, 1); got {self.tolerance}")

    def succeeded(self, error):
        """``error < threshold * (1 - tolerance)`` (a boolean array like ``error``)."""
        return error < self.threshold * (1.0 - self.tolerance)


class TrainState(NamedTuple):
    """One seed's training state; every leaf keeps its dtype from step to step."""

    opt: Any                     # the minimiser's MinState (random search: best error so far)
    weights: jax.Array           # [N, N] current network weights
    loss: jax.Array              # current objective value
    iteration: jax.Array         # int32
    evals: jax.Array             # int32 gradient evaluations used
    free_run_error: jax.Array    # at the last check (at init: on the training events)
    success: jax.Array           # bool
    evals_to_success: jax.Array  # int32, -1 until success
    restarts: jax.Array          # int32
    done: jax.Array              # bool


class TrainInfo(NamedTuple):
    loss: jax.Array
    evals: jax.Array             # int32 evaluations used by this step


class Trainer:
    """The interface the driver calls; each trainer's module supplies ``init`` and ``step``."""

    #: its error fits target activations (finite targets only)
    activation_space: bool = False
    #: a stalled seed may restart from a fresh draw
    restartable: bool = True

    def init_opt(self, key, spec: EventSpec, activation, weights=None, targets=None):
        raise NotImplementedError

    def advance(self, key, state: TrainState, spec: EventSpec, budget: Budget, activation):
        raise NotImplementedError

    def weights_at_check(self, state: TrainState, spec: EventSpec, activation):
        """The weights a free-run check judges (variable projection solves them here)."""
        return state.weights

    def targets_of(self, state: TrainState, spec: EventSpec, activation):
        """The hidden activations ``[S, T, N]`` a state stands for (default: the free-run
        activations of its weights)."""
        y = free_run(state.weights, spec, None, activation)
        return jnp.pad(preacts(state.weights, y), ((0, 0), (1, 0), (0, 0)))


def initial_weights(key, n: int, scale: float, dtype):
    """``N(0, scale^2)`` weights from the first half of ``key``: every trainer that starts from
    random weights (or from their free run) gets the same draw for the same key."""
    return scale * jax.random.normal(jax.random.split(key)[0], (n, n), dtype)


def initial_targets(key, spec: EventSpec, init: str, scale: float, activation):
    """Initial moving targets (activations) ``[S, T, N]``; zero on non-hidden slots."""
    dtype = spec.value.dtype
    k_w, k_x = jax.random.split(key)
    s, t, n = spec.kind.shape
    if init == "free_run":
        W0 = initial_weights(key, n, scale, dtype)
        y = free_run(W0, spec, None, activation)
        Xh = jnp.pad(preacts(W0, y), ((0, 0), (1, 0), (0, 0)))
    elif init == "normal":
        Xh = scale * jax.random.normal(k_x, (s, t, n), dtype)
    else:
        const = scale * jax.random.normal(k_w, (s, 1, n), dtype)
        Xh = const + 0.1 * jax.random.normal(k_x, (s, t, n), dtype)
    return jnp.where(spec.kind == HIDDEN, Xh, 0.0)


def start_targets(key, spec: EventSpec, method, activation, targets=None):
    """The moving targets a run starts from: ``targets`` (read on hidden events) or a draw."""
    if targets is None:
        return initial_targets(key, spec, method.init, method.init_scale, activation)
    checks.require(jnp.shape(targets) == spec.kind.shape,
                   f"init: targets must have the events' shape {spec.kind.shape}; got "
                   f"{jnp.shape(targets)}")
    return jnp.where(spec.kind == HIDDEN, jnp.asarray(targets, spec.value.dtype), 0.0)


def select(flag, a, b):
    return jax.tree.map(lambda u, v: jnp.where(flag, u, v), a, b)
