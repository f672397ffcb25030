"""Moving targets with weights and hidden targets minimised jointly (what [TT] says the paper's
experiments did), on the quartic, temporally weighted output deficit (eq. 13) by default."""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp

from jaxpapers._src.checks import require_positive_int_field
from jaxpapers.moving_targets._losses import act_deficit, out_deficit
from jaxpapers.moving_targets._optim import Minimizer, minimize_init, minimize_step
from jaxpapers.moving_targets._trainers._base import (
    Trainer,
    check_init,
    initial_weights,
    non_negative,
    start_targets,
)

__all__ = ["MTJoint", "init", "step", "joint_init"]


@dataclasses.dataclass(frozen=True)
class MTJoint(Trainer):
    """Moving targets with weights and hidden targets minimised jointly (the paper's method).

    The error is the output deficit ``1/p sum (1 + alpha t)|f(xhat) - Y|^p`` (``power=4``:
    eq. 13) or, with ``space="activation"``, ``E_act``. The output-space error takes targets on
    the boundary of ``f``'s range (0 / 1) directly; the activation-space one needs them
    strictly inside.

    Attributes:
      power: ``p`` of the output deficit (must be 2 with ``space="activation"``).
      alpha: temporal weighting ``1 + alpha t``.
      space: ``"output"`` or ``"activation"``.
      lam: weight decay ``lam/2 ||W||^2``.
      init: initial moving targets: ``"free_run"`` (activations of the free run of random weights
        ``N(0, init_scale^2)``), ``"normal"`` (``N(0, init_scale^2)`` activations) or
        ``"constant"`` (a random constant per sequence and node, plus noise ``0.1``).
      init_scale: scale of the initial weights (and ``"normal"`` targets), ``> 0``.
      minimizer: the search over weights and targets.

    Raises:
      ValueError: ``power`` not a positive int (or not 2 in activation space); ``alpha`` or
        ``lam`` negative; an unknown ``space`` or ``init``; ``init_scale`` not ``> 0``.
    """

    power: int = 4
    alpha: float = 0.0
    space: str = "output"
    lam: float = 0.0
    init: str = "free_run"
    init_scale: float = 1.0
    minimizer: Minimizer = Minimizer()

    def __post_init__(self):
        require_positive_int_field("MTJoint", "power", self.power)
        non_negative("MTJoint", "alpha", self.alpha)
        non_negative("MTJoint", "lam", self.lam)
        if self.space not in ("output", "activation"):
            raise ValueError(f"MTJoint.space must be 'output' or 'activation'; got "
                             f"{self.space!r}")
        if self.space == "activation" and self.power != 2:
            raise ValueError(f"MTJoint: space='activation' is the quadratic E_act; power must be "
                             f"2, got {self.power}")
        check_init("MTJoint", self.init, self.init_scale)

    @property
    def activation_space(self) -> bool:
        return self.space == "activation"

    def init_opt(self, key, spec, activation, weights=None, targets=None):
        return init(key, spec, self, activation, weights, targets)

    def advance(self, key, state, spec, budget, activation):
        return step(key, state, spec, self, budget, activation)

    def targets_of(self, state, spec, activation):
        return state.opt.params["Xh"]


def objective(spec, method: MTJoint, activation):
    if method.space == "activation":
        data = lambda p: act_deficit(p["W"], p["Xh"], spec, activation, method.alpha)
    else:
        data = lambda p: out_deficit(p["W"], p["Xh"], spec, method.power, method.alpha,
                                     activation)
    return lambda p: data(p) + 0.5 * method.lam * jnp.sum(p["W"] ** 2)


def joint_init(fun, key, spec, method, activation, weights=None, targets=None):
    """``(opt, W0, loss, evals)`` of a joint search over ``{"W", "Xh"}`` (also MTShooting's)."""
    Xh = start_targets(key, spec, method, activation, targets)
    n = spec.kind.shape[-1]
    W0 = (initial_weights(key, n, method.init_scale, spec.value.dtype) if weights is None
          else weights)
    opt = minimize_init(fun, {"W": W0, "Xh": Xh}, method.minimizer)
    return opt, W0, opt.value, opt.evals


def joint_step(fun, state, method, budget):
    remaining = budget.evaluations - state.evals
    opt, info = minimize_step(fun, state.opt, method.minimizer, remaining)
    return opt, opt.params["W"], opt.value, info.evals


def init(key, spec, method: MTJoint, activation, weights=None, targets=None):
    return joint_init(objective(spec, method, activation), key, spec, method, activation,
                      weights, targets)


def step(key, state, spec, method: MTJoint, budget, activation):
    return joint_step(objective(spec, method, activation), state, method, budget)
