"""The BO loop: rounds inside ``lax.while_loop`` on fixed-shape, bucketed buffers.

One run of UCB-CVS draws the sample matrix ``W`` (and a separate ``W_eval`` for regret) once, takes
``num_init`` free uniform points, then repeats: condition the GP, maximise the acquisition per
control set, select a set with the :class:`~jaxpapers.bocvs.Policy`, stop if its cost no longer fits
the budget (no fallback to a cheaper set), else play it with fresh draws of the uncontrolled
variables, observe, pay.

Buffers: observations live in a buffer of ``B`` rows; the run walks through ``config.buckets``
(``B_0 < B_1 < ...``), one ``while_loop`` per bucket, so each bucket compiles once and early rounds
do not pay for the largest buffer. The whole run is one traceable function: ``jax.vmap`` it over
seeds and ``jax.jit`` it in the caller.

Faults never lose the history: the run stops with a status code (see :data:`STATUS`) and everything
logged before stays in :class:`History`; :func:`raise_for_status` turns a fault into a
:class:`BOError` that carries the history.

Shapes: ``T = buckets[-1] - num_init`` log slots, ``m`` sets, ``d`` variables.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxpapers._src import checks
from jaxpapers._src.threefry import check_key
from jaxpapers.bocvs._acquisition import (
    OptimizerConfig,
    assemble,
    expected_ucb,
    maximize_per_control_set,
    raw_candidates,
    rff_evaluate,
    rff_posterior_sample,
)
from jaxpapers.bocvs._common import as_optimizer_config
from jaxpapers.bocvs._newton import closed_form_hooks
from jaxpapers.bocvs._policy import Policy, choose
from jaxpapers.bocvs._problems import Problem, sample_inputs
from jaxpapers.gp import condition, fit_hypers, gp_params, ucb

__all__ = [
    "BOConfig",
    "ProblemSpec",
    "problem_spec",
    "History",
    "run_bo",
    "BOState",
    "BOInfo",
    "init",
    "step",
    "history",
    "STATUS",
    "BOError",
    "raise_for_status",
]

(RUNNING, BUDGET_EXHAUSTED, NOT_POSITIVE_DEFINITE, NAN_OBSERVATION, BUFFER_FULL, NAN_ACQUISITION,
 INVALID_INPUT, NO_CONTROL_SET) = range(8)
STATUS = {
    RUNNING: "running",
    BUDGET_EXHAUSTED: "budget exhausted (normal end)",
    NOT_POSITIVE_DEFINITE: "kernel matrix not positive definite even with the largest jitter",
    NAN_OBSERVATION: "observation is NaN or infinite",
    BUFFER_FULL: "observation buffer full (raise the last bucket size)",
    NAN_ACQUISITION: "acquisition value of the chosen control set is NaN",
    INVALID_INPUT: "invalid problem spec (a NaN, infinite or out-of-range budget, cost, scale, "
                   "noise_sd, lengthscale or mask); no round was played",
    NO_CONTROL_SET: "no control set could be selected (every acquisition value NaN)",
}


@dataclasses.dataclass(frozen=True)
class BOConfig:
    """Static settings of a run (defaults: accelerator-scale values close to the paper's).

    Attributes:
      acquisition: ``"ucb"`` (expected UCB; UCB-PSQ, UCB-CVS, ``ETC-*``), ``"ts"`` (TS-PSQ with
        random Fourier features) or ``"ei"`` (expected improvement of the set's averaged value,
        for EI-PSQ per cost: ``mean_s max(0, mean_n f_s([x^i, w_n]) - max_obs f_s)`` over
        ``num_ei_samples`` posterior samples ``f_s``; the reference code draws them jointly over
        the finite point set by Sobol QMC, here they are random-Fourier-feature posterior samples,
        so the function is smooth in ``x^i``).
      beta: UCB weight on sigma (the paper: 2, multiplying sigma).
      num_samples: rows ``N`` of the fixed sample matrix ``W``.
      num_eval_samples: rows of ``W_eval`` used to evaluate ``F_i`` for regret.
      num_init: free uniform initial points.
      optimizer: :class:`OptimizerConfig` of the acquisition maximiser.
      buckets: increasing buffer sizes; ``buckets[-1] - num_init`` bounds the number of rounds.
      kernel: ``"se"`` or ``"matern52"``.
      signal_variance: prior ``s^2``.
      noise_variance: GP noise ``lambda`` (the paper: 1e-4, the true noise variance).
      jitter: first Cholesky jitter (escalated x10 up to 6 times).
      num_features: random Fourier features for TS and EI.
      num_ei_samples: posterior samples of the EI acquisition (the reference: 32).
      fit_steps: ``0`` keeps the hyper-parameters fixed (the paper's setting: lengthscale from the
        problem, ``signal_variance``, ``noise_variance``); ``k > 0`` refits the lengthscale and
        signal variance before every round by maximising the log marginal likelihood of the data
        so far (:func:`jaxpapers.gp.fit_hypers`, ``k`` Adam steps in log space, starting from
        those fixed values; the noise variance stays known).
      fit_restarts: vmapped restarts of that fit.
    """

    acquisition: str = "ucb"
    beta: float = 2.0
    num_samples: int = 1024
    num_eval_samples: int = 4096
    num_init: int = 5
    optimizer: OptimizerConfig = OptimizerConfig()
    buckets: tuple[int, ...] = (16, 32, 64, 128, 256, 512)
    kernel: str = "se"
    signal_variance: float = 1.0
    noise_variance: float = 1e-4
    jitter: float = 1e-8
    num_features: int = 1024
    num_ei_samples: int = 32
    fit_steps: int = 0
    fit_restarts: int = 2

    def __post_init__(self):
        if self.acquisition not in ("ucb", "ts", "ei"):
            raise ValueError(f"acquisition must be 'ucb', 'ts' or 'ei'; got "
                             f"{self.acquisition!r}")
        if self.acquisition in ("ts", "ei") and self.kernel != "se":
            raise ValueError(f"acquisition={self.acquisition!r} uses SE random Fourier features; "
                             "set kernel='se'")
        for name in ("num_samples", "num_eval_samples", "num_features", "fit_restarts",
                     "num_ei_samples"):
            checks.require_positive_int(getattr(self, name), name)
        if isinstance(self.fit_steps, bool) or not isinstance(self.fit_steps, int) \
                or self.fit_steps < 0:
            raise ValueError(f"fit_steps must be a non-negative int; got {self.fit_steps!r}")
        if isinstance(self.num_init, bool) or not isinstance(self.num_init, int) \
                or self.num_init < 0:
            raise ValueError(f"num_init must be a non-negative int; got {self.num_init!r}")
        b = tuple(self.buckets)
        if not b or any(not isinstance(v, int) or v <= 0 for v in b) or list(b) != sorted(set(b)):
            raise ValueError(f"buckets must be strictly increasing positive ints; got {b}")
        if b[-1] <= self.num_init:
            raise ValueError(f"the last bucket ({b[-1]}) must exceed num_init ({self.num_init})")
        if not self.beta >= 0:
            raise ValueError(f"beta must be >= 0; got {self.beta}")
        for name in ("signal_variance", "noise_variance"):
            if not 0 < getattr(self, name) < float("inf"):
                raise ValueError(f"{name} must be finite and > 0; got {getattr(self, name)}")
        if not 0 <= self.jitter < float("inf"):
            raise ValueError(f"jitter must be finite and >= 0; got {self.jitter}")
        object.__setattr__(self, "optimizer", as_optimizer_config(self.optimizer))

    @property
    def max_rounds(self) -> int:
        return self.buckets[-1] - self.num_init

    def replace(self, **changes) -> BOConfig:
        return dataclasses.replace(self, **changes)


class ProblemSpec(NamedTuple):
    """The array part of a :class:`Problem` (traceable, so one compile serves many problems).

    Attributes:
      masks: ``[m, d]`` 0/1 control-set masks.
      costs: ``[m]`` costs.
      scales: ``[d]`` truncated-normal scales of the variables.
      budget: scalar budget ``C``.
      noise_sd: scalar observation-noise sd.
      lengthscale: ``[d]`` GP length-scales.
    """

    masks: jax.Array
    costs: jax.Array
    scales: jax.Array
    budget: jax.Array
    noise_sd: jax.Array
    lengthscale: jax.Array


def problem_spec(problem: Problem, dtype=None) -> ProblemSpec:
    """The arrays of ``problem`` that :func:`run_bo` traces over.

    Args:
      problem: a :class:`Problem`.
      dtype: a floating dtype (default: JAX's default float).

    Returns:
      A :class:`ProblemSpec`: masks ``[m, d]``, costs ``[m]``, scales ``[d]``, budget, noise
      standard deviation and length-scales ``[d]``, all of ``dtype``.

    Raises:
      ValueError: ``dtype`` is not floating.
    """
    dtype = jnp.result_type(float) if dtype is None else dtype
    checks.require(jnp.issubdtype(dtype, jnp.floating),
                   f"dtype must be a floating dtype; got {jnp.dtype(dtype).name}")
    return ProblemSpec(jnp.asarray(problem.masks, dtype), jnp.asarray(problem.costs, dtype),
                       jnp.asarray(problem.scales, dtype), jnp.asarray(problem.budget, dtype),
                       jnp.asarray(problem.noise_sd, dtype),
                       jnp.full((problem.dim,), problem.lengthscale, dtype))


class History(NamedTuple):
    """Everything a run did. Per-round arrays have ``T`` slots; unused slots hold -1 / NaN.

    Attributes:
      set_index: ``[T]`` int32 control set played (-1: no round).
      stage: ``[T]`` int32 ETC stage of the round (``S`` = final phase).
      query: ``[T, d]`` control query ``x_hat`` of the played set (uncontrolled entries arbitrary).
      x: ``[T, d]`` realised full input.
      y: ``[T]`` noisy observation.
      cost: ``[T]`` cost paid.
      spent: ``[T]`` cumulative spend after the round.
      value: ``[T]`` ``F_i(x_hat)`` estimated with ``W_eval`` (the regret target).
      acq_value: ``[T]`` acquisition value ``v_i`` of the played set.
      x_init: ``[num_init, d]`` free initial inputs; y_init: ``[num_init]``.
      num_rounds: int32 paid rounds ``T(C)``.
      total_spent: scalar.
      status: int32 code, see :data:`STATUS`.
      last_choice: int32 set chosen in the final (unpaid) round, -1 if none.
    """

    set_index: jax.Array
    stage: jax.Array
    query: jax.Array
    x: jax.Array
    y: jax.Array
    cost: jax.Array
    spent: jax.Array
    value: jax.Array
    acq_value: jax.Array
    x_init: jax.Array
    y_init: jax.Array
    num_rounds: jax.Array
    total_spent: jax.Array
    status: jax.Array
    last_choice: jax.Array


class _State(NamedTuple):
    key: jax.Array
    xbuf: jax.Array
    ybuf: jax.Array
    n: jax.Array
    counts: jax.Array  # [m] int32 plays per set, spent = counts @ costs
    plays: jax.Array
    status: jax.Array
    last_choice: jax.Array
    log: History


class BOState(NamedTuple):
    """A BO run between rounds (:func:`init`, :func:`step`).

    Attributes:
      key: PRNG key of the next round.
      xbuf: ``[capacity, d]`` observed inputs (the first ``n`` rows are used).
      ybuf: ``[capacity]`` observations.
      n: int32 observations so far (``num_init`` free ones included).
      counts: ``[m]`` int32 plays per control set (``spent = counts @ costs``).
      plays: int32 plays per exploration stage of the policy.
      status: int32 code, see :data:`STATUS` (0 while running).
      last_choice: int32 set chosen in the final (unpaid) round, -1 if none.
      log: the :class:`History` so far (its totals are filled in by :func:`history`).
      w: ``[N, d]`` samples of the uncontrolled variables (common to every round).
      w_eval: ``[N_eval, d]`` samples for the regret's ``F_i(x_hat)``.
    """

    key: jax.Array
    xbuf: jax.Array
    ybuf: jax.Array
    n: jax.Array
    counts: jax.Array
    plays: jax.Array
    status: jax.Array
    last_choice: jax.Array
    log: History
    w: jax.Array
    w_eval: jax.Array


class BOInfo(NamedTuple):
    """What one :func:`step` did.

    Attributes:
      set_index: int32 control set played (-1: no round was paid).
      x: ``[d]`` realised input (NaN when no round was paid).
      y: noisy observation (NaN when none).
      cost: cost paid (NaN when none).
      accepted: bool, whether a round was paid and observed.
      status: int32 status after the step (see :data:`STATUS`).
    """

    set_index: jax.Array
    x: jax.Array
    y: jax.Array
    cost: jax.Array
    accepted: jax.Array
    status: jax.Array


class BOError(checks.InvalidInputError):
    """A run stopped on a fault; ``.history`` holds everything done before it.

    Raised by :func:`raise_for_status`; a subclass of :class:`jaxpapers.InvalidInputError`
    (so of ``ValueError``).

    Args:
      message: what went wrong, per run.
      history: the :class:`History` up to the fault.
    """

    def __init__(self, message: str, history: History):
        super().__init__(message)
        self.history = history


def _status_text(code: int) -> str:
    return STATUS.get(code, f"unknown status code {code} (not a run_bo history?)")


def raise_for_status(history: History) -> History:
    """Return ``history`` if every run ended normally, else raise :class:`BOError`.

    Args:
      history: a :class:`History` of one run or of a batch (leading seed axis).

    Returns:
      ``history`` itself, when every run's status is running or budget exhausted.

    Raises:
      BOError: a run stopped on a fault (:data:`STATUS`); the message lists the faulty runs
        (up to 5) and ``.history`` holds everything done before the fault.
    """
    status = np.atleast_1d(np.asarray(history.status))
    bad = np.flatnonzero((status != BUDGET_EXHAUSTED) & (status != RUNNING))
    if bad.size:
        rounds = np.atleast_1d(np.asarray(history.num_rounds))
        detail = "; ".join(f"run {i}: {_status_text(int(status[i]))} after {int(rounds[i])} "
                           "rounds" for i in bad[:5])
        raise BOError(f"BO run stopped on a fault ({detail}); the history up to the fault is "
                      "attached as .history", history)
    return history


def _acquisition_fn(key, config: BOConfig, spec: ProblemSpec, xbuf, ybuf, mask, w, masks=None):
    """``value_fn(mask_row, x)`` for this round, ``point_fn``, the GP's ``ok`` flag and the
    optional fast scorer and derivatives for :func:`maximize_per_control_set`."""
    params = gp_params(spec.lengthscale, config.signal_variance, config.noise_variance,
                       dtype=xbuf.dtype)
    if config.fit_steps:
        params = fit_hypers(jax.random.fold_in(key, 1), params, xbuf, ybuf, mask,
                            kernel=config.kernel, num_restarts=config.fit_restarts,
                            num_steps=config.fit_steps, fit_noise=False).params
    if config.acquisition == "ucb":
        post = condition(params, xbuf, ybuf, mask, kernel=config.kernel, jitter=config.jitter,
                         with_inverse=True)
        beta = jnp.asarray(config.beta, xbuf.dtype)
        point_fn = lambda z: ucb(post, z, beta)
        value_fn = lambda mask_row, x: expected_ucb(post, mask_row, x, w, beta)
        extras = {}
        if config.optimizer.method == "newton" and config.kernel == "se":
            extras = closed_form_hooks(post, masks, w, beta, config.optimizer)
        return value_fn, point_fn, post.ok, extras
    if config.acquisition == "ei":
        samples = jax.vmap(lambda k: rff_posterior_sample(k, params, xbuf, ybuf, mask,
                                                          config.num_features))(
            jax.random.split(key, config.num_ei_samples))
        values_at = jax.vmap(rff_evaluate, in_axes=(0, None))           # [S, P]
        best = jnp.max(jnp.where(mask[None, :], values_at(samples, xbuf), -jnp.inf), axis=1)
        ok = jnp.all(jnp.isfinite(samples.theta))

        def improvement(values):                                         # [S, ...] -> [...]
            return jnp.mean(jnp.maximum(values - best.reshape((-1,) + (1,) * (values.ndim - 1)),
                                        0.0), axis=0)

        # pointwise EI bounds the set's EI from above (relu is convex), so the full set's
        # value still dominates the partial sets' (see maximize_per_control_set)
        point_fn = lambda z: improvement(values_at(samples, z))
        value_fn = lambda mask_row, x: improvement(
            jnp.mean(values_at(samples, assemble(mask_row, x, w)), axis=1))
        return value_fn, point_fn, ok, {}
    sample = rff_posterior_sample(key, params, xbuf, ybuf, mask, config.num_features)
    ok = jnp.all(jnp.isfinite(sample.theta))
    point_fn = lambda z: rff_evaluate(sample, z)
    return (lambda mask_row, x: jnp.mean(point_fn(assemble(mask_row, x, w)))), point_fn, ok, {}


def _exploration_phases(policy: Policy, masks, num_init: int):
    """``[(stop, sets)]``: up to ``n = stop`` observations the rounds need only ``sets``.

    While exploration stage ``s`` is active, :func:`choose` picks within stage ``s``'s group, so
    the other sets' maxima are never used. Each round of a run (until it stops) adds one
    observation and one play, so stage ``s`` covers the observation counts ``num_init + T_s <=
    n < num_init + T_{s+1}`` (``T_s``: the targets of the earlier stages), known before the run
    when the policy and masks are concrete. Those rounds then optimise only the group's sets:
    with 3 of 7 sets (ETC-Ada on Hartmann-3) the acquisition costs about 3/7 as much. The sets
    get the same candidates as in the full optimisation, so their maxima agree with it up to
    rounding (batches of another size). A group holding a full set keeps all sets (the full
    set's value also scores the other sets' maximisers), and traced policies or masks (a vmap
    over methods) keep all sets in every round. The last entry, ``(None, None)``, is the rest
    of the run with all sets.
    """
    if not checks.is_concrete(policy.stage_of_set, policy.targets, masks):
        return [(None, None)]
    stage_of_set = np.asarray(policy.stage_of_set)
    full = np.all(np.asarray(masks) == 1, axis=1)
    phases, rounds = [], 0
    for stage, target in enumerate(np.asarray(policy.targets).tolist()):
        group = tuple(np.flatnonzero(stage_of_set == stage).tolist())
        if target == 0:
            continue
        rounds += target
        keep_all = len(group) == len(full) or bool(full[list(group)].any())
        phases.append((num_init + rounds, None if keep_all else group))
    phases.append((None, None))
    return phases


def _spec_valid(spec: ProblemSpec):
    """Scalar bool: every value of ``spec`` in its range (see :class:`ProblemSpec`)."""
    def finite(a, low, strict):
        a = jnp.asarray(a)
        return jnp.all(jnp.isfinite(a) & ((a > low) if strict else (a >= low)))
    masks = jnp.asarray(spec.masks)
    return (jnp.all((masks == 0) | (masks == 1)) & finite(spec.costs, 0, True)
            & finite(spec.scales, 0, True) & finite(spec.budget, 0, False)
            & finite(spec.noise_sd, 0, False) & finite(spec.lengthscale, 0, True))


def _check_types(spec, config) -> None:
    """``config`` a :class:`BOConfig` and ``spec`` a :class:`ProblemSpec`, else ValueError."""
    checks.require(isinstance(config, BOConfig),
                   f"config must be a BOConfig; got {type(config).__name__}")
    checks.require(isinstance(spec, ProblemSpec),
                   f"spec must be a ProblemSpec (see problem_spec); got {type(spec).__name__}")


def _validate(key, spec: ProblemSpec, policy: Policy, config: BOConfig):
    """Static checks of a run's inputs; ``(masks, spec_ok)`` (``spec_ok`` may be traced)."""
    _check_types(spec, config)
    checks.require(isinstance(policy, Policy),
                   f"policy must be a Policy (ucb_cvs, etc, ...); got {type(policy).__name__}")
    check_key(key)
    masks = jnp.asarray(spec.masks)
    checks.require(masks.ndim == 2 and masks.shape[0] > 0 and masks.shape[1] > 0,
                   f"masks must have shape (m, d); got {masks.shape}")
    m, d = masks.shape
    want = {"costs": (m,), "scales": (d,), "budget": (), "noise_sd": (), "lengthscale": (d,)}
    for name, shape in want.items():
        checks.require(jnp.shape(getattr(spec, name)) == shape,
                       f"{name} must have shape {shape}; got {jnp.shape(getattr(spec, name))}")
    for name in ("masks",) + tuple(want):
        checks.require(jnp.issubdtype(jnp.result_type(getattr(spec, name)), jnp.floating),
                       f"{name} must be floating; got {jnp.result_type(getattr(spec, name))}")
    checks.require(policy.stage_of_set.shape == (m,), "policy.stage_of_set must have shape "
                   f"({m},); got {policy.stage_of_set.shape}")
    spec_ok = _spec_valid(spec)
    checks.raise_if_concrete(
        lambda ok: ~ok, "invalid problem spec: masks must be 0/1, costs and scales finite and > 0, "
        "budget finite and >= 0, noise_sd finite and >= 0, lengthscale finite and > 0; got "
        f"{spec}", spec_ok)
    return masks, spec_ok


def _buckets(config: BOConfig) -> list[int]:
    """The buffer sizes a run walks through (those above ``num_init``)."""
    return [b for b in config.buckets if b > config.num_init] or [config.buckets[-1]]


def init(key, spec: ProblemSpec, policy: Policy, objective: Callable, config: BOConfig, *,
         capacity: int | None = None) -> BOState:
    """The state of a BO run before its first round: samples ``W`` and ``W_eval`` drawn and the
    ``num_init`` free initial points observed.

    Args:
      key: PRNG key; the same key gives the same run.
      spec: :func:`problem_spec` of the problem (arrays; may be traced).
      policy: selection :class:`Policy`.
      objective: ``f(x [d]) -> scalar`` to maximise (static).
      config: :class:`BOConfig` (static).
      capacity: rows of the observation buffer (static; default ``config.buckets[-1]``, room
        for every round the log can hold).

    Returns:
      A :class:`BOState`; its ``status`` is already a fault code when the spec is invalid
      (under ``jit``) or an initial observation is not finite.

    Raises:
      ValueError: as :func:`run_bo`, and a ``capacity`` not above ``config.num_init``.
    """
    masks, spec_ok = _validate(key, spec, policy, config)
    capacity = config.buckets[-1] if capacity is None else capacity
    checks.require(isinstance(capacity, int) and capacity > config.num_init,
                   f"capacity must be an int > num_init ({config.num_init}); got {capacity!r}")
    m, d = masks.shape
    dtype = masks.dtype
    t_max = config.max_rounds
    k_init, k_noise0, k_w, k_weval, k_loop = jax.random.split(key, 5)
    w = sample_inputs(k_w, spec.scales, config.num_samples)
    w_eval = sample_inputs(k_weval, spec.scales, config.num_eval_samples)
    f_batch = jax.vmap(objective)
    x_init = jax.random.uniform(k_init, (config.num_init, d), dtype)
    y_init = (f_batch(x_init).astype(dtype)
              + spec.noise_sd * jax.random.normal(k_noise0, (config.num_init,), dtype))

    nan = jnp.asarray(jnp.nan, dtype)
    log = History(
        set_index=-jnp.ones(t_max, jnp.int32), stage=-jnp.ones(t_max, jnp.int32),
        query=jnp.full((t_max, d), nan), x=jnp.full((t_max, d), nan), y=jnp.full(t_max, nan),
        cost=jnp.full(t_max, nan), spent=jnp.full(t_max, nan), value=jnp.full(t_max, nan),
        acq_value=jnp.full(t_max, nan), x_init=x_init, y_init=y_init,
        num_rounds=jnp.int32(0), total_spent=jnp.asarray(0.0, dtype),
        status=jnp.int32(RUNNING), last_choice=jnp.int32(-1))
    init_bad = ~jnp.all(jnp.isfinite(y_init))
    return BOState(
        key=k_loop,
        xbuf=jnp.zeros((capacity, d), dtype).at[:config.num_init].set(x_init),
        ybuf=jnp.zeros((capacity,), dtype).at[:config.num_init].set(
            jnp.where(init_bad, 0.0, y_init)),
        n=jnp.int32(config.num_init), counts=jnp.zeros(m, jnp.int32),
        plays=jnp.zeros(policy.targets.shape, jnp.int32),
        status=jnp.select([~spec_ok, init_bad], [INVALID_INPUT, NAN_OBSERVATION],
                          RUNNING).astype(jnp.int32),
        last_choice=jnp.int32(-1), log=log, w=w, w_eval=w_eval)



def _round(s: _State, size: int, subset, spec: ProblemSpec, policy: Policy,
           objective: Callable, config: BOConfig, masks, w, w_eval) -> _State:
    """One round on a buffer of ``size`` rows; ``subset``: the only sets to optimise (or None)."""
    m, d = masks.shape
    dtype = masks.dtype
    tol = 1e-6 * jnp.maximum(spec.budget, 1.0)
    f_batch = jax.vmap(objective)
    key, k_acq, k_opt, k_env, k_obs = jax.random.split(s.key, 5)
    mask = jnp.arange(size) < s.n
    # exploring rounds: only the group's sets, with the candidates all sets would get
    rows = None if subset is None else np.asarray(subset)
    sets = masks if rows is None else masks[rows]
    value_fn, point_fn, gp_ok, extras = _acquisition_fn(k_acq, config, spec, s.xbuf,
                                                        s.ybuf, mask, w, sets)
    cand = None if rows is None else raw_candidates(k_opt, m, d, config.optimizer,
                                                    dtype)[rows]
    x_hat, values = maximize_per_control_set(k_opt, value_fn, sets, config.optimizer,
                                             point_fn=point_fn, w=w, candidates=cand,
                                             **extras)
    if rows is not None:
        x_hat = jnp.zeros((m, d), dtype).at[rows].set(x_hat)
        values = jnp.full((m,), jnp.nan, values.dtype).at[rows].set(values)
    index, plays, stage = choose(policy, s.plays, values, spec.costs,
                                 s.n - config.num_init)
    cost = spec.costs[index]
    spent = s.counts.astype(dtype) @ spec.costs
    affordable = cost <= spec.budget - spent + tol
    mask_row = masks[index]
    query = x_hat[index]
    w_new = sample_inputs(k_env, spec.scales, 1)[0]
    x_new = mask_row * query + (1.0 - mask_row) * w_new
    y_new = (objective(x_new).astype(dtype)
             + spec.noise_sd * jax.random.normal(k_obs, (), dtype))
    status = jnp.select(
        [~gp_ok, index < 0, jnp.isnan(values[index]), ~affordable, ~jnp.isfinite(y_new)],
        [NOT_POSITIVE_DEFINITE, NO_CONTROL_SET, NAN_ACQUISITION, BUDGET_EXHAUSTED,
         NAN_OBSERVATION], RUNNING).astype(jnp.int32)
    accept = status == RUNNING
    r = s.n - config.num_init
    f_value = jnp.mean(f_batch(assemble(mask_row, query, w_eval)))

    def put(buf, val):
        return buf.at[r].set(jnp.where(accept, val, buf[r]))

    lg = s.log
    counts = s.counts + accept * (jnp.arange(m) == index)
    new_spent = counts.astype(dtype) @ spec.costs
    lg = lg._replace(
        set_index=put(lg.set_index, index), stage=put(lg.stage, stage),
        query=put(lg.query, query), x=put(lg.x, x_new), y=put(lg.y, y_new),
        cost=put(lg.cost, cost), spent=put(lg.spent, new_spent),
        value=put(lg.value, f_value), acq_value=put(lg.acq_value, values[index]))
    xbuf = s.xbuf.at[s.n].set(jnp.where(accept, x_new, s.xbuf[s.n]))
    ybuf = s.ybuf.at[s.n].set(jnp.where(accept, y_new, s.ybuf[s.n]))
    last = jnp.where(status == BUDGET_EXHAUSTED, index, s.last_choice).astype(jnp.int32)
    return _State(key, xbuf, ybuf, s.n + accept.astype(jnp.int32), counts, plays,
                  status, last, lg)


def step(state: BOState, spec: ProblemSpec, policy: Policy, objective: Callable,
         config: BOConfig) -> tuple[BOState, BOInfo]:
    """One round of a BO run: condition the GP, maximise the acquisition of every control set,
    select a set, and (when its cost fits the budget) play it, observe and pay.

    A state whose run has stopped (``status`` not running) comes back unchanged. The round's
    randomness comes from ``state.key``. Rounds of :func:`run_bo` from the same key are the
    same up to rounding (it optimises, while a policy explores, only the sets the policy can
    pick then).

    Args:
      state: from :func:`init` or a previous ``step``.
      spec, policy, objective, config: as given to :func:`init`.

    Returns:
      ``(state, info)``: the new :class:`BOState` and the round's :class:`BOInfo`. A full
      buffer stops the run with status ``BUFFER_FULL``.

    Raises:
      ValueError: a ``state`` that is not a :class:`BOState`, or the checks of :func:`init`.
    """
    checks.require(isinstance(state, BOState),
                   f"state must be a BOState (see init); got {type(state).__name__}")
    masks, _ = _validate(state.key, spec, policy, config)
    size = state.xbuf.shape[0]
    inner = _State(*state[:9])
    running = (inner.status == RUNNING) & (inner.n < size)
    played = jax.lax.cond(
        running,
        lambda s: _round(s, size, None, spec, policy, objective, config, masks, state.w,
                         state.w_eval),
        lambda s: s._replace(status=jnp.where(s.status == RUNNING, BUFFER_FULL,
                                              s.status).astype(jnp.int32)),
        inner)
    r = jnp.clip(inner.n - config.num_init, 0, played.log.set_index.shape[0] - 1)
    accepted = played.n > inner.n
    nan = jnp.asarray(jnp.nan, played.log.y.dtype)
    info = BOInfo(set_index=jnp.where(accepted, played.log.set_index[r], -1).astype(jnp.int32),
                  x=jnp.where(accepted, played.log.x[r], nan),
                  y=jnp.where(accepted, played.log.y[r], nan),
                  cost=jnp.where(accepted, played.log.cost[r], nan),
                  accepted=accepted, status=played.status)
    return BOState(*played, w=state.w, w_eval=state.w_eval), info


def history(state: BOState, spec: ProblemSpec, config: BOConfig) -> History:
    """The :class:`History` of a run driven by :func:`init` and :func:`step`, as
    :func:`run_bo` returns it (a run still going reads as ``BUFFER_FULL``, as a run that
    used the whole buffer does).

    Args:
      state: the last :class:`BOState`.
      spec, config: as given to :func:`init`.

    Returns:
      The run's :class:`History`, with ``num_rounds``, ``total_spent``, ``status`` and
      ``last_choice`` filled in.

    Raises:
      ValueError: ``state``, ``spec`` or ``config`` of another type.
    """
    checks.require(isinstance(state, BOState),
                   f"state must be a BOState (see init); got {type(state).__name__}")
    _check_types(spec, config)
    return _finish(_State(*state[:9]), spec, config)


def _finish(state: _State, spec: ProblemSpec, config: BOConfig) -> History:
    status = jnp.where(state.status == RUNNING, BUFFER_FULL, state.status).astype(jnp.int32)
    return state.log._replace(
        num_rounds=(state.n - config.num_init).astype(jnp.int32),
        total_spent=state.counts.astype(jnp.asarray(spec.masks).dtype) @ spec.costs,
        status=status,
        last_choice=state.last_choice)


def run_bo(key, spec: ProblemSpec, policy: Policy, objective: Callable,
           config: BOConfig) -> History:
    """One BO run with cost-varying variable subsets (UCB-CVS / ETC / UCB-PSQ / TS-PSQ).

    Args:
      key: PRNG key; the same key gives a bit-identical trajectory.
      spec: :func:`problem_spec` of the problem (arrays; may be traced).
      policy: selection :class:`Policy` (arrays; may be traced). When it and ``spec.masks``
        are concrete (closed over rather than passed as traced arguments), the rounds of an
        exploration stage optimise only that stage's group of sets, the only ones the policy
        can pick then: ETC-Ada on Hartmann-3 optimises 3 of the 7 sets in its first 60 rounds.
        The result agrees with optimising all sets up to rounding.
      objective: ``f(x [d]) -> scalar`` to maximise (static).
      config: :class:`BOConfig` (static).

    Returns:
      A :class:`History`. ``status`` is ``BUDGET_EXHAUSTED`` after a normal end; any other value
      marks a fault (the log up to it is kept; see :func:`raise_for_status`).

    Raises:
      ValueError: on a wrong ``config``, ``spec`` or ``policy`` type, mismatched shapes or
        non-floating arrays; eagerly (concrete ``spec``) on NaN, infinite or out-of-range spec
        values. Under ``jit`` (traced ``spec``) those end the run at once with status
        ``INVALID_INPUT`` and no round played.
    """
    checks.require(isinstance(config, BOConfig),
                   f"config must be a BOConfig; got {type(config).__name__}")
    start = init(key, spec, policy, objective, config, capacity=_buckets(config)[0])
    masks = jnp.asarray(spec.masks)
    w, w_eval = start.w, start.w_eval
    state = _State(*start[:9])
    buckets = _buckets(config)
    phases = _exploration_phases(policy, masks, config.num_init)
    for i, size in enumerate(buckets):
        if i > 0:
            pad = size - state.xbuf.shape[0]
            state = state._replace(xbuf=jnp.pad(state.xbuf, ((0, pad), (0, 0))),
                                   ybuf=jnp.pad(state.ybuf, (0, pad)))
        low = buckets[i - 1] if i > 0 else 0
        for stop, subset in phases:
            stop = size if stop is None else min(stop, size)
            if stop <= low:  # this phase ends before the bucket starts
                continue
            state = jax.lax.while_loop(
                lambda s, stop=stop: (s.status == RUNNING) & (s.n < stop),
                functools.partial(_round, size=size, subset=subset, spec=spec, policy=policy,
                                  objective=objective, config=config, masks=masks, w=w,
                                  w_eval=w_eval), state)
            if stop == size:
                break
    return _finish(state, spec, config)
