"""Method table, run context and the reproduce driver."""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import json
import os
import time
from typing import Any

__all__ = ["METHODS", "Method", "RunContext", "RunResult", "implemented", "reproduce"]

SCALES = ("quick", "paper", "smoke")  # smoke: tiny sizes for CI only


@dataclasses.dataclass(frozen=True)
class Method:
    name: str
    title: str
    paper: str
    runner: str  # module defining run(ctx) -> RunResult


METHODS: dict[str, Method] = {
    m.name: m
    for m in [
        Method("smc", "SMC resampling schemes (variance ordering on a linear-Gaussian filter)",
               "Douc, Cappé & Moulines 2005; used by Liu et al., CVPR 2024",
               "jaxpapers.smc._reproduce"),
        Method("meanfield", "Mean-field transformer SDE and synchronization by noise",
               "arXiv 2604.26898", "jaxpapers.meanfield._reproduce"),
        Method("bocvs", "Bayesian optimisation with cost-varying variable subsets",
               "Tay et al., NeurIPS 2023", "jaxpapers.bocvs._reproduce"),
        Method("diffusion_resampling", "Particle filtering during diffusion sampling",
               "Liu et al., CVPR 2024", "jaxpapers.diffusion_resampling._reproduce"),
        Method("xit", "XIT: multi-dataset contrastive time-series pretraining", "arXiv 2402.15404",
               "jaxpapers.xit._reproduce"),
        Method("expert_iteration", "Expert Iteration on Hex", "Anthony et al., NeurIPS 2017",
               "jaxpapers.expert_iteration._reproduce"),
        Method("moving_targets", "Moving Targets training of recurrent networks", "Rohwer, NIPS 2",
               "jaxpapers.moving_targets._reproduce"),
    ]
}


@dataclasses.dataclass(frozen=True)
class RunContext:
    """What a runner gets: where to write, how big, which seed, how many devices."""

    out_dir: str
    scale: str = "quick"
    seed: int = 0
    devices: int | None = None
    resume: bool = False
    show_progress: bool = True

    def __post_init__(self):
        if self.scale not in SCALES:
            raise ValueError(f"scale must be one of {SCALES}; got {self.scale!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed must be a non-negative integer; got {self.seed!r}")
        if self.devices is not None and self.devices < 1:
            raise ValueError(f"devices must be >= 1; got {self.devices}")

    def path(self, name: str) -> str:
        return os.path.join(self.out_dir, name)

    def mesh(self):
        """A 1-D ``data`` mesh over ``devices`` devices (all available when None)."""
        from jaxpapers._src.sharding import data_mesh

        return data_mesh(self.devices)


@dataclasses.dataclass
class RunResult:
    """What a runner returns.

    ``table`` rows are dicts with keys ``quantity``, ``ours``, ``paper`` and optionally ``note``;
    ``verdict`` is one line saying whether the paper's claim held at this scale.
    """

    experiment: str
    config: dict[str, Any]
    metrics: dict[str, Any]
    paper: dict[str, Any]
    table: list[dict[str, Any]]
    verdict: str
    plots: list[str] = dataclasses.field(default_factory=list)
    compile_s: float | None = None
    notes: list[str] = dataclasses.field(default_factory=list)


def implemented(name: str) -> bool:
    method = METHODS[name]
    try:
        return importlib.util.find_spec(method.runner) is not None
    except ModuleNotFoundError:
        return False


def _device_string() -> str:
    from jaxpapers._src.bench import device_name

    return device_name()


def reproduce(name: str, ctx: RunContext) -> dict[str, Any]:
    """Run ``name``'s headline experiment and write results.json and report.md; return results."""
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; choose from {sorted(METHODS)}")
    if not implemented(name):
        raise ValueError(f"method {name!r} is not implemented yet")
    import jax

    from jaxpapers.experiments._report import write_report

    os.makedirs(ctx.out_dir, exist_ok=True)
    runner = importlib.import_module(METHODS[name].runner)
    start = time.perf_counter()
    result: RunResult = runner.run(ctx)
    wall_s = time.perf_counter() - start
    results = {
        "method": name,
        "experiment": result.experiment,
        "scale": ctx.scale,
        "seed": ctx.seed,
        "config": result.config,
        "metrics": result.metrics,
        "paper": result.paper,
        "table": result.table,
        "verdict": result.verdict,
        "plots": [os.path.basename(p) for p in result.plots],
        "notes": result.notes,
        "device": _device_string(),
        "jax_version": jax.__version__,
        "wall_s": round(wall_s, 3),
        "compile_s": None if result.compile_s is None else round(result.compile_s, 3),
    }
    with open(ctx.path("results.json"), "w") as f:
        json.dump(results, f, indent=2, default=_json_default)
    write_report(ctx.path("report.md"), METHODS[name], results)
    return results


def _json_default(value: Any) -> Any:
    import numpy as np

    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)
