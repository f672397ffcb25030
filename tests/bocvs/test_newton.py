"""Newton acquisition maximiser: closed-form expected-UCB derivatives against autodiff, the
projected trust-region iteration against known maxima, and its use inside the BO loop."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpapers.bocvs import (
    BOConfig,
    OptimizerConfig,
    expected_ucb,
    maximize_expected_ucb,
    problem_spec,
    run_bo,
    ucb_psq,
)
from jaxpapers.bocvs._newton import (
    autodiff_derivatives,
    expected_ucb_derivatives,
    expected_ucb_parts,
    expected_ucb_value,
)
from jaxpapers.bocvs.acquisition import maximize_per_control_set, newton_refine
from jaxpapers.bocvs.problems import make_problem
from jaxpapers.gp import condition, gp_params, pad_data


@pytest.fixture(autouse=True)
def x64():
    with jax.enable_x64(True):
        yield


MASKS = jnp.array([[1.0, 0.0, 0.0], [0.0, 1.0, 1.0], [1.0, 0.0, 1.0], [1.0, 1.0, 1.0]])


def _posterior(n=7, size=8, seed=0, ls=(0.2, 0.3, 0.25)):
    rng = np.random.default_rng(seed)
    x = rng.uniform(size=(n, 3))
    y = np.sin(5 * x).sum(1) + 0.01 * rng.normal(size=n)
    xp, yp, mask = pad_data(x, y, size=size)  # one padded row: it must not matter
    post = condition(gp_params(jnp.asarray(ls), 1.3, 1e-4, dim=3), xp, yp, mask,
                     with_inverse=True)
    return post, rng


def test_closed_form_value_gradient_hessian_match_autodiff():
    post, rng = _posterior()
    w = jnp.asarray(rng.uniform(size=(24, 3)))
    # per set: a query near a training input (small variance), a corner, one inside
    queries = jnp.stack([post.x[0] + 1e-3, jnp.array([0.0, 1.0, 1.0]),
                         jnp.asarray(rng.uniform(size=3))])
    index = jnp.repeat(jnp.arange(MASKS.shape[0]), queries.shape[0])
    qs = jnp.tile(queries, (MASKS.shape[0], 1))

    @jax.jit
    def both(index, q):
        parts = expected_ucb_parts(post, MASKS, w, 2.0)
        fn = lambda q: expected_ucb(post, MASKS[index], q, w, 2.0)
        closed = expected_ucb_derivatives(parts, index, q)
        auto = (fn(q), jax.grad(fn)(q), jax.hessian(fn)(q))
        return closed, auto, expected_ucb_value(parts, index, q)

    (f, g, h), (f_ad, g_ad, h_ad), v = jax.vmap(both)(index, qs)
    np.testing.assert_allclose(f, f_ad, rtol=1e-12)
    np.testing.assert_allclose(v, f_ad, rtol=1e-12)
    np.testing.assert_allclose(g, g_ad, rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(h, h_ad, rtol=1e-8, atol=1e-9)
    assert np.all(np.asarray(g)[np.asarray(MASKS[index]) == 0] == 0)
    assert float(jnp.max(jnp.abs(h_ad))) > 1.0  # the Hessians compared are not trivially zero


def test_closed_form_refuses_other_kernels():
    rng = np.random.default_rng(0)
    post = condition(gp_params(0.3, 1.0, 1e-4, dim=3), rng.uniform(size=(5, 3)),
                     rng.normal(size=5), kernel="matern52")
    with pytest.raises(ValueError, match="SE kernel"):
        expected_ucb_parts(post, MASKS, jnp.zeros((4, 3)), 2.0)


def test_newton_lands_on_interior_and_bound_maxima_and_holds_unmasked_coordinates():
    # f(x) = -(x0 - 0.3)^2 - 2 (x1 - 1.4)^2 - (x2 - 0.6)^2 + 0.5 x0 x2: the box maximum has
    # x1 = 1 (bound) and (x0, x2) solving the 2x2 stationarity system
    def f(mask_row, x):
        return -(x[0] - 0.3) ** 2 - 2 * (x[1] - 1.4) ** 2 - (x[2] - 0.6) ** 2 + 0.5 * x[0] * x[2]

    masks = jnp.array([[1.0, 1.0, 1.0], [0.0, 1.0, 0.0]])
    starts = jnp.array([[[0.9, 0.1, 0.05], [0.5, 0.5, 0.5]], [[0.2, 0.3, 0.7], [0.8, 0.0, 0.1]]])
    x, value, iterations = jax.jit(
        lambda s: newton_refine(autodiff_derivatives(f, masks), masks, s, 30))(starts)
    interior = np.linalg.solve([[-2.0, 0.5], [0.5, -2.0]], [-0.6, -1.2])
    for r in range(2):
        np.testing.assert_allclose(x[0, r], [interior[0], 1.0, interior[1]], atol=1e-10)
        assert x[1, r, 1] == 1.0  # on the bound exactly
        np.testing.assert_array_equal(x[1, r, [0, 2]], starts[1, r, [0, 2]])
    assert int(iterations) < 30
    start_values = jax.vmap(jax.vmap(f, in_axes=(None, 0)))(masks, starts)
    assert np.all(np.asarray(value) >= np.asarray(start_values))


def test_newton_reaches_at_least_long_adam_and_is_stationary(key):
    post, rng = _posterior(n=7, seed=3)
    w = jnp.asarray(rng.uniform(size=(32, 3)))
    adam = OptimizerConfig(num_raw=32, num_restarts=4, num_steps=150, learning_rate=0.05,
                           batch_size=8)
    newton = adam.replace(num_steps=30, method="newton")
    fn = lambda m, q: expected_ucb(post, m, q, w, 2.0)
    _, v_adam = jax.jit(lambda k: maximize_per_control_set(k, fn, MASKS, adam))(key)
    x_n, v_newton = jax.jit(lambda k: maximize_expected_ucb(k, post, MASKS, w, 2.0, newton))(key)
    _, v_auto = jax.jit(lambda k: maximize_per_control_set(k, fn, MASKS, newton))(key)
    assert np.all(np.asarray(v_newton) >= np.asarray(v_adam) - 1e-9)
    np.testing.assert_allclose(v_auto, v_newton, rtol=1e-10)  # autodiff Hessian, same path
    values, grads = jax.jit(jax.vmap(jax.value_and_grad(fn, argnums=1)))(MASKS, x_n)
    np.testing.assert_allclose(v_newton, values, rtol=1e-12)
    for i in range(MASKS.shape[0]):
        g, xi = np.asarray(grads[i]), np.asarray(x_n[i])
        free = (np.asarray(MASKS[i]) > 0) & ~((xi <= 0) & (g < 0)) & ~((xi >= 1) & (g > 0))
        assert np.max(np.abs(g[free]), initial=0.0) < 1e-6


def test_coarse_samples_finish_on_the_full_objective(key):
    """Scored and converged on 8 of 64 rows, the best 2 restarts finished on all 64."""
    post, rng = _posterior(n=7, seed=4)
    w = jnp.asarray(rng.uniform(size=(64, 3)))
    cfg = OptimizerConfig(num_raw=32, num_restarts=4, num_steps=30, batch_size=8,
                          method="newton", coarse_samples=8, finish_restarts=2)
    x_hat, value = jax.jit(lambda k: maximize_expected_ucb(k, post, MASKS, w, 2.0, cfg))(key)
    parts = expected_ucb_parts(post, MASKS, w, 2.0)
    f, grads, _ = jax.jit(jax.vmap(functools.partial(expected_ucb_derivatives, parts)))(
        jnp.arange(MASKS.shape[0]), x_hat)
    np.testing.assert_allclose(value, f, rtol=1e-12)
    for i in range(MASKS.shape[0] - 1):  # partial sets: stationary for all 64 rows of w
        g, xi = np.asarray(grads[i]), np.asarray(x_hat[i])
        free = (np.asarray(MASKS[i]) > 0) & ~((xi <= 0) & (g < 0)) & ~((xi >= 1) & (g > 0))
        assert np.max(np.abs(g[free]), initial=0.0) < 1e-6


def test_bad_optimizer_settings_are_refused():
    with pytest.raises(ValueError, match="method"):
        OptimizerConfig(method="lbfgs")
    with pytest.raises(ValueError, match="coarse_samples"):
        OptimizerConfig(coarse_samples=-1)
    with pytest.raises(ValueError, match="finish_restarts"):
        OptimizerConfig(finish_restarts=-2)


def test_bo_loop_with_newton_runs_and_is_deterministic(key):
    problem = make_problem("hartmann3", "moderate", 0.02)
    config = BOConfig(num_samples=16, num_eval_samples=32, buckets=(16,),
                      optimizer=OptimizerConfig(8, 2, 10, 0.1, 8, "newton", 8, 1))
    run = jax.jit(functools.partial(run_bo, spec=problem_spec(problem), policy=ucb_psq(7),
                                    objective=problem.objective, config=config))
    a, b = run(key), run(key)
    assert int(a.num_rounds) > 0
    assert np.all(np.isfinite(np.asarray(a.acq_value)[: int(a.num_rounds)]))
    np.testing.assert_array_equal(np.asarray(a.query), np.asarray(b.query))
