"""Segment-length-``K`` moving targets (multiple shooting; an inferred generalisation)."""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp

from jaxpapers._src.checks import require_positive_int_field
from jaxpapers.moving_targets._losses import shooting_loss
from jaxpapers.moving_targets._optim import Minimizer
from jaxpapers.moving_targets._trainers._base import (
    Trainer,
    check_init,
    non_negative,
)
from jaxpapers.moving_targets._trainers.mt_joint import joint_init, joint_step

__all__ = ["MTShooting", "init", "step"]


@dataclasses.dataclass(frozen=True)
class MTShooting(Trainer):
    """Segment-length-``K`` moving targets (multiple shooting; an inferred generalisation).

    Joint minimisation of :func:`~jaxpapers.moving_targets.losses.shooting_loss` over ``W`` and
    the hidden targets at segment starts. ``segment=1`` is the quadratic output deficit,
    ``segment >= T`` is BPTT.

    Attributes:
      segment: ``K``, steps per free-running segment.
      lam: weight decay ``lam/2 ||W||^2``.
      init: initial moving targets: ``"free_run"`` (activations of the free run of random weights
        ``N(0, init_scale^2)``), ``"normal"`` (``N(0, init_scale^2)`` activations) or
        ``"constant"`` (a random constant per sequence and node, plus noise ``0.1``).
      init_scale: scale of the initial weights (and ``"normal"`` targets), ``> 0``.
      minimizer: the search over weights and targets.

    Raises:
      ValueError: ``segment`` not a positive int; ``lam`` negative; an unknown ``init``;
        ``init_scale`` not ``> 0``.
    """

    segment: int = 10
    lam: float = 0.0
    init: str = "free_run"
    init_scale: float = 1.0
    minimizer: Minimizer = Minimizer()

    def __post_init__(self):
        require_positive_int_field("MTShooting", "segment", self.segment)
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
