"""Log-potentials ``log phi_t`` for the resampling sampler, and discriminator guidance.

Every ``*_log_potential`` returns ``log_potential_fn(x [G, K, *event], t int32[], cond [G] | None)
-> [G, K]`` for :func:`smc_sample`; the potentials may use the whole group (the on-the-fly miss
rate does).

References (Liu et al. 2024 and the reference code, spec Sec. 2.3-2.4):
  discriminator:  log phi_t = logit d(x_t, t), d clipped to [1e-6, 1 - 1e-6] (|log phi| <= 13.8);
  detector:       sum_c log D_c(x0_hat) - log(D_c + (1 - D_c) rho_c(t)),
                  rho_c = delta_c (1 - pi0) / (pi0 + delta_c (1 - pi0)), pi0 = 0.2;
  hybrid:         unconditional discriminator + detector term.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from jaxpapers._src import checks
from jaxpapers.diffusion_resampling._diffusion import Schedule, predict_x0

__all__ = ["LOGIT_CLIP", "discriminator_log_potential", "detector_log_potential",
           "detector_term", "sum_log_potentials", "discriminator_guidance", "flatten_call",
           "predicted_x0"]

#: the reference clips d to [1e-6, 1 - 1e-6] before taking d / (1 - d)
LOGIT_CLIP = math.log((1 - 1e-6) / 1e-6)


def flatten_call(fn, x, t, cond):
    """Call ``fn(x_flat [G*K, ...], t [G*K], cond [G*K] | None)`` on ``x [G, K, ...]``; reshape the
    leading axes of the result back to ``[G, K]``."""
    lead = x.shape[:2]
    flat = jnp.reshape(x, (-1,) + x.shape[2:])
    tt = jnp.full(flat.shape[:1], t, jnp.int32)
    cc = None if cond is None else jnp.reshape(
        jnp.broadcast_to(jnp.asarray(cond)[:, None], lead), (-1,))
    out = fn(flat, tt, cc)
    return jnp.reshape(out, lead + out.shape[1:])


def discriminator_log_potential(logit_fn, clip: float = LOGIT_CLIP):
    """``log phi_t(x) = clip(logit d(x, t, cond))`` (spec Sec. 2.3; odds d/(1-d) as p_t / q_t).

    Args:
      logit_fn: ``(x [B, ...], t [B], y [B] | None) -> [B]`` discriminator logit.
      clip: symmetric clip of the logit (default: the reference's 1e-6 clip of ``d``).
    """

    def log_potential(x, t, cond=None):
        return jnp.clip(flatten_call(logit_fn, x, t, cond), -clip, clip)

    return log_potential


def predicted_x0(eps_fn, schedule: Schedule):
    """``x0_hat(x [G, K, ...], t, cond)`` from an epsilon-predictor (identity at level 0)."""

    def x0_fn(x, t, cond=None):
        eps = flatten_call(eps_fn, x, t, cond)
        return jnp.where(t == 0, x, predict_x0(x, eps, t, schedule))

    return x0_fn


def detector_term(probs, miss_rate, prior: float = 0.2, eps: float = 1e-6):
    """The detector factor ``sum_c log D_c - log(D_c + (1 - D_c) rho_c)`` (always <= 0).

    Args:
      probs: ``[..., C]`` detection probabilities of the objects the condition names.
      miss_rate: ``delta_c`` broadcastable to ``probs`` (the model's miss rate at this level).
      prior: ``pi0``, prior probability that an object is *not* named (reference flag
        ``c0_prior`` = 0.2).
      eps: floor for ``D_c``.

    Returns:
      ``[...]`` the summed log factor.
    """
    d = jnp.clip(probs, eps, 1.0)
    delta = jnp.clip(miss_rate, 0.0, 1.0)
    rho = delta * (1 - prior) / (prior + delta * (1 - prior))
    return jnp.sum(jnp.log(d) - jnp.log(d + (1 - d) * rho), axis=-1)


def detector_log_potential(x0_fn, detector_fn, prior: float = 0.2, miss_rate=None,
                           threshold: float = 0.5):
    """Detector potential on the predicted clean sample (spec Sec. 2.4).

    Args:
      x0_fn: ``(x [G, K, ...], t, cond) -> x0_hat`` (see :func:`predicted_x0`).
      detector_fn: ``(x0 [B, ...], cond [B] | None) -> [B, C]`` probabilities of the ``C`` objects
        named by the condition (pad with 1 for absent slots: they contribute 0).
      prior: ``pi0``.
      miss_rate: None for the reference's on-the-fly fallback (fraction of the group's ``K``
        particles with ``D_c < threshold``), or ``(t) -> [C]`` from pre-computed statistics.
      threshold: detection threshold for the on-the-fly miss rate.

    Returns:
      ``log_potential_fn(x [G, K, ...], t, cond) -> [G, K]``.
    """
    checks.require(0.0 < prior < 1.0, f"prior must lie in (0, 1); got {prior}")

    def log_potential(x, t, cond=None):
        x0 = x0_fn(x, t, cond)
        probs = flatten_call(lambda z, _t, c: detector_fn(z, c), x0, t, cond)  # [G, K, C]
        if miss_rate is None:
            delta = jnp.mean(probs < threshold, axis=1, keepdims=True)  # [G, 1, C]
        else:
            delta = jnp.asarray(miss_rate(t))
        return detector_term(probs, delta, prior)

    return log_potential


def sum_log_potentials(*fns, weights=None):
    """The hybrid potential: ``log phi = sum_i w_i log phi_i`` (discriminator + detector).

    Args:
      *fns: log-potential functions ``(x [G, K, ...], t, cond) -> [G, K]``.
      weights: None (all 1) or ``[len(fns)]`` weights, which may be traced: one compiled
        sampler then serves the discriminator (1, 0), detector (0, 1) and hybrid (1, 1)
        potentials.

    Returns:
      ``log_potential_fn(x, t, cond) -> [G, K]``.
    """
    checks.require(len(fns) > 0, "give at least one log-potential")
    if weights is not None:
        checks.require(jnp.shape(weights) == (len(fns),),
                       f"weights must have shape ({len(fns)},); got {jnp.shape(weights)}")

    def log_potential(x, t, cond=None):
        total = None
        for i, fn in enumerate(fns):
            term = fn(x, t, cond) if weights is None else weights[i] * fn(x, t, cond)
            total = term if total is None else total + term
        return total

    return log_potential


def discriminator_guidance(eps_fn, logit_fn, schedule: Schedule, weight: float = 1.0):
    """Discriminator guidance (Kim et al. 2023): add ``weight * grad_x logit d`` to the score.

    With ``score = -eps / sqrt(1 - abar_t)`` the guided epsilon is
    ``eps - weight sqrt(1 - abar_t) grad_x logit d(x_t, t)``.

    Returns:
      ``eps_fn(x [B, ...], t [B], y) -> [B, ...]`` usable by the DDPM/DDIM steps.
    """

    def guided(x, t, y=None):
        grad = jax.grad(lambda z: jnp.sum(logit_fn(z, t, y)))(x)
        scale = jnp.sqrt(1.0 - schedule.alpha_bars[t])
        scale = jnp.reshape(scale, scale.shape + (1,) * (x.ndim - scale.ndim))
        return eps_fn(x, t, y) - weight * scale * grad

    return guided
