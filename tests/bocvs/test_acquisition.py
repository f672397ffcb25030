"""Expected UCB and its maximiser against dense float64 oracles; the TS weight sampler."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpapers.bocvs import OptimizerConfig, expected_ucb
from jaxpapers.bocvs._acquisition import rff_posterior_sample
from jaxpapers.bocvs.acquisition import maximize_per_control_set
from jaxpapers.gp import condition, gp_params, predict, ucb
from tests.contracts import check_kernel_contract


@pytest.fixture(autouse=True)
def x64():
    with jax.enable_x64(True):
        yield


def _posterior(n=6, d=2, seed=0, ls=0.25):
    rng = np.random.default_rng(seed)
    x = rng.uniform(size=(n, d))
    y = np.sin(6 * x).sum(1) + 0.01 * rng.normal(size=n)
    return condition(gp_params(ls, 1.0, 1e-4, dim=d), x, y), rng


def test_beta_zero_is_mean_of_posterior_mean_over_w():
    post, rng = _posterior(d=3)
    w = rng.uniform(size=(16, 3))
    mask = jnp.array([1.0, 0.0, 1.0])
    x = jnp.array([0.3, 0.9, 0.7])
    z = np.where(np.asarray(mask)[None] > 0, np.asarray(x)[None], w)
    mean, var = predict(post, z)
    np.testing.assert_allclose(expected_ucb(post, mask, x, w, 0.0), np.mean(mean), rtol=1e-12)
    want = np.mean(mean + 2.0 * np.sqrt(np.maximum(var, 1e-12)))
    np.testing.assert_allclose(expected_ucb(post, mask, x, w, 2.0), want, rtol=1e-12)


def test_degenerate_distribution_and_full_mask_reduce_to_plain_ucb():
    post, rng = _posterior(d=3)
    w0 = np.array([0.2, 0.6, 0.4])
    w_degenerate = np.tile(w0, (8, 1))
    x = jnp.array([0.7, 0.1, 0.5])
    mask = jnp.array([0.0, 1.0, 1.0])
    plain = ucb(post, jnp.array([[0.2, 0.1, 0.5]]), 2.0)[0]
    np.testing.assert_allclose(expected_ucb(post, mask, x, w_degenerate, 2.0), plain, rtol=1e-12)
    full = jnp.ones(3)
    a = expected_ucb(post, full, x, rng.uniform(size=(8, 3)), 2.0)
    b = expected_ucb(post, full, x, rng.uniform(size=(32, 3)), 2.0)
    np.testing.assert_allclose(a, ucb(post, x[None], 2.0)[0], rtol=1e-12)
    np.testing.assert_allclose(a, b, rtol=1e-12)


def test_maximiser_matches_dense_grid_on_1d_and_2d_sets(key):
    post, rng = _posterior(n=6, d=2, seed=1)
    w = jnp.asarray(rng.uniform(size=(16, 2)))
    masks = jnp.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    fn = lambda m, x: expected_ucb(post, m, x, w, 2.0)
    cfg = OptimizerConfig(num_raw=64, num_restarts=4, num_steps=200, learning_rate=0.1)
    x_hat, v = jax.jit(lambda k: maximize_per_control_set(k, fn, masks, cfg))(key)
    g1 = np.linspace(0, 1, 2001)
    batched = jax.jit(jax.vmap(fn, in_axes=(None, 0)))
    grid_1d = [np.max(batched(masks[i], np.stack([g1, g1], 1))) for i in range(2)]
    g2 = np.linspace(0, 1, 201)
    pts = np.stack(np.meshgrid(g2, g2, indexing="ij"), -1).reshape(-1, 2)
    grid_2d = np.max(batched(masks[2], pts))
    grid = np.array(grid_1d + [grid_2d])
    assert np.all(np.asarray(v) >= grid - 1e-3), (np.asarray(v), grid)
    np.testing.assert_allclose(v, jax.vmap(fn)(masks, x_hat), rtol=1e-12)


def test_full_set_value_dominates_partial_sets(key):
    post, rng = _posterior(n=8, d=3, seed=2, ls=0.1)
    w = jnp.asarray(rng.uniform(size=(16, 3)))
    masks = jnp.array([[1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0], [1.0, 1.0, 1.0]])
    fn = lambda m, x: expected_ucb(post, m, x, w, 2.0)
    cfg = OptimizerConfig(num_raw=4, num_restarts=1, num_steps=0)  # weak on purpose
    _, v = jax.jit(lambda k: maximize_per_control_set(
        k, fn, masks, cfg, point_fn=lambda z: ucb(post, z, 2.0), w=w))(key)
    assert np.all(np.asarray(v[3]) >= np.asarray(v[:3]))


def test_maximiser_contract():
    post, rng = _posterior(n=6, d=2)
    w = jnp.asarray(rng.uniform(size=(4, 2)))
    masks = jnp.array([[1.0, 0.0], [1.0, 1.0]])
    cfg = OptimizerConfig(num_raw=8, num_restarts=2, num_steps=3)
    check_kernel_contract(
        lambda k, m: maximize_per_control_set(k, lambda r, x: expected_ucb(post, r, x, w, 2.0),
                                              m, cfg), masks)
    with pytest.raises(ValueError, match="num_restarts"):
        maximize_per_control_set(jax.random.key(0), lambda r, x: 0.0, masks,
                                 OptimizerConfig(num_raw=2, num_restarts=3))


def test_rff_thompson_weights_follow_the_linear_gaussian_posterior(key):
    """Chi-square check: (theta - m)^T S^{-1} (theta - m) has mean F under the exact posterior."""
    rng = np.random.default_rng(0)
    n, d, F, lam = 5, 2, 12, 0.1
    x = jnp.asarray(rng.uniform(size=(8, d)))
    y = jnp.asarray(rng.normal(size=8))
    mask = jnp.arange(8) < n  # 3 padded rows must be ignored
    params = gp_params(0.3, 1.0, lam, dim=d)

    def stat(k):
        s = rff_posterior_sample(k, params, x, y, mask, F)
        phi = s.amplitude * jnp.cos(x[:n] @ s.omega.T + s.phase[None, :])
        a = phi.T @ phi + lam * jnp.eye(F)
        mean = jnp.linalg.solve(a, phi.T @ y[:n])
        cov = lam * jnp.linalg.inv(a)
        r = s.theta - mean
        return r @ jnp.linalg.solve(cov, r)

    reps = 400
    stats = jax.jit(jax.vmap(stat))(jax.random.split(key, reps))
    se = np.sqrt(2 * F / reps)
    assert abs(float(np.mean(stats)) - F) < 4 * se


def test_expected_improvement_acquisition_against_monte_carlo():
    """The EI acquisition of EI-PSQ per cost: the mean over posterior samples of the improvement
    of the set's averaged value over the best observed value, checked against a direct NumPy
    evaluation of the same samples; zero for a set whose value cannot improve."""
    from jaxpapers.bocvs import BOConfig
    from jaxpapers.bocvs._acquisition import assemble, rff_evaluate, rff_posterior_sample
    from jaxpapers.bocvs._loop import ProblemSpec, _acquisition_fn

    key = jax.random.key(5)
    x = jax.random.uniform(key, (6, 3), jnp.float64)
    y = jnp.sin(3 * x[:, 0]) + x[:, 1]
    mask = jnp.arange(6) < 5
    w = jax.random.uniform(jax.random.key(6), (16, 3), jnp.float64)
    spec = ProblemSpec(jnp.ones((2, 3)), jnp.ones(2), jnp.ones(3), 5.0, 0.01, jnp.full(3, 0.2))
    config = BOConfig(acquisition="ei", num_features=64, num_ei_samples=8, num_samples=16)
    value_fn, point_fn, ok, _ = _acquisition_fn(key, config, spec, x, y, mask, w)
    assert bool(ok)
    mask_row = jnp.asarray([1.0, 0.0, 1.0])
    q = jnp.asarray([0.3, 0.5, 0.7])
    params = gp_params(jnp.full(3, 0.2), 1.0, 1e-4, dtype=jnp.float64)
    keys = jax.random.split(key, 8)
    samples = [rff_posterior_sample(k, params, x, y, mask, 64) for k in keys]
    z = assemble(mask_row, q, w)
    want = np.mean([max(0.0, float(jnp.mean(rff_evaluate(s, z)))
                        - float(jnp.max(jnp.where(mask, rff_evaluate(s, x), -jnp.inf))))
                    for s in samples])
    np.testing.assert_allclose(float(value_fn(mask_row, q)), want, rtol=1e-8, atol=1e-12)
    assert float(point_fn(z).mean()) >= float(value_fn(mask_row, q)) - 1e-12  # Jensen
    assert float(value_fn(mask_row, q)) >= 0.0
