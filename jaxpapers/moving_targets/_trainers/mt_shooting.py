"""Segment-length-``K`` moving targets (multiple shooting; an inferred generalisation)."""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp

from jaxpapers.moving_targets._losses import shooting_loss
from jaxpapers.moving_targets._optim import Minimizer
from jaxpapers.moving_targets._trainers._base import (
    Trainer,
    check_init,
    non_negative,
    positive_int,
)
from jaxpapers.moving_targets._trainers.mt_joint import joint_init, joint_step

__all__ = ["MTShooting", "init", "step"]


@dataclasses.dataclass(frozen=True)
class MTShooting(Trainer):
    """Segment-length-``K`` moving targets (multiple shooting; inferred generalisation): joint
    minimisation of :func:`~jaxpapers.moving_targets.shooting_loss` over ``W`` and the hidden
    targets at segment starts. ``segment=1`` is the quadratic output deficit, ``segment >= T``
    is BPTT."""

    segment: int = 10
    lam: float = 0.0
    init: str = "free_run"
    init_scale: float = 1.0
    minimizer: Minimizer = Minimizer()

    def __post_init__(self):
        positive_int("MTShooting", "segment", self.segment)
        non_negative("MTShooting", "lam", self.lam)
        check_init("MTShooting", self.init, self.init_scale)

    def init_opt(self, key, spec, activation, weights=None, targets=None):
        return init(key, spec, self, activation, weights, targets)

    def advance(self, key, state, spec, budget, activation):
        return step(key, state, spec, self, budget, activation)

    def targets_of(self, state, spec, activation):
        return state.opt.params["Xh"]


def objective(spec, method: MTShooting, activation):
    return lambda p: (shooting_loss(p["W"], p["Xh"], spec, method.segment, activation)
                      + 0.5 * method.lam * jnp.sum(p["W"] ** 2))


def init(key, spec, method: MTShooting, activation, weights=None, targets=None):
    return joint_init(objective(spec, method, activation), key, spec, method, activation,
                      weights, targets)


def step(key, state, spec, method: MTShooting, budget, activation):
    return joint_step(objective(spec, method, activation), state, method, budget)
