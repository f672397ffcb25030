"""Events, tasks, the network model and bad input (float32; oracles in test_losses_float64)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpapers import InvalidInputError
from jaxpapers import moving_targets as mt
from jaxpapers.moving_targets import EventSpec
from jaxpapers.moving_targets.tasks import HIDDEN, INPUT, TARGET


def test_make_events_builds_kinds_and_values():
    inp = np.zeros((1, 3, 2), bool)
    tgt = np.zeros((1, 3, 2), bool)
    inp[0, :, 0] = True
    tgt[0, 1:, 1] = True
    values = np.full((1, 3, 2), 0.3)
    spec = mt.tasks.make_events(inp, tgt, values)
    assert spec.kind.dtype == jnp.int32 and spec.value.dtype == jnp.float32
    np.testing.assert_array_equal(spec.kind[0], [[INPUT, HIDDEN], [INPUT, TARGET],
                                                 [INPUT, TARGET]])
    np.testing.assert_allclose(spec.value[0], [[0.3, 0.0], [0.3, 0.3], [0.3, 0.3]])


def test_activation_space_values_are_converted():
    inp = np.ones((1, 2, 1), bool)
    spec = mt.tasks.make_events(inp, ~inp, np.zeros((1, 2, 1)), space="activation")
    np.testing.assert_allclose(spec.value, 0.5)


def test_an_event_both_input_and_target_is_refused():
    both = np.zeros((1, 3, 2), bool)
    both[0, 2, 1] = True
    with pytest.raises(ValueError, match=r"both input and target \(first at \[s, t, n\] = "
                                         r"\(0, 2, 1\)\)"):
        mt.tasks.make_events(both, both, np.full((1, 3, 2), 0.5))


@pytest.mark.parametrize("bad, match", [
    (3.0, r"target outputs must lie in \[0.0, 1.0\]"),
    (-0.5, r"target outputs must lie in \[0.0, 1.0\]"),
    (np.nan, "must be finite"),
])
def test_target_values_outside_the_closed_range_are_refused(bad, match):
    tgt = np.zeros((1, 3, 1), bool)
    tgt[0, 1:, 0] = True
    values = np.full((1, 3, 1), 0.5)
    values[0, 2, 0] = bad
    with pytest.raises(InvalidInputError, match=match):
        mt.tasks.make_events(~tgt, tgt, values)


def test_targets_of_0_and_1_are_output_space_data_refused_only_by_the_activation_error():
    """0/1 targets are valid data (the output deficit takes them; nothing infinite is stored);
    the activation-space error refuses them and says why."""
    spec = mt.tasks.delay_task(4, 2)
    assert float(spec.value.max()) == 1.0 and float(spec.value[1, 1:, 2].max()) == 0.0
    _, Xall = mt.losses.compose(spec)
    assert np.isfinite(np.asarray(Xall)).all()
    W = jnp.zeros((5, 5))
    Xh = jnp.zeros(spec.kind.shape)
    assert np.isfinite(float(mt.losses.out_deficit(W, Xh, spec)))
    g = jax.grad(mt.losses.out_deficit, argnums=(0, 1))(W, Xh, spec)
    assert all(np.isfinite(np.asarray(a)).all() for a in g)
    for call in (lambda: mt.losses.act_deficit(W, Xh, spec),
                 lambda: mt.losses.reduced_act(Xh, spec),
                 lambda: mt.init(jax.random.key(0), spec, mt.MTVarpro()),
                 lambda: mt.init(jax.random.key(0), spec, mt.MTAlternating()),
                 lambda: mt.init(jax.random.key(0), spec,
                                 mt.MTJoint(power=2, space="activation"))):
        with pytest.raises(ValueError, match=r"infinite for outputs on the boundary.*"
                                             r"MTJoint\(power=4\)"):
            call()
    mt.init(jax.random.key(0), spec, mt.MTJoint(power=4))        # output space: accepted
    mt.init(jax.random.key(0), mt.tasks.delay_task(4, 2, low=0.1, high=0.9), mt.MTVarpro())


@pytest.mark.parametrize("fault, match", [
    ("nan", "must be finite"), ("kind", r"got \[7\]"), ("value", r"got values in \[0.0, 3.0\]")])
def test_init_and_train_refuse_bad_events(fault, match):
    spec = mt.tasks.delay_task(3, 1)
    kind, value = np.array(spec.kind), np.array(spec.value)
    if fault == "nan":
        value[0, 2, 2] = np.nan
    elif fault == "kind":
        kind[0, 2, 3] = 7
    else:
        value[0, 4, 2] = 3.0
    bad = EventSpec(jnp.asarray(kind), jnp.asarray(value))
    for call in (lambda: mt.init(jax.random.key(0), bad, mt.MTJoint()),
                 lambda: mt.train(jax.random.key(0), bad, mt.BPTT(), mt.Budget(evaluations=5)),
                 lambda: jax.jit(lambda k: mt.init(k, bad, mt.BPTT()))(jax.random.key(0))):
        with pytest.raises(ValueError, match=match):
            call()


def test_inputs_may_sit_on_the_closed_range_but_not_beyond():
    inp = np.ones((1, 2, 1), bool)
    mt.tasks.make_events(inp, ~inp, np.array([[[0.0], [1.0]]]))       # bias 1, input 0: fine
    with pytest.raises(InvalidInputError, match=r"input outputs must lie in \[-1.0, 1.0\]"):
        mt.tasks.make_events(inp, ~inp, np.array([[[0.0], [1.5]]]), activation="tanh")


def test_bad_kinds_and_shapes_are_refused():
    kind = jnp.array([[[0], [3]]], jnp.int32)
    with pytest.raises(InvalidInputError, match=r"kind must be INPUT \(0\), TARGET \(1\) or "
                                                r"HIDDEN \(2\); got \[3\]"):
        mt.tasks.validate_events(EventSpec(kind, jnp.zeros((1, 2, 1))))
    with pytest.raises(ValueError, match="at least 2 time steps"):
        mt.tasks.validate_events(EventSpec(jnp.zeros((1, 1, 2), jnp.int32), jnp.zeros((1, 1, 2))))
    with pytest.raises(ValueError, match="same shape"):
        mt.tasks.validate_events(EventSpec(jnp.zeros((1, 2, 2), jnp.int32), jnp.zeros((1, 2, 3))))
    with pytest.raises(ValueError, match="activation must be one of"):
        mt.tasks.validate_events(mt.tasks.delay_task(2), activation="relu")
    spec = mt.tasks.delay_task(3)
    with pytest.raises(ValueError, match=r"weights must be \[N, N\] = \[6, 6\]"):
        mt.losses.free_run(jnp.zeros((5, 5)), spec)
    with pytest.raises(ValueError, match="moving targets Xh must have the events' shape"):
        mt.losses.act_deficit(jnp.zeros((6, 6)), jnp.zeros((2, 5, 7)), spec)


def test_conversions_never_give_infinities():
    f, f_inv, _ = mt.tasks.activation_fns("logistic")
    x = f_inv(jnp.array([0.0, 1.0, 0.5]))
    assert np.isfinite(np.asarray(x)).all() and float(x[2]) == 0.0
    spec = mt.tasks.delay_task(4, low=0.1, high=0.9)    # bias outputs 1, inputs 0
    Yall, Xall = jax.jit(mt.losses.compose)(spec)
    assert np.isfinite(np.asarray(Xall)).all()
    grad = jax.jit(jax.grad(lambda X: mt.losses.act_deficit(jnp.ones((6, 6)), X, spec)))(
        jnp.zeros((2, 6, 6)))
    assert np.isfinite(np.asarray(grad)).all()


def test_delay_task_layout():
    spec = mt.tasks.delay_task(5, hidden=2, low=0.1, high=0.9)
    kind, value = np.asarray(spec.kind), np.asarray(spec.value)
    assert kind.shape == (2, 7, 5)
    assert (kind[:, :, :2] == INPUT).all() and (value[:, :, 0] == 1).all()
    np.testing.assert_array_equal(value[0, :, 1], [1, 0, 0, 0, 0, 1, 0])   # A: pulses at 0, D
    np.testing.assert_array_equal(value[1, :, 1], [0, 0, 0, 0, 0, 1, 0])   # B: pulse at D only
    assert (kind[:, 0, 2:] == INPUT).all() and np.allclose(value[:, 0, 2:], 0.1)
    assert (kind[:, 1:, 2] == TARGET).all() and (kind[:, 1:, 3:] == HIDDEN).all()
    np.testing.assert_allclose(value[:, 1:, 2], [[.1] * 5 + [.9], [.1] * 6])
    dc = np.asarray(mt.tasks.delay_task(5, hidden=2, dont_care=True).kind)
    assert (dc[:, 1:6, 2] == HIDDEN).all() and (dc[:, 6, 2] == TARGET).all()
    with pytest.raises(ValueError, match="delay must be positive"):
        mt.tasks.delay_task(0)
    paper = mt.tasks.delay_task(5, hidden=2)                   # the paper's 0/1, initial outputs 0
    np.testing.assert_array_equal(np.asarray(paper.value)[:, 1:, 2], [[0] * 5 + [1], [0] * 6])
    assert (np.asarray(paper.value)[:, 0, 2:] == 0).all()
    init = mt.tasks.delay_task(5, hidden=2, low=0.05, high=0.95, initial=0.0)
    assert (np.asarray(init.value)[:, 0, 2:] == 0).all()
    with pytest.raises(ValueError, match="0 <= low < high <= 1"):
        mt.tasks.delay_task(5, low=0.5, high=0.5)


def test_limit_cycle_and_parity_layouts():
    lc = mt.tasks.limit_cycle_task()
    kind, value = np.asarray(lc.kind), np.asarray(lc.value)
    assert kind.shape == (4, 9, 6)
    for s, k in enumerate(range(1, 5)):
        assert value[s, 0, 1] == (k - 1) & 1 and value[s, 0, 2] == ((k - 1) >> 1) & 1
        wave = value[s, 1:2 * k + 1, 3]
        np.testing.assert_allclose(wave, [0.9] * k + [0.1] * k)
        assert (kind[s, 2 * k + 1:, 3] == HIDDEN).all()
    par = mt.tasks.parity_task(pulses=((2, 5),), length=8)
    np.testing.assert_allclose(np.asarray(par.value)[0, 1:, 2],
                               [.1, .1, .9, .9, .9, .1, .1])
    with pytest.raises(ValueError, match="pulse times must lie in"):
        mt.tasks.parity_task(pulses=((7,),), length=8)


def test_free_run_clamps_only_inputs_and_matches_a_loop():
    spec = mt.tasks.delay_task(6, hidden=2)
    W = jax.random.normal(jax.random.key(0), (5, 5))
    y = np.asarray(jax.jit(mt.losses.free_run)(W, spec))
    kind, value = np.asarray(spec.kind), np.asarray(spec.value)
    expect = value[:, 0].copy()
    for t in range(1, 8):
        nxt = 1 / (1 + np.exp(-(expect @ np.asarray(W).T)))
        expect = np.where(kind[:, t] == INPUT, value[:, t], nxt)
        np.testing.assert_allclose(y[:, t], expect, rtol=1e-5, atol=1e-6)


def test_planted_latch_solves_the_delay_task():
    spec = mt.tasks.delay_task(100, hidden=1)
    err = float(jax.jit(mt.losses.free_run_error)(mt.tasks.latch_weights(1), spec))
    assert err < 0.1
