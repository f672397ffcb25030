"""ExIt's data: apprentice self-play, sampled positions and the expert's labels.

Fixed shapes throughout (one ``lax.scan`` of ``n * n`` plies), so a batch of games compiles
once; :func:`~jaxpapers.expert_iteration.generate_positions` chains the three steps.
"""

from jaxpapers.expert_iteration._selfplay import (
    Games,
    Positions,
    label_positions,
    sample_positions,
    self_play,
)

__all__ = ["Games", "Positions", "label_positions", "sample_positions", "self_play"]
