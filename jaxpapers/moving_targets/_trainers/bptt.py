"""Back-propagation through time on the free-run loss ``1/2 sum_T (y_free - Y)^2``."""

from __future__ import annotations

import dataclasses

from jaxpapers.moving_targets._losses import bptt_loss
from jaxpapers.moving_targets._optim import Minimizer, minimize_init, minimize_step
from jaxpapers.moving_targets._trainers._base import Trainer, check_init, initial_weights

__all__ = ["BPTT", "init", "step"]


@dataclasses.dataclass(frozen=True)
class BPTT(Trainer):
    """Back-propagation through time on ``1/2 sum_T (y_free - Y)^2``.

    Starts from weights ``N(0, init_scale^2)`` (the same draw as the moving-targets trainers'
    initial weights for the same key), with L-BFGS or Adam (+ global-norm clipping).

    Attributes:
      init_scale: scale of the initial weights, ``> 0``.
      minimizer: the search over weights.

    Raises:
      ValueError: ``init_scale`` not ``> 0``.
    """

    init_scale: float = 1.0
    minimizer: Minimizer = Minimizer()

    def __post_init__(self):
        check_init("BPTT", "free_run", self.init_scale)

    def init_opt(self, key, spec, activation, weights=None, targets=None):
        return init(key, spec, self, activation, weights, targets)

    def advance(self, key, state, spec, budget, activation):
        return step(key, state, spec, self, budget, activation)


def init(key, spec, method: BPTT, activation, weights=None, targets=None):
    """From ``weights`` (the hybrid's second phase) or the shared initial draw."""
    n = spec.kind.shape[-1]
    W = initial_weights(key, n, method.init_scale, spec.value.dtype) if weights is None \
        else weights
    opt = minimize_init(lambda w: bptt_loss(w, spec, activation), W, method.minimizer)
    return opt, W, opt.value, opt.evals


def step(key, state, spec, method: BPTT, budget, activation):
    remaining = budget.evaluations - state.evals
    opt, info = minimize_step(lambda w: bptt_loss(w, spec, activation), state.opt,
                              method.minimizer, remaining)
    return opt, opt.params, opt.value, info.evals
