"""Box-constrained Newton ascent for the per-set acquisition, and exact expected-UCB derivatives.

Two pieces behind ``OptimizerConfig(method="newton")``:

* :func:`newton_refine` maximises a smooth function over the unit box from a batch of starts with
  a projected trust-region Newton step. Coordinates at a bound whose gradient points outwards are
  held; on the free ones the step is ``|-H|^{-1} g`` (eigenvalues of ``-H`` in absolute value, so a
  saddle or a minimum is left uphill), cut to an infinity-norm radius that doubles when an
  accepted step was cut by it and shrinks fourfold on a rejected one. Control sets have a handful of
  variables (``d <= 3`` on Hartmann-3), so the Hessian is cheap and the iteration converges
  quadratically near a maximum; it stops when every start's predicted gain is below
  ``1e-12`` or after ``num_steps`` iterations. Unlike ascent in logit space it lands *on* a
  bound when the maximum is there, as L-BFGS-B does.
* :class:`ExpectedUCBParts` evaluates the expected UCB of an SE-kernel GP, its gradient and its
  Hessian in closed form. With ``Z_n = M x + (1 - M) w_n`` the kernel factorises,
  ``k(Z_n, X_j) = c_j(x) u_nj`` with ``c_j(x) = exp(-1/2 sum_{d in S} (x_d - X_jd)^2 / l_d^2)``
  and ``u_nj = s^2 exp(-1/2 sum_{d not in S} (w_nd - X_jd)^2 / l_d^2)``, and ``U = [u_nj]`` does
  not depend on ``x``. So per query:

  - mean: ``1/N sum_n mu(Z_n) = c . a`` with ``a = alpha * mean_n u_n`` (``O(n d)``);
  - variance: ``q_n = (u_n * c)^T K^{-1} (u_n * c)``, one ``[N, n] x [n, n]`` product
    ``G = (U * c) K^{-1}`` for all samples;
  - gradient in ``c``: ``a - (U * G)^T r`` with ``r_n = beta / (N sigma_n)``;
  - Hessian in ``c``: ``-K^{-1} * (U^T diag(r) U) - E^T diag(r / sigma^2) E`` with ``E = U * G``,

  then the chain rule through ``c(x)`` (``dc_j/dx_d = c_j delta_jd`` with
  ``delta_jd = -(x_d - X_jd) / l_d^2`` on the set's coordinates). A value-and-gradient costs one
  matrix product of ``N n^2``, the Hessian one more; no kernel is re-evaluated at the ``N``
  assembled points. Tested against automatic differentiation of :func:`expected_ucb`.

The expected UCB of a query is ``1/N sum_n mu(Z_n) + beta max(var_n, MIN_VARIANCE)^{1/2}``, the
same function as :func:`jaxpapers.bocvs.expected_ucb`; where the floor is active the derivatives
of the square root are taken as zero, as automatic differentiation of that function does.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.scipy.linalg import cho_solve

from jaxpapers._src import checks
from jaxpapers.bocvs._common import check_floats, check_masks, nan_for_bad_sets
from jaxpapers.gp import MIN_VARIANCE, Posterior

__all__ = [
    "ExpectedUCBParts",
    "expected_ucb_parts",
    "expected_ucb_value",
    "expected_ucb_derivatives",
    "closed_form_hooks",
    "newton_refine",
    "autodiff_derivatives",
]

_GAIN_TOL = 1e-12     # stop once every start's predicted Newton gain is below this
_EIG_FLOOR = 1e-10    # relative floor on |eigenvalues| of -H (flat directions take a bounded step)
_RADIUS0 = 0.25       # initial infinity-norm trust radius (the box is [0, 1]^d)


class ExpectedUCBParts(NamedTuple):
    """What every query of one round shares, per control set.

    Attributes:
      centers: ``[B, d]`` training inputs divided by the length-scales.
      inv_ls2: ``[d]`` ``1 / l_d^2``.
      masks: ``[m, d]`` control-set masks.
      u: ``[m, N, B]`` uncontrolled kernel factors ``u_nj`` (zero on padded rows).
      a: ``[m, B]`` ``alpha * mean_n u_n``.
      kinv: ``[B, B]`` ``(K + lambda I)^{-1}`` of the masked buffer.
      variance: signal variance ``s^2``.
      beta: UCB weight.
    """

    centers: jax.Array
    inv_ls2: jax.Array
    masks: jax.Array
    u: jax.Array
    a: jax.Array
    kinv: jax.Array
    variance: jax.Array
    beta: jax.Array


def expected_ucb_parts(posterior: Posterior, masks, w, beta) -> ExpectedUCBParts:
    """Precompute :class:`ExpectedUCBParts` of an SE-kernel posterior for the sets ``masks``.

    Args:
      posterior: from :func:`jaxpapers.gp.condition` with ``kernel="se"``.
      masks: ``(m, d)`` floating 0/1 control-set masks.
      w: ``(N, d)`` floating fixed samples of the variables.
      beta: scalar UCB weight, ``>= 0``.

    Returns:
      :class:`ExpectedUCBParts` in the posterior's dtype; under ``jit`` its values are NaN
      where ``w`` is NaN, and its ``beta`` NaN when ``beta`` is NaN or negative.

    Raises:
      ValueError: a posterior of another kernel, ``masks`` or ``w`` of a wrong shape or dtype;
        eagerly, mask entries other than 0/1, non-finite ``w``, a NaN or negative ``beta``.
    """
    checks.require(isinstance(posterior, Posterior),
                   f"posterior must be a jaxpapers.gp.Posterior; got {type(posterior).__name__}")
    checks.require(posterior.kernel == "se", "the closed-form expected-UCB derivatives need the "
                   f"SE kernel; got kernel={posterior.kernel!r} (use method='adam' instead)")
    d = posterior.x.shape[1]
    masks = check_masks(masks, "masks", (jnp.shape(masks)[0] if jnp.ndim(masks) else 0, d))
    w = check_floats(w, "w", (None, d))
    checks.raise_if_concrete(lambda b: ~(b >= 0), f"beta must be >= 0; got {beta}",
                             jnp.asarray(beta))
    masks = jnp.asarray(masks, posterior.x.dtype)
    ls = jnp.broadcast_to(posterior.params.lengthscale, (d,)).astype(posterior.x.dtype)
    centers = posterior.x / ls[None, :]
    ws = w / ls[None, :]

    def factor(mask_row):
        diff = ws[:, None, :] - centers[None, :, :]                      # [N, B, d]
        sq = jnp.sum((1.0 - mask_row)[None, None, :] * diff * diff, axis=-1)
        u = posterior.params.variance * jnp.exp(-0.5 * sq)
        return jnp.where(posterior.mask[None, :], u, 0.0)

    u = jax.vmap(factor)(masks)                                          # [m, N, B]
    a = posterior.alpha[None, :] * jnp.mean(u, axis=1)
    if posterior.chol_inv is not None:
        kinv = posterior.chol_inv.T @ posterior.chol_inv
    else:
        kinv = cho_solve((posterior.chol, True), jnp.eye(posterior.x.shape[0],
                                                         dtype=posterior.chol.dtype))
    beta = jnp.asarray(beta, posterior.x.dtype)
    return ExpectedUCBParts(centers, 1.0 / (ls * ls), masks, u, a, kinv,
                            jnp.asarray(posterior.params.variance, posterior.x.dtype),
                            jnp.where(beta >= 0, beta, jnp.nan))


def _query_factor(parts: ExpectedUCBParts, mask_row, x):
    """``c(x) [B]`` and ``delta [B, d]`` (``dc/dx = c * delta``) for one query."""
    scaled = x * jnp.sqrt(parts.inv_ls2)
    diff = scaled[None, :] - parts.centers                                # (x_d - X_jd) / l_d
    c = jnp.exp(-0.5 * jnp.sum(mask_row[None, :] * diff * diff, axis=-1))
    delta = -(mask_row * jnp.sqrt(parts.inv_ls2))[None, :] * diff
    return c, delta


def _sigma_terms(parts: ExpectedUCBParts, u, c):
    g = (u * c[None, :]) @ parts.kinv                                     # [N, B]
    var = parts.variance - jnp.sum(u * c[None, :] * g, axis=-1)
    active = var > MIN_VARIANCE
    var = jnp.maximum(var, MIN_VARIANCE)
    return g, var, active


def _check_query(parts, x):
    checks.require(isinstance(parts, ExpectedUCBParts),
                   f"parts must be ExpectedUCBParts (see expected_ucb_parts); got "
                   f"{type(parts).__name__}")
    x = jnp.asarray(x)
    d = parts.masks.shape[1]
    checks.require(x.shape == (d,), f"x must have shape ({d},); got {x.shape}")
    checks.require(jnp.issubdtype(x.dtype, jnp.floating), f"x must be floating; got {x.dtype}")
    return x


def expected_ucb_value(parts: ExpectedUCBParts, set_index, x):
    """Expected UCB of one query for one control set, from the shared parts.

    Args:
      parts: :func:`expected_ucb_parts` of the round.
      set_index: integer index of the control set (``0 <= set_index < m``; may be traced).
      x: ``(d,)`` floating query.

    Returns:
      Scalar, equal to :func:`jaxpapers.bocvs.expected_ucb` at the same query up to rounding;
      NaN where ``x`` holds NaN.

    Raises:
      ValueError: ``parts`` of another type, ``x`` of a wrong shape or dtype.
    """
    x = _check_query(parts, x)
    u = parts.u[set_index]
    c, _ = _query_factor(parts, parts.masks[set_index], x)
    _, var, _ = _sigma_terms(parts, u, c)
    return c @ parts.a[set_index] + parts.beta * jnp.mean(jnp.sqrt(var))


def expected_ucb_derivatives(parts: ExpectedUCBParts, set_index, x):
    """Value, gradient and Hessian of the expected UCB at one query, in closed form.

    Args:
      parts: :func:`expected_ucb_parts` of the round.
      set_index: integer index of the control set (may be traced).
      x: ``(d,)`` floating query.

    Returns:
      ``(value, gradient (d,), Hessian (d, d))``; zero in the uncontrolled coordinates, NaN
      where ``x`` holds NaN.

    Raises:
      ValueError: ``parts`` of another type, ``x`` of a wrong shape or dtype.
    """
    x = _check_query(parts, x)
    u = parts.u[set_index]
    mask_row = parts.masks[set_index]
    a = parts.a[set_index]
    c, delta = _query_factor(parts, mask_row, x)
    g, var, active = _sigma_terms(parts, u, c)
    sigma = jnp.sqrt(var)
    num = u.shape[0]
    f = c @ a + parts.beta * jnp.mean(sigma)
    r = jnp.where(active, parts.beta / (num * sigma), 0.0)               # [N]
    e = u * g                                                              # [N, B]
    grad_c = a - e.T @ r                                                   # [B]
    jac = c[:, None] * delta                                               # [B, d]
    grad = jac.T @ grad_c
    ur = (u * r[:, None]).T @ u                                            # [B, B]
    ej = e @ jac                                                           # [N, d]
    hess = (-(jac.T @ ((parts.kinv * ur) @ jac))
            - (ej * (r / var)[:, None]).T @ ej
            + (delta * (grad_c * c)[:, None]).T @ delta
            - jnp.diag(mask_row * parts.inv_ls2) * jnp.dot(grad_c, c))
    return f, grad, 0.5 * (hess + hess.T)


def autodiff_derivatives(value_fn: Callable, masks) -> Callable:
    """``(set_index, x) -> (value, gradient, Hessian)`` of ``value_fn(mask_row, x)`` by autodiff."""

    def fn(set_index, x):
        mask_row = masks[set_index]
        f, g = jax.value_and_grad(value_fn, argnums=1)(mask_row, x)
        h = jax.hessian(value_fn, argnums=1)(mask_row, x)
        return f, g, h

    return fn


def newton_refine(derivatives: Callable, masks, starts, num_steps: int):
    """Projected trust-region Newton ascent; see :func:`_newton_refine`. Values are NaN for the
    sets whose mask row is not finite."""
    x, value, iterations = _newton_refine(derivatives, masks, starts, num_steps)
    return x, nan_for_bad_sets(jnp.asarray(masks), value), iterations


def _newton_refine(derivatives: Callable, masks, starts, num_steps: int):
    """Projected trust-region Newton ascent in ``[0, 1]^d`` from ``starts [m, R, d]``.

    Args:
      derivatives: ``(set_index, x [d]) -> (value, gradient [d], Hessian [d, d])``.
      masks: ``[m, d]`` control-set masks (only masked coordinates move).
      starts: ``[m, R, d]`` starting points in the box.
      num_steps: maximum number of iterations (static).

    Returns:
      ``(x [m, R, d], value [m, R], iterations)``; every accepted step increased the value, so the
      result is never worse than its start (NaN values where a start or a mask holds NaN).

    Raises:
      ValueError: on bad shapes or dtypes, ``num_steps`` not an int ``>= 0``; eagerly on masks
        other than 0/1 or non-finite starts.
    """
    checks.require(isinstance(num_steps, int) and num_steps >= 0,
                   f"num_steps must be an int >= 0; got {num_steps!r}")
    masks = check_masks(masks)
    starts = check_floats(starts, "starts", (masks.shape[0], None, masks.shape[1]))
    m, num_starts, d = starts.shape
    set_index = jnp.broadcast_to(jnp.arange(m)[:, None], (m, num_starts))
    evaluate = jax.vmap(jax.vmap(derivatives))
    movable = jnp.broadcast_to(masks[:, None, :] > 0, starts.shape)
    eye = jnp.eye(d, dtype=starts.dtype)

    def direction(x, g, h):
        held = ((x <= 0.0) & (g < 0.0)) | ((x >= 1.0) & (g > 0.0))
        free = movable & ~held
        both = free[..., :, None] & free[..., None, :]
        a = jnp.where(both, -h, 0.0) + jnp.where(free, 0.0, 1.0)[..., None] * eye[None, None]
        eigval, eigvec = jnp.linalg.eigh(a)
        scale = jnp.max(jnp.abs(eigval), axis=-1, keepdims=True)
        eigval = jnp.maximum(jnp.abs(eigval), _EIG_FLOOR * scale + jnp.finfo(a.dtype).tiny)
        gf = jnp.where(free, g, 0.0)
        coef = jnp.einsum("...ji,...j->...i", eigvec, gf) / eigval
        step = jnp.where(free, jnp.einsum("...ij,...j->...i", eigvec, coef), 0.0)
        gain = 0.5 * jnp.sum(gf * step, axis=-1)                         # predicted by the model
        return step, gain

    def cond(state):
        it, _, _, _, _, _, gain = state
        return (it < num_steps) & jnp.any(gain > _GAIN_TOL)

    def body(state):
        it, x, f, g, h, radius, _ = state
        step, gain = direction(x, g, h)
        size = jnp.max(jnp.abs(step), axis=-1)
        cut = jnp.minimum(1.0, radius / jnp.maximum(size, jnp.finfo(x.dtype).tiny))
        trial = jnp.clip(x + step * cut[..., None], 0.0, 1.0)
        f2, g2, h2 = evaluate(set_index, trial)
        better = jnp.isfinite(f2) & (f2 > f) & (gain > _GAIN_TOL)
        full = cut >= 1.0
        radius = jnp.where(better, jnp.where(full, radius, jnp.minimum(2.0 * radius, 1.0)),
                           0.25 * radius)  # grows when an accepted step was cut by it
        keep = lambda new, old: jnp.where(better.reshape(better.shape + (1,) * (new.ndim - 2)),
                                          new, old)
        x, f, g, h = keep(trial, x), keep(f2, f), keep(g2, g), keep(h2, h)
        _, gain_next = direction(x, g, h)
        gain_next = jnp.where(radius > 1e-12, gain_next, 0.0)
        return it + 1, x, f, g, h, radius, gain_next

    f0, g0, h0 = evaluate(set_index, starts)
    finite = jnp.isfinite(f0)
    g0 = jnp.where(jnp.isfinite(g0), g0, 0.0)
    h0 = jnp.where(jnp.isfinite(h0), h0, 0.0)
    _, gain0 = direction(starts, g0, h0)
    radius0 = jnp.full(f0.shape, _RADIUS0, starts.dtype)
    state = (jnp.asarray(0), starts, jnp.where(finite, f0, -jnp.inf), g0, h0, radius0,
             jnp.where(finite, gain0, 0.0))
    it, x, f, _, _, _, _ = jax.lax.while_loop(cond, body, state)
    return x, f, it


def closed_form_hooks(posterior: Posterior, masks, w, beta, config) -> dict:
    """``score_fn`` and ``derivatives`` for :func:`maximize_per_control_set` from the closed form.

    With ``0 < config.coarse_samples < N`` the candidates are scored, and Newton first converges,
    on the expected UCB over the first ``coarse_samples`` rows of ``w`` (a proxy ``N /
    coarse_samples`` times cheaper); Newton then finishes on all ``N`` rows, usually in two or
    three iterations. The result is a local maximum of the full objective either way; the proxy
    only decides where the search starts and goes.
    """
    parts = expected_ucb_parts(posterior, masks, w, beta)
    scout = parts
    if 0 < config.coarse_samples < w.shape[0]:
        scout = expected_ucb_parts(posterior, masks, w[:config.coarse_samples], beta)
    hooks = dict(score_fn=functools.partial(expected_ucb_value, scout))
    if config.method == "newton":
        stages = (scout, parts) if scout is not parts else (parts,)
        hooks["derivatives"] = tuple(functools.partial(expected_ucb_derivatives, p)
                                     for p in stages)
    return hooks


newton_refine.__doc__ = _newton_refine.__doc__
