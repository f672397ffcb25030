"""Log-weight normalisation, effective sample size and weight validation."""

from __future__ import annotations

import jax.numpy as jnp
from jax.scipy.special import logsumexp

from jaxpapers._src import checks

__all__ = ["ess", "log_ess", "normalize_log_weights", "weights_are_valid", "log_weights_are_valid"]


def check_vector(x, name: str) -> None:
    x = jnp.asarray(x)
    checks.require(x.ndim == 1, f"{name} must be a 1-D array of shape (num_particles,); got shape "
                                f"{x.shape}. For groups of particles use jax.vmap.")
    checks.require(x.shape[0] > 0, f"{name} must not be empty")
    check_real(x, name)


def check_real(x, name: str) -> None:
    """Floating or integer dtype (bool and complex are refused, not silently cast)."""
    dtype = jnp.asarray(x).dtype
    checks.require(jnp.issubdtype(dtype, jnp.floating) or jnp.issubdtype(dtype, jnp.integer),
                   f"{name} must be real (floating or integer); got dtype {dtype}")


def normalize_log_weights(log_weights):
    """Normalised weights and the log normaliser from unnormalised log-weights.

    ``weights = exp(l - logsumexp(l))`` and ``log_normalizer = logsumexp(l)``. The log-likelihood
    increment of a particle filter is ``log_normalizer - log(num_particles)`` (log mean weight).

    Args:
      log_weights: ``[N]`` unnormalised log-weights; ``-inf`` marks a zero weight.

    Returns:
      ``(weights [N], log_normalizer [])``. If every entry is ``-inf`` or any is NaN the weights
      are NaN (never a silent uniform fallback); :func:`log_weights_are_valid` gives the flag.

    Raises:
      ValueError: on a wrong rank or an empty array (always), and eagerly on NaN/+inf log-weights
        or when all log-weights are ``-inf``.
    """
    log_weights = jnp.asarray(log_weights)
    check_vector(log_weights, "log_weights")
    checks.raise_if_concrete(lambda l: ~log_weights_are_valid(l),
                             "log_weights must contain no NaN or +inf and at least one finite "
                             "entry", log_weights)
    log_normalizer = logsumexp(log_weights)
    weights = jnp.exp(log_weights - log_normalizer)
    return weights, log_normalizer


def log_ess(log_weights):
    """Log effective sample size, ``2 lse(l) - lse(2 l)``, in ``[0, log N]``.

    Args:
      log_weights: ``[N]`` unnormalised log-weights, floating or integer.

    Returns:
      A scalar of the log-weights' floating dtype; NaN if the log-weights are invalid (NaN,
      ``+inf``, or all ``-inf``).

    Raises:
      ValueError: a rank other than 1, an empty array, or a bool or complex dtype.

    Example:
      >>> import jax.numpy as jnp
      >>> from jaxpapers.smc import log_ess
      >>> round(float(log_ess(jnp.zeros(8))), 4)  # log 8
      2.0794
    """
    log_weights = jnp.asarray(log_weights)
    check_vector(log_weights, "log_weights")
    return 2.0 * logsumexp(log_weights) - logsumexp(2.0 * log_weights)


def ess(log_weights):
    """Effective sample size ``(sum w)^2 / sum w^2`` from unnormalised log-weights, in ``[1, N]``.

    Invariant to adding a constant to the log-weights.

    Args:
      log_weights: ``[N]`` unnormalised log-weights, floating or integer.

    Returns:
      A scalar of the log-weights' floating dtype; NaN if the log-weights are invalid.

    Raises:
      ValueError: a rank other than 1, an empty array, or a bool or complex dtype.

    Example:
      >>> import jax.numpy as jnp
      >>> from jaxpapers.smc import ess
      >>> round(float(ess(jnp.log(jnp.array([1.0, 1.0, 0.0, 0.0])))), 4)
      2.0
    """
    return jnp.exp(log_ess(log_weights))


def weights_are_valid(weights):
    """Jittable flag: weights finite, non-negative, with a positive finite sum.

    Args:
      weights: an array of weights (any shape; usually ``[N]``).

    Returns:
      A scalar bool array; the resamplers fall back on the identity ancestry under ``jit``
      where this is False.
    """
    weights = jnp.asarray(weights)
    total = jnp.sum(weights)
    finite = jnp.all(jnp.isfinite(weights)) & jnp.isfinite(total)
    return finite & jnp.all(weights >= 0) & (total > 0)


def log_weights_are_valid(log_weights):
    """Jittable flag: no NaN or ``+inf`` and at least one finite log-weight.

    Args:
      log_weights: an array of log-weights (any shape; usually ``[N]``); ``-inf`` is a zero
        weight.

    Returns:
      A scalar bool array.
    """
    log_weights = jnp.asarray(log_weights)
    return (~jnp.any(jnp.isnan(log_weights)) & ~jnp.any(log_weights == jnp.inf)
            & jnp.any(jnp.isfinite(log_weights)))
