"""TS-TCC's augmentations in JAX, drawn fresh at every step from the key.

Weak: scaling by ``N(2, sigma^2)`` per time step. Strong: a random permutation of segments, then
Gaussian jitter. Every function takes one series ``(C, L)``; ``jax.vmap`` them over a batch.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxpapers._src.threefry import check_key
from jaxpapers.xit import _validate as chk


def _series(key, x):
    check_key(key)
    x = chk.floats(x, "x")
    if x.ndim < 1 or x.shape[-1] < 1:
        raise ValueError(f"x must have shape (C, L) with L >= 1; got {x.shape}")
    return x


def _sigma_ok(sigma, name="sigma"):
    return chk.scalar_ok(sigma, name, lambda s: jnp.isfinite(s) & (s >= 0), "finite and >= 0")

__all__ = ["weak_scale", "jitter", "segment_permute", "strong_augment"]


def weak_scale(key, x, sigma: float):
    """TS-TCC's weak view: ``x * s`` with ``s ~ N(2, sigma^2)`` per time step.

    The scale is drawn per time step and shared by the series' channels (mean 2, not 1: the
    reference's choice).

    Args:
      key: PRNG key.
      x: float ``(C, L)`` series (any leading axes; the scale spans the last one).
      sigma: standard deviation of the scale, finite and >= 0 (may be traced).

    Returns:
      ``x * s``, the shape and dtype of ``x``; NaN under ``jit`` when ``sigma`` is negative or
      not finite. NaN in ``x`` stays NaN.

    Raises:
      ValueError: ``key`` not a PRNG key, ``x`` not floating or of length 0; eagerly also a bad
        ``sigma``.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from jaxpapers.xit.augment import weak_scale
      >>> jax.jit(weak_scale)(jax.random.key(0), jnp.ones((2, 5)), 0.0).tolist()[0]
      [2.0, 2.0, 2.0, 2.0, 2.0]
    """
    x = _series(key, x)
    ok = _sigma_ok(sigma)
    shape = (1,) * (x.ndim - 1) + x.shape[-1:]
    s = 2.0 + sigma * jax.random.normal(key, shape, x.dtype)
    return chk.nan_unless(ok, x * s)


def jitter(key, x, sigma: float):
    """Gaussian noise ``x + N(0, sigma^2)``, independent per value.

    Args:
      key: PRNG key.
      x: float ``(C, L)`` series.
      sigma: noise standard deviation, finite and >= 0 (may be traced).

    Returns:
      The noisy series, the shape and dtype of ``x``; NaN under ``jit`` for a bad ``sigma``.

    Raises:
      ValueError: as :func:`weak_scale`.
    """
    x = _series(key, x)
    ok = _sigma_ok(sigma)
    return chk.nan_unless(ok, x + sigma * jax.random.normal(key, x.shape, x.dtype))


def segment_permute(key, x, max_segments: int, limit=None):
    """Cut the time axis into random segments and concatenate them in a random order.

    ``m ~ U{1, ..., max_segments - 1}`` segments; the cut points are the first ``m - 1`` of a
    random permutation of ``0 .. L - 3`` (distinct, as the reference's ``choice(...,
    replace=False)``). Every channel is gathered from itself with the same order (the
    reference gathers channel 0 into every channel), so each keeps its multiset of values.
    Shapes are static: one compiled program serves every ``m``.

    Args:
      key: PRNG key.
      x: float ``(C, L)`` series with ``L >= 3``.
      max_segments: static int >= 2, the bound on the number of segments.
      limit: optional int in ``[2, max_segments]`` (may be traced): draw ``m ~ U{1, ...,
        limit - 1}`` instead, ``max_segments`` staying the static bound (per-dataset strengths
        in one batch); ``limit = max_segments`` gives the same draw as leaving it out.

    Returns:
      The permuted series, the shape and dtype of ``x``. NaN in ``x`` moves with its value.

    Raises:
      ValueError: ``key`` not a PRNG key, ``x`` not floating or shorter than 3 steps,
        ``max_segments`` not an int >= 2.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from jaxpapers.xit.augment import segment_permute
      >>> x = jnp.arange(8.0)[None]
      >>> permute = jax.jit(segment_permute, static_argnums=2)
      >>> sorted(permute(jax.random.key(0), x, 4)[0].tolist()) == x[0].tolist()
      True
    """
    x = _series(key, x)
    length = x.shape[-1]
    if isinstance(max_segments, bool) or not isinstance(max_segments, int):
        raise ValueError(f"max_segments must be a Python int >= 2; got {max_segments!r}")
    if max_segments < 2:
        raise ValueError(f"max_segments must be >= 2; got {max_segments}")
    if length < 3:
        raise ValueError(f"segment_permute needs length >= 3; got {length}")
    # one uniform draw gives m, the cut order and the segment order (argsort of i.i.d. uniforms
    # is a uniformly random permutation): a single random-bits call keeps the compile small
    u = jax.random.uniform(key, (1 + (length - 2) + max_segments,))
    top = max_segments if limit is None else jnp.clip(jnp.asarray(limit, jnp.int32), 2,
                                                      max_segments)
    num_segments = 1 + jnp.minimum(jnp.floor(u[0] * (top - 1)).astype(jnp.int32), top - 2)
    max_cuts = max(min(max_segments - 2, length - 2), 1)
    cuts = jnp.argsort(u[1:length - 1])[:max_cuts]
    active = jnp.arange(max_cuts) < num_segments - 1
    position = jnp.arange(length)
    segment = jnp.sum(active[:, None] & (cuts[:, None] <= position[None, :]), axis=0)
    rank = jnp.argsort(u[length - 1:])[segment]
    order = jnp.argsort(rank * length + position)
    return x[..., order]


def strong_augment(key, x, jitter_sigma: float, max_segments: int, limit=None):
    """TS-TCC's strong view: ``jitter(segment_permute(x))``.

    Args:
      key: PRNG key (split between the permutation and the noise).
      x: float ``(C, L)`` series with ``L >= 3``.
      jitter_sigma: noise standard deviation, finite and >= 0 (may be traced).
      max_segments: static int >= 2 (see :func:`segment_permute`).
      limit: optional traced bound on the segments (see :func:`segment_permute`).

    Returns:
      The augmented series, the shape and dtype of ``x``; NaN under ``jit`` for a bad
      ``jitter_sigma``.

    Raises:
      ValueError: as :func:`segment_permute` and :func:`jitter`.
    """
    check_key(key)
    _sigma_ok(jitter_sigma, "jitter_sigma")
    key_p, key_j = jax.random.split(key)
    return jitter(key_j, segment_permute(key_p, x, max_segments, limit), jitter_sigma)
