"""Moving targets (Rohwer, "The 'Moving Targets' Training Algorithm", NIPS 2, 1990): train a
fully connected recurrent network by optimising its hidden-state trajectories.

The face holds the trainers (their configs), the budget, the state, info and summary types and
the ``init`` / ``step`` / ``evaluate`` / ``train`` / ``summarize`` driver of one seed (``vmap``
over keys for many). Submodules: :mod:`~jaxpapers.moving_targets.tasks` (events and the
paper's tasks) and :mod:`~jaxpapers.moving_targets.losses` (free runs, errors and solves).
Float64 (``jax.enable_x64``) is advised for training.

Bad input: a wrong shape, dtype, key or setting raises ``ValueError`` naming the argument; a
bad value in a spec raises eagerly (:func:`~jaxpapers.moving_targets.tasks.validate_events`)
and under ``jit`` makes every result computed from it NaN, so no run reports success on it.
"""

from jaxpapers.moving_targets import losses, tasks
from jaxpapers.moving_targets._events import EventSpec
from jaxpapers.moving_targets._optim import Minimizer, curvature_avoidance
from jaxpapers.moving_targets._train import (
    BPTT,
    Budget,
    Hybrid,
    MTAlternating,
    MTJoint,
    MTShooting,
    MTVarpro,
    RandomSearch,
    TrainInfo,
    TrainState,
    TrainSummary,
    evaluate,
    init,
    moving_targets_of,
    step,
    summarize,
    train,
)

__all__ = [
    "BPTT",
    "Budget",
    "EventSpec",
    "Hybrid",
    "MTAlternating",
    "MTJoint",
    "MTShooting",
    "MTVarpro",
    "Minimizer",
    "RandomSearch",
    "TrainInfo",
    "TrainState",
    "TrainSummary",
    "curvature_avoidance",
    "evaluate",
    "init",
    "losses",
    "moving_targets_of",
    "step",
    "summarize",
    "tasks",
    "train",
]
