"""Sequential Monte Carlo: resampling kernels, one SMC step and a particle filter.

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

One SMC step (State/Info pairs; every particle filter in the package is this step over
``lax.scan``)::

    SMCState(particles, log_weights, log_likelihood, num_resamples)
    SMCInfo(ancestors, log_likelihood_increment, ess, resampled, valid, num_nan)
    init(particles, log_weights=None) -> SMCState
    reweight(state, log_potential, normalize=True) -> (SMCState, SMCInfo)    # no resampling
    step = make_step(scheme="systematic", ess_threshold=None, normalize=True)
    step(key, state, log_potential) -> (SMCState, SMCInfo)
    particle_filter(key, transition_fn, log_potential_fn, particles, inputs, *, scheme,
                    ess_threshold, log_weights=None) -> (SMCState, SMCInfo [T, ...])

A reference problem with an exact answer (linear-Gaussian state-space model)::

    LGSSM, simulate(key, model, T), kalman_log_likelihood(model, ys),
    bootstrap_particle_filter(key, model, ys, num_particles, scheme, ess_threshold)

Groups of particles (``[G, K]`` log-weights) resample independently with ``jax.vmap``; the step
and the filter batch the same way::

    keys = jax.random.split(key, G)
    indices = jax.vmap(lambda k, lw: resample(k, lw, "systematic"))(keys, log_weights)  # [G, K]
    states, infos = jax.vmap(step)(keys, states, log_potentials)                     # [G, K]

Bad input (the rule of every function here): a wrong shape, dtype or setting raises
``ValueError`` naming the argument, at call or trace time. A bad value (NaN/inf, out of range)
raises eagerly; under ``jit`` the result carries a ``valid`` flag that is False
(``SMCInfo.valid``, ``FilterOutput.valid``; the resamplers' documented fallback) or is NaN where
documented (``ess``, ``normalize_log_weights``, ``kalman_log_likelihood``).

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
from jaxpapers.smc._step import SMCInfo, SMCState, init, make_step, particle_filter, reweight
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
    "SMCInfo",
    "SMCState",
    "init",
    "make_step",
    "particle_filter",
    "reweight",
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
