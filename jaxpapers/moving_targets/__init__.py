"""Moving targets (Rohwer, "The 'Moving Targets' Training Algorithm", NIPS 2, 1990): train a
fully connected recurrent network by optimising its hidden-state trajectories.

Every hidden node at every step of every sequence gets a free "moving target"; the error is a
sum of one-step mismatches, so no gradient is chained through time. In activation space the error
is quadratic in the weights, which are solved exactly inside every evaluation (variable
projection), leaving a search over hidden trajectories alone.

Public API::

    # events and the network
    EventSpec(kind [S,T,N] int32, value [S,T,N]); INPUT, TARGET, HIDDEN
    make_events(input_mask, target_mask, values, activation=, space="output"|"activation")
    validate_events(spec), activation_fns(name) -> (f, f_inv, f_prime)
    compose(spec, Xh) -> (Yall, Xall); free_run(W, spec) -> y [S,T,N]; one_step(W, spec, Xh)
    free_run_error(W, spec), one_step_error(W, spec, Xh)
    # errors and solves (spec section 5 names)
    act_deficit(W, Xh, spec), out_deficit(W, Xh, spec, power=4, alpha=0.)
    solve_weights(Yall, Xall, mask, lam, method="cholesky"|"lstsq"), solve_events(Xh, spec, lam)
    reduced_act(Xh, spec, lam), reduced_act_grad(Xh, spec, lam)   # value; hand envelope gradient
    bptt_loss(W, spec), shooting_loss(W, Xh, spec, segment)
    # trainers (one seed per call; vmap over keys), one budget in gradient evaluations
    MTVarpro, MTJoint, MTAlternating, MTShooting, BPTT, RandomSearch, Hybrid; Minimizer; Budget
    init(key, spec, method) -> TrainState; step(key, state, spec, method, budget)
    evaluate(key, state, spec, method, budget); train(key, spec, method, budget) -> TrainState
    summarize(state, spec, method) -> TrainSummary; moving_targets_of(state, spec, method)
    curvature_avoidance() (an optax transform)
    # tasks
    delay_task(D, hidden), limit_cycle_task(), parity_task(), latch_weights()

Example (10 seeds of MT-varpro on the delay task, in your own jitted code)::

    spec = delay_task(10, hidden=3)
    budget = Budget(evaluations=2000)
    run = jax.jit(jax.vmap(lambda k: summarize(train(k, spec, MTVarpro(), budget), spec,
                                               MTVarpro())))
    out = run(jax.random.split(jax.random.key(0), 10))      # out.success, out.evals_to_success

Float64 (``jax.enable_x64``) is advised for training: in float32 the Wolfe line search stalls
early on these problems.

Bad input (the rule of every function here): a wrong shape, dtype, key or setting raises
``ValueError`` naming the argument, at call or trace time. A bad value (a kind outside
``{0, 1, 2}``, a NaN/inf value, an input or target outside the range of ``f``, negative ``lam``)
raises eagerly (:func:`validate_events`); under ``jit`` every error, loss, solve and trajectory
computed from it is NaN, so a training run never reports success on it.
"""

from jaxpapers.moving_targets._events import (
    HIDDEN,
    INPUT,
    TARGET,
    EventSpec,
    activation_fns,
    make_events,
    validate_events,
)
from jaxpapers.moving_targets._losses import (
    act_deficit,
    bptt_loss,
    out_deficit,
    reduced_act,
    reduced_act_grad,
    shooting_loss,
    solve_events,
    solve_weights,
)
from jaxpapers.moving_targets._model import (
    compose,
    free_run,
    free_run_error,
    one_step,
    one_step_error,
)
from jaxpapers.moving_targets._optim import Minimizer, curvature_avoidance
from jaxpapers.moving_targets._tasks import (
    delay_task,
    latch_weights,
    limit_cycle_task,
    parity_task,
)
from jaxpapers.moving_targets._train import (
    BPTT,
    Budget,
    Hybrid,
    MTAlternating,
    MTJoint,
    MTShooting,
    MTVarpro,
    RandomSearch,
    TrainState,
    TrainSummary,
    evaluate,
    init,
    moving_targets_of,
    step,
    summarize,
    train,
)

__all__ = [
    "BPTT",
    "HIDDEN",
    "INPUT",
    "TARGET",
    "Budget",
    "EventSpec",
    "Hybrid",
    "MTAlternating",
    "MTJoint",
    "MTShooting",
    "MTVarpro",
    "Minimizer",
    "RandomSearch",
    "TrainState",
    "TrainSummary",
    "act_deficit",
    "activation_fns",
    "bptt_loss",
    "compose",
    "curvature_avoidance",
    "delay_task",
    "evaluate",
    "free_run",
    "free_run_error",
    "init",
    "latch_weights",
    "limit_cycle_task",
    "make_events",
    "moving_targets_of",
    "one_step",
    "one_step_error",
    "out_deficit",
    "parity_task",
    "reduced_act",
    "reduced_act_grad",
    "shooting_loss",
    "solve_events",
    "solve_weights",
    "step",
    "summarize",
    "train",
    "validate_events",
]
