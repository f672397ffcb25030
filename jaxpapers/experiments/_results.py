"""Table rows, run results, the ``results.json`` schema, the reproduce driver and a results diff.

``results.json`` has the same schema for every method (``SCHEMA``)::

    {"schema": "jaxpapers.results/1",
     "method", "experiment", "scale", "seed",
     "config":  {...},                 # the scale's dataclass (+ runner extras), JSON values
     "metrics": {...},                 # method-specific nested dicts of numbers
     "table":   [ROW, ...],
     "verdict": {"summary": str, "held": int, "tie": int, "reversed": int},
     "paper":   {...},                 # the paper's numbers/claims where known, with provenance
     "plots": [file names], "notes": [str],
     "device", "num_devices", "num_processes", "jax_version", "jaxpapers_version",
     "wall_s", "compile_s"}

    ROW = {"section": str, "quantity": str, "unit": str,
           "ours":  NUMBER | ESTIMATE | null,
           "paper": NUMBER | ESTIMATE | str | null,   # a string states a claim in words
           "comparison": {"claim", "better", "verdict", "difference", "se", "z", "threshold",
                          "paired"} | null,
           "note": str}
    ESTIMATE = {"mean": float, "se": float | null, "n": int, "median"?: float}

Numbers stay numbers: ``report.md`` does all formatting.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from typing import Any

from jaxpapers._src.jsonify import jsonify
from jaxpapers.experiments._context import RunContext
from jaxpapers.experiments._stats import VERDICTS, Comparison, Estimate

__all__ = ["SCHEMA", "Row", "RunResult", "reproduce", "diff_results", "load_results"]

SCHEMA = "jaxpapers.results/1"


@dataclasses.dataclass(frozen=True)
class Row:
    """One line of the results table: our number beside the paper's, and the claim's verdict.

    Attributes:
      quantity: what is measured, in words.
      ours: our value: an :class:`Estimate`, a number, or None when not measured.
      paper: the paper's number (or :class:`Estimate`), or its claim in words, or None.
      unit: unit of ``ours`` and ``paper`` ("" for dimensionless).
      comparison: the claim tested on our data (:func:`compare`, :func:`paired`, :func:`agree`).
      note: free text (settings, caveats).
      section: a heading to group rows in the report.
    """

    quantity: str
    ours: Estimate | float | int | None
    paper: Estimate | float | int | str | None = None
    unit: str = ""
    comparison: Comparison | None = None
    note: str = ""
    section: str = ""

    def __post_init__(self):
        for name in ("ours", "paper"):
            value = getattr(self, name)
            if isinstance(value, bool) or not (
                    value is None or isinstance(value, (Estimate, int, float))
                    or (name == "paper" and isinstance(value, str))):
                raise ValueError(f"Row.{name} must be a number or an Estimate"
                                 + (" or a claim in words" if name == "paper" else "")
                                 + f"; got {value!r} for {self.quantity!r}")

    def to_json(self) -> dict[str, Any]:
        return {"section": self.section, "quantity": self.quantity, "unit": self.unit,
                "ours": jsonify(self.ours), "paper": jsonify(self.paper),
                "comparison": jsonify(self.comparison), "note": self.note}


@dataclasses.dataclass
class RunResult:
    """What a runner returns to :func:`reproduce`.

    Attributes:
      experiment: what was run, in words.
      metrics: method-specific nested dicts of numbers (results.json's ``metrics``).
      table: the :class:`Row` s of the report.
      summary: one sentence on the paper's claims at this scale, in the verdict vocabulary; the
        verdict counts are added from the rows' comparisons.
      paper: the paper's numbers and where they come from.
      config: the runner's settings beyond the scale's dataclass.
      plots: paths of the PNGs written (:func:`save_figure`).
      notes: free-text notes for the report.
    """

    experiment: str
    metrics: dict[str, Any]
    table: list[Row]
    summary: str
    paper: dict[str, Any] = dataclasses.field(default_factory=dict)
    config: dict[str, Any] = dataclasses.field(default_factory=dict)
    plots: list[str] = dataclasses.field(default_factory=list)
    notes: list[str] = dataclasses.field(default_factory=list)


def _verdict_counts(table: list[Row]) -> dict[str, int]:
    counts = dict.fromkeys(VERDICTS, 0)
    for row in table:
        if row.comparison is not None:
            counts[row.comparison.verdict] += 1
    return counts


def reproduce(name: str, ctx: RunContext) -> dict[str, Any]:
    """Run ``name``'s headline experiment at ``ctx.scale``; write results.json, report.md.

    Only process 0 writes (with several processes every process runs the experiment, as SPMD
    programs must).

    Args:
      name: a method of :data:`METHODS`.
      ctx: the run's :class:`RunContext` (scale, seed, devices, output folder).

    Returns:
      The results dictionary, as written to ``results.json`` (schema :data:`SCHEMA`).

    Raises:
      ValueError: unknown or unimplemented method, or a scale the method does not declare.
    """
    import jax

    import jaxpapers
    from jaxpapers.experiments._registry import METHODS, runner
    from jaxpapers.experiments._report import write_report
    from jaxpapers.sharding import is_primary

    module = runner(name)
    if ctx.scale not in module.SCALES:
        raise ValueError(f"{name} has no scale {ctx.scale!r}; choose from: "
                         + ", ".join(module.SCALES))
    config = module.SCALES[ctx.scale]
    if ctx.method != name:
        ctx = dataclasses.replace(ctx, method=name, timer=ctx.timer)
    os.makedirs(ctx.out_dir, exist_ok=True)
    start = time.perf_counter()
    result: RunResult = module.run(ctx, config)
    wall_s = time.perf_counter() - start
    if not isinstance(result, RunResult) or not all(isinstance(r, Row) for r in result.table):
        raise TypeError(f"{name}'s runner must return a RunResult whose table holds Rows")
    from jaxpapers._src.bench import device_name

    counts = _verdict_counts(result.table)
    results = {
        "schema": SCHEMA,
        "method": name,
        "experiment": result.experiment,
        "scale": ctx.scale,
        "seed": ctx.seed,
        "config": jsonify({**dataclasses.asdict(config), **result.config}),
        "metrics": jsonify(result.metrics),
        "table": [row.to_json() for row in result.table],
        "verdict": {"summary": result.summary, **counts},
        "paper": jsonify(result.paper),
        "plots": [os.path.basename(p) for p in result.plots],
        "notes": list(result.notes),
        "device": device_name(),
        "num_devices": ctx.num_devices,
        "num_processes": jax.process_count(),
        "jax_version": jax.__version__,
        "jaxpapers_version": jaxpapers.__version__,
        "wall_s": round(wall_s, 3),
        "compile_s": round(ctx.timer.compile_s, 3),
    }
    if is_primary():
        with open(ctx.path("results.json"), "w") as f:
            json.dump(results, f, indent=1)
        write_report(ctx.path("report.md"), METHODS[name], results)
    return results


def load_results(path: str) -> dict[str, Any]:
    """Read a ``results.json`` (or the one inside a run folder) and check its schema.

    Args:
      path: a ``results.json`` file or the folder holding one.

    Returns:
      The results dictionary.

    Raises:
      OSError: the file cannot be read.
      ValueError: the file is not JSON, not a results object, or of another schema; the message
        starts with the file's path.
    """
    if os.path.isdir(path):
        path = os.path.join(path, "results.json")
    with open(path) as f:
        try:
            results = json.load(f)
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}: not JSON ({err.msg} at line {err.lineno} column "
                             f"{err.colno})") from None
        except UnicodeDecodeError:
            raise ValueError(f"{path}: not a text file") from None
    if not isinstance(results, dict):
        raise ValueError(f"{path}: expected a results object, got a JSON "
                         f"{type(results).__name__}")
    if results.get("schema") != SCHEMA:
        raise ValueError(f"{path}: schema {results.get('schema')!r} is not {SCHEMA!r}")
    for field in ("method", "scale"):
        if not isinstance(results.get(field), str):
            raise ValueError(f"{path}: no {field!r} field")
    return results


def _flatten(value: Any, prefix: str, out: dict[str, Any]) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _flatten(v, f"{prefix}.{k}" if prefix else str(k), out)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _flatten(v, f"{prefix}[{i}]", out)
    else:
        out[prefix] = value


_TIMING_KEYS = ("wall_s", "compile_s", "seconds", "timings", "_s")


def diff_results(a: dict[str, Any], b: dict[str, Any], *, rtol: float = 0.0,
                 include_timing: bool = False) -> list[tuple[str, Any, Any]]:
    """Differences between two results dictionaries: ``[(path, value_a, value_b)]``.

    Compares ``config``, ``metrics`` and ``table`` leaf by leaf (table rows are matched by
    section and quantity). Numbers within ``rtol`` count as equal; timings (keys ending in
    ``_s``, ``seconds``, ``timings``) are skipped unless ``include_timing``.

    Args:
      a: a results dictionary (:func:`load_results`).
      b: another, of the same method and scale.
      rtol: relative tolerance for numbers (0: bitwise equal).
      include_timing: compare the timings too.

    Returns:
      ``[(path, value_a, value_b)]`` sorted by path; a leaf missing on one side is
      ``"<missing>"``. Empty when the runs agree.

    Example:
      >>> from jaxpapers.experiments import diff_results
      >>> diff_results({"metrics": {"x": 1.0, "wall_s": 3}}, {"metrics": {"x": 1.5, "wall_s": 4}})
      [('metrics.x', 1.0, 1.5)]
    """
    def leaves(results):
        out: dict[str, Any] = {}
        _flatten({"config": results.get("config", {}), "metrics": results.get("metrics", {})},
                 "", out)
        for row in results.get("table", []):
            _flatten(row, f"table[{row.get('section', '')}|{row.get('quantity')}]", out)
        return out

    def is_timing(path):
        return any(part.endswith(_TIMING_KEYS) or part in _TIMING_KEYS
                   for part in path.replace("[", ".").split("."))

    la, lb = leaves(a), leaves(b)
    found = []
    for path in sorted(set(la) | set(lb)):
        if not include_timing and is_timing(path):
            continue
        va, vb = la.get(path, "<missing>"), lb.get(path, "<missing>")
        if va == vb:
            continue
        numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (va, vb))
        if numeric and math.isclose(va, vb, rel_tol=rtol, abs_tol=0.0):
            continue
        found.append((path, va, vb))
    return found
