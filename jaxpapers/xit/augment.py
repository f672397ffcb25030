"""TS-TCC's augmentations: the weak and strong views and their per-dataset strengths.

Each function takes one series ``(C, L)`` and a PRNG key; ``jax.vmap`` them over a batch.
"""

from jaxpapers.xit._augment import jitter, segment_permute, strong_augment, weak_scale
from jaxpapers.xit._config import AUGMENT_DRAWS, WEAK_AUGMENT, augment_table

__all__ = ["weak_scale", "jitter", "segment_permute", "strong_augment", "augment_table",
           "AUGMENT_DRAWS", "WEAK_AUGMENT"]
