"""GP kernels against dense float64 NumPy oracles; padding, jitter policy, fitting."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpapers import InvalidInputError
from jaxpapers.gp import (
    GPParams,
    bucket_size,
    condition,
    fit_hypers,
    gp_params,
    lcb,
    log_marginal_likelihood,
    matern52,
    pad_data,
    predict,
    se_ard,
    ucb,
)
from tests.contracts import check_kernel_contract


@pytest.fixture(autouse=True)
def x64():
    with jax.enable_x64(True):
        yield


def np_kernel(name, ls, s2, a, b):
    r2 = (((a[:, None, :] - b[None, :, :]) / ls) ** 2).sum(-1)
    if name == "se":
        return s2 * np.exp(-0.5 * r2)
    r = np.sqrt(r2)
    return s2 * (1 + np.sqrt(5) * r + 5 * r2 / 3) * np.exp(-np.sqrt(5) * r)


def data(n=4, d=2, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(size=(n, d)), rng.normal(size=n), rng.uniform(size=(6, d))


@pytest.mark.parametrize("kernel,with_inverse", [("se", False), ("matern52", False),
                                                 ("se", True)])
def test_posterior_matches_dense_numpy_solve(kernel, with_inverse):
    x, y, xs = data()
    ls, s2, lam = np.array([0.3, 0.7]), 1.3, 1e-3
    post = condition(gp_params(ls, s2, lam), x, y, kernel=kernel, jitter=0.0,
                     with_inverse=with_inverse)
    mean, var = predict(post, xs)
    K = np_kernel(kernel, ls, s2, x, x) + lam * np.eye(len(x))
    ks = np_kernel(kernel, ls, s2, x, xs)
    np.testing.assert_allclose(mean, ks.T @ np.linalg.solve(K, y), rtol=1e-10, atol=1e-12)
    want_var = s2 - np.einsum("ip,ip->p", ks, np.linalg.solve(K, ks))
    np.testing.assert_allclose(var, want_var, rtol=1e-10, atol=1e-12)
    sign, logdet = np.linalg.slogdet(K)
    want_lml = -0.5 * y @ np.linalg.solve(K, y) - 0.5 * logdet - 0.5 * len(y) * np.log(2 * np.pi)
    lml = log_marginal_likelihood(gp_params(ls, s2, lam), x, y, kernel=kernel)
    np.testing.assert_allclose(lml, want_lml, rtol=1e-10)


def test_kernels_match_numpy_and_are_psd():
    x, _, xs = data(n=7, d=3)
    p = gp_params([0.2, 0.5, 1.0], 2.0)
    for name, fn in [("se", se_ard), ("matern52", matern52)]:
        want = np_kernel(name, np.asarray(p.lengthscale), 2.0, x, xs)
        np.testing.assert_allclose(fn(p, x, xs), want, rtol=1e-12)
        assert np.linalg.eigvalsh(np.asarray(fn(p, x, x))).min() > -1e-10


@pytest.mark.parametrize("kernel", ["se", "matern52"])
def test_padded_equals_unpadded(kernel):
    x, y, xs = data(n=5, d=2, seed=1)
    p = gp_params([0.4, 0.3], 1.0, 1e-4)
    ref = condition(p, x, y, kernel=kernel)
    xp, yp, mask = pad_data(x, y, size=16)
    yp = yp.at[5:].set(123.0)  # garbage in padded rows must not matter
    xp = xp.at[5:].set(0.5)
    padded = condition(p, xp, yp, mask, kernel=kernel)
    for a, b in zip(predict(ref, xs), predict(padded, xs), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(log_marginal_likelihood(p, x, y, kernel=kernel),
                               log_marginal_likelihood(p, xp, yp, mask, kernel=kernel), rtol=1e-12)


def test_bucket_sizes():
    assert [bucket_size(n) for n in (1, 8, 9, 100, 128, 129)] == [8, 8, 16, 128, 128, 256]
    with pytest.raises(ValueError, match="size"):
        pad_data(np.zeros((5, 2)), np.zeros(5), size=4)


def test_interpolation_and_prior_far_away():
    x, y, _ = data(n=6, d=2)
    post = condition(gp_params(0.2, 1.7, 1e-10), x, y)
    mean, var = predict(post, x)
    np.testing.assert_allclose(mean, y, atol=1e-6)
    assert np.all(np.abs(var) < 1e-6)
    _, far = predict(post, np.full((1, 2), 50.0))
    np.testing.assert_allclose(far, 1.7, rtol=1e-12)


def test_ucb_lcb():
    x, y, xs = data()
    post = condition(gp_params(0.3), x, y)
    mean, var = predict(post, xs)
    np.testing.assert_allclose(ucb(post, xs, 0.0), mean, rtol=1e-14)
    sd = np.sqrt(np.maximum(var, 1e-12))
    np.testing.assert_allclose(ucb(post, xs, 2.0), mean + 2 * sd, rtol=1e-12)
    np.testing.assert_allclose(lcb(post, xs, 2.0), mean - 2 * sd, rtol=1e-12)
    g = jax.grad(lambda z: ucb(post, z, 2.0).sum())(x)  # at training inputs: finite
    assert np.all(np.isfinite(g))


def test_jitter_escalates_then_errors():
    x = np.array([[0.1, 0.2], [0.1, 0.2], [0.5, 0.5]])  # duplicate rows: singular K
    y = np.array([1.0, 1.0, 0.0])
    # noise 0: the second pivot is 1 + j - 1, zero in float64 until j reaches 1e-15
    post = condition(gp_params(0.3, 1.0, 0.0), x, y, jitter=1e-17)
    assert bool(post.ok) and float(post.jitter) == pytest.approx(1e-15)
    with pytest.raises(InvalidInputError, match="not positive definite"):
        condition(gp_params(0.3, 1.0, 0.0), x, y, jitter=1e-17, max_tries=1)
    with pytest.raises(InvalidInputError, match="noise must be finite and >= 0"):
        gp_params(0.3, 1.0, -1.0)
    jitted = jax.jit(lambda p: condition(p, x, y).ok)
    assert not bool(jitted(GPParams(jnp.asarray(0.3), jnp.asarray(1.0), jnp.asarray(-1.0))))
    assert bool(jitted(gp_params(0.3, 1.0, 1e-4)))


def test_bad_shapes():
    with pytest.raises(ValueError, match="y must have shape"):
        condition(gp_params(0.3), np.zeros((3, 2)), np.zeros(4))
    with pytest.raises(ValueError, match="lengthscale"):
        condition(gp_params([0.3, 0.2, 0.1]), np.zeros((3, 2)), np.zeros(3))
    with pytest.raises(ValueError, match="kernel"):
        condition(gp_params(0.3), np.zeros((3, 2)), np.zeros(3), kernel="rbf")


def test_float32_stays_float32():
    x, y, xs = data()
    with jax.enable_x64(False):
        p = gp_params(0.3, dtype=jnp.float32)
        mean, var = predict(condition(p, x.astype(np.float32), y.astype(np.float32)),
                            xs.astype(np.float32))
        assert mean.dtype == jnp.float32 and var.dtype == jnp.float32


@pytest.mark.slow  # an optimisation run of several hundred steps
def test_fit_hypers_reaches_at_least_the_true_likelihood(key):
    rng = np.random.default_rng(3)
    x = rng.uniform(size=(40, 1))
    true = gp_params(0.2, 1.5, 1e-2)
    K = np_kernel("se", 0.2, 1.5, x, x) + 1e-2 * np.eye(40)
    y = np.linalg.cholesky(K) @ rng.normal(size=40)
    init = gp_params(1.0, 1.0, 1e-1)
    fit = jax.jit(lambda k: fit_hypers(k, init, x, y, num_restarts=4, num_steps=300,
                                       learning_rate=0.05))(key)
    lml_true = log_marginal_likelihood(true, x, y)
    assert float(fit.log_marginal_likelihood) >= float(lml_true) - 1e-3
    assert float(fit.log_marginal_likelihood) >= float(log_marginal_likelihood(init, x, y))
    np.testing.assert_allclose(fit.log_marginal_likelihood,
                               log_marginal_likelihood(fit.params, x, y), rtol=1e-8)


def test_contracts():
    x, y, xs = data()
    p = gp_params(0.3, 1.0, 1e-3)
    xp, yp, mask = pad_data(x, y, size=8)
    check_kernel_contract(lambda k, xp, yp, m: predict(condition(p, xp, yp, m), xs), xp, yp,
                          mask, deterministic=True)
    check_kernel_contract(lambda k, xp, yp, m: fit_hypers(k, p, xp, yp, m, num_restarts=2,
                                                          num_steps=5), xp, yp, mask)
