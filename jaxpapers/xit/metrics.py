"""Evaluation and diagnostics: accuracy, macro F1, AUROC, and the losses' chance levels.

The metrics are pure and vmappable; under ``jit`` a bad value gives NaN (eagerly
``ValueError``).
"""

from jaxpapers.xit._finetune import accuracy, auroc, evaluate, macro_f1
from jaxpapers.xit._pretrain import chance_levels

__all__ = ["accuracy", "macro_f1", "auroc", "evaluate", "chance_levels"]
