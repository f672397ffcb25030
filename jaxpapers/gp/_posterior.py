"""Exact GP posterior on fixed-shape (padded) buffers, with an explicit jitter policy.

Padding: a buffer of ``B`` rows holds ``n <= B`` observations and a boolean ``mask``. For padded
rows the kernel block is replaced by the identity (zero cross-covariance, unit diagonal) and the
target by ``0``, so the Cholesky factor is block diagonal and every result (mean, variance, log
marginal likelihood) equals the unpadded GP's. Buffers are sized by :func:`bucket_size` so that a
loop that adds one point per step compiles once per bucket, not once per step.

Jitter policy: ``chol(K + (lambda + j) I)`` with ``j = jitter`` first; while the factor is not
finite, ``j`` is multiplied by 10, at most ``max_tries`` times. If it still fails the posterior's
``ok`` flag is ``False``; eagerly :func:`condition` raises
:class:`~jaxpapers._src.checks.InvalidInputError` with the jitter reached.

Bad input: shapes and dtypes are checked at call or trace time (``ValueError`` naming the
argument). NaN or infinite data on real rows, or hyper-parameters that are not finite and
positive, raise eagerly; under ``jit`` :func:`condition` reports ``ok = False``. Query points
with NaN give NaN predictions (documented, no flag involved).

Shapes: ``B`` buffer rows, ``d`` input dimensions, ``P`` query points.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.scipy.linalg import cho_solve, solve_triangular

from jaxpapers._src import checks
from jaxpapers.gp._kernels import (
    GPParams,
    check_params,
    check_points,
    get_kernel,
    params_valid,
)

__all__ = [
    "Posterior",
    "bucket_size",
    "pad_data",
    "condition",
    "predict",
    "ucb",
    "lcb",
    "log_marginal_likelihood",
    "MIN_VARIANCE",
]

MIN_VARIANCE = 1e-12  # floor on the predictive variance before a square root


@dataclasses.dataclass(frozen=True)
class Posterior:
    """A conditioned GP (a pytree; ``kernel`` is static metadata).

    Attributes:
      x: ``[B, d]`` training inputs (padded rows arbitrary).
      mask: ``[B]`` bool, True for real observations.
      chol: ``[B, B]`` lower Cholesky factor of the masked ``K + (lambda + jitter) I``.
      alpha: ``[B]`` ``(K + (lambda + jitter) I)^{-1} y`` (zero on padded rows).
      params: the :class:`GPParams` used.
      jitter: scalar jitter that was finally added to the diagonal.
      ok: scalar bool, False when no jitter up to the maximum gave a finite Cholesky factor.
      chol_inv: ``[B, B]`` explicit ``L^{-1}`` or None (see ``condition(with_inverse=...)``).
      kernel: kernel name (``"se"`` or ``"matern52"``), static.
    """

    x: jax.Array
    mask: jax.Array
    chol: jax.Array
    alpha: jax.Array
    params: GPParams
    jitter: jax.Array
    ok: jax.Array
    chol_inv: jax.Array | None = None
    kernel: str = dataclasses.field(default="se", metadata=dict(static=True))


jax.tree_util.register_dataclass(
    Posterior, data_fields=["x", "mask", "chol", "alpha", "params", "jitter", "ok", "chol_inv"],
    meta_fields=["kernel"])


def bucket_size(n: int, minimum: int = 8) -> int:
    """Smallest power of two ``>= max(n, minimum)``: the buffer size used for ``n`` points.

    Args:
      n: number of points, ``n >= 0``.
      minimum: smallest size, a positive Python int.

    Returns:
      A Python int.

    Raises:
      ValueError: ``n < 0`` or ``minimum`` not a positive int.

    Example:
      >>> from jaxpapers.gp import bucket_size
      >>> bucket_size(3), bucket_size(9), bucket_size(64)
      (8, 16, 64)
    """
    checks.require(int(n) >= 0, f"n must be >= 0; got {n}")
    checks.require_positive_int(minimum, "minimum")
    n = max(int(n), int(minimum))
    return 1 << math.ceil(math.log2(n))


def pad_data(x, y, size: int | None = None):
    """Pad ``x [n, d]`` and ``y [n]`` to ``size`` rows (default :func:`bucket_size`).

    Args:
      x: ``[n, d]`` real inputs.
      y: ``[n]`` floating targets.
      size: static number of rows ``B >= n`` (default ``bucket_size(n)``).

    Returns:
      ``(x_pad [B, d], y_pad [B], mask [B] bool)``; padded rows are zeros.

    Raises:
      ValueError: on rank/shape mismatch or ``size < n``.
    """
    x = check_points(x, "x")
    y = _check_targets(y, x.shape[0])
    n = x.shape[0]
    size = bucket_size(n) if size is None else checks.require_positive_int(size, "size")
    checks.require(size >= n, f"size must be >= the number of points {n}; got {size}")
    pad = size - n
    mask = jnp.arange(size) < n
    return jnp.pad(x, ((0, pad), (0, 0))), jnp.pad(y, (0, pad)), mask


def _masked_gram(params: GPParams, x, mask, kernel: str):
    """``K + lambda I`` on real rows, identity on padded rows."""
    k = get_kernel(kernel)(params, x, x)
    both = mask[:, None] & mask[None, :]
    eye = jnp.eye(x.shape[0], dtype=k.dtype)
    return jnp.where(both, k + params.noise * eye, eye)


def _check_targets(y, n):
    y = jnp.asarray(y)
    checks.require(y.shape == (n,), f"y must have shape ({n},); got {y.shape}")
    checks.require(jnp.issubdtype(y.dtype, jnp.floating),
                   f"y must be a floating array; got dtype {y.dtype}")
    return y


def _checked_inputs(params, x, y, mask):
    x = check_points(x, "x")
    y = _check_targets(y, x.shape[0])
    mask = jnp.ones(x.shape[0], bool) if mask is None else jnp.asarray(mask)
    checks.require(mask.shape == y.shape, f"mask must have shape {y.shape}; got {mask.shape}")
    checks.require(mask.dtype == bool or jnp.issubdtype(mask.dtype, jnp.integer),
                   f"mask must be boolean; got dtype {mask.dtype}")
    check_params(params, x.shape[1])
    return x, y, mask.astype(bool)


def _data_valid(params, x, y, mask):
    """Scalar bool: real rows finite and hyper-parameters finite and positive."""
    rows = jnp.all(jnp.isfinite(x), axis=1) & jnp.isfinite(y)
    return jnp.all(rows | ~mask) & params_valid(params)


def _check_values(params, x, y, mask):
    """Eager value checks (NaN/inf data on real rows, bad hyper-parameters)."""
    checks.raise_if_concrete(lambda x, y, m: ~jnp.all(
        (jnp.all(jnp.isfinite(x), axis=1) & jnp.isfinite(y)) | ~m),
        "x and y must be finite on real (mask=True) rows", x, y, mask)
    checks.raise_if_concrete(lambda *p: ~params_valid(GPParams(*p)),
                             "params (lengthscale, variance, noise) must be finite and > 0 "
                             "(noise >= 0)", *params)


def _cholesky_with_jitter(gram, mask, jitter, max_tries):
    """Escalating-jitter Cholesky; returns ``(L, jitter_used, ok)``."""
    diag = mask.astype(gram.dtype)

    def factor(j):
        return jnp.linalg.cholesky(gram + j * jnp.diag(diag))

    def finite(chol):
        return jnp.all(jnp.isfinite(chol))

    def cond(carry):
        _, j, tries, ok = carry
        return (~ok) & (tries < max_tries)

    def body(carry):
        _, j, tries, _ = carry
        j = j * 10.0
        chol = factor(j)
        return chol, j, tries + 1, finite(chol)

    j0 = jnp.asarray(jitter, gram.dtype)
    chol0 = factor(j0)
    chol, j, _, ok = lax.while_loop(cond, body, (chol0, j0, jnp.int32(0), finite(chol0)))
    return chol, j, ok


def _check_jitter(jitter):
    if checks.is_concrete(jitter):
        checks.require(bool(np.all(np.asarray(jitter) >= 0)),
                       f"jitter must be finite and >= 0; got {jitter}")


def condition(params: GPParams, x, y, mask=None, *, kernel: str = "se", jitter: float = 1e-8,
              max_tries: int = 6, with_inverse: bool = False) -> Posterior:
    """Condition a zero-mean GP on (padded) data.

    Args:
      params: hyper-parameters.
      x: ``[B, d]`` inputs.
      y: ``[B]`` targets (values on padded rows are ignored).
      mask: ``[B]`` bool, True for real rows (default: all real).
      kernel: ``"se"`` (squared exponential ARD) or ``"matern52"``.
      jitter: first jitter added to the noise on the diagonal of real rows.
      max_tries: how many times the jitter may be multiplied by 10 after a failed factorisation.
      with_inverse: also store ``L^{-1}`` (one extra ``O(B^3)`` solve); :func:`predict` then uses
        a matrix product instead of a triangular solve, several times faster for many query
        points on CPU (at a small cost in accuracy for ill-conditioned matrices).

    Returns:
      A :class:`Posterior`. Under ``jit`` check ``posterior.ok``: it is False when ``x`` or
      ``y`` holds NaN or inf on a real row, when a hyper-parameter is not finite and positive,
      or when no jitter up to ``jitter * 10**max_tries`` gave a finite factor (a
      non-positive-definite kernel matrix); predictions are then meaningless.

    Raises:
      ValueError: on bad shapes or dtypes, an unknown kernel, a negative ``jitter``; eagerly on
        non-finite data on real rows or bad hyper-parameters.
      InvalidInputError: eagerly, when the matrix is not positive definite even with the largest
        jitter.
    """
    get_kernel(kernel)
    max_tries = int(max_tries)
    checks.require(max_tries >= 0, f"max_tries must be >= 0; got {max_tries}")
    _check_jitter(jitter)
    x, y, mask = _checked_inputs(params, x, y, mask)
    _check_values(params, x, y, mask)
    gram = _masked_gram(params, x, mask, kernel)
    chol, used, ok = _cholesky_with_jitter(gram, mask, jitter, max_tries)
    ok = ok & _data_valid(params, x, y, mask)
    checks.raise_if_concrete(
        lambda flag: ~flag,
        f"kernel matrix is not positive definite (Cholesky failed with jitter up to "
        f"{jitter * 10.0**max_tries:.1e}); check for NaN inputs, a negative noise or duplicated "
        "points with zero noise", ok)
    y_masked = jnp.where(mask, y, 0.0)
    alpha = cho_solve((chol, True), y_masked)
    chol_inv = None
    if with_inverse:
        chol_inv = solve_triangular(chol, jnp.eye(x.shape[0], dtype=chol.dtype), lower=True)
    return Posterior(x, mask, chol, alpha, params, used, ok, chol_inv, kernel)


def predict(posterior: Posterior, xs):
    """Posterior mean and variance at ``xs``.

    Args:
      posterior: from :func:`condition`.
      xs: ``[P, d]`` query points.

    Returns:
      ``(mean [P], var [P])``; ``var = s^2 - |L^{-1} k(X, xs)|^2`` (not floored; may be slightly
      negative from round-off). NaN at query points holding NaN, and everywhere when
      ``posterior.ok`` is False.

    Raises:
      ValueError: when ``xs`` is not a floating ``[P, d]`` array with the posterior's ``d``;
        eagerly, when ``xs`` holds NaN or inf.
    """
    xs = check_points(xs, "xs", posterior.x.shape[1])
    checks.raise_if_concrete(lambda a: ~jnp.all(jnp.isfinite(a)), "xs must be finite", xs)
    kernel = get_kernel(posterior.kernel)
    kxs = kernel(posterior.params, xs, posterior.x)  # [P, B]
    kxs = jnp.where(posterior.mask[None, :], kxs, 0.0)
    mean = kxs @ posterior.alpha
    if posterior.chol_inv is None:
        v = solve_triangular(posterior.chol, kxs.T, lower=True).T
    else:
        v = kxs @ posterior.chol_inv.T
    var = posterior.params.variance - jnp.sum(v * v, axis=1)
    return mean, var


def _bound(posterior: Posterior, xs, beta, sign):
    checks.require(jnp.ndim(beta) == 0, f"beta must be a scalar; got shape {jnp.shape(beta)}")
    checks.raise_if_concrete(lambda b: ~(jnp.asarray(b) >= 0), f"beta must be >= 0; got {beta}",
                             beta)
    beta = jnp.where(beta >= 0, beta, jnp.nan)  # traced: a negative or NaN beta gives NaN
    mean, var = predict(posterior, xs)
    return mean + sign * beta * jnp.sqrt(jnp.maximum(var, MIN_VARIANCE))


def ucb(posterior: Posterior, xs, beta):
    """Upper confidence bound ``mu + beta * sigma`` (beta multiplies sigma, not its square root).

    ``sigma = sqrt(max(var, MIN_VARIANCE))`` so gradients stay finite at training inputs.

    Args:
      posterior: from :func:`condition`.
      xs: ``[P, d]`` query points.
      beta: scalar exploration weight.

    Returns:
      ``[P]`` values of the posterior's dtype; NaN where ``xs`` holds NaN, and everywhere when
      ``beta`` is negative or NaN under ``jit``.

    Raises:
      ValueError: ``xs`` not ``[P, d]`` with the posterior's ``d``; eagerly, a negative or NaN
        ``beta``.
    """
    return _bound(posterior, xs, beta, 1.0)


def lcb(posterior: Posterior, xs, beta):
    """Lower confidence bound ``mu - beta * sigma`` (``sigma`` as in :func:`ucb`).

    Args:
      posterior: from :func:`condition`.
      xs: ``[P, d]`` query points.
      beta: scalar exploration weight.

    Returns:
      ``[P]`` values; NaN as for :func:`ucb`.

    Raises:
      ValueError: as :func:`ucb`.
    """
    return _bound(posterior, xs, beta, -1.0)


def log_marginal_likelihood(params: GPParams, x, y, mask=None, *, kernel: str = "se",
                            jitter: float = 0.0):
    """Log marginal likelihood ``log N(y | 0, K + lambda I)`` of the real rows.

    No jitter escalation here (it would make the objective discontinuous for fitting); a
    non-positive-definite matrix gives NaN.

    Args:
      params: hyper-parameters.
      x: ``[B, d]`` inputs.
      y: ``[B]`` targets.
      mask: ``[B]`` bool, True for real rows (default: all).
      kernel: kernel name.
      jitter: fixed extra diagonal term.

    Returns:
      Scalar log marginal likelihood; NaN under ``jit`` for NaN/inf data on real rows or bad
      hyper-parameters.

    Raises:
      ValueError: shapes that do not match (``x [B, d]``, ``y [B]``, ``mask [B]``), an unknown
        ``kernel`` or a negative ``jitter``; eagerly, NaN/inf data on real rows or bad
        hyper-parameters.
    """
    _check_jitter(jitter)
    x, y, mask = _checked_inputs(params, x, y, mask)
    _check_values(params, x, y, mask)
    gram = _masked_gram(params, x, mask, kernel)
    gram = gram + jitter * jnp.diag(mask.astype(gram.dtype))
    chol = jnp.linalg.cholesky(gram)
    y_masked = jnp.where(mask, y, 0.0)
    v = solve_triangular(chol, y_masked, lower=True)
    n = jnp.sum(mask).astype(gram.dtype)
    return (-0.5 * jnp.sum(v * v) - jnp.sum(jnp.log(jnp.diagonal(chol)))
            - 0.5 * n * jnp.log(2.0 * jnp.pi))
