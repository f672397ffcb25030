"""The late-window decay-rate estimator against NumPy float64 oracles and synthetic laws.

Oracles: the window rule re-implemented with a plain loop; slopes by ``numpy.polyfit`` in
float64; exact exponentials; the bootstrap standard error against the analytic one on i.i.d.
per-run lines, and against the spread over independent data sets of geometric Brownian motions,
whose mean decays at a known rate ``lam`` and whose mean log at ``lam - s^2 / 2``.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpapers.meanfield.metrics import (
    decay_windows,
    energy_decay_bootstrap,
    energy_decay_fit,
    energy_rate,
)
from tests.contracts import check_kernel_contract

DROP, FLOOR, MIN_POINTS = 0.01, 1e-10, 8


def _windows_numpy(energies, times, drop=DROP, floor=FLOOR, min_points=MIN_POINTS):
    """The documented rule, written as a loop over float64 values."""
    e = np.asarray(energies, np.float64)
    t = np.asarray(times, np.float64)
    mean, low = e.mean(0), e.min(0)
    end = 0
    while end + 1 < t.size and low[end + 1] >= floor:
        end += 1
    usable = np.arange(t.size) <= end
    check = usable & (t >= t[0] + 0.5 * (t[end] - t[0]))
    crossed = [i for i in range(end + 1) if mean[i] <= drop * mean[0]]
    reached = bool(crossed) and end - crossed[0] + 1 >= min_points
    main = usable & (np.arange(t.size) >= crossed[0]) if reached else check
    return main, check, reached, end


def _slope(y, t, mask):
    return np.polyfit(np.asarray(t, np.float64)[mask], np.asarray(y, np.float64)[mask], 1)[0]


def _noisy_decay(key, runs=12, steps=121, horizon=12.0, rate=-0.8, delay=3.0):
    """Energies flat until ``delay``, then exponential at ``rate``, times log-normal noise."""
    t = jnp.linspace(0.0, horizon, steps)
    k1, k2 = jax.random.split(key)
    level = jnp.exp(rate * jnp.maximum(t - delay, 0.0))
    scale = jnp.exp(0.3 * jax.random.normal(k1, (runs, 1)))
    wiggle = jnp.exp(0.05 * jax.random.normal(k2, (runs, steps)))
    return 0.8 * scale * level[None] * wiggle, t


@pytest.mark.parametrize("case", ["reached", "never", "floor"])
def test_window_rule_and_slopes_match_numpy(case):
    energies, t = _noisy_decay(jax.random.key(0))
    if case == "never":   # stays above 1 % of the start: the check window is used
        energies = energies * 0 + 0.8 * jnp.exp(-0.2 * t / 12.0)[None]
        energies = energies * jnp.exp(0.01 * jax.random.normal(jax.random.key(1),
                                                                energies.shape))
    if case == "floor":   # one run drops below the floor from t = 11 on
        energies = energies.at[3, 110:].set(1e-12)
    win = decay_windows(energies.mean(0), energies.min(0), t)
    main, check, reached, end = _windows_numpy(energies, t)
    np.testing.assert_array_equal(np.asarray(win.main), main)
    np.testing.assert_array_equal(np.asarray(win.check), check)
    assert bool(win.reached) == reached and int(win.end) == end
    assert reached == (case != "never")
    if case == "floor":
        assert end == 109

    fit = energy_decay_fit(energies, t)
    e64 = np.asarray(energies, np.float64)
    log_mean, mean_log = np.log(e64.mean(0)), np.log(e64).mean(0)
    np.testing.assert_allclose(fit.mean_slope, _slope(log_mean, t, main), rtol=2e-4, atol=2e-5)
    np.testing.assert_allclose(fit.mean_slope_check, _slope(log_mean, t, check), rtol=2e-4,
                               atol=2e-5)
    np.testing.assert_allclose(fit.log_slope, _slope(mean_log, t, main), rtol=2e-4, atol=2e-5)
    np.testing.assert_allclose(fit.log_slope_check, _slope(mean_log, t, check), rtol=2e-4,
                               atol=2e-5)
    spread = np.log(e64).var(0, ddof=1)[main].max()
    np.testing.assert_allclose(fit.log_spread, spread, rtol=1e-3)
    whole = (log_mean[end] - log_mean[0]) / float(t[end] - t[0])
    np.testing.assert_allclose(fit.whole_run, whole, rtol=1e-4)
    assert float(fit.end_time) == pytest.approx(float(t[end]))
    first = np.flatnonzero(main)[0]
    assert float(fit.start_time) == pytest.approx(float(t[first]))


def test_exact_exponential_gives_its_rate_in_every_window():
    t = jnp.linspace(0.0, 10.0, 101)
    energies = jnp.asarray([[0.5], [1.0], [2.0]]) * jnp.exp(-0.7 * t)[None]
    fit = energy_decay_fit(energies, t)
    assert bool(fit.reached)
    # log(0.01) / 0.7 = 6.58: the main window starts at the first saved time past it
    assert float(fit.start_time) == pytest.approx(6.6, abs=1e-5)
    for name in ("mean_slope", "mean_slope_check", "log_slope", "log_slope_check", "whole_run"):
        assert float(getattr(fit, name)) == pytest.approx(-0.7, abs=2e-5), name
    # the whole-run figure is the existing energy_rate when no run hits the floor
    rate, _ = energy_rate(energies, 10.0)
    assert float(fit.whole_run) == pytest.approx(float(rate), rel=1e-5)


def test_bootstrap_se_matches_analytic_se_on_iid_lines():
    # log E_r(t) = a_r + b_r (t - 2)^+ with i.i.d. a_r, b_r and a common drop at t = 2 of
    # 10^-3, so the window is the same in every resample; the mean-log slope is then the mean
    # of the per-run least-squares slopes, whose standard error is std(b_r) / sqrt(R)
    runs, t = 40, jnp.linspace(0.0, 8.0, 81)
    ka, kb, kn, kboot = jax.random.split(jax.random.key(2), 4)
    a = 0.2 * jax.random.normal(ka, (runs, 1))
    b = -0.5 + 0.1 * jax.random.normal(kb, (runs, 1))
    log_e = a + b * jnp.maximum(t - 2.0, 0.0)[None] - 7.0 * (t >= 2.0)[None]
    log_e = log_e + 0.02 * jax.random.normal(kn, log_e.shape)
    energies = jnp.exp(log_e)
    fit = energy_decay_fit(energies, t)
    se = energy_decay_bootstrap(kboot, energies, t, num_resamples=4000)
    assert float(se.reached) == 1.0 and float(fit.start_time) == pytest.approx(2.0)
    main = np.asarray(t) >= 2.0 - 1e-6
    per_run = np.array([_slope(row, t, main) for row in np.asarray(log_e, np.float64)])
    assert float(fit.log_slope) == pytest.approx(per_run.mean(), abs=1e-4)
    analytic = per_run.std(ddof=1) / np.sqrt(runs)
    # the bootstrap's plug-in variance is (R - 1) / R of the unbiased one; its own Monte Carlo
    # error with 4000 resamples is about 1 %
    ratio = float(se.log_slope) / (analytic * np.sqrt((runs - 1) / runs))
    assert 0.95 < ratio < 1.05, ratio


def _gbm(key, datasets, runs, t, lam, s, delay):
    """Geometric Brownian motions ``[datasets, runs, S]`` with ``E E(t) = e^{lam t}``, times a
    drop by ``e^-7`` at ``delay`` (so the main window starts there)."""
    dt = t[1] - t[0]
    steps = jax.random.normal(key, (datasets, runs, t.size - 1)) * jnp.sqrt(dt)
    w = jnp.concatenate([jnp.zeros((datasets, runs, 1)), jnp.cumsum(steps, -1)], -1)
    log_e = ((lam - 0.5 * s * s) * t - 7.0 * (t >= delay))[None, None] + s * w
    return jnp.exp(log_e)


def test_gbm_rates_and_bootstrap_calibration():
    # 200 independent data sets of 32 runs: the estimators centre on lam (mean) and
    # lam - s^2/2 (mean log), and the bootstrap s.e. matches their spread across data sets
    lam, s, datasets, runs = -0.75, 0.3, 200, 32
    t = jnp.linspace(0.0, 12.0, 121)
    energies = _gbm(jax.random.key(3), datasets, runs, t, lam, s, delay=4.0)
    fits = jax.jit(jax.vmap(lambda e: energy_decay_fit(e, t)))(energies)
    keys = jax.random.split(jax.random.key(4), datasets)
    ses = jax.jit(jax.vmap(lambda k, e: energy_decay_bootstrap(k, e, t, 300)))(keys, energies)
    assert bool(jnp.all(fits.reached))
    for name, truth in (("mean_slope", lam), ("log_slope", lam - 0.5 * s * s)):
        values = np.asarray(getattr(fits, name), np.float64)
        spread = values.std(ddof=1)
        # unbiased within 3 s.e. of the mean over data sets
        assert abs(values.mean() - truth) <= 3 * spread / np.sqrt(datasets), (name, values.mean())
        # the typical bootstrap s.e. is the spread of the estimator (within 15 %; the s.e. of a
        # standard deviation from 200 data sets is 5 %)
        ratio = float(np.sqrt(np.mean(np.asarray(getattr(ses, name), np.float64) ** 2))) / spread
        assert 0.85 < ratio < 1.15, (name, ratio)


def test_kernel_contract():
    energies, t = _noisy_decay(jax.random.key(5), runs=5, steps=41, horizon=12.0)
    check_kernel_contract(lambda k, e: energy_decay_bootstrap(k, e, t, 8), energies)
    out = check_kernel_contract(lambda k, e: energy_decay_fit(e, t), energies,
                                deterministic=True)
    assert bool(out.reached)
