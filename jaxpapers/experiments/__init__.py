"""The experiment kit every reproduction runner is built on.

A runner is a module that declares its scales and one function::

    SCALES = {"smoke": MyScale(...), "quick": MyScale(...), "paper": MyScale(...)}  # frozen

    def run(ctx: RunContext, config: MyScale) -> RunResult: ...

and is listed in :data:`METHODS`. :func:`reproduce` validates the scale, runs it, and writes
``results.json`` (one schema for every method, see :data:`SCHEMA`) and ``report.md``. A runner
uses :mod:`~jaxpapers.experiments.stats` for numbers and verdicts, :class:`Row` and
:class:`RunResult` for the table, the :class:`RunContext` for devices, time, checkpoints and
progress, :func:`train_loop` for training and :mod:`~jaxpapers.experiments.report` for plots;
:mod:`~jaxpapers.experiments.bench` is the benchmarks' harness. The documentation's
"Experiments" page has the whole tour.
"""

from jaxpapers._src.checkpoint import Checkpointer, config_hash
from jaxpapers._src.compile_cache import enable_compile_cache
from jaxpapers._src.training import train_loop
from jaxpapers.experiments import bench, report, stats
from jaxpapers.experiments._context import RunContext
from jaxpapers.experiments._registry import METHODS, Method, implemented, runner, scales
from jaxpapers.experiments._results import (
    SCHEMA,
    Row,
    RunResult,
    diff_results,
    load_results,
    reproduce,
)
from jaxpapers.experiments._timing import Timer

__all__ = [
    "Checkpointer",
    "METHODS",
    "Method",
    "Row",
    "RunContext",
    "RunResult",
    "SCHEMA",
    "Timer",
    "bench",
    "config_hash",
    "diff_results",
    "enable_compile_cache",
    "implemented",
    "load_results",
    "report",
    "reproduce",
    "runner",
    "scales",
    "stats",
    "train_loop",
]
