"""Evaluation of Hex players: balanced matches between agents and Bradley-Terry Elo ratings.

A match plays every opening cell once with each colour; an :class:`Agent` is N-MCTS with its
prior, budget and weights as arrays, so one compiled match serves every pairing.
"""

from jaxpapers.expert_iteration._evaluate import (
    Agent,
    EloFit,
    MatchResult,
    bradley_terry,
    expert_settings,
    make_agent,
    play_match,
)

__all__ = ["Agent", "EloFit", "MatchResult", "bradley_terry", "expert_settings", "make_agent",
           "play_match"]
