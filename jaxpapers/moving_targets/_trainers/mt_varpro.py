"""Moving targets by variable projection: the minimiser moves the hidden targets only; the
weights ``W*(Xh)`` are solved exactly inside every evaluation of the reduced ``E_act``."""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp

from jaxpapers.moving_targets._events import HIDDEN, TARGET, EventSpec, activation_fns
from jaxpapers.moving_targets._losses import SOLVERS, reduced_act, solve_events
from jaxpapers.moving_targets._optim import Minimizer, minimize_init, minimize_step
from jaxpapers.moving_targets._trainers._base import (
    Trainer,
    check_init,
    non_negative,
    start_targets,
)

__all__ = ["MTVarpro", "init", "step"]


@dataclasses.dataclass(frozen=True)
class MTVarpro(Trainer):
    """Moving targets by variable projection: the minimiser moves the hidden targets ``Xh`` only;
    ``W = W*(Xh)`` is solved exactly inside every evaluation of the reduced ``E_act``.

    Attributes:
      lam: ridge of the weight solve (inferred; 1e-3 was best in the spec's pilot).
      alpha: temporal weighting ``1 + alpha t`` of the activation deficit (weighted solve).
      solver: ``"cholesky"`` or ``"lstsq"``.
      shared: one matrix for all rows (exact for tasks whose non-input nodes share their event
        times, e.g. the delay task without don't-cares).
      init: initial moving targets: ``"free_run"`` (activations of the free run of random weights
        ``N(0, init_scale^2)``), ``"normal"`` (``N(0, init_scale^2)`` activations) or
        ``"constant"`` (a random constant per sequence and node, plus noise ``0.1``).
      init_scale: scale of the initial weights (and ``"normal"`` targets), ``> 0``.
      margin: target slack (beyond the paper): target events become moving targets confined to
        ``[Y - margin, Y + margin]`` in output space (``0``: exact targets, the paper).
      noise: standard deviation of activation noise whose expected deficit is minimised (beyond
        the paper; ``0``: the paper's error). It adds ``noise^2 sum W[i,j]^2 f'(X[j])^2`` to each
        term, a penalty on the one-step Jacobian that keeps the weight solve exact.
      minimizer: the search over ``Xh``.

    Its error fits target activations, so targets must lie strictly inside the range of ``f``.

    Raises:
      ValueError: ``lam``, ``alpha``, ``margin`` or ``noise`` negative; an unknown ``solver``
        or ``init``; ``init_scale`` not ``> 0``.
    """

    lam: float = 1e-3
    alpha: float = 0.0
    noise: float = 0.0
    solver: str = "cholesky"
    shared: bool = False
    init: str = "free_run"
    init_scale: float = 1.0
    margin: float = 0.0
    minimizer: Minimizer = Minimizer()

    activation_space = True

    def __post_init__(self):
        non_negative("MTVarpro", "lam", self.lam)
        non_negative("MTVarpro", "alpha", self.alpha)
        non_negative("MTVarpro", "margin", self.margin)
        non_negative("MTVarpro", "noise", self.noise)
        if self.solver not in SOLVERS:
            raise ValueError(f"MTVarpro.solver must be one of {SOLVERS}; got {self.solver!r}")
        check_init("MTVarpro", self.init, self.init_scale)

    def init_opt(self, key, spec, activation, weights=None, targets=None):
        return init(key, spec, self, activation, weights, targets)

    def advance(self, key, state, spec, budget, activation):
        return step(key, state, spec, self, budget, activation)

    def weights_at_check(self, state, spec, activation):
        return weights_of(state.opt.params, spec, self, activation)

    def targets_of(self, state, spec, activation):
        return effective_targets(state.opt.params, spec, self, activation)


def training_spec(spec: EventSpec, method: MTVarpro) -> EventSpec:
    """With a target margin, target events become moving targets (hidden) of the trainer."""
    if method.margin > 0:
        return EventSpec(jnp.where(spec.kind == TARGET, HIDDEN, spec.kind), spec.value)
    return spec


def effective_targets(P, spec: EventSpec, method: MTVarpro, activation):
    """The moving targets as the trainer's parameters ``P`` define them: with a margin, target
    slots hold a slack ``z`` and become ``f^{-1}(Y + margin tanh z)``."""
    if not method.margin > 0:
        return P
    _, f_inv, _ = activation_fns(activation)
    target = spec.kind == TARGET
    y = jnp.where(target, spec.value + method.margin * jnp.tanh(P), 0.5)
    return jnp.where(target, f_inv(y), P)


def objective(spec: EventSpec, method: MTVarpro, activation):
    train_spec = training_spec(spec, method)
    return lambda P: reduced_act(effective_targets(P, spec, method, activation), train_spec,
                                 method.lam, activation, method.solver, method.shared,
                                 True, method.alpha, method.noise)


def weights_of(P, spec: EventSpec, method: MTVarpro, activation):
    return solve_events(effective_targets(P, spec, method, activation),
                        training_spec(spec, method), method.lam, activation, method.solver,
                        method.shared, method.alpha, method.noise)


def init(key, spec, method: MTVarpro, activation, weights=None, targets=None):
    """``(opt, W*(Xh0), loss, evals)``: the search over ``Xh`` from its initial targets."""
    Xh = start_targets(key, spec, method, activation, targets)
    opt = minimize_init(objective(spec, method, activation), Xh, method.minimizer)
    return opt, weights_of(Xh, spec, method, activation), opt.value, opt.evals


def step(key, state, spec, method: MTVarpro, budget, activation):
    """One minimiser iteration on ``Xh``; ``W*(Xh)`` is solved when a check needs it, not here."""
    remaining = budget.evaluations - state.evals
    opt, info = minimize_step(objective(spec, method, activation), state.opt, method.minimizer,
                              remaining)
    return opt, state.weights, opt.value, info.evals
