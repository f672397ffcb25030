"""Benchmark problems for BO with cost-varying variable subsets.

A :class:`Problem` bundles an objective on ``[0, 1]^d`` (to be *maximised*), the menu of control
sets (stored as tuples of variable indices; :attr:`Problem.masks` gives the ``[m, d]`` 0/1 mask),
their costs, the distribution of every variable (normal with mean 0.5 truncated to ``[0, 1]``,
scale chosen by bisection so the variance is as requested), the observation noise and the budget.

Objectives of the paper's synthetic experiments: Hartmann-3 (negated, max 3.86278), a GP sample (SE
kernel, ``l = 0.1``, kernel interpolant of a draw at 1000 uniform points). Extras beyond the paper:
Hartmann-6 (negated, max 3.32237) and a shifted, negated Ackley in 4–6 dimensions (max 0).

Control sets for ``d`` variables split ``0..d-1`` into three contiguous blocks ``B1, B2, B3``: the
sets are ``B1, B2, B3, B1+B2, B1+B3, B2+B3`` and the full set, cheapest first. For ``d = 3`` this is
the paper's list ``{0},{1},{2},{0,1},{0,2},{1,2},{0,1,2}``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxpapers._src import checks
from jaxpapers._src.threefry import check_key

__all__ = [
    "COST_REGIMES",
    "Problem",
    "truncnorm_scale",
    "truncnorm_variance",
    "sample_inputs",
    "block_control_sets",
    "hartmann3",
    "hartmann6",
    "ackley",
    "gp_sample_objective",
    "make_problem",
    "PROBLEMS",
]

# Costs of the 7 control sets, cheapest first (the paper's three regimes).
COST_REGIMES = {
    "cheap": (0.01, 0.01, 0.01, 0.1, 0.1, 0.1, 1.0),
    "moderate": (0.1, 0.1, 0.1, 0.2, 0.2, 0.2, 1.0),
    "expensive": (0.6, 0.6, 0.6, 0.8, 0.8, 0.8, 1.0),
}
_MAX_VARIANCE = 1.0 / 12.0  # the uniform distribution's variance: the limit of infinite scale


def _phi(z):
    return math.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)


def _Phi(z):
    return 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))


def truncnorm_variance(scale: float) -> float:
    """Variance of ``N(0.5, scale^2)`` truncated to ``[0, 1]`` (closed form).

    ``s^2 [1 + (a phi(a) - b phi(b)) / Z - ((phi(a) - phi(b)) / Z)^2]`` with ``a = -0.5 / s``,
    ``b = 0.5 / s``, ``Z = Phi(b) - Phi(a)``.
    """
    a, b = -0.5 / scale, 0.5 / scale
    z = _Phi(b) - _Phi(a)
    return scale**2 * (1.0 + (a * _phi(a) - b * _phi(b)) / z - ((_phi(a) - _phi(b)) / z) ** 2)


def truncnorm_scale(variance: float, tol: float = 1e-12) -> float:
    """Scale ``s`` such that ``N(0.5, s^2)`` truncated to ``[0, 1]`` has the given variance.

    Bisection on ``log s`` (the truncated variance increases with ``s``).

    Raises:
      ValueError: unless ``0 < variance < 1/12``.
    """
    if not 0.0 < variance < _MAX_VARIANCE:
        raise ValueError(f"variance must be in (0, 1/12) for a truncated normal on [0, 1]; "
                         f"got {variance}")
    lo, hi = math.log(1e-6), math.log(1e6)
    while hi - lo > tol:
        mid = 0.5 * (lo + hi)
        if truncnorm_variance(math.exp(mid)) < variance:
            lo = mid
        else:
            hi = mid
    return math.exp(0.5 * (lo + hi))


def sample_inputs(key, scales, num: int):
    """``[num, d]`` independent draws, column ``j`` from ``N(0.5, scales[j]^2)`` cut to ``[0, 1]``.

    Args:
      key: PRNG key.
      scales: ``(d,)`` floating scales, finite and > 0 (see :func:`truncnorm_scale`).
      num: static number of rows.

    Returns:
      ``(num, d)`` draws in ``[0, 1]`` of ``scales``' dtype; NaN columns where a scale is NaN or
      not positive under ``jit``.

    Raises:
      ValueError: a bad key, ``scales`` not a floating ``(d,)`` array, ``num`` not a positive
        int; eagerly, a scale that is not finite and positive.

    >>> sample_inputs(jax.random.key(0), jnp.full(3, 0.2), 5).shape
    (5, 3)
    """
    check_key(key)
    num = checks.require_positive_int(num, "num")
    scales = jnp.asarray(scales)
    checks.require(scales.ndim == 1 and scales.shape[0] >= 1,
                   f"scales must have shape (d,); got {scales.shape}")
    checks.require(jnp.issubdtype(scales.dtype, jnp.floating),
                   f"scales must be floating; got dtype {scales.dtype}")
    checks.raise_if_concrete(lambda s: ~jnp.all(jnp.isfinite(s) & (s > 0)),
                             "scales must be finite and > 0", scales)
    scales = jnp.where(scales > 0, scales, jnp.nan)
    bound = 0.5 / scales
    z = jax.random.truncated_normal(key, -bound[None, :], bound[None, :], (num, scales.shape[0]),
                                    dtype=scales.dtype)
    return jnp.clip(0.5 + z * scales[None, :], 0.0, 1.0)


def block_control_sets(dim: int) -> tuple[tuple[int, ...], ...]:
    """Seven control sets from three contiguous blocks of ``0..dim-1`` (see module docstring)."""
    if dim < 3:
        raise ValueError(f"dim must be >= 3 for three blocks; got {dim}")
    edges = [round(k * dim / 3) for k in range(4)]
    blocks = [tuple(range(edges[k], edges[k + 1])) for k in range(3)]
    pairs = [blocks[0] + blocks[1], blocks[0] + blocks[2], blocks[1] + blocks[2]]
    return tuple(blocks) + tuple(pairs) + (tuple(range(dim)),)


@dataclasses.dataclass(frozen=True, eq=False)
class Problem:
    """A BOCVS problem (static description; ``objective`` is a JAX-traceable function).

    Attributes:
      name: label.
      objective: ``f(x [d]) -> scalar`` on ``[0, 1]^d``, maximised.
      dim: number of variables ``d``.
      control_sets: ``m`` non-empty tuples of distinct indices in ``[0, d)``.
      costs: ``m`` positive costs (the run pays ``costs[i]`` for playing set ``i``).
      variance: variance of every variable's truncated normal (a float or ``d`` floats).
      budget: total budget ``C`` (must be at least the cheapest cost).
      noise_sd: observation-noise standard deviation.
      lengthscale: GP length-scale used by the algorithms (fixed, as in the paper).
      f_star: optimum ``max_i max_x F_i``, if known (used for regret).
      x_star: a maximiser, if known.

    Raises:
      ValueError: on an empty or out-of-range control set, duplicated indices, non-positive costs,
        a cost list of the wrong length, a budget below the cheapest cost, or a bad variance.
    """

    name: str
    objective: Callable
    dim: int
    control_sets: tuple[tuple[int, ...], ...]
    costs: tuple[float, ...]
    variance: float | tuple[float, ...] = 0.02
    budget: float = 50.0
    noise_sd: float = 0.01
    lengthscale: float = 0.1
    f_star: float | None = None
    x_star: tuple[float, ...] | None = None

    def __post_init__(self):
        if isinstance(self.dim, bool) or not isinstance(self.dim, int) or self.dim < 1:
            raise ValueError(f"dim must be a positive int; got {self.dim!r}")
        sets = tuple(tuple(int(j) for j in s) for s in self.control_sets)
        if not sets:
            raise ValueError("control_sets must list at least one control set")
        for i, s in enumerate(sets):
            if not s:
                raise ValueError(f"control_sets[{i}] is empty; every control set needs >= 1 "
                                 "variable")
            if min(s) < 0 or max(s) >= self.dim:
                raise ValueError(f"control_sets[{i}] = {s} has an index outside [0, {self.dim})")
            if len(set(s)) != len(s):
                raise ValueError(f"control_sets[{i}] = {s} repeats an index")
        object.__setattr__(self, "control_sets", sets)
        costs = tuple(float(c) for c in self.costs)
        if len(costs) != len(sets):
            raise ValueError(f"costs must have one entry per control set ({len(sets)}); "
                             f"got {len(costs)}")
        if not all(math.isfinite(c) and c > 0 for c in costs):
            raise ValueError(f"costs must be finite and positive; got {costs}")
        object.__setattr__(self, "costs", costs)
        if not (math.isfinite(self.budget) and self.budget >= min(costs)):
            raise ValueError(f"budget must be >= the cheapest cost {min(costs)}; "
                             f"got {self.budget}")
        var = (self.variance,) * self.dim if np.isscalar(self.variance) else self.variance
        var = tuple(float(v) for v in var)
        if len(var) != self.dim:
            raise ValueError(f"variance must be a float or {self.dim} floats; got {self.variance}")
        for v in var:
            truncnorm_scale(v)  # validates the range
        if not self.noise_sd >= 0:
            raise ValueError(f"noise_sd must be >= 0; got {self.noise_sd}")
        if not self.lengthscale > 0:
            raise ValueError(f"lengthscale must be > 0; got {self.lengthscale}")

    @property
    def num_sets(self) -> int:
        return len(self.control_sets)

    @property
    def masks(self) -> np.ndarray:
        """``[m, d]`` float 0/1 mask of the control sets."""
        out = np.zeros((self.num_sets, self.dim))
        for i, s in enumerate(self.control_sets):
            out[i, list(s)] = 1.0
        return out

    @property
    def scales(self) -> np.ndarray:
        """``[d]`` truncated-normal scales matching :attr:`variance`."""
        var = (self.variance,) * self.dim if np.isscalar(self.variance) else self.variance
        return np.array([truncnorm_scale(float(v)) for v in var])

    @property
    def has_full_set(self) -> bool:
        return any(len(s) == self.dim for s in self.control_sets)

    def replace(self, **changes) -> Problem:
        return dataclasses.replace(self, **changes)


_H3_ALPHA = np.array([1.0, 1.2, 3.0, 3.2])
_H3_A = np.array([[3.0, 10, 30], [0.1, 10, 35], [3.0, 10, 30], [0.1, 10, 35]])
_H3_P = 1e-4 * np.array([[3689, 1170, 2673], [4699, 4387, 7470], [1091, 8732, 5547],
                         [381, 5743, 8828]])
_H6_A = np.array([[10, 3, 17, 3.5, 1.7, 8], [0.05, 10, 17, 0.1, 8, 14],
                  [3, 3.5, 1.7, 10, 17, 8], [17, 8, 0.05, 10, 0.1, 14]])
_H6_P = 1e-4 * np.array([[1312, 1696, 5569, 124, 8283, 5886], [2329, 4135, 8307, 3736, 1004, 9991],
                         [2348, 1451, 3522, 2883, 3047, 6650], [4047, 8828, 8732, 5743, 1091, 381]])


def _point(x, d: int | None = None):
    """``x`` as a floating ``[d]`` array (any ``d >= 1`` when ``d`` is None), else ValueError."""
    x = jnp.asarray(x)
    want = "(d,)" if d is None else f"({d},)"
    if x.ndim != 1 or x.shape[0] < 1 or (d is not None and x.shape[0] != d):
        raise ValueError(f"x must have shape {want}; got {x.shape}")
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise ValueError(f"x must be floating; got dtype {x.dtype}")
    return x


def _hartmann(x, a, p):
    x = _point(x, len(p[0]))
    inner = jnp.sum(jnp.asarray(a, x.dtype) * (x[None, :] - jnp.asarray(p, x.dtype)) ** 2, -1)
    return jnp.sum(jnp.asarray(_H3_ALPHA, x.dtype) * jnp.exp(-inner))


def hartmann3(x):
    """Negated Hartmann-3 on ``[0, 1]^3`` (maximum 3.86278 at (0.114614, 0.555649, 0.852547)).

    Args:
      x: ``(3,)`` floating point.

    Returns:
      Scalar of ``x``'s dtype; NaN where ``x`` holds NaN.

    Raises:
      ValueError: ``x`` not a floating ``(3,)`` array.

    >>> round(float(hartmann3(jnp.asarray([0.114614, 0.555649, 0.852547]))), 4)
    3.8628
    """
    return _hartmann(x, _H3_A, _H3_P)


def hartmann6(x):
    """Negated Hartmann-6 on ``[0, 1]^6`` (maximum 3.32237).

    Args:
      x: ``(6,)`` floating point.

    Returns:
      Scalar of ``x``'s dtype; NaN where ``x`` holds NaN.

    Raises:
      ValueError: ``x`` not a floating ``(6,)`` array.
    """
    return _hartmann(x, _H6_A, _H6_P)


ACKLEY_CENTER = 0.3  # the maximiser is (0.3, ..., 0.3), away from the distributions' mean 0.5


def ackley(x):
    """Negated Ackley on ``[0, 1]^d`` mapped to ``[-1.5, 3.5]^d`` with its optimum at ``x = 0.3``.

    Maximum 0. (The usual ``[-32.8, 32.8]`` domain is far too rugged for a 50-unit budget.)

    Args:
      x: ``(d,)`` floating point, any ``d >= 1``.

    Returns:
      Scalar of ``x``'s dtype; NaN where ``x`` holds NaN.

    Raises:
      ValueError: ``x`` not a floating ``(d,)`` array.

    >>> abs(float(ackley(jnp.full(4, 0.3)))) < 1e-5
    True
    """
    x = _point(x)
    z = 5.0 * (x - ACKLEY_CENTER)
    d = x.shape[-1]
    term1 = -20.0 * jnp.exp(-0.2 * jnp.sqrt(jnp.sum(z * z) / d + 1e-30))
    term2 = -jnp.exp(jnp.sum(jnp.cos(2.0 * jnp.pi * z)) / d)
    return -(term1 + term2 + 20.0 + jnp.e)


def gp_sample_objective(key, dim: int = 3, lengthscale: float = 0.1, num_points: int = 1000,
                        jitter: float = 1e-6, dtype=None) -> Callable:
    """A smooth random objective: the kernel interpolant of a GP(0, SE) draw (as in the paper).

    Draws ``num_points`` uniform points ``X``, a sample ``g ~ N(0, K + jitter I)`` and returns
    ``f(x) = k(x, X) (K + jitter I)^{-1} g``.

    Args:
      key: PRNG key (fix it to fix the objective).
      dim: input dimension.
      lengthscale: SE length-scale.
      num_points: interpolation points.
      jitter: diagonal jitter.
      dtype: float dtype (default JAX's default float).

    Returns:
      ``f(x [d]) -> scalar``.

    Raises:
      ValueError: a bad key, ``dim`` or ``num_points`` not a positive int, ``lengthscale`` not
        finite and > 0, ``jitter`` not finite and >= 0.
    """
    check_key(key)
    dim = checks.require_positive_int(dim, "dim")
    num_points = checks.require_positive_int(num_points, "num_points")
    checks.require(isinstance(lengthscale, (int, float)) and math.isfinite(lengthscale)
                   and lengthscale > 0, f"lengthscale must be finite and > 0; got {lengthscale!r}")
    checks.require(isinstance(jitter, (int, float)) and math.isfinite(jitter) and jitter >= 0,
                   f"jitter must be finite and >= 0; got {jitter!r}")
    from jaxpapers.gp import gp_params, se_ard

    dtype = jnp.result_type(float) if dtype is None else dtype
    kx, kg = jax.random.split(key)
    params = gp_params(lengthscale, 1.0, 0.0, dim=dim, dtype=dtype)
    pts = jax.random.uniform(kx, (num_points, dim), dtype)
    gram = se_ard(params, pts, pts) + jitter * jnp.eye(num_points, dtype=dtype)
    chol = jnp.linalg.cholesky(gram)
    g = chol @ jax.random.normal(kg, (num_points,), dtype)
    weights = jax.scipy.linalg.cho_solve((chol, True), g)

    def objective(x):
        return (se_ard(params, jnp.asarray(x, dtype)[None, :], pts) @ weights)[0]

    return objective


def estimate_max(key, objective: Callable, dim: int, num_random: int = 10_000,
                 num_starts: int = 32, num_steps: int = 500, learning_rate: float = 0.01):
    """Dense maximisation of ``objective`` over ``[0, 1]^d``: random search then projected Adam.

    Returns:
      ``(f_max, x_max)`` as NumPy values.
    """
    import optax

    f = jax.vmap(objective)
    cand = jax.random.uniform(key, (num_random, dim))
    vals = jax.lax.map(objective, cand, batch_size=1000)
    starts = cand[jnp.argsort(-vals)[:num_starts]]
    opt = optax.adam(learning_rate)

    def step(carry, _):
        x, state = carry
        g = jax.grad(lambda z: -jnp.sum(f(z)))(x)
        upd, state = opt.update(g, state, x)
        return (jnp.clip(optax.apply_updates(x, upd), 0.0, 1.0), state), None

    (xs, _), _ = jax.lax.scan(step, (starts, opt.init(starts)), None, length=num_steps)
    all_x = jnp.concatenate([xs, starts], 0)
    all_f = f(all_x)
    best = jnp.argmax(all_f)
    return float(all_f[best]), np.asarray(all_x[best])


def make_problem(name: str, costs: str | Sequence[float] = "moderate",
                 variance: float = 0.02, budget: float | None = None, *,
                 key=None) -> Problem:
    """A problem from :data:`PROBLEMS` with a cost regime and variance.

    Args:
      name: ``"hartmann3"``, ``"gp_sample"``, ``"hartmann6"``, ``"ackley4"``, ``"ackley5"`` or
        ``"ackley6"``.
      costs: a regime name from :data:`COST_REGIMES` or 7 explicit costs.
      variance: variance of every variable's truncated normal (spec: 0.02, 0.04 or 0.08).
      budget: total budget (default 50).
      key: PRNG key of the GP-sample objective (required for ``"gp_sample"``, which draws the
        objective from ``key`` and estimates its maximum with ``fold_in(key, 1)``; ignored by
        the fixed test functions). Building a GP-sample problem takes a few seconds (the
        maximum is estimated densely): build it once and reuse it.

    Returns:
      A :class:`Problem` (static; pass it through :func:`problem_spec` into :func:`run_bo`).

    Raises:
      ValueError: on an unknown name or regime, a ``"gp_sample"`` without ``key``, costs that
        are not 7 finite positive numbers, a variance or budget that is not finite and positive.
    """
    if name not in PROBLEMS:
        raise ValueError(f"name must be one of the problems {sorted(PROBLEMS)}; got {name!r}")
    if isinstance(costs, str):
        if costs not in COST_REGIMES:
            raise ValueError(f"costs must be one of {sorted(COST_REGIMES)} or a sequence; "
                             f"got {costs!r}")
        costs = COST_REGIMES[costs]
    costs = tuple(float(c) for c in costs)
    if len(costs) != 7 or not all(math.isfinite(c) and c > 0 for c in costs):
        raise ValueError(f"costs must be 7 finite positive numbers (one per control set); got "
                         f"{costs}")
    for label, value in (("variance", variance), ("budget", 50.0 if budget is None else budget)):
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
            raise ValueError(f"{label} must be a finite number > 0; got {value!r}")
    if name == "gp_sample":
        if key is None:
            raise ValueError("make_problem('gp_sample', ...) needs key=, the PRNG key of the "
                             "random objective")
        check_key(key)
    dim, kwargs = PROBLEMS[name](key)
    return Problem(name=name, dim=dim, control_sets=block_control_sets(dim), costs=tuple(costs),
                   variance=variance, budget=50.0 if budget is None else budget, **kwargs)


def _gp_sample(key):
    fn = gp_sample_objective(key, 3, 0.1)
    f_star, x_star = estimate_max(jax.random.fold_in(key, 1), fn, 3)
    return 3, dict(objective=fn, f_star=f_star, x_star=tuple(x_star.tolist()), lengthscale=0.1)


PROBLEMS = {
    "hartmann3": lambda key: (3, dict(objective=hartmann3, f_star=3.86278,
                                       x_star=(0.114614, 0.555649, 0.852547), lengthscale=0.1)),
    "gp_sample": _gp_sample,
    "hartmann6": lambda key: (6, dict(objective=hartmann6, f_star=3.32237,
                                       x_star=(0.20169, 0.150011, 0.476874, 0.275332, 0.311652,
                                               0.6573), lengthscale=0.2)),
    **{f"ackley{d}": (lambda key, d=d: (d, dict(objective=ackley, f_star=0.0,
                                                  x_star=(ACKLEY_CENTER,) * d, lengthscale=0.2)))
       for d in (4, 5, 6)},
}
