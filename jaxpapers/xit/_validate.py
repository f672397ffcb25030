"""Input checks shared by the xit kernels (built on :mod:`jaxpapers._src.checks`).

Shapes and dtypes raise ``ValueError`` naming the argument at call or trace time. Values raise
eagerly; traced values out of range turn the result NaN (each caller documents it).
"""

from __future__ import annotations

import jax.numpy as jnp

from jaxpapers._src import checks


def floats(a, name: str, ndim: int | None = None, shape: tuple | None = None):
    """``a`` as a floating array of rank ``ndim`` / exact ``shape``, else ``ValueError``."""
    a = jnp.asarray(a)
    if shape is not None:
        checks.require(a.shape == tuple(shape), f"{name} must have shape {tuple(shape)}; got "
                       f"{a.shape}")
    if ndim is not None:
        checks.require(a.ndim == ndim, f"{name} must have {ndim} axes; got shape {a.shape}")
    checks.require(jnp.issubdtype(a.dtype, jnp.floating),
                   f"{name} must be a floating array; got dtype {a.dtype}")
    return a


def ints(a, name: str, shape: tuple):
    """``a`` as an integer array of ``shape``, else ``ValueError``."""
    a = jnp.asarray(a)
    checks.require(a.shape == tuple(shape), f"{name} must have shape {tuple(shape)}; got "
                   f"{a.shape}")
    checks.require(jnp.issubdtype(a.dtype, jnp.integer),
                   f"{name} must be an integer array; got dtype {a.dtype}")
    return a


def scalar_ok(value, name: str, ok, requirement: str):
    """Eagerly raise unless ``ok(value)``; return a scalar bool for the traced case."""
    checks.require(jnp.ndim(value) == 0, f"{name} must be a scalar; got shape {jnp.shape(value)}")
    checks.raise_if_concrete(lambda v: ~ok(v), f"{name} must be {requirement}; got {value}",
                             value)
    return ok(jnp.asarray(value))


def all_ok(value, name: str, ok, requirement: str):
    """Eagerly raise unless ``ok(value)`` holds everywhere; a scalar bool for the traced case."""
    checks.raise_if_concrete(lambda *v: ~jnp.all(ok(v[0] if len(v) == 1 else v)),
                             f"{name} must be {requirement}",
                             *(value if isinstance(value, tuple) else (value,)))
    return jnp.all(ok(value))


def nan_unless(flag, value):
    """``value`` where the scalar ``flag`` holds, NaN otherwise."""
    return jnp.where(flag, value, jnp.nan)
