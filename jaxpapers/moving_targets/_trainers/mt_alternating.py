"""Alternation (inferred, MAC-style): solve ``W`` exactly, then ``inner`` minimiser iterations on
``Xh`` with ``W`` fixed, on ``E_act`` (+ ridge). One iteration is one round."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from jaxpapers._src.checks import require_positive_int_field
from jaxpapers.moving_targets._losses import SOLVERS, act_deficit, solve_events
from jaxpapers.moving_targets._optim import Minimizer, minimize_init, minimize_step
from jaxpapers.moving_targets._trainers._base import (
    Trainer,
    check_init,
    non_negative,
    select,
    start_targets,
)

__all__ = ["MTAlternating", "init", "step"]


@dataclasses.dataclass(frozen=True)
class MTAlternating(Trainer):
    """Alternating moving targets: solve the weights exactly, then move the targets.

    Each iteration (one round) solves ``W`` exactly, then runs ``inner`` minimiser iterations on
    ``Xh`` with ``W`` fixed, on ``E_act`` (+ ridge); an inferred, MAC-style schedule. Targets
    must lie strictly inside the range of ``f``.

    Attributes:
      lam: ridge of the weight solve.
      alpha: temporal weighting ``1 + alpha t``.
      solver: ``"cholesky"`` or ``"lstsq"``.
      inner: minimiser iterations on the targets per round.
      init: initial moving targets: ``"free_run"`` (activations of the free run of random weights
        ``N(0, init_scale^2)``), ``"normal"`` (``N(0, init_scale^2)`` activations) or
        ``"constant"`` (a random constant per sequence and node, plus noise ``0.1``).
      init_scale: scale of the initial weights (and ``"normal"`` targets), ``> 0``.
      minimizer: the search over ``Xh``.

    Raises:
      ValueError: ``lam`` or ``alpha`` negative; ``inner`` not a positive int; an unknown
        ``solver`` or ``init``; ``init_scale`` not ``> 0``.
    """

    lam: float = 1e-3
    alpha: float = 0.0
    solver: str = "cholesky"
    inner: int = 10
    init: str = "free_run"
    init_scale: float = 1.0
    minimizer: Minimizer = Minimizer()

    activation_space = True

    def __post_init__(self):
        non_negative("MTAlternating", "lam", self.lam)
        non_negative("MTAlternating", "alpha", self.alpha)
        require_positive_int_field("MTAlternating", "inner", self.inner)
        if self.solver not in SOLVERS:
            raise ValueError(f"MTAlternating.solver must be one of {SOLVERS}; got "
                             f"{self.solver!r}")
        check_init("MTAlternating", self.init, self.init_scale)

    def init_opt(self, key, spec, activation, weights=None, targets=None):
        return init(key, spec, self, activation, weights, targets)

    def advance(self, key, state, spec, budget, activation):
        return step(key, state, spec, self, budget, activation)

    def targets_of(self, state, spec, activation):
        return state.opt.params


def objective(spec, method: MTAlternating, activation, weights):
    return lambda Xh: (act_deficit(weights, Xh, spec, activation, method.alpha)
                       + 0.5 * method.lam * jnp.sum(weights ** 2))


def _solve(Xh, spec, method: MTAlternating, activation):
    return solve_events(Xh, spec, method.lam, activation, method.solver, False, method.alpha)


def init(key, spec, method: MTAlternating, activation, weights=None, targets=None):
    Xh = start_targets(key, spec, method, activation, targets)
    W = _solve(Xh, spec, method, activation)
    opt = minimize_init(objective(spec, method, activation, W), Xh, method.minimizer)
    return opt, W, opt.value, opt.evals


def step(key, state, spec, method: MTAlternating, budget, activation):
    """One round: the exact solve (with the evaluation that restarts the search, counted as
    one), then up to ``inner`` iterations on ``Xh``."""
    remaining = budget.evaluations - state.evals
    start = state.opt.params
    W = _solve(start, spec, method, activation)
    fun = objective(spec, method, activation, W)
    opt = minimize_init(fun, start, method.minimizer)    # the solve and one evaluation

    def inner(_, o):
        left = remaining - o.evals
        new, _ = minimize_step(fun, o, method.minimizer, left)
        return select((left > 0) & ~o.stalled, new, o)

    opt = jax.lax.fori_loop(0, method.inner, inner, opt)
    still = jnp.all(jnp.stack([jnp.all(a == b) for a, b in
                               zip(jax.tree.leaves(opt.params), jax.tree.leaves(start),
                                   strict=True)]))
    return opt._replace(stalled=still), W, opt.value, opt.evals
