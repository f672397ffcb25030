"""Heavy optional imports, loaded on first use so that ``import jaxpapers`` stays fast."""

from __future__ import annotations

import importlib
import sys
import warnings
from types import ModuleType

__all__ = ["distrax"]


def distrax() -> ModuleType:
    """The ``distrax`` module, imported on first use.

    distrax loads TensorFlow Probability's JAX substrate (about 0.6 s on a CPU), which reads a
    deprecated ``jax`` attribute; that one warning is silenced, no other.

    Returns:
        The imported ``distrax`` module.

    Raises:
        ModuleNotFoundError: distrax is not installed.

    >>> distrax().Categorical(logits=[0.0, 0.0]).num_categories
    2
    """
    if "distrax" not in sys.modules:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "jax.core.pytype_aval_mappings is deprecated",
                                    DeprecationWarning)
            importlib.import_module("distrax")
    return sys.modules["distrax"]
