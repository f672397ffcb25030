"""The one training loop with checkpoints: jitted ``lax.scan`` chunks, resumable bitwise.

``train_loop(update, state, key, num_steps, ...)`` runs ``state, metrics = update(state,
fold_in(key, state.step), *args)`` for ``num_steps`` steps. The state carries its own int32 ``step``
counter (a ``NamedTuple``/dataclass field named ``step``), so the key of step ``i`` is
``fold_in(key, i)`` however the steps are chunked: a run interrupted after any chunk and resumed
from its checkpoint ends bitwise equal to an uninterrupted one. After each chunk of ``chunk``
steps the state and the per-step metrics so far are saved through a :class:`Checkpointer`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from jaxpapers._src.bench import compile_ahead
from jaxpapers._src.progress import progress

__all__ = ["train_loop"]

_RUNNERS: dict = {}


def _chunk_runner(update: Callable, length: int):
    """A jitted ``(state, key, args) -> (state, metrics [length])``, cached per update function and
    chunk length, so repeated trainings (seeds, resumption) compile once."""
    import jax

    cache_key = (update, int(length))
    if cache_key not in _RUNNERS:

        def run(state, key, args):
            def one(state, _):
                return update(state, jax.random.fold_in(key, state.step), *args)

            return jax.lax.scan(one, state, None, length=length)

        _RUNNERS[cache_key] = [jax.jit(run), {}]
    return _RUNNERS[cache_key]


def _call(update, length, state, key, args, timer):
    jitted, compiled = _chunk_runner(update, length)
    if timer is None:
        return jitted(state, key, args)
    import jax

    leaves, treedef = jax.tree_util.tree_flatten((state, key, args))
    signature = treedef, tuple((x.shape, x.dtype) for x in leaves)
    if signature not in compiled:
        compiled[signature], seconds = compile_ahead(jitted, state, key, args)
        timer.add_compile(seconds)
    return compiled[signature](state, key, args)


def train_loop(update: Callable[..., tuple[Any, Any]], state: Any, key, num_steps: int, *,
               args: tuple = (), chunk: int = 500, checkpointer=None, show_progress: bool = False,
               desc: str = "train", timer=None) -> tuple[Any, Any]:
    """Run ``num_steps`` steps of ``update``; returns ``(state, metrics)``.

    Args:
      update: ``(state, key, *args) -> (state, metrics)``, one optimiser step; it must advance
        ``state.step`` by one. Pass the same function object across calls to reuse compilations.
      state: the initial state (a pytree with an int32 scalar ``step`` field, usually 0).
      key: PRNG key; step ``i`` uses ``fold_in(key, i)``.
      num_steps: total number of steps (the state's ``step`` counts towards it).
      args: arrays the step reads (data, schedules), passed as jit arguments rather than
        captured as constants.
      chunk: steps per jitted scan and between checkpoints.
      checkpointer: a :class:`~jaxpapers.experiments.Checkpointer` (``ctx.checkpointer(...)``) or
        None; with one, training resumes from the newest checkpoint when it was opened to resume.
      show_progress: a progress bar over chunks.
      desc: the bar's label.
      timer: a :class:`~jaxpapers.experiments.Timer` to which compile time is added.

    Returns:
      ``(state, metrics)`` with each metrics leaf stacked to ``[num_steps]``.
    """
    import jax
    import jax.numpy as jnp

    if isinstance(num_steps, bool) or not isinstance(num_steps, int) or num_steps <= 0:
        raise ValueError(f"num_steps must be a positive int; got {num_steps!r}")
    if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk <= 0:
        raise ValueError(f"chunk must be a positive int; got {chunk!r}")
    shapes = jax.eval_shape(update, state, key, *args)[1]
    metrics = jax.tree_util.tree_map(lambda s: jnp.zeros((num_steps,) + s.shape, s.dtype),
                                     shapes)
    if checkpointer is not None:
        restored = checkpointer.restore({"state": state, "metrics": metrics})
        if restored is not None:
            state, metrics = restored[1]["state"], restored[1]["metrics"]

    plan, position = [], int(state.step)
    while position < num_steps:
        length = min(chunk - position % chunk, num_steps - position)
        plan.append(length)
        position += length
    for length in progress(plan, total=len(plan), desc=desc, enabled=show_progress):
        begin = int(state.step)
        state, chunk_metrics = _call(update, length, state, key, tuple(args), timer)
        metrics = jax.tree_util.tree_map(lambda m, c, b=begin, n=length: m.at[b:b + n].set(c),
                                         metrics, chunk_metrics)
        if checkpointer is not None:
            checkpointer.save(int(state.step), {"state": state, "metrics": metrics})
    if checkpointer is not None:
        checkpointer.close()
    return state, metrics
