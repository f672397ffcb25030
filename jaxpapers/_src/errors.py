"""The library's exception types, importable without importing jax."""

__all__ = ["InvalidInputError", "MissingDependencyError"]


class InvalidInputError(ValueError):
    """Bad input detected by a value check (NaN or all-zero weights, a non-positive-definite
    matrix, an illegal move). A subclass of ``ValueError``, so ``except ValueError`` catches it."""


class MissingDependencyError(RuntimeError):
    """An optional package or data set that this run needs is not installed here. The message
    is one line that says what to install or where to put the data; ``jaxpapers reproduce all``
    reports the method as skipped and goes on with the others."""
