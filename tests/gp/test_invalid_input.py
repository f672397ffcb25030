"""Bad input to the GP kernels: refused with a message naming the argument, or flagged."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpapers import gp


def _data():
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.uniform(size=(6, 2)), jnp.float32)
    return x, jnp.sin(3 * x).sum(1)


def _params():
    return gp.gp_params(0.3, 1.0, 1e-3, dim=2, dtype=jnp.float32)


@pytest.mark.parametrize("bad", [jnp.nan, jnp.inf])
def test_condition_refuses_or_flags_nonfinite_targets(bad):
    x, y = _data()
    y = y.at[2].set(bad)
    with pytest.raises(ValueError, match="x and y must be finite"):
        gp.condition(_params(), x, y)
    post = jax.jit(gp.condition)(_params(), x, y)
    assert not bool(post.ok)
    # a NaN on a padded (mask=False) row is ignored: still a valid posterior
    mask = jnp.ones(6, bool).at[2].set(False)
    assert bool(jax.jit(gp.condition)(_params(), x, y, mask).ok)


def test_condition_flags_bad_hyperparameters_under_jit():
    x, y = _data()
    post = jax.jit(lambda n: gp.condition(gp.gp_params(0.3, 1.0, n, dim=2), x, y))(-1e-3)
    assert not bool(post.ok)
    with pytest.raises(ValueError, match="noise must be finite and >= 0"):
        gp.gp_params(0.3, 1.0, -1e-3)


def test_gp_params_refuses_integer_dtype():
    with pytest.raises(ValueError, match="dtype must be a floating dtype"):
        gp.gp_params(1.0, 1.0, 1e-4, dtype=jnp.int32)


def test_predict_names_the_wrong_input_dimension():
    x, y = _data()
    post = gp.condition(_params(), x, y)
    with pytest.raises(ValueError, match=r"xs must have shape \(n, 2\)"):
        gp.predict(post, jnp.zeros((3, 3)))
    with pytest.raises(ValueError, match="x2 must have shape"):
        gp.se_ard(_params(), x, jnp.zeros((3, 5)))


def test_ucb_negative_beta():
    x, y = _data()
    post = gp.condition(_params(), x, y)
    with pytest.raises(ValueError, match="beta must be >= 0"):
        gp.ucb(post, x, -1.0)
    assert np.all(np.isnan(jax.jit(gp.ucb)(post, x, -1.0)))


@pytest.mark.parametrize("kwargs, match", [
    (dict(learning_rate=-1.0), "learning_rate"),
    (dict(log_bounds=((3.0, -7.0), (-7.0, 3.0), (-16.0, 1.0))), "log_bounds"),
    (dict(spread=float("nan")), "spread"),
])
def test_fit_hypers_refuses_bad_settings(kwargs, match):
    x, y = _data()
    with pytest.raises(ValueError, match=match):
        gp.fit_hypers(jax.random.key(0), _params(), x, y, num_steps=2, **kwargs)


def test_fit_hypers_nan_data_gives_nan_not_restart_zero():
    x, y = _data()
    y = y.at[0].set(jnp.nan)
    with pytest.raises(ValueError, match="finite"):
        gp.fit_hypers(jax.random.key(0), _params(), x, y, num_steps=2)
    fit = jax.jit(lambda y: gp.fit_hypers(jax.random.key(0), _params(), x, y, num_restarts=2,
                                          num_steps=2))(y)
    assert np.isnan(float(fit.log_marginal_likelihood))
    assert np.all(np.isnan(np.asarray(fit.params.lengthscale)))


def test_bucket_size_refuses_negative():
    with pytest.raises(ValueError, match="n must be >= 0"):
        gp.bucket_size(-3)
    with pytest.raises(ValueError, match="minimum"):
        gp.bucket_size(3, minimum=0)
