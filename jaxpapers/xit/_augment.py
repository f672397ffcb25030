"""TS-TCC's augmentations in JAX, drawn fresh at every step from the key.

* weak: ``scaling`` -- ``x * s`` with ``s[t] ~ N(2, sigma^2)`` drawn per series and per time
  step and shared by the series' channels (the reference's quirk: mean 2, not 1);
* strong: ``jitter(segment_permute(x))`` -- the time axis is cut at ``m - 1`` random points
  (``m ~ U{1, ..., max_segments - 1}``, cut points among ``0 .. L - 3`` as in the reference) and
  the segments are concatenated in a random order, then Gaussian noise is added.

The reference permutes by gathering channel 0 of each series into every channel; here each
channel is gathered from itself (the same segment order for all channels of a series). All
functions take one series ``(C, L)``; ``jax.vmap`` them over a batch.
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
    """``x * s``, ``s ~ N(2, sigma^2)`` of shape ``(L,)`` shared over channels.

    ``sigma`` must be finite and >= 0 (eagerly ValueError; under ``jit`` the result is NaN);
    NaN in ``x`` stays NaN."""
    x = _series(key, x)
    ok = _sigma_ok(sigma)
    shape = (1,) * (x.ndim - 1) + x.shape[-1:]
    s = 2.0 + sigma * jax.random.normal(key, shape, x.dtype)
    return chk.nan_unless(ok, x * s)


def jitter(key, x, sigma: float):
    """``x + N(0, sigma^2)`` noise, independent per value (``sigma`` as in :func:`weak_scale`)."""
    x = _series(key, x)
    ok = _sigma_ok(sigma)
    return chk.nan_unless(ok, x + sigma * jax.random.normal(key, x.shape, x.dtype))


def segment_permute(key, x, max_segments: int, limit=None):
    """Cut the time axis into ``m ~ U{1, ..., max_segments - 1}`` segments and reorder them at
    random; every channel keeps its multiset of values. ``limit`` (optional, may be traced, in
    ``[2, max_segments]``) draws ``m ~ U{1, ..., limit - 1}`` instead while ``max_segments``
    stays the static bound (per-dataset strengths in one batch); ``limit = max_segments`` gives
    the same draw as leaving it out. Static shapes: the cut points are the
    first ``m - 1`` of a random permutation of ``0 .. L - 3`` (so distinct, as the
    reference's ``choice(..., replace=False)``); segment ``s`` of position ``t`` is
    the number of active cuts ``<= t``; positions are gathered by ``argsort`` of (new segment
    rank, position). NaN in ``x`` moves with its value."""
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
    """``jitter(segment_permute(x))``, TS-TCC's strong view (checks as in both)."""
    check_key(key)
    _sigma_ok(jitter_sigma, "jitter_sigma")
    key_p, key_j = jax.random.split(key)
    return jitter(key_j, segment_permute(key_p, x, max_segments, limit), jitter_sigma)
