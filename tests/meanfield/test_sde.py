"""Statistical oracles of the limiting SDE and the finite model (spec §4 test oracles 3-7, 11).

Tolerances are standard errors computed from the samples in each test.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpapers.meanfield import (
    Coefficients,
    ModelConfig,
    kappa,
    kernel_constants,
    lyapunov_exponent,
    sde_solve,
    uniform_sphere,
)
from jaxpapers.meanfield.metrics import energy, expected_initial_energy, strong_error

Z = 3.0  # standard errors allowed


def _within(sample, target, z=Z, bias=0.0):
    sample = np.asarray(sample, np.float64)
    se = sample.std(ddof=1) / np.sqrt(sample.size)
    assert abs(sample.mean() - target) <= z * se + bias, (sample.mean(), target, se)


def _x0_runs(runs, n, d, seed=1, dtype=None):
    keys = jax.random.split(jax.random.key(seed), runs)
    return jax.vmap(lambda k: uniform_sphere(k, n, d, dtype))(keys)


@pytest.mark.parametrize("noise,scheme", [("gp", "ln"), ("gp", "ito"), ("mlp", "heun"),
                                          ("mlp", "ln")])
def test_one_point_motion_is_spherical_brownian_motion(noise, scheme):
    # spec oracle 3: E<X_t, x0> = exp(-(d-1) kappa(1) t / 2) and
    # E[(e.X_t)^2 - 1/d] = ((e.x0)^2 - 1/d) exp(-d kappa(1) t), exact for the SDE
    d, sigma, t, runs = 5, 0.1, 2.0, 2000
    cfg = ModelConfig(num_layers=40, horizon=t, width=16, noise=noise, scheme=scheme)
    coeffs = Coefficients(1.0, 0.0, sigma, sigma)
    k1 = float(kernel_constants("relu", d, sigma, sigma).kappa1)
    x0 = jnp.zeros((1, d)).at[0, 0].set(1.0)
    keys = jax.random.split(jax.random.key(7), runs)
    x = jax.jit(jax.vmap(lambda k: sde_solve(k, x0, cfg, coeffs).x[0]))(keys)
    x = np.asarray(x, np.float64)
    # Itô EM without renormalisation leaves the sphere by O(dt); both moments are O(dt) exact
    _within(x[:, 0], np.exp(-(d - 1) * k1 * t / 2))
    _within(x[:, 0] ** 2 - 1 / d, (1 - 1 / d) * np.exp(-d * k1 * t))


@pytest.mark.parametrize("noise", ["mlp", "gp"])
def test_two_point_overlap_one_step_drift_and_variance(noise):
    # spec oracle 4 / §3: du = b(u) dt + sqrt(a(u)) dB with
    # b = (d - 2 + u^2) kappa(u) - (d - 1) kappa(1) u, a = 2 (1 - u^2)(kappa(1) - u kappa(u))
    d, sigma, u0, dt, runs = 5, 0.1, 0.3, 0.005, 200_000
    ku = float(kappa(u0, "relu", d, sigma, sigma))
    k1 = float(kernel_constants("relu", d, sigma, sigma).kappa1)
    b = (d - 2 + u0**2) * ku - (d - 1) * k1 * u0
    a = 2 * (1 - u0**2) * (k1 - u0 * ku)
    x0 = jnp.zeros((2, d)).at[0, 0].set(1.0).at[1, 0].set(u0).at[1, 1].set(np.sqrt(1 - u0**2))
    cfg = ModelConfig(num_layers=1, horizon=dt, width=8, noise=noise)
    coeffs = Coefficients(1.0, 0.0, sigma, sigma)
    keys = jax.random.split(jax.random.key(11), runs)

    def du(k):
        x = sde_solve(k, x0, cfg, coeffs).x
        return jnp.dot(x[0], x[1]) - u0

    inc = np.asarray(jax.jit(jax.vmap(du))(keys), np.float64)
    _within(inc, b * dt)
    _within((inc - inc.mean()) ** 2, a * dt)


def test_initial_energy_closed_form():
    # spec oracle 5: d = 5, beta = 1, N = 64 -> 0.7947
    runs, n, d = 400, 64, 5
    want = expected_initial_energy(n, d, 1.0)
    np.testing.assert_allclose(want, 0.7947, atol=5e-4)
    e = jax.jit(jax.vmap(lambda x: energy(x, 1.0)))(_x0_runs(runs, n, d))
    _within(e, want)


def _lyapunov(act, d, sigma, horizon, dt, width, runs):
    cfg = ModelConfig(num_layers=int(round(horizon / dt)), horizon=horizon, activation=act,
                      width=width)
    coeffs = Coefficients(1.0, 0.0, sigma, sigma)
    keys = jax.random.split(jax.random.key(3), runs)
    est = jax.jit(jax.vmap(lambda k, x: lyapunov_exponent(k, x, cfg, coeffs)))(
        keys, _x0_runs(runs, 1, d))
    return np.asarray(est), float(kernel_constants(act, d, sigma, sigma).lambda1)


def test_lyapunov_exponent_sigmoid_row():
    est, want = _lyapunov("sigmoid", 5, 0.1, 20.0, 0.01, 16, 32)
    _within(est, want)


@pytest.mark.slow
@pytest.mark.parametrize("act,d,sigma", [("relu", 5, 0.0), ("relu", 64, 0.1)])
def test_lyapunov_exponent_table_rows(act, d, sigma):
    lam = float(kernel_constants(act, d, sigma, sigma).lambda1)
    dt = min(0.01, 0.05 / abs(lam))
    est, want = _lyapunov(act, d, sigma, 50.0, dt, 64, 32)
    _within(est, want)


def _strong_slope(ref_layers, levels, runs, scheme="ln"):
    with jax.enable_x64(True):
        cfg = ModelConfig(num_layers=ref_layers, horizon=1.0, width=64, noise="features",
                          scheme=scheme)
        coeffs = Coefficients(1.0, 1.0, 0.3, 0.3)
        keys = jax.random.split(jax.random.key(0), runs)
        x0 = _x0_runs(runs, 4, 5, dtype=jnp.float64)
        err = np.asarray(jax.jit(jax.vmap(lambda k, x: strong_error(k, x, cfg, levels, coeffs)))(
            keys, x0))
    logl = np.log(levels)

    def slope(e):
        return np.polyfit(logl, np.log(e.mean(0)), 1)[0]

    full = slope(err)
    jack = np.array([slope(np.delete(err, i, axis=0)) for i in range(runs)])
    se = np.sqrt((runs - 1) / runs * np.sum((jack - jack.mean()) ** 2))
    return full, se


@pytest.mark.slow  # the full slopes are slow too; the schemes are covered by the oracles
def test_strong_error_slope_is_minus_one():
    # spec oracle 11 (small): MSE at grid times ~ 1/L on a shared Brownian path (float64)
    slope, se = _strong_slope(128, [8, 16, 32], 24)
    assert abs(slope + 1.0) <= Z * se, (slope, se)


@pytest.mark.slow
@pytest.mark.parametrize("scheme", ["ln", "ito", "heun"])
def test_strong_error_slope_full(scheme):
    slope, se = _strong_slope(1024, [16, 32, 64, 128], 64, scheme)
    assert abs(slope + 1.0) <= Z * se, (slope, se)


@pytest.mark.slow
def test_energy_decays_at_least_at_lambda_bar_prime_rate():
    # spec oracle 7: ReLU d = 64, sigma = 0.1, no attention: rate <= lambda_bar' (= -0.351)
    from jaxpapers.meanfield import lambda_bar_prime
    from jaxpapers.meanfield.metrics import energy_rate

    d, sigma, runs = 64, 0.1, 32
    cfg = ModelConfig(num_layers=150, horizon=5.0, width=256, save_every=150)
    coeffs = Coefficients(1.0, 0.0, sigma, sigma)
    keys = jax.random.split(jax.random.key(5), runs)
    out = jax.jit(jax.vmap(lambda k, x: sde_solve(k, x, cfg, coeffs)))(keys,
                                                                       _x0_runs(runs, 64, d))
    rate, se = energy_rate(out.saved.energy, 5.0)
    assert float(rate) <= float(lambda_bar_prime(1.0, "relu", d, sigma, sigma)) + Z * float(se)


@pytest.mark.slow
def test_propagation_of_chaos_proxies_shrink_with_n():
    # systems of different size driven by the same per-layer weights (same run key) approach
    # the reference system as N grows (paper Prop. 3.x): compare N = 16 with N = 256
    from jaxpapers.meanfield.metrics import chaos_proxies

    d, runs, n_ref = 5, 16, 2048
    cfg = ModelConfig(num_layers=10, horizon=1.0, width=32)
    coeffs = Coefficients(1.0, 1.0, 0.1, 0.1)
    keys = jax.random.split(jax.random.key(4), runs)

    def proxies(n, seed):
        x0 = _x0_runs(runs, n, d, seed=seed)
        return jax.jit(jax.vmap(lambda k, x: sde_solve(k, x, cfg, coeffs).x))(keys, x0)

    ref, small, large = proxies(n_ref, 1), proxies(16, 2), proxies(256, 3)
    p_small = np.asarray(jax.vmap(chaos_proxies)(small, ref)[1], np.float64)
    p_large = np.asarray(jax.vmap(chaos_proxies)(large, ref)[1], np.float64)
    diff = p_small - p_large  # second-moment proxy; paired over runs (same noise)
    assert diff.mean() > Z * diff.std(ddof=1) / np.sqrt(runs), (p_small.mean(), p_large.mean())
