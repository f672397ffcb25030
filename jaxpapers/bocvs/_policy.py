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


def select_control_set(values, costs, eps, allowed=None):
    """Cost-aware epsilon rule of UCB-CVS (Tay et al. 2023).

    ``S = {i allowed : v_i + eps >= max_allowed v}``; returns the cheapest member of ``S``, ties
    broken by the larger ``v`` (then the lower index).

    Args:
      values: ``[m]`` optimistic values ``v_i``.
      costs: ``[m]`` costs.
      eps: scalar slack ``>= 0``.
      allowed: ``[m]`` bool (default all).

    Returns:
      int32 index.
    """
    values = jnp.asarray(values)
    allowed = jnp.ones(values.shape, bool) if allowed is None else allowed
    finite = allowed & ~jnp.isnan(values)
    best = jnp.max(jnp.where(finite, values, -jnp.inf))
    in_set = finite & (values + eps >= best)
    cheapest = jnp.min(jnp.where(in_set, costs, jnp.inf))
    tied = in_set & (costs == cheapest)
    return jnp.argmax(jnp.where(tied, values, -jnp.inf)).astype(jnp.int32)


def select_per_cost(values, costs, allowed=None):
    """``argmax_i v_i / c_i`` over allowed sets (per-cost baselines; not shift invariant)."""
    values = jnp.asarray(values)
    allowed = jnp.ones(values.shape, bool) if allowed is None else allowed
    ratio = jnp.where(allowed & ~jnp.isnan(values), values / costs, -jnp.inf)
    return jnp.argmax(ratio).astype(jnp.int32)


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
      ``(index int32, new_plays [S] int32, stage int32)``; ``stage = S`` in the final phase.
    """
    num_stages = policy.targets.shape[0]
    active = plays < policy.targets
    exploring = jnp.any(active)
    stage = jnp.where(exploring, jnp.argmax(active), num_stages).astype(jnp.int32)
    explore_i = select_control_set(values, costs, 0.0, policy.stage_of_set == stage)
    final_i = jnp.where(policy.per_cost, select_per_cost(values, costs),
                        select_control_set(values, costs, slack(policy, round_index)))
    index = jnp.where(exploring, explore_i, final_i).astype(jnp.int32)
    new_plays = plays + (jnp.arange(num_stages) == stage).astype(plays.dtype)
    return index, new_plays, stage


def _policy(num_sets, groups, targets, eps=0.0, per_cost=False, eps_rounds=0):
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
    """UCB-CVS with no exploration stages and a constant slack ``eps`` or, with
    ``eps_rounds = R > 0``, the decaying slack ``eps_t = eps * max(0, 1 - t / R)`` (the linear
    schedule of the reference code's history, ``eps = 2``; any ``eps_t`` with ``sum_t eps_t =
    o(T)`` keeps UCB-CVS no-regret, Tay et al. 2023, Sec. 3)."""
    return _policy(num_sets, [(i,) for i in range(num_stages)], [0] * num_stages, eps,
                   eps_rounds=eps_rounds)


def ucb_psq(num_sets: int, num_stages: int = 2) -> Policy:
    """UCB-PSQ: cost-agnostic ``argmax_{i, x} U_i`` (equal to ``ucb_cvs(eps=0)``)."""
    return ucb_cvs(num_sets, 0.0, num_stages)


def ucb_psq_per_cost(num_sets: int, num_stages: int = 2) -> Policy:
    """UCB-PSQ per cost: ``argmax_i v_i / c_i``."""
    return _policy(num_sets, [(i,) for i in range(num_stages)], [0] * num_stages,
                   per_cost=True)


def etc(num_sets: int, targets: Sequence[int], groups=DEFAULT_GROUPS, eps: float = 0.0) -> Policy:
    """Explore-then-commit with per-group play targets (ETC-50: (50, 50); ETC-100: (100, 100))."""
    return _policy(num_sets, groups, targets, eps)


def etc_ada(costs: Sequence[float], groups=DEFAULT_GROUPS, units: float = 4.0) -> Policy:
    """ETC-Ada: ``floor(units / c_G)`` plays per group (``c_G``: the group's largest cost).

    With the paper's regimes (equal costs inside a group) this is ``(40, 20)`` for moderate,
    ``(400, 40)`` for cheap and ``(6, 5)`` for expensive costs.
    """
    targets = [math.floor(units / max(costs[i] for i in g) + 1e-9) for g in groups]
    return _policy(len(costs), groups, targets)
