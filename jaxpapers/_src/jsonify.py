"""Plain JSON values from the objects runs produce (configs, metrics, result types)."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

__all__ = ["jsonify"]


def jsonify(value: Any) -> Any:
    """``value`` as plain JSON: objects with ``to_json`` use it, other dataclasses and
    NamedTuples become dicts, tuples become lists, NumPy/JAX scalars and arrays become numbers and
    lists, a NaN becomes None and an infinity ``"inf"``/``"-inf"``; anything else its ``repr``."""
    if hasattr(value, "to_json") and not isinstance(value, type):
        return jsonify(value.to_json())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonify(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple) and hasattr(value, "_asdict"):
        return {k: jsonify(v) for k, v in value._asdict().items()}
    if isinstance(value, dict):
        return {str(k): jsonify(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonify(v) for v in value]
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if value is None or isinstance(value, (str, int, bool)):
        return value
    if hasattr(value, "item") and getattr(value, "ndim", None) == 0:
        return jsonify(value.item())
    if hasattr(value, "tolist"):
        return jsonify(value.tolist())
    return repr(value)
