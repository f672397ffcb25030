"""The one way the library reports bad input.

Two kinds of fault:

* **Static faults** (wrong rank, non-positive sizes, unknown option names) are decidable from shapes
  and configuration. They raise ``ValueError`` at call or trace time, jit or not.
* **Value faults** (NaN weights, all-zero weights, a non-positive-definite matrix) depend on array
  values. :func:`error_if` raises ``ValueError`` immediately when the values are concrete (eager
  call), and under ``jit``/``vmap`` inserts a runtime check that fails the computation when it runs
  (the error surfaces as a ``jax.errors.JaxRuntimeError`` whose text holds the message).
  Kernels that sit in hot loops use :func:`raise_if_concrete` instead: an eager error, and under
  ``jit`` a documented flag or fallback value (see each kernel's docstring).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxpapers._src.errors import InvalidInputError

__all__ = [
    "InvalidInputError",
    "error_if",
    "is_concrete",
    "raise_if_concrete",
    "require",
    "require_positive_int",
    "require_positive_int_field",
]


def is_concrete(*arrays: Any) -> bool:
    """True when no leaf of ``arrays`` is a tracer, i.e. values can be inspected now."""
    leaves = jax.tree_util.tree_leaves(arrays)
    return not any(isinstance(leaf, jax.core.Tracer) for leaf in leaves)


def require(condition: bool, message: str) -> None:
    """Raise ``ValueError(message)`` unless the static ``condition`` holds."""
    if not condition:
        raise ValueError(message)


def require_positive_int(value: Any, name: str) -> int:
    """Return ``value`` as a Python int, or raise ``ValueError`` if it is not a positive integer.

    Accepts Python and NumPy integers (not bools, floats or arrays): sizes must be static.
    """
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be a positive Python integer (static); got {value!r}")
    if value <= 0:
        raise ValueError(f"{name} must be positive; got {value}")
    return int(value)


def require_positive_int_field(owner: str, name: str, value: Any) -> None:
    """Raise ``ValueError`` unless the setting ``owner.name`` is a positive Python ``int``.

    The one check of a positive integer field of a frozen config (a dataclass's
    ``__post_init__``): bools, floats, NumPy scalars and arrays are refused.

    Args:
      owner: the config's name, e.g. ``type(self).__name__``.
      name: the field's name.
      value: the field's value.

    Raises:
      ValueError: ``"{owner}.{name} must be a positive int; got {value!r}"``.

    >>> require_positive_int_field("Budget", "evaluations", 3)
    >>> require_positive_int_field("Budget", "evaluations", 0)
    Traceback (most recent call last):
    ...
    ValueError: Budget.evaluations must be a positive int; got 0
    """
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{owner}.{name} must be a positive int; got {value!r}")


def raise_if_concrete(predicate: Callable[..., Any], message: str, *arrays: Any) -> None:
    """Eager-only value check: if ``arrays`` are concrete and ``predicate(*arrays)`` is true, raise.

    Under tracing this does nothing (no runtime cost); the caller documents its flag/fallback.
    """
    if not is_concrete(*arrays):
        return
    flag = predicate(*arrays)  # under an outer trace this is a tracer even for constant inputs
    if is_concrete(flag) and bool(np.any(np.asarray(flag))):
        raise InvalidInputError(message)


def _raise_on_host(flag: np.ndarray, *, message: str) -> None:
    if np.any(flag):
        raise InvalidInputError(message)


def error_if(value: Any, predicate: Any, message: str) -> Any:
    """Return ``value``; fail with ``message`` where the boolean ``predicate`` is true.

    Eagerly the error is a :class:`InvalidInputError` raised at once. Under ``jit`` the check runs
    with the computation through a host callback, and the failure surfaces when the result is
    computed. Use the returned value, so the check is ordered before whatever uses it.

    Put it at an unbatched entry point: under ``vmap`` the host callback is unrolled once per
    batch element, so compile time grows with the batch. Inside batched kernels return a
    per-item ``is_finite``/``valid`` flag instead.
    """
    if is_concrete(predicate):
        if bool(np.any(np.asarray(predicate))):
            raise InvalidInputError(message)
        return value
    flag = jnp.any(predicate)
    jax.debug.callback(_raise_on_host, flag, message=message)
    return value
