"""Toy tasks with known answers: the 8-Gaussian ring, its soft and hard mode detectors (the
missing-object analogue), and distances between sample sets.

The ring experiment: 8 Gaussians (std 0.1) on a radius-2 circle; a "caption" demands modes
``{0, 1}``; a soft detector on ``x0_hat`` guides and a different, hard one evaluates, as the paper
guides with DETR-R50 and evaluates with DETR-R101. Bad shapes and settings raise ``ValueError``;
NaN points give NaN (or ``False``) results.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from jaxpapers._src import checks
from jaxpapers._src.threefry import check_key

__all__ = ["ring_centres", "sample_ring", "soft_mode_detector", "hard_mode_occurrence",
           "energy_distance", "near_mode_fraction", "frechet_distance"]


def _positive(value, name: str) -> None:
    """A static setting (std, radius, temperature) must be a finite number > 0."""
    checks.require(isinstance(value, (int, float, np.floating, np.integer))
                   and not isinstance(value, bool) and math.isfinite(value) and value > 0,
                   f"{name} must be a finite number > 0; got {value!r}")


def _points(x, name: str, dim: int | None = 2):
    """``x`` as a floating ``(B, dim)`` array (any ``D`` when ``dim`` is None)."""
    x = jnp.asarray(x)
    want = "(B, D)" if dim is None else f"(B, {dim})"
    checks.require(x.ndim == 2 and x.shape[0] >= 1 and (dim is None or x.shape[1] == dim),
                   f"{name} must have shape {want} with B >= 1; got {x.shape}")
    checks.require(jnp.issubdtype(x.dtype, jnp.floating),
                   f"{name} must be floating; got dtype {x.dtype}")
    return x


def _modes(modes, num_modes: int):
    """``modes`` as a non-empty 1-D int array of modes of the ring."""
    modes = jnp.asarray(modes)
    checks.require(modes.ndim == 1 and modes.shape[0] >= 1,
                   f"modes must be a non-empty 1-D sequence of mode indices; got {modes.shape}")
    checks.require(jnp.issubdtype(modes.dtype, jnp.integer),
                   f"modes must be integers; got dtype {modes.dtype}")
    checks.raise_if_concrete(lambda m: ~jnp.all((m >= 0) & (m < num_modes)),
                             f"modes must lie in [0, {num_modes}); got {modes}", modes)
    return modes


def ring_centres(num_modes: int = 8, radius: float = 2.0):
    """The mode centres, equally spaced on a circle (centre 0 at ``(radius, 0)``).

    Args:
      num_modes: number of modes.
      radius: radius of the circle.

    Returns:
      ``(num_modes, 2)`` float32 centres.

    Raises:
      ValueError: ``num_modes`` not a positive int, ``radius`` not finite and > 0.

    >>> ring_centres(4).shape, ring_centres(4)[1].round(3).tolist()
    ((4, 2), [0.0, 2.0])
    """
    num_modes = checks.require_positive_int(num_modes, "num_modes")
    _positive(radius, "radius")
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

    Raises:
      ValueError: a bad key, ``num`` or ``num_modes`` not a positive int, ``std`` not finite
        and > 0, ``modes`` empty, not integers or (eagerly) outside the ring's modes.
    """
    check_key(key)
    num = checks.require_positive_int(num, "num")
    _positive(std, "std")
    centres = ring_centres(num_modes)
    allowed = jnp.arange(num_modes) if modes is None else _modes(modes, num_modes)
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

    Raises:
      ValueError: ``temperature`` not finite and > 0, bad ``num_modes`` or ``modes`` (as
        :func:`sample_ring`).
    """
    _positive(temperature, "temperature")
    centres = ring_centres(num_modes)
    modes = _modes(modes, num_modes)

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
      ``(B,)`` bool; a NaN point is a miss (``False``).

    Raises:
      ValueError: ``x`` not a floating ``(B, 2)`` array, ``radius`` not finite and > 0, bad
        ``num_modes`` or ``modes``.

    >>> import jax.numpy as jnp
    >>> hard_mode_occurrence(jnp.asarray([[2.0, 0.1], [0.0, 2.0]]), modes=[0]).tolist()
    [True, False]
    """
    x = _points(x, "x")
    _positive(radius, "radius")
    centres = ring_centres(num_modes)
    modes = _modes(modes, num_modes)
    d = jnp.sqrt(jnp.sum((x[:, None, :] - centres[None]) ** 2, axis=-1))
    nearest = jnp.argmin(d, axis=-1)
    return jnp.isin(nearest, modes) & (jnp.min(d, axis=-1) < radius)


def near_mode_fraction(x, radius: float = 0.3, num_modes: int = 8):
    """Fraction of points within ``radius`` of some centre (a precision proxy).

    Args:
      x: ``(B, 2)`` float points.
      radius: the largest distance to the nearest centre that counts.
      num_modes: number of modes of the ring.

    Returns:
      Float scalar in ``[0, 1]`` (NaN points count as far from every centre).

    Raises:
      ValueError: ``x`` not a floating ``(B, 2)`` array, ``radius`` not finite and > 0, bad
        ``num_modes``.
    """
    x = _points(x, "x")
    _positive(radius, "radius")
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
      Float32 scalar ``>= 0`` (0 when the two sets are equal); NaN when a point is NaN.

    Raises:
      ValueError: ``x`` or ``y`` not a floating 2-D array, or of different widths ``D``.

    >>> import jax.numpy as jnp
    >>> float(energy_distance(jnp.zeros((3, 2)), jnp.zeros((2, 2))))
    0.0
    """
    x = _points(x, "x", None).astype(jnp.float32)
    y = _points(y, "y", None).astype(jnp.float32)
    checks.require(x.shape[1] == y.shape[1],
                   f"x and y must have the same width D; got {x.shape} and {y.shape}")
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

    Raises:
      ValueError: not two finite 2-D arrays of the same width with at least 2 rows each.

    >>> import numpy as np
    >>> a = np.random.default_rng(0).normal(size=(50, 3))
    >>> abs(frechet_distance(a, a)) < 1e-9
    True
    """
    a = np.asarray(feats_a, np.float64)
    b = np.asarray(feats_b, np.float64)
    checks.require(a.ndim == 2 and b.ndim == 2 and a.shape[1] == b.shape[1]
                   and a.shape[0] >= 2 and b.shape[0] >= 2,
                   f"feats_a and feats_b must be (N, F) and (M, F) with N, M >= 2; got {a.shape} "
                   f"and {b.shape}")
    checks.require(bool(np.all(np.isfinite(a)) and np.all(np.isfinite(b))),
                   "feats_a and feats_b must be finite")
    mu_a, mu_b = a.mean(0), b.mean(0)
    ca = np.atleast_2d(np.cov(a, rowvar=False))
    cb = np.atleast_2d(np.cov(b, rowvar=False))
    root_a = _psd_sqrt(ca)
    middle = root_a @ cb @ root_a
    eig = np.linalg.eigvalsh((middle + middle.T) / 2)
    trace_sqrt = float(np.sum(np.sqrt(np.clip(eig, 0.0, None))))
    return float(np.sum((mu_a - mu_b) ** 2) + np.trace(ca) + np.trace(cb) - 2 * trace_sqrt)
