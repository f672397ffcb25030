"""Resampling schemes against exact count laws (spec §5 oracles 1-10) and bad input."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from absl.testing import parameterized
from scipy import stats

from jaxpapers import smc
from tests.contracts import check_kernel_contract

SCHEMES = ["multinomial", "stratified", "systematic", "residual"]
W5 = np.array([0.5, 0.25, 0.125, 0.0625, 0.0625])
REPLICATES = 20_000


def exact_count_variance(scheme, w, m):
    """Exact Var(N_i) for each scheme (Douc, Cappé & Moulines 2005), float64."""
    w = np.asarray(w, np.float64) / np.sum(w)
    expected = m * w
    frac = expected - np.floor(expected)
    if scheme == "multinomial":
        return m * w * (1 - w)
    if scheme == "systematic":  # counts are floor or ceil of M W_i
        return frac * (1 - frac)
    if scheme == "residual":
        r = m - np.floor(expected).sum()
        rw = frac / frac.sum() if r > 0 else np.zeros_like(w)
        return r * rw * (1 - rw)
    # stratified: sum over strata of l(1 - l), l = |[M C_{i-1}, M C_i) ∩ [m, m + 1)|
    upper = m * np.cumsum(w)
    lower = np.concatenate([[0.0], upper[:-1]])
    var = np.zeros_like(w)
    for stratum in range(m):
        length = np.clip(np.minimum(upper, stratum + 1) - np.maximum(lower, stratum), 0, None)
        var += length * (1 - length)
    return var


def replicate_counts(scheme, weights, num_samples, replicates=REPLICATES, seed=0):
    fn = smc.RESAMPLERS[scheme]
    keys = jax.random.split(jax.random.key(seed), replicates)
    weights = jnp.asarray(weights, jnp.float32)
    n = weights.shape[0]
    counts = jax.jit(jax.vmap(
        lambda k: jnp.bincount(fn(k, weights, num_samples), length=n)))(keys)
    return np.asarray(counts, np.float64)


def test_exact_variance_oracle_matches_spec_values():
    spec = {
        "multinomial": [1.25, 0.9375, 0.546875, 0.29297, 0.29297],
        "systematic": [0.25, 0.1875, 0.234375, 0.21484, 0.21484],
        "stratified": [0.25, 0.4375, 0.421875, 0.21484, 0.21484],
        "residual": [0.375, 0.21875, 0.4296875, 0.26367, 0.26367],
    }
    for scheme, values in spec.items():
        np.testing.assert_allclose(exact_count_variance(scheme, W5, 5), values, atol=1e-5)


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("weights, num_samples", [
    (W5, 5),
    (np.array([0.05, 0.3, 0.0, 0.15, 0.2, 0.3]), 4),    # M < N, a zero weight
    (np.array([0.05, 0.3, 0.0, 0.15, 0.2, 0.3]), 13),   # M > N
])
def test_count_means_and_variances_are_exact(scheme, weights, num_samples):
    counts = replicate_counts(scheme, weights, num_samples)
    w = weights / weights.sum()
    expected_mean = num_samples * w
    exact_var = exact_count_variance(scheme, w, num_samples)
    mean = counts.mean(0)
    # 5 standard errors of the mean (exact variance) and of the sample variance (empirical).
    mean_se = np.sqrt(exact_var / REPLICATES)
    assert np.all(np.abs(mean - expected_mean) <= 5 * mean_se + 1e-12), (mean, expected_mean)
    centred_sq = (counts - mean) ** 2
    var_se = centred_sq.std(0) / np.sqrt(REPLICATES)
    assert np.all(np.abs(counts.var(0) - exact_var) <= 5 * var_se + 1e-12), \
        (counts.var(0), exact_var)
    assert np.all(counts.sum(1) == num_samples)


def test_systematic_counts_always_floor_or_ceil():
    w = np.random.default_rng(1).gamma(0.3, size=50)
    counts = replicate_counts("systematic", w, 37, replicates=2000)
    expected = 37 * w / w.sum()
    assert np.all((counts >= np.floor(expected) - 1e-9) & (counts <= np.ceil(expected) + 1e-9))


def test_multinomial_pooled_chi_square():
    counts = replicate_counts("multinomial", W5, 5).sum(0)
    expected = counts.sum() * W5
    p_value = stats.chisquare(counts, expected).pvalue
    assert p_value > 1e-3


@pytest.mark.parametrize("scheme", SCHEMES)
def test_one_hot_weights_select_only_the_hot_index(scheme, key):
    w = jnp.zeros(7).at[4].set(2.5)
    np.testing.assert_array_equal(smc.RESAMPLERS[scheme](key, w, 9), np.full(9, 4))


@pytest.mark.parametrize("scheme", ["stratified", "systematic", "residual"])
def test_uniform_weights_power_of_two_give_identity(scheme, key):
    keys = jax.random.split(key, 50)
    out = jax.vmap(lambda k: smc.RESAMPLERS[scheme](k, jnp.ones(8)))(keys)
    np.testing.assert_array_equal(out, np.tile(np.arange(8), (50, 1)))


@pytest.mark.parametrize("scheme", SCHEMES)
def test_zero_weight_particles_are_never_selected(scheme, key):
    w = jnp.array([0.0, 0.3, 0.0, 0.0, 0.5, 0.2, 0.0])
    keys = jax.random.split(key, 4000)
    out = np.asarray(jax.jit(jax.vmap(lambda k: smc.RESAMPLERS[scheme](k, w, 7)))(keys))
    assert set(np.unique(out)) <= {1, 4, 5}


@pytest.mark.parametrize("scheme", SCHEMES)
def test_tiny_float32_weights_never_give_out_of_range_indices(scheme, key):
    w = jnp.array([1 - 3e-8, 1e-8, 1e-8, 1e-8], jnp.float32)
    keys = jax.random.split(key, 2000)
    out = np.asarray(jax.jit(jax.vmap(lambda k: smc.RESAMPLERS[scheme](k, w, 16)))(keys))
    assert out.min() >= 0 and out.max() <= 3
    # a long vector whose float32 running sum drifts below the total
    big = jnp.full((100_003,), 0.1, jnp.float32)
    idx = np.asarray(jax.jit(lambda k, b: smc.RESAMPLERS[scheme](k, b, 1000))(key, big))
    assert idx.min() >= 0 and idx.max() < big.shape[0]


@pytest.mark.parametrize("scheme", SCHEMES)
def test_output_contract_sorted_int32_any_size(scheme, key):
    w = jax.random.uniform(key, (11,))
    for m in (1, 3, 11, 40):
        out = smc.RESAMPLERS[scheme](key, w, m)
        assert out.shape == (m,) and out.dtype == jnp.int32
        assert np.all(np.diff(np.asarray(out)) >= 0)
    check_kernel_contract(lambda k, w: smc.RESAMPLERS[scheme](k, w, 32), w)


@pytest.mark.parametrize("scheme", SCHEMES)
def test_log_weight_shift_invariance(scheme, key):
    log_w = jax.random.normal(key, (64,))
    a = smc.resample(key, log_w, scheme)
    b = smc.resample(key, log_w + 123.0, scheme)
    c = smc.resample(key, log_w - 50.0, scheme)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, c)


@pytest.mark.parametrize("scheme", SCHEMES)
def test_grouped_vmap_equals_loop_over_groups(scheme, key):
    groups, k = 6, 9
    log_w = jax.random.normal(key, (groups, k))
    keys = jax.random.split(jax.random.key(3), groups)
    batched = jax.vmap(lambda kk, lw: smc.resample(kk, lw, scheme))(keys, log_w)
    looped = np.stack([smc.resample(keys[g], log_w[g], scheme) for g in range(groups)])
    np.testing.assert_array_equal(batched, looped)
    assert np.all((np.asarray(batched) >= 0) & (np.asarray(batched) < k))


class WeightedMeanTest(chex.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.parameters(*SCHEMES)
    def test_unbiased_weighted_mean_at_large_n(self, scheme):
        """Weighted mean of a test function is preserved within 5 standard errors."""
        key_w, key_r = jax.random.split(jax.random.key(0))
        n = 4096
        log_w = jax.random.normal(key_w, (n,))
        x = jnp.linspace(-2.0, 2.0, n)
        w = jax.nn.softmax(log_w)
        target = float(jnp.sum(w * x))
        stderr = float(jnp.sqrt(jnp.sum(w * (x - target) ** 2) / n))  # multinomial bound
        idx = self.variant(smc.resample, static_argnames="scheme")(key_r, log_w, scheme=scheme)
        assert idx.shape == (n,) and idx.dtype == jnp.int32
        assert abs(float(jnp.mean(x[idx])) - target) < 5 * stderr, scheme


@pytest.mark.parametrize("scheme", SCHEMES)
def test_mostly_zero_weights_at_large_n_are_never_selected(scheme, key):
    """~70% zeros in runs that straddle the prefix-sum blocks: a float32 CDF must stay
    non-decreasing with exact zero steps, or zero-weight particles get selected."""
    n = 200_003
    key_mask, key_w, key_r = jax.random.split(key, 3)
    runs = jax.random.uniform(key_mask, (n // 37 + 1,)) < 0.7       # zero runs of length 37
    zero = jnp.repeat(runs, 37)[:n]
    w = jnp.where(zero, 0.0, jax.random.uniform(key_w, (n,), minval=0.1, maxval=1.0))
    fn = jax.jit(jax.vmap(lambda k: smc.RESAMPLERS[scheme](k, w, n)))
    idx = np.asarray(fn(jax.random.split(key_r, 4)))
    assert not np.any(np.asarray(zero)[idx]), "a zero-weight particle was selected"
    assert np.all(np.diff(idx, axis=1) >= 0)


@pytest.mark.parametrize("scheme", SCHEMES)
def test_dense_small_path_equals_histogram_path_bitwise(scheme, monkeypatch):
    """Small problems count from dense comparisons (multinomial can also binary-search); the
    histogram path must give the same."""
    from jaxpapers.smc import _resampling

    rng = np.random.default_rng(7)
    cases = []
    for n, m in [(1, 5), (8, 8), (9, 4), (16, 16), (5, 51)]:
        for _ in range(2):
            w = rng.exponential(size=n) * (rng.uniform(size=n) > 0.3)
            w[rng.integers(n)] += 0.5  # a positive sum
            cases.append((np.asarray(w, np.float32), m))
    fn = smc.RESAMPLERS[scheme]
    keys = jax.random.split(jax.random.key(11), len(cases))
    dense = [np.asarray(fn(k, w, m)) for k, (w, m) in zip(keys, cases, strict=True)]
    monkeypatch.setattr(_resampling, "_DENSE_MAX_PAIRS", 0)
    searched = [np.asarray(fn(k, w, m)) for k, (w, m) in zip(keys, cases, strict=True)]
    monkeypatch.setattr(_resampling, "_SEARCH_MAX", 0)
    for k, (w, m), small, mid in zip(keys, cases, dense, searched, strict=True):
        histogram = np.asarray(fn(k, w, m))
        np.testing.assert_array_equal(histogram, small, err_msg=f"{w}, M={m}")
        np.testing.assert_array_equal(histogram, mid, err_msg=f"binary search: {w}, M={m}")


def test_multinomial_binary_search_equals_histogram_path_bitwise(monkeypatch):
    """Middle sizes (groups of 32 to 4096) search the CDF; the histogram path must agree."""
    from jaxpapers.smc import _resampling

    rng = np.random.default_rng(8)
    cases = [(64, 64), (200, 1000), (4096, 4096), (33, 7)]
    weights = []
    for n, _ in cases:
        w = rng.lognormal(size=n) * (rng.uniform(size=n) > 0.4)
        w[rng.integers(n)] += 0.5
        weights.append(np.asarray(w, np.float32))
    keys = jax.random.split(jax.random.key(12), len(cases))
    searched = [np.asarray(smc.multinomial(k, w, m))
                for k, w, (_, m) in zip(keys, weights, cases, strict=True)]
    monkeypatch.setattr(_resampling, "_SEARCH_MAX", 0)
    for k, w, (n, m), mid in zip(keys, weights, cases, searched, strict=True):
        np.testing.assert_array_equal(np.asarray(smc.multinomial(k, w, m)), mid,
                                      err_msg=f"N={n}, M={m}")


@pytest.mark.parametrize("crowd, padded", [(0, 0), (40, 0), (300, 57), (16, 3), (15, 0)])
def test_merge_counts_equal_a_float64_search_with_crowded_buckets(crowd, padded):
    """k_i = #{m : U_m <= C_i} from the bucket histogram and binary lifting, against NumPy's
    searchsorted. ``crowd`` uniforms packed into one bucket make the fullest bucket need the
    loop's larger steps (16 or more) or exactly the unrolled ones (15); ``padded`` +inf slots
    stand for residual's unused draws; some C_i sit exactly on uniforms and on bucket edges."""
    from jaxpapers.smc import _resampling

    rng = np.random.default_rng(crowd + padded)
    m, n = 3000, 2500
    u = rng.uniform(size=m - crowd - padded)
    u = np.concatenate([u, 0.4321 + 1e-5 * rng.uniform(size=crowd)]).astype(np.float32)
    u = np.sort(np.clip(u, np.finfo(np.float32).tiny, 1.0))
    u = np.concatenate([u, np.full(padded, np.inf, np.float32)])
    c = np.sort(rng.uniform(size=n)).astype(np.float32)
    c[::7] = u[rng.integers(0, m - padded, size=c[::7].shape)]           # C equal to a uniform
    c[1::11] = np.floor(rng.uniform(size=c[1::11].shape) * 1500) / 1500  # C on a bucket edge
    c[2:2 + 3 * crowd:3] = 0.4321 + 1e-5 * np.linspace(0, 1, crowd)    # C inside the crowd
    c = np.sort(c)
    c[-1] = 1.0
    counts = np.asarray(jax.jit(_resampling._merge_counts)(jnp.asarray(c), jnp.asarray(u)))
    np.testing.assert_array_equal(counts, np.searchsorted(u, c, side="right"))


def _spread_weights(scale, n, seed):
    w = np.exp(scale * np.random.default_rng(seed).standard_normal(n))
    return np.asarray(w / w.sum(), np.float32)


def test_residual_half_merge_equals_all_slots_bitwise(monkeypatch):
    """A filter of 2**15 particles merges only the first N/2 uniform slots when R <= N/2
    (log-normal weights, R ~ 0.43 N; R ~ 0.55 N takes all slots): the same ancestors as
    merging all slots. Vmapped, the batch takes half the slots only if every group fits.
    A gradient through the weights still passes the resampling step."""
    from jaxpapers.smc import _resampling

    n = _resampling._RESIDUAL_HALF_MIN
    w = np.stack([_spread_weights(scale, n, seed)
                  for scale, seed in ((1.0, 1), (0.3, 2), (1.0, 3))])
    remaining = [n - np.floor(n * x.astype(np.float64) / x.sum()).sum() for x in w]
    assert remaining[0] <= n // 2 < remaining[1] and remaining[2] <= n // 2, remaining
    keys = jax.random.split(jax.random.key(6), 3)

    def results():
        alone = [np.asarray(smc.residual(keys[g], w[g])) for g in range(3)]
        vmapped = jax.jit(jax.vmap(lambda k, x: smc.residual(k, x)))
        fitting = np.asarray(vmapped(keys[::2], w[::2]))     # every group fits: half the slots
        mixed = np.asarray(vmapped(keys[:2], w[:2]))          # one does not: all slots
        return alone, fitting, mixed

    half = results()
    monkeypatch.setattr(_resampling, "_RESIDUAL_HALF_MIN", 2 * n)
    full = results()
    monkeypatch.undo()
    for g in range(3):
        np.testing.assert_array_equal(half[0][g], full[0][g])
    np.testing.assert_array_equal(half[1], full[1])
    np.testing.assert_array_equal(half[2], full[2])

    def mean_of_resampled(log_w):
        weights = jax.nn.softmax(log_w)
        return jnp.mean(weights[smc.residual(keys[0], weights)])

    grad = jax.jit(jax.grad(mean_of_resampled))(jnp.log(jnp.asarray(w[0])))
    assert grad.shape == (n,) and bool(jnp.all(jnp.isfinite(grad)))
