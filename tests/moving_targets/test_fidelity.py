"""The task the paper posed, checked at a known working network (the planted latch): on the
paper's 0 / 1 targets its error under the paper method (quartic, temporally weighted output
deficit) is about zero and falls as its weights grow, while the earlier inferred 0.1 / 0.9 targets
make the same working network a poor point of both errors. The success threshold's edge case."""

import jax
import jax.numpy as jnp
import pytest

from jaxpapers import moving_targets as mt
from jaxpapers.moving_targets._model import preacts


@pytest.fixture(autouse=True)
def x64():
    with jax.enable_x64(True):
        yield


def _latch(spec, scale):
    """Scaled latch weights and their own free-run hidden activations as moving targets."""
    W = scale * mt.tasks.latch_weights(1, dtype=jnp.float64)
    y = mt.losses.free_run(W, spec)
    Xh = jnp.where(spec.kind == mt.tasks.HIDDEN,
                   jnp.pad(preacts(W, y), ((0, 0), (1, 0), (0, 0))), 0.0)
    return W, Xh


@pytest.mark.parametrize("alpha", [0.0, 0.01, 1.0])
def test_planted_latch_is_a_zero_of_the_paper_error_on_the_tasks_targets(alpha):
    spec = mt.tasks.delay_task(100, 1, dtype=jnp.float64)                  # the paper's 0 / 1
    errors = []
    for scale in (1.0, 2.0, 4.0):
        W, Xh = _latch(spec, scale)
        assert float(mt.losses.free_run_error(W, spec)) < 0.01
        errors.append(float(mt.losses.out_deficit(W, Xh, spec, 4, alpha)))
        # perturbing one moving target (switch the latch off at t = 50 in sequence A) raises it
        flipped = Xh.at[0, 50, 3].set(-Xh[0, 50, 3])
        assert float(mt.losses.out_deficit(W, flipped, spec, 4, alpha)) > 0.01
    assert errors[0] < 1e-5 * (1 + 100 * alpha), errors
    assert errors[0] > errors[1] > errors[2] and errors[2] < 1e-30, errors


def test_on_0_1_and_0_9_targets_the_working_latch_is_not_a_zero_of_either_error():
    """The failure of the earlier inferred task: with 0.1 / 0.9 targets the quartic error of the
    latch stays at the saturation gap (0.1^4 per event) however large its weights, and the exact
    weight solve at its trajectory gives a large reduced error and weights that fail the task."""
    spec = mt.tasks.delay_task(100, 1, low=0.1, high=0.9, dtype=jnp.float64)
    errors = [float(mt.losses.out_deficit(*_latch(spec, s), spec, 4, 0.01))
              for s in (1.0, 4.0, 10.0)]
    assert min(errors) > 5e-3, errors
    _, Xh = _latch(spec, 1.0)
    assert float(mt.losses.reduced_act(Xh, spec, 1e-10)) > 1.0
    assert float(mt.losses.free_run_error(mt.losses.solve_events(Xh, spec, 1e-10), spec)) > 0.5


def test_an_output_saturated_on_the_threshold_is_not_a_success():
    """Latch weights doubled on the 0.1 / 0.9 task: saturated outputs 1e-13 away from 0 and 1,
    so the free-run error is 0.1 up to rounding; it must not count as a success."""
    budget = mt.Budget(evaluations=10)
    assert not bool(budget.succeeded(jnp.float64(0.1 - 1e-12)))
    assert bool(budget.succeeded(jnp.float64(0.0999)))
    old = mt.tasks.delay_task(100, 1, low=0.1, high=0.9, dtype=jnp.float64)
    paper = mt.tasks.delay_task(100, 1, dtype=jnp.float64)
    W = 2.0 * mt.tasks.latch_weights(1, dtype=jnp.float64)
    assert 0.1 - 1e-12 < float(mt.losses.free_run_error(W, old)) < 0.1        # old rule: a success
    for spec, expect in ((old, False), (paper, True)):
        state = mt.init(jax.random.key(0), spec, mt.BPTT(), weights=W)
        state = mt.evaluate(jax.random.key(0), state, spec, mt.BPTT(), budget)
        assert bool(state.success) is expect
