"""The three problems of the paper, as event specifications (concrete details inferred, spec
section 6), and the planted latch network of the recovery test.

Node layout of every task: node 0 is the bias (an input held at output 1), then the input nodes,
then the target nodes, then ``hidden`` hidden nodes. At ``t = 0`` every target and hidden node is
an input event at ``initial`` (default ``low``: a fixed initial state). Input pulses are outputs 1,
otherwise 0; target outputs are ``low`` / ``high``. The delay task's default is 0 / 1 (off / on)
(output-space targets: the output-deficit errors take them directly; the activation-space
trainers need targets strictly inside ``(0, 1)`` and refuse them). The limit-cycle and parity
tasks keep 0.1 / 0.9 by default.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from jaxpapers._src import checks
from jaxpapers.moving_targets._events import HIDDEN, INPUT, TARGET, EventSpec, validate_events

__all__ = ["delay_task", "limit_cycle_task", "parity_task", "latch_weights", "TASK_NODES"]

#: (first input node, first target node, first hidden node) of each task's layout
TASK_NODES = {"delay": (1, 2, 3), "limit_cycle": (1, 3, 4), "parity": (1, 2, 3)}


def _levels(low: float, high: float, initial: float | None = None) -> float:
    """Check the target levels; returns the initial output (``low`` unless given)."""
    if not 0.0 <= low < high <= 1.0:
        raise ValueError(f"target levels need 0 <= low < high <= 1; got low={low}, high={high}")
    initial = low if initial is None else initial
    if not 0.0 <= initial <= 1.0:
        raise ValueError(f"the initial output must lie in [0, 1]; got {initial}")
    return initial


def _spec(kind: np.ndarray, value: np.ndarray, dtype) -> EventSpec:
    return validate_events(EventSpec(jnp.asarray(kind, jnp.int32), jnp.asarray(value, dtype)))


def _base(num_seq: int, length: int, num_in: int, num_out: int, hidden: int, low: float):
    n = 1 + num_in + num_out + hidden
    kind = np.full((num_seq, length, n), HIDDEN, np.int32)
    value = np.zeros((num_seq, length, n))
    kind[:, :, : 1 + num_in] = INPUT              # bias and input nodes: inputs at every step
    value[:, :, 0] = 1.0                          # the bias outputs 1
    kind[:, 0, 1 + num_in:] = INPUT               # fixed initial state of the other nodes
    value[:, 0, 1 + num_in:] = low
    return kind, value


def delay_task(delay: int, hidden: int = 3, *, low: float = 0.0, high: float = 1.0,
               initial: float | None = None, dont_care: bool = False,
               dtype=jnp.float32) -> EventSpec:
    """The "100-step context" task for any delay ``D`` (Rohwer 1990, Fig. 3; details inferred).

    Two sequences of ``D + 2`` steps (``t = 0 .. D+1``). Sequence A has input pulses at ``t = 0``
    and ``t = D``, sequence B only at ``t = D``. The target node is ``low`` at ``t = 1 .. D`` and
    at ``t = D+1`` is ``high`` in A and ``low`` in B: it must turn on one step after the second
    pulse if and only if there was a pulse ``D`` steps before it.

    Args:
      delay: ``D >= 1``.
      hidden: number of hidden nodes ``H >= 1`` (``N = 3 + H`` nodes).
      low, high: the target outputs (default 0 / 1, off / on; the spec's earlier inferred
        0.1 / 0.9 made an exact fit force the target node's input weight to zero).
      initial: the fixed initial output of the target and hidden nodes (default ``low``).
      dont_care: the target node is a target only at ``t = D+1`` (hidden events before).
      dtype: float dtype of the values.

    Returns:
      :class:`~jaxpapers.moving_targets.EventSpec` with ``kind int32[2, D + 2, 3 + H]``.

    Raises:
      ValueError: ``delay`` or ``hidden`` not a positive int; levels outside
        ``0 <= low < high <= 1`` or an initial output outside ``[0, 1]``.

    >>> spec = delay_task(3, hidden=2)
    >>> spec.kind.shape, float(spec.value[0, 4, 2])
    ((2, 5, 5), 1.0)
    """
    d = checks.require_positive_int(delay, "delay_task: delay")
    h = checks.require_positive_int(hidden, "delay_task: hidden")
    initial = _levels(low, high, initial)
    kind, value = _base(2, d + 2, 1, 1, h, initial)
    value[0, 0, 1] = 1.0
    value[:, d, 1] = 1.0
    kind[:, 1:, 2] = HIDDEN if dont_care else TARGET
    value[:, 1:, 2] = 0.0 if dont_care else low
    kind[:, d + 1, 2] = TARGET
    value[:, d + 1, 2] = low
    value[0, d + 1, 2] = high
    return _spec(kind, value, dtype)


def limit_cycle_task(hidden: int = 2, *, periods: int = 1, low: float = 0.1, high: float = 0.9,
                     dtype=jnp.float32) -> EventSpec:
    """The limit-cycle switching task (Rohwer 1990, Fig. 1).

    Two input nodes hold a 2-bit code of ``k in {1, 2, 3, 4}`` (bits of ``k - 1``, outputs 0/1,
    held at every step); the target node emits a square wave of ``k`` steps ``high`` then ``k``
    steps ``low``. One sequence per ``k`` of ``1 + 8 periods`` steps; sequence ``k`` has targets
    for its first ``periods`` periods and hidden (don't-care) events after them. [TT]'s success
    threshold is 0.05.

    Args:
      hidden: number of hidden nodes ``H >= 1`` (``N = 4 + H`` nodes).
      periods: square-wave periods with targets, ``>= 1``.
      low, high: the target outputs.
      dtype: float dtype of the values.

    Returns:
      :class:`~jaxpapers.moving_targets.EventSpec` with ``kind int32[4, 1 + 8 periods, 4 + H]``.

    Raises:
      ValueError: ``hidden`` or ``periods`` not a positive int; levels outside
        ``0 <= low < high <= 1``.

    >>> limit_cycle_task().kind.shape
    (4, 9, 6)
    """
    h = checks.require_positive_int(hidden, "limit_cycle_task: hidden")
    p = checks.require_positive_int(periods, "limit_cycle_task: periods")
    _levels(low, high)
    length = 1 + 8 * p
    kind, value = _base(4, length, 2, 1, h, low)
    for s, k in enumerate(range(1, 5)):
        value[s, :, 1] = (k - 1) & 1
        value[s, :, 2] = ((k - 1) >> 1) & 1
        steps = np.arange(1, 2 * k * p + 1)
        kind[s, steps, 3] = TARGET
        value[s, steps, 3] = np.where(((steps - 1) // k) % 2 == 0, high, low)
    return _spec(kind, value, dtype)


DEFAULT_PULSES = ((), (4,), (3, 9), (6, 12))


def parity_task(hidden: int = 3, *, pulses=DEFAULT_PULSES, length: int = 16, low: float = 0.1,
                high: float = 0.9, dtype=jnp.float32) -> EventSpec:
    """Temporal parity (Rohwer 1990, Fig. 2; sizes inferred): one input node pulses at the given
    times; from one step after each pulse the target node signals whether an odd (``high``) or
    even (``low``) number of pulses has occurred. The default data hold at most two pulses per
    sequence (the paper trained "on the data preceding the third input pulse").

    Args:
      hidden: number of hidden nodes ``H >= 1`` (``N = 3 + H`` nodes).
      pulses: one tuple of pulse times ``0 <= t < length - 1`` per sequence.
      length: steps per sequence.
      low, high: the target outputs (even, odd).
      dtype: float dtype of the values.

    Returns:
      :class:`~jaxpapers.moving_targets.EventSpec` with
      ``kind int32[len(pulses), length, 3 + H]``.

    Raises:
      ValueError: ``hidden`` or ``length`` not a positive int; no sequence; a pulse time
        outside ``[0, length - 2]``; levels outside ``0 <= low < high <= 1``.

    >>> parity_task().kind.shape
    (4, 16, 6)
    """
    h = checks.require_positive_int(hidden, "parity_task: hidden")
    t_len = checks.require_positive_int(length, "parity_task: length")
    _levels(low, high)
    if not pulses:
        raise ValueError("parity_task: pulses needs at least one sequence")
    for times in pulses:
        if any(not 0 <= int(t) < t_len - 1 for t in times):
            raise ValueError(f"parity_task: pulse times must lie in [0, {t_len - 2}] (pulses); got "
                             f"{tuple(times)}")
    kind, value = _base(len(pulses), t_len, 1, 1, h, low)
    for s, times in enumerate(pulses):
        value[s, list(times), 1] = 1.0
        count = np.cumsum(value[s, :, 1])              # pulses at times <= t
        kind[s, 1:, 2] = TARGET
        value[s, 1:, 2] = np.where(count[:-1] % 2 == 1, high, low)
    return _spec(kind, value, dtype)


def latch_weights(hidden: int = 1, *, self_weight: float = 10.0, input_weight: float = 10.0,
                  bias: float = -5.0, dtype=jnp.float32):
    """A planted solution of the delay task's layout.

    Hidden node 3 is a latch (``x = self_weight y_latch + input_weight y_in + bias``: a pulse
    switches it on and it stays on), and the target node computes AND of latch and input
    (``x = 10 y_latch + 10 y_in - 15``). Other hidden nodes get zero weights.

    Args:
      hidden: number of hidden nodes ``H >= 1``.
      self_weight, input_weight, bias: the latch's weights (finite).
      dtype: float dtype of ``W``.

    Returns:
      ``W`` of ``dtype[3 + H, 3 + H]``.

    Raises:
      ValueError: ``hidden`` not a positive int; a non-finite weight.

    >>> latch_weights().shape
    (4, 4)
    """
    h = checks.require_positive_int(hidden, "latch_weights: hidden")
    for name, value in (("self_weight", self_weight), ("input_weight", input_weight),
                        ("bias", bias)):
        checks.require(np.isfinite(value), f"latch_weights: {name} must be finite; got {value}")
    W = np.zeros((3 + h, 3 + h))
    W[3, 3], W[3, 1], W[3, 0] = self_weight, input_weight, bias
    W[2, 3], W[2, 1], W[2, 0] = 10.0, 10.0, -15.0
    return jnp.asarray(W, dtype)
