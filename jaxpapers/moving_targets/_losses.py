"""Moving-targets errors, the exact weight solve and the reduced (variable-projection) error.

Equations (Rohwer 1990; printed eqs. 7-10 are illegible and were re-derived, spec section 3):

* activation deficit (eqs. 4-5, extended to hidden events)
  ``E_act(W, Xh) = 1/2 sum_{(s,i,t) in T u H, t >= 1} (sum_j W[i,j] Y[s,j,t-1] - X[s,i,t])^2``;
* output deficit (eq. 13 for ``power=4``)
  ``E_p = 1/p sum_{T u H, t >= 1} (1 + alpha t) |f(xhat) - Y|^p`` (prefactor and range inferred);
* weight solve (eqs. 6, 10-11): ``E_act`` is quadratic in ``W`` and separates over rows; row ``i``
  solves ``(M_i + lam I) w_i = b_i`` with ``M_i = sum_{R_i} Y_{t-1} Y_{t-1}^T`` and
  ``b_i = sum_{R_i} X_{i,t} Y_{t-1}`` over the row's events ``R_i`` (ridge ``lam`` inferred);
* reduced error ``E(Xh) = E_act(W*(Xh), Xh) + lam/2 ||W*||^2`` and its envelope gradient
  ``dE/dX[s,j,t] = -eps[s,j,t] + f'(X[s,j,t]) sum_i W[i,j] eps[s,i,t+1]`` on hidden events
  (``eps = xhat - X`` on target and hidden events, 0 on inputs; no ``t+1`` term at the end);
* the BPTT loss ``1/2 sum_T (y_free - Y)^2`` and the segment (multiple-shooting) loss that
  interpolates between moving targets (segment 1) and BPTT (segment >= T).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxpapers._src import checks
from jaxpapers.moving_targets._events import (
    HIDDEN,
    INPUT,
    TARGET,
    EventSpec,
    activation_fns,
    finite,
    nan_unless,
    require_finite_targets,
)
from jaxpapers.moving_targets._model import (
    _check_targets,
    _check_weights,
    compose,
    free_run,
    inputs_ok,
    preacts,
)


def _non_negative(value, name: str):
    """``bool[]``: ``value`` is finite and ``>= 0`` (a concrete bad one raises)."""
    checks.raise_if_concrete(lambda v: ~(jnp.isfinite(v) & (v >= 0)),
                             f"{name} must be finite and >= 0; got {value}", value)
    value = jnp.asarray(value)
    return jnp.all(jnp.isfinite(value) & (value >= 0))

__all__ = ["act_deficit", "out_deficit", "solve_weights", "solve_events", "reduced_act",
           "reduced_act_grad", "bptt_loss", "shooting_loss", "error_mask", "error_weights",
           "noise_variance", "SOLVERS"]

SOLVERS = ("cholesky", "lstsq")


def error_mask(spec: EventSpec):
    """bool ``[S, T-1, N]``: the events at ``t >= 1`` that carry an error term (target or
    hidden)."""
    return spec.kind[:, 1:] != INPUT


def error_weights(spec: EventSpec, alpha=0.0, dtype=None):
    """float ``[S, T-1, N]``: ``(1 + alpha t)`` on the events of :func:`error_mask`, else 0
    (the paper's temporal weighting, applied to the activation deficit)."""
    dtype = dtype or spec.value.dtype
    t = jnp.arange(1, spec.kind.shape[1], dtype=dtype)[None, :, None]
    return jnp.where(error_mask(spec), 1.0 + alpha * t, 0.0).astype(dtype)


def _residual(W, Xh, spec: EventSpec, activation: str):
    Yall, Xall = compose(spec, Xh, activation)
    return jnp.where(error_mask(spec), preacts(W, Yall) - Xall[:, 1:], 0.0)


def act_deficit(W, Xh, spec: EventSpec, activation: str = "logistic", alpha=0.0,
                output_var=None):
    """The activation deficit ``E_act(W, Xh)`` (eqs. 4-5, extended to hidden events).

    ``1/2 sum (sum_j W[i, j] Y[s, j, t-1] - X[s, i, t])^2`` over target and hidden events at
    ``t >= 1``. Target outputs must lie strictly inside the range of ``f`` (their activations
    enter the error).

    Args:
      W: float ``[N, N]`` weights.
      Xh: float ``[S, T, N]`` moving targets (activations, read where hidden).
      spec: :class:`~jaxpapers.moving_targets.EventSpec` ``[S, T, N]``.
      activation: ``"logistic"`` or ``"tanh"``.
      alpha: each term is weighted by ``1 + alpha t`` (``alpha >= 0``).
      output_var: optional float ``[S, T, N]``, the variance of independent noise on each
        event's output: the expected deficit under that noise (each term gains
        ``sum_j W[i, j]^2 output_var[s, j, t-1]``).

    Returns:
      float ``[]``.

    Raises:
      ValueError: ``W`` not ``[N, N]``, ``Xh`` not of the spec's shape, or not real float
        arrays; an unknown activation; eagerly, a bad spec
        (:func:`~jaxpapers.moving_targets.tasks.validate_events`), or a target output on the
        boundary of the range of ``f``; eagerly, a negative or NaN ``alpha``. Under ``jit``
        bad values give NaN.
    """
    _check_weights(W, spec)
    _check_targets(Xh, spec)
    require_finite_targets(spec, activation, "act_deficit")
    ok = inputs_ok(spec, activation, W, Xh, output_var) & _non_negative(alpha, "alpha")
    return nan_unless(ok, _act_deficit(W, Xh, spec, activation, alpha, output_var))


def _act_deficit(W, Xh, spec, activation, alpha, output_var):
    r = _residual(W, Xh, spec, activation)
    w = error_weights(spec, alpha, r.dtype)
    total = jnp.sum(w * r ** 2)
    if output_var is not None:
        total = total + jnp.sum(w * jnp.einsum("ij,stj->sti", W ** 2, output_var[:, :-1]))
    return 0.5 * total


def noise_variance(Xh, spec: EventSpec, noise, activation: str = "logistic"):
    """``output_var`` of activation noise of standard deviation ``noise`` on every non-input
    event, linearised: ``noise^2 f'(X)^2`` (input outputs are clamped: no noise)."""
    _, Xall = compose(spec, Xh, activation)
    fp = activation_fns(activation)[2](Xall)
    return jnp.where(spec.kind == INPUT, 0.0, (noise * fp) ** 2)


def out_deficit(W, Xh, spec: EventSpec, power: int = 4, alpha: float = 0.0,
                activation: str = "logistic"):
    """The time-weighted output deficit ``1/p sum (1 + alpha t) |f(xhat) - Y|^p`` (eq. 13).

    Summed over target and hidden events at ``t >= 1``; ``power=4`` is eq. 13, ``power=2,
    alpha=0`` the quadratic output deficit. Targets may sit on the boundary of ``f``'s range.

    Args:
      W: float ``[N, N]`` weights.
      Xh: float ``[S, T, N]`` moving targets, or ``None`` (hidden activations 0).
      spec: :class:`~jaxpapers.moving_targets.EventSpec` ``[S, T, N]``.
      power: ``p``, a positive int.
      alpha: time weight ``>= 0``.
      activation: ``"logistic"`` or ``"tanh"``.

    Returns:
      float ``[]``.

    Raises:
      ValueError: ``W`` not ``[N, N]``, ``Xh`` not of the spec's shape, or not real float
        arrays; an unknown activation; eagerly, a bad spec
        (:func:`~jaxpapers.moving_targets.tasks.validate_events`); ``power`` not a positive
        int; eagerly, a negative or NaN ``alpha``. Under ``jit`` bad values give NaN.
    """
    _check_weights(W, spec)
    if isinstance(power, bool) or not isinstance(power, int) or power < 1:
        raise ValueError(f"out_deficit: power must be a positive int; got {power!r}")
    f = activation_fns(activation)[0]
    if Xh is not None:
        _check_targets(Xh, spec)
    ok = inputs_ok(spec, activation, W, Xh) & _non_negative(alpha, "alpha")
    Yall, _ = compose(spec, Xh, activation)
    diff = jnp.where(error_mask(spec), f(preacts(W, Yall)) - Yall[:, 1:], 0.0)
    t = jnp.arange(1, spec.kind.shape[1], dtype=diff.dtype)[None, :, None]
    weight = 1.0 + alpha * t
    term = diff ** 2 if power == 2 else jnp.abs(diff) ** power
    return nan_unless(ok, jnp.sum(weight * term) / power)


def _shared_mask_fault(mask) -> bool:
    m = np.asarray(mask, np.float64).reshape(-1, np.shape(mask)[-1])
    active = (m > 0).any(0)
    union = m.max(1)
    return bool(active.any() and (m[:, active] != union[:, None]).any())


def solve_weights(Yall, Xall, mask, lam=1e-3, method: str = "cholesky", shared: bool = False,
                  output_var=None):
    """The weights minimising ``E_act + lam/2 ||W||^2`` for given outputs and activations.

    Args:
      Yall: float ``[S, T, N]`` outputs of every event (``compose``).
      Xall: float ``[S, T, N]`` activations of every event.
      mask: bool ``[S, T-1, N]``: events at ``t >= 1`` whose row is fitted (:func:`error_mask`),
        or non-negative float weights of the terms (:func:`error_weights`: weighted least
        squares).
      lam: ridge ``lam >= 0`` (may be traced). With ``lam = 0`` use ``method="lstsq"`` unless the
        correlation matrices are known to be non-singular.
      method: ``"cholesky"`` (normal equations, one ``N x N`` Cholesky per row) or ``"lstsq"``
        (SVD least squares on the ``sqrt(mask)``-weighted rows stacked over ``sqrt(lam) I``; the
        pseudo-inverse solution when ``lam = 0``).
      shared: one matrix for every row (exact when all rows with events have the same event
        set, as in the delay task; checked when the mask is concrete).
      output_var: optional float ``[S, T, N]``: minimise the expected deficit under output
        noise of this variance (:func:`act_deficit`); adds ``diag(sum_R m output_var)`` to each
        row's matrix, a data-dependent ridge that penalises weights from sensitive nodes.

    Returns:
      ``W`` float ``[N, N]``; rows without events (pure input nodes) are zero.

    Raises:
      ValueError: an unknown ``method``; shapes or dtypes; ``shared=True`` with rows of
        different event sets (concrete mask); eagerly, a negative or NaN ``lam`` or mask
        weight. Under ``jit`` those, or non-finite inputs, give NaN weights.
    """
    if method not in SOLVERS:
        raise ValueError(f"solve_weights: method must be one of {SOLVERS}; got {method!r}")
    checks.require(jnp.ndim(Yall) == 3 and jnp.shape(Xall) == jnp.shape(Yall),
                   f"solve_weights: Yall and Xall must be the same [S, T, N]; got "
                   f"{jnp.shape(Yall)} and {jnp.shape(Xall)}")
    s, t, n = jnp.shape(Yall)
    checks.require(jnp.shape(mask) == (s, t - 1, n), f"solve_weights: mask must be [S, T-1, N] "
                                                     f"= {(s, t - 1, n)}; got {jnp.shape(mask)}")
    for name, value in (("Yall", Yall), ("Xall", Xall)):
        checks.require(jnp.issubdtype(jnp.result_type(value), jnp.floating),
                       f"solve_weights: {name} must be a real float array; got "
                       f"{jnp.result_type(value)}")
    checks.require(jnp.issubdtype(jnp.result_type(mask), jnp.floating)
                   or jnp.result_type(mask) == jnp.bool_,
                   f"solve_weights: mask must be bool or float weights; got "
                   f"{jnp.result_type(mask)}")
    ok = (finite(Yall, Xall, output_var) & _non_negative(lam, "lam")
          & _non_negative(jnp.asarray(mask, jnp.result_type(Yall)), "mask"))
    return nan_unless(ok, _solve_weights(Yall, Xall, mask, lam, method, shared, output_var))


def _solve_weights(Yall, Xall, mask, lam, method, shared, output_var):
    s, t, n = jnp.shape(Yall)
    if shared and checks.is_concrete(mask) and _shared_mask_fault(mask):
        raise ValueError("solve_weights(shared=True): rows have different event sets; use "
                         "shared=False")
    dtype = jnp.result_type(Yall)
    phi = Yall[:, :-1].reshape(-1, n)                    # design, [R, N]
    m = mask.reshape(-1, n).astype(dtype)                # [R, N] (row i: column i)
    x = Xall[:, 1:].reshape(-1, n) * m                   # weighted activations
    lam = jnp.asarray(lam, dtype)
    eye = jnp.eye(n, dtype=dtype)
    active = jnp.any(m > 0, axis=0)                      # [N] rows with events
    if output_var is None:
        ridge = jnp.zeros((n, n), dtype)                 # [row i, node j]
    else:
        ridge = m.T @ output_var[:, :-1].reshape(-1, n).astype(dtype)
    if method == "lstsq":
        def row(m_i, x_i, r_i):
            a = jnp.concatenate([jnp.sqrt(m_i)[:, None] * phi, jnp.diag(jnp.sqrt(lam + r_i))])
            b = jnp.concatenate([x_i / jnp.sqrt(jnp.where(m_i > 0, m_i, 1.0)),
                                 jnp.zeros(n, dtype)])
            return jnp.linalg.lstsq(a, b)[0]

        W = jax.vmap(row, in_axes=(1, 1, 0))(m, x, ridge)
        return jnp.where(active[:, None], W, 0.0)
    b = x.T @ phi                                        # [N, N]: b[i] = sum_r m_ri X_ri phi_r
    if shared and output_var is None:
        union = jnp.max(m, axis=1)
        M = (phi * union[:, None]).T @ phi + lam * eye
        chol = jax.scipy.linalg.cho_factor(M, lower=True)
        W = jax.scipy.linalg.cho_solve(chol, b.T).T
        return jnp.where(active[:, None], W, 0.0)
    M = jnp.einsum("ri,rj,rk->ijk", m, phi, phi) + lam * eye[None] + jax.vmap(jnp.diag)(ridge)
    M = jnp.where(active[:, None, None], M, eye[None])   # a row without events: identity
    chol = jnp.linalg.cholesky(M)
    W = jax.vmap(lambda c, r: jax.scipy.linalg.cho_solve((c, True), r))(chol, b)
    return jnp.where(active[:, None], W, 0.0)


def solve_events(Xh, spec: EventSpec, lam=1e-3, activation: str = "logistic",
                 method: str = "cholesky", shared: bool = False, alpha=0.0, noise=0.0):
    """The exact weights ``W*(Xh)`` for given moving targets (eqs. 6, 10-11).

    :func:`solve_weights` on the composed events of ``spec`` and ``Xh``. Target outputs must lie
    strictly inside the range of ``f``.

    Args:
      Xh: float ``[S, T, N]`` moving targets.
      spec: :class:`~jaxpapers.moving_targets.EventSpec` ``[S, T, N]``.
      lam: ridge ``>= 0``.
      activation: ``"logistic"`` or ``"tanh"``.
      method, shared: as in :func:`solve_weights`.
      alpha: terms weighted by ``1 + alpha t``.
      noise: with ``noise > 0``, minimise the expected deficit under activation noise of that
        standard deviation.

    Returns:
      ``W`` float ``[N, N]``.

    Raises:
      ValueError: as :func:`solve_weights`, plus a bad spec or ``Xh`` (eagerly) and target
        outputs on the boundary of ``f``'s range; eagerly, a negative or NaN ``alpha`` or
        ``noise``. Under ``jit`` bad values give NaN.
    """
    _check_targets(Xh, spec)
    require_finite_targets(spec, activation, "solve_events")
    ok = inputs_ok(spec, activation, Xh) & _non_negative(alpha, "alpha") & \
        _non_negative(noise, "noise")
    Yall, Xall = compose(spec, Xh, activation)
    var = noise_variance(Xh, spec, noise, activation) if noise else None
    return nan_unless(ok, solve_weights(Yall, Xall, error_weights(spec, alpha, Yall.dtype), lam,
                                        method, shared, var))


def reduced_act(Xh, spec: EventSpec, lam=1e-3, activation: str = "logistic",
                method: str = "cholesky", shared: bool = False, envelope: bool = True,
                alpha=0.0, noise=0.0):
    """The reduced error ``E_act(W*(Xh), Xh) + lam/2 ||W*||^2`` (variable projection).

    The weights are solved exactly inside every evaluation, leaving a function of the moving
    targets alone. With ``envelope=True`` the solve is behind ``stop_gradient``: the gradient is
    the envelope gradient (exact at an exact solve, cheaper); ``False`` differentiates through
    the solve.
    ``alpha`` weights each term by ``1 + alpha t`` (solve and error alike); ``noise`` is the
    standard deviation of activation noise whose expected deficit is minimised (beyond the
    paper: it penalises ``|W[i, j] f'(X[j])|``, the one-step Jacobian, so consistent
    trajectories are stable rather than balanced on unstable fixed points).

    Args:
      Xh: float ``[S, T, N]`` moving targets.
      spec: :class:`~jaxpapers.moving_targets.EventSpec` ``[S, T, N]``.
      lam: ridge ``>= 0``.
      activation: ``"logistic"`` or ``"tanh"``.
      method, shared: as in :func:`solve_weights`.
      envelope: stop the gradient at the solve.
      alpha, noise: as in :func:`solve_events`.

    Returns:
      float ``[]``.

    Raises:
      ValueError: as :func:`solve_events`. Under ``jit`` bad values give NaN.
    """
    W = solve_events(Xh, spec, lam, activation, method, shared, alpha, noise)
    if envelope:
        W = jax.lax.stop_gradient(W)
    var = noise_variance(Xh, spec, noise, activation) if noise else None
    return act_deficit(W, Xh, spec, activation, alpha, var) + 0.5 * lam * jnp.sum(W ** 2)


def reduced_act_grad(Xh, spec: EventSpec, lam=1e-3, activation: str = "logistic",
                     method: str = "cholesky", shared: bool = False, alpha=0.0):
    """The hand formula of the reduced error's envelope gradient.

    ``-w[t] eps[t] + f'(X[t]) * ((w eps)[t+1] @ W)`` with ``w = 1 + alpha t`` and
    ``eps = xhat - X`` (no noise term); equal to ``jax.grad`` of :func:`reduced_act`.

    Args:
      Xh: float ``[S, T, N]`` moving targets.
      spec: :class:`~jaxpapers.moving_targets.EventSpec` ``[S, T, N]``.
      lam: ridge ``>= 0``.
      activation: ``"logistic"`` or ``"tanh"``.
      method, shared: as in :func:`solve_weights`.
      alpha: time weight ``>= 0``.

    Returns:
      float ``[S, T, N]``, zero off hidden events.

    Raises:
      ValueError: as :func:`solve_events`. Under ``jit`` bad values give NaN.
    """
    _, _, f_prime = activation_fns(activation)
    W = solve_events(Xh, spec, lam, activation, method, shared, alpha)
    ok = inputs_ok(spec, activation, Xh) & finite(W)
    eps = _residual(W, Xh, spec, activation)                    # [S, T-1, N], times 1..T-1
    eps = error_weights(spec, alpha, eps.dtype) * eps
    _, Xall = compose(spec, Xh, activation)
    own = jnp.pad(-eps, ((0, 0), (1, 0), (0, 0)))               # residual at the event itself
    back = jnp.pad(f_prime(Xall[:, :-1]) * (eps @ W), ((0, 0), (0, 1), (0, 0)))
    return nan_unless(ok, jnp.where(spec.kind == HIDDEN, own + back, 0.0))


def bptt_loss(W, spec: EventSpec, activation: str = "logistic"):
    """The loss back-propagation through time minimises.

    ``1/2 sum (y - Y)^2`` over target events at ``t >= 1`` of the freely running network.

    Args:
      W: float ``[N, N]`` weights.
      spec: :class:`~jaxpapers.moving_targets.EventSpec` ``[S, T, N]``.
      activation: ``"logistic"`` or ``"tanh"``.

    Returns:
      float ``[]``.

    Raises:
      ValueError: ``W`` not ``[N, N]`` or not a real float array; eagerly, a bad spec. Under
        ``jit`` bad values give NaN.

    >>> from jaxpapers.moving_targets.tasks import delay_task, latch_weights
    >>> bool(bptt_loss(latch_weights(1), delay_task(3, hidden=1)) < 1e-3)
    True
    """
    y = free_run(W, spec, None, activation)
    diff = jnp.where(spec.kind[:, 1:] == TARGET, y[:, 1:] - spec.value[:, 1:], 0.0)
    return nan_unless(inputs_ok(spec, activation, W), 0.5 * jnp.sum(diff ** 2))


def shooting_loss(W, Xh, spec: EventSpec, segment: int, activation: str = "logistic"):
    """The segment-length-``K`` (multiple-shooting) generalisation of moving targets.

    The network runs freely (inputs clamped) inside segments of ``K = segment`` steps; at the
    segment starts ``t = 0, K, 2K, ...`` it restarts from the composed events (data on input and
    target events, ``f(Xh)`` on hidden ones). The loss is ``1/2 sum (y - Y)^2`` over target events
    at ``t >= 1`` plus, at segment starts ``t >= 1``, over hidden events (the mismatch between where
    the previous segment arrives and the moving target). ``K = 1`` is the quadratic output
    deficit (``out_deficit(power=2)``); ``K >= T`` is :func:`bptt_loss` (``K = T - 1`` adds one
    free term: the hidden targets at the last step). Segments run in parallel (one ``lax.scan``
    of ``K`` steps over all segments).

    Args:
      W: float ``[N, N]`` weights.
      Xh: float ``[S, T, N]`` moving targets.
      spec: :class:`~jaxpapers.moving_targets.EventSpec` ``[S, T, N]``.
      segment: ``K``, a positive int.
      activation: ``"logistic"`` or ``"tanh"``.

    Returns:
      float ``[]``.

    Raises:
      ValueError: ``W`` not ``[N, N]``, ``Xh`` not of the spec's shape, or not real float
        arrays; an unknown activation; eagerly, a bad spec
        (:func:`~jaxpapers.moving_targets.tasks.validate_events`); ``segment`` not a positive
        int. Under ``jit`` bad values give NaN.
    """
    _check_weights(W, spec)
    K = checks.require_positive_int(segment, "shooting_loss: segment")
    f = activation_fns(activation)[0]
    Yall, _ = compose(spec, Xh, activation)
    s, t, n = spec.kind.shape
    groups = -(-(t - 1) // K)
    pad = groups * K - (t - 1)
    padded = lambda a, v: jnp.pad(a[:, 1:], ((0, 0), (0, pad), (0, 0)), constant_values=v)
    clamp = padded(spec.kind == INPUT, True).reshape(s, groups, K, n)
    value = padded(spec.value, 0.0).reshape(s, groups, K, n)
    starts = Yall[:, 0:groups * K:K]                                   # [S, G, N]

    def step(y_prev, xs):
        c, v = xs
        y = jnp.where(c, v, f(y_prev @ W.T))
        return y, y

    xs = (jnp.moveaxis(clamp, 2, 0), jnp.moveaxis(value, 2, 0))
    _, ys = jax.lax.scan(step, starts, xs)                             # [K, S, G, N]
    y = jnp.moveaxis(ys, 0, 2).reshape(s, groups * K, n)[:, :t - 1]   # times 1..T-1
    times = jnp.arange(1, t)[None, :, None]
    kind = spec.kind[:, 1:]
    counted = (kind == TARGET) | ((kind == HIDDEN) & (times % K == 0))
    diff = jnp.where(counted, y - Yall[:, 1:], 0.0)
    return nan_unless(inputs_ok(spec, activation, W, Xh), 0.5 * jnp.sum(diff ** 2))
