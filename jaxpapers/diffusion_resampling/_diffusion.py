"""DDPM substrate: noise schedules, forward noising, epsilon loss and reverse steps.

Levels ``t = 0..T``: level 0 is data (``alpha_bar_0 = 1``), level ``t >= 1`` has
``alpha_bar_t = prod_{s <= t} (1 - beta_s)`` and ``x_t = sqrt(alpha_bar_t) x_0 +
sqrt(1 - alpha_bar_t) eps``. Reverse steps move level ``t`` to ``t - 1`` and match the
``transition_fn(key, x, t, cond)`` signature of :func:`smc_sample`.

Every Gaussian kernel here (the reverse DDPM kernel, the DDIM move, the forward kernel of
``q_sample`` and of churn) is a ``distrax`` distribution. The steps sample it with their key:
``ddpm_transition(...).sample(seed=key)`` is the DDPM step, and ``.log_prob`` scores a move (for an
importance weight, say); ``q_sample`` returns its reparameterised sample together with the noise.
distrax is imported inside the functions that build them, so importing this module does not load
it (nor TensorFlow Probability behind it).

An ``eps_fn(x [..., *event], t int32[...], cond) -> eps`` is any epsilon-predictor; the model
wrappers in ``_models`` build one from Flax parameters. Its output must have the shape of ``x``
(checked at trace time with chex; a mismatch raises ``ValueError``, as every static fault does).

References: Ho, Jain & Abbeel (2020) DDPM, Eq. 4, 7, 11; Song, Meng & Ermon (2021) DDIM, Eq. 12
(``eta``); Nichol & Dhariwal (2021) cosine schedule; Karras et al. (2022) churn.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import chex
import jax
import jax.numpy as jnp
import numpy as np

from jaxpapers._src import checks, optional, threefry

__all__ = ["Schedule", "make_schedule", "q_sample", "epsilon_loss",
           "ddpm_transition", "make_ddpm_step", "make_ddim_step", "cfg_eps", "check_level",
           "check_finite_scalar", "check_float_array", "step_levels", "nan_unless"]


class Schedule(NamedTuple):
    """Discrete variance-preserving schedule, indexed by level ``0..T`` (:func:`make_schedule`).

    Attributes:
      betas: ``(T + 1,)`` float32 ``beta_t`` (``betas[0] = 0``).
      alpha_bars: ``(T + 1,)`` float32 ``prod_{s <= t} (1 - beta_s)`` (``alpha_bars[0] = 1``).
    """

    betas: jax.Array
    alpha_bars: jax.Array

    @property
    def num_steps(self) -> int:
        """The number of levels ``T`` above the data."""
        return self.betas.shape[0] - 1


def make_schedule(num_steps: int, kind: str = "linear", beta_start: float = 1e-4,
                  beta_end: float = 0.02, cosine_s: float = 0.008) -> Schedule:
    """A linear-beta (DDPM) or cosine (Nichol & Dhariwal) schedule with ``num_steps`` levels.

    Args:
      num_steps: ``T``, a positive int.
      kind: ``"linear"`` (``beta_t`` from ``beta_start`` to ``beta_end``) or ``"cosine"``.
      beta_start, beta_end: the linear schedule's end points, ``0 < start <= end < 1``.
      cosine_s: the cosine schedule's offset ``s >= 0``.

    Returns:
      :class:`Schedule` of ``(T + 1,)`` float32 arrays.

    Raises:
      ValueError: unknown kind, non-positive ``num_steps``, betas outside ``(0, 1)`` or a
        negative or non-finite ``cosine_s``.

    >>> schedule = make_schedule(10)
    >>> schedule.num_steps, schedule.betas.shape, float(schedule.alpha_bars[0])
    (10, (11,), 1.0)
    """
    num_steps = checks.require_positive_int(num_steps, "num_steps")
    checks.require(math.isfinite(cosine_s) and cosine_s >= 0,
                   f"cosine_s must be finite and >= 0; got {cosine_s}")
    if kind == "linear":
        checks.require(0.0 < beta_start <= beta_end < 1.0,
                       f"need 0 < beta_start <= beta_end < 1; got {beta_start}, {beta_end}")
        betas = jnp.linspace(beta_start, beta_end, num_steps, dtype=jnp.float32)
    elif kind == "cosine":
        s = jnp.arange(num_steps + 1, dtype=jnp.float32) / num_steps
        f = jnp.cos((s + cosine_s) / (1 + cosine_s) * math.pi / 2) ** 2
        abar = f / f[0]
        betas = jnp.clip(1.0 - abar[1:] / abar[:-1], 0.0, 0.999)
    else:
        raise ValueError(f"kind must be 'linear' or 'cosine'; got {kind!r}")
    betas = jnp.concatenate([jnp.zeros(1, jnp.float32), betas])
    alpha_bars = jnp.cumprod(1.0 - betas)
    return Schedule(betas, alpha_bars)


def check_schedule(schedule) -> None:
    checks.require(isinstance(schedule, Schedule),
                   f"schedule must be a Schedule (make_schedule); got {type(schedule).__name__}")


def check_float_array(x, name: str, min_ndim: int = 1):
    """``x`` as a real float array with at least ``min_ndim`` axes (else ``ValueError``)."""
    x = jnp.asarray(x)
    checks.require(x.ndim >= min_ndim, f"{name} must have at least {min_ndim} axes; got shape "
                                       f"{x.shape}")
    checks.require(jnp.issubdtype(x.dtype, jnp.floating),
                   f"{name} must be a real float array; got {x.dtype}")
    return x


def check_finite_scalar(value, name: str, positive: bool = False, non_negative: bool = False):
    """A concrete ``value`` must be a finite real number (``> 0``/``>= 0`` if asked); a traced
    one is returned as a ``bool[]`` validity flag (``True`` for a concrete value)."""
    if checks.is_concrete(value):
        v = float(np.asarray(value))  # jnp.asarray would be a tracer under an outer jit
        ok = math.isfinite(v) and (not positive or v > 0) and (not non_negative or v >= 0)
        need = " and > 0" if positive else " and >= 0" if non_negative else ""
        checks.require(ok, f"{name} must be finite{need}; got {v}")
        return jnp.bool_(True)
    value = jnp.asarray(value)
    ok = jnp.isfinite(value)
    if positive:
        ok &= value > 0
    if non_negative:
        ok &= value >= 0
    return jnp.all(ok)


def check_level(t, schedule: Schedule, low: int = 0, name: str = "t"):
    """``bool`` (shaped like ``t``): the integer level(s) ``t`` lie in ``[low, T]``.

    A float level or a non-integer dtype raises ``ValueError`` naming ``name``; a level out of
    range raises eagerly (``InvalidInputError``); under ``jit`` the caller makes its result NaN
    where the flag is False (never a clamped or wrapped level).
    """
    t = jnp.asarray(t)
    checks.require(jnp.issubdtype(t.dtype, jnp.integer),
                   f"{name} must be an integer level; got dtype {t.dtype}")
    high = schedule.num_steps
    checks.raise_if_concrete(lambda s: (s < low) | (s > high),
                             f"{name} must lie in [{low}, {high}] (the schedule's levels); got "
                             f"{t}", t)
    return (t >= low) & (t <= high)


def nan_unless(ok, x):
    """``x`` where ``ok`` (broadcast from the left) and ``x`` is finite, else NaN: non-finite in,
    NaN out (an infinity never passes as a value). Applied last (see the package docstring)."""
    x = jnp.asarray(x)
    return jnp.where(_bcast(ok, x) & jnp.isfinite(x), x, jnp.nan)


def step_levels(fn):
    """The ``T`` a transition built by :func:`make_ddpm_step`/:func:`make_ddim_step` is for."""
    return getattr(fn, "num_steps", None)


def _bcast(v, x):
    """Broadcast per-item ``v [...]`` against ``x [..., *event]`` (trailing singleton axes)."""
    v = jnp.asarray(v)
    return jnp.reshape(v, v.shape + (1,) * (x.ndim - v.ndim))


def _diagonal_normal(loc, scale, event_ndims: int):
    """``N(loc, diag(scale^2))`` whose trailing ``event_ndims`` axes form one event (distrax).

    ``.sample(seed=key)`` draws ``z = jax.random.normal(key, shape)`` and returns
    ``scale * z + loc``; ``.log_prob(value)`` sums the per-coordinate log-densities over the event.
    """
    distrax = optional.distrax()
    return distrax.Independent(distrax.Normal(loc, scale), reinterpreted_batch_ndims=event_ndims)


def _forward_kernel(x, ratio, event_ndims: int):
    """``q(x_to | x_from) = N(sqrt(r) x_from, (1 - r) I)`` with ``r = abar_to / abar_from``."""
    return _diagonal_normal(jnp.sqrt(ratio) * x, jnp.sqrt(1 - ratio), event_ndims)


def q_sample(key, x0, t, schedule: Schedule):
    """Forward noising ``x_t ~ q(x_t | x_0) = N(sqrt(abar_t) x0, (1 - abar_t) I)``.

    ``x_t`` is the reparameterised sample ``mean + stddev * eps`` of that distribution, with the
    noise ``eps ~ N(0, I)`` drawn here from ``key``, because the caller needs it (it is the target
    of :func:`epsilon_loss`).

    Args:
      key: PRNG key.
      x0: ``[B, *event]`` clean data.
      t: int level(s), scalar or ``[B]``.
      schedule: :class:`Schedule`.

    Returns:
      ``(x_t, eps)`` with the noise used. NaN in ``x0`` gives NaN out.

    Raises:
      ValueError: ``key`` not a key, ``x0`` not a float array, ``t`` not integer or not
        broadcastable to ``[B]`` (call or trace time); a level outside ``[0, T]`` (eagerly;
        under ``jit`` those items of ``x_t`` are NaN).
    """
    threefry.check_key(key)
    check_schedule(schedule)
    x0 = check_float_array(x0, "x0")
    t = jnp.asarray(t)
    checks.require(t.ndim == 0 or t.shape == x0.shape[:1],
                   f"t must be a scalar or have shape ({x0.shape[0]},); got {t.shape}")
    ok = _bcast(jnp.broadcast_to(check_level(t, schedule), x0.shape[:1]), x0)
    eps = jax.random.normal(key, x0.shape, x0.dtype)
    abar = _bcast(jnp.broadcast_to(schedule.alpha_bars[t], x0.shape[:1]), x0)
    q = _forward_kernel(x0, abar, x0.ndim - 1)
    return nan_unless(ok, q.mean() + q.stddev() * eps), eps


def _x0_from_eps(x, eps, t, schedule: Schedule):
    abar = _bcast(schedule.alpha_bars[t], x)
    return (x - jnp.sqrt(1.0 - abar) * eps) / jnp.sqrt(abar)


def epsilon_loss(key, eps_fn, x0, schedule: Schedule, cond=None):
    """DDPM simple loss ``E ||eps - eps_theta(x_t, t)||^2`` with ``t ~ U{1..T}`` (Ho et al. Eq. 14).

    Args:
      key: PRNG key.
      eps_fn: ``(x [B, *event], t int32[B], cond) -> eps``.
      x0: ``[B, *event]``.
      schedule: :class:`Schedule`.
      cond: per-item condition ``[B]`` or None.

    Returns:
      Float scalar mean squared error (NaN when ``x0`` holds a NaN or inf).

    Raises:
      ValueError: ``key`` not a key, ``schedule`` not a :class:`Schedule`, ``x0`` not a real
        float array, or ``eps_fn`` returning another shape than its input (call or trace time).
    """
    threefry.check_key(key)
    check_schedule(schedule)
    x0 = check_float_array(x0, "x0")
    key_t, key_n = jax.random.split(key)
    t = jax.random.randint(key_t, x0.shape[:1], 1, schedule.num_steps + 1)
    x_t, eps = q_sample(key_n, x0, t, schedule)
    loss = jnp.mean((_checked_eps(eps_fn(x_t, t, cond), x_t) - eps) ** 2)
    return nan_unless(jnp.all(jnp.isfinite(x0)), loss)


def _checked_eps(eps, x):
    """``eps``, after a trace-time check that ``eps_fn`` returned the shape of its input ``x``.

    A wrong shape would otherwise broadcast silently in the loss or scramble in a reshape.
    """
    chex.assert_shape(eps, x.shape, exception_type=ValueError,
                      custom_message="eps_fn must return an array shaped like its input x")
    return eps


def _eps_at(eps_fn, x, t, cond):
    """Call ``eps_fn`` on ``x [G, K, *event]`` with a scalar level and per-group ``cond [G]``."""
    lead = x.shape[:2]
    flat = jnp.reshape(x, (-1,) + x.shape[2:])
    tt = jnp.full(flat.shape[:1], t, jnp.int32)
    cc = None if cond is None else jnp.reshape(
        jnp.broadcast_to(jnp.asarray(cond)[:, None], lead), (-1,))
    return jnp.reshape(_checked_eps(eps_fn(flat, tt, cc), flat), x.shape)


def ddpm_transition(eps_fn, schedule: Schedule, x, t, cond=None, clip_x0: float | None = None):
    """Reverse kernel ``p(x_{t-1} | x_t)`` of the ancestral DDPM step, as a distrax distribution.

    ``N(mu_tilde(x_t, x0_hat), beta_tilde_t I)`` with ``x0_hat`` predicted from ``eps_fn``
    (Ho et al. Eq. 6-7, 11): ``mu_tilde = sqrt(abar_{t-1}) beta_t / (1 - abar_t) x0_hat +
    sqrt(1 - beta_t) (1 - abar_{t-1}) / (1 - abar_t) x_t`` and ``beta_tilde_t = beta_t
    (1 - abar_{t-1}) / (1 - abar_t)``. ``.sample(seed=key)`` is the step of
    :func:`make_ddpm_step`; ``.log_prob(x_prev)`` is the reverse-kernel log-density of a move, one
    value per particle (e.g. the numerator of an importance weight against another proposal).
    At ``t = 1`` the variance is 0: the kernel is a point mass, its samples are the mean and its
    ``log_prob`` is not finite.

    Args:
      eps_fn: ``(x [B, *event], t int32[B], cond) -> eps``.
      schedule: :class:`Schedule`.
      x: ``[G, K, *event]`` particles at level ``t``.
      t: int32 scalar level in ``1..T``.
      cond: per-group condition ``[G]`` or None.
      clip_x0: clip ``x0_hat`` to ``[-clip_x0, clip_x0]`` (None: no clipping).

    Returns:
      A ``distrax.Independent`` normal with batch shape ``(G, K)`` and event shape ``event``,
      float32 for float32 ``x``.

    Raises:
      ValueError: ``x`` not a real float array with at least 2 axes, ``t`` not a scalar
        integer, ``eps_fn`` returning another shape (call or trace time); a level outside
        ``[1, T]`` (eagerly; under ``jit`` the mean is NaN).
    """
    check_schedule(schedule)
    x = check_float_array(x, "x", 2)
    t = jnp.asarray(t)
    checks.require(t.ndim == 0, f"t must be a scalar level; got shape {t.shape}")
    ok = check_level(t, schedule, low=1)
    eps = _eps_at(eps_fn, x, t, cond)
    abar_t, abar_s = schedule.alpha_bars[t], schedule.alpha_bars[t - 1]
    beta = schedule.betas[t]
    x0 = _x0_from_eps(x, eps, t, schedule)
    if clip_x0 is not None:
        x0 = jnp.clip(x0, -clip_x0, clip_x0)
    mean = (jnp.sqrt(abar_s) * beta / (1 - abar_t)) * x0 + \
        (jnp.sqrt(1 - beta) * (1 - abar_s) / (1 - abar_t)) * x
    var = beta * (1 - abar_s) / (1 - abar_t)
    # the NaN of a bad level is applied last (a NaN constant fed to exp can give garbage
    # under jit on the CPU)
    return _diagonal_normal(nan_unless(ok, mean), jnp.sqrt(var), x.ndim - 2)


def make_ddpm_step(eps_fn, schedule: Schedule, clip_x0: float | None = None):
    """Ancestral DDPM step ``x_t -> x_{t-1}`` (Ho et al. Eq. 6-7) as a ``transition_fn``.

    ``x_{t-1} = mu_tilde(x_t, x0_hat) + sqrt(beta_tilde_t) z``, a sample of
    :func:`ddpm_transition`; the noise vanishes at ``t = 1``.

    Not an ``init``/``step`` pair: the sampler's state is the particles themselves, so the step
    is a transition kernel that returns only the new particles (the signature
    :func:`smc_sample` and :func:`plain_sample` take).

    Args:
      eps_fn: ``(x (B, *event), t int32 (B,), cond) -> eps`` of the shape of ``x``.
      schedule: :class:`Schedule`.
      clip_x0: clip the predicted ``x0`` to ``[-clip_x0, clip_x0]`` (None: no clipping).

    Returns:
      ``transition_fn(key, x (G, K, *event), t int32 scalar, cond (G,) | None) -> x`` of the
      shape and dtype of ``x``; its attribute ``num_steps`` is ``T`` (the samplers refuse more
      steps).

    Raises:
      ValueError: ``schedule`` not a :class:`Schedule`, ``clip_x0`` not finite and ``> 0``;
        from the returned step, the faults :func:`ddpm_transition` lists (a level outside
        ``[1, T]``: eagerly, NaN under ``jit``).
    """
    check_schedule(schedule)
    if clip_x0 is not None:
        check_finite_scalar(clip_x0, "clip_x0", positive=True)

    def step(key, x, t, cond=None):
        threefry.check_key(key)
        return ddpm_transition(eps_fn, schedule, x, t, cond, clip_x0).sample(seed=key)

    step.num_steps = schedule.num_steps
    return step


def _ddim_move(key, x, eps, t_from, t_to, schedule, eta, clip_x0):
    abar_t, abar_s = schedule.alpha_bars[t_from], schedule.alpha_bars[t_to]
    x0 = _x0_from_eps(x, eps, t_from, schedule)
    if clip_x0 is not None:
        x0 = jnp.clip(x0, -clip_x0, clip_x0)
        eps = (x - jnp.sqrt(abar_t) * x0) / jnp.sqrt(1 - abar_t)
    sigma = eta * jnp.sqrt((1 - abar_s) / (1 - abar_t)) * jnp.sqrt(1 - abar_t / abar_s)
    direction = jnp.sqrt(jnp.maximum(1 - abar_s - sigma ** 2, 0.0)) * eps
    move = _diagonal_normal(jnp.sqrt(abar_s) * x0 + direction, sigma, x.ndim - 2)
    return move.sample(seed=key)


def make_ddim_step(eps_fn, schedule: Schedule, eta: float = 0.0, clip_x0: float | None = None,
                   churn_levels=(), churn_steps: int = 0):
    """DDIM step ``x_t -> x_{t-1}`` with stochasticity ``eta`` (Song et al. Eq. 12).

    Churn (Karras et al. 2022, used by the reference at resampling steps): at levels in
    ``churn_levels`` the state is first re-noised forward to level ``t + churn_steps`` (exact
    forward kernel ``q(x_{t+j} | x_t)``), then moved by one DDIM jump to ``t - 1``. Resampled
    duplicates thus diverge even with ``eta = 0``.

    Not an ``init``/``step`` pair: the sampler's state is the particles themselves, so the step
    is a transition kernel that returns only the new particles (the signature
    :func:`smc_sample` and :func:`plain_sample` take).

    Args:
      eps_fn: ``(x (B, *event), t int32 (B,), cond) -> eps`` of the shape of ``x``.
      schedule: :class:`Schedule`.
      eta: stochasticity ``>= 0`` (0: deterministic DDIM, 1: DDPM-like variance).
      clip_x0: clip the predicted ``x0`` to ``[-clip_x0, clip_x0]`` (None: no clipping).
      churn_levels: static levels at which to churn.
      churn_steps: how many levels up the churn re-noises, an int ``>= 0`` (0: no churn).

    Returns:
      ``transition_fn(key, x (G, K, *event), t int32 scalar, cond (G,) | None) -> x`` of the
      shape and dtype of ``x``, with attribute ``num_steps = T``.

    Raises:
      ValueError: ``schedule`` not a :class:`Schedule`, ``eta`` negative or not finite,
        ``clip_x0`` not finite and ``> 0``, ``churn_steps < 0``; from the returned step, ``key``
        not a key, ``x`` not a real float ``(G, K, ...)``, ``t`` not a scalar integer (call or
        trace time) and a level outside ``[1, T]`` (eagerly; NaN under ``jit``).
    """
    check_schedule(schedule)
    check_finite_scalar(eta, "eta", non_negative=True)
    if clip_x0 is not None:
        check_finite_scalar(clip_x0, "clip_x0", positive=True)
    churn_steps = int(churn_steps)
    checks.require(churn_steps >= 0, f"churn_steps must be >= 0; got {churn_steps}")
    churn_levels = jnp.asarray(tuple(int(c) for c in churn_levels) or (-1,), jnp.int32)
    num_steps = schedule.num_steps

    def step(key, x, t, cond=None):
        threefry.check_key(key)
        x = check_float_array(x, "x", 2)
        t = jnp.asarray(t)
        checks.require(t.ndim == 0, f"t must be a scalar level; got shape {t.shape}")
        ok = check_level(t, schedule, low=1)
        key_churn, key_move = jax.random.split(key)
        if churn_steps:
            churn = jnp.any(churn_levels == t)
            t_hat = jnp.where(churn, jnp.minimum(t + churn_steps, num_steps), t)
            ratio = schedule.alpha_bars[t_hat] / schedule.alpha_bars[t]
            x = _forward_kernel(x, ratio, x.ndim - 2).sample(seed=key_churn)
        else:
            t_hat = t
        eps = _eps_at(eps_fn, x, t_hat, cond)
        return nan_unless(ok, _ddim_move(key_move, x, eps, t_hat, t - 1, schedule, eta,
                                         clip_x0))

    step.num_steps = num_steps
    return step


def cfg_eps(eps_fn, null_label: int, guidance: float):
    """Classifier-free guidance ``(1 + w) eps(x, y) - w eps(x, null)`` (Ho & Salimans 2022).

    Args:
      eps_fn: a label-conditioned ``(x (B, *event), t (B,), y (B,) | None) -> eps``.
      null_label: the label of the unconditional model (``num_classes`` for the models here).
      guidance: the weight ``w``, a finite number (0: the conditional model alone).

    Returns:
      ``guided(x, t, cond) -> eps`` of the shape of ``x``; with ``cond=None`` it is ``eps_fn``.

    Raises:
      ValueError: ``guidance`` not finite; from ``guided``, ``x`` not a real float array or
        ``cond`` without one entry per row of ``x``.

    >>> import jax.numpy as jnp
    >>> eps = lambda x, t, y: x + y[:, None]
    >>> cfg_eps(eps, 0, 1.0)(jnp.zeros((2, 1)), jnp.zeros(2), jnp.ones(2)).tolist()
    [[2.0], [2.0]]
    """
    check_finite_scalar(guidance, "guidance")

    def guided(x, t, cond):
        x = check_float_array(x, "x")
        if cond is not None:
            checks.require(jnp.shape(cond)[:1] == x.shape[:1],
                           f"cond must have one entry per row of x ({x.shape[0]}); got shape "
                           f"{jnp.shape(cond)}")
        conditional = eps_fn(x, t, cond)
        if guidance == 0.0 or cond is None:
            return conditional
        unconditional = eps_fn(x, t, jnp.full_like(cond, null_label))
        return (1.0 + guidance) * conditional - guidance * unconditional

    return guided
