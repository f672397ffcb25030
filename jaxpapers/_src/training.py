"""The one training loop with checkpoints: jitted ``lax.scan`` chunks, resumable bitwise.

``train_loop(update, state, key, num_steps, ...)`` runs ``state, metrics = update(
fold_in(key, state.step), state, *args)`` (key first, as every step of the library) for
``num_steps`` steps. The state carries its own int32 ``step`` counter (a
``NamedTuple``/dataclass field named ``step``), so the key of step ``i`` is
``fold_in(key, i)`` however the steps are chunked: a run interrupted after any chunk and resumed
from its checkpoint ends bitwise equal to an uninterrupted one. After each chunk of ``chunk``
steps the state and the per-step metrics so far are saved through a :class:`Checkpointer`.

Convolutions on the CPU: XLA's CPU backend leaves the weight- and input-gradient convolutions
of a step in a non-canonical layout when the step sits inside a loop body (``lax.scan``), and
runs them many times slower than the same step compiled on its own (timings: the docs'
benchmark pages, "Timing notes"). ``loop="auto"`` therefore runs one jitted call per step
when the backend is the CPU and the step contains a convolution, and scans chunks otherwise.
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
                return update(jax.random.fold_in(key, state.step), state, *args)

            return jax.lax.scan(one, state, None, length=length)

        _RUNNERS[cache_key] = [jax.jit(run), {}]
    return _RUNNERS[cache_key]


_STEPS: dict = {}


def _step_runner(update: Callable):
    """One jitted step ``(state, key, args) -> (state, metrics)`` with the step's key folded in
    (the host loop of ``loop="host"``)."""
    import jax

    if update not in _STEPS:

        def run(state, key, args):
            return update(jax.random.fold_in(key, state.step), state, *args)

        _STEPS[update] = [jax.jit(run), {}]
    return _STEPS[update]


def _inner_jaxprs(value):
    if isinstance(value, (tuple, list)):
        for v in value:
            yield from _inner_jaxprs(v)
        return
    inner = getattr(value, "jaxpr", None)      # ClosedJaxpr -> Jaxpr
    if inner is not None and hasattr(inner, "eqns"):
        yield inner
    elif hasattr(value, "eqns"):
        yield value


def _has_convolution(jaxpr) -> bool:
    """Whether a jaxpr (or any jaxpr nested in its equations' params) holds a convolution."""
    for eqn in jaxpr.eqns:
        if eqn.primitive.name == "conv_general_dilated":
            return True
        for value in eqn.params.values():
            if any(_has_convolution(inner) for inner in _inner_jaxprs(value)):
                return True
    return False


def _choose_loop(loop: str, update, state, key, args) -> str:
    if loop not in ("auto", "scan", "host"):
        raise ValueError(f"loop must be 'auto', 'scan' or 'host'; got {loop!r}")
    if loop != "auto":
        return loop
    import jax

    if jax.default_backend() != "cpu":
        return "scan"
    closed = jax.make_jaxpr(lambda s, k, a: update(k, s, *a))(state, key, tuple(args))
    return "host" if _has_convolution(closed.jaxpr) else "scan"


def _compiled(entry, fn_args, timer):
    """The jitted function of a runner ``entry = [jitted, cache]``; with a timer, compiled ahead
    of time once per argument signature and its compile time recorded."""
    import jax

    jitted, compiled = entry
    if timer is None:
        return jitted
    leaves, treedef = jax.tree_util.tree_flatten(fn_args)
    signature = treedef, tuple((x.shape, x.dtype) for x in leaves)
    if signature not in compiled:
        compiled[signature], seconds = compile_ahead(jitted, *fn_args)
        timer.add_compile(seconds)
    return compiled[signature]


def _call_host(update, length, state, key, args, timer):
    import jax
    import jax.numpy as jnp

    step = _compiled(_step_runner(update), (state, key, args), timer)
    collected = []
    for _ in range(length):
        state, metrics = step(state, key, args)
        collected.append(metrics)
    return state, jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *collected)


def _call(update, length, state, key, args, timer):
    return _compiled(_chunk_runner(update, length), (state, key, args), timer)(state, key, args)


def train_loop(update: Callable[..., tuple[Any, Any]], state: Any, key, num_steps: int, *,
               args: tuple = (), chunk: int = 500, checkpointer=None, show_progress: bool = False,
               desc: str = "train", timer=None, loop: str = "auto") -> tuple[Any, Any]:
    """Run ``num_steps`` steps of ``update``; returns ``(state, metrics)``.

    Args:
      update: ``(key, state, *args) -> (state, metrics)``, one optimiser step; it must advance
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
      loop: ``"scan"`` (one jitted ``lax.scan`` per chunk), ``"host"`` (one jitted call per
        step, checkpoints still every ``chunk`` steps) or ``"auto"`` (host for a step with a
        convolution on the CPU backend, scan otherwise; see the module docstring).

    Returns:
      ``(state, metrics)`` with each metrics leaf stacked to ``[num_steps]``.

    Raises:
      ValueError: ``num_steps`` or ``chunk`` not a positive int, or an unknown ``loop``.
    """
    import jax
    import jax.numpy as jnp

    if isinstance(num_steps, bool) or not isinstance(num_steps, int) or num_steps <= 0:
        raise ValueError(f"num_steps must be a positive int; got {num_steps!r}")
    if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk <= 0:
        raise ValueError(f"chunk must be a positive int; got {chunk!r}")
    mode = _choose_loop(loop, update, state, key, args)
    call = _call_host if mode == "host" else _call
    shapes = jax.eval_shape(update, key, state, *args)[1]
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
        state, chunk_metrics = call(update, length, state, key, tuple(args), timer)
        metrics = jax.tree_util.tree_map(lambda m, c, b=begin, n=length: m.at[b:b + n].set(c),
                                         metrics, chunk_metrics)
        if checkpointer is not None:
            checkpointer.save(int(state.step), {"state": state, "metrics": metrics})
    if checkpointer is not None:
        checkpointer.close()
    return state, metrics
