"""The shared machinery: checks, checkpoints, benchmark harness, sharding harness."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpapers._src import bench, checks, threefry
from tests.multidevice import run_with_devices


def test_error_if_eager_raises_and_passes_value():
    x = jnp.arange(3.0)
    assert checks.error_if(x, x < -1, "negative") is x
    with pytest.raises(ValueError, match="negative"):
        checks.error_if(x, x < 1, "negative")


def test_error_if_under_jit_fails_at_run_time():
    f = jax.jit(lambda x: checks.error_if(x * 2, jnp.isnan(x), "NaN input") + 1)
    np.testing.assert_allclose(f(jnp.ones(3)), 3.0)
    with pytest.raises(Exception, match="NaN input"):
        jax.block_until_ready(f(jnp.array([1.0, jnp.nan])))


def test_raise_if_concrete_is_silent_under_jit():
    pred = lambda x: jnp.any(x < 0)
    with pytest.raises(ValueError):
        checks.raise_if_concrete(pred, "neg", jnp.array([-1.0]))
    jax.jit(lambda x: checks.raise_if_concrete(pred, "neg", x) or x)(jnp.array([-1.0]))


def test_require_positive_int():
    assert checks.require_positive_int(np.int64(3), "n") == 3
    for bad in [0, -1, 2.0, True, jnp.array(3)]:
        with pytest.raises(ValueError):
            checks.require_positive_int(bad, "n")


def test_time_call_and_ratio_table():
    f = jax.jit(lambda x: x @ x)
    timing = bench.time_call(f, jnp.ones((8, 8)), repeats=3)
    assert timing.compile_s > 0 and 0 < timing.min_s <= timing.median_s
    table = bench.ratio_table([{"n": 8, "ours": 1e-3, "anchor": 5e-3}], ["n"], "ours", ["anchor"])
    assert "5.0x" in table


def test_time_interleaved_alternates_the_calls():
    order = []

    def named(name):
        def fn(x):
            order.append(name)
            return x
        return fn

    calls = {"a": (named("a"), (jnp.ones(3),), None), "b": (named("b"), (1.0,), lambda out: out)}
    timings = bench.time_interleaved(calls, repeats=3, warm=1)
    # first calls, then per round each function twice in a row (one warm-up, one timed)
    assert order == ["a", "b"] + ["a", "a", "b", "b"] * 3
    for t in timings.values():
        assert t.repeats == 3 and t.compile_s > 0 and 0 < t.min_s <= t.median_s


def test_multidevice_harness_sees_eight_devices():
    out = run_with_devices("""
        import jax.numpy as jnp
        from jaxpapers.sharding import data_mesh, shard_batch
        mesh = data_mesh(8)
        x = shard_batch(jnp.arange(16.0), mesh)
        assert len(x.sharding.device_set) == 8
        print(float(jnp.sum(x)))
    """)
    assert out.strip().endswith("120.0")


@pytest.mark.parametrize("shape", [(), (65, 5), (3, 7, 2)])
def test_fused_normal_equals_jax_random_normal_bitwise(shape):
    """The fused threefry normal gives jax.random.normal's numbers, eagerly, jitted, vmapped
    over keys and for raw uint32 keys; other key types fall back on jax.random."""
    for seed in range(2):
        key = jax.random.fold_in(jax.random.key(seed), 11)
        ref = np.asarray(jax.random.normal(key, shape))
        np.testing.assert_array_equal(np.asarray(threefry.normal(key, shape)), ref)
        np.testing.assert_array_equal(
            np.asarray(jax.jit(lambda k: threefry.normal(k, shape))(key)), ref)
        raw = jax.random.key_data(key)
        np.testing.assert_array_equal(np.asarray(threefry.normal(raw, shape)), ref)
    keys = jax.random.split(jax.random.key(4), 3)
    np.testing.assert_array_equal(
        np.asarray(jax.jit(jax.vmap(lambda k: threefry.normal(k, shape)))(keys)),
        np.asarray(jax.vmap(lambda k: jax.random.normal(k, shape))(keys)))
    rbg = jax.random.key(5, impl="rbg")
    np.testing.assert_array_equal(np.asarray(threefry.normal(rbg, shape)),
                                  np.asarray(jax.random.normal(rbg, shape)))
    bf16 = threefry.normal(jax.random.key(6), shape, jnp.bfloat16)
    assert bf16.dtype == jnp.bfloat16 and bf16.shape == shape
