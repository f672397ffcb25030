"""Checkpoint and resume for long trainings: atomic msgpack files of a pytree and a step.

``save(directory, step, tree)`` writes ``directory/ckpt_<step>.msgpack`` through a temporary file
and ``os.replace`` (a crash never leaves a half-written checkpoint), keeping the newest ``keep``.
``restore(directory, like)`` returns ``(step, tree)`` for the newest checkpoint with the structure
of ``like``, or ``None`` when there is none.
"""

from __future__ import annotations

import os
import re
from typing import Any

__all__ = ["save", "restore", "latest_step"]

_PATTERN = re.compile(r"^ckpt_(\d+)\.msgpack$")


def _steps(directory: str) -> list[int]:
    if not os.path.isdir(directory):
        return []
    return sorted(int(m.group(1)) for f in os.listdir(directory) if (m := _PATTERN.match(f)))


def latest_step(directory: str) -> int | None:
    steps = _steps(directory)
    return steps[-1] if steps else None


def save(directory: str, step: int, tree: Any, keep: int = 2) -> str:
    import jax
    from flax import serialization

    os.makedirs(directory, exist_ok=True)
    payload = serialization.msgpack_serialize(
        {"step": int(step), "tree": serialization.to_state_dict(jax.device_get(tree))})
    path = os.path.join(directory, f"ckpt_{int(step)}.msgpack")
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(payload)
    os.replace(tmp, path)
    for old in _steps(directory)[:-keep]:
        os.remove(os.path.join(directory, f"ckpt_{old}.msgpack"))
    return path


def restore(directory: str, like: Any) -> tuple[int, Any] | None:
    from flax import serialization

    step = latest_step(directory)
    if step is None:
        return None
    with open(os.path.join(directory, f"ckpt_{step}.msgpack"), "rb") as f:
        state = serialization.msgpack_restore(f.read())
    return int(state["step"]), serialization.from_state_dict(like, state["tree"])
