"""A combinator of two trainers: the first runs on part of the budget, the second continues
from its weights on the rest (the MT -> BPTT hybrid, inferred)."""

from __future__ import annotations

import dataclasses

from jaxpapers.moving_targets._trainers._base import Budget, Trainer
from jaxpapers.moving_targets._trainers.bptt import BPTT
from jaxpapers.moving_targets._trainers.mt_joint import MTJoint
from jaxpapers.moving_targets._trainers.mt_shooting import MTShooting
from jaxpapers.moving_targets._trainers.mt_varpro import MTVarpro
from jaxpapers.moving_targets._trainers.random_search import RandomSearch

__all__ = ["Hybrid"]

#: trainers that can start from given weights (the second phase of a hybrid)
_FROM_WEIGHTS = (BPTT, MTJoint, MTShooting)


@dataclasses.dataclass(frozen=True)
class Hybrid:
    """Two trainers in sequence: one budget, split.

    ``first`` runs for at most ``fraction`` of the budget (less if it stalls or succeeds);
    ``second`` starts from ``first``'s weights and gets the rest (default: moving targets, then
    BPTT). ``train`` runs it; ``init``/``step`` take its two trainers one at a time.

    Attributes:
      first: a gradient trainer (not :class:`RandomSearch`).
      second: a trainer that starts from weights (:class:`BPTT`, :class:`MTJoint`,
        :class:`MTShooting`).
      fraction: the first trainer's share of the budget, in ``(0, 1)``.

    Raises:
      ValueError: a trainer of the wrong kind; ``fraction`` outside ``(0, 1)``.
    """

    first: Trainer = MTVarpro()
    second: Trainer = BPTT()
    fraction: float = 0.5

    def __post_init__(self):
        if not isinstance(self.first, Trainer) or isinstance(self.first, RandomSearch):
            raise ValueError(f"Hybrid.first must be a gradient trainer config; got "
                             f"{type(self.first).__name__}")
        if not isinstance(self.second, _FROM_WEIGHTS):
            raise ValueError(f"Hybrid.second must start from weights (BPTT, MTJoint, "
                             f"MTShooting); got {type(self.second).__name__}")
        if not 0 < self.fraction < 1:
            raise ValueError(f"Hybrid.fraction must be in (0, 1); got {self.fraction}")

    def first_budget(self, budget: Budget) -> Budget:
        """The first phase's budget: ``fraction`` of the evaluations (at least one)."""
        return dataclasses.replace(budget,
                                   evaluations=max(1, int(self.fraction * budget.evaluations)))
