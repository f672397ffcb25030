"""Log-potentials ``log phi_t`` for the resampling sampler, and discriminator guidance.

Every ``*_log_potential`` returns ``log_potential_fn(x [G, K, *event], t int32[], cond [G] | None)
-> [G, K]`` for :func:`smc_sample`; the potentials may use the whole group (the on-the-fly miss
rate does).

References (Liu et al. 2024 and the reference code, spec Sec. 2.3-2.4):
  discriminator:  log phi_t = logit d(x_t, t), d clipped to [1e-6, 1 - 1e-6] (|log phi| <= 13.8);
  detector:       sum_c log D_c(x0_hat) - log(D_c + (1 - D_c) rho_c(t)),
                  rho_c = delta_c (1 - pi0) / (pi0 + delta_c (1 - pi0)), pi0 = 0.2;
  hybrid:         unconditional discriminator + detector term.

The miss rate ``delta_c(t)`` is, as in the reference code's main path, measured once on plain
samples (:func:`detection_probabilities` at the resampling levels and level 0, then
:func:`miss_rate_table` per condition and level, looked up by :func:`tabulated_miss_rate`); the
reference's fallback, the fraction of the group's ``K`` particles with ``D_c < 0.5``, is the
``miss_rate=None`` option of :func:`detector_log_potential`. The fallback is often flat: when
every particle of a group passes 0.5 it is 0 and the detector term is 0 for every particle.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxpapers._src import checks
from jaxpapers.diffusion_resampling._diffusion import (
    Schedule,
    _bcast,
    _x0_from_eps,
    check_finite_scalar,
    check_float_array,
    check_level,
    check_schedule,
    nan_unless,
)

__all__ = ["LOGIT_CLIP", "discriminator_log_potential", "detector_log_potential",
           "detector_term", "sum_log_potentials", "discriminator_guidance", "flatten_call",
           "predicted_x0", "detection_probabilities", "miss_rate_table", "tabulated_miss_rate"]

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


def _particles_ok(x):
    """``[G, K]`` bool: every coordinate of the particle is finite. A potential is NaN for a
    particle that is not (the sampler counts NaN as zero weight and reports it)."""
    return jnp.all(jnp.isfinite(x), axis=tuple(range(2, x.ndim)))


def discriminator_log_potential(logit_fn, clip: float = LOGIT_CLIP):
    """``log phi_t(x) = clip(logit d(x, t, cond))`` (spec Sec. 2.3; odds d/(1-d) as p_t / q_t).

    Args:
      logit_fn: ``(x [B, ...], t [B], y [B] | None) -> [B]`` discriminator logit.
      clip: symmetric clip of the logit (default: the reference's 1e-6 clip of ``d``), finite
        and ``> 0``.

    Returns:
      ``log_potential_fn(x (G, K, *event), t int32 scalar, cond (G,) | None) -> (G, K)``
      float: the clipped logit; NaN for a particle with a NaN or inf coordinate, and a NaN logit
      stays NaN (the sampler counts NaN as zero weight and reports it).

    Raises:
      ValueError: ``clip`` not finite and ``> 0``; from the potential, ``x`` not a real float
        ``(G, K, ...)`` or ``logit_fn`` not returning one logit per particle.

    >>> import jax.numpy as jnp
    >>> log_phi = discriminator_log_potential(lambda x, t, y: 100.0 * x[:, 0], clip=5.0)
    >>> log_phi(jnp.ones((1, 2, 1)), jnp.int32(3)).tolist()
    [[5.0, 5.0]]
    """
    check_finite_scalar(clip, "clip", positive=True)

    def log_potential(x, t, cond=None):
        x = check_float_array(x, "x", 2)
        logit = flatten_call(logit_fn, x, t, cond)
        checks.require(logit.shape == x.shape[:2],
                       f"logit_fn must return one logit per particle, [G, K] = {x.shape[:2]} for "
                       f"x of shape {x.shape}; got {logit.shape}")
        return jnp.where(_particles_ok(x), jnp.clip(logit, -clip, clip), jnp.nan)

    return log_potential


def predicted_x0(eps_fn, schedule: Schedule):
    """The prediction ``x0_hat = (x_t - sqrt(1 - abar_t) eps(x_t, t)) / sqrt(abar_t)`` of the
    clean sample, as a function of the particles (the identity at level 0).

    Args:
      eps_fn: ``(x (B, *event), t int32 (B,), cond) -> eps`` of the shape of ``x``.
      schedule: :class:`Schedule`.

    Returns:
      ``x0_fn(x (G, K, *event), t int32 scalar, cond (G,) | None) -> x0_hat`` of the shape and
      dtype of ``x`` (the ``x0_fn`` of :func:`detector_log_potential`).

    Raises:
      ValueError: ``schedule`` not a :class:`Schedule`; from ``x0_fn``, ``x`` not a real float
        ``(G, K, ...)`` or ``t`` not a scalar integer (call or trace time), a level outside
        ``[0, T]`` (eagerly; NaN under ``jit``).

    >>> import jax.numpy as jnp
    >>> from jaxpapers.diffusion_resampling import make_schedule
    >>> x0_fn = predicted_x0(lambda x, t, c: jnp.zeros_like(x), make_schedule(4))
    >>> x0_fn(jnp.ones((1, 2, 1)), jnp.int32(0)).tolist()   # level 0: the particles
    [[[1.0], [1.0]]]
    """
    check_schedule(schedule)

    def x0_fn(x, t, cond=None):
        x = check_float_array(x, "x", 2)
        t = jnp.asarray(t)
        checks.require(t.ndim == 0, f"t must be a scalar level; got shape {t.shape}")
        ok = check_level(t, schedule)
        eps = flatten_call(eps_fn, x, t, cond)
        return jnp.where(ok, jnp.where(t == 0, x, _x0_from_eps(x, eps, t, schedule)), jnp.nan)

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
                           threshold: float = 0.5, on_the_fly=None):
    """Detector potential on the predicted clean sample (spec Sec. 2.4).

    Args:
      x0_fn: ``(x [G, K, ...], t, cond) -> x0_hat`` (see :func:`predicted_x0`).
      detector_fn: ``(x0 [B, ...], cond [B] | None) -> [B, C]`` probabilities of the ``C`` objects
        named by the condition (pad with 1 for absent slots: they contribute 0).
      prior: ``pi0``.
      miss_rate: None for the reference's on-the-fly fallback (fraction of the group's ``K``
        particles with ``D_c < threshold``), or ``(t, cond) -> delta`` broadcastable to
        ``[G, K, C]`` from statistics measured beforehand (:func:`tabulated_miss_rate`).
      threshold: detection threshold for the on-the-fly miss rate.
      on_the_fly: with ``miss_rate`` given, an optional (traced) bool: where true the on-the-fly
        rate replaces the table at run time, so one compiled potential serves both.

    Returns:
      ``log_potential_fn(x (G, K, *event), t int32 scalar, cond (G,) | None) -> (G, K)``
      float, always ``<= 0``; NaN for a particle with a NaN or inf coordinate.

    Raises:
      ValueError: ``prior`` outside ``(0, 1)``, ``threshold`` not finite; from the potential,
        ``x`` not a real float ``(G, K, ...)``.
    """
    checks.require(0.0 < prior < 1.0, f"prior must lie in (0, 1); got {prior}")
    check_finite_scalar(threshold, "threshold")

    def log_potential(x, t, cond=None):
        x = check_float_array(x, "x", 2)
        x0 = x0_fn(x, t, cond)
        probs = flatten_call(lambda z, _t, c: detector_fn(z, c), x0, t, cond)  # [G, K, C]
        fly = jnp.mean(probs < threshold, axis=1, keepdims=True)  # [G, 1, C]
        if miss_rate is None:
            delta = fly
        else:
            delta = jnp.asarray(miss_rate(t, cond), jnp.float32)
            if on_the_fly is not None:
                delta = jnp.where(on_the_fly, fly, delta)
        return jnp.where(_particles_ok(x), detector_term(probs, delta, prior), jnp.nan)

    return log_potential


def detection_probabilities(x0_fn, detector_fn, trajectory, levels, cond=None):
    """The detector's probabilities on ``x0_hat`` along plain trajectories, at chosen levels.

    Args:
      x0_fn: ``(x [G, K, ...], t, cond) -> x0_hat`` (see :func:`predicted_x0`).
      detector_fn: ``(x0 [B, ...], cond [B] | None) -> [B, C]``.
      trajectory: ``[T, G, K, ...]`` states after each reverse step, as returned by
        ``plain_sample(..., return_trajectory=True)``: entry ``s`` is at level ``T - 1 - s``.
      levels: static levels in ``[0, T - 1]`` (the resampling levels and 0).
      cond: per-group condition ``[G]`` or None.

    Returns:
      ``(len(levels), G, K, C)`` float probabilities; all NaN if ``trajectory`` holds a NaN or
      inf.

    Raises:
      ValueError: ``trajectory`` not a real float array with at least 3 axes, a level outside
        ``[0, T - 1]``.
    """
    trajectory = check_float_array(trajectory, "trajectory", 3)
    num_steps = trajectory.shape[0]
    bad = [int(t) for t in levels if not 0 <= int(t) <= num_steps - 1]
    checks.require(not bad, f"levels must lie in [0, T - 1] with T = trajectory.shape[0] = "
                            f"{num_steps}; got {bad}")
    out = []
    for t in levels:
        x = trajectory[num_steps - 1 - int(t)]
        tt = jnp.int32(int(t))
        probs = flatten_call(lambda z, _t, c: detector_fn(z, c), x0_fn(x, tt, cond), tt, cond)
        ok = _particles_ok(x)
        out.append(jnp.where(jnp.reshape(ok, ok.shape + (1,) * (probs.ndim - 2)), probs, jnp.nan))
    # a non-finite state anywhere in the trajectory makes every probability NaN
    return jnp.where(jnp.all(jnp.isfinite(trajectory)), jnp.stack(out), jnp.nan)


def miss_rate_table(probs, conditions, num_conditions: int, threshold: float = 0.5):
    """Measured miss rate per level, condition and object: ``mean(D_c < threshold)``.

    Args:
      probs: ``[L, N, C]`` detection probabilities of ``N`` plain samples at ``L`` levels (or
        ``[L, G, K, C]`` with ``conditions [G]``: flattened to ``N = G K``).
      conditions: ``[N]`` (or ``[G]``) int condition of each sample (group), in
        ``[0, num_conditions)``; None when there is one condition.
      num_conditions: number of condition ids (static).
      threshold: detection threshold (the reference's 0.5).

    Returns:
      ``[L, num_conditions, C]`` float32 miss rates; a condition without samples gets 0 (no
      correction). A NaN probability makes its rate NaN.

    Raises:
      ValueError: ``num_conditions`` not a positive int, ``threshold`` not finite, ``probs``
        not a real float ``(L, N, C)`` or ``(L, G, K, C)``, ``conditions`` not integers with one
        entry per sample (call or trace time); a condition outside ``[0, num_conditions)``
        (eagerly; under ``jit`` the whole table is NaN).

    >>> import jax.numpy as jnp
    >>> probs = jnp.asarray([[[0.9], [0.2], [0.1], [0.8]]])   # L = 1, N = 4, C = 1
    >>> miss_rate_table(probs, jnp.asarray([0, 0, 1, 1]), 2).tolist()
    [[[0.5], [0.5]]]
    """
    num_conditions = checks.require_positive_int(num_conditions, "num_conditions")
    check_finite_scalar(threshold, "threshold")
    probs = check_float_array(probs, "probs", 3)
    if probs.ndim == 4:
        lead = probs.shape[1:3]
        if conditions is not None:
            conditions = jnp.broadcast_to(jnp.asarray(conditions)[:, None], lead)
        probs = jnp.reshape(probs, (probs.shape[0], -1, probs.shape[-1]))
    checks.require(probs.ndim == 3, f"probs must be [L, N, C] or [L, G, K, C]; got {probs.shape}")
    n = probs.shape[1]
    if conditions is not None:
        checks.require(jnp.issubdtype(jnp.asarray(conditions).dtype, jnp.integer),
                       f"conditions must be integers; got {jnp.asarray(conditions).dtype}")
    conditions = (jnp.zeros(n, jnp.int32) if conditions is None
                  else jnp.reshape(jnp.asarray(conditions, jnp.int32), (-1,)))
    checks.require(conditions.shape == (n,), f"conditions must have one entry per sample of probs "
                                             f"({n}); got {conditions.shape}")
    checks.raise_if_concrete(lambda c: (c < 0) | (c >= num_conditions),
                             f"conditions must lie in [0, {num_conditions}); got "
                             f"{conditions}", conditions)
    ok = jnp.all((conditions >= 0) & (conditions < num_conditions))
    onehot = jax.nn.one_hot(conditions, num_conditions, dtype=jnp.float32)  # [N, M]
    missed = jnp.where(~jnp.isfinite(probs), jnp.nan,
                       (probs < threshold).astype(jnp.float32))             # [L, N, C]
    counts = jnp.sum(onehot, axis=0)                                         # [M]
    sums = jnp.einsum("nm,lnc->lmc", onehot, missed)
    return jnp.where(ok, sums / jnp.maximum(counts, 1.0)[None, :, None], jnp.nan)


def tabulated_miss_rate(table, levels, num_steps: int):
    """``miss_rate(t, cond) -> [G, 1, C]`` for :func:`detector_log_potential` from a table.

    Args:
      table: ``[L, num_conditions, C]`` from :func:`miss_rate_table`.
      levels: the ``L`` static levels of its rows (each in ``[0, num_steps - 1]``).
      num_steps: ``T``.

    Returns:
      a function of the (traced) level ``t`` and the group conditions ``cond [G]`` (None: every
      group has condition 0). At a level not in ``levels`` it returns the row of the nearest
      tabulated level below ``t`` (or the lowest row). Its result is ``(G, 1, C)`` float32
      (``(1, 1, C)`` for ``cond=None``).

    Raises:
      ValueError: ``num_steps`` not a positive int, ``table`` not a real float
        ``(len(levels), M, C)`` or a level outside ``[0, num_steps - 1]``; a table value
        outside ``[0, 1]`` (eagerly; NaN under ``jit``). From ``miss_rate``: ``t`` not a scalar
        integer, ``cond`` not integer ``(G,)`` (call or trace time); a level outside
        ``[0, num_steps]`` or a condition outside the table (eagerly; NaN under ``jit``).
    """
    num_steps = checks.require_positive_int(num_steps, "num_steps")
    table = check_float_array(table, "table", 3).astype(jnp.float32)
    in_range = lambda a: jnp.all((a >= 0) & (a <= 1))  # noqa: E731  (NaN fails)
    checks.raise_if_concrete(lambda a: ~in_range(a), "table must hold miss rates in [0, 1]",
                             table)
    table_ok = in_range(table)
    levels = [int(t) for t in levels]
    checks.require(table.ndim == 3 and table.shape[0] == len(levels),
                   f"table must be [len(levels)={len(levels)}, M, C]; got {table.shape}")
    checks.require(all(0 <= t < num_steps for t in levels),
                   f"levels must lie in [0, {num_steps - 1}]; got {levels}")
    order = np.argsort(levels)
    sorted_levels = np.asarray(levels)[order]
    # row of each level 0..T: the tabulated level at or below it (the lowest one below that)
    below = np.searchsorted(sorted_levels, np.arange(num_steps + 1), side="right") - 1
    rows = jnp.asarray(order[np.maximum(below, 0)], jnp.int32)

    num_conditions = table.shape[1]

    def miss_rate(t, cond=None):
        t = jnp.asarray(t)
        checks.require(t.ndim == 0 and jnp.issubdtype(t.dtype, jnp.integer),
                       f"t must be a scalar integer level; got {t.dtype}{list(t.shape)}")
        checks.raise_if_concrete(lambda s: (s < 0) | (s > num_steps),
                                 f"t must lie in [0, {num_steps}]; got {t}", t)
        ok = (t >= 0) & (t <= num_steps) & table_ok
        row = table[rows[t]]                                   # [M, C]
        if cond is None:
            return jnp.where(ok, row[0][None, None, :], jnp.nan)
        cond = jnp.asarray(cond)
        checks.require(cond.ndim == 1 and jnp.issubdtype(cond.dtype, jnp.integer),
                       f"cond must be integer conditions [G]; got {cond.dtype}{list(cond.shape)}")
        checks.raise_if_concrete(lambda c: (c < 0) | (c >= num_conditions),
                                 f"cond must lie in [0, {num_conditions}) (the table's "
                                 f"conditions); got {cond}", cond)
        ok &= (cond >= 0) & (cond < num_conditions)
        return jnp.where(_bcast(ok, row[cond][:, None, :]), row[cond][:, None, :],
                         jnp.nan)                                # [G, 1, C]

    return miss_rate


def sum_log_potentials(*fns, weights=None):
    """The hybrid potential: ``log phi = sum_i w_i log phi_i`` (discriminator + detector).

    Args:
      *fns: log-potential functions ``(x [G, K, ...], t, cond) -> [G, K]``.
      weights: None (all 1) or ``[len(fns)]`` weights, which may be traced: one compiled
        sampler then serves the discriminator (1, 0), detector (0, 1) and hybrid (1, 1)
        potentials. A potential whose weight is 0 is not evaluated (it contributes exactly 0).

    Returns:
      ``log_potential_fn(x (G, K, *event), t, cond) -> (G, K)`` float32; NaN for a particle
      with a NaN or inf coordinate, or everywhere for a non-finite traced weight.

    Raises:
      ValueError: no potential, ``weights`` not real ``(len(fns),)`` (call or trace time) or not
        finite (eagerly); from the potential, a term not returning ``(G, K)``.

    >>> import jax.numpy as jnp
    >>> one = lambda x, t, c: jnp.ones(x.shape[:2])
    >>> sum_log_potentials(one, one, weights=jnp.asarray([1.0, 2.0]))(
    ...     jnp.zeros((1, 2, 1)), 3).tolist()
    [[3.0, 3.0]]
    """
    checks.require(len(fns) > 0, "give at least one log-potential")
    if weights is not None:
        checks.require(jnp.shape(weights) == (len(fns),),
                       f"weights must have shape ({len(fns)},); got {jnp.shape(weights)}")
        checks.require(jnp.issubdtype(jnp.asarray(weights).dtype, jnp.floating)
                       or jnp.issubdtype(jnp.asarray(weights).dtype, jnp.integer),
                       f"weights must be real; got {jnp.asarray(weights).dtype}")
        checks.raise_if_concrete(lambda w: ~jnp.all(jnp.isfinite(w)),
                                 "weights must be finite", weights)

    def term(fn, x, t, cond):
        out = jnp.asarray(fn(x, t, cond), jnp.float32)
        checks.require(out.shape == x.shape[:2],
                       f"each log-potential must return [G, K] = {x.shape[:2]} for x of shape "
                       f"{x.shape}; got {out.shape}")
        return out

    def weighted(i, x, t, cond):
        # a zero weight skips the potential at run time (lax.cond on the traced weight), so
        # one compiled sampler pays only for the potentials a method uses, and 0 * (-inf or
        # NaN) never arises; under vmap both branches run and the result is the same
        fn, w = fns[i], weights[i]
        zeros = jnp.zeros(x.shape[:2], jnp.float32)
        return lax.cond(w != 0, lambda: w * term(fn, x, t, cond), lambda: zeros)

    def log_potential(x, t, cond=None):
        x = check_float_array(x, "x", 2)
        total = None
        for i, fn in enumerate(fns):
            value = term(fn, x, t, cond) if weights is None else weighted(i, x, t, cond)
            total = value if total is None else total + value
        ok = _particles_ok(x)
        if weights is not None:
            # a non-finite weight (traced) makes the potential NaN: the sampler counts it as
            # zero weight and reports it (num_nan, valid)
            ok &= jnp.all(jnp.isfinite(jnp.asarray(weights)))
        return jnp.where(ok, total, jnp.nan)

    return log_potential


def discriminator_guidance(eps_fn, logit_fn, schedule: Schedule, weight: float = 1.0):
    """Discriminator guidance (Kim et al. 2023): add ``weight * grad_x logit d`` to the score.

    With ``score = -eps / sqrt(1 - abar_t)`` the guided epsilon is
    ``eps - weight sqrt(1 - abar_t) grad_x logit d(x_t, t)``.

    Args:
      eps_fn: ``(x (B, *event), t (B,), y) -> eps``.
      logit_fn: ``(x (B, *event), t (B,), y) -> (B,)`` discriminator logit (differentiable).
      schedule: :class:`Schedule`.
      weight: the guidance weight, finite (may be traced).

    Returns:
      ``eps_fn(x (B, *event), t (B,) or scalar, y) -> (B, *event)`` usable by the DDPM/DDIM
      steps.

    Raises:
      ValueError: ``schedule`` not a :class:`Schedule`; from the guided function, ``x`` not a
        real float array or ``t`` neither a scalar nor ``(B,)`` (call or trace time); a level
        outside ``[0, T]`` or a non-finite ``weight`` (eagerly; NaN under ``jit``).
    """
    check_schedule(schedule)
    weight_ok = check_finite_scalar(weight, "weight")

    def guided(x, t, y=None):
        x = check_float_array(x, "x")
        t = jnp.asarray(t)
        checks.require(t.ndim <= 1 and t.shape == x.shape[:t.ndim],
                       f"t must be a scalar or [B] with B = x.shape[0] = {x.shape[0]}; got "
                       f"{t.shape}")
        ok = check_level(t, schedule) & weight_ok
        grad = jax.grad(lambda z: jnp.sum(logit_fn(z, t, y)))(x)
        scale = jnp.sqrt(1.0 - schedule.alpha_bars[t])
        scale = jnp.reshape(scale, scale.shape + (1,) * (x.ndim - scale.ndim))
        return nan_unless(ok, eps_fn(x, t, y) - weight * scale * grad)

    return guided
