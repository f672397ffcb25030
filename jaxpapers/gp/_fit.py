"""Hyper-parameter fitting by maximising the log marginal likelihood with Optax (vmapped restarts).

Parameters are optimised in log space (``log l``, ``log s^2``, ``log lambda``), clipped to a box so
that a diverging restart cannot produce an unusable model. Restart 0 starts at ``init``; the others
start at ``init`` times log-uniform factors in ``[1/spread, spread]``. All restarts run in one
``vmap``; the best finite final log marginal likelihood wins. When no restart ends finite (NaN
or infinite data under ``jit``) the result is NaN throughout (documented; eagerly such data
raise ``ValueError``).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxpapers._src import checks
from jaxpapers._src.threefry import check_key
from jaxpapers.gp._kernels import GPParams
from jaxpapers.gp._posterior import (
    _check_jitter,
    _check_values,
    _checked_inputs,
    log_marginal_likelihood,
)

__all__ = ["FitResult", "fit_hypers"]


class FitResult(NamedTuple):
    """Outcome of :func:`fit_hypers`.

    Attributes:
      params: best :class:`GPParams`.
      log_marginal_likelihood: scalar, at ``params``.
      restart_lml: ``[R]`` final log marginal likelihood of every restart (NaN if it failed).
    """

    params: GPParams
    log_marginal_likelihood: jax.Array
    restart_lml: jax.Array


def fit_hypers(key, params: GPParams, x, y, mask=None, *, kernel: str = "se",
               num_restarts: int = 4, num_steps: int = 300, learning_rate: float = 0.01,
               spread: float = 3.0, log_bounds=((-7.0, 3.0), (-7.0, 3.0), (-16.0, 1.0)),
               fit_noise: bool = True, jitter: float = 1e-8) -> FitResult:
    """Maximise the log marginal likelihood over hyper-parameters with Adam.

    Args:
      key: PRNG key (restart initialisation).
      params: initial :class:`GPParams` (also restart 0).
      x: ``[B, d]`` inputs.
      y: ``[B]`` targets.
      mask: ``[B]`` bool mask of real rows (default all).
      kernel: kernel name.
      num_restarts: static number of restarts ``R`` (vmapped).
      num_steps: static number of Adam steps.
      learning_rate: Adam learning rate in log space.
      spread: restarts start within a factor ``spread`` of ``params``.
      log_bounds: ``((lo, hi) for log l, log s^2, log lambda)`` box for the log-parameters.
      fit_noise: if False the noise variance stays at ``params.noise``.
      jitter: fixed diagonal jitter inside the objective.

    Returns:
      A :class:`FitResult`; every field NaN when no restart ends with a finite log marginal
      likelihood (NaN or infinite data under ``jit``).

    Raises:
      ValueError: on bad sizes, shapes, dtypes or settings (``learning_rate`` not finite and
        positive, ``log_bounds`` not three finite ``lo < hi`` pairs, ``spread < 1``, a negative
        ``jitter``); eagerly on NaN/inf data or bad starting hyper-parameters.
    """
    check_key(key)
    num_restarts = checks.require_positive_int(num_restarts, "num_restarts")
    num_steps = checks.require_positive_int(num_steps, "num_steps")
    checks.require(spread >= 1.0, f"spread must be >= 1; got {spread}")
    checks.require(isinstance(learning_rate, (int, float)) and math.isfinite(learning_rate)
                   and learning_rate > 0,
                   f"learning_rate must be a finite number > 0; got {learning_rate!r}")
    bounds = [tuple(b) for b in log_bounds]
    checks.require(len(bounds) == 3 and all(len(b) == 2 and math.isfinite(b[0])
                                            and math.isfinite(b[1]) and b[0] < b[1]
                                            for b in bounds),
                   "log_bounds must be three finite (lo, hi) pairs with lo < hi (log "
                   f"lengthscale, log variance, log noise); got {log_bounds!r}")
    _check_jitter(jitter)
    x, y, mask = _checked_inputs(params, x, y, mask)
    _check_values(params, x, y, mask)
    dtype = jnp.asarray(x).dtype
    dim = jnp.shape(x)[1]
    log0 = GPParams(jnp.log(jnp.broadcast_to(jnp.asarray(params.lengthscale, dtype), (dim,))),
                    jnp.log(jnp.asarray(params.variance, dtype)),
                    jnp.log(jnp.asarray(params.noise, dtype)))
    lo = GPParams(*(jnp.asarray(b[0], dtype) for b in log_bounds))
    hi = GPParams(*(jnp.asarray(b[1], dtype) for b in log_bounds))

    def clip(p):
        return jax.tree_util.tree_map(jnp.clip, p, lo, hi)

    def to_params(logp):
        noise = jnp.exp(logp.noise) if fit_noise else jnp.asarray(params.noise, dtype)
        return GPParams(jnp.exp(logp.lengthscale), jnp.exp(logp.variance), noise)

    def loss(logp):
        return -log_marginal_likelihood(to_params(logp), x, y, mask, kernel=kernel,
                                        jitter=jitter)

    leaves, treedef = jax.tree_util.tree_flatten(log0)
    keys = jax.random.split(key, len(leaves))
    log_spread = jnp.log(jnp.asarray(spread, dtype))
    offsets = [jax.random.uniform(k, (num_restarts,) + jnp.shape(v), dtype, -1.0, 1.0)
               * log_spread for k, v in zip(keys, leaves, strict=True)]
    offsets = [o.at[0].set(0.0) for o in offsets]
    starts = jax.tree_util.tree_unflatten(
        treedef, [v[None] + o for v, o in zip(leaves, offsets, strict=True)])
    optimizer = optax.adam(learning_rate)

    def run(logp):
        logp = clip(logp)

        def step(carry, _):
            p, state = carry
            value, grad = jax.value_and_grad(loss)(p)
            grad = jax.tree_util.tree_map(lambda g: jnp.where(jnp.isfinite(g), g, 0.0), grad)
            updates, state = optimizer.update(grad, state, p)
            return (clip(optax.apply_updates(p, updates)), state), value

        (p, _), _ = jax.lax.scan(step, (logp, optimizer.init(logp)), None, length=num_steps)
        return p, -loss(p)

    final, lml = jax.vmap(run)(starts)
    score = jnp.where(jnp.isfinite(lml), lml, -jnp.inf)
    best = jnp.argmax(score)
    found = jnp.isfinite(score[best])  # no fallback to restart 0 when every restart failed
    best_log = jax.tree_util.tree_map(lambda v: v[best], final)
    best_params = jax.tree_util.tree_map(lambda v: jnp.where(found, v, jnp.nan),
                                         to_params(best_log))
    return FitResult(best_params, jnp.where(found, lml[best], jnp.nan), lml)
