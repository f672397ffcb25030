"""Minimisers that count gradient evaluations honestly, vmap-friendly.

Budgets are counted in gradient evaluations (``value_and_grad`` calls), the paper's unit, line
searches included. The line search is a strong-Wolfe bracketing/zoom search (Nocedal & Wright,
Algorithms 3.5-3.6) written without ``lax.cond``: every trial computes one candidate step by
arithmetic and then exactly one ``value_and_grad``. (optax's zoom line search branches with
``lax.cond``; under ``vmap`` over seeds both branches run, two evaluations per trial.)

Search directions:

* ``"lbfgs"``: ``optax.scale_by_lbfgs`` (two-loop recursion) on the flattened parameters; its
  memory is cleared when a search fails or its direction is not a descent direction;
* ``"curvature"``: Rohwer's *curvature avoidance* (spec section 3): the gradient divided
  componentwise by a moving average of ``|diag H|`` estimated from the change in gradient over the
  last step (``|dg / dx|``), followed by the line search (:func:`curvature_avoidance`);
* ``"adam"``: ``optax.adam`` after ``clip_by_global_norm``; one evaluation per step, no search.

A search that finds no decrease keeps the point and counts as a failure; ``max_failures``
consecutive failures (or a gradient norm below ``gtol``) mark the minimiser stalled.
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from jax.flatten_util import ravel_pytree

from jaxpapers._src.checks import require_positive_int_field

__all__ = ["Minimizer", "MinState", "MinInfo", "minimize_init", "minimize_step",
           "curvature_avoidance", "wolfe_linesearch", "METHODS"]

METHODS = ("lbfgs", "curvature", "adam")


@dataclasses.dataclass(frozen=True)
class Minimizer:
    """Settings of a minimiser.

    Attributes:
      method: ``"lbfgs"``, ``"curvature"`` (curvature avoidance + line search) or ``"adam"``.
      memory: L-BFGS memory.
      max_linesearch: most evaluations per line search.
      c1, c2: sufficient-decrease and curvature constants of the strong Wolfe conditions.
      learning_rate, clip_norm: Adam's step size and global-norm clip.
      curvature_decay: weight of the old average in curvature avoidance's ``|diag H|`` average.
      gtol: stalled when the gradient's max-norm falls below this.
      max_failures: stalled after this many consecutive failed line searches.

    Raises:
      ValueError: an unknown ``method``; ``memory``, ``max_linesearch`` or ``max_failures``
        not a positive int; not ``0 < c1 < c2 < 1``; ``learning_rate`` or ``clip_norm`` not
        ``> 0``; ``curvature_decay`` outside ``[0, 1)``; ``gtol`` negative.
    """

    method: str = "lbfgs"
    memory: int = 10
    max_linesearch: int = 20
    c1: float = 1e-4
    c2: float = 0.9
    learning_rate: float = 0.01
    clip_norm: float = 1.0
    curvature_decay: float = 0.9
    gtol: float = 0.0
    max_failures: int = 2

    def __post_init__(self):
        if self.method not in METHODS:
            raise ValueError(f"Minimizer.method must be one of {METHODS}; got {self.method!r}")
        for name in ("memory", "max_linesearch", "max_failures"):
            require_positive_int_field("Minimizer", name, getattr(self, name))
        if not 0 < self.c1 < self.c2 < 1:
            raise ValueError(f"Minimizer needs 0 < c1 < c2 < 1; got c1={self.c1}, c2={self.c2}")
        for name in ("learning_rate", "clip_norm"):
            if not getattr(self, name) > 0:
                raise ValueError(f"Minimizer.{name} must be > 0; got {getattr(self, name)}")
        if not 0 <= self.curvature_decay < 1:
            raise ValueError(f"Minimizer.curvature_decay must be in [0, 1); got "
                             f"{self.curvature_decay}")
        if not self.gtol >= 0:
            raise ValueError(f"Minimizer.gtol must be >= 0; got {self.gtol}")


class MinState(NamedTuple):
    """Minimiser state (one problem; vmap for many)."""

    params: Any
    value: jax.Array        # f(params)
    grad: Any               # grad f(params)
    opt_state: Any          # direction state (L-BFGS memory, curvature average, Adam moments)
    evals: jax.Array        # int32: value_and_grad calls so far
    failures: jax.Array     # int32: consecutive failed line searches
    stalled: jax.Array      # bool


class MinInfo(NamedTuple):
    evals: jax.Array        # int32: evaluations this step
    stepsize: jax.Array     # accepted step along the direction (0: failed)


class CurvatureState(NamedTuple):
    average: Any            # moving average of |diag H|
    params: Any
    grad: Any
    count: jax.Array


def curvature_avoidance(decay: float = 0.9, eps: float = 1e-12) -> optax.GradientTransformation:
    """Curvature avoidance (Rohwer 1990) as an optax transformation.

    The gradient is divided componentwise by a moving average of ``|diag H|``, estimated after
    each step as ``|g_new - g_old| / |x_new - x_old|`` where the coordinate moved. ``update``
    needs ``params``.

    Args:
      decay: weight of the old average, in ``[0, 1)``.
      eps: floor of the average relative to its largest entry, finite and ``>= 0``.

    Returns:
      ``optax.GradientTransformation`` whose updates are the scaled gradient (negate it for a
      descent direction).

    Raises:
      ValueError: ``decay`` outside ``[0, 1)``; ``eps`` negative or not finite.

    >>> import jax.numpy as jnp
    >>> tx = curvature_avoidance()
    >>> x = jnp.array([1.0, 2.0])
    >>> direction, _ = tx.update(2 * x, tx.init(x), x)
    >>> direction
    Array([2., 4.], dtype=float32)
    """
    if not 0 <= decay < 1:
        raise ValueError(f"curvature_avoidance: decay must be in [0, 1); got {decay}")
    if not (eps >= 0 and eps < float("inf")):
        raise ValueError(f"curvature_avoidance: eps must be finite and >= 0; got {eps}")

    def init(params):
        zeros = optax.tree.zeros_like(params)
        return CurvatureState(optax.tree.ones_like(params), zeros, zeros, jnp.int32(0))

    def update(grad, state, params=None):
        def new_average(avg, x, x_old, g, g_old):
            dx = x - x_old
            moved = (jnp.abs(dx) > 0) & (state.count > 0)
            curv = jnp.abs(g - g_old) / jnp.where(moved, jnp.abs(dx), 1.0)
            first = state.count == 1
            blended = jnp.where(first, curv, decay * avg + (1 - decay) * curv)
            return jnp.where(moved, blended, avg)

        average = jax.tree.map(new_average, state.average, params, state.params, grad,
                               state.grad)
        scale = jax.tree.map(lambda a: jnp.maximum(a, eps * jnp.max(a) + 1e-30), average)
        direction = jax.tree.map(lambda g, a: g / a, grad, scale)
        return direction, CurvatureState(average, params, grad, state.count + 1)

    return optax.GradientTransformation(init, update)


def _select(flag, a, b):
    return jax.tree.map(lambda u, v: jnp.where(flag, u, v), a, b)


class _Search(NamedTuple):
    a: jax.Array
    lo: jax.Array
    f_lo: jax.Array
    s_lo: jax.Array
    hi: jax.Array
    f_hi: jax.Array
    s_hi: jax.Array
    found: jax.Array
    done: jax.Array
    count: jax.Array
    best_a: jax.Array
    best_f: jax.Array
    best_g: Any


def _cubic(a1, f1, s1, a2, f2, s2):
    d1 = s1 + s2 - 3.0 * (f1 - f2) / (a1 - a2)
    disc = d1 ** 2 - s1 * s2
    d2 = jnp.sign(a2 - a1) * jnp.sqrt(jnp.maximum(disc, 0.0))
    a = a2 - (a2 - a1) * (s2 + d2 - d1) / (s2 - s1 + 2.0 * d2)
    return jnp.where(disc >= 0, a, jnp.nan)


def wolfe_linesearch(value_and_grad, x, f0, g0, d, a_init, max_steps, c1: float = 1e-4,
                     c2: float = 0.9, grow: float = 2.0):
    """Strong-Wolfe line search along ``d`` from ``x`` (flat vectors); one ``value_and_grad``
    per trial.

    Returns ``(stepsize, value, grad, evaluations)``: the first step meeting both Wolfe
    conditions; else the lowest trial meeting sufficient decrease; else ``0`` with ``f0, g0``.
    """
    dtype = jnp.result_type(f0)
    slope0 = jnp.vdot(g0, d)
    inf = jnp.asarray(jnp.inf, dtype)
    zero = jnp.zeros((), dtype)
    init = _Search(jnp.asarray(a_init, dtype), zero, f0, slope0, inf, inf, zero,
                   jnp.asarray(False), jnp.asarray(False), jnp.int32(0), zero, f0, g0)

    def cond(s):
        return ~s.done & (s.count < max_steps)

    def body(s):
        f, g = value_and_grad(x + s.a * d)
        f = jnp.where(jnp.isfinite(f), f, inf)
        slope = jnp.vdot(g, d)
        armijo = f <= f0 + c1 * s.a * slope0
        to_hi = ~armijo | (f >= s.f_lo)
        accept = ~to_hi & (jnp.abs(slope) <= -c2 * slope0)
        move_lo = ~to_hi & ~accept
        flip = move_lo & (slope * (s.hi - s.lo) >= 0)
        hi = jnp.where(to_hi, s.a, jnp.where(flip, s.lo, s.hi))
        f_hi = jnp.where(to_hi, f, jnp.where(flip, s.f_lo, s.f_hi))
        s_hi = jnp.where(to_hi, slope, jnp.where(flip, s.s_lo, s.s_hi))
        lo = jnp.where(move_lo, s.a, s.lo)
        f_lo = jnp.where(move_lo, f, s.f_lo)
        s_lo = jnp.where(move_lo, slope, s.s_lo)
        found = s.found | to_hi | flip
        better = armijo & (f < s.best_f)
        best_a = jnp.where(better | accept, s.a, s.best_a)
        best_f = jnp.where(better | accept, f, s.best_f)
        best_g = jnp.where(better | accept, g, s.best_g)
        # next trial: safeguarded cubic inside the bracket, or a longer step
        width = hi - lo
        safe_hi = jnp.where(jnp.isfinite(hi), hi, lo + 1.0)
        cubic = _cubic(lo, f_lo, s_lo, safe_hi, jnp.where(jnp.isfinite(f_hi), f_hi, f_lo),
                       s_hi)
        low_end, high_end = jnp.minimum(lo, safe_hi), jnp.maximum(lo, safe_hi)
        margin = 0.1 * (high_end - low_end)
        inside = jnp.isfinite(cubic) & (cubic > low_end + margin) & (cubic < high_end - margin)
        zoom = jnp.where(inside, cubic, 0.5 * (lo + safe_hi))
        a_next = jnp.where(found, zoom, s.a * grow)
        tiny = jnp.abs(width) <= 1e-10 * jnp.maximum(jnp.abs(lo), 1.0)
        done = accept | (found & tiny)
        return _Search(a_next, lo, f_lo, s_lo, hi, f_hi, s_hi, found, done, s.count + 1,
                       best_a, best_f, best_g)

    s = jax.lax.while_loop(cond, body, init)
    return s.best_a, s.best_f, s.best_g, s.count


def _direction_transform(config: Minimizer):
    if config.method == "lbfgs":
        return optax.scale_by_lbfgs(memory_size=config.memory)
    if config.method == "curvature":
        return curvature_avoidance(config.curvature_decay)
    return optax.chain(optax.clip_by_global_norm(config.clip_norm),
                       optax.adam(config.learning_rate))


def _flat(fun, params):
    """``(x, unravel, fun_flat)``: the parameters as one vector and ``fun`` on vectors."""
    x, unravel = ravel_pytree(params)
    return x, unravel, lambda v: fun(unravel(v))


def minimize_init(fun, params, config: Minimizer) -> MinState:
    """Evaluate ``fun`` once at ``params`` (one evaluation) and set up the direction state."""
    value, grad = jax.value_and_grad(fun)(params)
    x, _, _ = _flat(fun, params)
    opt_state = _direction_transform(config).init(x)
    return MinState(params, value, grad, opt_state, jnp.int32(1), jnp.int32(0),
                    jnp.asarray(False))


def _grad_small(grad, gtol):
    return jnp.max(jnp.abs(grad)) <= gtol


def minimize_step(fun, state: MinState, config: Minimizer, max_evals=None
                  ) -> tuple[MinState, MinInfo]:
    """One iteration: a direction, a line search (or an Adam step); the evaluations it took.

    ``max_evals`` (may be traced) caps the line search's evaluations (a budget's remainder).
    Parameters are handled as one flat vector (``ravel_pytree``); ``state`` keeps the pytrees.
    """
    transform = _direction_transform(config)
    x, unravel, fun_flat = _flat(fun, state.params)
    g = ravel_pytree(state.grad)[0]
    value_and_grad = jax.value_and_grad(fun_flat)
    if config.method == "adam":
        updates, opt_state = transform.update(g, state.opt_state, x)
        x_new = x + updates
        value, g_new = value_and_grad(x_new)
        stalled = ~jnp.isfinite(value) | _grad_small(g_new, config.gtol)
        new = MinState(unravel(x_new), value, unravel(g_new), opt_state, state.evals + 1,
                       state.failures, stalled)
        return new, MinInfo(jnp.int32(1), jnp.asarray(config.learning_rate, value.dtype))
    scaled, opt_state = transform.update(g, state.opt_state, x)
    direction = -scaled
    descent = jnp.vdot(g, direction) < 0
    direction = jnp.where(descent, direction, -g)
    max_steps = config.max_linesearch
    if max_evals is not None:
        max_steps = jnp.minimum(max_steps, max_evals)
    a, value, g_new, count = wolfe_linesearch(value_and_grad, x, state.value, g, direction, 1.0,
                                              max_steps, config.c1, config.c2)
    moved = a > 0
    x_new = jnp.where(moved, x + a * direction, x)
    failures = jnp.where(moved, 0, state.failures + 1)
    # a failed search or a non-descent direction restarts the direction's memory
    reset = ~moved | ~descent
    opt_state = _select(reset, transform.init(x), opt_state)
    stalled = (failures >= config.max_failures) | _grad_small(g_new, config.gtol)
    new = MinState(unravel(x_new), value, unravel(g_new), opt_state, state.evals + count,
                   failures, stalled)
    return new, MinInfo(count, a)
