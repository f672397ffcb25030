"""Toy tasks with known answers: the 8-Gaussian ring, its soft and hard mode detectors (the
missing-object analogue), and distances between sample sets.

The ring experiment: 8 Gaussians (std 0.1) on a radius-2 circle; a "caption" demands modes
``{0, 1}``; a soft detector on ``x0_hat`` guides and a different, hard one evaluates, as the paper
guides with DETR-R50 and evaluates with DETR-R101. Unlike the rest of the package these helpers
do not validate their input.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["ring_centres", "sample_ring", "soft_mode_detector", "hard_mode_occurrence",
           "energy_distance", "near_mode_fraction", "frechet_distance"]


def ring_centres(num_modes: int = 8, radius: float = 2.0):
    """The mode centres, equally spaced on a circle (centre 0 at ``(radius, 0)``).

    Args:
      num_modes: number of modes.
      radius: radius of the circle.

    Returns:
      ``(num_modes, 2)`` float32 centres.

    >>> ring_centres(4).shape, ring_centres(4)[1].round(3).tolist()
    ((4, 2), [0.0, 2.0])
    """
    angles = 2 * np.pi * np.arange(num_modes) / num_modes
    return jnp.asarray(np.stack([radius * np.cos(angles), radius * np.sin(angles)], -1),
                       jnp.float32)


def sample_ring(key, num: int, std: float = 0.1, modes=None, num_modes: int = 8):
    """``num`` points from the ring mixture, its modes drawn uniformly.

    Args:
      key: PRNG key.
      num: number of points (static).
      std: standard deviation of each Gaussian.
      modes: the modes to draw from (default: all).
      num_modes: number of modes of the ring.

    Returns:
      ``(num, 2)`` float32 points.
    """
    centres = ring_centres(num_modes)
    allowed = jnp.arange(num_modes) if modes is None else jnp.asarray(modes)
    k_m, k_n = jax.random.split(key)
    which = allowed[jax.random.randint(k_m, (num,), 0, allowed.shape[0])]
    return centres[which] + std * jax.random.normal(k_n, (num, 2))


def soft_mode_detector(modes, temperature: float = 0.5, num_modes: int = 8):
    """Guiding detector: ``D(x) = sum_{m in modes} softmax_m(-|x - c_m|^2 / temperature)``.

    Args:
      modes: the demanded modes (one "object").
      temperature: softmax temperature ``> 0``.
      num_modes: number of modes of the ring.

    Returns:
      ``detector_fn(x (B, 2), cond) -> (B, 1)`` float probabilities (``cond`` is ignored), the
      ``detector_fn`` of :func:`jaxpapers.diffusion_resampling.detector_log_potential`.
    """
    centres = ring_centres(num_modes)
    modes = jnp.asarray(modes)

    def detector_fn(x, cond=None):
        del cond
        d2 = jnp.sum((x[:, None, :] - centres[None]) ** 2, axis=-1)
        probs = jax.nn.softmax(-d2 / temperature, axis=-1)
        return jnp.sum(probs[:, modes], axis=-1, keepdims=True)

    return detector_fn


def hard_mode_occurrence(x, modes, radius: float = 0.5, num_modes: int = 8):
    """Evaluation detector: the nearest centre is in ``modes`` and within ``radius``.

    Args:
      x: ``(B, 2)`` float points.
      modes: the demanded modes.
      radius: the largest distance to the nearest centre that counts.
      num_modes: number of modes of the ring.

    Returns:
      ``(B,)`` bool.

    >>> import jax.numpy as jnp
    >>> hard_mode_occurrence(jnp.asarray([[2.0, 0.1], [0.0, 2.0]]), modes=[0]).tolist()
    [True, False]
    """
    centres = ring_centres(num_modes)
    d = jnp.sqrt(jnp.sum((x[:, None, :] - centres[None]) ** 2, axis=-1))
    nearest = jnp.argmin(d, axis=-1)
    return jnp.isin(nearest, jnp.asarray(modes)) & (jnp.min(d, axis=-1) < radius)


def near_mode_fraction(x, radius: float = 0.3, num_modes: int = 8):
    """Fraction of points within ``radius`` of some centre (a precision proxy).

    Args:
      x: ``(B, 2)`` float points.
      radius: the largest distance to the nearest centre that counts.
      num_modes: number of modes of the ring.

    Returns:
      Float scalar in ``[0, 1]``.
    """
    centres = ring_centres(num_modes)
    d = jnp.sqrt(jnp.sum((x[:, None, :] - centres[None]) ** 2, axis=-1))
    return jnp.mean(jnp.min(d, axis=-1) < radius)


def _mean_dist(a, b):
    return jnp.mean(jnp.sqrt(jnp.sum((a[:, None, :] - b[None, :, :]) ** 2, axis=-1) + 1e-12))


def energy_distance(x, y):
    """V-statistic energy distance ``2 E|X - Y| - E|X - X'| - E|Y - Y'|`` (Szekely & Rizzo).

    Args:
      x: ``(N, D)`` points; y: ``(M, D)`` points (cast to float32).

    Returns:
      Float32 scalar ``>= 0`` (0 when the two sets are equal).

    >>> import jax.numpy as jnp
    >>> float(energy_distance(jnp.zeros((3, 2)), jnp.zeros((2, 2))))
    0.0
    """
    x = jnp.asarray(x, jnp.float32)
    y = jnp.asarray(y, jnp.float32)
    return 2 * _mean_dist(x, y) - _mean_dist(x, x) - _mean_dist(y, y)


def _psd_sqrt(c):
    """Symmetric square root of a positive semi-definite matrix (eigenvalues below 0 from
    rounding are set to 0)."""
    vals, vecs = np.linalg.eigh(c)
    return (vecs * np.sqrt(np.clip(vals, 0.0, None))) @ vecs.T


def frechet_distance(feats_a, feats_b):
    """Frechet distance between Gaussians fitted to two feature sets (float64 NumPy).

    ``|mu_a - mu_b|^2 + tr(C_a + C_b - 2 (C_a C_b)^{1/2})``, with the trace of the matrix square
    root taken as ``sum_i sqrt(lambda_i)`` over the eigenvalues of the symmetric positive
    semi-definite ``C_a^{1/2} C_b C_a^{1/2}`` (similar to ``C_a C_b``). This stays exact when a
    covariance is singular (a feature constant over a set, such as a ReLU unit that never fires),
    where a general matrix square root of ``C_a C_b`` is ill-posed.

    Args:
      feats_a: ``(N, F)`` features; feats_b: ``(M, F)`` features (``N, M >= 2``).

    Returns:
      The distance, a Python float ``>= 0`` (up to rounding).

    >>> import numpy as np
    >>> a = np.random.default_rng(0).normal(size=(50, 3))
    >>> abs(frechet_distance(a, a)) < 1e-9
    True
    """
    a = np.asarray(feats_a, np.float64)
    b = np.asarray(feats_b, np.float64)
    mu_a, mu_b = a.mean(0), b.mean(0)
    ca = np.atleast_2d(np.cov(a, rowvar=False))
    cb = np.atleast_2d(np.cov(b, rowvar=False))
    root_a = _psd_sqrt(ca)
    middle = root_a @ cb @ root_a
    eig = np.linalg.eigvalsh((middle + middle.T) / 2)
    trace_sqrt = float(np.sum(np.sqrt(np.clip(eig, 0.0, None))))
    return float(np.sum((mu_a - mu_b) ** 2) + np.trace(ca) + np.trace(cb) - 2 * trace_sqrt)
