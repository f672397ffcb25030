"""The training driver of one seed: ``init``, ``step``, the free-run check ``evaluate``, and
``train`` (a ``lax.while_loop`` of blocks of ``budget.check_every`` steps and one check, until
success, a stall or the spent budget), over any trainer of
:mod:`jaxpapers.moving_targets._trainers`. Each trainer's own module supplies its ``init`` and
``step``; this driver never dispatches on the trainer's type. ``vmap`` over keys for many seeds.

Budget unit: gradient evaluations (``value_and_grad`` calls, line-search trials included). The
alternating trainer counts each exact weight solve (with the evaluation that restarts the search)
as one; random search counts each candidate's free run as one.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxpapers._src import threefry
from jaxpapers.moving_targets._events import (
    HIDDEN,
    EventSpec,
    nan_unless,
    require_finite_targets,
    validate_events,
)
from jaxpapers.moving_targets._model import compose, free_run_error, inputs_ok, one_step_error
from jaxpapers.moving_targets._trainers import (
    BPTT,
    Budget,
    Hybrid,
    MTAlternating,
    MTJoint,
    MTShooting,
    MTVarpro,
    RandomSearch,
    Trainer,
    TrainInfo,
    TrainState,
)
from jaxpapers.moving_targets._trainers._base import INITS, select

__all__ = ["Budget", "MTVarpro", "MTJoint", "MTAlternating", "MTShooting", "BPTT",
           "RandomSearch", "Hybrid", "TrainState", "TrainInfo", "TrainSummary", "init", "step",
           "evaluate", "train", "summarize", "INITS"]


class TrainSummary(NamedTuple):
    """What a run ended with (:func:`summarize`).

    Attributes:
      success: ``bool[]`` a free-run check succeeded.
      evals: ``int32[]`` evaluations used.
      evals_to_success: ``int32[]`` evaluations at the first success, -1 without one.
      free_run_error: float ``[]`` on the evaluation events.
      one_step_error: float ``[]`` from the state's moving targets.
      max_abs_weight: float ``[]`` largest ``|W[i, j]|``.
      loss: float ``[]`` the last objective value.
      restarts: ``int32[]`` restarts after stalls.
    """

    success: jax.Array
    evals: jax.Array
    evals_to_success: jax.Array
    free_run_error: jax.Array
    one_step_error: jax.Array
    max_abs_weight: jax.Array
    loss: jax.Array
    restarts: jax.Array


def moving_targets_of(state: TrainState, spec: EventSpec, method, activation="logistic"):
    """The hidden activations a state stands for.

    Args:
      state: :class:`TrainState` of ``method``.
      spec: :class:`~jaxpapers.moving_targets.EventSpec` ``[S, T, N]``.
      method: the trainer config (a :class:`Hybrid`'s state is its second trainer's).
      activation: ``"logistic"`` or ``"tanh"``.

    Returns:
      float ``[S, T, N]``: the moving targets of a moving-targets trainer; the free-run
      activations of the weights otherwise.

    Raises:
      ValueError: ``method`` is not a trainer config; eagerly, a bad ``spec``. Under ``jit``
        a bad spec gives NaN.
    """
    _check_method(method, hybrid_ok=True)
    ok = inputs_ok(spec, activation)
    if isinstance(method, Hybrid):
        method = method.second
    return nan_unless(ok, method.targets_of(state, spec, activation))


def _check_method(method, hybrid_ok: bool = False) -> None:
    if hybrid_ok and isinstance(method, Hybrid):
        return
    if not isinstance(method, Trainer):
        raise ValueError(f"method must be a trainer config (MTVarpro, MTJoint, MTAlternating, "
                         f"MTShooting, BPTT, RandomSearch); got {type(method).__name__}"
                         + (" (a Hybrid runs through train())" if isinstance(method, Hybrid)
                            else ""))


def init(key, spec: EventSpec, method, *, weights=None, targets=None, evals=0,
         activation: str = "logistic") -> TrainState:
    """The initial state of one seed (one evaluation of the objective).

    Args:
      key: PRNG key of the random initial weights / moving targets.
      spec: the training events.
      method: a trainer config.
      weights: start from these weights (BPTT, MTJoint, MTShooting; the hybrid's second phase).
      targets: start the moving targets here (``[S, T, N]`` activations, read on hidden events).
      evals: evaluations already spent (carried into the count).
      activation: ``"logistic"`` or ``"tanh"``.

    Returns:
      :class:`TrainState` with ``weights [N, N]`` of the spec's dtype.

    Raises:
      ValueError: ``key`` is not a PRNG key; ``method`` is not a trainer config (a
        :class:`Hybrid` runs through :func:`train`); a concrete ``spec`` with a kind outside
        ``{0, 1, 2}``, a non-finite datum or a value outside the range of ``f``
        (:func:`~jaxpapers.moving_targets.tasks.validate_events`); an activation-space trainer
        (``MTVarpro``, ``MTAlternating``, ``MTJoint(space="activation")``) given target
        outputs on the boundary of the range, whose activations are infinite.
    """
    threefry.check_key(key)
    _check_method(method)
    validate_events(spec, activation)
    if method.activation_space:
        require_finite_targets(spec, activation, f"{type(method).__name__} (activation space)")
    dtype = spec.value.dtype
    opt, W, loss, used = method.init_opt(key, spec, activation, weights, targets)
    err = free_run_error(W, spec, None, activation).astype(dtype)
    loss = nan_unless(inputs_ok(spec, activation), loss)
    return TrainState(opt, W, loss, jnp.int32(0), jnp.int32(evals) + used, err,
                      jnp.asarray(False), jnp.int32(-1), jnp.int32(0), jnp.asarray(False))


def step(key, state: TrainState, spec: EventSpec, method, budget: Budget = Budget(), *,
         activation: str = "logistic") -> tuple[TrainState, TrainInfo]:
    """One iteration of ``method``.

    A finished state (done, stalled, or budget spent) comes back unchanged with zero
    evaluations in its info.

    Args:
      key: PRNG key of the iteration (random search draws with it).
      state: :class:`TrainState` from :func:`init` or an earlier step.
      spec: :class:`~jaxpapers.moving_targets.EventSpec` ``[S, T, N]``.
      method: the trainer config of ``state``.
      budget: :class:`Budget` (the cap on evaluations).
      activation: ``"logistic"`` or ``"tanh"``.

    Returns:
      ``(state, info)``: the new :class:`TrainState` and a :class:`TrainInfo`.

    Raises:
      ValueError: ``key`` is not a PRNG key; ``method`` is not a trainer config; eagerly, a
        bad ``spec``. Under ``jit`` a bad spec makes the new loss NaN.
    """
    threefry.check_key(key)
    _check_method(method)
    ok = inputs_ok(spec, activation)
    stalled = getattr(state.opt, "stalled", jnp.asarray(False))
    active = ~state.done & (state.evals < budget.evaluations) & ~stalled

    def advance(state):
        opt, W, loss, used = method.advance(key, state, spec, budget, activation)
        return state._replace(opt=opt, weights=W, loss=loss, iteration=state.iteration + 1,
                              evals=state.evals + used), used

    # a real branch for one seed (no wasted evaluations); under vmap it becomes a select
    new, used = jax.lax.cond(active, advance, lambda st: (st, jnp.int32(0)), state)
    new = new._replace(loss=nan_unless(ok, new.loss))
    return new, TrainInfo(new.loss, used.astype(jnp.int32))


def evaluate(key, state: TrainState, spec: EventSpec, method, budget: Budget = Budget(), *,
             eval_spec: EventSpec | None = None, activation: str = "logistic") -> TrainState:
    """The free-run check of a state.

    Records the free-run error, success (:meth:`Budget.succeeded` on ``eval_spec``) and the
    evaluations it took; marks the seed done when it succeeded (``stop_on_success``), spent its
    budget, or stalled (unless ``budget.restarts``: then a stalled, unsuccessful seed restarts
    from ``key``).

    Args:
      key: PRNG key of a restart.
      state: :class:`TrainState`.
      spec: the training events.
      method: the trainer config of ``state``.
      budget: :class:`Budget`.
      eval_spec: the events success is judged on (default ``spec``).
      activation: ``"logistic"`` or ``"tanh"``.

    Returns:
      the updated :class:`TrainState`.

    Raises:
      ValueError: ``key`` is not a PRNG key; ``method`` is not a trainer config; eagerly, a
        bad ``spec``. Under ``jit`` a bad spec makes the error NaN (never a success).
    """
    threefry.check_key(key)
    _check_method(method)
    eval_spec = spec if eval_spec is None else eval_spec
    inputs_ok(spec, activation)  # a bad spec raises eagerly; under jit the error below is NaN
    state = state._replace(weights=method.weights_at_check(state, spec, activation))
    err = nan_unless(inputs_ok(spec, activation),
                     free_run_error(state.weights, eval_spec, None, activation))
    ok = budget.succeeded(err)
    first = ok & ~state.success
    evals_to_success = jnp.where(first, state.evals, state.evals_to_success)
    success = state.success | ok
    stalled = getattr(state.opt, "stalled", jnp.asarray(False))
    spent = state.evals >= budget.evaluations
    finished = (success & budget.stop_on_success) | spent
    if budget.restarts and method.restartable:
        restart = stalled & ~finished & ~state.done
        opt, W, loss, used = method.init_opt(key, spec, activation)
        fresh = state._replace(opt=opt, weights=W, loss=loss, evals=state.evals + used,
                               restarts=state.restarts + 1)
        state = select(restart, fresh, state)
    else:
        finished = finished | stalled
    done = state.done | finished
    return state._replace(free_run_error=err.astype(state.free_run_error.dtype), success=success,
                          evals_to_success=evals_to_success, done=done)


def block(key, state: TrainState, spec: EventSpec, method, budget: Budget, eval_spec=None,
          activation: str = "logistic") -> tuple[TrainState, TrainInfo]:
    """``budget.check_every`` steps, then one :func:`evaluate` (the unit of ``train`` and of the
    runner's checkpointed loop). Step ``i`` uses ``fold_in(key, i)``."""

    def one(i, carry):
        st, used = carry
        st, info = step(jax.random.fold_in(key, i), st, spec, method, budget,
                        activation=activation)
        return st, used + info.evals

    state, used = jax.lax.fori_loop(0, budget.check_every, one, (state, jnp.int32(0)))
    state = evaluate(jax.random.fold_in(key, budget.check_every), state, spec, method, budget,
                     eval_spec=eval_spec, activation=activation)
    return state, TrainInfo(state.loss, used)


def _train_one(key, spec, method, budget, eval_spec, activation, state):
    def cond(carry):
        return ~carry[1].done

    def body(carry):
        i, st = carry
        st, _ = block(jax.random.fold_in(key, i), st, spec, method, budget, eval_spec,
                      activation)
        return i + 1, st

    return jax.lax.while_loop(cond, body, (jnp.int32(0), state))[1]


def train(key, spec: EventSpec, method, budget: Budget = Budget(), *,
          eval_spec: EventSpec | None = None, activation: str = "logistic") -> TrainState:
    """Train one seed until success (``stop_on_success``), a stall, or the budget is spent.

    ``key`` is split into the initialisation key and the loop key; block ``b`` of the loop uses
    ``fold_in(loop_key, b)`` (``check_every`` steps, then :func:`evaluate`). A :class:`Hybrid`
    runs its first trainer on ``fraction * evaluations``, then its second from the first
    trainer's weights on the rest (a seed that already succeeded stays done).

    Args:
      key: PRNG key of the seed.
      spec: the training events.
      method: a trainer config or a :class:`Hybrid`.
      budget: :class:`Budget`.
      eval_spec: the events success is judged on (default ``spec``).
      activation: ``"logistic"`` or ``"tanh"``.

    Returns:
      the final :class:`TrainState`.

    Raises:
      ValueError: as :func:`init`. Under ``jit`` a bad spec makes every error NaN.
    """
    threefry.check_key(key)
    _check_method(method, hybrid_ok=True)
    validate_events(spec, activation)
    k_init, k_loop = jax.random.split(key)
    if isinstance(method, Hybrid):
        state = init(k_init, spec, method.first, activation=activation)
        state = _train_one(k_loop, spec, method.first, method.first_budget(budget), eval_spec,
                           activation, state)
        return hybrid_continue(jax.random.fold_in(k_loop, 2**31 - 1), state, spec, method, budget,
                               eval_spec=eval_spec, activation=activation)
    state = init(k_init, spec, method, activation=activation)
    return _train_one(k_loop, spec, method, budget, eval_spec, activation, state)


def hybrid_start(state: TrainState, spec: EventSpec, method: Hybrid, budget: Budget, *,
                 activation: str = "logistic") -> TrainState:
    """The second trainer's state that continues a hybrid's finished first phase: from its
    weights, with its evaluations, success and (if it succeeded) done flag carried over."""
    second = init(jax.random.key(0), spec, method.second, weights=state.weights,
                  evals=state.evals, activation=activation)
    done = state.success & budget.stop_on_success
    return second._replace(success=state.success, evals_to_success=state.evals_to_success,
                           free_run_error=state.free_run_error, done=done)


def hybrid_continue(key, state, spec, method: Hybrid, budget: Budget, *, eval_spec=None,
                    activation="logistic") -> TrainState:
    second = hybrid_start(state, spec, method, budget, activation=activation)
    return _train_one(key, spec, method.second, budget, eval_spec, activation, second)


def summarize(state: TrainState, spec: EventSpec, method, *, eval_spec: EventSpec | None = None,
              activation: str = "logistic") -> TrainSummary:
    """Free-run and one-step errors, the largest weight and the counts of a state.

    Args:
      state: :class:`TrainState` (usually from :func:`train`).
      spec: the training events.
      method: the trainer config (or :class:`Hybrid`) that produced ``state``.
      eval_spec: the events the free-run error is measured on (default ``spec``).
      activation: ``"logistic"`` or ``"tanh"``.

    Returns:
      :class:`TrainSummary`.

    Raises:
      ValueError: ``method`` is not a trainer config; eagerly, a bad ``spec``. Under ``jit``
        a bad spec makes the errors NaN.
    """
    _check_method(method, hybrid_ok=True)
    inputs_ok(spec, activation)
    eval_spec = spec if eval_spec is None else eval_spec
    Xh = moving_targets_of(state, spec, method, activation)
    W = state.weights
    return TrainSummary(
        success=state.success,
        evals=state.evals,
        evals_to_success=state.evals_to_success,
        free_run_error=free_run_error(W, eval_spec, None, activation),
        one_step_error=one_step_error(W, spec, jnp.where(spec.kind == HIDDEN, Xh, 0.0),
                                      activation),
        max_abs_weight=jnp.max(jnp.abs(W)),
        loss=state.loss,
        restarts=state.restarts,
    )


def compose_targets(state, spec, method, activation="logistic"):
    """``compose(spec, moving_targets_of(...))``: outputs and activations of every event."""
    return compose(spec, moving_targets_of(state, spec, method, activation), activation)


__all__ += ["block", "hybrid_start", "hybrid_continue", "moving_targets_of", "compose_targets"]
