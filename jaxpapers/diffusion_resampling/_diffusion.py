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

import importlib
import math
import sys
import warnings
from typing import NamedTuple

import chex
import jax
import jax.numpy as jnp

from jaxpapers._src import checks

__all__ = ["Schedule", "make_schedule", "q_sample", "predict_x0", "epsilon_loss",
           "ddpm_transition", "make_ddpm_step", "make_ddim_step", "cfg_eps"]


class Schedule(NamedTuple):
    """Discrete VP schedule; arrays indexed by level ``0..T``."""

    betas: jax.Array       # [T + 1] (betas[0] = 0)
    alpha_bars: jax.Array  # [T + 1] (alpha_bars[0] = 1)

    @property
    def num_steps(self) -> int:
        return self.betas.shape[0] - 1


def make_schedule(num_steps: int, kind: str = "linear", beta_start: float = 1e-4,
                  beta_end: float = 0.02, cosine_s: float = 0.008) -> Schedule:
    """A linear-beta (DDPM) or cosine (Nichol & Dhariwal) schedule with ``num_steps`` levels.

    Raises:
      ValueError: unknown kind, non-positive ``num_steps`` or betas outside ``(0, 1)``.
    """
    num_steps = checks.require_positive_int(num_steps, "num_steps")
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


def _bcast(v, x):
    """Broadcast per-item ``v [...]`` against ``x [..., *event]`` (trailing singleton axes)."""
    v = jnp.asarray(v)
    return jnp.reshape(v, v.shape + (1,) * (x.ndim - v.ndim))


def _distrax():
    """distrax, imported on first use: it loads TensorFlow Probability (about 0.6 s on a CPU)."""
    if "distrax" not in sys.modules:
        with warnings.catch_warnings():  # tfp's JAX substrate reads a deprecated jax attribute
            warnings.filterwarnings("ignore", "jax.core.pytype_aval_mappings is deprecated",
                                    DeprecationWarning)
            importlib.import_module("distrax")
    return sys.modules["distrax"]


def _diagonal_normal(loc, scale, event_ndims: int):
    """``N(loc, diag(scale^2))`` whose trailing ``event_ndims`` axes form one event (distrax).

    ``.sample(seed=key)`` draws ``z = jax.random.normal(key, shape)`` and returns
    ``scale * z + loc``; ``.log_prob(value)`` sums the per-coordinate log-densities over the event.
    """
    distrax = _distrax()
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
      ``(x_t, eps)`` with the noise used.
    """
    eps = jax.random.normal(key, x0.shape, x0.dtype)
    abar = _bcast(jnp.broadcast_to(schedule.alpha_bars[t], x0.shape[:1]), x0)
    q = _forward_kernel(x0, abar, x0.ndim - 1)
    return q.mean() + q.stddev() * eps, eps


def predict_x0(x, eps, t, schedule: Schedule):
    """``x0_hat = (x_t - sqrt(1 - abar_t) eps) / sqrt(abar_t)``; at level 0 this is ``x``."""
    abar = schedule.alpha_bars[t]
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
      Scalar mean squared error.
    """
    key_t, key_n = jax.random.split(key)
    t = jax.random.randint(key_t, x0.shape[:1], 1, schedule.num_steps + 1)
    x_t, eps = q_sample(key_n, x0, t, schedule)
    return jnp.mean((_checked_eps(eps_fn(x_t, t, cond), x_t) - eps) ** 2)


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
      A ``distrax.Independent`` normal with batch shape ``[G, K]`` and event shape ``event``.
    """
    eps = _eps_at(eps_fn, x, t, cond)
    abar_t, abar_s = schedule.alpha_bars[t], schedule.alpha_bars[t - 1]
    beta = schedule.betas[t]
    x0 = predict_x0(x, eps, t, schedule)
    if clip_x0 is not None:
        x0 = jnp.clip(x0, -clip_x0, clip_x0)
    mean = (jnp.sqrt(abar_s) * beta / (1 - abar_t)) * x0 + \
        (jnp.sqrt(1 - beta) * (1 - abar_s) / (1 - abar_t)) * x
    var = beta * (1 - abar_s) / (1 - abar_t)
    return _diagonal_normal(mean, jnp.sqrt(var), x.ndim - 2)


def make_ddpm_step(eps_fn, schedule: Schedule, clip_x0: float | None = None):
    """Ancestral DDPM step ``x_t -> x_{t-1}`` (Ho et al. Eq. 6-7) as a ``transition_fn``.

    ``x_{t-1} = mu_tilde(x_t, x0_hat) + sqrt(beta_tilde_t) z``, a sample of
    :func:`ddpm_transition`; the noise vanishes at ``t = 1``.

    Returns:
      ``transition_fn(key, x [G, K, *event], t int32[], cond [G] | None) -> x``.
    """

    def step(key, x, t, cond=None):
        return ddpm_transition(eps_fn, schedule, x, t, cond, clip_x0).sample(seed=key)

    return step


def _ddim_move(key, x, eps, t_from, t_to, schedule, eta, clip_x0):
    abar_t, abar_s = schedule.alpha_bars[t_from], schedule.alpha_bars[t_to]
    x0 = predict_x0(x, eps, t_from, schedule)
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

    Returns:
      ``transition_fn(key, x [G, K, *event], t int32[], cond [G] | None) -> x``.
    """
    checks.require(eta >= 0.0, f"eta must be >= 0; got {eta}")
    churn_steps = int(churn_steps)
    checks.require(churn_steps >= 0, f"churn_steps must be >= 0; got {churn_steps}")
    churn_levels = jnp.asarray(tuple(int(c) for c in churn_levels) or (-1,), jnp.int32)
    num_steps = schedule.num_steps

    def step(key, x, t, cond=None):
        key_churn, key_move = jax.random.split(key)
        if churn_steps:
            churn = jnp.any(churn_levels == t)
            t_hat = jnp.where(churn, jnp.minimum(t + churn_steps, num_steps), t)
            ratio = schedule.alpha_bars[t_hat] / schedule.alpha_bars[t]
            x = _forward_kernel(x, ratio, x.ndim - 2).sample(seed=key_churn)
        else:
            t_hat = t
        eps = _eps_at(eps_fn, x, t_hat, cond)
        return _ddim_move(key_move, x, eps, t_hat, t - 1, schedule, eta, clip_x0)

    return step


def cfg_eps(eps_fn, null_label: int, guidance: float):
    """Classifier-free guidance ``(1 + w) eps(x, y) - w eps(x, null)`` (Ho & Salimans 2022)."""

    def guided(x, t, cond):
        conditional = eps_fn(x, t, cond)
        if guidance == 0.0 or cond is None:
            return conditional
        unconditional = eps_fn(x, t, jnp.full_like(cond, null_label))
        return (1.0 + guidance) * conditional - guidance * unconditional

    return guided
