"""Training events of a recurrent network and the node activation functions.

An *event* is a node–time pair ``(i, t)`` of one training sequence. Every event is one of three
kinds (Rohwer 1990, section 2):

* ``INPUT``  -- the datum overrules the dynamics (inputs, the bias node, fixed initial states);
* ``TARGET`` -- the datum is the output the node should have;
* ``HIDDEN`` -- no datum; in moving-targets training the value is a free variable.

:class:`EventSpec` holds ``kind`` (int32 ``[S, T, N]``) and ``value`` (float ``[S, T, N]``, the
datum as a node *output* ``y = f(x)``; zero where hidden). Storing outputs rather than
activations lets a bias node output exactly 1, an input exactly 0 and a target exactly 0 or 1
(infinite activations for the logistic): data may sit anywhere on the closed range of ``f``
(``[0, 1]`` for the logistic). The output-deficit errors (eq. 13, BPTT) take such targets
directly. The activation-space errors (``E_act``, the exact weight solve) need each target's
activation ``f^{-1}(Y)``, so only they require targets strictly inside the range
(:func:`require_finite_targets`, called by the activation-space trainers).
:func:`make_events` builds a spec from masks and refuses an event that is both input and target;
:func:`validate_events` refuses kinds outside ``{0, 1, 2}``, non-finite data and values outside
the closed range.

Activation functions are named: ``"logistic"`` (default; the paper leaves ``f`` open, [TT] used the
logistic in earlier work) and ``"tanh"``. ``f_inv`` clips its argument into the open range, so
conversions never produce infinities (a NaN trap under ``jnp.where``).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxpapers._src import checks

__all__ = ["INPUT", "TARGET", "HIDDEN", "ACTIVATIONS", "EventSpec", "make_events",
           "validate_events", "activation_fns", "check_activation", "require_finite_targets",
           "events_ok", "nan_unless", "finite"]

INPUT, TARGET, HIDDEN = 0, 1, 2

#: name -> (lower, upper) limits of the output range
ACTIVATIONS = {"logistic": (0.0, 1.0), "tanh": (-1.0, 1.0)}


class EventSpec(NamedTuple):
    """The events of ``S`` training sequences of ``T`` steps on ``N`` nodes.

    Attributes:
      kind: int32 ``[S, T, N]``: ``INPUT`` (0), ``TARGET`` (1) or ``HIDDEN`` (2).
      value: float ``[S, T, N]``: the datum as a node output (zero where hidden).
    """

    kind: jax.Array
    value: jax.Array

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.kind.shape)


def check_activation(activation: str) -> str:
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}; got {activation!r}")
    return activation


def activation_fns(activation: str = "logistic"):
    """The functions of a named activation.

    Args:
      activation: ``"logistic"`` (outputs in ``[0, 1]``) or ``"tanh"`` (``[-1, 1]``).

    Returns:
      ``(f, f_inv, f_prime)``: the activation, its inverse (clipped into the open range, so it
      never returns infinities) and its derivative as a function of the activation ``x``.

    Raises:
      ValueError: an unknown ``activation``.

    >>> f, f_inv, f_prime = activation_fns("logistic")
    >>> float(f(0.0)), float(f_prime(0.0))
    (0.5, 0.25)
    """
    check_activation(activation)
    if activation == "logistic":
        def f_inv(y):
            tiny = jnp.finfo(jnp.result_type(y, jnp.float32)).eps
            y = jnp.clip(y, tiny, 1.0 - tiny)
            return jnp.log(y) - jnp.log1p(-y)

        def f_prime(x):
            s = jax.nn.sigmoid(x)
            return s * (1.0 - s)

        return jax.nn.sigmoid, f_inv, f_prime

    def tanh_inv(y):
        tiny = jnp.finfo(jnp.result_type(y, jnp.float32)).eps
        return jnp.arctanh(jnp.clip(y, -1.0 + tiny, 1.0 - tiny))

    return jnp.tanh, tanh_inv, lambda x: 1.0 - jnp.tanh(x) ** 2


def _check_shapes(kind, value) -> None:
    checks.require(jnp.ndim(kind) == 3, f"events: kind must be [S, T, N]; got shape "
                                        f"{jnp.shape(kind)}")
    checks.require(jnp.shape(kind) == jnp.shape(value),
                   f"events: kind {jnp.shape(kind)} and value {jnp.shape(value)} must have the "
                   "same shape")
    s, t, n = jnp.shape(kind)
    checks.require(s >= 1 and n >= 1, f"events: need at least one sequence and one node; got "
                                      f"[S, T, N] = {jnp.shape(kind)}")
    checks.require(t >= 2, f"events: sequences need at least 2 time steps; got T = {t}")


def validate_events(spec: EventSpec, activation: str = "logistic") -> EventSpec:
    """Check an event specification.

    Static faults (shapes, dtypes) raise ``ValueError``. Value faults, when the arrays are
    concrete, raise :class:`~jaxpapers.InvalidInputError` (a ``ValueError``): a kind outside
    ``{0, 1, 2}``, a non-finite value (hidden slots included: they hold 0), an input or target
    output outside the closed range of ``f``. Under ``jit`` (traced arrays) the returned spec's
    values are all NaN when one of those holds, so every result computed from it is NaN (each
    public function of the package also applies the same test to its own result).

    Args:
      spec: :class:`~jaxpapers.moving_targets.EventSpec` (``kind`` integer, ``value`` float,
        both ``[S, T, N]`` with ``T >= 2``).
      activation: the activation the data refer to (sets the range of ``f``).

    Returns:
      ``spec`` unchanged (traced: with NaN values when a value check fails).

    Raises:
      ValueError: not an ``EventSpec``; shapes or dtypes; an unknown activation; eagerly
        (:class:`~jaxpapers.InvalidInputError`), a kind outside ``{0, 1, 2}``, a non-finite
        value or an input or target output outside the range of ``f``.
    """
    check_activation(activation)
    if not isinstance(spec, EventSpec):
        raise ValueError(f"spec must be an EventSpec; got {type(spec).__name__}")
    _check_shapes(spec.kind, spec.value)
    checks.require(jnp.issubdtype(jnp.result_type(spec.kind), jnp.integer),
                   f"events: kind must be an integer array; got {jnp.result_type(spec.kind)}")
    checks.require(jnp.issubdtype(jnp.result_type(spec.value), jnp.floating),
                   f"events: value must be a real float array; got "
                   f"{jnp.result_type(spec.value)}")
    if not checks.is_concrete(spec.kind, spec.value):
        return spec._replace(value=nan_unless(events_ok(spec, activation), spec.value))
    kind, value = np.asarray(spec.kind), np.asarray(spec.value, np.float64)
    lo, hi = ACTIVATIONS[activation]
    bad_kind = ~np.isin(kind, (INPUT, TARGET, HIDDEN))
    if bad_kind.any():
        raise checks.InvalidInputError(
            f"events: kind must be INPUT (0), TARGET (1) or HIDDEN (2); got "
            f"{sorted(set(kind[bad_kind].tolist()))} at {int(bad_kind.sum())} event(s)")
    if not np.isfinite(value).all():
        raise checks.InvalidInputError(
            f"events: spec.value (the values) must be finite (hidden slots hold 0); got "
            f"{int((~np.isfinite(value)).sum())} non-finite value(s)")
    for name, where in (("target", TARGET), ("input", INPUT)):
        vals = value[kind == where]
        if ((vals < lo) | (vals > hi)).any():
            raise checks.InvalidInputError(
                f"events: {name} outputs must lie in [{lo}, {hi}] (the range of "
                f"{activation!r}); got values in [{vals.min()}, {vals.max()}]")
    return spec


def events_ok(spec: EventSpec, activation: str = "logistic"):
    """``bool[]``: the value checks of :func:`validate_events`, as a traced flag."""
    lo, hi = ACTIVATIONS[check_activation(activation)]
    kind, value = jnp.asarray(spec.kind), jnp.asarray(spec.value)
    data = kind != HIDDEN
    return (jnp.all((kind == INPUT) | (kind == TARGET) | (kind == HIDDEN))
            & jnp.all(jnp.isfinite(value))
            & jnp.all(~data | ((value >= lo) & (value <= hi))))


def finite(*arrays):
    """``bool[]``: every given array (``None`` skipped) is finite."""
    ok = jnp.bool_(True)
    for a in arrays:
        if a is not None:
            ok &= jnp.all(jnp.isfinite(jnp.asarray(a)))
    return ok


def nan_unless(ok, tree):
    """Every float leaf of ``tree`` where ``ok``, else NaN (applied last: see the package
    docstring)."""
    def one(x):
        x = jnp.asarray(x)
        if not jnp.issubdtype(x.dtype, jnp.inexact):
            return x
        return jnp.where(ok, x, jnp.nan)
    return jax.tree_util.tree_map(one, tree)


def require_finite_targets(spec: EventSpec, activation: str = "logistic",
                           owner: str = "the activation error") -> EventSpec:
    """Refuse target outputs on the boundary of ``f``'s range (concrete specs only).

    The activation deficit ``E_act`` and the exact weight solve fit each target's *activation*
    ``f^{-1}(Y)``; for ``Y`` = 0 or 1 (logistic) that is infinite, and a clipped stand-in would
    make the fit chase an arbitrary huge value. Output-space errors (``out_deficit``,
    ``bptt_loss``) take such targets directly."""
    if not checks.is_concrete(spec.kind, spec.value):
        return spec
    lo, hi = ACTIVATIONS[check_activation(activation)]
    target = np.asarray(spec.value, np.float64)[np.asarray(spec.kind) == TARGET]
    if ((target <= lo) | (target >= hi)).any():
        raise checks.InvalidInputError(
            f"{owner} fits target activations f^-1(Y), which are infinite for outputs on the "
            f"boundary of ({lo}, {hi}); got target outputs in [{target.min()}, "
            f"{target.max()}]. Use targets strictly inside (e.g. 0.05/0.95) for activation-"
            f"space training, or an output-deficit trainer (MTJoint(power=4), BPTT) for 0/1.")
    return spec


def make_events(input_mask, target_mask, values, *, activation: str = "logistic",
                space: str = "output", dtype=None) -> EventSpec:
    """Build an :class:`EventSpec` from boolean masks; every other event is hidden.

    Args:
      input_mask, target_mask: bool ``[S, T, N]``; they must not overlap.
      values: float ``[S, T, N]``: data where either mask is set (ignored elsewhere, but must
        be finite everywhere).
      activation: the activation the data refer to.
      space: ``"output"`` (values are node outputs ``y``) or ``"activation"`` (values are net
        inputs ``x``, converted with ``f``; the paper states inputs in activation space).
      dtype: float dtype of ``value`` (default: that of ``values``, at least float32).

    Returns:
      :class:`EventSpec` with ``kind int32[S, T, N]`` and ``value`` of ``dtype`` (validated by
      :func:`validate_events`).

    Raises:
      ValueError: shapes differ, ``space`` unknown, or (concrete masks) an event is both input
        and target; :class:`~jaxpapers.InvalidInputError` for values out of range or not
        finite. Under ``jit`` those make the values NaN.

    >>> import numpy as np
    >>> inputs = np.zeros((1, 3, 2), bool); inputs[..., 0] = True
    >>> targets = np.zeros((1, 3, 2), bool); targets[0, 2, 1] = True
    >>> make_events(inputs, targets, np.full((1, 3, 2), 0.5)).kind[0].tolist()
    [[0, 2], [0, 2], [0, 1]]
    """
    check_activation(activation)
    if space not in ("output", "activation"):
        raise ValueError(f"space must be 'output' or 'activation'; got {space!r}")
    input_mask = jnp.asarray(input_mask, bool)
    target_mask = jnp.asarray(target_mask, bool)
    values = jnp.asarray(values)
    dtype = dtype or jnp.result_type(values, jnp.float32)
    values = values.astype(dtype)
    for name, array in (("target_mask", target_mask), ("values", values)):
        checks.require(jnp.shape(array) == jnp.shape(input_mask),
                       f"make_events: {name} shape {jnp.shape(array)} differs from input_mask "
                       f"shape {jnp.shape(input_mask)}")
    if checks.is_concrete(input_mask, target_mask):
        both = np.asarray(input_mask & target_mask)
        if both.any():
            where = tuple(int(i) for i in np.argwhere(both)[0])
            raise ValueError(f"make_events: input_mask and target_mask overlap: "
                             f"{int(both.sum())} event(s) are both input and target (first at "
                             f"[s, t, n] = {where}); an event has one kind")
    if space == "activation":
        f = activation_fns(activation)[0]
        values = f(values)
    kind = jnp.where(input_mask, INPUT, jnp.where(target_mask, TARGET, HIDDEN)).astype(jnp.int32)
    value = jnp.where(input_mask | target_mask, values, 0.0).astype(dtype)
    # traced masks that overlap, or a NaN/inf in values (even where ignored): NaN values, so
    # validate_events flags the spec (NaN out); eagerly both raise
    checks.raise_if_concrete(lambda v: ~jnp.all(jnp.isfinite(v)), "make_events: values must be "
                             "finite (also where no mask is set)", values)
    bad = (input_mask & target_mask) | ~jnp.all(jnp.isfinite(values))
    value = jnp.where(bad, jnp.nan, value).astype(dtype)
    return validate_events(EventSpec(kind, value), activation)
