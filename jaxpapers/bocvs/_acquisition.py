"""Expected acquisition values over uncontrolled variables and their maximisation per control set.

A control set ``i`` is a 0/1 mask row ``M_i [d]``. A control query is a full ``d``-vector ``x``
whose uncontrolled entries are ignored; the assembled inputs ``Z_n = M_i x + (1 - M_i) w_n`` use the
fixed sample matrix ``W [N, d]`` (common random numbers, as in the reference code), so every control
set has the same shapes and ``vmap`` runs over sets and restarts. Gradients with respect to
uncontrolled coordinates are exactly zero, so ascent stays inside ``X^i``.

Expected UCB (Tay et al. 2023): ``U_i(x) = 1/N sum_n mu(Z_n) + beta sigma(Z_n)`` (the mean of
point-wise UCBs, not the UCB of the averaged function).

Shapes: ``m`` control sets, ``d`` variables, ``N`` samples, ``R`` restarts, ``F`` features.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax
from jax.scipy.linalg import cho_solve

from jaxpapers._src import checks
from jaxpapers._src.threefry import check_key
from jaxpapers.bocvs._common import (
    OptimizerConfig,
    as_optimizer_config,
    check_floats,
    check_masks,
    nan_for_bad_sets,
)
from jaxpapers.bocvs._newton import autodiff_derivatives, closed_form_hooks, newton_refine
from jaxpapers.gp import GPParams, Posterior, ucb

__all__ = [
    "assemble",
    "expected_value",
    "expected_ucb",
    "OptimizerConfig",
    "maximize_per_control_set",
    "maximize_expected_ucb",
    "RFFSample",
    "rff_posterior_sample",
    "rff_evaluate",
]


def assemble(mask_row, x, w):
    """The ``N`` full inputs ``M x + (1 - M) w_n`` of one control query.

    Args:
      mask_row: ``(d,)`` floating 0/1 mask of the control set.
      x: ``(d,)`` floating control query (its uncontrolled entries are ignored).
      w: ``(N, d)`` floating samples of the uncontrolled variables.

    Returns:
      ``(N, d)`` assembled inputs; NaN rows follow NaN inputs (under ``jit``).

    Raises:
      ValueError: a wrong shape or dtype; eagerly, a mask entry other than 0/1 or a non-finite
        ``x`` or ``w``.

    >>> assemble(jnp.asarray([1.0, 0.0]), jnp.asarray([0.3, 0.9]),
    ...          jnp.asarray([[0.5, 0.1], [0.5, 0.2]])).tolist()
    [[0.30000001192092896, 0.10000000149011612], [0.30000001192092896, 0.20000000298023224]]
    """
    mask_row = check_masks(mask_row, "mask_row", (jnp.shape(mask_row)[-1:] or (1,)))
    d = mask_row.shape[0]
    x = check_floats(x, "x", (d,))
    w = check_floats(w, "w", (None, d))
    return mask_row[None, :] * x[None, :] + (1.0 - mask_row[None, :]) * w


def expected_value(point_fn: Callable, mask_row, x, w):
    """Sample average ``1/N sum_n point_fn(Z_n)`` where ``point_fn: [N, d] -> [N]``."""
    return jnp.mean(point_fn(assemble(mask_row, x, w)))


def expected_ucb(posterior: Posterior, mask_row, x, w, beta):
    """Expected UCB ``U_i(x)`` of control query ``x [d]`` under mask ``mask_row [d]``.

    Args:
      posterior: conditioned GP.
      mask_row: ``[d]`` 0/1 mask of the control set.
      x: ``[d]`` control query (uncontrolled entries ignored).
      w: ``[N, d]`` fixed samples of the variables.
      beta: scalar; ``beta = 0`` gives the sample mean of the posterior mean.

    Returns:
      Scalar of the posterior's dtype; NaN when an input holds NaN/inf or ``beta`` is negative
      under ``jit``.

    Raises:
      ValueError: ``mask_row``, ``x`` or ``w`` of the wrong shape (``[d]``, ``[d]``, ``[N, d]``)
        or dtype; eagerly, NaN/inf inputs or a negative ``beta``.
    """
    d = posterior.x.shape[1]
    mask_row = check_masks(mask_row, "mask_row", (d,))
    x = check_floats(x, "x", (d,))
    w = check_floats(w, "w", (None, d))
    return expected_value(lambda z: ucb(posterior, z, beta), mask_row, x, w)


_EDGE = 1e-6


def raw_candidates(key, num_sets: int, d: int, config: OptimizerConfig, dtype):
    """The ``[num_sets, num_raw, d]`` uniform candidates :func:`maximize_per_control_set` draws
    from ``key``; rows of it give a subset of the sets the same candidates as the whole."""
    return jax.random.uniform(key, (num_sets, config.num_raw, d), dtype, _EDGE, 1.0 - _EDGE)


def maximize_per_control_set(key, value_fn: Callable, masks, config: OptimizerConfig, *,
                             point_fn: Callable | None = None, w=None,
                             score_fn: Callable | None = None,
                             derivatives: Callable | None = None, candidates=None):
    """Maximise ``value_fn(mask_row, x)`` over ``x in [0, 1]^d`` separately for every control set.

    See :func:`_maximize_per_control_set` for the arguments; a set's value is NaN when its
    mask row is not finite or ``value_fn`` is NaN at every candidate.
    """
    x_hat, value = _maximize_per_control_set(key, value_fn, masks, config, point_fn=point_fn,
                                             w=w, score_fn=score_fn, derivatives=derivatives,
                                             candidates=candidates)
    return x_hat, nan_for_bad_sets(jnp.asarray(masks), value)


def _maximize_per_control_set(key, value_fn: Callable, masks, config: OptimizerConfig, *,
                             point_fn: Callable | None = None, w=None,
                             score_fn: Callable | None = None,
                             derivatives: Callable | None = None, candidates=None):
    """Maximise ``value_fn(mask_row, x)`` over ``x in [0, 1]^d`` separately for every control set.

    Random candidates are scored (``lax.map`` in batches), the best ``R`` per set are refined
    (cosine-decayed Adam ascent in logit space, or Newton in the box; see
    :class:`OptimizerConfig`), all sets and restarts in one ``vmap``; the best of the refined
    points and the best raw candidate, by ``value_fn``, is returned.

    Args:
      key: PRNG key (candidates).
      value_fn: ``(mask_row [d], x [d]) -> scalar``, smooth in ``x``.
      masks: ``[m, d]`` control-set masks.
      config: :class:`OptimizerConfig`.
      point_fn: optional ``[P, d] -> [P]`` point-wise function whose sample average over ``w`` is
        ``value_fn``. When given, every full control set (mask of ones) also scores the ``m N``
        assembled points ``M_i x_hat_i + (1 - M_i) w_n`` of all sets' maximisers. Because
        ``mean_n g(Z_n) <= max_n g(Z_n)``, this makes the full set's value at least every partial
        set's value, the ordering ``max_x u >= max_{x^i} U_i`` that holds exactly in theory
        and that a finite optimiser would otherwise violate now and then.
      w: ``[N, d]`` samples, required with ``point_fn``.
      score_fn: optional ``(set_index, x) -> scalar``, the same function as ``value_fn`` computed
        faster, used to score the random candidates (default: ``value_fn``).
      derivatives: optional ``(set_index, x) -> (value, gradient [d], Hessian [d, d])`` for
        ``method="newton"`` (default: automatic differentiation of ``value_fn``), or a sequence
        of them: Newton runs on each in turn from the previous one's result (a cheap proxy of
        ``value_fn`` first, then ``value_fn``'s own derivatives to finish).
      candidates: optional ``[m, num_raw, d]`` random candidates to score instead of drawing them
        from ``key`` (see :func:`raw_candidates`).

    Returns:
      ``(x_hat [m, d], value [m])``; a value is NaN when its set's ``value_fn`` is NaN at every
      candidate (NaN in the masks or in what ``value_fn`` closes over).

    Raises:
      ValueError: on a bad ``config``, ``key`` or ``masks`` shape or dtype; eagerly on masks
        other than 0/1.
    """
    check_key(key)
    config = as_optimizer_config(config)
    masks = check_masks(masks)
    m, d = masks.shape
    dtype = masks.dtype
    if candidates is None:
        cand = raw_candidates(key, m, d, config, dtype)
    else:
        cand = jnp.asarray(candidates, dtype)
        checks.require(cand.shape == (m, config.num_raw, d), "candidates must have shape "
                       f"{(m, config.num_raw, d)}; got {cand.shape}")
    batch = min(config.batch_size, config.num_raw)
    if score_fn is None:
        def score_set(mask_row, xs):
            return jax.lax.map(lambda x: value_fn(mask_row, x), xs, batch_size=batch)

        raw = jax.vmap(score_set)(masks, cand)  # [m, num_raw]
    else:
        def score_set(i, xs):
            return jax.lax.map(lambda x: score_fn(i, x), xs, batch_size=batch)

        raw = jax.vmap(score_set)(jnp.arange(m), cand)
    raw = jnp.where(jnp.isfinite(raw), raw, -jnp.inf)
    top, idx = jax.lax.top_k(raw, config.num_restarts)
    starts = jnp.take_along_axis(cand, idx[:, :, None], axis=1)  # [m, R, d]
    batched = jax.vmap(jax.vmap(value_fn, in_axes=(None, 0)), in_axes=(0, 0))
    if score_fn is not None:  # the best candidate's value by value_fn itself
        top = batched(masks, starts[:, :1])
    if config.num_steps == 0:
        return _improve_full_sets(starts[:, 0], top[:, 0], masks, point_fn, w)
    if config.method == "newton":
        if derivatives is None:
            derivatives = autodiff_derivatives(value_fn, masks)
        stages = derivatives if isinstance(derivatives, (tuple, list)) else (derivatives,)
        refined, proxy, _ = newton_refine(stages[0], masks, starts, config.num_steps)
        if len(stages) > 1 and 0 < config.finish_restarts < config.num_restarts:
            # only the best few proxy maxima of every set are finished on the full objective
            _, keep = jax.lax.top_k(proxy, config.finish_restarts)
            refined = jnp.take_along_axis(refined, keep[:, :, None], axis=1)
        for stage in stages[1:]:
            refined, _, _ = newton_refine(stage, masks, refined, config.num_steps)
        return _best_of(batched(masks, refined), refined, starts, top, masks, point_fn, w,
                        batched)

    schedule = optax.cosine_decay_schedule(config.learning_rate, config.num_steps)
    opt = optax.adam(schedule)

    def loss(z):
        return -jnp.sum(batched(masks, jax.nn.sigmoid(z)))

    def step(carry, _):
        z, state = carry
        grad = jax.grad(loss)(z)
        grad = jnp.where(jnp.isfinite(grad), grad, 0.0)
        updates, state = opt.update(grad, state, z)
        return (optax.apply_updates(z, updates), state), None

    z0 = jax.scipy.special.logit(starts)
    (z, _), _ = jax.lax.scan(step, (z0, opt.init(z0)), None, length=config.num_steps)
    refined = jax.nn.sigmoid(z)
    return _best_of(batched(masks, refined), refined, starts, top, masks, point_fn, w, batched)


def _best_of(vals, refined, starts, top, masks, point_fn, w, batched):
    """The best refined point or best raw candidate per set (by ``value_fn``)."""
    vals = jnp.where(jnp.isfinite(vals), vals, -jnp.inf)
    all_x = jnp.concatenate([refined, starts[:, :1]], axis=1)
    all_v = jnp.concatenate([vals, top[:, :1]], axis=1)
    best = jnp.argmax(all_v, axis=1)
    x_hat = jnp.take_along_axis(all_x, best[:, None, None], axis=1)[:, 0]
    value = jnp.take_along_axis(all_v, best[:, None], axis=1)[:, 0]
    return _improve_full_sets(x_hat, value, masks, point_fn, w)


def _improve_full_sets(x_hat, value, masks, point_fn, w):
    if point_fn is None:
        return x_hat, value
    checks.require(w is not None, "w is required with point_fn")
    pts = jax.vmap(assemble, in_axes=(0, 0, None))(masks, x_hat, w).reshape(-1, masks.shape[1])
    vals = point_fn(pts)
    vals = jnp.where(jnp.isfinite(vals), vals, -jnp.inf)
    j = jnp.argmax(vals)
    full = jnp.all(masks == 1.0, axis=1)
    better = full & (vals[j] > value)
    return (jnp.where(better[:, None], pts[j][None, :], x_hat),
            jnp.where(better, vals[j], value))


class RFFSample(NamedTuple):
    """One approximate GP posterior sample ``f(x) = phi(x)^T theta`` (random Fourier features).

    Attributes:
      omega: ``[F, d]`` spectral frequencies (already divided by the length-scales).
      phase: ``[F]`` phases in ``[0, 2 pi)``.
      theta: ``[F]`` posterior weight sample.
      amplitude: scalar ``sqrt(2 s^2 / F)``.
    """

    omega: jax.Array
    phase: jax.Array
    theta: jax.Array
    amplitude: jax.Array


def _features(sample_or_parts, x):
    omega, phase, amplitude = sample_or_parts
    return amplitude * jnp.cos(x @ omega.T + phase[None, :])


def rff_evaluate(sample: RFFSample, x):
    """``[P]`` values of the sampled function at ``x [P, d]``."""
    return _features((sample.omega, sample.phase, sample.amplitude), x) @ sample.theta


def rff_posterior_sample(key, params: GPParams, x, y, mask, num_features: int) -> RFFSample:
    """Thompson sample of an SE-kernel GP posterior with random Fourier features (for TS-PSQ).

    Weight-space model ``y = Phi theta + noise``, ``theta ~ N(0, I)``; the posterior sample is drawn
    by correcting a prior sample: ``theta = theta0 + Phi^T (Phi Phi^T + lambda I)^{-1}
    (y - Phi theta0 - sqrt(lambda) e)`` (exact for the linear-Gaussian model; cost ``O(B^2 F)``).
    Padded rows (``mask`` False) get a zero feature row and are ignored.

    Args:
      key: PRNG key.
      params: SE hyper-parameters.
      x: ``[B, d]`` inputs.
      y: ``[B]`` targets.
      mask: ``[B]`` bool, real rows.
      num_features: static ``F``.

    Returns:
      An :class:`RFFSample`.
    """
    num_features = checks.require_positive_int(num_features, "num_features")
    d = x.shape[1]
    dtype = x.dtype
    k_omega, k_phase, k_theta, k_noise = jax.random.split(key, 4)
    ls = jnp.broadcast_to(params.lengthscale, (d,))[None, :]
    omega = jax.random.normal(k_omega, (num_features, d), dtype) / ls
    phase = jax.random.uniform(k_phase, (num_features,), dtype, 0.0, 2.0 * jnp.pi)
    amplitude = jnp.sqrt(2.0 * params.variance / num_features)
    phi = _features((omega, phase, amplitude), x) * mask[:, None]
    both = mask[:, None] & mask[None, :]
    eye = jnp.eye(x.shape[0], dtype=dtype)
    gram = jnp.where(both, phi @ phi.T + (params.noise + 1e-10) * eye, eye)
    chol = jnp.linalg.cholesky(gram)
    theta0 = jax.random.normal(k_theta, (num_features,), dtype)
    e = jax.random.normal(k_noise, (x.shape[0],), dtype)
    resid = jnp.where(mask, y - phi @ theta0 - jnp.sqrt(params.noise) * e, 0.0)
    theta = theta0 + phi.T @ cho_solve((chol, True), resid)
    return RFFSample(omega, phase, theta, amplitude)


maximize_per_control_set.__doc__ = _maximize_per_control_set.__doc__


def maximize_expected_ucb(key, posterior: Posterior, masks, w, beta, config):
    """Maximise the expected UCB of an SE-kernel GP per control set with the closed-form parts.

    :func:`jaxpapers.bocvs.maximize_per_control_set` with ``value_fn`` = the expected UCB,
    ``point_fn`` = the point-wise UCB and the hooks of :func:`closed_form_hooks` (candidates
    scored by :func:`expected_ucb_value`; for ``config.method == "newton"``, exact derivatives
    from :func:`expected_ucb_derivatives`). Reported values are those of
    :func:`jaxpapers.bocvs.expected_ucb` on all of ``w``.

    Args:
      key: PRNG key (the random starts of the ascent).
      posterior: a :class:`jaxpapers.gp.Posterior` with the SE kernel.
      masks: ``[m, d]`` 0/1 control-set masks.
      w: ``[N, d]`` fixed samples of the uncontrolled variables.
      beta: scalar UCB weight on sigma.
      config: an :class:`OptimizerConfig`.

    Returns:
      ``(x_hat [m, d], value [m])`` of the posterior's dtype; NaN values when ``w`` holds NaN
      or ``beta`` is negative under ``jit``.

    Raises:
      ValueError: bad shapes (masks not ``[m, d]`` with the posterior's ``d``) or config;
        eagerly, NaN in ``w`` or a negative ``beta``.
    """
    config = as_optimizer_config(config)
    masks = check_masks(masks)
    checks.require(masks.shape[1] == posterior.x.shape[1],
                   f"masks must have shape (m, {posterior.x.shape[1]}); got {masks.shape}")
    masks = masks.astype(posterior.x.dtype)
    w = check_floats(w, "w", (None, masks.shape[1]))
    return maximize_per_control_set(
        key, lambda mask_row, x: expected_ucb(posterior, mask_row, x, w, beta), masks, config,
        point_fn=lambda z: ucb(posterior, z, beta), w=w,
        **closed_form_hooks(posterior, masks, w, beta, config))
