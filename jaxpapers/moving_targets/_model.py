"""The fully connected discrete-time network (Rohwer 1990, eq. 1) and how it is evaluated.

``x_{i,t} = sum_j W[i, j] y_{j,t-1}``, ``y = f(x)``: row ``i`` of ``W`` holds node ``i``'s incoming
weights (self-loops included); a bias node is an input node whose output is held at 1, so its
column is the threshold. There is no separate input matrix: input events overrule the dynamics.

Shapes: ``S`` sequences, ``T`` steps, ``N`` nodes; ``Xh`` is float ``[S, T, N]`` (the moving
targets, read only where the event is hidden).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxpapers._src import checks
from jaxpapers.moving_targets._events import (
    HIDDEN,
    INPUT,
    TARGET,
    EventSpec,
    activation_fns,
    events_ok,
    finite,
    nan_unless,
    validate_events,
)

__all__ = ["compose", "preacts", "free_run", "one_step", "free_run_error", "one_step_error",
           "event_masks"]


def _check_weights(W, spec: EventSpec) -> None:
    n = spec.kind.shape[-1]
    checks.require(jnp.shape(W) == (n, n), f"weights must be [N, N] = [{n}, {n}] for the "
                                           f"events' N = {n} nodes; got W of shape "
                                           f"{jnp.shape(W)}")
    checks.require(jnp.issubdtype(jnp.result_type(W), jnp.floating),
                   f"weights W must be a real float array; got {jnp.result_type(W)}")


def _check_targets(Xh, spec: EventSpec) -> None:
    checks.require(jnp.shape(Xh) == spec.kind.shape, f"moving targets Xh must have the events' "
                                                     f"shape {spec.kind.shape} (that of "
                                                     f"spec.value); got {jnp.shape(Xh)}")
    checks.require(jnp.issubdtype(jnp.result_type(Xh), jnp.floating),
                   f"moving targets Xh must be a real float array; got {jnp.result_type(Xh)}")


def inputs_ok(spec: EventSpec, activation: str, *arrays):
    """Check ``spec`` (:func:`validate_events`: static faults raise, value faults raise eagerly)
    and return ``bool[]``: its values are valid and every array in ``arrays`` is finite. The
    public functions return NaN where it is False (NaN in anywhere, NaN out)."""
    validate_events(spec, activation)
    return events_ok(spec, activation) & finite(*arrays)


def event_masks(spec: EventSpec):
    """``(input, target, hidden)`` boolean masks ``[S, T, N]``."""
    return spec.kind == INPUT, spec.kind == TARGET, spec.kind == HIDDEN


def compose(spec: EventSpec, Xh=None, activation: str = "logistic"):
    """Every event's output and activation: the data, and the moving targets where hidden.

    Input and target events take their data (``Xall = f^{-1}(value)``, finite by clipping);
    hidden events take the moving targets ``Xh`` (``Yall = f(Xh)``). Without ``Xh`` the hidden
    activations are 0. ``Xall`` on input events is never used by the error (it may be clipped).

    Args:
      spec: :class:`~jaxpapers.moving_targets.EventSpec` ``[S, T, N]``.
      Xh: optional float ``[S, T, N]`` moving targets (activations; read where hidden).
      activation: ``"logistic"`` or ``"tanh"``.

    Returns:
      ``(Yall, Xall)``, each float ``[S, T, N]``.

    Raises:
      ValueError: ``Xh`` not of the spec's shape or not a float array; an unknown activation;
        eagerly, a bad spec (:func:`~jaxpapers.moving_targets.tasks.validate_events`). Under
        ``jit`` a bad spec or a non-finite ``Xh`` makes both NaN.
    """
    f, f_inv, _ = activation_fns(activation)
    if Xh is None:
        Xh = jnp.zeros(spec.value.shape, spec.value.dtype)
    _check_targets(Xh, spec)
    ok = inputs_ok(spec, activation, Xh)
    return nan_unless(ok, _compose(spec, Xh, activation))


def _compose(spec: EventSpec, Xh, activation: str):
    f, f_inv, _ = activation_fns(activation)
    hidden = spec.kind == HIDDEN
    # the data's activations, with a finite stand-in where the slot is hidden (no inf, no NaN)
    data_x = f_inv(jnp.where(hidden, f(jnp.zeros((), spec.value.dtype)), spec.value))
    Yall = jnp.where(hidden, f(Xh), spec.value)
    Xall = jnp.where(hidden, Xh, data_x)
    return Yall, Xall


def preacts(W, Yall):
    """``xhat[s, t-1, i] = sum_j W[i, j] Yall[s, t-1, j]``: what each event receives from the
    clamped previous step, for ``t = 1 .. T-1`` (``[S, T-1, N]``)."""
    return jnp.einsum("ij,stj->sti", W, Yall[:, :-1])


def free_run(W, spec: EventSpec, Xh=None, activation: str = "logistic"):
    """Run the network freely (only input events clamped).

    Target and hidden nodes follow the dynamics. At ``t = 0`` every node takes its composed
    value (input and target data; hidden: ``f(Xh[:, 0])``, or ``f(0)`` without ``Xh``):
    learnable initial states are hidden events at ``t = 0``. One ``lax.scan`` over time, all
    sequences at once.

    Args:
      W: float ``[N, N]`` weights (row ``i``: node ``i``'s incoming weights).
      spec: :class:`~jaxpapers.moving_targets.EventSpec` ``[S, T, N]``.
      Xh: optional float ``[S, T, N]`` moving targets (only ``t = 0`` is read).
      activation: ``"logistic"`` or ``"tanh"``.

    Returns:
      outputs ``y`` float ``[S, T, N]``.

    Raises:
      ValueError: ``W`` not ``[N, N]`` or not a real float array; ``Xh`` of another shape;
        eagerly, a bad spec. Under ``jit`` bad values give NaN outputs.

    >>> from jaxpapers.moving_targets.tasks import delay_task, latch_weights
    >>> spec = delay_task(3, hidden=1)
    >>> y = free_run(latch_weights(1), spec)
    >>> y.shape, bool(y[0, 4, 2] > 0.9), bool(y[1, 4, 2] < 0.1)
    ((2, 5, 4), True, True)
    """
    _check_weights(W, spec)
    f = activation_fns(activation)[0]
    Yall, _ = compose(spec, Xh, activation)
    ok = inputs_ok(spec, activation, W, Xh)
    inputs = spec.kind == INPUT

    def step(y_prev, xs):
        clamp, value = xs
        y = jnp.where(clamp, value, f(y_prev @ W.T))
        return y, y

    xs = (jnp.moveaxis(inputs[:, 1:], 1, 0), jnp.moveaxis(spec.value[:, 1:], 1, 0))
    _, ys = jax.lax.scan(step, Yall[:, 0], xs)
    return nan_unless(ok, jnp.concatenate([Yall[:, :1], jnp.moveaxis(ys, 0, 1)], axis=1))


def one_step(W, spec: EventSpec, Xh=None, activation: str = "logistic"):
    """One-step predictions: each step starts from the composed previous step.

    Args:
      W: float ``[N, N]`` weights.
      spec: :class:`~jaxpapers.moving_targets.EventSpec` ``[S, T, N]``.
      Xh: optional float ``[S, T, N]`` moving targets.
      activation: ``"logistic"`` or ``"tanh"``.

    Returns:
      ``f(xhat)`` float ``[S, T - 1, N]`` for ``t = 1, ..., T - 1``.

    Raises:
      ValueError: as :func:`free_run`. Under ``jit`` bad values give NaN.
    """
    _check_weights(W, spec)
    f = activation_fns(activation)[0]
    Yall, _ = compose(spec, Xh, activation)
    return nan_unless(inputs_ok(spec, activation, W, Xh), f(preacts(W, Yall)))


def _max_target_error(y, spec: EventSpec):
    target = (spec.kind == TARGET)[:, 1:]
    error = jnp.where(target, jnp.abs(y - spec.value[:, 1:]), 0.0)
    return jnp.max(error)


def free_run_error(W, spec: EventSpec, Xh=None, activation: str = "logistic"):
    """The largest target error of the freely running network, the measure of success.

    Args:
      W: float ``[N, N]`` weights.
      spec: :class:`~jaxpapers.moving_targets.EventSpec` ``[S, T, N]``.
      Xh: optional float ``[S, T, N]`` moving targets (only ``t = 0`` is read).
      activation: ``"logistic"`` or ``"tanh"``.

    Returns:
      float ``[]``: max ``|y - Y|`` over target events at ``t >= 1`` ([TT]: success below 0.1
      on the 100-step problem).

    Raises:
      ValueError: as :func:`free_run`. Under ``jit`` bad values give NaN.

    >>> from jaxpapers.moving_targets.tasks import delay_task, latch_weights
    >>> bool(free_run_error(latch_weights(1), delay_task(3, hidden=1)) < 0.1)
    True
    """
    y = free_run(W, spec, Xh, activation)
    return nan_unless(inputs_ok(spec, activation, W, Xh), _max_target_error(y[:, 1:], spec))


def one_step_error(W, spec: EventSpec, Xh=None, activation: str = "logistic"):
    """The largest one-step target error ([TT]'s second quality measure).

    Args:
      W: float ``[N, N]`` weights.
      spec: :class:`~jaxpapers.moving_targets.EventSpec` ``[S, T, N]``.
      Xh: optional float ``[S, T, N]`` moving targets.
      activation: ``"logistic"`` or ``"tanh"``.

    Returns:
      float ``[]``: max ``|f(xhat) - Y|`` over target events at ``t >= 1``, each step started
      from the data and moving targets of the previous step.

    Raises:
      ValueError: as :func:`free_run`. Under ``jit`` bad values give NaN.
    """
    return nan_unless(inputs_ok(spec, activation, W, Xh),
                      _max_target_error(one_step(W, spec, Xh, activation), spec))
