"""The library's exception type, importable without importing jax."""

__all__ = ["InvalidInputError"]


class InvalidInputError(ValueError):
    """Bad input detected by a value check (NaN or all-zero weights, a non-positive-definite
    matrix, an illegal move). A subclass of ``ValueError``, so ``except ValueError`` catches it."""
