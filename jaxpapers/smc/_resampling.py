"""Resampling schemes: multinomial, stratified, systematic and residual.

Every scheme works in O(N + M) without a binary search. The cumulative distribution
``C_i = sum_{j <= i} W_j`` (renormalised so that ``C_{N-1} = 1`` exactly) is compared with the
sorted uniforms ``U_m`` of the scheme through the *cumulative counts*

    k_i = #{m : U_m <= C_i},   N_i = k_i - k_{i-1},

and the ancestor indices are ``repeat(arange(N), N_i)`` with a static total length ``M``. This is
the inverse-CDF rule ``A_m = min{i : U_m <= C_i}`` written as a merge instead of ``searchsorted``.

* stratified: ``U_m = (m + V_m) / M``; with ``x = M C_i`` and ``j = floor(x)``,
  ``k_i = j + [V_j <= x - j]``, with ``V_j`` the threefry hash of ``j`` computed where it is
  needed (for other key types: drawn for all strata and gathered).
* systematic: the same with one shared ``V``.
* multinomial: sorted iid uniforms from normalised cumulative exponential spacings; ``k_i`` from a
  bucket histogram of the uniforms (``M / 2`` equal buckets, Poisson(2) uniforms per bucket)
  gives the uniforms below the bucket of ``C_i``, and binary lifting over the few inside it
  (four gathers cover buckets of up to 15 uniforms; the fullest of 5e5 held 11-13 in 8 draws)
  the rest.
* residual: ``floor(M W_i)`` deterministic copies plus multinomial counts for the ``R`` remaining
  draws from the fractional parts. ``R`` is known only at run time; a large filter with
  ``R <= min(N, M) / 2`` (under ``vmap``: when every group's ``R`` fits) merges only the first
  half of the uniform slots (the same counts).

All uniforms are drawn on ``(0, 1]`` so a zero-weight particle is never chosen (with ``U = 0``
the left-sided inverse CDF would pick particle 0 even when ``W_0 = 0``); the float32 CDF is
built so that it is non-decreasing and a zero weight adds an exactly zero step (see
:func:`jaxpapers.smc._scan.prefix_sum`). Outputs are sorted (non-decreasing) ancestor indices;
apply ``jax.random.permutation`` if exchangeable order matters downstream.

Small problems (``N * M <= 256``, e.g. the groups of ``K = 8`` or ``16`` particles of a diffusion
sampler, vmapped) skip the histograms: ``k_i = #{m : U_m <= C_i}`` and ``A_m = #{i : k_i <= m}``
are counted from dense ``[N, M]`` comparisons, which give bitwise the same ancestors with no
scatter, no loop and a smaller program to compile. For multinomial at middle sizes
(``max(N, M) <= 4096``: groups of 32 to 4096 particles, vmapped, or one such filter) the
ancestors are ``A = searchsorted(C, U, 'left')`` over the sorted uniforms, bitwise the same as the
counts give, in one binary search (12 gathers at most per draw) and a smaller program; above that
the histograms' few passes beat ``log2 N`` scattered gathers per draw. (The timings behind
these thresholds: the docs' benchmark pages.)

Cost on a CPU is a handful of passes over ``N`` and ``M``: prefix sums are 16-wide triangular
matmuls (``jnp.cumsum`` is an associative scan there, about ``2 log2 N`` passes), the threefry
hash behind most random numbers is unrolled so that it fuses into its consumer, and the only
scatters are histograms (one per scheme, two for multinomial and residual). All of it is plain
XLA and runs unchanged on accelerators.

References:
  Douc, Cappé & Moulines (2005), *Comparison of resampling schemes for particle filtering*.
"""

from __future__ import annotations

import jax.numpy as jnp
from jax import lax
from jax.custom_batching import custom_vmap

from jaxpapers._src import checks
from jaxpapers._src.threefry import check_key
from jaxpapers.smc._scan import (
    count_prefix_sum,
    has_hashed_uniforms,
    hashed_uniforms,
    prefix_sum,
    standard_exponential,
    uniform_open_closed,
    work_dtype,
)
from jaxpapers.smc._weights import check_real, weights_are_valid

__all__ = ["multinomial", "stratified", "systematic", "residual", "RESAMPLERS"]

_INVALID_WEIGHTS = ("weights must be finite and non-negative with a positive sum (got NaN, inf, "
                    "a negative entry or all zeros)")
_UNIFORMS_PER_BUCKET = 2  # mean uniforms per bucket (Poisson(2): the fullest of 5e5 held 11-13)
_LIFT_STEPS = 4  # binary-lifting steps of 8, 4, 2, 1 in one pass (cells of up to 15 uniforms)
_SPACING_MULTIPLE = 16  # spacings are drawn in multiples of the prefix-sum block
_DENSE_MAX_PAIRS = 256  # N * M at or below which counts come from dense comparisons (K <= 16)
_SEARCH_MAX = 2**12  # max(N, M) up to which multinomial ancestors come from a binary search
_RESIDUAL_HALF_MIN = 2**15  # min(N, M) from which residual merges half the slots when R <= half


def _checked(weights, num_samples):
    """Static checks and eager value checks; ``(weights as a float array, M)``."""
    weights = jnp.asarray(weights)
    check_real(weights, "weights")
    if not jnp.issubdtype(weights.dtype, jnp.floating):
        weights = weights.astype(jnp.result_type(float))
    checks.require(weights.ndim == 1, "weights must be a 1-D array of shape (num_particles,); "
                   f"got shape {weights.shape}. For groups of particles use jax.vmap.")
    num_particles = weights.shape[0]
    checks.require(num_particles > 0, "weights must not be empty")
    num_samples = num_particles if num_samples is None else num_samples
    num_samples = checks.require_positive_int(num_samples, "num_samples")
    checks.raise_if_concrete(lambda w: ~weights_are_valid(w), _INVALID_WEIGHTS, weights)
    return weights, num_samples


def _take(values, indices):
    """``values[indices]`` for a 1-D ``values``, indices clamped into range by the gather itself.

    A plain ``values[indices]`` also wraps negative indices, a select per element that the
    hot loops here do not need (their indices are never negative).
    """
    dims = lax.GatherDimensionNumbers(offset_dims=(), collapsed_slice_dims=(0,),
                                      start_index_map=(0,))
    return lax.gather(values, indices[..., None], dims, slice_sizes=(1,),
                      mode=lax.GatherScatterMode.CLIP)


def _prepare(weights, num_samples):
    """Static checks, eager value checks, the validity flag and the renormalised CDF."""
    weights, num_samples = _checked(weights, num_samples)
    num_particles = weights.shape[0]
    weights = weights.astype(work_dtype(weights.dtype))
    valid = _weights_valid(weights)
    # No clean-up of invalid weights: every intermediate stays in range whatever the values
    # (float-to-int conversions saturate, indices are clipped) and the result is replaced.
    cdf = _normalized_cdf(weights)
    return weights, cdf, valid, num_particles, num_samples


def _weights_valid(weights):
    """Same flag as :func:`weights_are_valid` in one fused pass (min and sum).

    ``min >= 0`` rules out negative entries, ``-inf`` and NaN (``min`` propagates NaN); a finite
    sum of non-negative entries then rules out ``+inf``.
    """
    total = jnp.sum(weights)
    return (jnp.min(weights) >= 0) & (total > 0) & jnp.isfinite(total)


def _normalized_cdf(weights):
    """Non-decreasing CDF with last entry exactly 1 (never an out-of-range index)."""
    cumulative = prefix_sum(weights, monotone=True)
    cdf = cumulative / cumulative[-1]
    last = jnp.arange(cdf.shape[0]) == cdf.shape[0] - 1
    return jnp.where(last, jnp.ones_like(cdf), cdf)


def _is_small(num_particles, num_samples):
    return num_particles * num_samples <= _DENSE_MAX_PAIRS


def _is_searched(num_particles, num_samples):
    """Middle sizes: a binary search (6-12 gathers per draw) beats multinomial's histograms."""
    return not _is_small(num_particles, num_samples) and max(num_particles,
                                                             num_samples) <= _SEARCH_MAX


def _search(sorted_values, queries, side):
    return jnp.searchsorted(sorted_values, queries, side=side, method="scan").astype(jnp.int32)


def _indices_from_cumulative_counts(cumulative_counts, valid, num_samples):
    """``A_p = #{i : k_i <= p}``: mark where each particle's copies end, then prefix-sum.

    For small problems the count is taken directly over an ``[M, N]`` comparison. Below
    ``2**24`` the marks are float32 (exact there; a float scatter-add is the faster one on
    the CPU).
    """
    num_particles = cumulative_counts.shape[0]
    if _is_small(num_particles, num_samples):
        positions = jnp.arange(num_samples, dtype=jnp.int32)
        indices = jnp.sum(cumulative_counts[None, :] <= positions[:, None], axis=1,
                          dtype=jnp.int32)
    elif num_particles < 2**24:
        ends = jnp.zeros((num_samples,), jnp.float32).at[cumulative_counts].add(1.0, mode="drop")
        indices = prefix_sum(ends).astype(jnp.int32)
    else:
        ends = jnp.zeros((num_samples,), jnp.int32).at[cumulative_counts].add(1, mode="drop")
        indices = count_prefix_sum(ends, num_particles)
    indices = jnp.minimum(indices, num_particles - 1)
    fallback = jnp.arange(num_samples, dtype=jnp.int32) % num_particles
    return jnp.where(valid, indices, fallback)


def _stratified_counts(cdf, offset_of_stratum, num_samples):
    """k_i = #{m : (m + V_m) / M <= C_i} for V_m = ``offset_of_stratum(m)`` in (0, 1]."""
    scaled = num_samples * cdf
    whole = jnp.clip(jnp.floor(scaled), 0, num_samples)
    j = whole.astype(jnp.int32)
    extra = (j < num_samples) & (offset_of_stratum(j) <= scaled - whole)
    return j + extra.astype(jnp.int32)


def _sorted_uniforms(key, num_draws, max_draws, dtype):
    """``max_draws`` slots; the first ``num_draws`` hold sorted iid U(0,1] draws, the rest +inf.

    ``U_(m) = S_{m+1} / S_{n+1}`` with ``S`` the partial sums of ``n + 1`` iid Exp(1) spacings.
    """
    length = -(-(max_draws + 1) // _SPACING_MULTIPLE) * _SPACING_MULTIPLE  # no pad in the sum
    spacings = standard_exponential(key, (length,), dtype)
    spacings = jnp.where(jnp.arange(length) <= max_draws, spacings, 0)
    totals = prefix_sum(spacings, monotone=True)
    uniforms = totals[:max_draws] / totals[num_draws]
    uniforms = jnp.clip(uniforms, jnp.finfo(dtype).tiny, 1.0)
    return jnp.where(jnp.arange(max_draws) < num_draws, uniforms, jnp.inf)


def _histogram_starts(bins, num_bins, max_total):
    """``(starts, fullest)``: ``starts[b] = #{j : bins_j < b}`` for ``b`` in ``[0, num_bins)``
    (exact int32) and the largest count of one bin; ``bins_j >= num_bins`` are left out.

    Below ``2**24`` the counts are float32 (exact there): a float scatter-add and a float max
    are faster than int32 ones on the CPU, and the prefix sum needs no conversion. The bins are
    shifted by one so that the inclusive prefix sum is the exclusive one of the bins, and the
    length is padded to a multiple of the prefix-sum block (a ragged tail costs a slow slice).
    """
    length = -(-(num_bins + 1) // 16) * 16
    shifted = jnp.where(bins < num_bins, bins + 1, length)  # out of range: dropped
    if max_total < 2**24:
        occupancy = jnp.zeros((length,), jnp.float32).at[shifted].add(1.0, mode="drop")
        starts = prefix_sum(occupancy).astype(jnp.int32)
    else:
        occupancy = jnp.zeros((length,), jnp.int32).at[shifted].add(1, mode="drop")
        starts = jnp.cumsum(occupancy)
    return starts, jnp.max(occupancy).astype(jnp.int32)


def _merge_counts(cdf, sorted_uniforms):
    """k_i = #{m : U_m <= C_i} for sorted ``U`` (+inf padded), bucketing U into equal cells.

    With the monotone cell map ``x -> min(floor(num_buckets * x), num_buckets - 1)``, uniforms
    in cells below the cell of ``C_i`` are all ``<= C_i`` and those above are all larger, so
    ``k_i`` lies in ``[s, s + n]``: ``s`` uniforms in lower cells, ``n`` in ``C_i``'s own
    (Poisson(2) many with ``_UNIFORMS_PER_BUCKET = 2``; the fullest of 5e5 cells held 11-13 in
    8 draws). Since ``U`` is sorted,
    ``m -> [U_m <= C_i]`` is a prefix, so ``k_i`` is found from ``s`` by binary lifting:
    steps of 8, 4, 2, 1 (four gathers) cover cells of up to 15, and a loop adds the larger
    steps first when the fullest cell needs them (almost never).
    """
    num_slots = sorted_uniforms.shape[0]
    if _is_small(cdf.shape[0], num_slots):  # the same count over an [N, slots] comparison
        return jnp.sum(sorted_uniforms[None, :] <= cdf[:, None], axis=1, dtype=jnp.int32)
    num_buckets = -(-num_slots // _UNIFORMS_PER_BUCKET)
    bucket_of_u = jnp.where(sorted_uniforms <= 1.0,  # +inf slots go to the left-out bin
                            jnp.minimum(jnp.floor(num_buckets * sorted_uniforms), num_buckets - 1),
                            num_buckets).astype(jnp.int32)
    bucket_start, fullest = _histogram_starts(bucket_of_u, num_buckets, num_slots)
    bucket_of_c = jnp.clip(jnp.floor(num_buckets * cdf), 0, num_buckets - 1).astype(jnp.int32)

    def lift(width, count):  # one step: count + width if U[count + width - 1] <= C
        step = count + width
        ok = (step <= num_slots) & (_take(sorted_uniforms, step - 1) <= cdf)
        return jnp.where(ok, step, count)

    count = _take(bucket_start, bucket_of_c)
    levels = 32 - lax.clz(fullest)  # steps 2**(levels-1) .. 1 reach any count up to fullest
    count = lax.fori_loop(0, jnp.maximum(levels - _LIFT_STEPS, 0),
                          lambda j, count: lift(lax.shift_left(1, levels - 1 - j), count), count)
    for level in reversed(range(_LIFT_STEPS)):
        count = lift(1 << level, count)
    return count


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
    check_key(key)
    _, cdf, valid, num_particles, num_samples = _prepare(weights, num_samples)
    uniforms = _sorted_uniforms(key, num_samples, num_samples, cdf.dtype)
    if _is_searched(num_particles, num_samples):
        # A_m = #{i : C_i < U_m} directly: the same ancestors as the counts below give
        indices = jnp.minimum(_search(cdf, uniforms, "left"), num_particles - 1)
        fallback = jnp.arange(num_samples, dtype=jnp.int32) % num_particles
        return jnp.where(valid, indices, fallback)
    cumulative = _merge_counts(cdf, uniforms)
    return _indices_from_cumulative_counts(cumulative, valid, num_samples)


def stratified(key, weights, num_samples=None):
    """Stratified resampling: one uniform in each of the ``M`` strata ``[m/M, (m+1)/M)``.

    Args:
      key: PRNG key.
      weights: ``[N]`` non-negative weights with a positive sum (normalised inside).
      num_samples: static number of draws ``M`` (default ``N``).

    Returns:
      ``[M]`` int32 ancestor indices, sorted; under ``jit``, invalid weights give the identity
      ancestry ``arange(M) % N`` (see :func:`multinomial`).

    Raises:
      ValueError: bad rank, empty weights, bad ``num_samples``; eagerly also invalid weights.
    """
    check_key(key)
    _, cdf, valid, _, num_samples = _prepare(weights, num_samples)
    if cdf.dtype == jnp.float32 and num_samples < 2**32 and has_hashed_uniforms(key):
        # V_j hashed from j where it is needed: no [M] array of uniforms and no gather
        def offset_of_stratum(j):
            return hashed_uniforms(key, j.astype(jnp.uint32))
    else:
        offsets = uniform_open_closed(key, (num_samples,), cdf.dtype, unrolled_hash=False)

        def offset_of_stratum(j):
            return _take(offsets, j)
    cumulative = _stratified_counts(cdf, offset_of_stratum, num_samples)
    return _indices_from_cumulative_counts(cumulative, valid, num_samples)


def systematic(key, weights, num_samples=None):
    """Systematic resampling: ``U_m = (m + V) / M`` with a single ``V ~ U(0, 1]``.

    Each particle gets ``floor(M W_i)`` or ``ceil(M W_i)`` copies.

    Args:
      key: PRNG key.
      weights: ``[N]`` non-negative weights with a positive sum (normalised inside).
      num_samples: static number of draws ``M`` (default ``N``).

    Returns:
      ``[M]`` int32 ancestor indices, sorted; under ``jit``, invalid weights give the identity
      ancestry ``arange(M) % N`` (see :func:`multinomial`).

    Raises:
      ValueError: bad rank, empty weights, bad ``num_samples``; eagerly also invalid weights.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from jaxpapers.smc import systematic
      >>> systematic(jax.random.key(0), jnp.array([0.5, 0.25, 0.25]), 4).tolist()
      [0, 0, 1, 2]
    """
    check_key(key)
    _, cdf, valid, _, num_samples = _prepare(weights, num_samples)
    offset = uniform_open_closed(key, (), cdf.dtype)
    cumulative = _stratified_counts(cdf, lambda _: offset, num_samples)
    return _indices_from_cumulative_counts(cumulative, valid, num_samples)


def residual(key, weights, num_samples=None):
    """Residual resampling: ``floor(M W_i)`` copies, then ``R`` multinomial draws on the remainders.

    ``R = M - sum_i floor(M W_i)`` and the remainder law is ``r_i ∝ M W_i - floor(M W_i)``.

    Args:
      key: PRNG key.
      weights: ``[N]`` non-negative weights with a positive sum (normalised inside).
      num_samples: static number of draws ``M`` (default ``N``).

    Returns:
      ``[M]`` int32 ancestor indices, sorted; under ``jit``, invalid weights give the identity
      ancestry ``arange(M) % N`` (see :func:`multinomial`).

    Raises:
      ValueError: bad rank, empty weights, bad ``num_samples``; eagerly also invalid weights.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from jaxpapers.smc import residual
      >>> residual(jax.random.key(0), jnp.array([0.5, 0.5, 0.0]), 4).tolist()
      [0, 0, 1, 1]
    """
    check_key(key)
    weights, _, valid, num_particles, num_samples = _prepare(weights, num_samples)
    expected = num_samples * (weights / jnp.sum(weights))
    deterministic = jnp.floor(expected)
    fractional = expected - deterministic
    max_draws = min(num_particles, num_samples)
    if num_samples < 2**24:  # one pass for both sums: the integer one is exact in float32
        both = prefix_sum(jnp.stack([deterministic, fractional]), monotone=True)
        deterministic_cumulative = both[0].astype(jnp.int32)
        fractional_cumulative = both[1]
    else:
        deterministic_cumulative = jnp.cumsum(deterministic.astype(jnp.int32))
        fractional_cumulative = prefix_sum(fractional, monotone=True)
    remaining = jnp.clip(num_samples - deterministic_cumulative[-1], 0, max_draws)
    fractional_total = fractional_cumulative[-1]
    last = jnp.arange(num_particles) == num_particles - 1
    remainder_cdf = jnp.where((fractional_total > 0) & ~last,
                              fractional_cumulative / fractional_total, 1.0)
    random_cumulative = _remainder_counts(key, remainder_cdf, remaining, max_draws)
    cumulative = deterministic_cumulative + random_cumulative
    return _indices_from_cumulative_counts(cumulative, valid, num_samples)


def _remainder_counts(key, remainder_cdf, remaining, max_draws):
    """Residual's random counts ``k_i = #{m < R : U_m <= r_i}`` of ``R = remaining`` (at most
    ``max_draws``) sorted uniforms against the remainder CDF ``r``.

    ``R`` is known only at run time, so the uniforms fill ``max_draws`` slots (the unused ones
    +inf). When ``R <= max_draws / 2`` (spread weights: ``R`` is about ``0.43 N`` for
    log-normal weights with log-weights ~ N(0, 1)) the merge takes only the first half of the
    slots, into half as many buckets: the histogram and its prefix sum do half the work. The
    count is exact whatever the bucketing, so the ancestors are bitwise the same as from all
    slots. Only large filters (``max_draws >= _RESIDUAL_HALF_MIN``) branch. Under ``vmap`` the
    branch is taken for the whole batch (half the slots only if every group fits), so that
    the ``lax.cond`` stays a branch instead of running both merges for every group.
    """
    uniforms = _sorted_uniforms(key, remaining, max_draws, remainder_cdf.dtype)
    if max_draws < _RESIDUAL_HALF_MIN:
        return _merge_counts(remainder_cdf, uniforms)
    half = max_draws // 2

    @custom_vmap
    def fits(remaining):
        return remaining <= half

    @fits.def_vmap
    def fits_for_all(axis_size, in_batched, remaining):
        return jnp.all(remaining <= half), False

    return lax.cond(fits(remaining),
                    lambda cdf, slots: _merge_counts(cdf, slots[:half]),
                    lambda cdf, slots: _merge_counts(cdf, slots),
                    remainder_cdf, uniforms)


RESAMPLERS = {
    "multinomial": multinomial,
    "stratified": stratified,
    "systematic": systematic,
    "residual": residual,
}
