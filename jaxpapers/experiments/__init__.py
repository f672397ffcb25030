"""Experiment registry: one headline experiment per method, shared by the CLI and notebooks.

A method's runner is a module ``jaxpapers.<package>._reproduce`` that defines::

    def run(ctx: RunContext) -> RunResult

The registry finds it by import; a method whose runner module does not exist yet is listed as
"planned". :func:`reproduce` times the run and writes ``results.json`` and ``report.md`` under
``ctx.out_dir`` (the runner writes its PNG plots there too and lists them in ``RunResult.plots``).
"""

from jaxpapers.experiments._registry import (
    METHODS,
    Method,
    RunContext,
    RunResult,
    implemented,
    reproduce,
)
from jaxpapers.experiments._report import write_report

__all__ = ["METHODS", "Method", "RunContext", "RunResult", "implemented", "reproduce",
           "write_report"]
