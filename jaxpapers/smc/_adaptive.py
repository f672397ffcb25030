"""Resampling from log-weights, and the branch-free ESS-adaptive rule."""

from __future__ import annotations

import jax.numpy as jnp

from jaxpapers._src import checks
from jaxpapers.smc._resampling import RESAMPLERS
from jaxpapers.smc._weights import check_vector, log_ess, log_weights_are_valid

__all__ = ["resample", "maybe_resample"]


def _resampler(scheme: str):
    if scheme not in RESAMPLERS:
        raise ValueError(f"scheme must be one of {sorted(RESAMPLERS)}; got {scheme!r}")
    return RESAMPLERS[scheme]


def _weights_from_log(log_weights):
    log_weights = jnp.asarray(log_weights)
    check_vector(log_weights, "log_weights")
    checks.raise_if_concrete(lambda l: ~log_weights_are_valid(l),
                             "log_weights must contain no NaN or +inf and at least one finite "
                             "entry", log_weights)
    valid = log_weights_are_valid(log_weights)
    shifted = log_weights - jnp.max(jnp.where(jnp.isfinite(log_weights), log_weights, -jnp.inf))
    weights = jnp.where(valid, jnp.exp(shifted), jnp.nan)  # invalid -> identity ancestry below
    return weights, valid


def resample(key, log_weights, scheme: str = "systematic", num_samples=None):
    """Ancestor indices from unnormalised log-weights.

    Shift invariant: adding a constant to ``log_weights`` leaves the indices unchanged for a
    given key. Under ``jit`` invalid log-weights (NaN, +inf, all -inf) give the identity ancestry
    ``arange(M) % N``; eagerly they raise ``ValueError``.

    Args:
      key: PRNG key.
      log_weights: ``[N]`` unnormalised log-weights.
      scheme: ``"systematic"`` (default), ``"stratified"``, ``"residual"`` or ``"multinomial"``.
      num_samples: static output size ``M`` (default ``N``).

    Returns:
      ``[M]`` int32 ancestor indices, sorted.

    Raises:
      ValueError: an unknown scheme, a rank other than 1, an empty array, a bad
        ``num_samples``; eagerly, invalid log-weights.
    """
    resampler = _resampler(scheme)
    weights, _ = _weights_from_log(log_weights)
    return resampler(key, weights, num_samples)


def maybe_resample(key, log_weights, threshold: float = 0.5, scheme: str = "systematic"):
    """Resample iff ``ESS < threshold * N`` (branch-free: both outcomes are computed, one kept).

    Args:
      key: PRNG key.
      log_weights: ``[N]`` unnormalised log-weights.
      threshold: in ``[0, 1]``; 1 resamples whenever the weights are not uniform, 0 never.
        May be traced: a traced value outside ``[0, 1]`` (or NaN) makes the returned
        log-weights NaN (invalid, see :func:`log_weights_are_valid`) and never resamples.
      scheme: resampling scheme name.

    Returns:
      ``(indices [N] int32, new_log_weights [N], did_resample [] bool)``. After resampling the
      new log-weights are uniform (``-log N``, so ``logsumexp`` is 0); otherwise the input
      log-weights are carried forward with identity indices. Invalid log-weights never
      resample: identity indices, the input log-weights (NaN stays visible) and ``False``.

    Raises:
      ValueError: an unknown scheme, a rank other than 1, an empty array, or a concrete
        ``threshold`` outside ``[0, 1]``.
    """
    if checks.is_concrete(threshold) and not 0.0 <= float(threshold) <= 1.0:
        raise ValueError(f"threshold must lie in [0, 1]; got {threshold}")
    resampler = _resampler(scheme)
    log_weights = jnp.asarray(log_weights)
    weights, valid = _weights_from_log(log_weights)
    num_particles = log_weights.shape[0]
    threshold_ok = (threshold >= 0) & (threshold <= 1)
    do_resample = (valid & threshold_ok
                   & (log_ess(log_weights) < jnp.log(threshold * num_particles)))
    indices = jnp.where(do_resample, resampler(key, weights, num_particles),
                        jnp.arange(num_particles, dtype=jnp.int32))
    uniform = jnp.full_like(log_weights, -jnp.log(num_particles))
    new_log_weights = jnp.where(do_resample, uniform,
                                jnp.where(threshold_ok, log_weights, jnp.nan))
    return indices, new_log_weights, do_resample
