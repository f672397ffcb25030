"""Input checks of the mean-field package (the rule is in the package docstring).

Static faults raise ``ValueError`` naming the argument at call or trace time. Value faults raise
eagerly (:func:`jaxpapers._src.checks.raise_if_concrete`) and, under ``jit``, give a ``bool[]``
that the caller turns into a NaN result (``where`` applied last).
"""

from __future__ import annotations

import math
from typing import Any

import jax.numpy as jnp
import numpy as np

from jaxpapers._src import checks
from jaxpapers.meanfield._config import Coefficients

__all__ = ["check_tokens_array", "check_coeffs", "check_non_negative", "check_positive",
           "nan_unless", "check_static_unit"]


def _is_real_float(dtype) -> bool:
    return jnp.issubdtype(dtype, jnp.floating)


def check_tokens_array(x: Any, name: str = "x"):
    """``x`` as an array of shape ``(N, d)`` with ``N >= 1`` and a real floating dtype."""
    x = jnp.asarray(x)
    checks.require(x.ndim == 2, f"{name} must have shape (N, d); got shape {x.shape}")
    checks.require(_is_real_float(x.dtype), f"{name} must be a real float array; got {x.dtype}")
    checks.require(x.shape[0] >= 1, f"{name} must hold at least one token; got {x.shape}")
    return x


def _scalar(value: Any, name: str):
    value = jnp.asarray(value)
    checks.require(value.ndim == 0, f"{name} must be a scalar; got shape {value.shape}")
    checks.require(jnp.issubdtype(value.dtype, jnp.integer) or _is_real_float(value.dtype),
                   f"{name} must be a real number; got dtype {value.dtype}")
    return value


def check_non_negative(value: Any, name: str):
    """``bool[]``: ``value`` (a real scalar) is ``>= 0`` and finite; raises eagerly if not."""
    value = _scalar(value, name)
    checks.raise_if_concrete(lambda v: ~(jnp.isfinite(v) & (v >= 0)),
                             f"{name} must be finite and >= 0; got {value}", value)
    return jnp.isfinite(value) & (value >= 0)


def check_positive(value: Any, name: str):
    """``bool[]``: ``value`` (a real scalar) is ``> 0`` and finite; raises eagerly if not."""
    value = _scalar(value, name)
    checks.raise_if_concrete(lambda v: ~(jnp.isfinite(v) & (v > 0)),
                             f"{name} must be finite and > 0; got {value}", value)
    return jnp.isfinite(value) & (value > 0)


def check_static_unit(value: Any, name: str, closed_low: bool = False) -> None:
    """A concrete ``value`` must lie in ``(0, 1)`` (``[0, 1)`` with ``closed_low``)."""
    if not checks.is_concrete(value):
        return
    v = float(np.asarray(value))
    ok = (0.0 <= v if closed_low else 0.0 < v) and v < 1.0 and math.isfinite(v)
    low = "[0" if closed_low else "(0"
    checks.require(ok, f"{name} must lie in {low}, 1); got {v}")


def check_coeffs(coeffs: Any, d: int):
    """Check :class:`Coefficients` for tokens of dimension ``d``; ``bool[]`` for its values.

    Static: a :class:`Coefficients`, scalar real ``beta``/``attn_scale``/``sigma_u``/``sigma_w``,
    ``qk``/``value`` ``None`` or real float ``[d, d]``. Values (eagerly raised): ``beta``,
    ``sigma_u``, ``sigma_w`` finite and ``>= 0``, ``attn_scale`` and the matrices finite.
    """
    checks.require(isinstance(coeffs, Coefficients),
                   f"coeffs must be a Coefficients; got {type(coeffs).__name__}")
    ok = jnp.bool_(True)
    for field in ("beta", "sigma_u", "sigma_w"):
        ok &= check_non_negative(getattr(coeffs, field), f"coeffs.{field}")
    scale = _scalar(coeffs.attn_scale, "coeffs.attn_scale")
    checks.raise_if_concrete(lambda v: ~jnp.isfinite(v),
                             f"coeffs.attn_scale must be finite; got {scale}", scale)
    ok &= jnp.isfinite(scale)
    for field in ("qk", "value"):
        matrix = getattr(coeffs, field)
        if matrix is None:
            continue
        matrix = jnp.asarray(matrix)
        checks.require(matrix.shape == (d, d), f"coeffs.{field} must be None or have shape "
                                               f"(d, d) = ({d}, {d}); got {matrix.shape}")
        checks.require(_is_real_float(matrix.dtype),
                       f"coeffs.{field} must be a real float matrix; got {matrix.dtype}")
        checks.raise_if_concrete(lambda m: ~jnp.all(jnp.isfinite(m)),
                                 f"coeffs.{field} must be finite", matrix)
        ok &= jnp.all(jnp.isfinite(matrix))
    return ok


def nan_unless(ok, value):
    """``value`` where ``ok``, else NaN (applied last: a ``where`` before ``exp`` and the like
    can give garbage under ``jit`` on the CPU)."""
    return jnp.where(ok, value, jnp.nan)
