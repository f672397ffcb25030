"""Stationary ARD covariance functions: squared exponential and Matérn-5/2.

Both take hyper-parameters as a :class:`GPParams` pytree (arrays, so they can be fitted, vmapped
and traced) and return the cross-covariance matrix between two sets of points.

Shapes: ``x1 [n1, d]``, ``x2 [n2, d]`` -> ``[n1, n2]``; ``lengthscale [d]`` (ARD) or scalar.
"""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp

from jaxpapers._src import checks

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

    Raises:
      ValueError: on a non-floating ``dtype``, a bad shape or ``dim``; eagerly, on a value that
        is not finite and positive (the noise may be 0). Under ``jit`` such a value becomes NaN (and
        :func:`condition` then reports ``ok = False``).
    """
    dtype = jnp.result_type(float) if dtype is None else dtype
    checks.require(jnp.issubdtype(dtype, jnp.floating),
                   f"dtype must be a floating dtype; got {jnp.dtype(dtype).name}")
    for name, value in (("lengthscale", lengthscale), ("variance", variance), ("noise", noise)):
        kind = jnp.asarray(value).dtype
        checks.require(jnp.issubdtype(kind, jnp.floating) or jnp.issubdtype(kind, jnp.integer),
                       f"{name} must be real (floating or integer); got dtype {kind}")
    ls = jnp.asarray(lengthscale, dtype)
    checks.require(ls.ndim <= 1, f"lengthscale must be a scalar or have shape (d,); got "
                   f"{ls.shape}")
    if dim is not None:
        dim = checks.require_positive_int(dim, "dim")
        checks.require(ls.shape in ((), (dim,)),
                       f"lengthscale must be a scalar or have shape ({dim},); got {ls.shape}")
        ls = jnp.broadcast_to(ls, (dim,))
    values = {"lengthscale": ls, "variance": jnp.asarray(variance, dtype),
              "noise": jnp.asarray(noise, dtype)}
    for name, value in values.items():
        checks.require(name == "lengthscale" or value.ndim == 0,
                       f"{name} must be a scalar; got shape {value.shape}")
        bound = ">= 0" if name == "noise" else "> 0"
        checks.raise_if_concrete(lambda v, name=name: ~_in_range(name, v),
                                 f"{name} must be finite and {bound}; got {value}", value)
    # under jit a bad value becomes NaN, so that condition's ``ok`` flag is False
    return GPParams(*(jnp.where(_in_range(name, v), v, jnp.nan) for name, v in values.items()))


def _in_range(name, value):
    """Finite and positive (the noise may be 0: a noise-free GP)."""
    value = jnp.asarray(value)
    return jnp.isfinite(value) & ((value >= 0) if name == "noise" else (value > 0))


def check_points(x, name: str, dim: int | None = None):
    """``x`` as a floating ``[n, d]`` array, or ``ValueError`` naming ``name`` and the shape."""
    x = jnp.asarray(x)
    want = f"(n, {dim})" if dim is not None else "(n, d)"
    checks.require(x.ndim == 2 and (dim is None or x.shape[1] == dim),
                   f"{name} must have shape {want}; got {x.shape}")
    checks.require(jnp.issubdtype(x.dtype, jnp.floating),
                   f"{name} must be a floating array; got dtype {x.dtype}")
    return x


def check_params(params: GPParams, dim: int):
    """Shape and dtype checks of ``params`` against ``d = dim`` inputs (no value checks)."""
    checks.require(isinstance(params, GPParams),
                   f"params must be a GPParams (see gp_params); got {type(params).__name__}")
    ls = jnp.shape(params.lengthscale)
    checks.require(ls in ((), (dim,)),
                   f"params.lengthscale must be a scalar or have shape ({dim},); got {ls}")
    for name in ("variance", "noise"):
        checks.require(jnp.shape(getattr(params, name)) == (),
                       f"params.{name} must be a scalar; got shape "
                       f"{jnp.shape(getattr(params, name))}")
    for name, value in params._asdict().items():
        checks.require(jnp.issubdtype(jnp.result_type(value), jnp.floating),
                       f"params.{name} must be floating; got {jnp.result_type(value)}")


def params_valid(params: GPParams):
    """Scalar bool: every hyper-parameter finite and positive (the noise may be 0)."""
    return jnp.all(jnp.stack([jnp.all(_in_range(name, v))
                              for name, v in params._asdict().items()]))


def _check_pair(params, x1, x2):
    """Checked ``(x1, x2)``: shapes and dtypes raise; non-finite points raise eagerly and
    become NaN under ``jit`` (an infinite input would otherwise give a plausible 0)."""
    x1 = check_points(x1, "x1")
    x2 = check_points(x2, "x2", x1.shape[1])
    check_params(params, x1.shape[1])
    for name, x in (("x1", x1), ("x2", x2)):
        checks.raise_if_concrete(lambda a: ~jnp.all(jnp.isfinite(a)), f"{name} must be finite",
                                 x)
    return (jnp.where(jnp.isfinite(x1), x1, jnp.nan), jnp.where(jnp.isfinite(x2), x2, jnp.nan))


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
      ``[n1, n2]`` covariance matrix of the inputs' dtype (NaN where an input or
      hyper-parameter is NaN).
    Raises:
      ValueError: ``x1``/``x2`` not 2-D real arrays with the same ``d``, or a ``lengthscale`` of
        another length; eagerly, NaN/inf inputs or non-positive hyper-parameters.
    """
    x1, x2 = _check_pair(params, x1, x2)
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
      ``[n1, n2]`` covariance matrix of the inputs' dtype (NaN where an input or
      hyper-parameter is NaN).
    Raises:
      ValueError: ``x1``/``x2`` not 2-D real arrays with the same ``d``, or a ``lengthscale`` of
        another length; eagerly, NaN/inf inputs or non-positive hyper-parameters.
    """
    x1, x2 = _check_pair(params, x1, x2)
    r2 = _scaled_sq_dist(params.lengthscale, x1, x2)
    tiny = jnp.finfo(r2.dtype).tiny
    r = jnp.where(r2 > 0, jnp.sqrt(jnp.maximum(r2, tiny)), 0.0)
    s5r = jnp.sqrt(5.0).astype(r.dtype) * r
    return params.variance * (1.0 + s5r + 5.0 / 3.0 * r2) * jnp.exp(-s5r)


KERNELS = {"se": se_ard, "matern52": matern52}


def get_kernel(name: str):
    """The kernel function for ``name``.

    Args:
      name: ``"se"`` (:func:`se_ard`) or ``"matern52"`` (:func:`matern52`).

    Returns:
      ``kernel(params, x1, x2) -> [n1, n2]``.

    Raises:
      ValueError: any other name.
    """
    if name not in KERNELS:
        raise ValueError(f"kernel name must be one of {sorted(KERNELS)}; got {name!r}")
    return KERNELS[name]
