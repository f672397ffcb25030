"""Regret metrics from a :class:`~jaxpapers.bocvs.History` (NumPy, after the run).

* Simple regret vs spent budget (Tay et al. 2023): ``S(c) = f* - max_{t : C_t <= c} F_{i_t}(x_t)``;
  NaN before the first paid round.
* Cost-weighted cumulative regret ``R_T = sum_t c_t (f* - F_t)`` and the unweighted sum.
* Commit budget: spend after the last round that did not play a full control set.

All functions accept a single run or a batch with a leading seed axis.
"""

from __future__ import annotations

import numpy as np

__all__ = ["simple_regret_curve", "final_simple_regret", "cumulative_regret", "commit_budget"]


def _finite_f_star(f_star) -> float:
    f_star = float(f_star)
    if not np.isfinite(f_star):
        raise ValueError(f"f_star must be finite; got {f_star}")
    return f_star


def _per_run(fn, history, *args):
    value = np.asarray(history.value)
    if value.ndim == 1:
        return fn(history, *args)
    import jax

    runs = [jax.tree_util.tree_map(lambda a, i=i: np.asarray(a)[i], history)
            for i in range(value.shape[0])]
    return np.stack([fn(r, *args) for r in runs])


def _curve(history, f_star, grid):
    valid = np.asarray(history.set_index) >= 0
    spent = np.asarray(history.spent)[valid]
    best = np.maximum.accumulate(np.asarray(history.value)[valid]) if valid.any() else np.zeros(0)
    pos = np.searchsorted(spent, np.asarray(grid), side="right") - 1
    out = np.full(np.shape(grid), np.nan)
    ok = pos >= 0
    out[ok] = f_star - best[pos[ok]]
    return out


def simple_regret_curve(history, f_star: float, grid) -> np.ndarray:
    """Simple regret ``S(c) = f* - max_{t : C_t <= c} F_{i_t}(x_t)`` at the budgets ``grid``.

    Args:
      history: a :class:`History` of one run, or of a batch with a leading seed axis.
      f_star: the optimum ``f*`` (finite).
      grid: ``[G]`` finite budgets.

    Returns:
      float64 NumPy ``[G]`` (one run) or ``[runs, G]``; NaN before the first paid round.

    Raises:
      ValueError: a non-finite ``f_star``, or ``grid`` not a 1-D array of finite numbers.
    """
    grid = np.asarray(grid, float)
    if grid.ndim != 1 or not np.all(np.isfinite(grid)):
        raise ValueError(f"grid must be a 1-D array of finite budgets; got shape {grid.shape}")
    return _per_run(_curve, history, _finite_f_star(f_star), grid)


def final_simple_regret(history, f_star: float) -> np.ndarray:
    """Simple regret after the whole budget, ``f* - max_t F_{i_t}(x_t)``.

    Args:
      history: a :class:`History` of one run, or of a batch with a leading seed axis.
      f_star: the optimum ``f*`` (finite).

    Returns:
      A float64 NumPy scalar (one run) or ``[runs]``; NaN for a run with no paid round.

    Raises:
      ValueError: a non-finite ``f_star``.
    """
    def one(h, f):
        v = np.asarray(h.value)[np.asarray(h.set_index) >= 0]
        return np.asarray(f - v.max() if v.size else np.nan)
    return _per_run(one, history, _finite_f_star(f_star))


def cumulative_regret(history, f_star: float) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative regret over the paid rounds, ``r_t = f* - F_{i_t}(x_t)``.

    Args:
      history: a :class:`History` of one run, or of a batch with a leading seed axis.
      f_star: the optimum ``f*`` (finite).

    Returns:
      ``(sum_t c_t r_t, sum_t r_t)``: float64 NumPy scalars (one run) or ``[runs]`` each.

    Raises:
      ValueError: a non-finite ``f_star``.
    """
    def one(h, f):
        valid = np.asarray(h.set_index) >= 0
        r = f - np.asarray(h.value)[valid]
        return np.array([np.sum(np.asarray(h.cost)[valid] * r), np.sum(r)])
    out = _per_run(one, history, _finite_f_star(f_star))
    return out[..., 0], out[..., 1]


def commit_budget(history, full_sets) -> np.ndarray:
    """Spend after the last round that played a set not in ``full_sets`` (0 if none)."""
    full = np.asarray(list(full_sets))

    def one(h, _):
        idx = np.asarray(h.set_index)
        valid = idx >= 0
        partial = valid & ~np.isin(idx, full)
        if not partial.any():
            return np.asarray(0.0)
        return np.asarray(np.asarray(h.spent)[np.flatnonzero(partial)[-1]])
    return _per_run(one, history, 0.0)
