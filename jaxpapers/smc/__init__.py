"""Sequential Monte Carlo: resampling kernels, one SMC step and a particle filter.

The four schemes (``multinomial``, ``stratified``, ``systematic``, ``residual``) map ``(key,
weights [N], num_samples=M)`` to sorted int32 ancestors ``[M]``; ``init``/``make_step`` are the
State/Info particle-filter step and ``particle_filter`` runs it over ``lax.scan``; ``LGSSM`` and
``kalman_log_likelihood`` are a reference problem with an exact answer. Groups of particles
(``[G, K]`` log-weights) resample independently under ``jax.vmap``::

    keys = jax.random.split(key, G)
    indices = jax.vmap(lambda k, lw: resample(k, lw, "systematic"))(keys, log_weights)  # [G, K]

Bad input: a wrong shape, dtype or setting raises ``ValueError`` naming the argument, at call or
trace time. A bad value (NaN/inf, out of range) raises eagerly; under ``jit`` the result carries
a ``valid`` flag that is False (``SMCInfo.valid``, ``FilterOutput.valid``; the resamplers'
identity ancestry) or is NaN where documented (``ess``, ``normalize_log_weights``,
``kalman_log_likelihood``).
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
