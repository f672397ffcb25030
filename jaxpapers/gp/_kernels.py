"""Stationary ARD covariance functions: squared exponential and Matérn-5/2.

Both take hyper-parameters as a :class:`GPParams` pytree (arrays, so they can be fitted, vmapped
and traced) and return the cross-covariance matrix between two sets of points.

Shapes: ``x1 [n1, d]``, ``x2 [n2, d]`` -> ``[n1, n2]``; ``lengthscale [d]`` (ARD) or scalar.
"""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp

__all__ = ["GPParams", "gp_params", "se_ard", "matern52", "KERNELS", "get_kernel"]


class GPParams(NamedTuple):
    """GP hyper-parameters (all positive).

    Attributes:
      lengthscale: ``[d]`` ARD length-scales (a scalar broadcasts to every dimension).
      variance: scalar signal variance ``s^2`` (``k(x, x) = s^2``).
      noise: scalar Gaussian observation-noise variance ``lambda``.
    """

    lengthscale: jnp.ndarray
    variance: jnp.ndarray
    noise: jnp.ndarray


def gp_params(lengthscale, variance=1.0, noise=1e-4, dim: int | None = None,
              dtype=None) -> GPParams:
    """Build :class:`GPParams` as arrays of one floating dtype.

    Args:
      lengthscale: scalar or ``[d]`` length-scales.
      variance: signal variance ``s^2``.
      noise: noise variance ``lambda``.
      dim: if given, broadcast ``lengthscale`` to shape ``[dim]``.
      dtype: floating dtype (default: JAX's default float, float64 under ``jax_enable_x64``).

    Returns:
      A :class:`GPParams`.
    """
    dtype = jnp.result_type(float) if dtype is None else dtype
    ls = jnp.asarray(lengthscale, dtype)
    if dim is not None:
        ls = jnp.broadcast_to(ls, (dim,))
    return GPParams(ls, jnp.asarray(variance, dtype), jnp.asarray(noise, dtype))


def _scaled_sq_dist(lengthscale, x1, x2):
    """Squared distance after dividing every coordinate by its length-scale, ``[n1, n2]``.

    Written as an explicit difference (not the ``|a|^2 + |b|^2 - 2ab`` expansion) so that it is
    exactly zero on the diagonal and never negative; ``d`` is small in BO.
    """
    ls = jnp.broadcast_to(lengthscale, x1.shape[-1:])[None, :]
    a = x1 / ls
    b = x2 / ls
    diff = a[:, None, :] - b[None, :, :]
    return jnp.sum(diff * diff, axis=-1)


def se_ard(params: GPParams, x1, x2):
    """Squared-exponential ARD kernel ``s^2 exp(-1/2 sum_j (x_j - x'_j)^2 / l_j^2)``.

    Args:
      params: hyper-parameters (``noise`` is not used here).
      x1: ``[n1, d]`` points.
      x2: ``[n2, d]`` points.

    Returns:
      ``[n1, n2]`` covariance matrix.
    """
    return params.variance * jnp.exp(-0.5 * _scaled_sq_dist(params.lengthscale, x1, x2))


def matern52(params: GPParams, x1, x2):
    """Matérn-5/2 ARD ``s^2 (1 + sqrt5 r + 5 r^2 / 3) exp(-sqrt5 r)`` (``r``: scaled distance)

    The square root is taken of ``max(r^2, tiny)`` so gradients at ``r = 0`` stay finite (the
    kernel value there is still exactly ``s^2``: the polynomial-exponential factor is smooth).

    Args:
      params: hyper-parameters (``noise`` is not used here).
      x1: ``[n1, d]`` points.
      x2: ``[n2, d]`` points.

    Returns:
      ``[n1, n2]`` covariance matrix.
    """
    r2 = _scaled_sq_dist(params.lengthscale, x1, x2)
    tiny = jnp.finfo(r2.dtype).tiny
    r = jnp.where(r2 > 0, jnp.sqrt(jnp.maximum(r2, tiny)), 0.0)
    s5r = jnp.sqrt(5.0).astype(r.dtype) * r
    return params.variance * (1.0 + s5r + 5.0 / 3.0 * r2) * jnp.exp(-s5r)


KERNELS = {"se": se_ard, "matern52": matern52}


def get_kernel(name: str):
    """The kernel function for ``name`` (``"se"`` or ``"matern52"``); ValueError otherwise."""
    if name not in KERNELS:
        raise ValueError(f"kernel must be one of {sorted(KERNELS)}; got {name!r}")
    return KERNELS[name]
