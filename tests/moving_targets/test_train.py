"""Trainers: the kernel contract, honest evaluation counts and budget caps, the planted recovery
(spec oracle 5) and the budgeted delay task at D = 10 (oracle 6), the hybrid and restarts."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpapers import moving_targets as mt
from jaxpapers.moving_targets import _train
from jaxpapers.moving_targets._trainers import bptt, mt_alternating, mt_varpro
from tests.contracts import check_kernel_contract


@pytest.fixture(autouse=True)
def x64():
    with jax.enable_x64(True):
        yield


def _spec(delay=4, hidden=2):
    return mt.tasks.delay_task(delay, hidden, low=0.1, high=0.9, dtype=jnp.float64)


@pytest.mark.parametrize("name", [
    "varpro-adam", pytest.param("varpro", marks=pytest.mark.slow),
    pytest.param("bptt-adam", marks=pytest.mark.slow),
    pytest.param("random", marks=pytest.mark.slow)])
def test_contract_of_init_and_step(name):
    spec = _spec()
    budget = mt.Budget(evaluations=40, check_every=4)
    method = {"varpro-adam": mt.MTVarpro(minimizer=mt.Minimizer("adam")),
              "varpro": mt.MTVarpro(), "bptt-adam": mt.BPTT(minimizer=mt.Minimizer("adam")),
              "random": mt.RandomSearch(batch=8)}[name]
    # random search starts from no candidate: its init does not use the key
    state = check_kernel_contract(lambda k: mt.init(k, spec, method),
                                  deterministic=name == "random")
    check_kernel_contract(lambda k, s: mt.step(k, s, spec, method, budget), state,
                          state_arg=0, output_state=lambda out: out[0],
                          deterministic=name != "random")


def test_contract_of_the_deterministic_kernels():
    """The losses, solves and runs (no key of their own: the contract's key is ignored)."""
    spec = _spec(3, 2)
    W = 0.5 * jax.random.normal(jax.random.key(1), (5, 5), jnp.float64)
    Xh = jnp.where(spec.kind == mt.tasks.HIDDEN,
                   jax.random.normal(jax.random.key(2), spec.kind.shape, jnp.float64), 0.0)
    kernels = {
        "free_run": lambda k: mt.losses.free_run(W, spec),
        "one_step": lambda k: mt.losses.one_step(W, spec, Xh),
        "reduced_act": lambda k: jax.value_and_grad(mt.losses.reduced_act)(Xh, spec),
        "bptt_loss": lambda k: jax.value_and_grad(mt.losses.bptt_loss)(W, spec),
    }
    for name, fn in kernels.items():
        out = check_kernel_contract(fn, deterministic=True)
        assert all(leaf.dtype == jnp.float64 for leaf in jax.tree.leaves(out)), name


@pytest.mark.parametrize("name", ["bptt", "varpro",
                                  pytest.param("alternating", marks=pytest.mark.slow)])
def test_every_evaluation_is_counted_and_the_budget_is_never_exceeded(name, monkeypatch):
    calls = []

    def counted(fn):
        def wrapper(*args, **kwargs):
            jax.debug.callback(lambda: calls.append(1))
            return fn(*args, **kwargs)
        return wrapper

    module, target = {"bptt": (bptt, "bptt_loss"), "varpro": (mt_varpro, "reduced_act"),
                      "alternating": (mt_alternating, "act_deficit")}[name]
    monkeypatch.setattr(module, target, counted(getattr(module, target)))
    method = {"bptt": mt.BPTT(), "varpro": mt.MTVarpro(),
              "alternating": mt.MTAlternating(inner=3)}[name]
    spec = _spec()
    budget = mt.Budget(evaluations=57, check_every=5, threshold=1e-9)   # never succeeds
    state = jax.jit(lambda k: mt.train(k, spec, method, budget))(jax.random.key(1))
    jax.effects_barrier()
    assert int(state.evals) == len(calls) and int(state.evals) <= 57
    assert bool(state.done)


def test_planted_latch_is_recovered_at_delay_100():
    """Oracle 5: MT-varpro started near the planted latch's hidden activations finds a consistent
    trajectory whose free run matches the data (local convergence at D = 100 is easy)."""
    base = mt.tasks.delay_task(100, 1, low=0.1, high=0.9, dtype=jnp.float64)
    W = mt.tasks.latch_weights(1, dtype=jnp.float64)
    y = mt.losses.free_run(W, base)
    x = jnp.pad(mt._model.preacts(W, y), ((0, 0), (1, 0), (0, 0)))
    spec = mt.EventSpec(base.kind, jnp.where(base.kind == mt.tasks.TARGET, y, base.value))
    method = mt.MTVarpro(lam=1e-10)
    budget = mt.Budget(evaluations=1500, check_every=50, threshold=1e-4, stop_on_success=False)

    @jax.jit
    def recover(key, sigma):
        start = x + sigma * jax.random.normal(key, x.shape, x.dtype)
        state = mt.init(key, spec, method, targets=start)
        state = _train._train_one(key, spec, method, budget, None, "logistic", state)
        Xh = _train.moving_targets_of(state, spec, method)
        W = mt.losses.solve_events(Xh, spec, 1e-10)
        # E_act without ridge
        return mt.losses.act_deficit(W, Xh, spec), mt.losses.free_run_error(W, spec)

    for sigma in (0.1, 0.5):
        e_act, err = recover(jax.random.key(3), sigma)
        assert float(e_act) < 1e-9 and float(err) < 1e-4, (sigma, float(e_act), float(err))


@pytest.mark.slow
def test_delay_10_is_solved_by_moving_targets_and_bptt():
    """Oracle 6: D = 10, H = 3, 10 seeds, 2000 evaluations: at least one MT-varpro seed and at
    least five BPTT seeds reach a free-run max error below 0.1."""
    spec = mt.tasks.delay_task(10, 3, low=0.1, high=0.9, dtype=jnp.float64)
    budget = mt.Budget(evaluations=2000)
    keys = jax.random.split(jax.random.key(0), 10)
    successes = {}
    for name, method in (("varpro", mt.MTVarpro(shared=True)), ("bptt", mt.BPTT())):
        run = jax.jit(jax.vmap(lambda k, m=method: mt.summarize(mt.train(k, spec, m, budget),
                                                                 spec, m)))
        out = run(keys)
        ok = np.asarray(out.success)
        np.testing.assert_array_equal(ok, np.asarray(out.free_run_error) < 0.1)
        assert (np.asarray(out.evals_to_success)[ok] <= 2000).all()
        successes[name] = int(ok.sum())
    assert successes["varpro"] >= 1 and successes["bptt"] >= 5, successes


@pytest.mark.slow
def test_hybrid_carries_weights_and_evaluations_into_bptt():
    spec = _spec(6, 2)
    budget = mt.Budget(evaluations=300, check_every=5, threshold=1e-9)
    hybrid = mt.Hybrid(fraction=0.4)

    @jax.jit
    def run(key):
        k_init, k_loop = jax.random.split(key)
        first_budget = mt.Budget(evaluations=120, check_every=5, threshold=1e-9)
        first = mt.init(k_init, spec, hybrid.first)
        first = _train._train_one(k_loop, spec, hybrid.first, first_budget, None, "logistic",
                                  first)
        second = _train.hybrid_start(first, spec, hybrid, budget)
        return first, second, mt.train(key, spec, hybrid, budget)

    first, second, whole = run(jax.random.key(2))
    np.testing.assert_array_equal(second.weights, first.weights)
    assert int(second.evals) == int(first.evals) + 1
    assert 120 <= int(first.evals) + 1 <= int(whole.evals) <= 300


def test_restarts_reinitialise_a_stalled_seed_and_keep_counting():
    spec = _spec(3, 1)
    tight = mt.Minimizer(gtol=1e9)                   # stalls after every step
    budget = mt.Budget(evaluations=400, check_every=5, threshold=1e-9, restarts=True)
    state = jax.jit(lambda k: mt.train(k, spec, mt.BPTT(minimizer=tight), budget))(
        jax.random.key(0))
    assert int(state.restarts) >= 10 and int(state.evals) == 400 and not bool(state.success)


def test_bad_configs_are_refused():
    with pytest.raises(ValueError, match=r"MTVarpro.init must be one of"):
        mt.MTVarpro(init="zeros")
    with pytest.raises(ValueError, match=r"Budget.evaluations must be a positive int; got 0"):
        mt.Budget(evaluations=0)
    with pytest.raises(ValueError, match=r"Minimizer.method must be one of"):
        mt.Minimizer("sgd")
    with pytest.raises(ValueError, match=r"power must be 2"):
        mt.MTJoint(space="activation")
    with pytest.raises(ValueError, match=r"Hybrid.fraction must be in \(0, 1\)"):
        mt.Hybrid(fraction=1.0)
    with pytest.raises(ValueError, match="a Hybrid runs through train"):
        mt.init(jax.random.key(0), _spec(), mt.Hybrid())
