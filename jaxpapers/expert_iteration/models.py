"""The apprentice network: the Flax module, its policy distribution and its evaluator.

The network is fully convolutional (one logit per cell and a value head), so the same
parameters run on any board size.
"""

from jaxpapers.expert_iteration._network import (
    make_apprentice,
    network_evaluator,
    policy_distribution,
)

__all__ = ["make_apprentice", "network_evaluator", "policy_distribution"]
