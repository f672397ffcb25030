"""The infinite-width MLP kernel and the synchronization constants built from it.

A one-hidden-layer MLP ``G(y) = W phi(U y / sqrt(d) + b_U) / sqrt(m) + b_W`` with i.i.d. standard
Gaussian ``U, W`` and biases ``b_U ~ N(0, sigma_u^2)``, ``b_W ~ N(0, sigma_w^2)`` is, for every
width ``m``, a centred random field with covariance ``E[G(x) G(y)^T] = kappa(<x, y>) I_d`` on the
unit sphere, where (spec §2.1, paper §1.1)

    kappa(u) = E[phi(Z_1) phi(Z_2)] + sigma_w^2,
    (Z_1, Z_2) centred Gaussian, Var Z_i = s^2 = 1/d + sigma_u^2, Cov = u/d + sigma_u^2.

This is the paper's three-dimensional expectation ``E[phi(a_u xi + c_u eta + sigma_u b)
phi(a_u xi - c_u eta + sigma_u b)]`` written as a bivariate one. It is evaluated in closed form for
ReLU (arc-cosine kernel) and the identity, and by two-dimensional Gauss–Hermite quadrature for
SiLU, tanh and sigmoid. Derived constants (paper §3 / Prop. 1.x, with the sign and ``1/d`` typos
of v1 corrected as in spec §7):

    kappa'(1) = E[phi'(Z_1)^2] / d
    lambda_bar = (d - 1) kappa'(1) - (d - 3) kappa(1)        (coercivity; A1 needs < 0)
    lambda_1 = (d - 3)/2 kappa'(1) - (d - 1)/2 kappa(1)       (top Lyapunov exponent)

Everything here is jnp and works with traced ``sigma_u``/``sigma_w`` (activation and ``d`` are
static).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxpapers._src import checks

__all__ = [
    "ACTIVATIONS",
    "KernelConstants",
    "activation_fn",
    "kappa",
    "kappa_grid",
    "kernel_constants",
    "lambda_bar_prime",
]


ACTIVATIONS = {
    "relu": jax.nn.relu,
    "silu": jax.nn.silu,
    "tanh": jnp.tanh,
    "sigmoid": jax.nn.sigmoid,
    "linear": lambda z: z,
}

_GH_1D = 96  # nodes of the 1-D rule (kappa(1), kappa'(1))
_GH_2D = 48  # nodes per axis of the 2-D rule (kappa(u))


class KernelConstants(NamedTuple):
    """Constants of the zonal kernel (:func:`kernel_constants`): float scalars, NaN for bad bias
    scales under ``jit``.

    Attributes:
      kappa1: ``kappa(1)``, the per-coordinate variance of the MLP field.
      dkappa1: ``kappa'(1)``.
      lambda1: top Lyapunov exponent of the pure-noise flow.
      lambda_bar: ``(d-1) kappa'(1) - (d-3) kappa(1)``; negative means mean-energy decay (A1).
    """

    kappa1: jax.Array
    dkappa1: jax.Array
    lambda1: jax.Array
    lambda_bar: jax.Array


def activation_fn(name: str):
    """The activation ``phi`` called ``name`` (one of :data:`ACTIVATIONS`)."""
    if name not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}; got {name!r}")
    return ACTIVATIONS[name]


def _check_d(d) -> int:
    d = checks.require_positive_int(d, "d")
    checks.require(d >= 2, f"d (token dimension) must be >= 2; got {d}")
    return d


def _gh(n: int):
    """Probabilists' Gauss–Hermite nodes and weights normalised to a N(0, 1) expectation."""
    nodes, weights = np.polynomial.hermite_e.hermegauss(n)
    return nodes, weights / np.sqrt(2.0 * np.pi)


def _float(x):
    return jnp.asarray(x, dtype=jnp.result_type(float))


def _scale(d, sigma_u):
    return jnp.sqrt(1.0 / d + _float(sigma_u) ** 2)


def kernel_constants(activation: str, d: int, sigma_u=0.0, sigma_w=0.0) -> KernelConstants:
    """``kappa(1)``, ``kappa'(1)``, ``lambda_1`` and ``lambda_bar`` for one MLP configuration.

    Args:
      activation: ``"relu"``, ``"silu"``, ``"tanh"``, ``"sigmoid"`` or ``"linear"``.
      d: token dimension (static int, ``>= 2``).
      sigma_u: standard deviation of the hidden bias ``b_U`` (may be traced).
      sigma_w: standard deviation of the output bias ``b_W`` (may be traced).

    Returns:
      :class:`KernelConstants` of scalars. References: spec §2.1 and §3; paper §3, Prop. 1.x,
      §4.2 (ReLU: ``lambda_1 = -1/(2d) - (sigma_u^2 + 2 sigma_w^2)(d-1)/4``).

    Raises:
      ValueError: unknown activation or ``d < 2`` (call or trace time); ``sigma_u`` or
        ``sigma_w`` not a scalar, or negative or non-finite (eagerly; under ``jit`` every
        constant is NaN).

    >>> c = kernel_constants("relu", 5)
    >>> round(float(c.kappa1), 4), round(float(c.lambda1), 4)   # lambda_1 = -1/(2d)
    (0.1, -0.1)
    """
    phi = activation_fn(activation)
    d = _check_d(d)
    ok = _sigmas_ok(sigma_u, sigma_w)
    return KernelConstants(*(jnp.where(ok, v, jnp.nan)
                             for v in _kernel_constants(phi, activation, d, sigma_u, sigma_w)))


def _kernel_constants(phi, activation, d, sigma_u, sigma_w) -> KernelConstants:
    """:func:`kernel_constants` without its value checks (the simulators check once)."""
    s = _scale(d, sigma_u)
    sw2 = _float(sigma_w) ** 2
    if activation == "relu":
        k1 = 0.5 * s**2 + sw2
        dk1 = jnp.asarray(0.5 / d, k1.dtype)
    elif activation == "linear":
        k1 = s**2 + sw2
        dk1 = jnp.asarray(1.0 / d, k1.dtype)
    else:
        nodes, weights = _gh(_GH_1D)
        z = s * jnp.asarray(nodes, s.dtype)
        w = jnp.asarray(weights, s.dtype)
        dphi = jax.vmap(jax.grad(phi))(z)
        k1 = jnp.sum(w * phi(z) ** 2) + sw2
        dk1 = jnp.sum(w * dphi**2) / d
    lambda_bar = (d - 1) * dk1 - (d - 3) * k1
    lambda1 = 0.5 * (d - 3) * dk1 - 0.5 * (d - 1) * k1
    return KernelConstants(k1, dk1, lambda1, lambda_bar)


def _sigmas_ok(sigma_u, sigma_w):
    """``bool[]``: both bias scales finite and ``>= 0`` (raised eagerly; NaN out under jit)."""
    ok = jnp.bool_(True)
    for name, value in (("sigma_u", sigma_u), ("sigma_w", sigma_w)):
        value = _float(value)
        checks.require(value.ndim == 0, f"{name} must be a scalar; got shape {value.shape}")
        checks.raise_if_concrete(lambda v: ~(jnp.isfinite(v) & (v >= 0)),
                                 f"{name} must be finite and >= 0; got {value}", value)
        ok &= jnp.isfinite(value) & (value >= 0)
    return ok


def kappa(u, activation: str, d: int, sigma_u=0.0, sigma_w=0.0):
    """The zonal kernel ``kappa(u)``, elementwise over an array of overlaps ``u``.

    ``u`` is clipped to ``[-1, 1]``. ReLU uses the arc-cosine closed form
    ``s^2 (sqrt(1 - rho^2) + (pi - arccos rho) rho) / (2 pi) + sigma_w^2`` with
    ``rho = (u/d + sigma_u^2) / s^2`` (for ``sigma_u = 0`` this is spec §2.1's formula), the
    identity ``u/d + sigma_u^2 + sigma_w^2``; other activations a 48 x 48 Gauss–Hermite rule.

    Args:
      u: array of overlaps ``<x, y>``, any shape.
      activation, d, sigma_u, sigma_w: as in :func:`kernel_constants`.

    Returns:
      ``kappa(u)``, float, with the shape of ``u`` (NaN where ``u`` is NaN; all NaN under
      ``jit`` for a negative or non-finite ``sigma_u``/``sigma_w``, which raise eagerly).

    Raises:
      ValueError: unknown activation, ``d < 2`` or ``u`` not real (call or trace time); bad
        bias scales (eagerly).

    >>> float(kappa(1.0, "linear", 4))   # u / d at sigma = 0
    0.25
    """
    phi = activation_fn(activation)
    d = _check_d(d)
    u = jnp.asarray(u)
    checks.require(jnp.issubdtype(u.dtype, jnp.integer) or jnp.issubdtype(u.dtype, jnp.floating),
                   f"u must be a real array; got {u.dtype}")
    return jnp.where(_sigmas_ok(sigma_u, sigma_w), _kappa(u, phi, activation, d, sigma_u, sigma_w),
                     jnp.nan)


def _kappa(u, phi, activation, d, sigma_u, sigma_w):
    u = jnp.clip(_float(u), -1.0, 1.0)
    s2 = _scale(d, sigma_u) ** 2
    su2 = _float(sigma_u) ** 2
    sw2 = _float(sigma_w) ** 2
    rho = jnp.clip((u / d + su2) / s2, -1.0, 1.0)
    if activation == "relu":
        return s2 * (jnp.sqrt(1.0 - rho**2) + (jnp.pi - jnp.arccos(rho)) * rho) / (2 * jnp.pi) + sw2
    if activation == "linear":
        return u / d + su2 + sw2
    nodes, weights = _gh(_GH_2D)
    xi = jnp.asarray(nodes, u.dtype)
    w = jnp.asarray(weights, u.dtype)
    s = jnp.sqrt(s2)
    r = rho[..., None, None]
    lead = (1,) * rho.ndim
    xa = xi.reshape(lead + (-1, 1))
    xb = xi.reshape(lead + (1, -1))
    z1 = s * xa
    z2 = s * (r * xa + jnp.sqrt(1.0 - r**2) * xb)
    ww = (w[:, None] * w[None, :]).reshape(lead + (w.shape[0], w.shape[0]))
    return jnp.sum(ww * phi(z1) * phi(z2), axis=(-2, -1)) + sw2


def kappa_grid(activation: str, d: int, sigma_u=0.0, sigma_w=0.0, num_points: int = 2001):
    """``kappa`` tabulated on ``num_points`` equispaced overlaps in ``[-1, 1]`` (for interpolation).

    Returns:
      ``(u_grid, kappa_values)``, both ``[num_points]``.
    """
    num_points = checks.require_positive_int(num_points, "num_points")
    grid = jnp.linspace(-1.0, 1.0, num_points, dtype=jnp.result_type(float))
    # unchecked: the simulators check the coefficients once per run
    return grid, _kappa(grid, activation_fn(activation), activation, _check_d(d), sigma_u,
                        sigma_w)


def lambda_bar_prime(beta, activation: str, d: int, sigma_u=0.0, sigma_w=0.0,
                     num_points: int = 4001):
    """The mean-energy decay rate bound ``lambda_bar' = -min_{u in [-1, 1)} F(u)`` (paper Thm 1.x).

    ``F(u) = beta e^{beta u} G(u) / (e^beta - e^{beta u})`` with
    ``G(u) = kappa(u)(d - 2 + u^2 - beta u (1 - u^2)) + kappa(1)(beta (1 - u^2) - (d - 1) u)``;
    ``F(1^-) = -lambda_bar`` is included as the end point. The v1 text says ``lambda_bar' > 0``;
    the proof gives (and this returns) the negative number when the bound implies decay.
    The minimum is taken over a grid of ``num_points`` overlaps.

    Args:
      beta: inverse temperature ``> 0`` (may be traced).
      activation, d, sigma_u, sigma_w: as in :func:`kernel_constants`.
      num_points: grid size (static).

    Returns:
      float scalar ``lambda_bar'``; ``E E_beta(t) <= exp(lambda_bar' t) E E_beta(0)`` when
      ``V = I``.

    Raises:
      ValueError: unknown activation, ``d < 2``, ``num_points < 2`` or ``beta`` not a scalar
        (call or trace time); ``beta`` not finite and ``> 0`` or bad bias scales (eagerly;
        under ``jit`` the result is NaN).
    """
    d = _check_d(d)
    num_points = checks.require_positive_int(num_points, "num_points")
    checks.require(num_points >= 2, f"num_points must be >= 2; got {num_points}")
    beta = _float(beta)
    checks.require(beta.ndim == 0, f"beta must be a scalar; got shape {beta.shape}")
    checks.raise_if_concrete(lambda b: ~((b > 0) & jnp.isfinite(b)),
                             f"beta must be finite and > 0; got {beta}", beta)
    ok = (beta > 0) & jnp.isfinite(beta) & _sigmas_ok(sigma_u, sigma_w)
    u = jnp.linspace(-1.0, 1.0, num_points, dtype=beta.dtype)[:-1]
    consts = kernel_constants(activation, d, sigma_u, sigma_w)
    ku = kappa(u, activation, d, sigma_u, sigma_w)
    g = ku * (d - 2 + u**2 - beta * u * (1 - u**2)) + consts.kappa1 * (
        beta * (1 - u**2) - (d - 1) * u)
    f = beta * jnp.exp(beta * u) * g / (jnp.exp(beta) - jnp.exp(beta * u))
    return jnp.where(ok, -jnp.minimum(jnp.min(f), -consts.lambda_bar), jnp.nan)
