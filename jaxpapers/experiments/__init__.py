"""The experiment kit every reproduction runner is built on.

A runner is a module that declares its scales and one function::

    SCALES = {"smoke": MyScale(...), "quick": MyScale(...), "paper": MyScale(...)}  # frozen

    def run(ctx: RunContext, config: MyScale) -> RunResult: ...

and is listed in :data:`METHODS`. :func:`reproduce` validates the scale, runs it, and writes
``results.json`` (one schema for every method, see :data:`SCHEMA`) and ``report.md``.

What a runner uses:

* **numbers**: :func:`estimate` (mean, standard error, median of samples) -> :class:`Estimate`;
  claims tested with :func:`compare` (independent estimates or exact values), :func:`paired`
  (paired samples) or :func:`agree` (equality) -> :class:`Comparison` whose verdict is one of
  :data:`VERDICTS` (``held`` / ``tie`` / ``reversed``, with the ``z`` used);
* **table**: :class:`Row` (numbers and units, never pre-formatted strings) in a
  :class:`RunResult`;
* **devices**: ``ctx.shard(tree)`` splits the run axis over the mesh, ``ctx.replicate``,
  ``ctx.gather`` (back to NumPy on every process), ``ctx.mesh()``;
* **time**: ``ctx.timer.jit(fn)`` compiles ahead of time and records compile and run seconds
  separately (``results.json["compile_s"]``);
* **training**: :func:`train_loop` (jitted scan chunks, resumable bitwise) with
  ``ctx.checkpointer(name, config)`` (orbax, keyed by method, seed and config hash; restores
  only with ``--resume``);
* **output**: :func:`save_figure` (PNG, process 0 only), ``ctx.progress`` (a progress bar);
* **entry points** (CLI, benchmarks, notebooks): :func:`enable_compile_cache`, a persistent
  XLA compilation cache.
"""

from jaxpapers._src.checkpoint import Checkpointer, config_hash
from jaxpapers._src.compile_cache import enable_compile_cache
from jaxpapers._src.training import train_loop
from jaxpapers.experiments._context import RunContext
from jaxpapers.experiments._registry import METHODS, Method, implemented, runner, scales
from jaxpapers.experiments._report import format_value, pyplot, save_figure, write_report
from jaxpapers.experiments._results import (
    SCHEMA,
    Row,
    RunResult,
    diff_results,
    load_results,
    reproduce,
)
from jaxpapers.experiments._stats import (
    VERDICTS,
    Comparison,
    Estimate,
    agree,
    compare,
    estimate,
    paired,
)
from jaxpapers.experiments._timing import Timer

__all__ = [
    "Checkpointer",
    "Comparison",
    "Estimate",
    "METHODS",
    "Method",
    "Row",
    "RunContext",
    "RunResult",
    "SCHEMA",
    "Timer",
    "VERDICTS",
    "agree",
    "compare",
    "config_hash",
    "diff_results",
    "enable_compile_cache",
    "estimate",
    "format_value",
    "implemented",
    "load_results",
    "paired",
    "pyplot",
    "reproduce",
    "runner",
    "save_figure",
    "scales",
    "train_loop",
    "write_report",
]
