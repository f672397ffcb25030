"""Spec section 5 oracles 1-4 in float64: zero error iff consistent, the weight solve against
closed forms, the envelope gradient against autodiff and the hand formula, central differences;
the segment loss at its two ends; the line search and minimisers."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpapers import moving_targets as mt
from jaxpapers.moving_targets import EventSpec
from jaxpapers.moving_targets._optim import minimize_init, minimize_step, wolfe_linesearch
from jaxpapers.moving_targets.tasks import HIDDEN, INPUT, TARGET


@pytest.fixture(autouse=True)
def x64():
    with jax.enable_x64(True):
        yield


def _consistent(seed=0, delay=8, hidden=3):
    """A random network run freely; targets and moving targets copied from its trajectory."""
    with jax.enable_x64(True):
        base = mt.tasks.delay_task(delay, hidden, low=0.1, high=0.9, dtype=jnp.float64)
        W = jax.random.normal(jax.random.key(seed), (3 + hidden,) * 2, jnp.float64)
        y = mt.losses.free_run(W, base)
        x = jnp.pad(mt._model.preacts(W, y), ((0, 0), (1, 0), (0, 0)))
        spec = EventSpec(base.kind, jnp.where(base.kind == TARGET, y, base.value))
        Xh = jnp.where(spec.kind == HIDDEN, x, 0.0)
        return W, spec, Xh


def _random_targets(spec, seed=1, scale=1.0):
    Xh = scale * jax.random.normal(jax.random.key(seed), spec.kind.shape, jnp.float64)
    return jnp.where(spec.kind == HIDDEN, Xh, 0.0)


# -- oracle 1: zero error iff consistent -------------------------------------------------------

def test_zero_error_iff_consistent():
    W, spec, Xh = _consistent()
    errors = jax.jit(lambda W, Xh: (mt.losses.act_deficit(W, Xh, spec),
                                    mt.losses.out_deficit(W, Xh, spec, 4, 0.1),
                                    mt.losses.out_deficit(W, Xh, spec, 2)))
    for value in errors(W, Xh):
        assert float(value) <= 1e-20
    bumped = Xh.at[0, 4, 4].add(0.3)                  # one hidden target moved
    for value in errors(W, bumped):
        assert float(value) > 1e-12
    # planted: zero error means the free run reproduces the composed trajectory
    Yall, _ = mt.losses.compose(spec, Xh)
    np.testing.assert_allclose(mt.losses.free_run(W, spec, Xh), Yall, atol=1e-10)
    assert float(mt.losses.one_step_error(W, spec, Xh)) < 1e-10


# -- oracle 2: the weight solve -------------------------------------------------------------------

def _numpy_rows(Yall, Xall, weights, lam):
    Yall, Xall, weights = (np.asarray(a, np.float64) for a in (Yall, Xall, weights))
    n = Yall.shape[-1]
    phi = Yall[:, :-1].reshape(-1, n)
    out = np.zeros((n, n))
    for i in range(n):
        w = weights.reshape(-1, n)[:, i]
        if not (w > 0).any():
            continue
        A = phi * np.sqrt(w)[:, None]
        b = Xall[:, 1:].reshape(-1, n)[:, i] * np.sqrt(w)
        if lam > 0:
            out[i] = np.linalg.solve(A.T @ A + lam * np.eye(n), A.T @ b)
        else:
            out[i] = np.linalg.lstsq(A, b, rcond=None)[0]
    return out


@pytest.mark.parametrize("dont_care", [False, True])
def test_weight_solve_equals_closed_forms(dont_care):
    spec = mt.tasks.delay_task(6, 3, low=0.1, high=0.9, dtype=jnp.float64, dont_care=dont_care)
    Xh = _random_targets(spec)
    Yall, Xall = mt.losses.compose(spec, Xh)
    mask = mt._losses.error_mask(spec)
    solve = jax.jit(mt.losses.solve_weights, static_argnames=("method", "shared"))
    for lam in (1e-3, 0.3):
        expect = _numpy_rows(Yall, Xall, mask, lam)
        for method in ("cholesky", "lstsq"):
            np.testing.assert_allclose(solve(Yall, Xall, mask, lam, method=method), expect,
                                       rtol=1e-9, atol=1e-10)
    # lam -> 0: the least-squares solution (the correlation matrices are regular here)
    np.testing.assert_allclose(solve(Yall, Xall, mask, 0.0, method="lstsq"),
                               _numpy_rows(Yall, Xall, mask, 0.0), rtol=1e-7, atol=1e-8)
    # the solution is stationary: dE/dW = 0 on the rows that have events
    W = solve(Yall, Xall, mask, 1e-3)
    gW = jax.grad(lambda W: mt.losses.act_deficit(W, Xh, spec) + 0.5e-3 * jnp.sum(W ** 2))(W)
    assert float(jnp.max(jnp.abs(gW))) < 1e-8
    # weighted rows (the temporal weighting) against NumPy
    weights = mt._losses.error_weights(spec, 0.5)
    np.testing.assert_allclose(solve(Yall, Xall, weights, 1e-3), _numpy_rows(Yall, Xall,
                                                                             weights, 1e-3),
                               rtol=1e-9, atol=1e-10)


def test_shared_matrix_path_equals_per_node_path_and_is_refused_when_it_cannot_be():
    spec = mt.tasks.delay_task(6, 3, low=0.1, high=0.9, dtype=jnp.float64)
    Xh = _random_targets(spec)
    Yall, Xall = mt.losses.compose(spec, Xh)
    mask = mt._losses.error_mask(spec)
    np.testing.assert_allclose(mt.losses.solve_weights(Yall, Xall, mask, 1e-3, shared=True),
                               mt.losses.solve_weights(Yall, Xall, mask, 1e-3), rtol=1e-10,
                               atol=1e-12)
    dc = mt.tasks.delay_task(6, 3, low=0.1, high=0.9, dtype=jnp.float64, dont_care=True)
    dc = EventSpec(dc.kind.at[0, 3, 4].set(INPUT), dc.value)       # rows now differ
    Yd, Xd = mt.losses.compose(dc, Xh)
    with pytest.raises(ValueError, match="different event sets"):
        mt.losses.solve_weights(Yd, Xd, mt._losses.error_mask(dc), 1e-3, shared=True)
    with pytest.raises(ValueError, match="method must be one of"):
        mt.losses.solve_weights(Yall, Xall, mask, 1e-3, method="qr")


# -- oracle 3: the envelope gradient -------------------------------------------------------------

@pytest.mark.parametrize("alpha", [0.0, 0.2])
def test_envelope_gradient_equals_autodiff_and_the_hand_formula(alpha):
    spec = mt.tasks.delay_task(7, 3, low=0.1, high=0.9, dtype=jnp.float64)
    Xh = _random_targets(spec, seed=3)
    grads = jax.jit(lambda X: (
        jax.grad(lambda X: mt.losses.reduced_act(X, spec, 1e-3, envelope=False, alpha=alpha))(X),
        jax.grad(lambda X: mt.losses.reduced_act(X, spec, 1e-3, alpha=alpha))(X),
        mt.losses.reduced_act_grad(X, spec, 1e-3, alpha=alpha)))
    through, envelope, hand = grads(Xh)
    scale = float(jnp.max(jnp.abs(through)))
    np.testing.assert_allclose(envelope, through, rtol=0, atol=1e-8 * scale)
    np.testing.assert_allclose(hand, through, rtol=0, atol=1e-8 * scale)
    assert float(jnp.max(jnp.abs(jnp.where(spec.kind == HIDDEN, 0.0, hand)))) == 0.0


# -- oracle 4: central differences ---------------------------------------------------------------

def _central_differences(fn, x, key, count=12, h=1e-6):
    flat = jnp.ravel(x)
    picks = np.asarray(jax.random.choice(key, flat.size, (count,), replace=False))
    steps = h * jnp.eye(flat.size, dtype=x.dtype)[picks]                # [count, size]

    @jax.jit                                       # one program: the gradient and every difference
    def both(flat):
        value = lambda v: fn(v.reshape(x.shape))
        ups, downs = jax.vmap(value)(flat[None] + steps), jax.vmap(value)(flat[None] - steps)
        return jax.grad(value)(flat)[picks], (ups - downs) / (2 * h)

    grad, fd = map(np.asarray, both(flat))
    np.testing.assert_array_less(np.abs(fd - grad), 1e-5 * np.maximum(np.abs(grad), 1e-3))


def test_finite_differences_of_every_loss():
    spec = mt.tasks.delay_task(6, 3, low=0.1, high=0.9, dtype=jnp.float64)
    W = 0.8 * jax.random.normal(jax.random.key(5), (6, 6), jnp.float64)
    Xh = _random_targets(spec, seed=6)
    hidden_slots = jnp.where(spec.kind == HIDDEN, 1.0, 0.0)
    key = jax.random.key(7)
    # gradients w.r.t. moving targets: perturb hidden slots only (others are not variables)
    xh_losses = [lambda X: mt.losses.act_deficit(W, X * hidden_slots, spec),
                 lambda X: mt.losses.out_deficit(W, X * hidden_slots, spec, 4, 0.1),
                 lambda X: mt.losses.reduced_act(X * hidden_slots, spec, 1e-3, envelope=False),
                 lambda X: mt.losses.shooting_loss(W, X * hidden_slots, spec, 3)]
    for loss in xh_losses:
        _central_differences(loss, Xh, key)
    w_losses = [lambda V: mt.losses.act_deficit(V, Xh, spec),
                lambda V: mt.losses.out_deficit(V, Xh, spec),
                lambda V: mt.losses.bptt_loss(V, spec),
                lambda V: mt.losses.shooting_loss(V, Xh, spec, 3)]
    for loss in w_losses:
        _central_differences(loss, W, key)


def test_segment_loss_ends_are_moving_targets_and_bptt():
    spec = mt.tasks.delay_task(6, 3, low=0.1, high=0.9, dtype=jnp.float64)
    W = jax.random.normal(jax.random.key(8), (6, 6), jnp.float64)
    Xh = _random_targets(spec, seed=9)
    losses = jax.jit(lambda W, Xh: ([mt.losses.shooting_loss(W, Xh, spec, k)
                                     for k in (1, 8, 20)],
                                    mt.losses.out_deficit(W, Xh, spec, 2),
                                    mt.losses.bptt_loss(W, spec)))
    (k1, k8, k20), quadratic, bptt = losses(W, Xh)
    np.testing.assert_allclose(k1, quadratic, rtol=1e-12)
    for value in (k8, k20):                       # K >= T = 8: no restart inside the sequence
        np.testing.assert_allclose(value, bptt, rtol=1e-12)
    with pytest.raises(ValueError, match="segment must be positive"):
        mt.losses.shooting_loss(W, Xh, spec, 0)


# -- the line search and the minimisers ----------------------------------------------------------

def test_line_search_meets_the_strong_wolfe_conditions_and_counts_its_evaluations():
    calls = []
    f = lambda x: jnp.sum(x ** 4) + jnp.sum(jnp.cos(3 * x)) + 0.5 * jnp.sum(x ** 2)

    def value_and_grad(x):
        jax.debug.callback(lambda: calls.append(1))
        return jax.value_and_grad(f)(x)

    x = jnp.array([1.3, -0.7, 0.2])
    f0, g0 = jax.value_and_grad(f)(x)
    for a_init in (1.0, 1e-4, 30.0):
        calls.clear()
        a, fa, ga, count = wolfe_linesearch(value_and_grad, x, f0, g0, -g0, a_init, 30)
        assert int(count) == len(calls) and float(a) > 0
        slope0, slope = float(jnp.vdot(g0, -g0)), float(jnp.vdot(ga, -g0))
        assert float(fa) <= float(f0) + 1e-4 * float(a) * slope0
        assert abs(slope) <= 0.9 * abs(slope0)
        np.testing.assert_allclose(fa, f(x - a * g0), rtol=1e-12)


def test_minimisers_count_every_evaluation():
    calls = []

    def fun(x):
        jax.debug.callback(lambda: calls.append(1))
        return jnp.sum((x[1:] - x[:-1] ** 2) ** 2) * 10 + jnp.sum((1 - x[:-1]) ** 2)

    for method in ("lbfgs", "curvature", "adam"):
        calls.clear()
        config = mt.Minimizer(method)
        state = minimize_init(fun, jnp.zeros(4), config)
        step = jax.jit(lambda s, c=config: minimize_step(fun, s, c))
        for _ in range(15):
            state, info = step(state)
        jax.effects_barrier()
        assert int(state.evals) == len(calls), method


def test_lbfgs_minimises_rosenbrock_and_curvature_avoidance_solves_a_diagonal_quadratic():
    rosen = lambda x: jnp.sum(100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)
    config = mt.Minimizer("lbfgs")
    state = minimize_init(rosen, jnp.full(6, -1.0), config)
    step = jax.jit(lambda s: minimize_step(rosen, s, config)[0])
    for _ in range(150):
        state = step(state)
    np.testing.assert_allclose(state.params, 1.0, atol=1e-6)
    # after one step the |dg/dx| estimate is the exact diagonal: the next step is Newton's
    h = jnp.array([1.0, 30.0, 1000.0])
    quad = lambda x: 0.5 * jnp.sum(h * x ** 2)
    config = mt.Minimizer("curvature", curvature_decay=0.0)
    state = minimize_init(quad, jnp.array([1.0, -2.0, 0.5]), config)
    step = jax.jit(lambda s: minimize_step(quad, s, config)[0])
    for _ in range(2):
        state = step(state)
    assert float(state.value) < 1e-20
