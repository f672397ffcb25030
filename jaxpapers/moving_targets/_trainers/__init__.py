"""The trainers, one module per algorithm (``init`` / ``step`` each); the generic driver that
budgets, checks and loops them is :mod:`jaxpapers.moving_targets._train`."""

from jaxpapers.moving_targets._trainers._base import Budget, Trainer, TrainInfo, TrainState
from jaxpapers.moving_targets._trainers.bptt import BPTT
from jaxpapers.moving_targets._trainers.hybrid import Hybrid
from jaxpapers.moving_targets._trainers.mt_alternating import MTAlternating
from jaxpapers.moving_targets._trainers.mt_joint import MTJoint
from jaxpapers.moving_targets._trainers.mt_shooting import MTShooting
from jaxpapers.moving_targets._trainers.mt_varpro import MTVarpro
from jaxpapers.moving_targets._trainers.random_search import RandomSearch

__all__ = ["BPTT", "Budget", "Hybrid", "MTAlternating", "MTJoint", "MTShooting", "MTVarpro",
           "RandomSearch", "TrainInfo", "TrainState", "Trainer"]
