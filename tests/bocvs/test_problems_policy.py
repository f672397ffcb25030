"""Problems, truncated normals, selection rule, ETC policies, metrics (hand-made oracles)."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpapers.bocvs import History, etc, etc_ada, select_control_set, ucb_psq
from jaxpapers.bocvs._policy import choose, select_per_cost
from jaxpapers.bocvs._problems import (
    ackley,
    block_control_sets,
    hartmann3,
    hartmann6,
    sample_inputs,
    truncnorm_scale,
    truncnorm_variance,
)
from jaxpapers.bocvs.metrics import cumulative_regret, simple_regret_curve
from jaxpapers.bocvs.problems import COST_REGIMES, Problem, gp_sample_objective, make_problem


@pytest.fixture(autouse=True)
def x64():
    with jax.enable_x64(True):
        yield


def test_hartmann_and_ackley_optima():
    assert float(hartmann3(np.array([0.114614, 0.555649, 0.852547]))) == pytest.approx(
        3.86278, abs=1e-5)
    assert float(hartmann6(np.array([0.20169, 0.150011, 0.476874, 0.275332, 0.311652,
                                     0.6573]))) == pytest.approx(3.32237, abs=1e-5)
    assert abs(float(ackley(np.full(5, 0.3)))) < 1e-12
    rng = np.random.default_rng(0)
    assert np.all(np.asarray(jax.vmap(hartmann3)(rng.uniform(size=(2000, 3)))) < 3.86278)


def test_truncnorm_variance_closed_form_against_scipy():
    stats = pytest.importorskip("scipy.stats")
    for s in (0.05, 0.3, 2.0):
        want = stats.truncnorm(-0.5 / s, 0.5 / s, loc=0.5, scale=s).var()
        assert truncnorm_variance(s) == pytest.approx(want, rel=1e-9)


@pytest.mark.parametrize("variance", [0.02, 0.04, 0.08])
def test_truncnorm_draws_have_requested_variance(key, variance):
    scale = truncnorm_scale(variance)
    assert truncnorm_variance(scale) == pytest.approx(variance, rel=1e-9)
    x = np.asarray(sample_inputs(key, jnp.array([scale]), 1_000_000))[:, 0]
    assert x.min() >= 0.0 and x.max() <= 1.0
    # spec: within 1% (the sampling s.e. of the variance at 1e6 draws is ~0.1-0.15%)
    assert np.var(x) == pytest.approx(variance, rel=0.01)
    assert np.mean(x) == pytest.approx(0.5, abs=5 * np.sqrt(variance / x.size))


def test_spec_scales():
    np.testing.assert_allclose([truncnorm_scale(v) for v in (0.02, 0.04, 0.08)],
                               [0.1418, 0.2135, 0.9061], atol=1e-4)
    with pytest.raises(ValueError, match="variance"):
        truncnorm_scale(0.09)


def test_control_sets_and_problem_validation():
    assert block_control_sets(3) == ((0,), (1,), (2,), (0, 1), (0, 2), (1, 2), (0, 1, 2))
    p = make_problem("hartmann3", "moderate", 0.02)
    assert p.masks.shape == (7, 3) and p.has_full_set and p.costs == COST_REGIMES["moderate"]
    base = dict(name="t", objective=hartmann3, dim=3, control_sets=((0,), (0, 1, 2)),
                costs=(0.5, 1.0))
    Problem(**base)
    with pytest.raises(ValueError, match="empty"):
        Problem(**base | dict(control_sets=((), (0, 1, 2))))
    with pytest.raises(ValueError, match="outside"):
        Problem(**base | dict(control_sets=((3,), (0, 1, 2))))
    with pytest.raises(ValueError, match="repeats"):
        Problem(**base | dict(control_sets=((1, 1), (0, 1, 2))))
    with pytest.raises(ValueError, match="positive"):
        Problem(**base | dict(costs=(0.0, 1.0)))
    with pytest.raises(ValueError, match="positive"):
        Problem(**base | dict(costs=(-1.0, 1.0)))
    with pytest.raises(ValueError, match="one entry per control set"):
        Problem(**base | dict(costs=(1.0,)))
    with pytest.raises(ValueError, match="budget"):
        Problem(**base | dict(budget=0.4))
    with pytest.raises(ValueError, match="variance"):
        Problem(**base | dict(variance=0.5))
    with pytest.raises(ValueError, match="problem"):
        make_problem("branin")
    with pytest.raises(ValueError, match="costs"):
        make_problem("hartmann3", "free")


def test_selection_rule_hand_made():
    v = jnp.array([1.0, 3.0, 2.0, 3.0])
    c = jnp.array([0.1, 0.5, 0.2, 1.0])
    assert int(select_control_set(v, c, 0.0)) == 1        # argmax v, tie broken by cost
    assert int(select_control_set(v, c, jnp.inf)) == 0    # cheapest
    assert int(select_control_set(v, c, 1.0)) == 2        # cheapest within 1.0 of the best
    assert int(select_control_set(v, c, 2.0)) == 0
    equal = jnp.array([0.3, 0.3, 0.3, 0.3])
    assert int(select_control_set(v, equal, 5.0)) == 1    # equal costs -> larger v
    allowed = jnp.array([True, False, True, False])
    assert int(select_control_set(v, c, 0.0, allowed)) == 2
    assert int(select_per_cost(v, c)) == 0                # 1/0.1 = 10 is the largest ratio
    with_nan = jnp.array([jnp.nan, 1.0, 0.5, 0.2])
    assert int(select_control_set(with_nan, c, 0.0)) == 1


def test_etc_schedule_counts_and_stages():
    costs = COST_REGIMES["moderate"]
    pol = etc_ada(costs)
    np.testing.assert_array_equal(pol.targets, [40, 20])
    np.testing.assert_array_equal(etc_ada(COST_REGIMES["cheap"]).targets, [400, 40])
    np.testing.assert_array_equal(etc_ada(COST_REGIMES["expensive"]).targets, [6, 5])
    rng = np.random.default_rng(0)
    plays = jnp.zeros(2, jnp.int32)
    chosen = []
    step = jax.jit(choose)
    c = jnp.asarray(costs)
    for _ in range(70):
        v = jnp.asarray(rng.normal(size=7))
        i, plays, stage = step(pol, plays, v, c)
        chosen.append((int(i), int(stage)))
    stages = [s for _, s in chosen]
    assert stages == [0] * 40 + [1] * 20 + [2] * 10
    assert all(i in (0, 1, 2) for i, s in chosen[:40])
    assert all(i in (3, 4, 5) for i, s in chosen[40:60])
    with pytest.raises(ValueError, match="two exploration groups"):
        etc(7, (1, 1), groups=((0, 1), (1, 2)))
    with pytest.raises(ValueError, match="targets"):
        etc(7, (1,))
    psq = ucb_psq(7)
    i, _, stage = choose(psq, jnp.zeros(2, jnp.int32), jnp.arange(7.0), c)
    assert int(i) == 6 and int(stage) == 2


def _history(set_index, value, cost):
    t = len(set_index)
    z = np.zeros(t)
    return History(np.array(set_index), np.zeros(t, int), np.zeros((t, 1)), np.zeros((t, 1)), z,
                   np.array(cost), np.cumsum(cost), np.array(value), z, np.zeros((1, 1)),
                   np.zeros(1), t, float(np.sum(cost)), 1, 0)


def test_regret_metrics_hand_made():
    h = _history([0, 1, 2], [1.0, 0.5, 2.0], [0.5, 1.0, 0.5])
    curve = simple_regret_curve(h, 3.0, [0.0, 0.5, 1.4, 1.99, 2.0])  # spent: 0.5, 1.5, 2
    np.testing.assert_allclose(curve, [np.nan, 2.0, 2.0, 2.0, 1.0])
    weighted, plain = cumulative_regret(h, 3.0)
    assert float(weighted) == pytest.approx(0.5 * 2 + 1.0 * 2.5 + 0.5 * 1.0)
    assert float(plain) == pytest.approx(2 + 2.5 + 1)
    assert math.isnan(float(simple_regret_curve(_history([], [], []), 1.0, [1.0])[0]))


def test_sampler_contracts():
    from jaxpapers.bocvs._acquisition import rff_posterior_sample
    from jaxpapers.gp import gp_params
    from tests.contracts import check_kernel_contract

    scales = jnp.asarray(make_problem("hartmann3", variance=0.04).scales)
    check_kernel_contract(lambda k, s: sample_inputs(k, s, 16), scales)
    x = jnp.linspace(0.0, 1.0, 12).reshape(4, 3)
    y = jnp.arange(4.0)
    check_kernel_contract(lambda k, x, y: rff_posterior_sample(
        k, gp_params(0.2, 1.0, 1e-2, dim=3), x, y, jnp.arange(4) < 3, 8), x, y)


def test_decaying_slack_is_linear_and_moves_from_cheapest_to_optimism():
    from jaxpapers.bocvs import ucb_cvs
    from jaxpapers.bocvs._policy import slack

    costs = jnp.asarray([0.1, 0.2, 1.0])
    values = jnp.asarray([0.0, 0.5, 1.0])          # the full set is the most optimistic
    pol = ucb_cvs(3, eps=2.0, num_stages=1, eps_rounds=10)
    np.testing.assert_allclose([float(slack(pol, t)) for t in (0, 5, 10, 20)],
                               [2.0, 1.0, 0.0, 0.0])
    picks = [int(choose(pol, jnp.zeros(1, jnp.int32), values, costs, t)[0]) for t in range(12)]
    # eps_t >= 1 (t <= 5): cheapest set 0; 0.5 <= eps_t < 1: set 1; eps_t < 0.5: the argmax
    assert picks == [0] * 6 + [1] * 2 + [2] * 4, picks
    constant = ucb_cvs(3, eps=0.6, num_stages=1)
    assert {int(choose(constant, jnp.zeros(1, jnp.int32), values, costs, t)[0])
            for t in (0, 100)} == {1}
    with pytest.raises(ValueError, match="eps_rounds"):
        ucb_cvs(3, eps=1.0, eps_rounds=-1)
    with pytest.raises(ValueError, match="finite eps"):
        ucb_cvs(3, eps=float("inf"), eps_rounds=5)


def test_gp_sample_problem_is_drawn_from_its_key():
    with pytest.raises(ValueError, match="key"):
        make_problem("gp_sample")
    a = make_problem("gp_sample", key=jax.random.key(3))
    b = make_problem("gp_sample", key=jax.random.key(3))
    x = jnp.full(3, 0.4)
    assert float(a.objective(x)) == float(b.objective(x)) and a.f_star == b.f_star
    other = gp_sample_objective(jax.random.key(4), 3, 0.1)   # another key, another function
    assert float(a.objective(x)) != float(other(x))
    grid = jax.random.uniform(jax.random.key(0), (2048, 3))  # the estimate is a maximum
    assert float(jnp.max(jax.vmap(a.objective)(grid))) <= a.f_star + 1e-5
