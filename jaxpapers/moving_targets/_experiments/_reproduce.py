"""Runner: ``jaxpapers reproduce moving_targets [--scale smoke|quick|cpu|paper]``.

The delay ("100-step context") task of Rohwer (1990) and [TT]'s protocol: every method from the
same random initial weights per seed (seeds vmapped in one compiled program per cell), a cap of
``budget`` gradient evaluations (line searches included), success when the freely running
network's max target error is below 0.1. Reported per method and delay: success count, median
evaluations to success, free-run and one-step errors, max ``|W|``; claims tested with paired
comparisons over seeds. ``cpu`` adds D = 25, 50, the variants tried beyond the paper and the
limit-cycle and parity tasks; ``paper`` (an accelerator) adds hidden sizes, hundreds of seeds and
the segment-length (multiple-shooting) ablation.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from jaxpapers.experiments import (
    Estimate,
    Row,
    RunContext,
    RunResult,
    compare,
    estimate,
    paired,
    pyplot,
    save_figure,
)
from jaxpapers.moving_targets._experiments._cells import (
    TASK_THRESHOLDS,
    CellKey,
    CellSettings,
    method_config,
    run_cell,
)

PAPER_METHODS = ("MT-varpro", "MT-joint", "MT-alternating", "BPTT-LBFGS", "BPTT-Adam", "random",
                 "hybrid")
BEYOND = ("MT-varpro curvature", "MT-varpro margin", "MT-varpro alpha=1",
          "MT-varpro constant init", "MT-joint alpha=1", "MT-varpro restarts",
          "BPTT-LBFGS restarts", "MT-varpro don't-care", "random [-100, 100]")


@dataclasses.dataclass(frozen=True)
class MTScale:
    """Sizes of the moving-targets reproduction.

    Attributes:
      delays: delay-task sizes ``D``.
      hidden: hidden-node counts ``H`` (every delay is run at every ``H``).
      seeds: random initial conditions per cell ([TT]: 10).
      budget: gradient evaluations per run ([TT]: 10,000).
      methods: method names (see ``_cells.METHODS``; ``"MT-shooting K=<k>"`` for the segment
        ablation).
      beyond: methods beyond the paper, run at ``beyond_delays`` and ``hidden[0]``.
      beyond_delays: delays for ``beyond``.
      beyond_hidden: extra hidden sizes at which MT-varpro, BPTT and the hybrid are run at
        ``beyond_delays``.
      tasks: other tasks (``"limit_cycle"``, ``"parity"``) for MT-varpro, BPTT-LBFGS, hybrid
        and random search.
      segments: segment lengths of the multiple-shooting ablation at the largest delay.
      check_every: iterations between free-run checks.
      chunk: checks per checkpointed chunk.
    """

    delays: tuple[int, ...]
    hidden: tuple[int, ...] = (3,)
    seeds: int = 10
    budget: int = 10_000
    methods: tuple[str, ...] = PAPER_METHODS
    beyond: tuple[str, ...] = ()
    beyond_delays: tuple[int, ...] = ()
    beyond_hidden: tuple[int, ...] = ()
    tasks: tuple[str, ...] = ()
    segments: tuple[int, ...] = ()
    check_every: int = 10
    chunk: int = 100

    def __post_init__(self):
        for name in ("seeds", "budget", "check_every", "chunk"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"MTScale.{name} must be a positive int; got {value!r}")
        if self.seeds < 2:
            raise ValueError(f"MTScale.seeds must be >= 2 (standard errors); got {self.seeds}")
        for name in ("delays", "hidden", "beyond_delays", "beyond_hidden", "segments"):
            if any(isinstance(v, bool) or not isinstance(v, int) or v < 1
                   for v in getattr(self, name)):
                raise ValueError(f"MTScale.{name} must hold positive ints; got "
                                 f"{getattr(self, name)}")
        if not self.delays:
            raise ValueError("MTScale.delays needs at least one delay")
        for name in self.methods + self.beyond:
            method_config(name)
        for task in self.tasks:
            if task not in TASK_THRESHOLDS or task == "delay":
                raise ValueError(f"MTScale.tasks: unknown task {task!r}; choose from "
                                 "limit_cycle, parity")


CORE = ("MT-varpro", "MT-joint", "BPTT-LBFGS", "random", "hybrid")

SCALES = {
    "smoke": MTScale(delays=(3,), hidden=(2,), seeds=2, budget=60, check_every=5, chunk=13,
                     methods=("MT-varpro", "BPTT-LBFGS")),
    # minutes on 2 CPU cores: the budget is 3,000 evaluations, not [TT]'s 10,000
    "quick": MTScale(delays=(10, 100), budget=3000, methods=CORE),
    # about 20 minutes on 2 CPU cores: quick's cells (same seeds and budget: `--resume` in
    # quick's folder reuses them), D = 25 and 50, and the variants beyond the paper at D = 100
    "cpu": MTScale(delays=(10, 25, 50, 100), budget=3000, methods=CORE,
                   beyond=("MT-varpro alpha=1", "MT-joint alpha=1", "MT-varpro constant init",
                           "MT-varpro don't-care", "MT-varpro curvature", "MT-varpro margin",
                           "MT-varpro restarts", "BPTT-LBFGS restarts", "random [-100, 100]"),
                   beyond_delays=(100,), beyond_hidden=(8,)),
    # an accelerator: hundreds of seeds, hidden sizes, [TT]'s budget and the segment ablation
    "paper": MTScale(delays=(10, 25, 50, 100, 200), hidden=(3, 8, 16), seeds=256,
                     beyond=BEYOND, beyond_delays=(25, 50, 100, 200), beyond_hidden=(32,),
                     tasks=("limit_cycle", "parity"), segments=(1, 2, 5, 10, 25, 50, 100, 202)),
}

PAPER = {
    "source": "Rohwer, 'The Moving Targets Training Algorithm', NIPS 2 (1990), pp. 558-565; "
              "Rohwer, 'Time Trials on Second-Order and Variable-Learning-Rate Algorithms', "
              "NIPS 3 (1991) [TT] for the protocol",
    "protocol": "[TT]: 10 random initial conditions per method and problem, cap 10,000 "
                "gradient evaluations, success = free-running max target error < 10% "
                "(100-step problem) or < 5% (limit cycle)",
    "delay_100_run": {"E": 2.2328e-11, "e": 9.9778e-04, "line_searches": 4414,
                      "gradient_evaluations": 9751, "error_evaluations": 9043,
                      "cpu_seconds_1989": 3942,
                      "note": "the figure log of the one 100-step run shown (Fig. 3); no "
                              "success rate, no BPTT comparison in NIPS 2"},
    "claims": ["moving targets can train a network to react to a pulse 100 steps earlier",
               "more complex problems of the 100-step type often stick in local minima"],
}


def _cells(scale: MTScale) -> list[CellKey]:
    cells = [CellKey("delay", d, h, m) for d in scale.delays for h in scale.hidden
             for m in scale.methods]
    h0 = scale.hidden[0]
    cells += [CellKey("delay", d, h0, m) for d in scale.beyond_delays for m in scale.beyond]
    cells += [CellKey("delay", d, h, m) for d in scale.beyond_delays for h in scale.beyond_hidden
              for m in ("MT-varpro", "BPTT-LBFGS", "hybrid")]
    for task in scale.tasks:
        cells += [CellKey(task, 0, 2 if task == "limit_cycle" else h0, m)
                  for m in ("MT-varpro", "BPTT-LBFGS", "hybrid", "random")]
    if scale.segments:
        d = max(scale.delays)
        cells += [CellKey("delay", d, h0, f"MT-shooting K={k}") for k in scale.segments]
    seen, unique = set(), []
    for cell in cells:
        if cell not in seen:
            seen.add(cell)
            unique.append(cell)
    return unique


def _median_or_none(values: np.ndarray) -> float | None:
    return float(np.median(values)) if values.size else None


def _cell_metrics(result: dict) -> dict:
    e2s = result["evals_to_success"]
    ok = result["success"].astype(bool)
    return {
        "successes": int(ok.sum()),
        "seeds": int(ok.size),
        "median_evals_to_success": _median_or_none(e2s[ok]),
        "evals_to_success": e2s.tolist(),
        "evals": result["evals"].tolist(),
        "free_run_error": result["free_run_error"].tolist(),
        "one_step_error": result["one_step_error"].tolist(),
        "max_abs_weight": result["max_abs_weight"].tolist(),
        "restarts": result["restarts"].tolist(),
    }


def _label(cell: CellKey) -> str:
    if cell.task == "delay":
        return f"D={cell.size}, H={cell.hidden}: {cell.method}"
    return f"{cell.task}, H={cell.hidden}: {cell.method}"


def _rows(results: dict[CellKey, dict], scale: MTScale) -> tuple[list[Row], dict]:
    rows: list[Row] = []
    found: dict = {}
    for cell, r in results.items():
        section = (f"Delay task D = {cell.size}, H = {cell.hidden}" if cell.task == "delay"
                   else f"{cell.task.replace('_', ' ').capitalize()} task, H = {cell.hidden}")
        ok = r["success"].astype(bool)
        n = ok.size
        paper = None
        if cell.task == "delay" and cell.size == 100 and cell.method.startswith("MT"):
            paper = "solved in the one run shown (9751 gradient evaluations)"
        rows.append(Row(f"{cell.method}: successes of {n}", int(ok.sum()), paper, section=section,
                        note=f"free-run max error < {TASK_THRESHOLDS[cell.task]}; budget "
                             f"{scale.budget} gradient evaluations"))
        if ok.any():
            e2s = r["evals_to_success"][ok]
            rows.append(Row(f"{cell.method}: evaluations to success", estimate(e2s),
                            9751 if paper else None, section=section,
                            note=f"mean ± s.e. over the {int(ok.sum())} successful seeds; "
                                 f"median {float(np.median(e2s)):.0f}"))
        rows.append(Row(f"{cell.method}: free-run max error", estimate(r["free_run_error"]),
                        section=section))
        one_step, free = r["one_step_error"], r["free_run_error"]
        comparison = None
        if cell.method.startswith("MT") and n > 1:
            comparison = paired(one_step, free, better="lower",
                                claim="one-step error below free-run error (H3)")
            found.setdefault("h3", []).append(comparison.verdict)
        rows.append(Row(f"{cell.method}: one-step max error", estimate(one_step),
                        section=section, comparison=comparison))
        rows.append(Row(f"{cell.method}: max |W|", estimate(r["max_abs_weight"]),
                        section=section))
    # the headline comparisons at every delay, paired by seed (same initial weights)
    for d in scale.delays:
        h = scale.hidden[0]
        mt = results.get(CellKey("delay", d, h, "MT-varpro"))
        if mt is None:
            continue
        section = f"Claims at D = {d}, H = {h} (paired by seed: same initial weights)"
        mt_ok = mt["success"].astype(float)
        rows.append(Row("MT-varpro success rate", estimate(mt_ok),
                        "> 0 (the paper's one run)" if d == 100 else None, section=section,
                        comparison=compare(estimate(mt_ok), 0.0, better="higher",
                                           claim="MT solves the task in some seeds (H2)"),
                        note="tie with a zero rate means: no success seen; not a disproof"))
        found.setdefault("mt_solves", {})[d] = int(mt_ok.sum())
        for other in ("BPTT-LBFGS", "BPTT-Adam", "random", "hybrid", "MT-joint",
                      "MT-alternating"):
            r = results.get(CellKey("delay", d, h, other))
            if r is None:
                continue
            other_ok = r["success"].astype(float)
            claim = f"MT-varpro succeeds more often than {other}"
            rows.append(Row(f"success: MT-varpro − {other}", estimate(mt_ok - other_ok),
                            "MT solves long delays, BPTT does not (implied; no numbers)"
                            if other.startswith("BPTT") and d == 100 else None,
                            section=section,
                            comparison=paired(mt_ok, other_ok, better="higher", claim=claim)))
            found.setdefault("vs", {})[(d, other)] = (int(mt_ok.sum()), int(other_ok.sum()))
    return rows, found


def _best_of(results, d, h, names):
    best = None
    for name in names:
        r = results.get(CellKey("delay", d, h, name))
        if r is not None and (best is None or r["success"].sum() > best[1]):
            best = (name, int(r["success"].sum()))
    return best


def _summary(results: dict[CellKey, dict], scale: MTScale) -> str:
    h = scale.hidden[0]
    parts = []
    for d in scale.delays:
        count = lambda name, d=d: (int(results[CellKey("delay", d, h, name)]["success"].sum())
                                   if CellKey("delay", d, h, name) in results else None)
        mt, bptt, rnd = count("MT-varpro"), count("BPTT-LBFGS"), count("random")
        words = f"D = {d}: MT-varpro {mt}/{scale.seeds}"
        if bptt is not None:
            words += f", BPTT-LBFGS {bptt}/{scale.seeds}"
        if rnd is not None:
            words += f", random search {rnd}/{scale.seeds}"
        others = [n for n in scale.methods if n not in ("MT-varpro", "BPTT-LBFGS", "random")]
        best = _best_of(results, d, h, others)
        if best:
            words += f" (best other: {best[0]} {best[1]}/{scale.seeds})"
        parts.append(words)
    d_max = max(scale.delays)
    mt_max = results.get(CellKey("delay", d_max, h, "MT-varpro"))
    solved = mt_max is not None and mt_max["success"].any()
    text = "; ".join(parts) + (f". MT-varpro {'solved' if solved else 'did not solve'} D = "
                               f"{d_max} in any seed within {scale.budget} gradient evaluations")
    if mt_max is not None:
        rivals = {}
        for name in ("BPTT-LBFGS", "random"):
            r = results.get(CellKey("delay", d_max, h, name))
            if r is not None:
                rivals[name] = int(r["success"].sum())
        mt_n = int(mt_max["success"].sum())
        if rivals:
            verdict = ", ".join(
                f"{'beat' if mt_n > v else 'did not beat'} {k} ({mt_n} vs {v})"
                for k, v in rivals.items())
            text += f"; it {verdict} (paired verdicts in the table)"
    beyond = [c for c in results if c.method in BEYOND and c.size == d_max]
    if beyond:
        best = max(beyond, key=lambda c: results[c]["success"].sum())
        text += (f". Beyond the paper at D = {d_max}: best variant {best.method} "
                 f"{int(results[best]['success'].sum())}/{scale.seeds}")
    return text + "."


def _plots(ctx: RunContext, results: dict[CellKey, dict], scale: MTScale) -> list[str]:
    plt = pyplot()
    paths = []
    h = scale.hidden[0]
    methods = [m for m in scale.methods]
    fig, ax = plt.subplots(figsize=(max(6, 1.2 * len(methods)), 3.6))
    width = 0.8 / len(scale.delays)
    for j, d in enumerate(scale.delays):
        counts = [int(results[CellKey("delay", d, h, m)]["success"].sum())
                  if CellKey("delay", d, h, m) in results else 0 for m in methods]
        ax.bar(np.arange(len(methods)) + j * width, counts, width, label=f"D = {d}")
    ax.set_xticks(np.arange(len(methods)) + width * (len(scale.delays) - 1) / 2)
    ax.set_xticklabels(methods, rotation=20, fontsize=8)
    ax.set_ylabel(f"successes of {scale.seeds} seeds")
    ax.set_ylim(0, scale.seeds)
    ax.set_title(f"Delay task, H = {h}, budget {scale.budget} gradient evaluations")
    ax.legend(fontsize=8)
    paths.append(save_figure(ctx, fig, "success_counts.png"))

    fig, axes = plt.subplots(1, len(scale.delays), figsize=(4.2 * len(scale.delays), 3.6),
                             squeeze=False)
    for ax, d in zip(axes[0], scale.delays, strict=True):
        for m in methods:
            r = results.get(CellKey("delay", d, h, m))
            if r is None:
                continue
            ax.scatter(r["free_run_error"], r["one_step_error"], s=14, label=m)
        ax.axvline(TASK_THRESHOLDS["delay"], color="gray", ls="--", lw=0.8)
        ax.plot([1e-4, 1], [1e-4, 1], color="gray", lw=0.5)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("free-run max error")
        ax.set_ylabel("one-step max error")
        ax.set_title(f"D = {d}", fontsize=9)
    axes[0][0].legend(fontsize=6)
    paths.append(save_figure(ctx, fig, "one_step_vs_free_run.png"))

    fig, axes = plt.subplots(1, len(scale.delays), figsize=(4.2 * len(scale.delays), 3.4),
                             squeeze=False)
    for ax, d in zip(axes[0], scale.delays, strict=True):
        for m in methods:
            r = results.get(CellKey("delay", d, h, m))
            if r is None:
                continue
            evals, err = r["curve_evals"], r["curve_error"]
            best = np.minimum.accumulate(err, axis=0)
            grid = np.linspace(0, scale.budget, 60)
            med = np.median([np.interp(grid, evals[:, i], best[:, i])
                             for i in range(evals.shape[1])], axis=0)
            ax.plot(grid, med, label=m)
        ax.axhline(TASK_THRESHOLDS["delay"], color="gray", ls="--", lw=0.8)
        ax.set_yscale("log")
        ax.set_xlabel("gradient evaluations")
        ax.set_ylabel("best free-run error (median of seeds)")
        ax.set_title(f"D = {d}", fontsize=9)
    axes[0][0].legend(fontsize=6)
    paths.append(save_figure(ctx, fig, "learning_curves.png"))

    if len(scale.delays) > 2:
        fig, ax = plt.subplots(figsize=(6, 3.6))
        for m in methods:
            counts = [int(results[CellKey("delay", d, h, m)]["success"].sum())
                      for d in scale.delays if CellKey("delay", d, h, m) in results]
            ax.plot(list(scale.delays)[:len(counts)], counts, marker="o", label=m)
        ax.set_xscale("log")
        ax.set_xlabel("delay D")
        ax.set_ylabel(f"successes of {scale.seeds}")
        ax.legend(fontsize=7)
        paths.append(save_figure(ctx, fig, "success_vs_delay.png"))
    return paths


def run(ctx: RunContext, scale: MTScale) -> RunResult:
    import jax

    with jax.enable_x64(True):
        return _run(ctx, scale)


def _run(ctx: RunContext, scale: MTScale) -> RunResult:
    import jax
    import jax.numpy as jnp

    settings = CellSettings(scale.budget, scale.check_every, scale.chunk)
    seed_keys = jax.random.split(jax.random.key(ctx.seed), scale.seeds)
    results: dict[CellKey, dict] = {}
    for cell in ctx.progress(_cells(scale), desc="moving_targets cells"):
        result = run_cell(ctx, seed_keys, cell, settings, jnp.float64)
        result.pop("state")
        results[cell] = result
    rows, _ = _rows(results, scale)
    metrics: dict = {"cells": {}}
    for cell, r in results.items():
        node = metrics["cells"].setdefault(cell.task, {}).setdefault(str(cell.size), {})
        node.setdefault(f"H{cell.hidden}", {})[cell.method] = _cell_metrics(r)
    notes = [
        "Same initial weights per seed for every method (the moving targets start on the free "
        "run of those weights); budgets count value-and-gradient evaluations, line-search "
        "trials included; random search counts one free run per candidate; the alternating "
        "trainer counts each weight solve as one evaluation.",
        f"Successes are checked every {scale.check_every} iterations: evaluations to success "
        "are known to that resolution.",
        "Float64 throughout (in float32 the Wolfe line search stalls early on these problems).",
        "Paired verdicts on success indicators need several successes to resolve; with 10 "
        "seeds a 0 vs 0 comparison is a tie by construction.",
    ]
    return RunResult(
        experiment="delay ('100-step context') task: moving targets vs BPTT vs random search at "
                   "equal gradient-evaluation budgets",
        metrics=metrics, table=rows, summary=_summary(results, scale), paper=PAPER,
        config={"methods_config": {m: method_config(m) for m in
                                   sorted({c.method for c in results})}},
        plots=_plots(ctx, results, scale), notes=notes)


__all__ = ["SCALES", "MTScale", "run", "Estimate"]
