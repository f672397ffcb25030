"""Resampling schemes: multinomial, stratified, systematic and residual.

Every scheme works in O(N + M) without a binary search. The cumulative distribution
``C_i = sum_{j <= i} W_j`` (renormalised so that ``C_{N-1} = 1`` exactly) is compared with the
sorted uniforms ``U_m`` of the scheme through the *cumulative counts*

    k_i = #{m : U_m <= C_i},   N_i = k_i - k_{i-1},

and the ancestor indices are ``repeat(arange(N), N_i)`` with a static total length ``M``. This is
the inverse-CDF rule ``A_m = min{i : U_m <= C_i}`` written as a merge instead of ``searchsorted``.

* stratified: ``U_m = (m + V_m) / M``; with ``x = M C_i`` and ``j = floor(x)``,
  ``k_i = j + [V_j <= x - j]`` (one gather).
* systematic: the same with one shared ``V``.
* multinomial: sorted iid uniforms from normalised cumulative exponential spacings; ``k_i`` from a
  bucket histogram of the uniforms (``M`` equal buckets, about one uniform per bucket) and a short
  scan inside the bucket of ``C_i`` (as many steps as the fullest bucket holds: ~10 at M = 1e6).
* residual: ``floor(M W_i)`` deterministic copies plus multinomial counts for the ``R`` remaining
  draws from the fractional parts.

All uniforms are drawn on ``(0, 1]`` so a zero-weight particle is never chosen (with ``U = 0``
the left-sided inverse CDF would pick particle 0 even when ``W_0 = 0``). Outputs are sorted
(non-decreasing) ancestor indices; apply ``jax.random.permutation`` if exchangeable order
matters downstream.

References:
  Douc, Cappé & Moulines (2005), *Comparison of resampling schemes for particle filtering*.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

from jaxpapers._src import checks
from jaxpapers.smc._weights import weights_are_valid

__all__ = ["multinomial", "stratified", "systematic", "residual", "RESAMPLERS"]

_INVALID_WEIGHTS = ("weights must be finite and non-negative with a positive sum (got NaN, inf, "
                    "a negative entry or all zeros)")


def _prepare(weights, num_samples):
    """Static checks, eager value checks, and the renormalised CDF of the (safe) weights."""
    weights = jnp.asarray(weights)
    if not jnp.issubdtype(weights.dtype, jnp.floating):
        weights = weights.astype(jnp.result_type(float))
    checks.require(weights.ndim == 1, "weights must be a 1-D array of shape (num_particles,); "
                   f"got shape {weights.shape}. For groups of particles use jax.vmap.")
    num_particles = weights.shape[0]
    checks.require(num_particles > 0, "weights must not be empty")
    num_samples = num_particles if num_samples is None else num_samples
    num_samples = checks.require_positive_int(num_samples, "num_samples")
    checks.raise_if_concrete(lambda w: ~weights_are_valid(w), _INVALID_WEIGHTS, weights)
    valid = weights_are_valid(weights)
    safe = jnp.where(valid, weights, jnp.ones_like(weights))
    cdf = _normalized_cdf(safe)
    return safe, cdf, valid, num_particles, num_samples


_BLOCK = 64
_EXACT_FLOAT32_INT = 2**24


def _prefix_sum(x):
    """Inclusive prefix sum along the last axis, blocked so that most work is a small matmul.

    XLA's CPU cumsum is an associative scan (about log2(N) passes over the data); here each block
    of 64 entries is summed by a product with an upper-triangular ones matrix (precision HIGHEST,
    so no TF32 on GPUs) and only the block totals go through ``jnp.cumsum``. Integer inputs go
    through float32 only while every partial sum is exactly representable (``total < 2**24``).
    """
    n = x.shape[-1]
    if n < 4 * _BLOCK:
        return jnp.cumsum(x, axis=-1)
    pad = (-n) % _BLOCK
    work_dtype = x.dtype if jnp.issubdtype(x.dtype, jnp.floating) else jnp.float32
    blocks = jnp.pad(x, (0, pad)).reshape(-1, _BLOCK).astype(work_dtype)
    upper = jnp.triu(jnp.ones((_BLOCK, _BLOCK), work_dtype))
    inner = jnp.matmul(blocks, upper, precision=jax.lax.Precision.HIGHEST).astype(x.dtype)
    totals = inner[:, -1]
    offsets = jnp.cumsum(totals) - totals
    return (inner + offsets[:, None]).reshape(-1)[:n]


def _normalized_cdf(weights):
    cumulative = _prefix_sum(weights)
    cdf = cumulative / cumulative[-1]
    return cdf.at[-1].set(1.0)  # exact 1: never an out-of-range index


def _uniform_open_closed(key, shape, dtype):
    """Uniforms on (0, 1]."""
    return 1.0 - jax.random.uniform(key, shape, dtype=dtype)


def _indices_from_cumulative_counts(cumulative_counts, valid, num_samples):
    num_particles = cumulative_counts.shape[0]
    # A_p = #{i : k_i <= p}: mark where each particle's block of copies ends, then prefix-sum.
    ends = jnp.zeros((num_samples + 1,), jnp.int32).at[cumulative_counts].add(1)
    if num_samples < _EXACT_FLOAT32_INT:
        indices = _prefix_sum(ends[:num_samples])
    else:
        indices = jnp.cumsum(ends[:num_samples])
    indices = jnp.minimum(indices, num_particles - 1)
    fallback = jnp.arange(num_samples, dtype=jnp.int32) % num_particles
    return jnp.where(valid, indices, fallback)


def _stratified_counts(cdf, offsets, num_samples):
    """k_i = #{m : (m + V_m) / M <= C_i} for V_m in (0, 1]; ``offsets`` scalar or ``[M]``."""
    scaled = num_samples * cdf
    whole = jnp.clip(jnp.floor(scaled), 0, num_samples)
    j = whole.astype(jnp.int32)
    offset = offsets if offsets.ndim == 0 else offsets[jnp.minimum(j, num_samples - 1)]
    extra = (j < num_samples) & (offset <= scaled - whole)
    return j + extra.astype(jnp.int32)


def _sorted_uniforms(key, num_draws, max_draws, dtype):
    """``max_draws`` slots; the first ``num_draws`` hold sorted iid U(0,1] draws, the rest +inf."""
    spacings = jax.random.exponential(key, (max_draws + 1,), dtype=dtype)
    totals = _prefix_sum(spacings)
    uniforms = totals[:max_draws] / totals[num_draws]
    uniforms = jnp.clip(uniforms, jnp.finfo(dtype).tiny, 1.0)
    return jnp.where(jnp.arange(max_draws) < num_draws, uniforms, jnp.inf)


def _merge_counts(cdf, sorted_uniforms, num_buckets):
    """k_i = #{m : U_m <= C_i} for sorted ``U`` (+inf padded) by bucketing U into equal cells."""
    bucket_of_u = jnp.where(jnp.isfinite(sorted_uniforms),
                            jnp.minimum(jnp.floor(num_buckets * sorted_uniforms), num_buckets - 1),
                            num_buckets).astype(jnp.int32)
    occupancy = jnp.zeros((num_buckets + 1,), jnp.int32).at[bucket_of_u].add(1)
    bucket_start = jnp.cumsum(occupancy) - occupancy
    bucket_of_c = jnp.minimum(jnp.floor(num_buckets * cdf), num_buckets - 1).astype(jnp.int32)
    start = bucket_start[bucket_of_c]
    stop = start + occupancy[bucket_of_c]
    max_steps = jnp.max(occupancy[:num_buckets])
    last = sorted_uniforms.shape[0] - 1

    def body(step, counts):
        position = start + step
        inside = (position < stop) & (sorted_uniforms[jnp.minimum(position, last)] <= cdf)
        return counts + inside.astype(jnp.int32)

    return lax.fori_loop(0, max_steps, body, start)


def multinomial(key, weights, num_samples=None):
    """Multinomial resampling: ``M`` iid draws from the categorical law ``W``.

    Args:
      key: PRNG key.
      weights: ``[N]`` non-negative weights with a positive sum (normalised inside).
      num_samples: static number of draws ``M`` (default ``N``).

    Returns:
      ``[M]`` int32 ancestor indices, sorted. Under ``jit``, invalid weights (NaN, inf, negative,
      all zero) give the identity ancestry ``arange(M) % N``; check
      :func:`jaxpapers.smc.weights_are_valid` when that matters.

    Raises:
      ValueError: bad rank, empty weights, bad ``num_samples``; eagerly also invalid weights.
    """
    _, cdf, valid, _, num_samples = _prepare(weights, num_samples)
    uniforms = _sorted_uniforms(key, num_samples, num_samples, cdf.dtype)
    cumulative = _merge_counts(cdf, uniforms, num_samples)
    return _indices_from_cumulative_counts(cumulative, valid, num_samples)


def stratified(key, weights, num_samples=None):
    """Stratified resampling: one uniform in each of the ``M`` strata ``[m/M, (m+1)/M)``.

    Arguments, returns and errors as :func:`multinomial`.
    """
    _, cdf, valid, _, num_samples = _prepare(weights, num_samples)
    offsets = _uniform_open_closed(key, (num_samples,), cdf.dtype)
    cumulative = _stratified_counts(cdf, offsets, num_samples)
    return _indices_from_cumulative_counts(cumulative, valid, num_samples)


def systematic(key, weights, num_samples=None):
    """Systematic resampling: ``U_m = (m + V) / M`` with a single ``V ~ U(0, 1]``.

    Each particle gets ``floor(M W_i)`` or ``ceil(M W_i)`` copies. Arguments, returns and errors
    as :func:`multinomial`.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from jaxpapers.smc import systematic
      >>> systematic(jax.random.key(0), jnp.array([0.5, 0.25, 0.25]), 4).tolist()
      [0, 0, 1, 2]
    """
    _, cdf, valid, _, num_samples = _prepare(weights, num_samples)
    offset = _uniform_open_closed(key, (), cdf.dtype)
    cumulative = _stratified_counts(cdf, offset, num_samples)
    return _indices_from_cumulative_counts(cumulative, valid, num_samples)


def residual(key, weights, num_samples=None):
    """Residual resampling: ``floor(M W_i)`` copies, then ``R`` multinomial draws on the remainders.

    ``R = M - sum_i floor(M W_i)`` and the remainder law is ``r_i ∝ M W_i - floor(M W_i)``.
    Arguments, returns and errors as :func:`multinomial`.
    """
    safe, _, valid, num_particles, num_samples = _prepare(weights, num_samples)
    expected = num_samples * (safe / jnp.sum(safe))
    deterministic = jnp.floor(expected)
    fractional = expected - deterministic
    deterministic = deterministic.astype(jnp.int32)
    remaining = jnp.maximum(num_samples - jnp.sum(deterministic), 0)
    max_draws = min(num_particles, num_samples)
    has_remainder = remaining > 0
    remainder_cdf = _normalized_cdf(jnp.where(has_remainder, fractional, 1.0))
    uniforms = _sorted_uniforms(key, jnp.minimum(remaining, max_draws), max_draws, safe.dtype)
    random_cumulative = _merge_counts(remainder_cdf, uniforms, max_draws)
    cumulative = _prefix_sum(deterministic) + random_cumulative
    return _indices_from_cumulative_counts(cumulative, valid, num_samples)


RESAMPLERS = {
    "multinomial": multinomial,
    "stratified": stratified,
    "systematic": systematic,
    "residual": residual,
}
