"""ESS, log-weight normalisation, the adaptive rule, and bad-input behaviour."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpapers import smc

SCHEMES = sorted(smc.RESAMPLERS)


def test_normalize_matches_float64_numpy(key):
    log_w = jax.random.normal(key, (50,)) * 30.0
    weights, log_z = smc.normalize_log_weights(log_w)
    ref = np.asarray(log_w, np.float64)
    ref_z = np.log(np.sum(np.exp(ref - ref.max()))) + ref.max()
    np.testing.assert_allclose(log_z, ref_z, rtol=1e-5)
    np.testing.assert_allclose(weights, np.exp(ref - ref_z), rtol=1e-4, atol=1e-7)


def test_ess_uniform_one_hot_and_scale_invariance(key):
    assert float(smc.ess(jnp.zeros(37))) == pytest.approx(37.0, rel=1e-5)
    one_hot = jnp.full(10, -jnp.inf).at[3].set(0.0)
    assert float(smc.ess(one_hot)) == pytest.approx(1.0, rel=1e-6)
    log_w = jax.random.normal(key, (100,))
    w = np.exp(np.asarray(log_w, np.float64))
    assert float(smc.ess(log_w)) == pytest.approx(w.sum() ** 2 / (w ** 2).sum(), rel=1e-4)
    assert float(smc.ess(log_w + 7.0)) == pytest.approx(float(smc.ess(log_w)), rel=1e-5)


def test_maybe_resample_follows_the_threshold(key):
    degenerate = jnp.array([0.0, -10.0, -10.0, -10.0])  # ESS ~ 1.0
    idx, new_lw, did = smc.maybe_resample(key, degenerate, threshold=0.5)
    assert bool(did)
    np.testing.assert_allclose(new_lw, np.full(4, -np.log(4)), rtol=1e-6)
    assert np.all(np.asarray(idx) == 0)
    balanced = jnp.array([0.0, 0.1, -0.1, 0.05])  # ESS ~ 4
    idx, new_lw, did = smc.maybe_resample(key, balanced, threshold=0.5)
    assert not bool(did)
    np.testing.assert_array_equal(idx, np.arange(4))
    np.testing.assert_array_equal(new_lw, balanced)
    # threshold 0 never resamples; under jit the result is the same (branch-free)
    _, _, did = jax.jit(lambda k, l: smc.maybe_resample(k, l, 0.0))(key, degenerate)
    assert not bool(did)


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("weights", [
    [0.2, np.nan, 0.3], [0.2, np.inf, 0.3], [0.2, -0.1, 0.3], [0.0, 0.0, 0.0],
])
def test_invalid_weights_raise_eagerly_and_fall_back_under_jit(scheme, weights, key):
    fn = smc.RESAMPLERS[scheme]
    w = jnp.array(weights, jnp.float32)
    with pytest.raises(ValueError, match="weights"):
        fn(key, w, 5)
    out = jax.jit(lambda k, w: fn(k, w, 5))(key, w)
    np.testing.assert_array_equal(out, np.arange(5) % 3)  # identity, never a collapse to 0
    assert not bool(smc.weights_are_valid(w))


@pytest.mark.parametrize("bad, message", [
    (jnp.zeros((0,)), "empty"),
    (jnp.ones((2, 3)), "1-D"),
])
def test_bad_shapes_raise_even_under_jit(bad, message, key):
    for scheme in SCHEMES:
        with pytest.raises(ValueError, match=message):
            jax.jit(lambda k, w, f=smc.RESAMPLERS[scheme]: f(k, w, 3))(key, bad)


@pytest.mark.parametrize("num_samples", [0, -2, 2.5, True, "3"])
def test_bad_num_samples(num_samples, key):
    for scheme in SCHEMES:
        with pytest.raises(ValueError, match="num_samples"):
            smc.RESAMPLERS[scheme](key, jnp.ones(3), num_samples)


def test_invalid_log_weights(key):
    for bad in [jnp.array([0.0, jnp.nan]), jnp.array([0.0, jnp.inf]), jnp.full(3, -jnp.inf)]:
        with pytest.raises(ValueError, match="log_weights"):
            smc.resample(key, bad)
        with pytest.raises(ValueError, match="log_weights"):
            smc.normalize_log_weights(bad)
        idx, new_lw, did = jax.jit(smc.maybe_resample)(key, bad)
        assert not bool(did)
        np.testing.assert_array_equal(idx, np.arange(bad.shape[0]))
        assert not bool(smc.log_weights_are_valid(bad))
    with pytest.raises(ValueError, match="scheme"):
        smc.resample(key, jnp.zeros(3), "bogus")
    with pytest.raises(ValueError, match="threshold"):
        smc.maybe_resample(key, jnp.zeros(3), threshold=1.5)


def test_many_groups_sharded_over_eight_devices_equal_single_device():
    from tests.multidevice import run_with_devices

    run_with_devices("""
        import jax, jax.numpy as jnp, numpy as np
        from jaxpapers import smc
        from jaxpapers.sharding import data_mesh, shard_batch
        groups, k = 64, 16
        log_w = jax.random.normal(jax.random.key(1), (groups, k)) * 2.0
        keys = jax.random.split(jax.random.key(2), groups)
        for scheme in sorted(smc.RESAMPLERS):
            fn = jax.jit(jax.vmap(lambda kk, lw: smc.resample(kk, lw, scheme)))
            single = np.asarray(fn(keys, log_w))
            mesh = data_mesh(8)
            sk, sl = shard_batch((keys, log_w), mesh)
            sharded = fn(sk, sl)
            assert len(sharded.sharding.device_set) == 8, sharded.sharding
            np.testing.assert_array_equal(np.asarray(sharded), single)
    """)


def test_maybe_resample_accepts_a_traced_threshold(key):
    log_w = jnp.array([0.0, -10.0, -10.0, -10.0])
    for threshold in (0.0, 0.5, 1.0):
        traced = jax.jit(smc.maybe_resample)(key, log_w, threshold)
        static = smc.maybe_resample(key, log_w, threshold)
        for a, b in zip(traced, static, strict=True):
            np.testing.assert_array_equal(a, b)
