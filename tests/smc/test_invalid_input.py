"""Bad input to the SMC kernels: refused with a message naming the argument, or flagged."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpapers import smc
from jaxpapers._src import threefry


def test_bootstrap_filter_nan_observation():
    ys = jnp.asarray([0.1, jnp.nan, 0.3])
    with pytest.raises(ValueError, match="observations must be finite"):
        smc.bootstrap_particle_filter(jax.random.key(0), smc.LGSSM(), ys, 16)
    run = jax.jit(lambda ys: smc.bootstrap_particle_filter(jax.random.key(0), smc.LGSSM(), ys,
                                                           16))
    assert not bool(run(ys).valid)
    good = run(jnp.asarray([0.1, -0.2, 0.3]))
    assert bool(good.valid) and np.isfinite(float(good.log_likelihood))


def test_kalman_refuses_matrix_observations():
    with pytest.raises(ValueError, match=r"observations must have shape \(T,\)"):
        smc.kalman_log_likelihood(smc.LGSSM(), jnp.zeros((3, 2)))


@pytest.mark.parametrize("jit", [False, True])
def test_int_key_is_named(jit):
    w = jnp.full(4, 0.25)
    fn = jax.jit(smc.systematic) if jit else smc.systematic
    with pytest.raises(ValueError, match="key must be a PRNG key"):
        fn(0, w)
    legacy = jax.random.PRNGKey(0)  # legacy uint32 keys stay accepted
    assert smc.systematic(legacy, w).shape == (4,)


def test_key_words_names_a_non_key():
    with pytest.raises(ValueError, match="key must be a PRNG key"):
        threefry.key_words(0)
    with pytest.raises(ValueError, match="key must be a PRNG key"):
        jax.jit(lambda k: threefry.normal(k, (3,)))(jnp.int32(0))


def test_maybe_resample_traced_threshold_out_of_range():
    lw = jnp.log(jnp.asarray([0.1, 0.2, 0.3, 0.4]))
    _, new, did = jax.jit(smc.maybe_resample)(jax.random.key(0), lw, 2.0)
    assert not bool(did) and not bool(smc.log_weights_are_valid(new))


def test_init_refuses_nan_log_weights():
    with pytest.raises(ValueError, match="log_weights"):
        smc.init(jnp.zeros(3), jnp.asarray([0.0, jnp.nan, 0.0]))


def test_lgssm_refuses_nan_transition():
    with pytest.raises(ValueError, match="transition"):
        smc.LGSSM(transition=float("nan"))
