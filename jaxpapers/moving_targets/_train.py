"""Trainers: moving targets (variable projection, joint, alternating), BPTT, random weight search
and the MT -> BPTT hybrid, all on one budget counted in gradient evaluations.

Every trainer is ``init(key, spec, method) -> TrainState`` and
``step(key, state, spec, method, budget) -> (TrainState, TrainInfo)`` (one iteration; a finished
state is returned unchanged), plus ``evaluate(state, eval_spec, budget)`` (the free-run success
check, done every ``budget.check_every`` iterations because a free run is a sequential scan) and
``train(key, spec, method, budget)`` (a ``lax.while_loop`` of blocks of ``check_every`` steps and
one evaluation until the budget is spent or the free run succeeds). One seed per call: ``vmap``
over keys for many seeds; the library does not ``jit``.

Budget unit: gradient evaluations (``value_and_grad`` calls, line-search trials included). The
alternating trainer counts each exact weight solve (with the evaluation that restarts the search)
as one; random search counts each candidate's free run as one (it needs no gradient: a free run
costs about a third of a BPTT gradient).
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jaxpapers._src import checks
from jaxpapers.moving_targets._events import (
    HIDDEN,
    TARGET,
    EventSpec,
    activation_fns,
    require_finite_targets,
    validate_events,
)
from jaxpapers.moving_targets._losses import (
    SOLVERS,
    act_deficit,
    bptt_loss,
    out_deficit,
    reduced_act,
    shooting_loss,
    solve_events,
)
from jaxpapers.moving_targets._model import (
    compose,
    free_run,
    free_run_error,
    one_step_error,
    preacts,
)
from jaxpapers.moving_targets._optim import Minimizer, minimize_init, minimize_step

__all__ = ["Budget", "MTVarpro", "MTJoint", "MTAlternating", "MTShooting", "BPTT",
           "RandomSearch", "Hybrid", "TrainState", "TrainInfo", "TrainSummary", "init", "step",
           "evaluate", "train", "summarize", "INITS"]

INITS = ("free_run", "normal", "constant")


def _positive_int(owner: str, name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{owner}.{name} must be a positive int; got {value!r}")


def _non_negative(owner: str, name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
        raise ValueError(f"{owner}.{name} must be a number >= 0; got {value!r}")


@dataclasses.dataclass(frozen=True)
class Budget:
    """The protocol of one training run ([TT]: 10,000 gradient evaluations, success when the
    free-running network's max target error is below 0.1).

    Attributes:
      evaluations: the cap on gradient evaluations.
      threshold: success when the free-run max error on the evaluation events is below
        ``threshold * (1 - tolerance)``.
      tolerance: relative; an error within ``tolerance * threshold`` of the threshold is not a
        success: a saturated output sitting on the threshold (e.g. output 1e-12 on a target of
        0.1 at threshold 0.1, error 0.1 - 1e-12) must not pass by rounding.
      check_every: iterations between free-run checks (the resolution of evaluations-to-success).
      stop_on_success: a seed stops at its first successful check.
      restarts: a seed whose minimiser stalls without success restarts from a fresh draw (keeps
        its evaluation count) instead of stopping; off in the paper's protocol.
    """

    evaluations: int = 10_000
    threshold: float = 0.1
    tolerance: float = 1e-6
    check_every: int = 10
    stop_on_success: bool = True
    restarts: bool = False

    def __post_init__(self):
        _positive_int("Budget", "evaluations", self.evaluations)
        _positive_int("Budget", "check_every", self.check_every)
        if not 0 < self.threshold:
            raise ValueError(f"Budget.threshold must be > 0; got {self.threshold}")
        if not 0 <= self.tolerance < 1:
            raise ValueError(f"Budget.tolerance must be in [0, 1); got {self.tolerance}")

    def succeeded(self, error):
        """``error < threshold * (1 - tolerance)`` (a boolean array like ``error``)."""
        return error < self.threshold * (1.0 - self.tolerance)


def _check_init(owner: str, init: str, init_scale: float) -> None:
    if init not in INITS:
        raise ValueError(f"{owner}.init must be one of {INITS}; got {init!r}")
    if not init_scale > 0:
        raise ValueError(f"{owner}.init_scale must be > 0; got {init_scale}")


@dataclasses.dataclass(frozen=True)
class MTVarpro:
    """Moving targets by variable projection: the minimiser moves the hidden targets ``Xh`` only;
    ``W = W*(Xh)`` is solved exactly inside every evaluation of the reduced ``E_act``.

    Attributes:
      lam: ridge of the weight solve (inferred; 1e-3 was best in the spec's pilot).
      alpha: temporal weighting ``1 + alpha t`` of the activation deficit (weighted solve).
      solver: ``"cholesky"`` or ``"lstsq"``; shared: one matrix for all rows (exact for tasks
        whose non-input nodes share their event times, e.g. the delay task without don't-cares).
      init: initial moving targets: ``"free_run"`` (activations of the free run of random weights
        ``N(0, init_scale^2)``), ``"normal"`` (``N(0, init_scale^2)`` activations) or
        ``"constant"`` (a random constant per sequence and node, plus noise ``0.1``).
      margin: target slack (beyond the paper): target events become moving targets confined to
        ``[Y - margin, Y + margin]`` in output space (``0``: exact targets, the paper).
      noise: standard deviation of activation noise whose expected deficit is minimised (beyond
        the paper; ``0``: the paper's error). It adds ``noise^2 sum W[i,j]^2 f'(X[j])^2`` to each
        term, a penalty on the one-step Jacobian that keeps the weight solve exact.
      minimizer: the search over ``Xh``.
    """

    lam: float = 1e-3
    alpha: float = 0.0
    noise: float = 0.0
    solver: str = "cholesky"
    shared: bool = False
    init: str = "free_run"
    init_scale: float = 1.0
    margin: float = 0.0
    minimizer: Minimizer = Minimizer()

    def __post_init__(self):
        _non_negative("MTVarpro", "lam", self.lam)
        _non_negative("MTVarpro", "alpha", self.alpha)
        _non_negative("MTVarpro", "margin", self.margin)
        _non_negative("MTVarpro", "noise", self.noise)
        if self.solver not in SOLVERS:
            raise ValueError(f"MTVarpro.solver must be one of {SOLVERS}; got {self.solver!r}")
        _check_init("MTVarpro", self.init, self.init_scale)


@dataclasses.dataclass(frozen=True)
class MTJoint:
    """Moving targets with weights and hidden targets minimised jointly (what [TT] says the
    paper's experiments did) on the output deficit ``1/p sum (1 + alpha t)|f(xhat) - Y|^p``
    (``power=4``: eq. 13) or, with ``space="activation"``, on ``E_act`` (``power`` must be 2).

    Attributes: ``power``, ``alpha``, ``space``; ``lam``: weight decay ``lam/2 ||W||^2``; ``init``,
    ``init_scale``: the initial weights ``N(0, init_scale^2)`` and targets (as in
    :class:`MTVarpro`); ``minimizer``.
    """

    power: int = 4
    alpha: float = 0.0
    space: str = "output"
    lam: float = 0.0
    init: str = "free_run"
    init_scale: float = 1.0
    minimizer: Minimizer = Minimizer()

    def __post_init__(self):
        _positive_int("MTJoint", "power", self.power)
        _non_negative("MTJoint", "alpha", self.alpha)
        _non_negative("MTJoint", "lam", self.lam)
        if self.space not in ("output", "activation"):
            raise ValueError(f"MTJoint.space must be 'output' or 'activation'; got "
                             f"{self.space!r}")
        if self.space == "activation" and self.power != 2:
            raise ValueError(f"MTJoint: space='activation' is the quadratic E_act; power must be "
                             f"2, got {self.power}")
        _check_init("MTJoint", self.init, self.init_scale)


@dataclasses.dataclass(frozen=True)
class MTAlternating:
    """Alternation (inferred, MAC-style): solve ``W`` exactly, then ``inner`` minimiser iterations
    on ``Xh`` with ``W`` fixed, on ``E_act`` (+ ridge). One iteration = one round.

    Attributes: ``lam``, ``alpha``, ``solver``, ``init``, ``init_scale`` as in :class:`MTVarpro`;
    ``inner`` iterations per round; ``minimizer``.
    """

    lam: float = 1e-3
    alpha: float = 0.0
    solver: str = "cholesky"
    inner: int = 10
    init: str = "free_run"
    init_scale: float = 1.0
    minimizer: Minimizer = Minimizer()

    def __post_init__(self):
        _non_negative("MTAlternating", "lam", self.lam)
        _non_negative("MTAlternating", "alpha", self.alpha)
        _positive_int("MTAlternating", "inner", self.inner)
        if self.solver not in SOLVERS:
            raise ValueError(f"MTAlternating.solver must be one of {SOLVERS}; got "
                             f"{self.solver!r}")
        _check_init("MTAlternating", self.init, self.init_scale)


@dataclasses.dataclass(frozen=True)
class MTShooting:
    """Segment-length-``K`` moving targets (multiple shooting; inferred generalisation): joint
    minimisation of :func:`~jaxpapers.moving_targets.shooting_loss` over ``W`` and the hidden
    targets at segment starts. ``segment=1`` is the quadratic output deficit, ``segment >= T``
    is BPTT."""

    segment: int = 10
    lam: float = 0.0
    init: str = "free_run"
    init_scale: float = 1.0
    minimizer: Minimizer = Minimizer()

    def __post_init__(self):
        _positive_int("MTShooting", "segment", self.segment)
        _non_negative("MTShooting", "lam", self.lam)
        _check_init("MTShooting", self.init, self.init_scale)


@dataclasses.dataclass(frozen=True)
class BPTT:
    """Back-propagation through time on ``1/2 sum_T (y_free - Y)^2`` from weights
    ``N(0, init_scale^2)`` (the same draw as the moving-targets trainers' initial weights for the
    same key), with L-BFGS or Adam (+ global-norm clipping)."""

    init_scale: float = 1.0
    minimizer: Minimizer = Minimizer()

    def __post_init__(self):
        _check_init("BPTT", "free_run", self.init_scale)


@dataclasses.dataclass(frozen=True)
class RandomSearch:
    """Random weight guessing (the control of Hochreiter & Schmidhuber, NIPS 9): ``batch``
    candidates ``W ~ U[-scale, scale]`` per iteration, each scored by its free-run error on the
    evaluation events; the best so far is kept."""

    scale: float = 10.0
    batch: int = 50

    def __post_init__(self):
        if not self.scale > 0:
            raise ValueError(f"RandomSearch.scale must be > 0; got {self.scale}")
        _positive_int("RandomSearch", "batch", self.batch)


@dataclasses.dataclass(frozen=True)
class Hybrid:
    """Moving targets, then BPTT from the moving-targets weights (inferred): ``first`` runs for
    at most ``fraction`` of the budget (less if it stalls or succeeds), ``second`` gets the rest."""

    first: MTVarpro | MTJoint | MTAlternating | MTShooting = MTVarpro()
    second: BPTT = BPTT()
    fraction: float = 0.5

    def __post_init__(self):
        if not isinstance(self.first, (MTVarpro, MTJoint, MTAlternating, MTShooting)):
            raise ValueError(f"Hybrid.first must be a moving-targets config; got "
                             f"{type(self.first).__name__}")
        if not isinstance(self.second, BPTT):
            raise ValueError(f"Hybrid.second must be BPTT; got {type(self.second).__name__}")
        if not 0 < self.fraction < 1:
            raise ValueError(f"Hybrid.fraction must be in (0, 1); got {self.fraction}")


class TrainState(NamedTuple):
    """One seed's training state; every leaf keeps its dtype from step to step."""

    opt: Any                     # the minimiser's MinState (random search: best error so far)
    weights: jax.Array           # [N, N] current network weights
    loss: jax.Array              # current objective value
    iteration: jax.Array         # int32
    evals: jax.Array             # int32 gradient evaluations used
    free_run_error: jax.Array    # at the last check (at init: on the training events)
    success: jax.Array           # bool
    evals_to_success: jax.Array  # int32, -1 until success
    restarts: jax.Array          # int32
    done: jax.Array              # bool


class TrainInfo(NamedTuple):
    loss: jax.Array
    evals: jax.Array             # int32 evaluations used by this step


class TrainSummary(NamedTuple):
    """What a run ended with (``summarize``)."""

    success: jax.Array
    evals: jax.Array
    evals_to_success: jax.Array
    free_run_error: jax.Array
    one_step_error: jax.Array
    max_abs_weight: jax.Array
    loss: jax.Array
    restarts: jax.Array


# -- objectives ------------------------------------------------------------------------------------

def _training_spec(spec: EventSpec, method) -> EventSpec:
    """With a target margin, target events become moving targets (hidden) of the trainer."""
    if isinstance(method, MTVarpro) and method.margin > 0:
        return EventSpec(jnp.where(spec.kind == TARGET, HIDDEN, spec.kind), spec.value)
    return spec


def _effective_targets(P, spec: EventSpec, method, activation):
    """The moving targets as the trainer's parameters ``P`` define them: with a margin, target
    slots hold a slack ``z`` and become ``f^{-1}(Y + margin tanh z)``."""
    if not (isinstance(method, MTVarpro) and method.margin > 0):
        return P
    _, f_inv, _ = activation_fns(activation)
    target = spec.kind == TARGET
    y = jnp.where(target, spec.value + method.margin * jnp.tanh(P), 0.5)
    return jnp.where(target, f_inv(y), P)


def _objective(spec: EventSpec, method, activation, weights=None):
    if isinstance(method, MTVarpro):
        train_spec = _training_spec(spec, method)
        return lambda P: reduced_act(_effective_targets(P, spec, method, activation), train_spec,
                                     method.lam, activation, method.solver, method.shared,
                                     True, method.alpha, method.noise)
    if isinstance(method, MTJoint):
        if method.space == "activation":
            data = lambda p: act_deficit(p["W"], p["Xh"], spec, activation, method.alpha)
        else:
            data = lambda p: out_deficit(p["W"], p["Xh"], spec, method.power, method.alpha,
                                         activation)
        return lambda p: data(p) + 0.5 * method.lam * jnp.sum(p["W"] ** 2)
    if isinstance(method, MTShooting):
        return lambda p: (shooting_loss(p["W"], p["Xh"], spec, method.segment, activation)
                          + 0.5 * method.lam * jnp.sum(p["W"] ** 2))
    if isinstance(method, MTAlternating):
        return lambda Xh: (act_deficit(weights, Xh, spec, activation, method.alpha)
                           + 0.5 * method.lam * jnp.sum(weights ** 2))
    if isinstance(method, BPTT):
        return lambda W: bptt_loss(W, spec, activation)
    raise ValueError(f"no objective for {type(method).__name__}")


def _weights_of(P, spec: EventSpec, method, activation):
    if isinstance(method, MTVarpro):
        return solve_events(_effective_targets(P, spec, method, activation),
                            _training_spec(spec, method), method.lam, activation, method.solver,
                            method.shared, method.alpha, method.noise)
    if isinstance(method, (MTJoint, MTShooting)):
        return P["W"]
    return P


def moving_targets_of(state: TrainState, spec: EventSpec, method, activation="logistic"):
    """The hidden activations ``[S, T, N]`` a state stands for: the moving targets of a
    moving-targets trainer; the free-run activations of the weights otherwise."""
    if isinstance(method, Hybrid):
        method = method.second
    if isinstance(method, MTVarpro):
        return _effective_targets(state.opt.params, spec, method, activation)
    if isinstance(method, (MTJoint, MTShooting)):
        return state.opt.params["Xh"]
    if isinstance(method, MTAlternating):
        return state.opt.params
    y = free_run(state.weights, spec, None, activation)
    return jnp.pad(preacts(state.weights, y), ((0, 0), (1, 0), (0, 0)))


# -- init ------------------------------------------------------------------------------------------

def _initial_weights(key, n: int, scale: float, dtype):
    """``N(0, scale^2)`` weights from the first half of ``key``: every trainer that starts from
    random weights (or from their free run) gets the same draw for the same key."""
    return scale * jax.random.normal(jax.random.split(key)[0], (n, n), dtype)


def _initial_targets(key, spec: EventSpec, init: str, scale: float, activation):
    """Initial moving targets (activations) ``[S, T, N]``; zero on non-hidden slots."""
    dtype = spec.value.dtype
    k_w, k_x = jax.random.split(key)
    s, t, n = spec.kind.shape
    if init == "free_run":
        W0 = _initial_weights(key, n, scale, dtype)
        y = free_run(W0, spec, None, activation)
        Xh = jnp.pad(preacts(W0, y), ((0, 0), (1, 0), (0, 0)))
    elif init == "normal":
        Xh = scale * jax.random.normal(k_x, (s, t, n), dtype)
    else:
        const = scale * jax.random.normal(k_w, (s, 1, n), dtype)
        Xh = const + 0.1 * jax.random.normal(k_x, (s, t, n), dtype)
    return jnp.where(spec.kind == HIDDEN, Xh, 0.0)


def _new_opt(key, spec: EventSpec, method, activation, weights=None, targets=None):
    """``(opt, weights, loss, evals)`` at the start of a run (or restart)."""
    dtype = spec.value.dtype
    n = spec.kind.shape[-1]
    if isinstance(method, RandomSearch):
        W = jnp.zeros((n, n), dtype)
        big = jnp.asarray(jnp.finfo(dtype).max, dtype)    # no candidate yet
        return big, W, big, jnp.int32(0)
    if isinstance(method, BPTT):
        W = _initial_weights(key, n, method.init_scale, dtype) if weights is None else weights
        opt = minimize_init(_objective(spec, method, activation), W, method.minimizer)
        return opt, W, opt.value, opt.evals
    if targets is None:
        Xh = _initial_targets(key, spec, method.init, method.init_scale, activation)
    else:
        checks.require(jnp.shape(targets) == spec.kind.shape,
                       f"init: targets must have the events' shape {spec.kind.shape}; got "
                       f"{jnp.shape(targets)}")
        Xh = jnp.where(spec.kind == HIDDEN, jnp.asarray(targets, dtype), 0.0)
    if isinstance(method, MTVarpro):
        opt = minimize_init(_objective(spec, method, activation), Xh, method.minimizer)
        return opt, _weights_of(Xh, spec, method, activation), opt.value, opt.evals
    if isinstance(method, MTAlternating):
        W = solve_events(Xh, spec, method.lam, activation, method.solver, False, method.alpha)
        opt = minimize_init(_objective(spec, method, activation, W), Xh, method.minimizer)
        return opt, W, opt.value, opt.evals
    W0 = _initial_weights(key, n, method.init_scale, dtype) if weights is None else weights
    params = {"W": W0, "Xh": Xh}
    opt = minimize_init(_objective(spec, method, activation), params, method.minimizer)
    return opt, W0, opt.value, opt.evals


def _activation_space(method) -> bool:
    """Trainers whose error fits target activations (finite targets only)."""
    return (isinstance(method, (MTVarpro, MTAlternating))
            or (isinstance(method, MTJoint) and method.space == "activation"))


def _check_method(method) -> None:
    if not isinstance(method, (MTVarpro, MTJoint, MTAlternating, MTShooting, BPTT,
                               RandomSearch)):
        raise ValueError(f"method must be a trainer config (MTVarpro, MTJoint, MTAlternating, "
                         f"MTShooting, BPTT, RandomSearch); got {type(method).__name__}"
                         + (" (a Hybrid runs through train())" if isinstance(method, Hybrid)
                            else ""))


def init(key, spec: EventSpec, method, *, weights=None, targets=None, evals=0,
         activation: str = "logistic") -> TrainState:
    """The initial state of one seed (one evaluation of the objective).

    Args:
      key: PRNG key of the random initial weights / moving targets.
      spec: the training events.
      method: a trainer config.
      weights: start from these weights (BPTT, MTJoint, MTShooting; the hybrid's second phase).
      targets: start the moving targets here (``[S, T, N]`` activations, read on hidden events).
      evals: evaluations already spent (carried into the count).

    Raises:
      ValueError: a concrete ``spec`` with a kind outside ``{0, 1, 2}``, a non-finite datum or
        a value outside the range of ``f`` (:func:`validate_events`); an activation-space
        trainer (``MTVarpro``, ``MTAlternating``, ``MTJoint(space="activation")``) given target
        outputs on the boundary of the range, whose activations are infinite.
    """
    _check_method(method)
    validate_events(spec, activation)
    if _activation_space(method):
        require_finite_targets(spec, activation, f"{type(method).__name__} (activation space)")
    dtype = spec.value.dtype
    opt, W, loss, used = _new_opt(key, spec, method, activation, weights, targets)
    err = free_run_error(W, spec, None, activation).astype(dtype)
    return TrainState(opt, W, loss, jnp.int32(0), jnp.int32(evals) + used, err,
                      jnp.asarray(False), jnp.int32(-1), jnp.int32(0), jnp.asarray(False))


# -- step ------------------------------------------------------------------------------------------

def _select(flag, a, b):
    return jax.tree.map(lambda u, v: jnp.where(flag, u, v), a, b)


def _advance(key, state: TrainState, spec, method, budget: Budget, activation):
    """``(opt, weights, loss, evals used)`` after one iteration."""
    remaining = budget.evaluations - state.evals
    if isinstance(method, RandomSearch):
        n = spec.kind.shape[-1]
        dtype = spec.value.dtype
        cands = jax.random.uniform(key, (method.batch, n, n), dtype, -method.scale,
                                   method.scale)
        errors = jax.vmap(lambda W: free_run_error(W, spec, None, activation))(cands)
        take = jnp.arange(method.batch) < remaining     # never beyond the budget
        errors = jnp.where(take, errors, jnp.inf)
        best = jnp.argmin(errors)
        better = errors[best] < state.opt
        W = jnp.where(better, cands[best], state.weights)
        err = jnp.minimum(errors[best], state.opt)
        return err, W, err, jnp.minimum(method.batch, remaining).astype(jnp.int32)
    if isinstance(method, MTAlternating):
        start = state.opt.params
        W = solve_events(start, spec, method.lam, activation, method.solver, False, method.alpha)
        fun = _objective(spec, method, activation, W)
        opt = minimize_init(fun, start, method.minimizer)    # the solve and one evaluation

        def inner(_, o):
            left = remaining - o.evals
            new, _ = minimize_step(fun, o, method.minimizer, left)
            return _select((left > 0) & ~o.stalled, new, o)

        opt = jax.lax.fori_loop(0, method.inner, inner, opt)
        still = jnp.all(jnp.stack([jnp.all(a == b) for a, b in
                                   zip(jax.tree.leaves(opt.params), jax.tree.leaves(start),
                                       strict=True)]))
        return opt._replace(stalled=still), W, opt.value, opt.evals
    fun = _objective(spec, method, activation)
    opt, info = minimize_step(fun, state.opt, method.minimizer, remaining)
    # variable projection: W*(Xh) is solved when a check needs it (evaluate), not every step
    W = state.weights if isinstance(method, MTVarpro) else _weights_of(opt.params, spec, method,
                                                                        activation)
    return opt, W, opt.value, info.evals


def step(key, state: TrainState, spec: EventSpec, method, budget: Budget = Budget(), *,
         activation: str = "logistic") -> tuple[TrainState, TrainInfo]:
    """One iteration of ``method``; a finished state (done, or budget spent) comes back
    unchanged with zero evaluations in its info."""
    _check_method(method)
    stalled = getattr(state.opt, "stalled", jnp.asarray(False))
    active = ~state.done & (state.evals < budget.evaluations) & ~stalled

    def advance(state):
        opt, W, loss, used = _advance(key, state, spec, method, budget, activation)
        return state._replace(opt=opt, weights=W, loss=loss, iteration=state.iteration + 1,
                              evals=state.evals + used), used

    # a real branch for one seed (no wasted evaluations); under vmap it becomes a select
    new, used = jax.lax.cond(active, advance, lambda st: (st, jnp.int32(0)), state)
    return new, TrainInfo(new.loss, used.astype(jnp.int32))


def evaluate(key, state: TrainState, spec: EventSpec, method, budget: Budget = Budget(), *,
             eval_spec: EventSpec | None = None, activation: str = "logistic") -> TrainState:
    """The free-run check: records the error, success (below ``budget.threshold`` on
    ``eval_spec``, default ``spec``) and the evaluations it took; marks the seed done when it
    succeeded (``stop_on_success``), spent its budget, or stalled (unless ``restarts``: then a
    stalled, unsuccessful seed restarts from ``key``)."""
    eval_spec = spec if eval_spec is None else eval_spec
    if isinstance(method, MTVarpro):
        state = state._replace(weights=_weights_of(state.opt.params, spec, method, activation))
    err = free_run_error(state.weights, eval_spec, None, activation)
    ok = budget.succeeded(err)
    first = ok & ~state.success
    evals_to_success = jnp.where(first, state.evals, state.evals_to_success)
    success = state.success | ok
    stalled = getattr(state.opt, "stalled", jnp.asarray(False))
    spent = state.evals >= budget.evaluations
    finished = (success & budget.stop_on_success) | spent
    if budget.restarts and not isinstance(method, RandomSearch):
        restart = stalled & ~finished & ~state.done
        opt, W, loss, used = _new_opt(key, spec, method, activation)
        fresh = state._replace(opt=opt, weights=W, loss=loss, evals=state.evals + used,
                               restarts=state.restarts + 1)
        state = _select(restart, fresh, state)
    else:
        finished = finished | stalled
    done = state.done | finished
    return state._replace(free_run_error=err.astype(state.free_run_error.dtype), success=success,
                          evals_to_success=evals_to_success, done=done)


def block(key, state: TrainState, spec: EventSpec, method, budget: Budget, eval_spec=None,
          activation: str = "logistic") -> tuple[TrainState, TrainInfo]:
    """``budget.check_every`` steps, then one :func:`evaluate` (the unit of ``train`` and of the
    runner's checkpointed loop). Step ``i`` uses ``fold_in(key, i)``."""

    def one(i, carry):
        st, used = carry
        st, info = step(jax.random.fold_in(key, i), st, spec, method, budget,
                        activation=activation)
        return st, used + info.evals

    state, used = jax.lax.fori_loop(0, budget.check_every, one, (state, jnp.int32(0)))
    state = evaluate(jax.random.fold_in(key, budget.check_every), state, spec, method, budget,
                     eval_spec=eval_spec, activation=activation)
    return state, TrainInfo(state.loss, used)


def _train_one(key, spec, method, budget, eval_spec, activation, state):
    def cond(carry):
        return ~carry[1].done

    def body(carry):
        i, st = carry
        st, _ = block(jax.random.fold_in(key, i), st, spec, method, budget, eval_spec,
                      activation)
        return i + 1, st

    return jax.lax.while_loop(cond, body, (jnp.int32(0), state))[1]


def train(key, spec: EventSpec, method, budget: Budget = Budget(), *,
          eval_spec: EventSpec | None = None, activation: str = "logistic") -> TrainState:
    """Train one seed until success (``stop_on_success``), a stall, or the budget is spent.

    ``key`` is split into the initialisation key and the loop key; block ``b`` of the loop uses
    ``fold_in(loop_key, b)``. A :class:`Hybrid` runs its first trainer on
    ``fraction * evaluations``, then BPTT from the first trainer's weights on the rest (a seed
    that already succeeded stays done).
    """
    k_init, k_loop = jax.random.split(key)
    if isinstance(method, Hybrid):
        first_budget = dataclasses.replace(
            budget, evaluations=max(1, int(method.fraction * budget.evaluations)))
        state = init(k_init, spec, method.first, activation=activation)
        state = _train_one(k_loop, spec, method.first, first_budget, eval_spec, activation,
                           state)
        return hybrid_continue(jax.random.fold_in(k_loop, 2**31 - 1), state, spec, method, budget,
                               eval_spec=eval_spec, activation=activation)
    state = init(k_init, spec, method, activation=activation)
    return _train_one(k_loop, spec, method, budget, eval_spec, activation, state)


def hybrid_start(state: TrainState, spec: EventSpec, method: Hybrid, budget: Budget, *,
                 activation: str = "logistic") -> TrainState:
    """The BPTT state that continues a hybrid's finished first phase: BPTT from its weights,
    with its evaluations, success and (if it succeeded) done flag carried over."""
    second = init(jax.random.key(0), spec, method.second, weights=state.weights,
                  evals=state.evals, activation=activation)
    done = state.success & budget.stop_on_success
    return second._replace(success=state.success, evals_to_success=state.evals_to_success,
                           free_run_error=state.free_run_error, done=done)


def hybrid_continue(key, state, spec, method: Hybrid, budget: Budget, *, eval_spec=None,
                    activation="logistic") -> TrainState:
    second = hybrid_start(state, spec, method, budget, activation=activation)
    return _train_one(key, spec, method.second, budget, eval_spec, activation, second)


def summarize(state: TrainState, spec: EventSpec, method, *, eval_spec: EventSpec | None = None,
              activation: str = "logistic") -> TrainSummary:
    """Free-run and one-step errors, the largest weight and the counts of a finished state."""
    eval_spec = spec if eval_spec is None else eval_spec
    Xh = moving_targets_of(state, spec, method, activation)
    W = state.weights
    return TrainSummary(
        success=state.success,
        evals=state.evals,
        evals_to_success=state.evals_to_success,
        free_run_error=free_run_error(W, eval_spec, None, activation),
        one_step_error=one_step_error(W, spec, jnp.where(spec.kind == HIDDEN, Xh, 0.0),
                                      activation),
        max_abs_weight=jnp.max(jnp.abs(W)),
        loss=state.loss,
        restarts=state.restarts,
    )


def compose_targets(state, spec, method, activation="logistic"):
    """``compose(spec, moving_targets_of(...))``: outputs and activations of every event."""
    return compose(spec, moving_targets_of(state, spec, method, activation), activation)


__all__ += ["block", "hybrid_start", "hybrid_continue", "moving_targets_of", "compose_targets"]
