"""One SMC step (reweight, resample by a rule, gather) and a particle filter over ``lax.scan``.

The state/info split: :class:`SMCState` holds what the next step needs (the particles, their
log-weights and the running log-likelihood), :class:`SMCInfo` the per-step diagnostics (ancestors,
ESS, whether the step resampled, whether the weights were valid, how many log-potentials were
NaN). Every leaf has a fixed dtype from :func:`init` on, so the state is a valid ``lax.scan``
carry and a step is cheap to ``jit``, ``vmap`` (over keys or over groups of particles) and scan.

Shapes: ``N`` particles; ``particles`` is any pytree whose leaves have leading axis ``N``; ``T``
time steps. Groups of ``G`` independent filters are ``jax.vmap`` of the same functions (add a
leading ``G`` axis to every argument).

The State/Info pair with ``init`` and a ``step(key, state, ...)`` built by a factory follows the
convention of blackjax-style JAX samplers; the code is this package's own.

References:
  Douc, Cappé & Moulines (2005), *Comparison of resampling schemes for particle filtering*
  (the resampling schemes the step uses).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax import lax
from jax.scipy.special import logsumexp

from jaxpapers._src import checks
from jaxpapers._src.threefry import check_key
from jaxpapers.smc._adaptive import maybe_resample, resample
from jaxpapers.smc._resampling import RESAMPLERS
from jaxpapers.smc._weights import ess, log_weights_are_valid

__all__ = ["SMCState", "SMCInfo", "init", "reweight", "make_step", "particle_filter"]

StepFn = Callable[[Any, "SMCState", jax.Array], tuple["SMCState", "SMCInfo"]]


class SMCState(NamedTuple):
    """What the next SMC step needs (made by :func:`init`).

    Shapes: ``N`` particles (add a leading ``G`` under ``vmap`` over groups).

    Attributes:
      particles: any pytree, every leaf ``[N, ...]``.
      log_weights: float ``[N]`` log-weights (normalised or not, see :func:`make_step`).
      log_likelihood: float scalar, the running log of the product of mean weight increments
        (the log of an unbiased estimate of the normalising constant).
      num_resamples: int32 scalar, the steps that resampled so far.
    """

    particles: Any              # pytree, every leaf [N, ...]
    log_weights: jax.Array      # [N] log-weights (normalised or not, see ``make_step``)
    log_likelihood: jax.Array   # [] running log of the product of mean weight increments
    num_resamples: jax.Array    # [] int32: steps that resampled so far


class SMCInfo(NamedTuple):
    """Diagnostics of one SMC step (stacked to ``[T, ...]`` by :func:`particle_filter`).

    Attributes:
      ancestors: int32 ``[N]``, the ancestor of each new particle (the identity if the step did
        not resample).
      log_likelihood_increment: float scalar, ``log sum_i W_i exp(g_i)`` with ``W`` the previous
        normalised weights.
      ess: float scalar, the ESS of the reweighted weights (NaN if invalid).
      resampled: bool scalar, the step resampled.
      valid: bool scalar, the reweighted log-weights are valid (no NaN or ``+inf``, at least one
        finite entry).
      num_nan: int32 scalar, NaN log-potentials (counted as zero weight).
    """

    ancestors: jax.Array                 # [N] int32 ancestor of each new particle (identity if
                                         #     the step did not resample)
    log_likelihood_increment: jax.Array  # [] log sum_i W_i exp(g_i), W the previous weights
    ess: jax.Array                       # [] ESS of the reweighted weights (NaN if invalid)
    resampled: jax.Array                 # [] bool: the step resampled
    valid: jax.Array                     # [] bool: the reweighted log-weights are valid (no NaN
                                         #     or +inf, at least one finite entry)
    num_nan: jax.Array                   # [] int32: NaN log-potentials (counted as zero weight)


def _num_particles(particles) -> int:
    leaves = jax.tree_util.tree_leaves(particles)
    checks.require(bool(leaves), "particles must be a pytree with at least one array leaf")
    sizes = {jnp.shape(leaf)[0] if jnp.ndim(leaf) else None for leaf in leaves}
    checks.require(len(sizes) == 1 and None not in sizes,
                   "every leaf of particles must have the same leading axis (num_particles); "
                   f"got leading sizes {sorted(sizes, key=str)}. For groups use jax.vmap.")
    size = sizes.pop()
    checks.require(size > 0, "particles must not be empty")
    return size


def init(particles, log_weights=None) -> SMCState:
    """The state before the first step.

    Args:
      particles: pytree whose leaves all have leading axis ``N`` (e.g. ``[N]`` or ``[N, D]``).
      log_weights: ``[N]`` initial log-weights, or None for uniform ``-log N``.

    Returns:
      :class:`SMCState` with ``log_likelihood = 0`` (dtype of the log-weights) and
      ``num_resamples = 0`` (int32).

    Raises:
      ValueError: leaves with different or missing leading axes, log-weights of the wrong
        shape or dtype; eagerly, invalid log-weights (NaN, +inf, or no finite entry).
    """
    num_particles = _num_particles(particles)
    if log_weights is None:
        log_weights = jnp.full((num_particles,), -jnp.log(num_particles), jnp.result_type(float))
    log_weights = jnp.asarray(log_weights)
    checks.require(jnp.issubdtype(log_weights.dtype, jnp.floating)
                   or jnp.issubdtype(log_weights.dtype, jnp.signedinteger),
                   f"log_weights must be real (floating); got dtype {log_weights.dtype}")
    if not jnp.issubdtype(log_weights.dtype, jnp.floating):
        log_weights = log_weights.astype(jnp.result_type(float))
    checks.require(log_weights.shape == (num_particles,),
                   f"log_weights must have shape ({num_particles},), one per particle "
                   f"(particles' leading axis); got {log_weights.shape}")
    checks.raise_if_concrete(lambda lw: ~log_weights_are_valid(lw),
                             "log_weights must have no NaN or +inf and at least one finite "
                             "entry", log_weights)
    return SMCState(particles, log_weights, jnp.zeros((), log_weights.dtype),
                    jnp.zeros((), jnp.int32))


def _same_types(a, b) -> bool:
    """Same pytree structure, leaf shapes and leaf dtypes."""
    leaves_a, tree_a = jax.tree_util.tree_flatten(a)
    leaves_b, tree_b = jax.tree_util.tree_flatten(b)
    return tree_a == tree_b and all(
        jnp.shape(x) == jnp.shape(y) and jnp.result_type(x) == jnp.result_type(y)
        for x, y in zip(leaves_a, leaves_b))


def _gather(particles, indices):
    return jax.tree_util.tree_map(lambda leaf: jnp.take(leaf, indices, axis=0), particles)


def reweight(state: SMCState, log_potential, normalize: bool = True):
    """Multiply the weights by ``exp(log_potential)``; no resampling.

    NaN log-potentials count as zero weight (``-inf``) and are counted in ``info.num_nan``. The
    log-likelihood grows by ``logsumexp(l + g) - logsumexp(l)`` (the log of the mean weight
    increment under the previous normalised weights), so ``exp(log_likelihood)`` is the
    unbiased estimate of the normalising constant, not its log.

    Args:
      state: :class:`SMCState`.
      log_potential: ``[N]`` log-potential increments ``g``; cast to the log-weights' dtype.
      normalize: store ``l + g - logsumexp(l + g)`` (True) or ``l + g`` (False). The ESS and the
        validity flag are computed from the stored log-weights.

    Returns:
      ``(state, info)``: the reweighted state (same particles) and :class:`SMCInfo` with
      identity ``ancestors`` and ``resampled = False``.

    Raises:
      ValueError: ``log_potential`` not floating or not of shape ``[N]``.

    Shapes: ``log_potential [N]`` with ``N = state.log_weights.shape[0]``.
    """
    log_weights = state.log_weights
    num_particles = log_weights.shape[0]
    log_potential = jnp.asarray(log_potential)
    checks.require(jnp.issubdtype(log_potential.dtype, jnp.floating)
                   or jnp.issubdtype(log_potential.dtype, jnp.signedinteger),
                   f"log_potential must be real (floating); got dtype {log_potential.dtype}")
    log_potential = log_potential.astype(log_weights.dtype)
    checks.require(log_potential.shape == (num_particles,),
                   f"log_potential must have shape ({num_particles},); got "
                   f"{log_potential.shape}")
    is_nan = jnp.isnan(log_potential)
    log_potential = jnp.where(is_nan, -jnp.inf, log_potential)
    updated = log_weights + log_potential
    log_normalizer = logsumexp(updated)
    previous = logsumexp(log_weights)
    log_likelihood = state.log_likelihood + log_normalizer - previous
    valid = log_weights_are_valid(updated)
    if normalize:
        updated = updated - log_normalizer
    info = SMCInfo(
        ancestors=jnp.arange(num_particles, dtype=jnp.int32),
        log_likelihood_increment=log_normalizer - previous,
        ess=jnp.where(valid, ess(updated), jnp.nan),
        resampled=jnp.zeros((), bool),
        valid=valid,
        num_nan=jnp.sum(is_nan, dtype=jnp.int32),
    )
    return state._replace(log_weights=updated, log_likelihood=log_likelihood), info


def make_step(scheme: str = "systematic", ess_threshold: float | None = None,
              normalize: bool = True) -> StepFn:
    """Build ``step(key, state, log_potential) -> (state, info)``.

    One step: :func:`reweight` by ``log_potential``; resample (always, or when
    ``ESS < ess_threshold * N``, branch-free through :func:`jaxpapers.smc.resample` /
    :func:`jaxpapers.smc.maybe_resample`); gather every leaf of ``state.particles`` with the
    ancestors. After a resampling the log-weights are uniform, ``-log N``; otherwise they are
    carried. Invalid weights (all zero, ``+inf``) never resample: identity ancestry, the
    log-weights carried as they are and ``info.valid = False`` (under ``jit``/``vmap``/``scan``;
    an eager call raises ``InvalidInputError`` from the resampling kernels instead).

    Args:
      scheme: ``"systematic"`` (default), ``"stratified"``, ``"residual"`` or ``"multinomial"``.
      ess_threshold: None resamples at every step whose weights are valid; ``tau`` in ``[0, 1]``
        resamples when ``ESS < tau N`` (1: whenever the weights are not uniform, 0: never). May
        be a traced scalar (then it is not range-checked).
      normalize: passed to :func:`reweight`: keep the log-weights normalised after reweighting
        (``logsumexp = 0``) or unnormalised (the sum of increments since the last resampling).

    Returns:
      ``step(key, state, log_potential)``: ``key`` a PRNG key (used for resampling only),
      ``state`` an :class:`SMCState`, ``log_potential`` ``[N]``; returns
      ``(SMCState, SMCInfo)`` with the same structure and dtypes as the input state.

    Raises:
      ValueError: unknown scheme, or a concrete ``ess_threshold`` outside ``[0, 1]``.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from jaxpapers import smc
      >>> step = smc.make_step("systematic", ess_threshold=0.5)
      >>> state = smc.init(jnp.linspace(-1.0, 1.0, 8))
      >>> state, info = step(jax.random.key(0), state, -state.particles ** 2)
      >>> info.ancestors.shape, info.resampled.dtype
      ((8,), dtype('bool'))
    """
    checks.require(scheme in RESAMPLERS,
                   f"scheme must be one of {sorted(RESAMPLERS)}; got {scheme!r}")
    if ess_threshold is not None and checks.is_concrete(ess_threshold):
        checks.require(0.0 <= float(ess_threshold) <= 1.0,
                       f"ess_threshold must be None or lie in [0, 1]; got {ess_threshold}")

    def step(key, state: SMCState, log_potential):
        check_key(key)
        state, info = reweight(state, log_potential, normalize)
        log_weights = state.log_weights
        num_particles = log_weights.shape[0]
        if ess_threshold is None:
            indices = resample(key, log_weights, scheme)
            indices = jnp.where(info.valid, indices,
                                jnp.arange(num_particles, dtype=jnp.int32))
            did = info.valid
            uniform = jnp.full_like(log_weights, -jnp.log(num_particles))
            log_weights = jnp.where(did, uniform, log_weights)
        else:
            indices, log_weights, did = maybe_resample(key, log_weights, ess_threshold, scheme)
        state = SMCState(_gather(state.particles, indices), log_weights, state.log_likelihood,
                         state.num_resamples + did.astype(jnp.int32))
        return state, info._replace(ancestors=indices, resampled=did)

    return step


def particle_filter(key, transition_fn, log_potential_fn, particles, inputs, *,
                    scheme: str = "systematic", ess_threshold: float | None = None,
                    log_weights=None):
    """A particle filter: :func:`make_step`'s step over ``lax.scan``.

    At ``t = 0`` the given particles are weighted by ``log_potential_fn(particles, inputs_0)``
    and resampled; at each ``t >= 1`` they are first moved by
    ``transition_fn(key, particles, inputs_t)``. The log-weights are kept normalised.

    Keys: ``jax.random.split(key, T)``, and each step's key splits into ``(move, resample)``.

    Args:
      key: PRNG key.
      transition_fn: ``(key, particles, inputs_t) -> particles`` (same structure and shapes;
        moves all ``N`` particles from ``t - 1`` to ``t``).
      log_potential_fn: ``(particles, inputs_t) -> [N]`` log-potential (e.g. the observation
        log-density ``log g_t(y_t | x_t)``); NaN counts as zero weight and is counted.
      particles: initial particles at ``t = 0``, a pytree with leading axis ``N``.
      inputs: pytree whose leaves have leading axis ``T`` (e.g. observations ``[T, ...]``);
        ``inputs_t`` is its slice at ``t``.
      scheme: resampling scheme (see :func:`make_step`).
      ess_threshold: None (resample at every step) or ``tau`` in ``[0, 1]`` (resample when
        ``ESS < tau N``).
      log_weights: optional ``[N]`` initial log-weights (default uniform).

    Returns:
      ``(state, infos)``: the final :class:`SMCState` (``state.log_likelihood`` is the estimate
      of ``log p(inputs)``, the log of an unbiased estimate of ``p``) and the :class:`SMCInfo`
      of every step stacked to ``[T, ...]``.

    Raises:
      ValueError: an unknown scheme, a concrete ``ess_threshold`` outside ``[0, 1]``, a bad
        key, particles whose leaves disagree on the leading axis, inputs with no array leaf or
        whose leaves disagree on a non-empty time axis, or a ``transition_fn`` that changes the
        particles' structure, shapes or dtypes.

    Shapes: ``particles`` leaves ``[N, ...]``, ``inputs`` leaves ``[T, ...]``; for ``G``
    independent filters ``jax.vmap`` over keys, particles and (or) inputs::

        run = lambda k, x0, ys: particle_filter(k, transition_fn, log_potential_fn, x0, ys)
        states, infos = jax.vmap(run)(jax.random.split(key, G), x0 [G, N, ...], ys [G, T, ...])

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from jaxpapers import smc
      >>> move = lambda k, x, y: 0.9 * x + jax.random.normal(k, x.shape)
      >>> potential = lambda x, y: -0.5 * (y - x) ** 2 - 0.5 * jnp.log(2 * jnp.pi)
      >>> x0 = jax.random.normal(jax.random.key(1), (64,))
      >>> state, infos = smc.particle_filter(jax.random.key(0), move, potential, x0,
      ...                                    jnp.zeros(5))
      >>> state.log_likelihood.shape, infos.ancestors.shape
      ((), (5, 64))
    """
    step = make_step(scheme, ess_threshold)
    check_key(key)
    leaves = jax.tree_util.tree_leaves(inputs)
    checks.require(bool(leaves), "inputs must be a pytree with at least one array leaf")
    lengths = {jnp.shape(leaf)[0] if jnp.ndim(leaf) else None for leaf in leaves}
    checks.require(len(lengths) == 1 and None not in lengths and lengths != {0},
                   f"every leaf of inputs must have the same non-zero leading axis (time); got "
                   f"{sorted(lengths, key=str)}")
    num_steps = lengths.pop()
    state = init(particles, log_weights)
    keys = jax.random.split(key, num_steps)
    first = jnp.arange(num_steps) == 0

    def move(key_move, particles, inputs_t):
        moved = transition_fn(key_move, particles, inputs_t)
        checks.require(_same_types(moved, particles), "transition_fn must return particles with "
                       "the structure, shapes and dtypes of its input")
        return moved

    def body(state, xs):
        key_t, inputs_t, is_first = xs
        key_move, key_resample = jax.random.split(key_t)
        # t = 0 weighs the initial particles as given; the flag is not batched under vmap, so
        # this stays a branch and the transition runs only for t >= 1
        particles = lax.cond(is_first, lambda k, x, u: x, move, key_move, state.particles,
                             inputs_t)
        state = state._replace(particles=particles)
        return step(key_resample, state, log_potential_fn(particles, inputs_t))

    state, infos = lax.scan(body, state, (keys, inputs, first))
    return state, infos
