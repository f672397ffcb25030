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

__all__ = ["Budget", "Trainer", "TrainState", "TrainInfo", "INITS", "non_negative",
           "check_init", "initial_weights", "initial_targets", "start_targets", "select"]

INITS = ("free_run", "normal", "constant")


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

    Raises:
      ValueError: ``evaluations`` or ``check_every`` not a positive int; ``threshold`` not
        ``> 0``; ``tolerance`` outside ``[0, 1)``.
    """

    evaluations: int = 10_000
    threshold: float = 0.1
    tolerance: float = 1e-6
    check_every: int = 10
    stop_on_success: bool = True
    restarts: bool = False

    def __post_init__(self):
        require_positive_int_field("Budget", "evaluations", self.evaluations)
        require_positive_int_field("Budget", "check_every", self.check_every)
        if not 0 < self.threshold:
            raise ValueError(f"Budget.threshold must be > 0; got {self.threshold}")
        if not 0 <= self.tolerance < 1:
            raise ValueError(f"Budget.tolerance must be in [0, 1); got {self.tolerance}")

    def succeeded(self, error):
        """Whether a free-run error counts as a success.

        Args:
          error: float array of free-run errors.

        Returns:
          bool array like ``error``: ``error < threshold * (1 - tolerance)``.

        >>> bool(Budget().succeeded(0.05)), bool(Budget().succeeded(0.1))
        (True, False)
        """
        return error < self.threshold * (1.0 - self.tolerance)


class TrainState(NamedTuple):
    """One seed's training state; every leaf keeps its shape and dtype from step to step.

    Attributes:
      opt: the minimiser's state (random search: the best error so far).
      weights: float ``[N, N]`` current network weights.
      loss: float ``[]`` current objective value.
      iteration: ``int32[]`` iterations done.
      evals: ``int32[]`` gradient evaluations used.
      free_run_error: float ``[]`` at the last check (at init: on the training events).
      success: ``bool[]`` a check succeeded.
      evals_to_success: ``int32[]`` evaluations at the first success, -1 until then.
      restarts: ``int32[]`` restarts after stalls.
      done: ``bool[]`` the seed is finished (success, budget spent or stalled).
    """

    opt: Any
    weights: jax.Array
    loss: jax.Array
    iteration: jax.Array
    evals: jax.Array
    free_run_error: jax.Array
    success: jax.Array
    evals_to_success: jax.Array
    restarts: jax.Array
    done: jax.Array


class TrainInfo(NamedTuple):
    """What one step reports.

    Attributes:
      loss: float ``[]`` the objective after the step (NaN for a bad spec under ``jit``).
      evals: ``int32[]`` evaluations used by this step (0 for a finished state).
    """

    loss: jax.Array
    evals: jax.Array


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
