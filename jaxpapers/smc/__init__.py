"""Sequential Monte Carlo resampling kernels.

Public API::

    multinomial(key, weights, num_samples=None) -> int32[M]
    stratified(key, weights, num_samples=None)  -> int32[M]
    systematic(key, weights, num_samples=None)  -> int32[M]
    residual(key, weights, num_samples=None)    -> int32[M]
    normalize_log_weights(log_weights) -> (weights, log_normalizer)
    ess(log_weights), log_ess(log_weights)
    resample(key, log_weights, scheme="systematic", num_samples=None) -> int32[M]
    maybe_resample(key, log_weights, threshold=0.5, scheme="systematic")
        -> (indices, new_log_weights, did_resample)

A reference problem with an exact answer (linear-Gaussian state-space model)::

    LGSSM, simulate(key, model, T), kalman_log_likelihood(model, ys),
    bootstrap_particle_filter(key, model, ys, num_particles, scheme, ess_threshold)

Groups of particles (``[G, K]`` log-weights) resample independently with ``jax.vmap``::

    keys = jax.random.split(key, G)
    indices = jax.vmap(lambda k, lw: resample(k, lw, "systematic"))(keys, log_weights)  # [G, K]
"""

from jaxpapers.smc._adaptive import maybe_resample, resample
from jaxpapers.smc._lgssm import (
    LGSSM,
    FilterOutput,
    bootstrap_particle_filter,
    kalman_log_likelihood,
    simulate,
)
from jaxpapers.smc._resampling import RESAMPLERS, multinomial, residual, stratified, systematic
from jaxpapers.smc._weights import (
    ess,
    log_ess,
    log_weights_are_valid,
    normalize_log_weights,
    weights_are_valid,
)

__all__ = [
    "FilterOutput",
    "LGSSM",
    "bootstrap_particle_filter",
    "kalman_log_likelihood",
    "simulate",
    "RESAMPLERS",
    "ess",
    "log_ess",
    "log_weights_are_valid",
    "maybe_resample",
    "multinomial",
    "normalize_log_weights",
    "resample",
    "residual",
    "stratified",
    "systematic",
    "weights_are_valid",
]
