"""The resampling sampler against exact oracles (1-D Gaussians with closed-form reverse kernels)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpapers import InvalidInputError
from jaxpapers.diffusion_resampling import make_schedule, plain_sample, select_best, smc_sample
from tests.contracts import check_kernel_contract

T = 10
SCHED = make_schedule(T, "linear", 0.02, 0.5)
M_Q, M_P, S = 0.0, 1.0, 0.5  # model q = N(M_Q, S^2), data p = N(M_P, S^2)


def _marginal(mean0, t):
    abar = SCHED.alpha_bars[t]
    return jnp.sqrt(abar) * mean0, abar * S**2 + 1 - abar


def exact_reverse(key, x, t, cond=None):
    """Exact q(x_{t-1} | x_t) for x_0 ~ N(M_Q, S^2) under the forward process."""
    mu, v = _marginal(M_Q, t - 1)
    alpha, beta = 1 - SCHED.betas[t], SCHED.betas[t]
    precision = 1 / v + alpha / beta
    mean = (mu / v + jnp.sqrt(alpha) * x / beta) / precision
    return mean + jax.random.normal(key, x.shape) / jnp.sqrt(precision)


def log_ratio(x, t, cond=None):
    """Closed-form log p_t(x) - log q_t(x); x [G, K, 1] -> [G, K]."""
    mp, v = _marginal(M_P, t)
    mq, _ = _marginal(M_Q, t)
    x = x[..., 0]
    return (-(x - mp) ** 2 + (x - mq) ** 2) / (2 * v)


def zero_potential(x, t, cond=None):
    return jnp.zeros(x.shape[:2])


def x_T(key, groups, k):
    mu, v = _marginal(M_Q, T)
    return mu + jnp.sqrt(v) * jax.random.normal(key, (groups, k, 1))


_run = jax.jit(smc_sample, static_argnums=(1, 2, 3, 4, 6),
               static_argnames=("scheme", "final", "ess_threshold", "return_trajectory"))


@pytest.mark.parametrize("scheme", ["multinomial",
                                    pytest.param("systematic", marks=pytest.mark.slow)])
def test_exact_target_mean_and_variance(key, scheme):
    groups, k = 2000, 64
    k_init, k_run = jax.random.split(key)
    out = _run(k_run, exact_reverse, log_ratio, tuple(range(1, T)), k, x_T(k_init, groups, k), T,
               scheme=scheme, final="sample")
    y = np.asarray(out.samples[:, 0], np.float64)
    assert np.all(np.asarray(out.valid))
    se_mean = y.std(ddof=1) / np.sqrt(groups)
    allowance = 2.0 / k  # self-normalised importance sampling bias is O(1/K)
    assert abs(y.mean() - M_P) < 4 * se_mean + allowance, (y.mean(), se_mean)
    se_var = S**2 * np.sqrt(2.0 / (groups - 1))
    assert abs(y.var(ddof=1) - S**2) < 4 * se_var + allowance
    # and the proposal alone is far from the target (the test can fail)
    plain = np.asarray(plain_sample(k_run, exact_reverse, x_T(k_init, groups, 1), T))[:, 0, 0]
    assert abs(plain.mean() - M_P) > 10 * se_mean


@pytest.mark.slow
def test_ess_mode_is_also_exact(key):
    groups, k = 2000, 64
    k_init, k_run = jax.random.split(key)
    out = _run(k_run, exact_reverse, log_ratio, tuple(range(1, T)), k, x_T(k_init, groups, k), T,
               scheme="systematic", final="sample", ess_threshold=0.5)
    y = np.asarray(out.samples[:, 0], np.float64)
    assert abs(y.mean() - M_P) < 4 * y.std(ddof=1) / np.sqrt(groups) + 2.0 / k
    did = np.asarray(out.resampled)
    assert 0 < did.mean() < 1, "the ESS rule should resample some events and skip others"


@pytest.mark.parametrize("final", [pytest.param("argmax", marks=pytest.mark.slow), "sample"])
def test_zero_potential_equals_plain_in_law(key, final):
    groups, k = 3000, 4
    k_init, k_run = jax.random.split(key)
    out = _run(k_run, exact_reverse, zero_potential, (3, 6), k, x_T(k_init, groups, k), T,
               final=final)
    y = np.asarray(out.samples[:, 0], np.float64)
    se = S / np.sqrt(groups)
    assert abs(y.mean() - M_Q) < 4 * se
    assert abs(y.var(ddof=1) - S**2) < 4 * S**2 * np.sqrt(2.0 / (groups - 1))


def test_single_particle_is_bitwise_plain(key):
    k_init, k_run = jax.random.split(key)
    x0 = x_T(k_init, 16, 1)
    out = _run(k_run, exact_reverse, log_ratio, (2, 5, 8), 1, x0, T)
    plain = plain_sample(k_run, exact_reverse, x0, T)
    np.testing.assert_array_equal(np.asarray(out.samples), np.asarray(plain[:, 0]))
    np.testing.assert_array_equal(np.asarray(out.particles), np.asarray(plain))


def identity_move(key, x, t, cond=None):
    return x


def linear_potential(x, t, cond=None):
    return 3.0 * x[..., 0]


def test_parent_potential_is_gathered(key):
    """Identity moves: with the parent's log phi gathered, later increments are exactly zero."""
    x0 = jax.random.normal(key, (5, 8, 1))
    out = _run(jax.random.key(1), identity_move, linear_potential, (7, 4), 8, x0, T,
               return_trajectory=True)
    ess = np.asarray(out.ess)
    step_of = {7: T - 7, 4: T - 4}  # step s lands on level T - s - 1
    assert np.all(ess[step_of[7] - 1] < 8)          # the first event sees unequal weights
    np.testing.assert_allclose(ess[step_of[4] - 1], 8.0, rtol=1e-5)  # then all increments 0
    np.testing.assert_allclose(np.asarray(out.log_weights), 0.0, atol=1e-6)
    # the particles after the first event are the ancestors' states
    s = step_of[7] - 1
    before = np.asarray(out.trajectory[s])
    anc = np.asarray(out.ancestors[s])
    after = np.asarray(out.trajectory[s + 1])
    np.testing.assert_array_equal(after, np.take_along_axis(before, anc[..., None], axis=1))


def test_groups_never_mix(key):
    groups, k = 6, 8
    offsets = 10.0 * jnp.arange(groups)[:, None, None]
    x0 = offsets + jax.random.uniform(key, (groups, k, 1))
    # the potential strongly favours the largest x overall: mixing would move group maxima
    out = _run(jax.random.key(2), identity_move, linear_potential, (2, 4, 6, 8), k, x0, T,
               final="all")
    parts = np.asarray(out.particles)
    for g in range(groups):
        assert np.all((parts[g] >= 10 * g) & (parts[g] < 10 * g + 1))
        assert np.all(np.isin(parts[g], np.asarray(x0[g])))
    anc = np.asarray(out.ancestors)
    assert anc.min() >= 0 and anc.max() < k


def test_select_best_and_argmax_final(key):
    x0 = jax.random.normal(key, (4, 5, 1))
    samples, chosen = select_best(x0, x0[..., 0])
    np.testing.assert_array_equal(np.asarray(chosen), np.argmax(np.asarray(x0[..., 0]), axis=1))
    out = _run(jax.random.key(3), identity_move, linear_potential, (), 5, x0, T)
    np.testing.assert_array_equal(np.asarray(out.samples), np.asarray(samples))


def nan_potential(x, t, cond=None):
    v = 3.0 * x[..., 0]
    bad = jnp.zeros(v.shape, bool).at[0, 0].set(True).at[1, :].set(True)
    return jnp.where(bad, jnp.nan, v)


def test_nan_potentials_are_flagged_not_collapsed(key):
    x0 = jax.random.normal(key, (3, 4, 1))
    out = _run(jax.random.key(4), identity_move, nan_potential, (5,), 4, x0, T, final="all",
               return_trajectory=True)
    num_nan = np.asarray(out.num_nan)
    assert num_nan[0] == 2 and num_nan[1] == 8 and num_nan[2] == 0
    valid = np.asarray(out.valid)
    assert valid[0] and not valid[1] and valid[2]
    anc = np.asarray(out.ancestors[T - 5 - 1])
    assert not np.any(anc[0] == 0), "a NaN particle must get zero weight"
    np.testing.assert_array_equal(anc[1], np.arange(4))  # invalid group: identity, flagged
    with pytest.raises(InvalidInputError):
        smc_sample(jax.random.key(4), identity_move, nan_potential, (5,), 4, x0, T,
                   raise_on_invalid=True)


def test_static_errors(key):
    x0 = jnp.zeros((2, 3, 1))
    with pytest.raises(ValueError, match="scheme"):
        smc_sample(key, identity_move, linear_potential, (1,), 3, x0, T, scheme="bogus")
    with pytest.raises(ValueError, match="final"):
        smc_sample(key, identity_move, linear_potential, (1,), 3, x0, T, final="best")
    with pytest.raises(ValueError, match="num_particles"):
        smc_sample(key, identity_move, linear_potential, (1,), 4, x0, T)
    with pytest.raises(ValueError, match="levels"):
        smc_sample(key, identity_move, linear_potential, (0, T), 3, x0, T)
    with pytest.raises(ValueError, match="ess_threshold"):
        smc_sample(key, identity_move, linear_potential, (1,), 3, x0, T, ess_threshold=2.0)


def test_kernel_contract(key):
    x0 = x_T(key, 3, 4)
    check_kernel_contract(
        lambda k, x: smc_sample(k, exact_reverse, log_ratio, (3, 6), 4, x, T).samples, x0)
    check_kernel_contract(lambda k, x: plain_sample(k, exact_reverse, x, T), x0)
