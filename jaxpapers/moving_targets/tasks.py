"""Training events and the paper's tasks: an :class:`~jaxpapers.moving_targets.EventSpec`
marks each node-time pair of a sequence as input, target or hidden.

:func:`make_events` builds a spec from masks, :func:`validate_events` checks one, and the task
builders return the delay, limit-cycle and parity tasks as specs.
"""

from jaxpapers.moving_targets._events import (
    HIDDEN,
    INPUT,
    TARGET,
    activation_fns,
    make_events,
    validate_events,
)
from jaxpapers.moving_targets._tasks import (
    delay_task,
    latch_weights,
    limit_cycle_task,
    parity_task,
)

__all__ = ["HIDDEN", "INPUT", "TARGET", "activation_fns", "delay_task", "latch_weights",
           "limit_cycle_task", "make_events", "parity_task", "validate_events"]
