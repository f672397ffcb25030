"""The measured miss rate and the ancestry diagnostics against NumPy loops."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpapers.diffusion_resampling import detector_log_potential, make_schedule, predicted_x0
from jaxpapers.diffusion_resampling._potentials import detector_term
from jaxpapers.diffusion_resampling.metrics import (
    detection_probabilities,
    initial_ancestors,
    miss_rate_table,
    num_lineages,
    tabulated_miss_rate,
)


def _numpy_miss_rate(probs, conds, num_conditions, threshold):
    """Explicit loops: for each level, condition and object, the fraction of that condition's
    samples whose probability is below the threshold (0 for a condition without samples)."""
    num_levels, n, c = probs.shape
    out = np.zeros((num_levels, num_conditions, c))
    for level in range(num_levels):
        for m in range(num_conditions):
            rows = [i for i in range(n) if conds[i] == m]
            for j in range(c):
                if rows:
                    out[level, m, j] = sum(probs[level, i, j] < threshold for i in rows) / len(rows)
    return out


def test_miss_rate_table_matches_numpy_loops():
    rng = np.random.default_rng(3)
    probs = rng.uniform(size=(3, 40, 2)).astype(np.float32)
    conds = rng.integers(0, 4, size=40)
    conds[conds == 3] = 2            # condition 3 has no samples
    for threshold in (0.5, 0.2):
        got = np.asarray(miss_rate_table(probs, conds, 4, threshold))
        np.testing.assert_allclose(got, _numpy_miss_rate(probs, conds, 4, threshold), atol=1e-6)
    # a fixed hand-checked case: level 0 class 0 has probabilities 0.3 (miss), 0.9; class 1: 0.4
    small = np.array([[[0.3], [0.9], [0.4]]], np.float32)
    np.testing.assert_allclose(np.asarray(miss_rate_table(small, [0, 0, 1], 2)),
                               [[[0.5], [1.0]]])
    # [L, G, K, C] with group conditions equals the flattened [L, N, C] form
    grouped = probs.reshape(3, 10, 4, 2)
    gconds = np.arange(10) % 3
    np.testing.assert_allclose(
        np.asarray(miss_rate_table(grouped, gconds, 3)),
        _numpy_miss_rate(probs, np.repeat(gconds, 4), 3, 0.5), atol=1e-6)
    # no conditions: one row
    np.testing.assert_allclose(np.asarray(miss_rate_table(probs, None, 1)),
                               np.mean(probs < 0.5, axis=1)[:, None, :], atol=1e-6)


def test_tabulated_miss_rate_lookup_and_potential():
    table = np.array([[[0.1], [0.2]], [[0.3], [0.4]], [[0.5], [0.6]]], np.float32)
    fn = tabulated_miss_rate(table, (0, 10, 20), num_steps=30)
    cond = jnp.array([1, 0, 1])
    np.testing.assert_allclose(np.asarray(fn(jnp.int32(10), cond))[:, 0, 0], [0.4, 0.3, 0.4])
    np.testing.assert_allclose(np.asarray(fn(jnp.int32(0), cond))[:, 0, 0], [0.2, 0.1, 0.2])
    # a level between rows takes the tabulated level below it
    np.testing.assert_allclose(np.asarray(fn(jnp.int32(15), cond))[:, 0, 0], [0.4, 0.3, 0.4])
    np.testing.assert_allclose(np.asarray(fn(jnp.int32(20), None))[0, 0], [0.5])
    # the detector potential with the table: log D - log(D + (1 - D) rho(delta_cond))
    det = lambda z, c: jax.nn.sigmoid(z[:, :1])
    x0_fn = lambda x, t, c=None: x
    pot = detector_log_potential(x0_fn, det, miss_rate=fn)
    x = jnp.array([[[2.0], [-1.0]], [[0.0], [3.0]], [[-2.0], [0.5]]])
    got = np.asarray(pot(x, jnp.int32(10), cond))
    d = 1 / (1 + np.exp(-np.asarray(x)[..., 0]))
    delta = np.array([0.4, 0.3, 0.4])[:, None]
    rho = delta * 0.8 / (0.2 + delta * 0.8)
    np.testing.assert_allclose(got, np.log(d) - np.log(d + (1 - d) * rho), rtol=1e-5)
    # the on-the-fly rate is 0 in a group where every particle passes: the term is flat
    onfly = detector_log_potential(x0_fn, det)
    flat = np.asarray(onfly(jnp.array([[[2.0], [3.0]]]), jnp.int32(10), None))
    np.testing.assert_allclose(flat, 0.0, atol=1e-7)
    assert np.all(np.asarray(detector_term(jnp.array([[0.2]]), 0.0)) == 0.0)


def test_detection_probabilities_reads_the_right_levels():
    num_steps = 6
    sched = make_schedule(num_steps, "linear", 0.02, 0.5)
    # trajectory entry s holds the value of its level T - 1 - s in every coordinate
    traj = jnp.broadcast_to(jnp.arange(num_steps - 1, -1, -1, dtype=jnp.float32)[:, None, None,
                                                                               None],
                            (num_steps, 2, 3, 1))
    x0_fn = predicted_x0(lambda z, t, y=None: jnp.zeros_like(z), sched)
    det = lambda z, c: z[:, :1] * 0.0 + z[:, :1]
    got = np.asarray(detection_probabilities(lambda x, t, c=None: x, det, traj, (4, 1, 0)))
    assert got.shape == (3, 2, 3, 1)
    np.testing.assert_array_equal(got[:, 0, 0, 0], [4.0, 1.0, 0.0])
    # with the predicted x0 of a zero-epsilon model: x / sqrt(abar_t)
    got = np.asarray(detection_probabilities(x0_fn, det, traj, (2,)))
    np.testing.assert_allclose(got[0, 0, 0, 0], 2.0 / np.sqrt(float(sched.alpha_bars[2])),
                               rtol=1e-5)
    with pytest.raises(ValueError):
        detection_probabilities(x0_fn, det, traj, (num_steps,))


def _numpy_roots(ancestors):
    s_num, g_num, k_num = ancestors.shape
    roots = np.zeros((g_num, k_num), int)
    for g in range(g_num):
        for k in range(k_num):
            idx = k
            for s in range(s_num - 1, -1, -1):
                idx = ancestors[s, g, idx]
            roots[g, k] = idx
    return roots


def test_initial_ancestors_and_lineages_match_numpy():
    rng = np.random.default_rng(0)
    s_num, g_num, k_num = 7, 5, 4
    ancestors = np.broadcast_to(np.arange(k_num), (s_num, g_num, k_num)).copy()
    for s in (1, 3, 4, 6):   # resampling events; identity elsewhere
        ancestors[s] = rng.integers(0, k_num, size=(g_num, k_num))
    roots = _numpy_roots(ancestors)
    np.testing.assert_array_equal(np.asarray(initial_ancestors(ancestors)), roots)
    np.testing.assert_array_equal(np.asarray(num_lineages(ancestors)),
                                  [len(set(r)) for r in roots])
    identity = np.broadcast_to(np.arange(k_num), (3, 2, k_num))
    np.testing.assert_array_equal(np.asarray(num_lineages(identity)), [k_num, k_num])
    collapsed = identity.copy()
    collapsed[1] = 2
    np.testing.assert_array_equal(np.asarray(num_lineages(collapsed)), [1, 1])


def test_zero_weight_skips_the_potential():
    from jaxpapers.diffusion_resampling import sum_log_potentials

    def nan_potential(x, t, cond=None):
        return jnp.full(x.shape[:2], jnp.nan)

    ones = lambda x, t, cond=None: jnp.ones(x.shape[:2])
    x = jnp.zeros((2, 3, 1))
    fn = jax.jit(lambda w: sum_log_potentials(ones, nan_potential, weights=w)(x, jnp.int32(1)))
    np.testing.assert_array_equal(np.asarray(fn(jnp.array([2.0, 0.0]))), 2.0)
    assert np.all(np.isnan(np.asarray(fn(jnp.array([2.0, 1.0])))))
    # without weights every potential counts
    assert np.all(np.isnan(np.asarray(sum_log_potentials(ones, nan_potential)(x, 1))))


def test_on_the_fly_flag_selects_the_fallback_at_run_time():
    table = np.array([[[0.3]], [[0.6]]], np.float32)
    fn = tabulated_miss_rate(table, (5, 0), num_steps=10)
    det = lambda z, c: jax.nn.sigmoid(z[:, :1])
    x0_fn = lambda x, t, c=None: x
    x = jnp.array([[[2.0], [-1.0], [0.5]]])

    def run(flag):
        return detector_log_potential(x0_fn, det, miss_rate=fn, on_the_fly=flag)(
            x, jnp.int32(0), None)

    run_jit = jax.jit(run)
    np.testing.assert_allclose(
        np.asarray(run_jit(jnp.bool_(False))),
        np.asarray(detector_log_potential(x0_fn, det, miss_rate=fn)(x, jnp.int32(0), None)),
        rtol=1e-6)
    np.testing.assert_allclose(
        np.asarray(run_jit(jnp.bool_(True))),
        np.asarray(detector_log_potential(x0_fn, det)(x, jnp.int32(0), None)), rtol=1e-6)
