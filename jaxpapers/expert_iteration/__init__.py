"""Expert Iteration on Hex (Anthony, Tian & Barber, NeurIPS 2017).

Public API::

    hex                                  # the game: init, step, play, legal_mask, has_won,
                                         # rollout_value, features, rot180, to_absolute, ...
    SearchConfig, search(key, state, params, evaluate, config, *, simulations, ...)
        -> SearchOutput (action, visit_counts, tree_policy, q_values, ..., tree: Tree)
    uniform_evaluator                    # pure MCTS (uniform prior, w_a = 0)
    tree_policy_target / chosen_action_target          # TPT and CAT
    ApprenticeConfig, make_apprentice(config) -> Flax module; network_evaluator(module)
    policy_distribution(logits, legal) -> distrax.Categorical; imitation_loss
    self_play / sample_positions / label_positions -> Games, Positions
    ExItConfig, ExItState, exit_init, generate_positions, add_positions, apprentice_update
    ReinforceConfig, ReinforceState, reinforce_init, reinforce_update
    Agent, make_agent, expert_settings, play_match -> MatchResult; bradley_terry -> EloFit

Everything is a pure function of one game, tree or run (key first where random); batch with
``jax.vmap``; the library never jits for the caller. The reproduction
(``jaxpapers reproduce expert_iteration``) drives iterations, checkpoints and evaluation.

Bad input (the rule of every function here): a wrong shape, dtype, key or config raises
``ValueError`` naming the argument, at call or trace time. A bad value (no legal move, NaN logits,
negative counts, a target on an illegal cell, an override out of range) raises eagerly; under
``jit`` ``search``'s ``valid`` and ``MatchResult.valid`` are False (a NaN evaluator output
included) and the functions without a flag return NaN; no selection falls back to move 0.
"""

from jaxpapers.expert_iteration import hex
from jaxpapers.expert_iteration._evaluate import (
    Agent,
    EloFit,
    MatchResult,
    bradley_terry,
    expert_settings,
    make_agent,
    play_match,
)
from jaxpapers.expert_iteration._exit import (
    ExItConfig,
    ExItState,
    add_positions,
    apprentice_update,
    exit_init,
    generate_positions,
)
from jaxpapers.expert_iteration._network import (
    ApprenticeConfig,
    imitation_loss,
    make_apprentice,
    network_evaluator,
    policy_distribution,
)
from jaxpapers.expert_iteration._reinforce import (
    ReinforceConfig,
    ReinforceState,
    reinforce_init,
    reinforce_update,
)
from jaxpapers.expert_iteration._search import (
    SearchConfig,
    SearchOutput,
    Tree,
    chosen_action_target,
    search,
    tree_policy_target,
    uniform_evaluator,
)
from jaxpapers.expert_iteration._selfplay import (
    Games,
    Positions,
    label_positions,
    sample_positions,
    self_play,
)

__all__ = [
    "Agent",
    "ApprenticeConfig",
    "EloFit",
    "ExItConfig",
    "ExItState",
    "Games",
    "MatchResult",
    "Positions",
    "ReinforceConfig",
    "ReinforceState",
    "SearchConfig",
    "SearchOutput",
    "Tree",
    "add_positions",
    "apprentice_update",
    "bradley_terry",
    "chosen_action_target",
    "exit_init",
    "expert_settings",
    "generate_positions",
    "hex",
    "imitation_loss",
    "label_positions",
    "make_agent",
    "make_apprentice",
    "network_evaluator",
    "play_match",
    "policy_distribution",
    "reinforce_init",
    "reinforce_update",
    "sample_positions",
    "search",
    "self_play",
    "tree_policy_target",
    "uniform_evaluator",
]
