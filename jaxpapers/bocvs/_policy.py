"""Control-set selection: the cost-aware epsilon rule, explore-then-commit schedules, baselines.

A :class:`Policy` is a pytree of arrays, so every UCB-based method (UCB-PSQ, its per-cost variant,
UCB-CVS with a constant slack, ETC-50 / ETC-100 / ETC-Ada) runs through the same compiled loop.

Explore-then-commit (the schedules run in the paper's experiments): exploration stages ``s =
0..S-1`` each own a group of control sets and a target number of plays. While stage ``s`` has fewer
than ``targets[s]`` plays (counting every acquisition call, as the reference does, including a final
unpaid one), the round plays the set with the largest expected UCB within that group (ties:
cheaper). After the last stage the final rule applies to all sets: the epsilon rule of UCB-CVS or,
for the per-cost baselines, ``argmax_i v_i / c_i``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import jax.numpy as jnp
import numpy as np

from jaxpapers._src import checks

__all__ = [
    "Policy",
    "select_control_set",
    "select_per_cost",
    "choose",
    "ucb_cvs",
    "ucb_psq",
    "ucb_psq_per_cost",
    "etc",
    "etc_ada",
    "DEFAULT_GROUPS",
]

DEFAULT_GROUPS = ((0, 1, 2), (3, 4, 5))  # G1 = cheapest three sets, G2 = the middle three


class Policy(NamedTuple):
    """Selection policy (arrays).

    Attributes:
      stage_of_set: ``[m]`` int32, exploration stage owning each set (``-1``: none).
      targets: ``[S]`` int32 plays per exploration stage (zeros: no exploration).
      eps: scalar slack of the final epsilon rule (``0``: optimism with cost tie-break; ``inf``:
        always the cheapest set).
      per_cost: scalar bool; final rule ``argmax v_i / c_i`` instead of the epsilon rule.
      eps_rounds: scalar; ``0`` keeps ``eps`` constant, ``R > 0`` decays it linearly,
        ``eps_t = eps * max(0, 1 - t / R)`` at round ``t`` (0-based), so ``sum_t eps_t`` is
        ``O(eps R)`` and the regret bound's ``sum_t c_t eps_t`` term stays bounded.
    """

    stage_of_set: jnp.ndarray
    targets: jnp.ndarray
    eps: jnp.ndarray
    per_cost: jnp.ndarray
    eps_rounds: jnp.ndarray


def _checked_selection(values, costs, allowed):
    values, costs = jnp.asarray(values), jnp.asarray(costs)
    checks.require(values.ndim == 1 and values.shape[0] > 0,
                   f"values must have shape (m,) with m >= 1; got {values.shape}")
    checks.require(costs.shape == values.shape,
                   f"costs must have shape {values.shape}; got {costs.shape}")
    for name, a in (("values", values), ("costs", costs)):
        checks.require(jnp.issubdtype(a.dtype, jnp.floating),
                       f"{name} must be a floating array; got dtype {a.dtype}")
    allowed = jnp.ones(values.shape, bool) if allowed is None else jnp.asarray(allowed)
    checks.require(allowed.shape == values.shape and allowed.dtype == bool,
                   f"allowed must be a bool array of shape {values.shape}; got "
                   f"{allowed.dtype}{list(allowed.shape)}")
    checks.raise_if_concrete(lambda c: ~jnp.all(jnp.isfinite(c) & (c > 0)),
                             f"costs must be finite and > 0; got {costs}", costs)
    return values, costs, allowed


def _no_choice_message(values, allowed):
    return (f"no control set can be selected: values {values} (NaN counts as unavailable), "
            f"allowed {allowed}")


def select_control_set(values, costs, eps, allowed=None):
    """Cost-aware epsilon rule of UCB-CVS (Tay et al. 2023).

    ``S = {i allowed : v_i + eps >= max_allowed v}``; returns the cheapest member of ``S``, ties
    broken by the larger ``v`` (then the lower index). NaN values are never selected.

    Args:
      values: ``[m]`` optimistic values ``v_i``.
      costs: ``[m]`` positive costs.
      eps: scalar slack ``>= 0`` (``inf`` allowed).
      allowed: ``[m]`` bool (default all).

    Returns:
      int32 index, or ``-1`` under ``jit`` when no set can be selected (every allowed value NaN,
      nothing allowed, an infinite allowed value, an allowed cost not finite and positive, or
      ``eps`` negative or NaN): never a fallback to set 0.

    Raises:
      ValueError: on bad shapes or dtypes; eagerly, when ``-1`` would be returned or a cost is
        not finite and positive.
    """
    values, costs, allowed = _checked_selection(values, costs, allowed)
    checks.require(jnp.ndim(eps) == 0, f"eps must be a scalar; got shape {jnp.shape(eps)}")
    checks.raise_if_concrete(lambda e: ~(jnp.asarray(e) >= 0), f"eps must be >= 0; got {eps}", eps)
    checks.raise_if_concrete(lambda f: ~jnp.any(f), _no_choice_message(values, allowed),
                             allowed & ~jnp.isnan(values))
    infinite = jnp.any(allowed & (jnp.isinf(values) | ~(jnp.isfinite(costs) & (costs > 0))))
    checks.raise_if_concrete(lambda f: f, "values must not be infinite (NaN marks an "
                             f"unavailable set); got {values}", infinite)
    return jnp.where(infinite, -1, _select(values, costs, eps, allowed)).astype(jnp.int32)


def _select(values, costs, eps, allowed):
    """:func:`select_control_set` without the checks (``-1``: no set can be selected)."""
    finite = allowed & ~jnp.isnan(values)
    best = jnp.max(jnp.where(finite, values, -jnp.inf))
    in_set = finite & (values + eps >= best)
    cheapest = jnp.min(jnp.where(in_set, costs, jnp.inf))
    tied = in_set & (costs == cheapest)
    index = jnp.argmax(jnp.where(tied, values, -jnp.inf))
    return jnp.where(jnp.any(tied) & (eps >= 0), index, -1).astype(jnp.int32)


def select_per_cost(values, costs, allowed=None):
    """``argmax_i v_i / c_i`` over allowed sets (per-cost baselines; not shift invariant);
    ``-1`` under ``jit`` when no allowed value is finite (eagerly ``ValueError``)."""
    values, costs, allowed = _checked_selection(values, costs, allowed)
    checks.raise_if_concrete(lambda f: ~jnp.any(f), _no_choice_message(values, allowed),
                             allowed & ~jnp.isnan(values))
    return _select_per_cost(values, costs, allowed)


def _select_per_cost(values, costs, allowed):
    finite = allowed & ~jnp.isnan(values)
    ratio = jnp.where(finite, values / costs, -jnp.inf)
    index = jnp.argmax(ratio)
    return jnp.where(jnp.any(finite), index, -1).astype(jnp.int32)


def slack(policy: Policy, round_index):
    """The epsilon rule's slack at round ``round_index``: ``eps``, or its linear decay."""
    t = jnp.asarray(round_index, policy.eps.dtype)
    decaying = policy.eps_rounds > 0
    fraction = jnp.clip(1.0 - t / jnp.where(decaying, policy.eps_rounds, 1.0), 0.0, 1.0)
    return jnp.where(decaying, policy.eps * fraction, policy.eps)


def choose(policy: Policy, plays, values, costs, round_index=0):
    """One selection.

    Args:
      policy: the :class:`Policy`.
      plays: ``[S]`` int32 plays per exploration stage so far.
      values: ``[m]`` optimistic values of the control sets.
      costs: ``[m]`` costs.
      round_index: the round (0-based), for a decaying slack.

    Returns:
      ``(index int32, new_plays [S] int32, stage int32)``; ``stage = S`` in the final phase;
      ``index = -1`` when no set can be selected (every candidate value NaN).
    """
    num_stages = policy.targets.shape[0]
    active = plays < policy.targets
    exploring = jnp.any(active)
    stage = jnp.where(exploring, jnp.argmax(active), num_stages).astype(jnp.int32)
    everything = jnp.ones(values.shape, bool)
    explore_i = _select(values, costs, 0.0, policy.stage_of_set == stage)
    final_i = jnp.where(policy.per_cost, _select_per_cost(values, costs, everything),
                        _select(values, costs, slack(policy, round_index), everything))
    index = jnp.where(exploring, explore_i, final_i).astype(jnp.int32)
    new_plays = plays + (jnp.arange(num_stages) == stage).astype(plays.dtype)
    return index, new_plays, stage


def _policy(num_sets, groups, targets, eps=0.0, per_cost=False, eps_rounds=0):
    num_sets = checks.require_positive_int(num_sets, "num_sets")
    stage = -np.ones(num_sets, np.int32)
    for s, group in enumerate(groups):
        if not group:
            raise ValueError(f"exploration group {s} is empty")
        for i in group:
            if not 0 <= i < num_sets:
                raise ValueError(f"group {s} names control set {i}; have {num_sets} sets")
            if stage[i] >= 0:
                raise ValueError(f"control set {i} is in two exploration groups")
            stage[i] = s
    targets = [int(t) for t in targets]
    if len(targets) != len(groups) or any(t < 0 for t in targets):
        raise ValueError(f"targets must be {len(groups)} non-negative ints; got {targets}")
    if not (eps >= 0):
        raise ValueError(f"eps must be >= 0 (inf allowed); got {eps}")
    if not (0 <= eps_rounds < math.inf):
        raise ValueError(f"eps_rounds must be a finite number >= 0; got {eps_rounds}")
    if eps_rounds > 0 and not math.isfinite(eps):
        raise ValueError("a decaying slack needs a finite eps")
    return Policy(jnp.asarray(stage), jnp.asarray(targets, jnp.int32), jnp.asarray(float(eps)),
                  jnp.asarray(bool(per_cost)), jnp.asarray(float(eps_rounds)))


def ucb_cvs(num_sets: int, eps: float = 0.0, num_stages: int = 2,
            eps_rounds: float = 0) -> Policy:
    """UCB-CVS with no exploration stages and a constant or decaying slack.

    With ``eps_rounds = R > 0`` the slack is ``eps_t = eps * max(0, 1 - t / R)`` (the linear
    schedule of the reference code's history, ``eps = 2``; any ``eps_t`` with ``sum_t eps_t =
    o(T)`` keeps UCB-CVS no-regret, Tay et al. 2023, Sec. 3).

    Args:
      num_sets: number of control sets ``m``.
      eps: slack of the epsilon rule, ``>= 0`` (``inf``: always the cheapest set).
      num_stages: length of the (empty) exploration-stage arrays; keep it equal to the ETC
        policies' (2) so that every policy has one pytree structure and one compiled loop
        serves them all.
      eps_rounds: ``0`` (constant slack) or the rounds ``R`` over which the slack decays.

    Returns:
      A :class:`Policy` (arrays).

    Raises:
      ValueError: a ``num_sets`` that is not a positive int or a ``num_stages`` below 1, a
        negative ``eps``, or a decaying slack with an infinite ``eps``.
    """
    checks.require(isinstance(num_stages, int) and num_stages >= 1,
                   f"num_stages must be an int >= 1; got {num_stages!r}")
    return _policy(num_sets, [(i,) for i in range(num_stages)], [0] * num_stages, eps,
                   eps_rounds=eps_rounds)


def ucb_psq(num_sets: int, num_stages: int = 2) -> Policy:
    """UCB-PSQ: cost-agnostic ``argmax_{i, x} U_i`` (equal to ``ucb_cvs(eps=0)``).

    Args:
      num_sets: number of control sets ``m``.
      num_stages: length of the (empty) exploration-stage arrays; keep it equal to the ETC
        policies' (2) so that every policy has one pytree structure and one compiled loop
        serves them all.

    Returns:
      A :class:`Policy` (arrays).

    Raises:
      ValueError: a ``num_sets`` that is not a positive int or a ``num_stages`` below 1.

    Example:
      >>> from jaxpapers.bocvs import ucb_psq
      >>> ucb_psq(7).targets.tolist(), float(ucb_psq(7).eps)
      ([0, 0], 0.0)
    """
    return ucb_cvs(num_sets, 0.0, num_stages)


def ucb_psq_per_cost(num_sets: int, num_stages: int = 2) -> Policy:
    """UCB-PSQ per cost: the set maximising ``v_i / c_i``.

    Args:
      num_sets: number of control sets ``m``.
      num_stages: length of the (empty) exploration-stage arrays; keep it equal to the ETC
        policies' (2) so that every policy has one pytree structure and one compiled loop
        serves them all.

    Returns:
      A :class:`Policy` (arrays).

    Raises:
      ValueError: a ``num_sets`` that is not a positive int or a ``num_stages`` below 1.
    """
    checks.require(isinstance(num_stages, int) and num_stages >= 1,
                   f"num_stages must be an int >= 1; got {num_stages!r}")
    return _policy(num_sets, [(i,) for i in range(num_stages)], [0] * num_stages,
                   per_cost=True)


def etc(num_sets: int, targets: Sequence[int], groups=DEFAULT_GROUPS, eps: float = 0.0) -> Policy:
    """Explore-then-commit with per-group play targets (ETC-50: (50, 50); ETC-100: (100, 100)).

    Args:
      num_sets: number of control sets ``m``.
      targets: plays of each exploration group, non-negative ints, one per group.
      groups: the exploration groups, disjoint tuples of set indices (default: sets 0-2, then
        3-5).
      eps: slack of the final epsilon rule.

    Returns:
      A :class:`Policy` (arrays).

    Raises:
      ValueError: an empty, overlapping or out-of-range group, targets that do not match the
        groups or are negative, or a negative ``eps``.
    """
    return _policy(num_sets, groups, targets, eps)


def etc_ada(costs: Sequence[float], groups=DEFAULT_GROUPS, units: float = 4.0) -> Policy:
    """ETC-Ada: ``floor(units / c_G)`` plays per group (``c_G``: the group's largest cost).

    With the paper's regimes (equal costs inside a group) this is ``(40, 20)`` for moderate,
    ``(400, 40)`` for cheap and ``(6, 5)`` for expensive costs.

    Args:
      costs: the ``m`` control sets' costs, finite and positive.
      groups: the exploration groups (default: sets 0-2, then 3-5).
      units: the budget units each group may spend.

    Returns:
      A :class:`Policy` (arrays).

    Raises:
      ValueError: costs or ``units`` not finite and positive, or groups outside the costs.

    Example:
      >>> from jaxpapers.bocvs import etc_ada
      >>> from jaxpapers.bocvs.problems import COST_REGIMES
      >>> etc_ada(COST_REGIMES["moderate"]).targets.tolist()
      [40, 20]
    """
    costs = [float(c) for c in costs]
    checks.require(all(math.isfinite(c) and c > 0 for c in costs),
                   f"costs must be finite and > 0; got {costs}")
    checks.require(math.isfinite(units) and units > 0, f"units must be finite and > 0; got {units}")
    checks.require(all(0 <= i < len(costs) for g in groups for i in g),
                   f"groups {groups} name control sets outside the {len(costs)} costs")
    targets = [math.floor(units / max(costs[i] for i in g) + 1e-9) for g in groups]
    return _policy(len(costs), groups, targets)
