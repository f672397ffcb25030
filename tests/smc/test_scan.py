"""The private building blocks of the resampling kernels against independent references."""

import jax
import jax.numpy as jnp
import numpy as np
from jax.extend.random import threefry2x32_p

from jaxpapers.smc import _scan


def test_unrolled_threefry_matches_jax_threefry_bitwise():
    rng = np.random.default_rng(0)
    k0, k1 = (jnp.uint32(v) for v in rng.integers(0, 2**32, size=2, dtype=np.uint64))
    x0 = jnp.asarray(rng.integers(0, 2**32, size=257, dtype=np.uint64), jnp.uint32)
    x1 = jnp.asarray(rng.integers(0, 2**32, size=257, dtype=np.uint64), jnp.uint32)
    ours = jax.jit(_scan._threefry2x32)(k0, k1, x0, x1)
    ref = threefry2x32_p.bind(jnp.broadcast_to(k0, x0.shape), jnp.broadcast_to(k1, x0.shape),
                              x0, x1)
    np.testing.assert_array_equal(np.asarray(ours[0]), np.asarray(ref[0]))
    np.testing.assert_array_equal(np.asarray(ours[1]), np.asarray(ref[1]))


def test_random_words_are_first_then_second_hash_words_of_counters():
    """Word m < half is the first word of hashing (0, m), word half + m the second word."""
    key = jax.random.key(5)
    k0, k1 = jax.random.key_data(key)
    for size in (1, 2, 7, 1000, 1001):
        half = (size + 1) // 2
        counter = jnp.arange(half, dtype=jnp.uint32)
        zeros = jnp.zeros_like(counter)
        ref = threefry2x32_p.bind(jnp.broadcast_to(k0, (half,)), jnp.broadcast_to(k1, (half,)),
                                  zeros, counter)
        expected = np.concatenate([np.asarray(ref[0]), np.asarray(ref[1])])[:size]
        ours = jax.jit(lambda k, n=size: _scan.random_words(k, n))(key)
        np.testing.assert_array_equal(np.asarray(ours), expected, err_msg=f"size {size}")


def test_uniforms_lie_in_open_closed_interval_and_look_uniform(key):
    u = np.asarray(_scan.uniform_open_closed(key, (200_000,), jnp.float32))
    assert u.min() > 0.0 and u.max() <= 1.0
    # mean and variance of U(0, 1) within 5 standard errors
    assert abs(u.mean() - 0.5) < 5 * np.sqrt(1 / 12 / u.size)
    assert abs(u.var() - 1 / 12) < 5 * np.sqrt(1 / 180 / u.size)


def test_prefix_sum_matches_float64_and_is_monotone(key):
    x = jax.random.uniform(key, (100_003,)) * (jax.random.uniform(key, (100_003,)) > 0.6)
    out = np.asarray(_scan.prefix_sum(x, monotone=True))
    ref = np.cumsum(np.asarray(x, np.float64))
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-3)
    assert np.all(np.diff(out) >= 0)
    zero = np.asarray(x)[1:] == 0
    assert np.all(np.diff(out)[zero] == 0), "a zero input must add an exactly zero step"


def test_monotone_prefix_sum_survives_heavy_tailed_weights_with_zeros():
    """Weights over ~30 orders of magnitude, half zeros, batched rows: on these inputs plain
    blocked offsets gave 50 (n = 4097) and 1788 (n = 100 003) decreasing steps and non-zero
    steps at zero inputs; the monotone form must give none, and stay as accurate as float32
    allows."""
    rng = np.random.default_rng(1)
    for n in (257, 4097, 100_003):
        x = (np.exp(rng.normal(0, 4, (3, n))) * (rng.uniform(size=(3, n)) < 0.5)).astype(np.float32)
        out = np.asarray(jax.jit(lambda v: _scan.prefix_sum(v, monotone=True))(jnp.asarray(x)))
        steps = np.diff(out, axis=1)
        assert np.all(steps >= 0)
        assert np.all(steps[x[:, 1:] == 0] == 0), "a zero input must add an exactly zero step"
        ref = np.cumsum(x.astype(np.float64), axis=1)
        ref, got = ref / ref[:, -1:], out / out[:, -1:]
        assert np.max(np.abs(got - ref)) < 2e-6
