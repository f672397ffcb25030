"""Bad input to BOCVS: refused with a message naming the argument, flagged, never set 0."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpapers import bocvs, gp
from jaxpapers.bocvs._loop import INVALID_INPUT
from jaxpapers.bocvs._policy import choose

COSTS = jnp.asarray([0.1, 0.2, 1.0])


@pytest.mark.parametrize("values, eps, allowed, match", [
    (jnp.full(3, jnp.nan), 0.0, None, "no control set"),
    (jnp.asarray([0.1, 0.5, 0.4]), 0.0, jnp.zeros(3, bool), "no control set"),
    (jnp.asarray([0.1, 0.5, 0.4]), -5.0, None, "eps must be >= 0"),
])
def test_select_control_set_never_falls_back_to_set_zero(values, eps, allowed, match):
    with pytest.raises(ValueError, match=match):
        bocvs.select_control_set(values, COSTS, eps, allowed)
    allowed = jnp.ones(3, bool) if allowed is None else allowed
    index = jax.jit(bocvs.select_control_set)(values, COSTS, eps, allowed)
    assert int(index) == -1


def test_select_control_set_still_selects():
    assert int(bocvs.select_control_set(jnp.asarray([0.1, 0.5, 0.45]), COSTS, 0.1)) == 1
    assert int(bocvs.select_control_set(jnp.asarray([jnp.nan, 0.5, 0.4]), COSTS, 0.0)) == 1


def test_select_control_set_names_a_wrong_mask_shape():
    with pytest.raises(ValueError, match="allowed must be a bool array of shape"):
        bocvs.select_control_set(jnp.zeros(3), COSTS, 0.0, jnp.ones(4, bool))


def test_choose_reports_no_set_instead_of_set_zero():
    policy = bocvs.ucb_cvs(3)
    index, _, _ = choose(policy, jnp.zeros(2, jnp.int32), jnp.full(3, jnp.nan), COSTS)
    assert int(index) == -1


def _posterior():
    x = jnp.asarray(np.random.default_rng(0).uniform(size=(5, 3)), jnp.float32)
    return gp.condition(gp.gp_params(0.3, 1.0, 1e-3, dim=3, dtype=jnp.float32), x,
                        jnp.sin(x).sum(1))


def test_masks_of_the_wrong_shape_are_named():
    w = jnp.full((4, 3), 0.5)
    with pytest.raises(ValueError, match=r"mask_row must have shape \(3,\)"):
        bocvs.expected_ucb(_posterior(), jnp.ones(2), jnp.full(3, 0.5), w, 2.0)
    cfg = bocvs.OptimizerConfig(num_raw=4, num_restarts=2, num_steps=1)
    with pytest.raises(ValueError, match=r"masks must have shape \(m, d\)"):
        bocvs.maximize_expected_ucb(jax.random.key(0), _posterior(), jnp.ones(3), w, 2.0, cfg)
    with pytest.raises(ValueError, match="masks must hold only 0 and 1"):
        bocvs.maximize_expected_ucb(jax.random.key(0), _posterior(), jnp.full((2, 3), 0.5), w,
                                    2.0, cfg)


def _spec(budget=1.0):
    return bocvs.ProblemSpec(jnp.asarray([[1.0, 0, 0], [1, 1, 1]]), jnp.asarray([0.1, 1.0]),
                             jnp.full(3, 0.1), jnp.asarray(budget), jnp.asarray(0.01),
                             jnp.full(3, 0.3))


def _objective(x):
    return -jnp.sum((x - 0.5) ** 2)


def test_run_bo_refuses_a_missing_config():
    with pytest.raises(ValueError, match="config must be a BOConfig"):
        bocvs.run_bo(jax.random.key(0), _spec(), bocvs.ucb_cvs(2, num_stages=1), _objective,
                     None)


def test_run_bo_refuses_a_nan_budget_eagerly():
    config = bocvs.BOConfig(num_samples=4, num_eval_samples=4, num_init=2, buckets=(4,))
    with pytest.raises(ValueError, match="invalid problem spec"):
        bocvs.run_bo(jax.random.key(0), _spec(float("nan")), bocvs.ucb_cvs(2, num_stages=1),
                     _objective, config)


@pytest.mark.slow
def test_run_bo_traced_nan_budget_is_a_fault():
    config = bocvs.BOConfig(num_samples=4, num_eval_samples=4, num_init=2, buckets=(4,),
                            optimizer=bocvs.OptimizerConfig(num_raw=4, num_restarts=1,
                                                            num_steps=0))
    run = jax.jit(lambda spec: bocvs.run_bo(jax.random.key(0), spec,
                                            bocvs.ucb_cvs(2, num_stages=1), _objective, config))
    history = run(_spec(float("nan")))
    assert int(history.status) == INVALID_INPUT and int(history.num_rounds) == 0
    with pytest.raises(bocvs.BOError, match="invalid problem spec"):
        bocvs.raise_for_status(history)


def test_raise_for_status_unknown_code():
    history = bocvs.History(*([jnp.zeros(1)] * 13), jnp.int32(99), jnp.int32(-1))
    with pytest.raises(bocvs.BOError, match="unknown status code 99"):
        bocvs.raise_for_status(history)


@pytest.mark.parametrize("fn, match", [
    (lambda: bocvs.ucb_cvs(0), "num_sets"),
    (lambda: bocvs.etc_ada((0.0,) * 7), "costs"),
    (lambda: bocvs.problems.make_problem("hartmann3", variance=-1.0), "variance"),
    (lambda: bocvs.problems.make_problem("hartmann3", costs=(0.1, 0.2)), "costs"),
    (lambda: bocvs.problem_spec(bocvs.problems.make_problem("hartmann3"), jnp.int32), "dtype"),
    (lambda: bocvs.BOConfig(jitter=-1.0), "jitter"),
])
def test_constructors_refuse_bad_settings(fn, match):
    with pytest.raises(ValueError, match=match):
        fn()
