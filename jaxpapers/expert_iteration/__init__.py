"""Expert Iteration on Hex (Anthony, Tian & Barber, NeurIPS 2017).

The face holds the configs, the state and info types, the ExIt and REINFORCE init/step pairs
and the paper's kernels (the search, its targets and the imitation loss). Submodules:
:mod:`~jaxpapers.expert_iteration.hex` (the game), :mod:`~jaxpapers.expert_iteration.models`
(the apprentice network), :mod:`~jaxpapers.expert_iteration.selfplay` (games and labelled
positions) and :mod:`~jaxpapers.expert_iteration.evaluate` (matches and Elo).

Everything is a pure function of one game, tree or run (key first where random); batch with
``jax.vmap``; the library never jits for the caller. Bad input: a wrong shape, dtype, key or
config raises ``ValueError`` naming the argument; a bad value raises eagerly and under ``jit``
sets ``valid = False`` or gives NaN (each function says which).
"""

from jaxpapers.expert_iteration import evaluate, hex, models, selfplay
from jaxpapers.expert_iteration._exit import (
    ExItConfig,
    ExItInfo,
    ExItState,
    add_positions,
    exit_step,
    generate_positions,
    init_exit,
)
from jaxpapers.expert_iteration._network import ApprenticeConfig, imitation_loss
from jaxpapers.expert_iteration._reinforce import (
    ReinforceConfig,
    ReinforceInfo,
    ReinforceState,
    init_reinforce,
    reinforce_step,
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

__all__ = [
    "ApprenticeConfig",
    "ExItConfig",
    "ExItInfo",
    "ExItState",
    "ReinforceConfig",
    "ReinforceInfo",
    "ReinforceState",
    "SearchConfig",
    "SearchOutput",
    "Tree",
    "add_positions",
    "chosen_action_target",
    "evaluate",
    "exit_step",
    "generate_positions",
    "hex",
    "imitation_loss",
    "init_exit",
    "init_reinforce",
    "models",
    "reinforce_step",
    "search",
    "selfplay",
    "tree_policy_target",
    "uniform_evaluator",
]
