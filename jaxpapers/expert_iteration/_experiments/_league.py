"""The league: every trained agent plays the shared anchors (the random player and pure MCTS
at fixed budgets), the anchors play each other, a few head-to-heads are played, and one
Bradley-Terry fit over all the games gives every agent an Elo (random = 0).

All matches are balanced (every opening, both colours) and go through one compiled
:func:`play_matches`, a fixed number of pairs per call.
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxpapers.expert_iteration._evaluate import bradley_terry, make_agent, play_matches
from jaxpapers.expert_iteration._search import SearchConfig

__all__ = ["LeagueConfig", "Player", "League", "run_league"]


@dataclasses.dataclass(frozen=True)
class LeagueConfig:
    """Evaluation settings.

    Attributes:
      anchors: pure-MCTS budgets of the shared opponents (the random player is always one).
      extra_anchors: pure-MCTS budgets that only play the anchors (e.g. twice the expert's, for
        the paper's "MCTS with twice the iterations" row).
      repeats: times each opening is played with each colour.
      uct_c: c_b of the pure-MCTS anchors (each N-MCTS agent carries its own settings).
      num_rollouts: random-fill rollouts per leaf of every searching agent.
      pairs_per_call: matches per compiled call (the progress bar advances per call).
    """

    anchors: tuple[int, ...] = (16, 64)
    extra_anchors: tuple[int, ...] = (128,)
    repeats: int = 1
    uct_c: float = 1.0
    num_rollouts: int = 1
    pairs_per_call: int = 16

    def __post_init__(self):
        if not self.anchors or any(s < 1 for s in self.anchors + self.extra_anchors):
            raise ValueError(f"LeagueConfig anchors must be positive budgets; got "
                             f"{self.anchors}, {self.extra_anchors}")
        if self.pairs_per_call < 1:
            raise ValueError(f"LeagueConfig.pairs_per_call must be >= 1; got "
                             f"{self.pairs_per_call}")
        if self.repeats < 1:
            raise ValueError(f"LeagueConfig.repeats must be >= 1; got {self.repeats}")


class Player(NamedTuple):
    """A panel entry: ``name`` (agent type), ``run`` (-1 for the shared anchors), the agent."""

    name: str
    run: int
    agent: Any


class League(NamedTuple):
    """Players ``[K]`` (index 0: random), ``wins[K, K]`` and ``games[K, K]``, the Elo fit, and
    per-player win rates against each anchor ``{anchor: [K]}`` (NaN where not played)."""

    names: list
    runs: list
    wins: np.ndarray
    games: np.ndarray
    elo: np.ndarray
    elo_se: np.ndarray
    win_rate: dict


def anchor_agent(params_like, simulations: int, uct_c: float = 1.0):
    if simulations == 0:
        return make_agent(params_like, use_network=False, greedy=False)
    return make_agent(params_like, use_network=False, simulations=simulations, uct_c=uct_c)


def _stack(agents):
    return jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *agents)


def run_league(ctx, league: LeagueConfig, module, board_size: int, panel: list[Player],
               head_to_head: list[tuple[Player, Player]], params_like, key,
               extras: list[Player] = ()) -> League:
    """Play the league and fit Elo.

    Pairings: every panel player and every anchor (extra anchors included) against the random
    player and each anchor of ``league.anchors`` (each pair once), and the ``head_to_head``
    pairs. All go through one compiled
    :func:`play_matches` in calls of ``league.pairs_per_call`` pairs (the last padded).

    Args:
      ctx: the run context (timer, progress).
      league: :class:`LeagueConfig`.
      module: the apprentice module.
      board_size: ``n``.
      panel: per-run players (greedy apprentices, N-MCTS agents...).
      head_to_head: extra pairs of players.
      extras: players that only play their ``head_to_head`` games (not the anchors).
      params_like: any network parameters (for the anchors, which do not use them).
      key: PRNG key.
    """
    anchors = [Player("random", -1, anchor_agent(params_like, 0))]
    anchors += [Player(f"mcts-{s}", -1, anchor_agent(params_like, s, league.uct_c))
                for s in league.anchors + league.extra_anchors]
    players = anchors + list(panel)
    panel_size = len(players)
    players += list(extras)
    index = {(p.name, p.run): i for i, p in enumerate(players)}
    opponents = anchors[:1 + len(league.anchors)]
    pairs = [(a, b) for a in players[1:panel_size] for b in opponents
             if index[(a.name, a.run)] > index[(b.name, b.run)]]
    pairs += list(head_to_head)
    k = len(players)
    wins, games = np.zeros((k, k)), np.zeros((k, k))
    openings = jnp.tile(jnp.arange(board_size * board_size, dtype=jnp.int32), league.repeats)
    budget = max(league.anchors + league.extra_anchors + tuple(
        int(p.agent.simulations) for p in list(panel) + list(extras)))
    config = SearchConfig(num_simulations=budget, uct_c=league.uct_c,
                          num_rollouts=league.num_rollouts)
    match = ctx.timer.jit(lambda k, a, b: play_matches(k, a, b, module, board_size, config,
                                                       openings))
    size = league.pairs_per_call
    calls = [pairs[i:i + size] for i in range(0, len(pairs), size)]
    win_rate = {b.name: np.full(k, np.nan) for b in opponents}
    for j, call in enumerate(ctx.progress(calls, desc="league")):
        padded = call + [(anchors[0], anchors[0])] * (size - len(call))
        result = match(jax.random.fold_in(key, j), _stack([a.agent for a, _ in padded]),
                       _stack([b.agent for _, b in padded]))
        a_won = np.asarray(ctx.gather(result.a_won), np.float64).reshape(size, -1)
        for row, (a, b) in enumerate(call):
            ia, ib = index[(a.name, a.run)], index[(b.name, b.run)]
            wins[ia, ib] += a_won[row].sum()
            wins[ib, ia] += (1 - a_won[row]).sum()
            games[ia, ib] += a_won.shape[1]
            games[ib, ia] += a_won.shape[1]
            if b.name in win_rate and b.run == -1:
                win_rate[b.name][ia] = a_won[row].mean()
    fit = bradley_terry(wins, anchor=0)
    return League([p.name for p in players], [p.run for p in players], wins, games,
                  fit.ratings, fit.se, win_rate)


def lookup(league: League, name: str, runs: int, table=None) -> np.ndarray:
    """``[runs]`` values of player ``name`` (Elo by default, or a per-player array)."""
    table = league.elo if table is None else table
    out = np.full(runs, np.nan)
    for i, (n, r) in enumerate(zip(league.names, league.runs, strict=True)):
        if n == name and 0 <= r < runs:
            out[r] = table[i]
    return out


def pair_rate(league: League, a: str, b: str, runs: int) -> np.ndarray:
    """``[runs]`` win rate of player ``a`` against player ``b`` of the same run (or a shared
    anchor ``b``)."""
    out = np.full(runs, np.nan)
    for r in range(runs):
        ia = _find(league, a, r)
        ib = _find(league, b, r)
        if ia is None or ib is None or league.games[ia, ib] == 0:
            continue
        out[r] = league.wins[ia, ib] / league.games[ia, ib]
    return out


def _find(league: League, name: str, run: int):
    for i, (n, r) in enumerate(zip(league.names, league.runs, strict=True)):
        if n == name and r in (run, -1):
            return i
    return None
