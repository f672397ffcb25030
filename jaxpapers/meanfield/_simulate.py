"""The finite-depth transformer and its limiting SDE, as one ``lax.scan`` over layers.

One run = one PRNG key = one realisation of the common noise shared by all ``N`` tokens; vmap
over keys for independent runs. Per-layer randomness comes from ``fold_in(key, layer)`` and is
drawn inside the scan, so ``L x m x d`` weights never exist at once.

References: paper §1.1 (model), eq. (dynamics_tokens) (Itô SDE); spec §2.2, §4a, §4b.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from jaxpapers._src import checks, threefry
from jaxpapers.meanfield._config import Coefficients, ModelConfig
from jaxpapers.meanfield._kernel import _kernel_constants, activation_fn, kappa_grid
from jaxpapers.meanfield._layers import (
    attend,
    layer_norm,
    mlp_field,
    sample_layer_weights,
    tangent_project,
)
from jaxpapers.meanfield._metrics import (
    _energy,
    one_minus_mean_cos,
    one_minus_mean_cos_sq,
    order_parameter,
)
from jaxpapers.meanfield._validate import check_coeffs

__all__ = [
    "Saved",
    "Trajectory",
    "lyapunov_exponent",
    "sde_solve",
    "strong_error",
    "transformer_forward",
    "uniform_sphere",
]

_UNIT_TOL = 1e-4


class Saved(NamedTuple):
    """Per-layer diagnostics at layers ``0, k, ..., L`` (``S = L / k + 1`` entries,
    ``k = save_every``), in the dtype of the tokens.

    Attributes:
      energy: ``(S,)`` interaction energy ``E_beta`` (:func:`jaxpapers.meanfield.metrics.energy`).
      one_minus_cos: ``(S,)`` ``1 - mean_{i != j} <x_i, x_j>``.
      one_minus_cos_sq: ``(S,)`` ``1 - mean_{i != j} <x_i, x_j>^2``.
      order: ``(S,)`` order parameter ``|mean_i x_i|``.
      states: ``(S, N, d)`` token positions if ``save_states``, else None.
    """

    energy: jax.Array
    one_minus_cos: jax.Array
    one_minus_cos_sq: jax.Array
    order: jax.Array
    states: jax.Array | None


class Trajectory(NamedTuple):
    """Output of one run of :func:`sde_solve` or :func:`transformer_forward`.

    Attributes:
      x: ``(N, d)`` final tokens, the dtype of ``x0``.
      saved: :class:`Saved` diagnostics, or None when ``save_every == 0``.
    """

    x: jax.Array
    saved: Saved | None


def uniform_sphere(key, num_tokens: int, d: int, dtype=None):
    """``num_tokens`` i.i.d. uniform points on the sphere ``S^{d-1}``.

    Args:
      key: PRNG key.
      num_tokens: ``N``, a positive int.
      d: dimension, an int ``>= 2``.
      dtype: float dtype (default: the default float, float32 unless x64 is on).

    Returns:
      ``(N, d)`` unit rows.

    Raises:
      ValueError: ``key`` not a PRNG key, ``num_tokens`` not a positive int or ``d < 2``.

    >>> import jax
    >>> x = uniform_sphere(jax.random.key(0), 4, 3)
    >>> x.shape, bool(abs((x * x).sum(-1) - 1).max() < 1e-6)
    ((4, 3), True)
    """
    threefry.check_key(key)
    num_tokens = checks.require_positive_int(num_tokens, "num_tokens")
    d = checks.require_positive_int(d, "d")
    checks.require(d >= 2, f"d must be >= 2; got {d}")
    dtype = jnp.result_type(float) if dtype is None else dtype
    return layer_norm(jax.random.normal(key, (num_tokens, d), dtype))


def _check_tokens(x0):
    x0 = jnp.asarray(x0)
    checks.require(x0.ndim == 2, f"x0 must have shape (N, d); got shape {x0.shape}")
    checks.require(jnp.issubdtype(x0.dtype, jnp.floating), f"x0 must be float; got {x0.dtype}")
    n, d = x0.shape
    checks.require(n >= 1, "x0 must hold at least one token")
    checks.require(d >= 2, f"token dimension d must be >= 2; got d={d}")
    norms = jnp.linalg.norm(x0, axis=-1)
    message = ("x0 must hold finite unit-norm rows (tokens on the sphere); "
               f"|norm - 1| must be <= {_UNIT_TOL}")
    checks.raise_if_concrete(lambda nrm: ~(jnp.abs(nrm - 1.0) <= _UNIT_TOL), message, norms)
    # Under jit/vmap (no host callback: it would be unrolled over the vmapped runs) a bad row
    # becomes NaN, and attention spreads it, so a bad input gives a NaN output, never garbage.
    bad = ~(jnp.abs(norms - 1.0) <= _UNIT_TOL)  # NaN compares False -> bad
    return jnp.where(bad[:, None], jnp.nan, x0)


def _check_run(key, x0, config, coeffs):
    """The shared checks of a run: key, config, coefficients, tokens (see :func:`sde_solve`).

    Returns the checked tokens and the coefficients' ``bool[]`` value flag; the run's outputs
    are made NaN where it is False, last (so a good run's graph and numbers are unchanged)."""
    threefry.check_key(key)
    if not isinstance(config, ModelConfig):
        raise ValueError(f"config must be a ModelConfig; got {type(config).__name__}")
    x0 = jnp.asarray(x0)
    checks.require(x0.ndim == 2, f"x0 must have shape (N, d); got shape {x0.shape}")
    ok = check_coeffs(coeffs, x0.shape[1])
    return _check_tokens(x0), ok


def _nan_unless(ok, tree):
    return jax.tree_util.tree_map(lambda a: jnp.where(ok, a, jnp.nan), tree)


class _Noise(NamedTuple):
    increment: object  # y [N, d] -> sqrt(dt)-scaled field increment [N, d]
    variance: object   # y [N, d] -> k(y, y) [N] (per-coordinate variance of the field)
    both: object = None  # y -> (increment, variance) from one evaluation of shared work

    def increment_and_variance(self, y):
        if self.both is not None:
            return self.both(y)
        return self.increment(y), self.variance(y)


def _noise_setup(key, config: ModelConfig, coeffs, d: int, dtype):
    """Run-level noise objects (kernel table, fixed features) and a per-layer noise factory."""
    dt = jnp.asarray(config.dt, dtype)
    sqdt = jnp.sqrt(dt)
    noise = config.noise
    if noise == "none":
        zero = _Noise(lambda y: jnp.zeros_like(y), lambda y: jnp.zeros(y.shape[:1], dtype))
        return lambda layer: zero
    if noise == "mlp":
        k1 = _kernel_constants(activation_fn(config.activation), config.activation, d,
                               coeffs.sigma_u, coeffs.sigma_w).kappa1

        def factory(layer):
            weights = sample_layer_weights(jax.random.fold_in(key, layer), d, config.width,
                                           coeffs.sigma_u, coeffs.sigma_w, dtype)
            return _Noise(lambda y: sqdt * mlp_field(y, weights, config.activation),
                          lambda y: jnp.full(y.shape[:1], k1, dtype))

        return factory
    if noise == "gp":
        grid, table = kappa_grid(config.activation, d, coeffs.sigma_u, coeffs.sigma_w,
                                 config.kernel_points)
        grid, table = grid.astype(dtype), table.astype(dtype)
        k1 = table[-1]

        def increment_gp(layer, y):
            gram = jnp.clip(y @ y.T, -1.0, 1.0)
            cov = jnp.interp(gram, grid, table)
            evals, evecs = jnp.linalg.eigh(0.5 * (cov + cov.T))
            root = (evecs * jnp.sqrt(jnp.maximum(evals, 0.0))[None, :]) @ evecs.T
            z = threefry.normal(jax.random.fold_in(key, layer), y.shape, dtype)
            return sqdt * (root @ z)

        return lambda layer: _Noise(lambda y: increment_gp(layer, y),
                                    lambda y: jnp.full(y.shape[:1], k1, dtype))
    # fixed features: sigma_r(x) = phi(u_r . x / sqrt(d) + b_r) / sqrt(M), plus constant sigma_w
    feat_key, path_key = jax.random.split(key)
    feats = sample_layer_weights(feat_key, d, config.width, coeffs.sigma_u, 0.0, dtype)
    phi = activation_fn(config.activation)
    sw = jnp.asarray(coeffs.sigma_w, dtype)
    r = config.brownian_substeps
    # The constant feature sigma_w is added apart: no [N, M+1] concatenation per step (that
    # copy cost more than the products themselves at N = 64, d = 5).
    scale_in = 1.0 / jnp.sqrt(jnp.asarray(d, dtype))
    scale_out = 1.0 / jnp.sqrt(jnp.asarray(config.width, dtype))

    def hidden(y):  # sigma_r(y), r < M
        return phi(y @ feats.u.T * scale_in + feats.b_u[None]) * scale_out

    def factory(layer):
        def fine(j):
            k = jax.random.fold_in(path_key, layer * r + j)
            return threefry.normal(k, (config.width + 1, d), dtype)

        if r == 1:
            db = fine(0) * sqdt
        else:
            db = jnp.sum(jax.vmap(fine)(jnp.arange(r)), axis=0) * jnp.sqrt(dt / r)

        def increment_from(h):
            return h @ db[:-1] + sw * db[-1:]

        def variance_from(h):
            return jnp.sum(h * h, axis=-1) + sw * sw

        def both(y):
            h = hidden(y)
            return increment_from(h), variance_from(h)

        return _Noise(lambda y: increment_from(hidden(y)), lambda y: variance_from(hidden(y)),
                      both)

    return factory


def _make_step(config: ModelConfig, coeffs, noise_factory, d: int, dtype):
    """``step(x, layer) -> x'`` for the configured scheme."""
    dt = jnp.asarray(config.dt, dtype)

    def attn(x):
        return attend(x, coeffs.beta, coeffs.attn_scale, coeffs.qk, coeffs.value,
                      config.block_size)

    def step(x, layer):
        noise = noise_factory(layer)
        if config.scheme == "ln":
            y = layer_norm(x + dt * attn(x))
            if config.noise == "none":
                return y
            return layer_norm(y + noise.increment(y))
        if config.scheme == "ito":
            # x + dt (P_x Attn - (d-1)/2 k(x,x) x) + P_x dW (one projection of dt Attn + dW
            # has fewer operations but fused worse: measured 1.5x slower on the CPU)
            increment, variance = noise.increment_and_variance(x)
            drift = tangent_project(x, attn(x)) - 0.5 * (d - 1) * variance[:, None] * x
            new = x + dt * drift + tangent_project(x, increment)
        else:  # Stratonovich Heun: no radial drift
            f0 = tangent_project(x, attn(x))
            g0 = tangent_project(x, noise.increment(x))
            pred = x + dt * f0 + g0
            f1 = tangent_project(pred, attn(pred))
            g1 = tangent_project(pred, noise.increment(pred))
            new = x + 0.5 * dt * (f0 + f1) + 0.5 * (g0 + g1)
        return layer_norm(new) if config.renormalize else new

    return step


def _diagnostics(x, config: ModelConfig, coeffs) -> Saved:
    # unchecked energy: the run checked beta once (the check would only re-fuse the graph)
    return Saved(_energy(x, coeffs.beta, config.block_size), one_minus_mean_cos(x),
                 one_minus_mean_cos_sq(x), order_parameter(x),
                 x if config.save_states else None)


def sde_solve(key, x0, config: ModelConfig, coeffs: Coefficients = Coefficients()) -> Trajectory:
    """Simulate one run of the tokens ``x0`` through ``config.num_layers`` steps.

    With ``scheme="ln"`` and ``noise="mlp"`` this *is* the finite-depth random-weight
    transformer; with ``noise="gp"`` it is the paper's intermediate LN scheme ``X-hat`` with the
    exact infinite-width field; ``scheme="ito"``/``"heun"`` discretise the Itô SDE
    ``dX = (P_X Attn - (d-1)/2 kappa(1) X) dt + P_X dW(X)`` or its Stratonovich form
    ``dX = P_X Attn dt + P_X o dW(X)`` (spec §2.2, [derived]). The noise is common to all tokens.

    Args:
      key: PRNG key of the run (all tokens share its noise).
      x0: ``[N, d]`` initial tokens, unit rows.
      config: static :class:`ModelConfig`.
      coeffs: traced :class:`Coefficients`.

    Returns:
      :class:`Trajectory` with the final ``(N, d)`` tokens (dtype of ``x0``) and the saved
      diagnostics.

    Raises:
      ValueError: ``x0`` not ``(N, d)`` with ``d >= 2``, ``key`` not a PRNG key, ``config``
        not a :class:`ModelConfig`, ``coeffs`` not a :class:`Coefficients` with scalar
        coefficients and ``[d, d]`` matrices (at call or trace time); non-unit or NaN rows,
        negative or NaN ``beta``/``sigma_u``/``sigma_w``, a non-finite ``attn_scale`` or matrix
        (eagerly; under ``jit``/``vmap`` bad rows are set to NaN at the start and bad
        coefficients make every output NaN at the end: documented NaN in, NaN out).
    """
    x0, ok = _check_run(key, x0, config, coeffs)
    n, d = x0.shape
    dtype = x0.dtype
    factory = _noise_setup(key, config, coeffs, d, dtype)
    step = _make_step(config, coeffs, factory, d, dtype)

    def body(x, layer):
        return step(x, layer), None

    if not config.save_every:
        x, _ = lax.scan(body, x0, jnp.arange(config.num_layers))
        return Trajectory(_nan_unless(ok, x), None)

    k = config.save_every

    def outer(x, chunk):
        x, _ = lax.scan(body, x, chunk * k + jnp.arange(k))
        return x, _diagnostics(x, config, coeffs)

    x, saved = lax.scan(outer, x0, jnp.arange(config.num_layers // k))
    first = _diagnostics(x0, config, coeffs)
    saved = jax.tree_util.tree_map(lambda a, b: jnp.concatenate([a[None], b]), first, saved)
    return _nan_unless(ok, Trajectory(x, saved))


def transformer_forward(key, x0, config: ModelConfig,
                        coeffs: Coefficients = Coefficients()) -> Trajectory:
    """The finite-depth, finite-width random transformer of paper §1.1 (spec §4a).

    Per layer ``Y = LN(X + (T/L) Attn(X))`` and ``X' = LN(Y + sqrt(T/L) G_l(Y))`` with a fresh
    Gaussian MLP ``G_l`` of width ``config.width`` drawn inside the scan from
    ``fold_in(key, l)``, so ``L x m x d`` weights never exist at once.

    Args:
      key: PRNG key of the run (all tokens share its weights).
      x0: ``(N, d)`` float initial tokens, unit rows, ``d >= 2``.
      config: :class:`ModelConfig` with ``scheme="ln"`` and ``noise`` ``"mlp"`` or ``"none"``
        (attention only).
      coeffs: :class:`Coefficients`.

    Returns:
      :class:`Trajectory`: final ``(N, d)`` tokens and, with ``config.save_every``, the
      diagnostics at the saved layers.

    Raises:
      ValueError: another scheme or noise (use :func:`sde_solve`), and every fault that
        :func:`sde_solve` lists (the same NaN-under-``jit`` rule for bad values).
    """
    if not isinstance(config, ModelConfig):
        raise ValueError(f"config must be a ModelConfig; got {type(config).__name__}")
    checks.require(config.scheme == "ln" and config.noise in ("mlp", "none"),
                   "transformer_forward needs scheme='ln' and noise in ('mlp', 'none'); got "
                   f"scheme={config.scheme!r}, noise={config.noise!r} (use sde_solve)")
    return sde_solve(key, x0, config, coeffs)


def lyapunov_exponent(key, x0, config: ModelConfig, coeffs: Coefficients = Coefficients()):
    """Tangent-method estimate of the top Lyapunov exponent over one run (spec §4c).

    Propagates ``(x, v)`` with ``jax.jvp`` of the one-layer map, renormalises ``v`` every layer
    and returns ``sum_l log |v_l| / T``. Average over runs (vmap over keys) and compare with
    ``kernel_constants(...).lambda1`` for ``N = 1`` and ``attn_scale = 0``; keep
    ``dt |lambda_1| <~ 0.05``.

    Args:
      key: PRNG key (split into the tangent start and the noise of the run).
      x0: ``[N, d]`` unit tokens (``N = 1`` for the one-point exponent).
      config, coeffs: as in :func:`sde_solve` (``save_every`` is ignored).

    Returns:
      float scalar estimate of ``lambda_1`` (NaN under ``jit`` for bad values, as
      :func:`sde_solve`).

    Raises:
      ValueError: the faults :func:`sde_solve` lists (static ones at call or trace time, bad
        values eagerly).
    """
    x0, ok = _check_run(key, x0, config, coeffs)
    n, d = x0.shape
    dtype = x0.dtype
    key_v, key_run = jax.random.split(key)
    factory = _noise_setup(key_run, config, coeffs, d, dtype)
    step = _make_step(config, coeffs, factory, d, dtype)
    v0 = tangent_project(x0, jax.random.normal(key_v, x0.shape, dtype))
    v0 = v0 / jnp.linalg.norm(v0)

    def body(carry, layer):
        x, v, acc = carry
        x1, v1 = jax.jvp(lambda z: step(z, layer), (x,), (v,))
        size = jnp.linalg.norm(v1)
        return (x1, v1 / size, acc + jnp.log(size)), None

    (_, _, acc), _ = lax.scan(body, (x0, v0, jnp.zeros((), dtype)),
                              jnp.arange(config.num_layers))
    return jnp.where(ok, acc / config.horizon, jnp.nan)


def strong_error(key, x0, config: ModelConfig, num_layers, coeffs: Coefficients = Coefficients()):
    """Strong (pathwise) error against a finer run on the same Brownian path (spec §4c).

    ``config`` is the reference (its ``num_layers`` is ``L_ref``, ``noise="features"``). For
    each ``L`` in ``num_layers`` (divisors of ``L_ref``) the run with ``L`` steps sums
    ``L_ref / L`` fine Brownian increments per step, and the error is
    ``max_grid (1/N) sum_i |X^L_i - X^ref_i|^2`` at the ``L`` grid times. Expect
    ``E error ~ 1/L`` (paper Thm 1.1 on grid times).

    Args:
      key: PRNG key of the run (the shared Brownian path and features).
      x0: ``(N, d)`` float unit tokens.
      config: the reference :class:`ModelConfig` (``noise="features"``).
      num_layers: static sequence of step counts, each dividing ``config.num_layers``.
      coeffs: :class:`Coefficients`.

    Returns:
      ``(len(num_layers),)`` float errors for this run (average over runs outside).

    Raises:
      ValueError: ``noise`` not ``"features"``, an entry of ``num_layers`` not a positive int
        dividing ``L_ref``, and the faults :func:`sde_solve` lists.
    """
    if not isinstance(config, ModelConfig):
        raise ValueError(f"config must be a ModelConfig; got {type(config).__name__}")
    checks.require(config.noise == "features", "strong_error needs noise='features' (a fixed "
                   f"field shared across step sizes); got {config.noise!r}")
    ref_layers = config.num_layers
    base = config.replace(save_every=1, save_states=True, brownian_substeps=1)
    ref = sde_solve(key, x0, base, coeffs).saved.states
    errors = []
    for levels in num_layers:
        levels = checks.require_positive_int(levels, "num_layers entry")
        checks.require(ref_layers % levels == 0,
                       f"each num_layers entry must divide L_ref={ref_layers}; got {levels}")
        r = ref_layers // levels
        cfg = base.replace(num_layers=levels, brownian_substeps=r)
        states = sde_solve(key, x0, cfg, coeffs).saved.states
        diff = states - ref[::r]
        errors.append(jnp.max(jnp.mean(jnp.sum(diff * diff, axis=-1), axis=-1)))
    return jnp.stack(errors)
