"""Wall time of a run split into compilation and execution."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from jaxpapers._src.bench import compile_ahead

__all__ = ["Timer"]


def _signature(args: tuple) -> tuple:
    """What a compiled program depends on: the argument tree and each leaf's type, shape,
    dtype, weak type and sharding (Python scalars by type only, as jit treats them)."""
    import jax

    leaves, treedef = jax.tree_util.tree_flatten(args)
    described = []
    for leaf in leaves:
        if isinstance(leaf, jax.Array):
            described.append((leaf.shape, leaf.dtype, getattr(leaf, "weak_type", False),
                              leaf.sharding))
        elif hasattr(leaf, "shape") and hasattr(leaf, "dtype"):
            described.append(("host", leaf.shape, str(leaf.dtype)))
        else:
            described.append(("scalar", type(leaf)))
    return treedef, tuple(described)


class Timer:
    """Accumulates compile time and run time of the jitted programs of one run.

    ``timer.jit(fn)`` returns a function that behaves like ``jax.jit(fn)`` (no static
    arguments: close over static values instead) but compiles ahead of time once per argument
    signature, adding the compile seconds to :attr:`compile_s`, and waits for each call's result,
    adding the seconds to :attr:`run_s`. The compiled program is the one ``jax.jit`` would run,
    so results are identical.

    Attributes:
      compile_s: seconds spent compiling (results.json's ``compile_s``).
      run_s: seconds spent running compiled programs, results waited for.
      compilations: how many programs were compiled.
    """

    def __init__(self) -> None:
        self.compile_s = 0.0
        self.run_s = 0.0
        self.compilations = 0

    def jit(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """``fn`` jitted, compiled ahead of time once per argument signature, timed.

        Args:
          fn: a function of arrays (pytrees); static values are closed over.

        Returns:
          A function with ``fn``'s signature that returns ``jax.jit(fn)``'s results, waited for.
        """
        import jax

        jitted = jax.jit(fn)
        cache: dict = {}

        def call(*args):
            signature = _signature(args)
            compiled = cache.get(signature)
            if compiled is None:
                compiled, seconds = compile_ahead(jitted, *args)
                cache[signature] = compiled
                self.compile_s += seconds
                self.compilations += 1
            start = time.perf_counter()
            out = jax.block_until_ready(compiled(*args))
            self.run_s += time.perf_counter() - start
            return out

        call.__wrapped__ = fn
        return call

    def __call__(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Compile ``fn`` for ``args``, run it once and return the result."""
        return self.jit(fn)(*args)

    def add_compile(self, seconds: float) -> None:
        """Count compile time measured elsewhere (e.g. inside a training helper)."""
        self.compile_s += float(seconds)
