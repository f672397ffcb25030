"""Diagnostics of a token configuration (spec §4c): energy, cosines, order parameter, diameter.

All functions take one configuration ``x: [N, d]`` of unit rows (vmap for runs/layers).
The ``O(N^2)`` ones accept ``block_size`` (query blocks, ``O(N * block)`` memory).

Near collapse the diagnostics are tiny differences of numbers close to 1 (``e^beta -
e^{beta <x_i, x_j>}``, ``1 - <x_i, x_j>``), which cancel in float32 below about 1e-6. Every one is
computed here from squared distances instead, ``|x_i - x_j|^2 = 2 (1 - <x_i, x_j>)`` for unit
rows, and those from tokens centred at their mean, ``r_i = x_i - mean(x)``:
``|x_i - x_j|^2 = |r_i|^2 + |r_j|^2 - 2 <r_i, r_j>``, whose rounding is relative to the spread of
the tokens rather than to 1; then ``e^beta - e^{beta u} = -e^beta expm1(-beta |x_i - x_j|^2 / 2)``.
Tested against float64 down to ``E_beta = 1e-10``.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxpapers._src import checks, threefry
from jaxpapers.meanfield._validate import (
    check_non_negative,
    check_positive,
    check_static_unit,
    check_tokens_array,
    nan_unless,
)

__all__ = [
    "DecayFit",
    "DecayWindows",
    "chaos_proxies",
    "diameter",
    "decay_windows",
    "energy",
    "energy_decay_bootstrap",
    "energy_decay_fit",
    "energy_rate",
    "expected_initial_energy",
    "one_minus_mean_cos",
    "one_minus_mean_cos_sq",
    "order_parameter",
    "sliced_wasserstein",
]


def _check(x, name: str = "x"):
    return check_tokens_array(x, name).shape[0]


def _row_blocks(x, block: int):
    n = x.shape[0]
    pad = (-n) % block
    nb = (n + pad) // block
    xb = jnp.pad(x, ((0, pad), (0, 0))).reshape(nb, block, x.shape[1])
    valid = (jnp.arange(n + pad) < n).reshape(nb, block)
    return xb, valid


def _centred(x):
    """Tokens minus their mean (two passes: the second removes the first mean's rounding), and
    their squared norms."""
    r = x - jnp.mean(x, axis=0, keepdims=True)
    r = r - jnp.mean(r, axis=0, keepdims=True)
    return r, jnp.sum(r * r, axis=-1)


def _squared_distances(rq, nq, r, n2):
    """``|x_i - x_j|^2`` for query rows ``rq`` (centred, squared norms ``nq``) against all."""
    return jnp.maximum(nq[:, None] + n2[None, :] - 2.0 * (rq @ r.T), 0.0)


def _pairwise_sum(x, block_size, fn, reduce=jnp.sum, fill=0.0):
    """``reduce`` over ``i, j`` of ``fn(|x_i - x_j|^2)``, whole or in query blocks."""
    r, n2 = _centred(x)
    if block_size is None:
        return reduce(fn(_squared_distances(r, n2, r, n2)))
    block = checks.require_positive_int(block_size, "block_size")
    rb, valid = _row_blocks(r, block)
    nb, _ = _row_blocks(n2[:, None], block)

    def rows(inputs):
        rq, nq, mask = inputs
        values = fn(_squared_distances(rq, nq[:, 0], r, n2))
        return reduce(jnp.where(mask[:, None], values, fill))

    return reduce(lax.map(rows, (rb, nb, valid)))


def energy(x, beta=1.0, block_size: int | None = None):
    """Interaction energy ``E_beta = (1 / 2N^2) sum_ij (e^beta - e^{beta <x_i, x_j>})``.

    Zero exactly at a Dirac mass (paper §3). Computed as
    ``(e^beta / 2N^2) sum_ij -expm1(-beta |x_i - x_j|^2 / 2)`` from centred tokens (see the module
    docstring), so it keeps float32's relative precision near collapse.

    Args:
      x: ``(N, d)`` float unit tokens.
      beta: inverse temperature, a real scalar ``>= 0`` (may be traced).
      block_size: None (dense, ``O(N^2)`` memory) or query blocks of this size.

    Returns:
      Float scalar ``E_beta``; NaN in ``x`` gives NaN.

    Raises:
      ValueError: ``x`` not a real float ``(N, d)`` (call or trace time); ``beta`` negative or
        not finite (eagerly; under ``jit`` the result is NaN).

    >>> import jax.numpy as jnp
    >>> float(energy(jnp.ones((3, 2)) / jnp.sqrt(2.0)))   # one point: no energy
    0.0
    """
    _check(x)
    return nan_unless(check_non_negative(beta, "beta"), _energy(x, beta, block_size))


def _energy(x, beta, block_size):
    """:func:`energy` without its checks (the simulators check ``beta`` once per run)."""
    n = x.shape[0]
    total = _pairwise_sum(x, block_size, lambda d2: -jnp.expm1(-0.5 * beta * d2))
    return 0.5 * jnp.exp(beta) * total / n**2


def order_parameter(x):
    """Order parameter ``R = |mean_i x_i|``; ``R = 1`` iff all (unit) tokens coincide.

    Args:
      x: ``(N, d)`` float unit tokens.

    Returns:
      Float scalar ``R`` in ``[0, 1]`` (NaN in, NaN out).

    Raises:
      ValueError: ``x`` not a real float ``(N, d)`` with ``N >= 1``.

    >>> import jax.numpy as jnp
    >>> float(order_parameter(jnp.asarray([[1.0, 0.0], [-1.0, 0.0]])))
    0.0
    """
    _check(x)
    return jnp.linalg.norm(jnp.mean(x, axis=0))


def one_minus_mean_cos(x):
    """``1 - mean_{i != j} <x_i, x_j>`` for unit rows, in ``O(N d)``.

    ``sum_ij |x_i - x_j|^2 = 2N sum_i |x_i - mean(x)|^2``, so the value is
    ``sum_i |x_i - mean(x)|^2 / (N - 1)``: no difference of numbers close to 1.

    Args:
      x: ``(N, d)`` float unit tokens.

    Returns:
      Float scalar in ``[0, 2]``; 0 for ``N = 1`` (NaN in, NaN out).

    Raises:
      ValueError: ``x`` not a real float ``(N, d)`` with ``N >= 1``.

    >>> import jax.numpy as jnp
    >>> float(one_minus_mean_cos(jnp.asarray([[1.0, 0.0], [0.0, 1.0]])))   # orthogonal pair
    1.0
    """
    n = _check(x)
    _, n2 = _centred(x)
    return jnp.sum(n2) / max(n - 1, 1)


_PROJECTOR_BLOCK = 128  # tokens per block of d x d projectors in one_minus_mean_cos_sq


def one_minus_mean_cos_sq(x):
    """Sign-blind ``1 - mean_{i != j} <x_i, x_j>^2`` (zero for two antipodal clusters too).

    With the projectors ``P_i = x_i x_i^T``, ``1 - <x_i, x_j>^2 = |P_i - P_j|_F^2 / 2`` for unit
    rows, so the value is ``sum_i |P_i - mean(P)|_F^2 / (N - 1)``, in ``O(N d^2)``.

    Args:
      x: ``(N, d)`` float unit tokens.

    Returns:
      Float scalar in ``[0, 1]`` (NaN in, NaN out).

    Raises:
      ValueError: ``x`` not a real float ``(N, d)`` with ``N >= 1``.

    >>> import jax.numpy as jnp
    >>> float(one_minus_mean_cos_sq(jnp.asarray([[1.0, 0.0], [-1.0, 0.0]])))   # antipodal
    0.0
    """
    n = _check(x)
    mean_projector = x.T @ x / n

    def spread(xq, mask):
        centred = xq[:, :, None] * xq[:, None, :] - mean_projector[None]
        centred = jnp.where(mask[:, None, None], centred, 0.0)
        return jnp.sum(centred * centred), jnp.sum(centred, axis=0)

    if n <= _PROJECTOR_BLOCK:
        squares, offset = spread(x, jnp.ones(n, bool))
    else:  # O(block d^2) memory
        xb, valid = _row_blocks(x, _PROJECTOR_BLOCK)
        squares, offset = jax.tree_util.tree_map(
            lambda a: jnp.sum(a, axis=0), lax.map(lambda inputs: spread(*inputs), (xb, valid)))
    # sum_i |P_i - m|^2 = sum_i |P_i - mean P|^2 + N |mean P - m|^2 for the rounded mean m
    total = squares - jnp.sum(offset * offset) / n
    return total / max(n - 1, 1)


def diameter(x, block_size: int | None = None):
    """Diameter ``max_ij |x_i - x_j|`` (from centred tokens, so it resolves near-collapsed
    clouds).

    Args:
      x: ``(N, d)`` float tokens.
      block_size: None (dense) or query blocks of this size (``O(N * block)`` memory).

    Returns:
      Float scalar ``>= 0`` (NaN in, NaN out).

    Raises:
      ValueError: ``x`` not a real float ``(N, d)`` with ``N >= 1``.

    >>> import jax.numpy as jnp
    >>> float(diameter(jnp.asarray([[1.0, 0.0], [-1.0, 0.0]])))
    2.0
    """
    _check(x)
    d2max = _pairwise_sum(x, block_size, lambda d2: d2, reduce=jnp.max, fill=-jnp.inf)
    return jnp.sqrt(jnp.maximum(d2max, 0.0))


def energy_rate(energies, horizon):
    """Empirical mean-energy decay rate ``log(mean E_T / mean E_0) / T`` over the whole run.

    Near collapse the mean energy decays at ``lambda_bar``, but this whole-run figure includes
    the early, non-linear phase; :func:`energy_decay_fit` fits a late window instead.

    Args:
      energies: ``[R, S]`` energies of ``R`` runs at ``S`` saved layers (first = t 0, last = T).
      horizon: ``T``.

    Returns:
      ``(rate, standard_error)``, float scalars; the standard error is the delta-method one
      over runs.

    Raises:
      ValueError: ``energies`` not a real float ``(R, S)`` with ``S >= 2`` (call or trace
        time); a non-finite or negative energy, or ``horizon`` not finite and ``> 0``
        (eagerly; under ``jit`` both results are NaN).
    """
    energies = _check_energies(energies)
    ok = check_positive(horizon, "horizon") & _energies_ok(energies)
    e0, et = energies[:, 0], energies[:, -1]
    r = energies.shape[0]
    m0, mt = jnp.mean(e0), jnp.mean(et)
    rate = jnp.log(mt / m0) / horizon
    # delta method for log(mean(et)) - log(mean(e0)) with the runs' covariance
    z = et / mt - e0 / m0
    se = jnp.std(z, ddof=1) / jnp.sqrt(r) / horizon
    return nan_unless(ok, rate), nan_unless(ok, se)


def _check_energies(energies):
    energies = jnp.asarray(energies)
    checks.require(energies.ndim == 2 and energies.shape[0] >= 1 and energies.shape[1] >= 2,
                   f"energies must have shape (R, S) with R >= 1 runs and S >= 2 times; got "
                   f"{energies.shape}")
    checks.require(jnp.issubdtype(energies.dtype, jnp.floating),
                   f"energies must be a real float array; got {energies.dtype}")
    return energies


def _energies_ok(energies):
    """``bool[]``: every energy is finite and ``>= 0``; raises eagerly if not."""
    good = lambda e: jnp.all(jnp.isfinite(e) & (e >= 0))  # noqa: E731
    checks.raise_if_concrete(lambda e: ~good(e), "energies must be finite and >= 0", energies)
    return good(energies)


def _check_series(values, name: str, size: int | None = None):
    values = jnp.asarray(values)
    checks.require(values.ndim == 1 and values.shape[0] >= 2,
                   f"{name} must have shape (S,) with S >= 2; got {values.shape}")
    if size is not None:
        checks.require(values.shape[0] == size, f"{name} must have shape ({size},), the S of "
                                                f"times/energies; got {values.shape}")
    checks.require(jnp.issubdtype(values.dtype, jnp.floating),
                   f"{name} must be a real float array; got {values.dtype}")
    return values


def _check_rule(drop, floor, min_points):
    check_static_unit(drop, "drop")
    if checks.is_concrete(floor):
        f = float(np.asarray(floor))
        checks.require(math.isfinite(f) and f > 0, f"floor must be finite and > 0; got {f}")
    if isinstance(min_points, bool) or not isinstance(min_points, (int, np.integer)) or \
            min_points < 2:
        raise ValueError(f"min_points must be an int >= 2; got {min_points!r}")


def _times_ok(times, name: str = "times"):
    """``bool[]``: ``times`` finite and increasing; raises eagerly if not."""
    good = lambda s: jnp.all(jnp.isfinite(s)) & jnp.all(jnp.diff(s) > 0)  # noqa: E731
    checks.raise_if_concrete(lambda s: ~good(s), f"{name} must be finite and increasing", times)
    return good(times)


class DecayWindows(NamedTuple):
    """The two fitting windows of :func:`energy_decay_fit` over ``S`` saved times.

    Attributes:
      main: ``(S,)`` bool mask of the main (near-collapse) window.
      check: ``(S,)`` bool mask of the check window (the second half of the usable span).
      reached: bool scalar, whether the main rule's threshold was crossed with at least
        ``min_points`` usable points after it (else ``main`` is ``check``).
      start: int scalar, index of the main window's first point (``-1`` for bad input).
      end: int scalar, index of the last usable point (``-1`` for bad input).
    """

    main: jax.Array
    check: jax.Array
    reached: jax.Array
    start: jax.Array
    end: jax.Array


def decay_windows(mean_energy, min_energy, times, *, drop: float = 0.01, floor: float = 1e-10,
                  min_points: int = 8) -> DecayWindows:
    """The late windows of a decaying mean energy, by a rule fixed in advance.

    * **Usable** times run from the start up to (not including) the first time at which some
      run's energy is below ``floor`` (or not finite): below it float32 token positions no
      longer resolve the collapse (module docstring), so later points would flatten the slope.
    * **Main window** (near collapse): from the first usable time at which the mean energy is at
      most ``drop`` times its starting value, to the last usable time. If that threshold is
      never crossed, or fewer than ``min_points`` usable points follow it, the main window falls
      back to the check window and ``reached`` is False.
    * **Check window**: the second half (in time) of the usable span.

    Args:
      mean_energy: ``[S]`` mean over runs of the energy at each saved time.
      min_energy: ``[S]`` minimum over runs (for the floor).
      times: ``[S]`` increasing saved times.
      drop, floor, min_points: the rule's constants.

    Returns:
      :class:`DecayWindows`. Pure and jittable; a usable start (``min_energy[0] >= floor``) is
      assumed.

    Raises:
      ValueError: an argument not a real float ``(S,)`` with ``S >= 2`` (all the same ``S``),
        ``drop`` outside ``(0, 1)``, ``floor`` not finite and ``> 0``, ``min_points < 2`` (call
        or trace time); non-finite ``mean_energy`` or ``times``, or times not increasing
        (eagerly; under ``jit`` empty windows, ``reached = False`` and ``start = end = -1``).
    """
    times = _check_series(times, "times")
    mean_energy = _check_series(mean_energy, "mean_energy", times.shape[0])
    min_energy = _check_series(min_energy, "min_energy", times.shape[0])
    _check_rule(drop, floor, min_points)
    checks.raise_if_concrete(lambda e: ~jnp.all(jnp.isfinite(e)), "mean_energy must be finite",
                             mean_energy)
    ok = _times_ok(times) & jnp.all(jnp.isfinite(mean_energy))
    win = _decay_windows(mean_energy, min_energy, times, drop, floor, min_points)
    return DecayWindows(win.main & ok, win.check & ok, win.reached & ok,
                        jnp.where(ok, win.start, -1), jnp.where(ok, win.end, -1))


def _decay_windows(mean_energy, min_energy, times, drop, floor, min_points) -> DecayWindows:
    idx = jnp.arange(times.shape[0])
    usable = jnp.cumprod(min_energy >= floor).astype(bool)   # NaN compares False
    end = jnp.sum(usable) - 1
    below = usable & (mean_energy <= drop * mean_energy[0])
    start = jnp.argmax(below)
    reached = jnp.any(below) & (end - start + 1 >= min_points)
    check = usable & (times >= times[0] + 0.5 * (times[end] - times[0]))
    main = jnp.where(reached, usable & (idx >= start), check)
    return DecayWindows(main, check, reached, jnp.where(reached, start, jnp.argmax(check)), end)


def _masked_slope(y, t, mask):
    """Least-squares slope of ``y`` on ``t`` over the points where ``mask`` holds."""
    w = mask.astype(t.dtype)
    y = jnp.where(mask, y, 0.0)
    n = jnp.sum(w)
    tc = t - jnp.sum(w * t) / n
    yc = y - jnp.sum(w * y) / n
    return jnp.sum(w * tc * yc) / jnp.sum(w * tc * tc)


class DecayFit(NamedTuple):
    """Decay rates of the energy of ``R`` runs (:func:`energy_decay_fit`); float scalars.

    Attributes:
      mean_slope: slope of ``log(mean E)`` over the main window (near collapse it tends to
        ``lambda_bar``).
      mean_slope_check: the same over the check window.
      log_slope: slope of ``mean log E`` (which tends to ``2 lambda_1``) over the main window.
      log_slope_check: the same over the check window.
      whole_run: ``log(mean E_end / mean E_0) / (t_end - t_0)`` from the start to the last
        usable time (the whole run unless the floor was hit).
      log_spread: the largest variance over runs of ``log E`` in the main window.
      start_time: the main window's first time.
      end_time: the main window's last time.
      reached: bool, see :class:`DecayWindows` (in :func:`energy_decay_bootstrap`'s output,
        the fraction of resamples that reached it).

    ``log_spread`` says whether ``mean E`` over ``R`` runs can estimate the expectation at all:
    near collapse each run's energy is close to a geometric Brownian motion, so ``E`` is
    close to log-normal across runs, and the relative standard deviation of the mean of ``R``
    log-normal values of log-variance ``s2`` is ``sqrt((e^{s2} - 1) / R)``. Once ``s2`` passes
    ``log R`` that exceeds 1: the sample mean is carried by a few runs and its slope drifts from
    ``lambda_bar`` towards ``2 lambda_1``, which bootstrap errors over the same runs cannot show.
    """

    mean_slope: jax.Array
    mean_slope_check: jax.Array
    log_slope: jax.Array
    log_slope_check: jax.Array
    whole_run: jax.Array
    log_spread: jax.Array
    start_time: jax.Array
    end_time: jax.Array
    reached: jax.Array


def energy_decay_fit(energies, times, *, drop: float = 0.01, floor: float = 1e-10,
                     min_points: int = 8) -> DecayFit:
    """Late-window decay rates of the energies ``[R, S]`` of ``R`` runs at saved ``times [S]``.

    The windows come from :func:`decay_windows` applied to the mean and minimum over runs, so
    the rule is fixed before the data are seen; both slopes are ordinary least squares of the
    log of a run average on time, over the same window. Pure and jittable.

    Args:
      energies: ``(R, S)`` float energies, finite and ``>= 0``.
      times: ``(S,)`` float increasing saved times.
      drop, floor, min_points: the window rule's constants (:func:`decay_windows`).

    Returns:
      :class:`DecayFit`.

    Raises:
      ValueError: wrong shapes or dtypes or a bad rule constant (call or trace time);
        non-finite or negative energies, times not finite and increasing (eagerly; under
        ``jit`` every float field is NaN and ``reached`` is False).

    >>> import jax.numpy as jnp
    >>> t = jnp.linspace(0.0, 9.0, 10)
    >>> fit = energy_decay_fit(jnp.exp(-2.0 * t)[None], t, min_points=3)
    >>> round(float(fit.mean_slope), 4), bool(fit.reached)
    (-2.0, True)
    """
    energies = _check_energies(energies)
    times = _check_series(times, "times", energies.shape[1]).astype(energies.dtype)
    _check_rule(drop, floor, min_points)
    ok = _fit_inputs_ok(energies, times)
    fit = _energy_decay_fit(energies, times, drop, floor, min_points)
    return fit._replace(**{name: nan_unless(ok, getattr(fit, name))
                           for name in fit._fields if name != "reached"},
                        reached=fit.reached & ok)


def _fit_inputs_ok(energies, times):
    """``bool[]``: finite non-negative energies, finite increasing times; raises eagerly."""
    checks.raise_if_concrete(lambda e: ~jnp.all(jnp.isfinite(e)), "energies must be finite",
                             energies)
    return _energies_ok(energies) & _times_ok(times) & jnp.all(jnp.isfinite(energies))


def _energy_decay_fit(energies, times, drop, floor, min_points) -> DecayFit:
    mean = jnp.mean(energies, axis=0)
    win = _decay_windows(mean, jnp.min(energies, axis=0), times, drop, floor, min_points)
    log_mean = jnp.log(mean)
    logs = jnp.log(jnp.where(energies > 0, energies, 1.0))
    mean_log = jnp.mean(logs, axis=0)
    spread = jnp.max(jnp.where(win.main, jnp.var(logs, axis=0, ddof=1), -jnp.inf))
    whole = (log_mean[win.end] - log_mean[0]) / (times[win.end] - times[0])
    return DecayFit(_masked_slope(log_mean, times, win.main),
                    _masked_slope(log_mean, times, win.check),
                    _masked_slope(mean_log, times, win.main),
                    _masked_slope(mean_log, times, win.check),
                    whole, spread, times[win.start], times[win.end], win.reached)


def energy_decay_bootstrap(key, energies, times, num_resamples: int = 1000, **rule) -> DecayFit:
    """Bootstrap standard errors of :func:`energy_decay_fit` over runs.

    Each resample draws ``R`` runs with replacement (from ``key``) and applies the whole
    procedure, window rule included, so the window's own variability is part of the error.
    Returns a :class:`DecayFit` whose float fields are the standard deviations over resamples
    and whose ``reached`` is the fraction of resamples in which the main rule was reached.

    Args:
      key: PRNG key of the resamples.
      energies: ``(R, S)`` float energies; times: ``(S,)`` increasing times.
      num_resamples: number of resamples, an int ``>= 2``.
      **rule: ``drop``, ``floor``, ``min_points`` as for :func:`energy_decay_fit`.

    Returns:
      :class:`DecayFit` of standard errors (float scalars).

    Raises:
      ValueError: ``key`` not a key, ``num_resamples < 2``, an unknown rule name, and the
        faults :func:`energy_decay_fit` lists (bad values: eagerly; NaN fields under ``jit``).
    """
    threefry.check_key(key)
    energies = _check_energies(energies)
    num_resamples = checks.require_positive_int(num_resamples, "num_resamples")
    checks.require(num_resamples >= 2, f"num_resamples must be >= 2 (a standard deviation); "
                                       f"got {num_resamples}")
    unknown = set(rule) - {"drop", "floor", "min_points"}
    checks.require(not unknown, f"rule takes drop, floor, min_points; got {sorted(unknown)}")
    drop, floor, min_points = (rule.get("drop", 0.01), rule.get("floor", 1e-10),
                               rule.get("min_points", 8))
    times = _check_series(times, "times", energies.shape[1]).astype(energies.dtype)
    _check_rule(drop, floor, min_points)
    ok = _fit_inputs_ok(energies, times)  # bad input: raised eagerly, NaN fields under jit
    r = energies.shape[0]
    picks = jax.random.randint(key, (num_resamples, r), 0, r)
    fits = jax.vmap(lambda i: _energy_decay_fit(energies[i], times, drop, floor, min_points))(
        picks)
    spread = jax.tree_util.tree_map(lambda a: nan_unless(ok, jnp.std(a, ddof=1)), fits)
    return spread._replace(reached=nan_unless(ok, jnp.mean(fits.reached.astype(energies.dtype))))


def expected_initial_energy(num_tokens: int, d: int, beta: float) -> float:
    """Closed form of ``E E_beta`` for ``N`` i.i.d. uniform tokens on ``S^{d-1}`` (spec oracle 5).

    ``(1/2)(1 - 1/N)(e^beta - Gamma(d/2) (2/beta)^{d/2-1} I_{d/2-1}(beta))``; needs scipy.

    Args:
      num_tokens: ``N``, a positive int.
      d: dimension, an int ``>= 2``.
      beta: inverse temperature, a finite Python or NumPy number ``> 0``.

    Returns:
      The expectation, a float (``numpy.float64``).

    Raises:
      ValueError: a size not a positive int, ``d < 2`` or ``beta`` not finite and ``> 0``.

    >>> round(float(expected_initial_energy(2, 2, 1.0)), 4)   # (e - I_0(1)) / 4
    0.3631
    """
    from scipy.special import gammaln, ive

    checks.require_positive_int(num_tokens, "num_tokens")
    d = checks.require_positive_int(d, "d")
    checks.require(d >= 2, f"d (token dimension) must be >= 2; got {d}")
    checks.require(isinstance(beta, (int, float, np.integer, np.floating))
                   and not isinstance(beta, bool) and math.isfinite(beta) and beta > 0,
                   f"beta must be a finite number > 0; got {beta!r}")
    nu = d / 2 - 1
    # E e^{beta u} with u the first coordinate of a uniform point: Gamma(d/2)(2/beta)^nu I_nu(beta)
    mgf = math.exp(gammaln(d / 2) + nu * math.log(2 / beta) + beta) * ive(nu, beta)
    return 0.5 * (1 - 1 / num_tokens) * (math.exp(beta) - mgf)


def chaos_proxies(x, x_ref, beta=1.0, block_size: int | None = None):
    """Propagation-of-chaos proxies between an ``N``-token system and a larger reference one.

    Both systems should be driven by the same per-layer weights (same run key).

    Args:
      x: ``(N, d)`` float tokens; x_ref: ``(M, d)`` float tokens of the reference system.
      beta: inverse temperature of the energy (as in :func:`energy`).
      block_size: as in :func:`energy`.

    Returns:
      ``(|mean diff|^2, |second-moment diff|_F^2, |E_beta diff|)``, float scalars (NaN in,
      NaN out).

    Raises:
      ValueError: ``x`` or ``x_ref`` not a real float ``(N, d)``, different ``d``; ``beta``
        as in :func:`energy`.
    """
    _check(x)
    _check(x_ref, "x_ref")
    checks.require(x.shape[1] == x_ref.shape[1],
                   f"x and x_ref must share d; got {x.shape} and {x_ref.shape}")
    dm = jnp.mean(x, 0) - jnp.mean(x_ref, 0)
    m2 = x.T @ x / x.shape[0] - x_ref.T @ x_ref / x_ref.shape[0]
    de = energy(x, beta, block_size) - energy(x_ref, beta, block_size)
    return jnp.sum(dm * dm), jnp.sum(m2 * m2), jnp.abs(de)


def _w2_squared_1d(a, b):
    """Exact ``W_2^2`` between the uniform empirical measures of 1-D samples ``a [N]``, ``b [M]``.

    The quantile functions are step functions with breaks at ``i / N`` and ``j / M``; the integral
    of their squared difference is summed over the merged breaks.
    """
    n, m = a.shape[0], b.shape[0]
    a, b = jnp.sort(a), jnp.sort(b)
    breaks = jnp.sort(jnp.concatenate([jnp.arange(1, n + 1) / n, jnp.arange(1, m + 1) / m]))
    widths = jnp.diff(breaks, prepend=0.0)
    mid = breaks - 0.5 * widths
    qa = a[jnp.clip(jnp.floor(mid * n).astype(jnp.int32), 0, n - 1)]
    qb = b[jnp.clip(jnp.floor(mid * m).astype(jnp.int32), 0, m - 1)]
    return jnp.sum(widths * (qa - qb) ** 2)


def sliced_wasserstein(key, x, y, num_projections: int = 64):
    """Sliced 2-Wasserstein distance between the empirical measures of ``x [N, d]``, ``y [M, d]``.

    ``SW_2 = (E_theta W_2^2(<x, theta>, <y, theta>))^{1/2}`` over directions ``theta`` uniform on
    the sphere (``num_projections`` of them, drawn from ``key``); each 1-D ``W_2`` is exact. The
    two sets may differ in size (propagation of chaos: ``N`` tokens against a large reference).

    Args:
      key: PRNG key of the directions.
      x: ``(N, d)`` float points; y: ``(M, d)`` float points.
      num_projections: number of directions, a positive int.

    Returns:
      Float scalar ``SW_2`` (NaN in, NaN out).

    Raises:
      ValueError: ``key`` not a key, ``x`` or ``y`` not a real float ``(N, d)``, different
        ``d``, ``num_projections`` not a positive int.
    """
    threefry.check_key(key)
    _check(x)
    _check(y, "y")
    checks.require(x.shape[1] == y.shape[1], f"x and y must share d; got {x.shape}, {y.shape}")
    num_projections = checks.require_positive_int(num_projections, "num_projections")
    theta = jax.random.normal(key, (num_projections, x.shape[1]), x.dtype)
    theta = theta / jnp.linalg.norm(theta, axis=-1, keepdims=True)
    per_direction = jax.vmap(lambda t: _w2_squared_1d(x @ t, y @ t))(theta)
    return jnp.sqrt(jnp.mean(per_direction))
