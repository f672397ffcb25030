"""A linear-Gaussian state-space model: exact Kalman log-likelihood and a bootstrap filter.

The reference problem for comparing resampling schemes: the Kalman filter gives the exact
log-likelihood, so the bias and variance of the particle filter's estimate under each scheme can
be measured directly.

Model (scalar state and observation)::

    x_0 ~ N(0, s0^2),   x_t = a x_{t-1} + sx * e_t,   y_t = x_t + sy * n_t,   e_t, n_t ~ N(0, 1)
"""

from __future__ import annotations

import dataclasses
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxpapers._src import checks
from jaxpapers._src.threefry import check_key
from jaxpapers.smc._step import particle_filter

__all__ = ["LGSSM", "simulate", "kalman_log_likelihood", "bootstrap_particle_filter",
           "FilterOutput"]


@dataclasses.dataclass(frozen=True)
class LGSSM:
    """A scalar linear-Gaussian state-space model, validated on construction.

    ``x_0 ~ N(0, s0^2)``, ``x_t = a x_{t-1} + sx e_t``, ``y_t = x_t + sy n_t`` with standard
    normal ``e_t``, ``n_t``.

    Attributes:
      transition: ``a``, any finite number.
      transition_scale: ``sx > 0``.
      observation_scale: ``sy > 0``.
      initial_scale: ``s0 > 0``.

    Raises:
      ValueError: a non-finite ``transition`` or a scale that is not finite and positive.
    """

    transition: float = 0.9          # a
    transition_scale: float = 1.0    # sx
    observation_scale: float = 1.0   # sy
    initial_scale: float = 1.0       # s0

    def __post_init__(self):
        if not isinstance(self.transition, (int, float)) or not math.isfinite(self.transition):
            raise ValueError(f"transition must be a finite number; got {self.transition!r}")
        for name in ("transition_scale", "observation_scale", "initial_scale"):
            if not 0 < getattr(self, name) < math.inf:
                raise ValueError(f"{name} must be finite and positive; got {getattr(self, name)}")


def simulate(key, model: LGSSM, num_steps: int):
    """Draw a trajectory of ``model`` and its observations.

    Args:
      key: PRNG key.
      model: the :class:`LGSSM`.
      num_steps: static ``T >= 1``.

    Returns:
      ``(states, observations)``, each float ``[T]`` (the default float dtype).

    Raises:
      ValueError: ``num_steps`` is not a positive Python int, or ``key`` is not a PRNG key.
    """
    num_steps = checks.require_positive_int(num_steps, "num_steps")
    check_key(key)
    key_x0, key_e, key_n = jax.random.split(key, 3)
    x0 = model.initial_scale * jax.random.normal(key_x0)
    noise = model.transition_scale * jax.random.normal(key_e, (num_steps,))
    noise = noise.at[0].set(0.0)

    def step(x, e):
        x = model.transition * x + e
        return x, x

    first = x0
    _, rest = jax.lax.scan(step, first, noise[1:])
    states = jnp.concatenate([first[None], rest])
    observations = states + model.observation_scale * jax.random.normal(key_n, (num_steps,))
    return states, observations


def _checked_observations(observations):
    observations = jnp.asarray(observations)
    checks.require(observations.ndim == 1 and observations.shape[0] > 0,
                   f"observations must have shape (T,) with T >= 1; got {observations.shape}")
    checks.require(jnp.issubdtype(observations.dtype, jnp.floating),
                   f"observations must be floating; got dtype {observations.dtype}")
    checks.raise_if_concrete(lambda y: ~jnp.all(jnp.isfinite(y)),
                             "observations must be finite (NaN or inf found)", observations)
    return observations


def kalman_log_likelihood(model: LGSSM, observations):
    """Exact ``log p(y_{0:T-1})`` by the Kalman filter.

    Args:
      model: the :class:`LGSSM`.
      observations: floating ``[T]`` observations, ``T >= 1``.

    Returns:
      A scalar of the observations' dtype; under ``jit`` a non-finite observation gives NaN.

    Raises:
      ValueError: observations not a floating ``[T]`` array; eagerly, a NaN or infinite
        observation.

    Example:
      >>> import jax.numpy as jnp
      >>> from jaxpapers.smc import LGSSM, kalman_log_likelihood
      >>> model = LGSSM(transition=0.0, transition_scale=1.0, observation_scale=1.0)
      >>> round(float(kalman_log_likelihood(model, jnp.zeros(1))), 4)  # log N(0; 0, 2)
      -1.2655
    """
    observations = _checked_observations(observations)

    def step(carry, y):
        mean, var = carry
        pred_var = var + model.observation_scale**2
        log_lik = -0.5 * (jnp.log(2 * jnp.pi * pred_var) + (y - mean) ** 2 / pred_var)
        gain = var / pred_var
        post_mean = mean + gain * (y - mean)
        post_var = (1 - gain) * var
        next_mean = model.transition * post_mean
        next_var = model.transition**2 * post_var + model.transition_scale**2
        return (next_mean, next_var), log_lik

    init = (jnp.zeros(()), jnp.asarray(model.initial_scale**2))
    _, terms = jax.lax.scan(step, init, jnp.asarray(observations))
    return jnp.sum(terms)


class FilterOutput(NamedTuple):
    """What :func:`bootstrap_particle_filter` returns.

    Attributes:
      log_likelihood: scalar, the estimate of ``log p(y)``.
      num_resamples: scalar int32, the steps that resampled.
      ess: ``[T]`` ESS before each resampling decision.
      valid: scalar bool: every step's weights were valid and no observation was NaN or infinite
        (False: the estimate is meaningless).
    """

    log_likelihood: jax.Array   # [] estimate of log p(y)
    num_resamples: jax.Array    # [] int32
    ess: jax.Array              # [T] ESS before each resampling decision
    valid: jax.Array            # [] bool: every step's weights were valid and no observation
                                #    was NaN or infinite (False: the estimate is meaningless)


def bootstrap_particle_filter(key, model: LGSSM, observations, num_particles: int,
                              scheme: str = "systematic", ess_threshold: float = 1.0):
    """Bootstrap particle filter for :class:`LGSSM`; ``ess_threshold=1`` resamples at every step.

    A thin use of :func:`jaxpapers.smc.particle_filter`: the prior ``N(0, s0^2)`` draws the
    initial particles, the transition ``x_t = a x_{t-1} + sx e_t`` moves them, and the
    observation density ``N(y_t; x_t, sy^2)`` weights them. The log-likelihood estimate is the sum
    over steps of the log of the mean weight increment under the normalised previous weights
    (unbiased in ``p(y)``, not ``log p(y)``, for every unbiased scheme).

    Args:
      key: PRNG key (split into the initial draw and the filter's key).
      model: the :class:`LGSSM`.
      observations: ``[T]`` observations ``y_{0:T-1}``.
      num_particles: ``N`` (static).
      scheme: resampling scheme name.
      ess_threshold: resample when ``ESS < ess_threshold * N`` (in ``[0, 1]``).

    Returns:
      :class:`FilterOutput`: ``log_likelihood []``, ``num_resamples [] int32``, ``ess [T]``
      (before each resampling decision) and ``valid []`` (False when an observation is NaN or
      infinite or a step's weights were invalid).

    Raises:
      ValueError: on a bad key, shape, dtype, size, scheme or ``ess_threshold``; eagerly on a
        NaN or infinite observation.
    """
    num_particles = checks.require_positive_int(num_particles, "num_particles")
    check_key(key)
    observations = _checked_observations(observations)
    key_init, key_steps = jax.random.split(key)
    particles = model.initial_scale * jax.random.normal(key_init, (num_particles,))

    def transition_fn(key, particles, y):
        del y
        return model.transition * particles + model.transition_scale * jax.random.normal(
            key, particles.shape)

    def log_potential_fn(particles, y):
        return -0.5 * (jnp.log(2 * jnp.pi * model.observation_scale**2)
                       + (y - particles) ** 2 / model.observation_scale**2)

    state, infos = particle_filter(key_steps, transition_fn, log_potential_fn, particles,
                                   observations, scheme=scheme, ess_threshold=ess_threshold)
    valid = (jnp.all(infos.valid) & jnp.all(infos.num_nan == 0)
             & jnp.all(jnp.isfinite(observations)) & jnp.isfinite(state.log_likelihood))
    return FilterOutput(state.log_likelihood, state.num_resamples, infos.ess, valid)
