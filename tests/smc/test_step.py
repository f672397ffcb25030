"""The SMC step (init / reweight / make_step) and the generic particle filter."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.special import logsumexp

from jaxpapers import InvalidInputError, smc
from tests.contracts import check_kernel_contract

SCHEMES = sorted(smc.RESAMPLERS)
THRESHOLDS = [None, 0.5]


def _combinations(fast):
    """(scheme, ess_threshold) pairs; those not in ``fast`` are marked slow (compile time)."""
    return [(s, t) if (s, t) in fast else pytest.param(s, t, marks=pytest.mark.slow)
            for s in SCHEMES for t in THRESHOLDS]


def _peaked_state(num_particles=16):
    """Particles on a grid and a potential peaked at 0 (ESS well below N / 2)."""
    state = smc.init(jnp.linspace(-2.0, 2.0, num_particles))
    return state, -4.0 * state.particles**2


def test_init_shapes_dtypes_and_errors():
    particles = {"x": jnp.zeros(5), "v": jnp.ones((5, 2))}
    state = smc.init(particles)
    np.testing.assert_allclose(state.log_weights, np.full(5, -np.log(5)), rtol=1e-6)
    assert state.log_weights.dtype == jnp.float32 and state.log_likelihood.dtype == jnp.float32
    assert state.log_likelihood.shape == () and float(state.log_likelihood) == 0.0
    assert state.num_resamples.shape == () and state.num_resamples.dtype == jnp.int32
    given = smc.init(jnp.zeros(3), jnp.array([0.0, -1.0, -2.0]))
    np.testing.assert_array_equal(given.log_weights, [0.0, -1.0, -2.0])
    with pytest.raises(ValueError, match="leading axis"):
        smc.init({"x": jnp.zeros(5), "v": jnp.zeros(4)})
    with pytest.raises(ValueError, match="leading axis"):
        smc.init(jnp.float32(1.0))
    with pytest.raises(ValueError, match="shape"):
        smc.init(jnp.zeros(3), jnp.zeros(4))


@pytest.mark.parametrize("scheme, ess_threshold", _combinations(
    {(s, None) for s in SCHEMES} | {("systematic", 0.5)}))
def test_step_kernel_contract(scheme, ess_threshold):
    step = smc.make_step(scheme, ess_threshold)
    state, log_potential = _peaked_state()
    new_state, info = check_kernel_contract(step, state, log_potential, state_arg=0,
                                            output_state=lambda out: out[0])
    assert bool(info.resampled) and bool(info.valid)
    assert int(new_state.num_resamples) == 1
    assert info.ancestors.shape == (16,) and info.ancestors.dtype == jnp.int32
    assert info.resampled.dtype == jnp.bool_ and info.valid.dtype == jnp.bool_
    assert info.num_nan.dtype == jnp.int32 and info.ess.shape == ()
    # the step is a valid scan body: the carry keeps its structure and dtypes
    keys = jax.random.split(jax.random.key(1), 5)
    potentials = jnp.stack([log_potential * (t + 1) / 5 for t in range(5)])
    final, infos = jax.jit(lambda s: jax.lax.scan(lambda c, xs: step(xs[0], c, xs[1]), s,
                                                  (keys, potentials)))(state)
    assert infos.ancestors.shape == (5, 16) and final.num_resamples.dtype == jnp.int32


def test_pytree_particles_are_gathered_with_the_same_ancestors(key):
    n = 12
    labels = jnp.arange(n, dtype=jnp.float32)
    particles = {"x": labels, "pair": jnp.stack([labels, -labels], axis=1),
                 "id": jnp.arange(n, dtype=jnp.int32)}
    state = smc.init(particles)
    log_potential = jax.random.normal(key, (n,)) * 3.0
    new, info = jax.jit(smc.make_step("multinomial"))(jax.random.key(2), state, log_potential)
    anc = np.asarray(info.ancestors)
    assert len(np.unique(anc)) < n  # something was duplicated
    np.testing.assert_array_equal(new.particles["x"], np.asarray(labels)[anc])
    np.testing.assert_array_equal(new.particles["pair"], np.asarray(particles["pair"])[anc])
    np.testing.assert_array_equal(new.particles["id"], anc)
    assert new.particles["id"].dtype == jnp.int32


@pytest.mark.parametrize("normalize", [True, False])
def test_reweight_matches_float64(key, normalize):
    key_w, key_g = jax.random.split(key)
    log_w = jax.random.normal(key_w, (20,)) * 2.0 + 3.0
    g = jax.random.normal(key_g, (20,)) * 4.0
    state = smc.init(jnp.zeros(20), log_w)._replace(log_likelihood=jnp.float32(-1.5))
    new, info = smc.reweight(state, g, normalize)
    lw, g64 = np.asarray(log_w, np.float64), np.asarray(g, np.float64)
    updated = lw + g64
    increment = logsumexp(updated) - logsumexp(lw)
    expected = updated - logsumexp(updated) if normalize else updated
    # float32 algebra against float64 NumPy
    np.testing.assert_allclose(new.log_weights, expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(info.log_likelihood_increment, increment, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(new.log_likelihood, -1.5 + increment, rtol=1e-5, atol=1e-5)
    w = np.exp(updated - updated.max())
    np.testing.assert_allclose(info.ess, w.sum() ** 2 / (w**2).sum(), rtol=1e-4)
    assert not bool(info.resampled) and bool(info.valid) and int(info.num_nan) == 0
    np.testing.assert_array_equal(info.ancestors, np.arange(20))


def test_always_resample_and_never_resample(key):
    state, log_potential = _peaked_state(8)
    new, info = smc.make_step("systematic", None)(key, state, jnp.zeros(8))
    assert bool(info.resampled)  # None resamples even uniform weights
    np.testing.assert_array_equal(info.ancestors, np.arange(8))  # uniform systematic, N = 2^k
    np.testing.assert_allclose(new.log_weights, np.full(8, -np.log(8)), rtol=1e-6)
    new, info = smc.make_step("systematic", 0.0)(key, state, log_potential)
    assert not bool(info.resampled) and int(new.num_resamples) == 0
    np.testing.assert_array_equal(info.ancestors, np.arange(8))
    np.testing.assert_array_equal(new.particles, state.particles)
    lw = np.asarray(-np.log(8) + log_potential, np.float64)
    np.testing.assert_allclose(new.log_weights, lw - logsumexp(lw), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("scheme, ess_threshold", _combinations(
    {("multinomial", None), ("systematic", 0.5)}))
def test_nan_potentials_count_as_zero_weight_and_are_flagged(scheme, ess_threshold):
    step = jax.jit(smc.make_step(scheme, ess_threshold))
    state, log_potential = _peaked_state(16)
    nan_at = np.array([0, 7, 8])  # 7 and 8 are the two heaviest particles
    bad = log_potential.at[nan_at].set(jnp.nan)
    keys = jax.random.split(jax.random.key(3), 200)
    new, info = jax.vmap(step, in_axes=(0, None, None))(keys, state, bad)
    np.testing.assert_array_equal(info.num_nan, 3)
    assert np.all(np.asarray(info.valid)) and np.all(np.asarray(info.resampled))
    assert not np.isin(np.asarray(info.ancestors), nan_at).any(), "a NaN particle was chosen"
    assert np.all(np.isfinite(np.asarray(new.log_likelihood)))
    # every weight vanishes: flagged, identity ancestry, never a collapse onto particle 0
    for vanished in (jnp.full(16, jnp.nan), jnp.full(16, -jnp.inf),
                     log_potential.at[3].set(jnp.inf)):
        new, info = step(keys[0], state, vanished)
        assert not bool(info.valid) and not bool(info.resampled)
        np.testing.assert_array_equal(info.ancestors, np.arange(16))
        np.testing.assert_array_equal(new.particles, state.particles)
        assert np.isnan(float(info.ess)) and int(new.num_resamples) == 0
        assert not np.isfinite(float(new.log_likelihood))
    assert int(step(keys[0], state, jnp.full(16, jnp.nan))[1].num_nan) == 16
    # eagerly the resampling kernels raise instead (the package's bad-input policy)
    with pytest.raises(InvalidInputError):
        smc.make_step(scheme, ess_threshold)(keys[0], state, jnp.full(16, jnp.nan))


def test_nan_in_a_filter_is_reported_per_step():
    num_steps, n = 6, 32

    def potential(x, t):
        lp = -0.5 * (x - 0.3) ** 2
        lp = jnp.where((t == 2) & (jnp.arange(n) < 5), jnp.nan, lp)  # a few NaN at t = 2
        return jnp.where(t == 4, jnp.nan, lp)                          # all NaN at t = 4

    move = lambda k, x, t: 0.8 * x + 0.5 * jax.random.normal(k, x.shape)
    x0 = jax.random.normal(jax.random.key(0), (n,))
    state, infos = jax.jit(lambda k: smc.particle_filter(
        k, move, potential, x0, jnp.arange(num_steps)))(jax.random.key(1))
    np.testing.assert_array_equal(infos.num_nan, [0, 0, 5, 0, n, 0])
    np.testing.assert_array_equal(infos.valid, [True, True, True, True, False, False])
    np.testing.assert_array_equal(infos.ancestors[4], np.arange(n))
    assert not np.isfinite(float(state.log_likelihood))


def _label_filter(potentials, ess_threshold, scheme="systematic", key=jax.random.key(4)):
    """Particles are labels 0..N-1 that never move; log phi_t(label) = potentials[t, label]."""
    num_particles = potentials.shape[1]
    return jax.jit(lambda k, p: smc.particle_filter(
        k, lambda _, labels, p_t: labels, lambda labels, p_t: p_t[labels],
        jnp.arange(num_particles, dtype=jnp.int32), p, scheme=scheme,
        ess_threshold=ess_threshold))(key, potentials)


def test_running_log_likelihood_with_carried_weights_matches_a_float64_replay():
    num_steps, n = 12, 64
    potentials = jax.random.normal(jax.random.key(5), (num_steps, n)) * 0.7
    state, infos = _label_filter(potentials, 0.5)
    resampled = np.asarray(infos.resampled)
    assert resampled.any() and not resampled.all(), resampled
    # replay in float64 with the filter's own ancestors: weights carried between resamplings
    p = np.asarray(potentials, np.float64)
    labels, log_w, total = np.arange(n), np.full(n, -np.log(n)), 0.0
    for t in range(num_steps):
        updated = log_w + p[t, labels]
        increment = logsumexp(updated) - logsumexp(log_w)
        np.testing.assert_allclose(infos.log_likelihood_increment[t], increment, rtol=1e-5,
                                   atol=1e-5)
        total += increment
        log_w = updated - logsumexp(updated)
        w = np.exp(log_w)
        ess = 1.0 / np.sum(w**2)
        np.testing.assert_allclose(infos.ess[t], ess, rtol=1e-4)
        if abs(ess - 0.5 * n) > 1e-3 * n:  # away from the boundary the rule is unambiguous
            assert resampled[t] == (ess < 0.5 * n), t
        if resampled[t]:
            labels = labels[np.asarray(infos.ancestors[t])]
            log_w = np.full(n, -np.log(n))
        else:
            np.testing.assert_array_equal(infos.ancestors[t], np.arange(n))
    np.testing.assert_allclose(state.log_likelihood, total, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(state.particles, labels)
    np.testing.assert_allclose(state.log_weights, log_w, rtol=1e-5, atol=1e-5)
    assert int(state.num_resamples) == resampled.sum()


def test_never_resampling_is_importance_sampling():
    potentials = jax.random.normal(jax.random.key(6), (8, 16))
    state, infos = _label_filter(potentials, 0.0)
    assert not np.asarray(infos.resampled).any()
    p = np.asarray(potentials, np.float64).sum(0)
    np.testing.assert_allclose(state.log_likelihood, logsumexp(p) - np.log(16), rtol=1e-5,
                               atol=1e-5)


def _random_walk(key, x, y):
    return 0.9 * x + jax.random.normal(key, x.shape)


def _gaussian_observation(x, y):
    return -0.5 * (y - x) ** 2 - 0.5 * jnp.log(2 * jnp.pi)


@pytest.mark.parametrize("ess_threshold", [None, pytest.param(0.5, marks=pytest.mark.slow)])
def test_filter_vmapped_over_groups_equals_a_loop_over_groups(ess_threshold):
    groups, n, num_steps = 3, 16, 7
    keys = jax.random.split(jax.random.key(7), groups)
    x0 = jax.random.normal(jax.random.key(8), (groups, n))
    ys = jax.random.normal(jax.random.key(9), (groups, num_steps)) * 2.0

    def run(k, x, y):
        return smc.particle_filter(k, _random_walk, _gaussian_observation, x, y,
                                   scheme="stratified", ess_threshold=ess_threshold)

    batched = jax.jit(jax.vmap(run))(keys, x0, ys)
    single = jax.jit(run)
    for g in range(groups):
        looped = single(keys[g], x0[g], ys[g])
        for a, b in zip(jax.tree_util.tree_leaves(batched), jax.tree_util.tree_leaves(looped)):
            a = np.asarray(a)[g]
            if np.issubdtype(a.dtype, np.floating):  # float32 algebra
                np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
            else:
                np.testing.assert_array_equal(a, b)
    assert batched[1].ancestors.shape == (groups, num_steps, n)


def test_filter_equals_its_documented_step_loop():
    """t = 0 weighs the initial particles unmoved; keys split(key, T), each into (move, step)."""
    n, num_steps = 8, 5
    x0 = jax.random.normal(jax.random.key(10), (n,))
    ys = jnp.linspace(-1.0, 1.0, num_steps)
    key = jax.random.key(11)
    state, infos = smc.particle_filter(key, _random_walk, _gaussian_observation, x0, ys,
                                       scheme="residual", ess_threshold=0.7)
    step, walk = jax.jit(smc.make_step("residual", 0.7)), jax.jit(_random_walk)
    manual = smc.init(x0)
    for t, key_t in enumerate(jax.random.split(key, num_steps)):
        key_move, key_step = jax.random.split(key_t)
        if t > 0:
            manual = manual._replace(particles=walk(key_move, manual.particles, ys[t]))
        manual, info = step(key_step, manual, _gaussian_observation(manual.particles, ys[t]))
        np.testing.assert_array_equal(infos.ancestors[t], info.ancestors)
    np.testing.assert_allclose(state.particles, manual.particles, rtol=1e-6)
    np.testing.assert_allclose(state.log_likelihood, manual.log_likelihood, rtol=1e-5)
    check_kernel_contract(lambda k, x: smc.particle_filter(
        k, _random_walk, _gaussian_observation, x, ys), x0)


def test_static_errors(key):
    with pytest.raises(ValueError, match="scheme"):
        smc.make_step("bogus")
    with pytest.raises(ValueError, match="ess_threshold"):
        smc.make_step("systematic", 1.5)
    state = smc.init(jnp.zeros(4))
    with pytest.raises(ValueError, match="log_potential"):
        smc.make_step()(key, state, jnp.zeros(5))
    with pytest.raises(ValueError, match="log_potential"):
        smc.reweight(state, jnp.zeros((4, 1)))
    with pytest.raises(ValueError, match="inputs"):
        smc.particle_filter(key, _random_walk, _gaussian_observation, jnp.zeros(4),
                            {"a": jnp.zeros(3), "b": jnp.zeros(2)})
    # a traced threshold is accepted (not range-checked)
    out = jax.jit(lambda tau: smc.make_step("systematic", tau)(key, *_peaked_state()))(0.5)
    assert bool(out[1].resampled)
