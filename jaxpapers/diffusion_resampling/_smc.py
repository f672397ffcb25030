"""Particle filtering over a diffusion sampler's reverse chain (the resampling sampler).

The reverse chain runs over noise *levels* ``t = T, T-1, ..., 0`` (``T`` = pure noise, ``0`` =
data). One step of the caller's ``transition_fn`` moves every particle from level ``t`` to
``t - 1``. Particles live in ``[G, K, ...]`` groups (``G`` prompts/classes, ``K`` particles each);
resampling never mixes groups.

At a resampling level ``t`` with previous event ``t'`` (or ``T``, where ``log phi = 0``) the
incremental log-weight of particle ``k`` with ancestor ``a_k`` is

    log w_t^(k) = log phi_t(x_t^(k)) - log phi_t'(x_t'^(a_k))

and the stored ``log phi`` is gathered with the ancestor indices (Liu et al. 2024, Sec. 3; the
reference code stores the parent's log-ratio and re-indexes it after resampling). The last
weighting always happens at level 0 and drives the final choice.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxpapers import smc
from jaxpapers._src import checks, threefry
from jaxpapers.diffusion_resampling._diffusion import check_float_array, step_levels

__all__ = ["SMCOutput", "smc_sample", "plain_sample", "select_best", "schedule_mask",
           "initial_ancestors", "num_lineages", "FINAL_CHOICES"]

FINAL_CHOICES = ("argmax", "sample", "all")

TransitionFn = Callable[[Any, jax.Array, jax.Array, Any], jax.Array]
LogPotentialFn = Callable[[jax.Array, jax.Array, Any], jax.Array]


class SMCOutput(NamedTuple):
    """Result of :func:`smc_sample`.

    Shapes: ``G`` groups, ``K`` particles per group, ``S = num_steps`` steps, ``...`` the event.

    Attributes:
      samples: ``(G, ...)`` the chosen particle of each group (``final="argmax"`` or
        ``"sample"``); ``(G, K, ...)`` for ``final="all"``. NaN for a group without a valid
        choice.
      chosen: ``(G,)`` int32 index of the chosen particle (``0..K-1``; ``-1`` for ``"all"`` or
        a group with no valid choice).
      particles: ``(G, K, ...)`` final particles at level 0.
      log_weights: ``(G, K)`` float32 final unnormalised log-weights (last increment plus what
        was carried).
      log_potential: ``(G, K)`` float32 ``log phi_0`` of the final particles.
      ancestors: ``(S, G, K)`` int32 ancestor indices after step ``s`` (the identity where no
        resampling happened).
      resampled: ``(S, G)`` bool, a resampling happened after step ``s``.
      ess: ``(S, G)`` float32 ESS of the weights at an event (NaN where there was none).
      num_nan: ``(G,)`` int32 count of NaN log-potential evaluations.
      valid: ``(G,)`` bool: every weighting had a finite total weight, the final particles are
        finite and a particle could be chosen.
      trajectory: ``(S, G, K, ...)`` particles after each step (before resampling) with
        ``return_trajectory``, else None.
    """

    samples: jax.Array
    chosen: jax.Array
    particles: jax.Array
    log_weights: jax.Array
    log_potential: jax.Array
    ancestors: jax.Array
    resampled: jax.Array
    ess: jax.Array
    num_nan: jax.Array
    valid: jax.Array
    trajectory: jax.Array | None


def schedule_mask(resample_schedule, num_steps: int) -> jax.Array:
    """Boolean mask ``[num_steps + 1]`` over levels from a schedule.

    Args:
      resample_schedule: a sequence of integer levels in ``[1, num_steps - 1]`` (static), or a
        boolean array of shape ``[num_steps + 1]`` indexed by level (its level-0 and level-T
        entries are ignored: level 0 is always weighted, never resampled).
      num_steps: number of reverse steps ``T``.

    Returns:
      ``[num_steps + 1]`` bool mask with ``mask[t]`` true when resampling happens at level ``t``.
    """
    if isinstance(resample_schedule, (jax.Array, np.ndarray)) and \
            np.dtype(resample_schedule.dtype) == np.bool_:
        checks.require(resample_schedule.shape == (num_steps + 1,),
                       f"a boolean resample_schedule must have shape ({num_steps + 1},); got "
                       f"{resample_schedule.shape}")
        mask = jnp.asarray(resample_schedule)
    else:
        levels = [int(t) for t in resample_schedule]
        bad = [t for t in levels if not 1 <= t <= num_steps - 1]
        checks.require(not bad, f"resample_schedule levels must lie in [1, {num_steps - 1}]; got "
                                f"{bad}")
        host = np.zeros(num_steps + 1, dtype=bool)
        host[levels] = True
        mask = jnp.asarray(host)
    return mask.at[0].set(False).at[num_steps].set(False)


def _step_keys(key, num_steps: int):
    """Per-step (move, resample, renoise) keys and the final-choice key; shared with plain."""
    keys = jax.random.split(key, num_steps + 1)
    step_keys = jax.vmap(lambda k: jax.random.split(k, 3))(keys[:num_steps])
    return step_keys, keys[num_steps]


def _check_steps(transition_fn, num_steps: int) -> int:
    """``num_steps``, refused when above the ``T`` the transition was built for."""
    num_steps = checks.require_positive_int(num_steps, "num_steps")
    built_for = step_levels(transition_fn)
    checks.require(built_for is None or num_steps <= built_for,
                   f"num_steps={num_steps} is more than the {built_for} levels the transition_fn "
                   "was built for (its schedule's T)")
    return num_steps


def _check_init(x_init, num_particles):
    x_init = check_float_array(x_init, "x_init", 2)
    num_particles = checks.require_positive_int(num_particles, "num_particles")
    checks.require(x_init.ndim >= 2, "x_init must have shape [num_groups, num_particles, ...]; "
                                     f"got {x_init.shape}")
    checks.require(x_init.shape[1] == num_particles,
                   f"x_init.shape[1] must equal num_particles={num_particles}; got "
                   f"{x_init.shape}")
    return x_init, num_particles


def plain_sample(key, transition_fn: TransitionFn, x_init, num_steps: int, cond=None,
                 return_trajectory: bool = False):
    """Run the reverse chain without weighting: the proposal ``q`` itself.

    Uses the same per-step keys as :func:`smc_sample`, so ``smc_sample`` with ``K = 1`` returns
    bitwise the same samples for the same key.

    Args:
      key: PRNG key.
      transition_fn: ``(key, x [G, K, ...], t int32[], cond) -> x`` moving level ``t`` to
        ``t - 1``.
      x_init: ``[G, K, ...]`` particles at level ``num_steps``.
      num_steps: number of reverse steps ``T`` (static).
      cond: per-group condition pytree (leading axis ``G``) or None; passed through.
      return_trajectory: also return ``[S, G, K, ...]`` states after each step.

    Returns:
      ``x0 [G, K, ...]``, or ``(x0, trajectory)`` when ``return_trajectory``. NaN in
      ``x_init`` gives NaN out.

    Raises:
      ValueError: ``key`` not a key, ``x_init`` not a float ``[G, K, ...]``, ``num_steps`` not a
        positive int or above the ``T`` that ``transition_fn`` was built for (the steps of
        :func:`make_ddpm_step` / :func:`make_ddim_step` carry it).
    """
    threefry.check_key(key)
    num_steps = _check_steps(transition_fn, num_steps)
    x_init = check_float_array(x_init, "x_init", 2)
    step_keys, _ = _step_keys(key, num_steps)
    levels = jnp.arange(num_steps, 0, -1, dtype=jnp.int32)

    def body(x, inputs):
        keys, t = inputs
        x = transition_fn(keys[0], x, t, cond)
        return x, (x if return_trajectory else None)

    x0, traj = lax.scan(body, x_init, (step_keys, levels))
    return (x0, traj) if return_trajectory else x0


def select_best(particles, scores):
    """Best-of-K: the particle with the largest score in each group.

    Args:
      particles: ``[G, K, ...]``.
      scores: real ``[G, K]``; NaN scores are never chosen, ``-inf`` is a legal (worst) score.

    Returns:
      ``(samples [G, ...], chosen [G] int32)``. A group with no choice (every score NaN or
      ``-inf``) or with a ``+inf`` score has ``chosen = -1`` and a NaN sample under ``jit``
      (never particle 0 by default).

    Raises:
      ValueError: ``particles`` not a real float ``(G, K, ...)``, ``scores`` not real
        ``(G, K)`` (call or trace time); a group without a choice (eagerly, as
        ``InvalidInputError``).

    >>> import jax.numpy as jnp
    >>> samples, chosen = select_best(jnp.arange(4.0).reshape(1, 4, 1),
    ...                               jnp.asarray([[0.1, 0.7, jnp.nan, 0.3]]))
    >>> samples.tolist(), chosen.tolist()
    ([[1.0]], [1])
    """
    particles = check_float_array(particles, "particles", 2)
    scores = jnp.asarray(scores)
    checks.require(scores.shape == particles.shape[:2],
                   f"scores must have shape [G, K] = particles.shape[:2] = {particles.shape[:2]}; "
                   f"got scores {scores.shape}, particles {particles.shape}")
    checks.require(jnp.issubdtype(scores.dtype, jnp.floating) or
                   jnp.issubdtype(scores.dtype, jnp.integer),
                   f"scores must be real; got {scores.dtype}")
    checks.raise_if_concrete(lambda s: ~_choice_ok(s), "scores: a group has no finite score or "
                             "an infinite one (no particle can be chosen)", scores)
    return _select_best(particles, scores)


def _choice_ok(scores):
    """``[G]`` bool: the group has a finite score and none is ``+inf``."""
    return jnp.any(jnp.isfinite(scores), axis=1) & ~jnp.any(jnp.isposinf(scores), axis=1)


def _select_best(particles, scores):
    ok = _choice_ok(scores)
    chosen = jnp.argmax(jnp.where(jnp.isnan(scores), -jnp.inf, scores), axis=1)
    chosen = jnp.where(ok, chosen, -1).astype(jnp.int32)
    samples = jax.vmap(lambda xg, i: xg[jnp.maximum(i, 0)])(particles, chosen)
    shape = ok.shape + (1,) * (samples.ndim - 1)
    return jnp.where(jnp.reshape(ok, shape), samples, jnp.nan), chosen


def initial_ancestors(ancestors):
    """The initial particle (at level ``T``) each final particle descends from.

    Args:
      ancestors: ``[S, G, K]`` int ancestor indices after each step (``SMCOutput.ancestors``:
        after step ``s`` the new particle ``k`` is the old particle ``ancestors[s, g, k]``).

    Returns:
      ``(G, K)`` int32: ``a_0[a_1[... a_{S-1}[k]]]`` per group; under ``jit`` every lineage
      of a group that holds an index outside ``[0, K)`` is ``-1``.

    Raises:
      ValueError: ``ancestors`` not integer ``(S, G, K)`` (call or trace time); an index outside
        ``[0, K)`` (eagerly).

    >>> import jax.numpy as jnp
    >>> initial_ancestors(jnp.asarray([[[1, 1, 0]], [[2, 0, 0]]])).tolist()
    [[0, 1, 1]]
    """
    ancestors = jnp.asarray(ancestors)
    checks.require(ancestors.ndim == 3, f"ancestors must be [S, G, K]; got {ancestors.shape}")
    checks.require(jnp.issubdtype(ancestors.dtype, jnp.integer),
                   f"ancestors must be integer indices; got {ancestors.dtype}")
    ancestors = ancestors.astype(jnp.int32)
    k = ancestors.shape[2]
    checks.raise_if_concrete(lambda a: (a < 0) | (a >= k),
                             f"ancestors must lie in [0, {k}); got values outside", ancestors)
    start = jnp.broadcast_to(jnp.arange(k, dtype=jnp.int32), ancestors.shape[1:])

    def body(idx, a):
        # a lineage that met an index outside [0, K) stays -1
        step = jnp.take_along_axis(a, jnp.maximum(idx, 0), axis=1)
        return jnp.where((idx < 0) | (step < 0) | (step >= k), -1, step), None

    out, _ = lax.scan(body, start, ancestors, reverse=True)
    group_ok = jnp.all((ancestors >= 0) & (ancestors < k), axis=(0, 2))
    return jnp.where(group_ok[:, None], out, -1)


def num_lineages(ancestors):
    """How many distinct initial particles the ``K`` final particles of each group descend from.

    ``K`` without resampling; 1 when a group collapsed to one lineage.

    Args:
      ancestors: ``(S, G, K)`` int ancestor indices (``SMCOutput.ancestors``).

    Returns:
      ``(G,)`` int32 counts; under ``jit`` a group holding an index outside ``[0, K)`` counts 0.

    Raises:
      ValueError: as :func:`initial_ancestors`.
    """
    roots = initial_ancestors(ancestors)
    k = roots.shape[1]
    present = jnp.any(roots[:, :, None] == jnp.arange(k, dtype=jnp.int32)[None, None, :], axis=1)
    return jnp.where(jnp.any(roots < 0, axis=1), 0, jnp.sum(present, axis=1, dtype=jnp.int32))


def smc_sample(key, transition_fn: TransitionFn, log_potential_fn: LogPotentialFn,
               resample_schedule, num_particles: int, x_init, num_steps: int, cond=None, *,
               scheme: str = "multinomial", ess_threshold: float | None = None,
               final: str = "argmax", renoise_fn: TransitionFn | None = None,
               raise_on_invalid: bool = False, return_trajectory: bool = False) -> SMCOutput:
    """Particle-filter sampling along a diffusion reverse chain, resampling within groups.

    Carry through ``lax.scan``: a :class:`jaxpapers.smc.SMCState` per group whose particles are
    the pair ``(x [G, K, ...], log_phi_prev [G, K])`` and whose log-weights ``[G, K]`` are
    unnormalised. After the step that lands on a scheduled level ``t`` the potential is
    evaluated and one :func:`jaxpapers.smc.make_step` step per group (``vmap``) adds the
    incremental weight ``log phi_t(x) - log_phi_prev``, resamples, and gathers ``x`` and
    ``log_phi`` with the ancestor indices. Level 0 is weighted by :func:`jaxpapers.smc.reweight`.

    Args:
      key: PRNG key.
      transition_fn: ``(key, x [G, K, ...], t int32[], cond) -> x``: one reverse step from level
        ``t`` to ``t - 1`` (DDPM ancestral, DDIM with eta, ...).
      log_potential_fn: ``(x [G, K, ...], t int32[], cond) -> [G, K]`` log phi_t (for example the
        clipped discriminator logit). Evaluated only at scheduled levels and at level 0.
      resample_schedule: levels in ``[1, T-1]`` (static sequence) or a bool mask ``[T + 1]``.
      num_particles: ``K``, particles per group (static; must equal ``x_init.shape[1]``).
      x_init: ``[G, K, ...]`` particles at level ``T``.
      num_steps: ``T`` (static).
      cond: per-group condition (leading axis ``G``) or None; passed to both functions.
      scheme: ``"multinomial"`` (the reference code), ``"systematic"``, ``"stratified"`` or
        ``"residual"`` (all from :mod:`jaxpapers.smc`).
      ess_threshold: None (the paper: every scheduled event resamples) or ``tau`` in ``[0, 1]``
        to resample a group only when its ESS < ``tau K`` (weights carried otherwise).
      final: ``"argmax"`` of ``log phi_0`` (the paper), ``"sample"`` one particle drawn in
        proportion to the final weight (asymptotically unbiased), or ``"all"``.
      renoise_fn: optional ``(key, x, t, cond) -> x`` applied to groups that just resampled
        (e.g. churn), so duplicated particles diverge under a deterministic sampler.
      raise_on_invalid: if True, NaN potentials or an all-zero group weight raise
        ``InvalidInputError`` (eagerly, or through a runtime check under ``jit``); otherwise they
        are reported in ``num_nan`` / ``valid``. NaN potentials always count as zero weight.
      return_trajectory: keep ``[S, G, K, ...]`` pre-resampling states (memory ``S`` times x).

    Returns:
      :class:`SMCOutput`.

    Raises:
      ValueError: ``key`` not a key, ``x_init`` not a real float ``(G, K, ...)`` with
        ``K = num_particles``, ``num_steps`` above the transition's ``T``, a bad scheme, final,
        threshold or schedule (call or trace time); NaN or inf in ``x_init`` (eagerly; under
        ``jit`` the group is not ``valid``); with ``raise_on_invalid``, NaN potentials or an
        all-zero group weight (``InvalidInputError``).

    Shapes: ``G`` groups x ``K`` particles, ``S = T`` steps.

    References:
      Liu, Zhang, Jaakkola & Chang, *Correcting Diffusion Generation through Resampling*,
      CVPR 2024 (particle filter with ratio ``phi_t / phi_t'``; final argmax).
    """
    threefry.check_key(key)
    x_init, num_particles = _check_init(x_init, num_particles)
    num_steps = _check_steps(transition_fn, num_steps)
    event_axes = tuple(range(1, x_init.ndim))
    checks.raise_if_concrete(lambda x: ~jnp.all(jnp.isfinite(x)),
                             "x_init must be finite (found NaN or inf)", x_init)
    init_ok = jnp.all(jnp.isfinite(x_init), axis=event_axes)
    checks.require(scheme in smc.RESAMPLERS, f"scheme must be one of {sorted(smc.RESAMPLERS)}; "
                                              f"got {scheme!r}")
    checks.require(final in FINAL_CHOICES, f"final must be one of {FINAL_CHOICES}; got "
                                           f"{final!r}")
    if ess_threshold is not None:
        checks.require(0.0 <= float(ess_threshold) <= 1.0,
                       f"ess_threshold must be None or lie in [0, 1]; got {ess_threshold}")
    mask = schedule_mask(resample_schedule, num_steps)
    num_groups = x_init.shape[0]
    step_keys, final_key = _step_keys(key, num_steps)
    levels = jnp.arange(num_steps, 0, -1, dtype=jnp.int32)  # level before each step
    identity = jnp.broadcast_to(jnp.arange(num_particles, dtype=jnp.int32),
                                (num_groups, num_particles))
    # One SMC step per group: the particles are (x, log phi) so that the stored log phi is
    # gathered with x; log-weights stay unnormalised (the sum of increments since the last
    # resampling).
    group_step = jax.vmap(smc.make_step(scheme, ess_threshold, normalize=False))
    group_reweight = jax.vmap(lambda state, g: smc.reweight(state, g, normalize=False))

    def potential(x, t, log_phi_prev):
        """``log phi_t(x)`` (NaN -> -inf, counted) and the increment over the parent's."""
        log_phi = jnp.asarray(log_potential_fn(x, t, cond), jnp.float32)
        checks.require(log_phi.shape == (num_groups, num_particles),
                       f"log_potential_fn must return shape [G, K] = "
                       f"{(num_groups, num_particles)} for x_init of shape {x_init.shape}; got "
                       f"{log_phi.shape}")
        is_nan = jnp.isnan(log_phi)
        log_phi = jnp.where(is_nan, -jnp.inf, log_phi)
        # -inf - (-inf) is NaN: the step counts it as zero weight (smc.reweight)
        return log_phi, log_phi - log_phi_prev, jnp.sum(is_nan, axis=1, dtype=jnp.int32)

    def event(state, t, key_resample, key_renoise):
        x, log_phi_prev = state.particles
        log_phi, increment, nan_count = potential(x, t, log_phi_prev)
        group_keys = jax.random.split(key_resample, num_groups)
        state, info = group_step(group_keys, state._replace(particles=(x, log_phi)), increment)
        if ess_threshold is None:  # unit weights after resampling, as the reference code
            state = state._replace(log_weights=jnp.where(info.resampled[:, None], 0.0,
                                                         state.log_weights))
        x, log_phi = state.particles
        if renoise_fn is not None:
            renoised = renoise_fn(key_renoise, x, t, cond)
            shape = (num_groups,) + (1,) * (x.ndim - 1)
            x = jnp.where(jnp.reshape(info.resampled, shape), renoised, x)
        state = state._replace(particles=(x, log_phi))
        return state, info.ancestors, info.resampled, info.ess, nan_count, info.valid

    def no_event(state, t, key_resample, key_renoise):
        del t, key_resample, key_renoise
        return (state, identity, jnp.zeros(num_groups, bool),
                jnp.full(num_groups, jnp.nan, jnp.float32), jnp.zeros(num_groups, jnp.int32),
                jnp.ones(num_groups, bool))

    def body(carry, inputs):
        state, num_nan, valid_all = carry
        keys, t = inputs
        x, log_phi_prev = state.particles
        x = transition_fn(keys[0], x, t, cond)
        t_new = t - 1
        moved = x
        state, indices, did, ess, nan_count, valid = lax.cond(
            mask[t_new], event, no_event, state._replace(particles=(x, log_phi_prev)), t_new,
            keys[1], keys[2])
        carry = (state, num_nan + nan_count, valid_all & valid)
        outputs = (indices, did, ess.astype(jnp.float32),
                   moved if return_trajectory else None)
        return carry, outputs

    zeros = jnp.zeros((num_groups, num_particles), jnp.float32)
    state0 = jax.vmap(smc.init)((x_init, zeros), zeros)
    carry0 = (state0, jnp.zeros(num_groups, jnp.int32), jnp.ones(num_groups, bool))
    (state, num_nan, valid_all), (ancestors, resampled, ess, traj) = lax.scan(
        body, carry0, (step_keys, levels))

    # level 0: the last weighting, never a resampling
    x0, log_phi_prev = state.particles
    log_phi0, increment, nan_count = potential(x0, jnp.int32(0), log_phi_prev)
    state, info = group_reweight(state._replace(particles=(x0, log_phi0)), increment)
    log_w = state.log_weights
    num_nan = num_nan + nan_count
    valid = valid_all & info.valid

    # a group whose final particles or weights are not finite is not valid (NaN start, a
    # transition that produced NaN): its flag never claims validity over a NaN result
    valid = valid & init_ok & jnp.all(jnp.isfinite(x0), axis=event_axes)
    if final == "argmax":
        samples, chosen = _select_best(x0, log_phi0)
        valid = valid & (chosen >= 0)
    elif final == "sample":
        group_keys = jax.random.split(final_key, num_groups)
        chosen = jax.vmap(lambda k, lw: smc.resample(k, lw, "multinomial", 1)[0])(
            group_keys, log_w)
        chosen = jnp.where(valid, chosen, -1).astype(jnp.int32)
        samples = jax.vmap(lambda xg, i: xg[jnp.maximum(i, 0)])(x0, chosen)
        samples = jnp.where(jnp.reshape(valid, valid.shape + (1,) * (samples.ndim - 1)),
                            samples, jnp.nan)
    else:
        samples, chosen = x0, jnp.full(num_groups, -1, jnp.int32)

    if raise_on_invalid:
        samples = checks.error_if(samples, (num_nan > 0) | ~valid,
                                  "smc_sample: the log-potential returned NaN or a group's "
                                  "weights all vanished (see SMCOutput.num_nan / valid)")
    return SMCOutput(samples, chosen, x0, log_w, log_phi0, ancestors, resampled, ess, num_nan,
                     valid, traj)
