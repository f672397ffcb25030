"""Diagnostics of a token configuration (spec §4c): energy, cosines, order parameter, diameter.

All functions take one configuration ``x: [N, d]`` of unit rows (vmap for runs/layers).
The ``O(N^2)`` ones accept ``block_size`` (query blocks, ``O(N * block)`` memory).
"""

from __future__ import annotations

import jax.numpy as jnp
from jax import lax

from jaxpapers._src import checks

__all__ = [
    "chaos_proxies",
    "diameter",
    "energy",
    "energy_rate",
    "expected_initial_energy",
    "one_minus_mean_cos",
    "one_minus_mean_cos_sq",
    "order_parameter",
]


def _check(x):
    checks.require(x.ndim == 2, f"x must have shape (N, d); got {x.shape}")
    return x.shape[0]


def _row_blocks(x, block: int):
    n = x.shape[0]
    pad = (-n) % block
    nb = (n + pad) // block
    xb = jnp.pad(x, ((0, pad), (0, 0))).reshape(nb, block, x.shape[1])
    valid = (jnp.arange(n + pad) < n).reshape(nb, block)
    return xb, valid


def energy(x, beta=1.0, block_size: int | None = None):
    """Interaction energy ``E_beta = (1 / 2N^2) sum_ij (e^beta - e^{beta <x_i, x_j>})``.

    Zero exactly at a Dirac mass (paper §3). Shapes: ``x: [N, d]`` -> scalar.
    """
    n = _check(x)
    if block_size is None:
        total = jnp.sum(jnp.exp(beta * (x @ x.T)))
    else:
        block = checks.require_positive_int(block_size, "block_size")
        xb, valid = _row_blocks(x, block)

        def rows(inputs):
            xq, mask = inputs
            return jnp.sum(jnp.where(mask, jnp.sum(jnp.exp(beta * (xq @ x.T)), axis=-1), 0.0))

        total = jnp.sum(lax.map(rows, (xb, valid)))
    return 0.5 * (jnp.exp(beta) - total / n**2)


def order_parameter(x):
    """``R = |mean_i x_i|``; ``R = 1`` iff all tokens coincide. Shapes: ``[N, d]`` -> scalar."""
    _check(x)
    return jnp.linalg.norm(jnp.mean(x, axis=0))


def one_minus_mean_cos(x):
    """``1 - mean_{i != j} <x_i, x_j>``, from ``sum_ij <x_i, x_j> = N^2 R^2`` in ``O(N d)``."""
    n = _check(x)
    s = jnp.sum(x, axis=0)
    return 1.0 - (jnp.sum(s * s) - n) / max(n * (n - 1), 1)


def one_minus_mean_cos_sq(x):
    """Sign-blind ``1 - mean_{i != j} <x_i, x_j>^2`` (zero for two antipodal clusters too).

    Uses ``sum_ij <x_i, x_j>^2 = |X^T X|_F^2`` in ``O(N d^2)``.
    """
    n = _check(x)
    gram = x.T @ x
    return 1.0 - (jnp.sum(gram * gram) - n) / max(n * (n - 1), 1)


def diameter(x, block_size: int | None = None):
    """``max_ij |x_i - x_j| = sqrt(2 (1 - min_ij <x_i, x_j>))``."""
    _check(x)
    if block_size is None:
        umin = jnp.min(x @ x.T)
    else:
        block = checks.require_positive_int(block_size, "block_size")
        xb, valid = _row_blocks(x, block)

        def rows(inputs):
            xq, mask = inputs
            return jnp.min(jnp.where(mask[:, None], xq @ x.T, jnp.inf))

        umin = jnp.min(lax.map(rows, (xb, valid)))
    return jnp.sqrt(jnp.maximum(2.0 * (1.0 - umin), 0.0))


def energy_rate(energies, horizon):
    """Empirical mean-energy decay rate ``log(mean E_T / mean E_0) / T``.

    Args:
      energies: ``[R, S]`` energies of ``R`` runs at ``S`` saved layers (first = t 0, last = T).
      horizon: ``T``.

    Returns:
      ``(rate, standard_error)``; the standard error is the delta-method one over runs.
    """
    e0, et = energies[:, 0], energies[:, -1]
    r = energies.shape[0]
    m0, mt = jnp.mean(e0), jnp.mean(et)
    rate = jnp.log(mt / m0) / horizon
    # delta method for log(mean(et)) - log(mean(e0)) with the runs' covariance
    z = et / mt - e0 / m0
    se = jnp.std(z, ddof=1) / jnp.sqrt(r) / horizon
    return rate, se


def expected_initial_energy(num_tokens: int, d: int, beta: float) -> float:
    """Closed form of ``E E_beta`` for ``N`` i.i.d. uniform tokens on ``S^{d-1}`` (spec oracle 5).

    ``(1/2)(1 - 1/N)(e^beta - Gamma(d/2) (2/beta)^{d/2-1} I_{d/2-1}(beta))``; needs scipy.
    """
    import math

    from scipy.special import gammaln, ive

    nu = d / 2 - 1
    # E e^{beta u} with u the first coordinate of a uniform point: Gamma(d/2)(2/beta)^nu I_nu(beta)
    mgf = math.exp(gammaln(d / 2) + nu * math.log(2 / beta) + beta) * ive(nu, beta)
    return 0.5 * (1 - 1 / num_tokens) * (math.exp(beta) - mgf)


def chaos_proxies(x, x_ref, beta=1.0, block_size: int | None = None):
    """Propagation-of-chaos proxies between an ``N``-token system and a larger reference one.

    Both systems should be driven by the same per-layer weights (same run key). Returns
    ``(|mean diff|^2, |second-moment diff|_F^2, |E_beta diff|)``.
    """
    _check(x)
    _check(x_ref)
    dm = jnp.mean(x, 0) - jnp.mean(x_ref, 0)
    m2 = x.T @ x / x.shape[0] - x_ref.T @ x_ref / x_ref.shape[0]
    de = energy(x, beta, block_size) - energy(x_ref, beta, block_size)
    return jnp.sum(dm * dm), jnp.sum(m2 * m2), jnp.abs(de)
