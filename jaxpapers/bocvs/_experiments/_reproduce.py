"""``jaxpapers reproduce bocvs``: simple regret vs budget of UCB-CVS (ETC) against the baselines.

Scales:
* ``smoke``: Hartmann-3, moderate costs, variance 0.02, budget 6, 2 seeds, UCB-PSQ and ETC-Ada,
  tiny optimiser (CI only).
* ``quick`` (2 CPU cores, minutes): Hartmann-3, moderate and expensive costs, variances 0.02 and
  0.08, budget 50, 10 seeds vmapped, methods UCB-PSQ, TS-PSQ, ETC-Ada, ETC-50. Reduced against
  the paper so that it fits a few minutes on 2 cores: ``N = 32`` samples in ``W`` (paper 1024),
  16 raw candidates + 2 restarts x 6 Adam steps per control set (paper: 100/10 000 warm-up +
  5 L-BFGS-B starts), 128 random Fourier features for TS (paper 1024), ``W_eval`` of 1024 rows.
  UCB-PSQ and TS-PSQ ignore costs and play the full set, so (as in the paper) they are run once
  per variance and shown in every cost panel.
* ``paper`` (one accelerator): GP sample and Hartmann-3, cheap/moderate/expensive costs, variances
  0.02/0.04/0.08, ``N = 1024``, 1024 random Fourier features, methods UCB-PSQ, TS-PSQ, ETC-50,
  ETC-100, ETC-Ada and the per-cost variants, 10 seeds. Optimiser: 256 raw candidates + 8
  restarts x 50 Adam steps per control set (1024 + 32 x 200 would cost about 40x
  more per round: ~1 min per round at n = 500 on an H100 in float64). Buffers hold 507 rounds;
  per-cost variants in the cheap regime (0.01 per partial query) would need thousands of rounds
  and stop with status ``buffer full`` before spending the budget (reported per run).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from jaxpapers.bocvs._metrics import commit_budget
from jaxpapers.experiments import Row, RunContext, RunResult
from jaxpapers.experiments.report import pyplot, save_figure
from jaxpapers.experiments.stats import Estimate, estimate, paired

__all__ = ["run", "SCALES", "ScaleConfig"]


@dataclasses.dataclass(frozen=True)
class ScaleConfig:
    problems: tuple[str, ...]
    regimes: tuple[str, ...]
    variances: tuple[float, ...]
    methods: tuple[str, ...]
    seeds: int
    budget: float
    num_samples: int
    num_eval_samples: int
    num_raw: int
    num_restarts: int
    num_steps: int
    num_features: int
    buckets: tuple[int, ...]
    #: the headline panel (Hartmann-3, moderate, first variance) again with an optimiser this
    #: many times stronger (candidates, restarts and Adam steps); 0: not run
    sensitivity_factor: int = 0
    #: seeds run together (vmapped) inside the compiled program, the groups one after another
    #: (``lax.map``); 0: all seeds in one ``vmap``. On a CPU one seed at a time is faster where
    #: seeds stop at different rounds (a vmapped loop runs until its last seed stops) and where
    #: large buffers outgrow the caches. Not part of the checkpoint key: how the seeds are
    #: grouped does not change what each run computes (up to float rounding).
    seed_batch: int = 0


SCALES = {
    "smoke": ScaleConfig(("hartmann3",), ("moderate",), (0.02,),
                         ("UCB-PSQ", "ETC-Ada", "EI-PSQ per cost"), 2, 6.0,
                         8, 64, 8, 1, 2, 32, (16, 64), sensitivity_factor=2),
    "quick": ScaleConfig(("hartmann3",), ("moderate", "expensive"), (0.02, 0.08),
                         ("UCB-PSQ", "TS-PSQ", "ETC-Ada", "ETC-50"), 10, 50.0,
                         32, 1024, 16, 2, 6, 128, (48, 96, 160)),
    "paper": ScaleConfig(("gp_sample", "hartmann3"), ("cheap", "moderate", "expensive"),
                         (0.02, 0.04, 0.08),
                         ("UCB-PSQ", "TS-PSQ", "ETC-50", "ETC-100", "ETC-Ada",
                          "UCB-PSQ per cost", "TS-PSQ per cost", "EI-PSQ per cost"), 10, 50.0,
                         1024, 4096, 256, 8, 50, 1024, (32, 64, 128, 256, 512)),
    # the quick settings over the paper's other panels (GP sample, cheap regime, every
    # baseline) and the optimiser-sensitivity repeat, one seed at a time; its batches took about
    # 3 hours on 2 CPU cores (the costliest: GP sample's EI-PSQ per cost, up to 512
    # observations x 32 RFF samples), so run it with --resume: each finished batch is saved
    "cpu-large": ScaleConfig(("hartmann3", "gp_sample"), ("cheap", "moderate", "expensive"),
                             (0.02,),
                             ("UCB-PSQ", "TS-PSQ", "ETC-50", "ETC-100", "ETC-Ada",
                              "UCB-PSQ per cost", "TS-PSQ per cost", "EI-PSQ per cost"), 10, 50.0,
                             32, 1024, 16, 2, 6, 128, (48, 96, 160, 320, 512),
                             sensitivity_factor=4, seed_batch=1),
}
COST_AGNOSTIC = ("UCB-PSQ", "TS-PSQ")
# Sanity ranges from an independent NumPy prototype (NOT the paper's figures, which could
# not be read): mean final simple regret at C = 50 on Hartmann-3.
PROTOTYPE = {
    ("moderate", 0.02): {"UCB-PSQ": "0.122 ± 0.076 (median 0.012)", "ETC-Ada": "0.0029 ± 0.0005",
                         "ETC-50": "0.004 ± 0.001 (3 seeds)"},
    ("moderate", 0.08): {"UCB-PSQ": "0.122 ± 0.076 (median 0.012)", "ETC-Ada": "0.002 (3 seeds)",
                         "ETC-50": "0.005 ± 0.004 (3 seeds)"},
    ("expensive", 0.02): {"UCB-PSQ": "0.122 ± 0.076 (median 0.012)",
                          "ETC-Ada": "0.32 ± 0.12 (median 0.015)",
                          "ETC-50": "0.091 (3 seeds, never commits)"},
    ("expensive", 0.08): {"UCB-PSQ": "0.122 ± 0.076 (median 0.012)",
                          "ETC-Ada": "0.16 ± 0.10 (median 0.008)",
                          "ETC-50": "0.645 ± 0.427 (3 seeds, never commits)"},
}


def _acquisition(method: str) -> str:
    return "ts" if method.startswith("TS") else ("ei" if method.startswith("EI") else "ucb")


def _policy(method: str, costs):
    from jaxpapers.bocvs import etc, etc_ada, ucb_psq, ucb_psq_per_cost

    m = len(costs)
    if method in ("UCB-PSQ", "TS-PSQ"):
        return ucb_psq(m)
    if method.endswith("per cost"):
        return ucb_psq_per_cost(m)
    if method == "ETC-Ada":
        return etc_ada(costs)
    if method.startswith("ETC-"):
        n = int(method.split("-")[1])
        return etc(m, (n, n))
    raise ValueError(f"unknown method {method!r}")


def _stats(values) -> Estimate:
    """Mean, s.e., median and n of the finite values (a stuck run can report inf/NaN)."""
    return estimate(values, drop_nonfinite=True)


def run(ctx: RunContext, sc: ScaleConfig) -> RunResult:
    import jax

    with jax.enable_x64(True):
        return _run(ctx, sc)


def _run(ctx: RunContext, sc: ScaleConfig) -> RunResult:
    import jax

    from jaxpapers.bocvs import BOConfig, OptimizerConfig, problem_spec, run_bo
    from jaxpapers.bocvs.metrics import cumulative_regret, final_simple_regret, simple_regret_curve
    from jaxpapers.bocvs.problems import make_problem

    opt = OptimizerConfig(sc.num_raw, sc.num_restarts, sc.num_steps, 0.1, 64)
    base = BOConfig(num_samples=sc.num_samples, num_eval_samples=sc.num_eval_samples,
                    optimizer=opt, buckets=sc.buckets, num_features=sc.num_features)
    keys = ctx.shard(jax.random.split(jax.random.key(ctx.seed), sc.seeds))
    compiled: dict = {}
    tasks = []
    for pname in sc.problems:
        for method in sc.methods:
            for regime in sc.regimes:
                for var in sc.variances:
                    if method in COST_AGNOSTIC and (regime, var) != (sc.regimes[0],
                                                                    sc.variances[0]):
                        continue  # cost-agnostic: one run per problem, shown in every panel
                    tasks.append((pname, method, regime, var))
    runs = {}
    grid = np.linspace(0.0, sc.budget, 501)
    problems = {}
    for pname, method, regime, var in ctx.progress(tasks, desc="bocvs runs"):
        if (pname, regime, var) not in problems:  # a GP-sample problem takes seconds to build
            problems[pname, regime, var] = make_problem(pname, regime, var, budget=sc.budget,
                                                        key=jax.random.key(1000 + ctx.seed))
        problem = problems[pname, regime, var]
        acq = _acquisition(method)
        cfg = base.replace(acquisition=acq)
        if (pname, acq) not in compiled:
            raw = _over_seeds(lambda k, s, p, cfg=cfg, obj=problem.objective:
                              run_bo(k, s, p, obj, cfg), sc.seed_batch)
            compiled[(pname, acq)] = (raw, ctx.timer.jit(raw))
        hist, seconds = _run_or_restore(
            ctx, f"{pname}-{method}-{regime}-{var:g}", dict(scale=_key_of(sc),
                                                            task=(pname, method, regime, var)),
            *compiled[(pname, acq)], (keys, problem_spec(problem),
                                      _policy(method, problem.costs)))
        f_star = problem.f_star
        runs[(pname, method, regime, var)] = dict(
            history=hist, f_star=f_star, seconds=seconds,
            final=final_simple_regret(hist, f_star),
            curve=simple_regret_curve(hist, f_star, grid),
            cum=cumulative_regret(hist, f_star)[0],
            commit=commit_budget(hist, [problem.num_sets - 1]))

    def get(pname, method, regime, var):
        if method in COST_AGNOSTIC:
            return runs[(pname, method, sc.regimes[0], sc.variances[0])]
        return runs[(pname, method, regime, var)]

    metrics, table = {}, []
    for pname in sc.problems:
        for regime in sc.regimes:
            for var in sc.variances:
                section = f"{pname}, {regime} costs, variance {var:g}: final simple regret S(C)"
                panel = metrics.setdefault(pname, {}).setdefault(regime, {}).setdefault(
                    f"{var:g}", {})
                for method in sc.methods:
                    r = get(pname, method, regime, var)
                    st = _stats(r["final"])
                    status = r["history"].status
                    panel[method] = dict(
                        final_simple_regret=st, per_seed=[float(v) for v in r["final"]],
                        cost_weighted_cumulative_regret=_stats(r["cum"]),
                        rounds=[int(v) for v in r["history"].num_rounds],
                        mean_commit_budget=float(np.mean(r["commit"])),
                        status=[int(v) for v in status], wall_s=round(r["seconds"], 2))
                    proto = PROTOTYPE.get((regime, var), {}).get(method) \
                        if pname == "hartmann3" else None
                    note = [f"NumPy prototype (not the paper): {proto}"] if proto else []
                    if method in COST_AGNOSTIC:
                        note.append("cost-agnostic run shared by all panels")
                    table.append(Row(method, st, "not read (figure values unavailable)",
                                     section=section, note="; ".join(note)))
                if "ETC-Ada" in sc.methods and "UCB-PSQ" in sc.methods:
                    table.append(_headline_row(get(pname, "ETC-Ada", regime, var)["final"],
                                               get(pname, "UCB-PSQ", regime, var)["final"],
                                               section, sc))
    summary = _summary(sc, get)
    if sc.sensitivity_factor and "hartmann3" in sc.problems and "moderate" in sc.regimes:
        table += _sensitivity(ctx, sc, base, keys, get, metrics)
    plots = _plots(ctx, sc, get, grid)
    notes = [
        f"scale {ctx.scale}: N={sc.num_samples} samples in W, W_eval {sc.num_eval_samples} rows, "
        f"{sc.num_raw} raw candidates + {sc.num_restarts} restarts x {sc.num_steps} Adam steps "
        f"per control set, {sc.num_features} RFF features for TS, {sc.seeds} seeds "
        f"(keys split from --seed {ctx.seed}), fixed GP hypers l=problem default, s2=1, "
        "lambda=1e-4, beta=2, float64.",
        "S(c) = f* - best F_i(x_hat) among rounds paid by budget c, F estimated with a separate "
        "W_eval (not the acquisition's W).",
        "The ETC-Ada vs UCB-PSQ comparison is paired over seeds (each seed's key is shared by "
        "both methods) on log10 of the final simple regret: regret spans orders of magnitude, "
        "and a few stuck runs would otherwise decide a difference of means.",
    ]
    config = dict(beta=2.0, noise_variance=1e-4, num_init=5, devices=ctx.num_devices)
    paper = {"source": "Tay et al., NeurIPS 2023 (figure values not read)",
             "claim": "UCB-CVS (ETC schedules) finds better solutions than cost-agnostic "
                      "baselines with the same budget [abstract]",
             "prototype_sanity_ranges_not_paper": {f"{k[0]}/{k[1]}": v
                                                   for k, v in PROTOTYPE.items()}}
    return RunResult(experiment="simple regret vs budget, Hartmann-3 / GP sample",
                     metrics=metrics, table=table, summary=summary, paper=paper, config=config,
                     plots=plots, notes=notes)


def _sensitivity(ctx, sc: ScaleConfig, base, keys, get, metrics) -> list[Row]:
    """The headline panel again with a stronger acquisition optimiser: does any verdict move?"""

    from jaxpapers.bocvs import OptimizerConfig, problem_spec, run_bo
    from jaxpapers.bocvs.metrics import final_simple_regret
    from jaxpapers.bocvs.problems import make_problem

    f = sc.sensitivity_factor
    var = sc.variances[0]
    strong = base.replace(optimizer=OptimizerConfig(sc.num_raw * f, sc.num_restarts * f,
                                                    sc.num_steps * f, 0.1, 64))
    problem = make_problem("hartmann3", "moderate", var, budget=sc.budget)
    raw = _over_seeds(lambda k, s, p: run_bo(k, s, p, problem.objective, strong),
                      sc.seed_batch)
    fn = ctx.timer.jit(raw)
    final = {}
    for method in ("UCB-PSQ", "ETC-Ada"):
        hist, _ = _run_or_restore(
            ctx, f"sensitivity-x{f}-{method}", dict(scale=_key_of(sc),
                                                    task=("sensitivity", f, method)),
            raw, fn, (keys, problem_spec(problem), _policy(method, problem.costs)))
        final[method] = final_simple_regret(hist, problem.f_star)
    section = (f"Sensitivity: hartmann3, moderate costs, variance {var:g}, optimiser x{f} "
               f"({sc.num_raw * f} candidates + {sc.num_restarts * f} restarts x "
               f"{sc.num_steps * f} Adam steps)")
    rows = []
    for method, values in final.items():
        before = get("hartmann3", method, "moderate", var)["final"]
        rows.append(Row(f"{method}: final S(C), stronger optimiser", _stats(values),
                        section=section,
                        note=f"quick optimiser: {np.mean(before):.3g} (median "
                             f"{np.median(before):.3g}); seeds stuck above 0.1: "
                             f"{int(np.sum(before > 0.1))} before, {int(np.sum(values > 0.1))} "
                             "now"))
    rows.append(_headline_row(final["ETC-Ada"], final["UCB-PSQ"], section, sc))
    metrics["sensitivity"] = {"factor": f, "variance": var,
                              **{m: [float(v) for v in vals] for m, vals in final.items()}}
    return rows


def _over_seeds(one_run, seed_batch: int):
    """``one_run(key, spec, policy)`` over a leading axis of keys: one ``vmap`` (``seed_batch``
    0) or ``lax.map`` over vmapped groups of ``seed_batch`` seeds."""
    import jax

    if seed_batch == 0:
        return jax.vmap(one_run, in_axes=(0, None, None))
    return lambda keys, spec, policy: jax.lax.map(lambda k: one_run(k, spec, policy), keys,
                                                  batch_size=seed_batch)


def _key_of(sc: ScaleConfig) -> dict:
    """The scale's settings that determine a run's numbers (the checkpoint key)."""
    fields = dataclasses.asdict(sc)
    fields.pop("seed_batch")
    return fields


def _run_or_restore(ctx: RunContext, name: str, config, raw, jitted, args):
    """``(history, run seconds)`` of one batch of seeded BO runs, saved when it finishes.

    Each (problem, method, regime, variance) batch is checkpointed as a whole, so a stopped run
    restarted with ``--resume`` skips the batches it finished (their run seconds are the ones
    measured then). The checkpoint is keyed by the scale's settings and the task; changed code
    is not part of the key, so resume only with the code that wrote it.
    """
    import jax

    ckpt = ctx.checkpointer(name.replace(" ", "_"), config)
    try:
        if ctx.resume:
            shapes = jax.eval_shape(raw, *args)
            like = dict(history=jax.tree_util.tree_map(lambda s: np.zeros(s.shape, s.dtype),
                                                       shapes),
                        seconds=np.zeros((), np.float64))
            restored = ckpt.restore(like)
            if restored is not None:
                tree = restored[1]
                hist = jax.tree_util.tree_unflatten(
                    jax.tree_util.tree_structure(shapes),
                    [np.asarray(v) for v in jax.tree_util.tree_leaves(tree["history"])])
                return hist, float(tree["seconds"])
        before = ctx.timer.run_s
        hist = ctx.gather(jitted(*args))
        seconds = ctx.timer.run_s - before
        ckpt.save(0, dict(history=hist, seconds=np.asarray(seconds, np.float64)))
        return hist, seconds
    finally:
        ckpt.close()


def _log_regret(values) -> np.ndarray:
    return np.log10(np.maximum(np.asarray(values, np.float64), 1e-12))


def _headline_row(ada, psq, section: str, sc: ScaleConfig) -> Row:
    wins = int(np.sum(ada < psq))
    comparison = paired(_log_regret(ada), _log_regret(psq), better="lower",
                        claim="ETC-Ada < UCB-PSQ (paired over seeds, log10 regret)")
    return Row("ETC-Ada vs UCB-PSQ: mean log10 S(C) difference",
               estimate(_log_regret(ada) - _log_regret(psq)), "ETC-Ada lower",
               section=section, comparison=comparison,
               note=f"ETC-Ada lower on {wins}/{len(ada)} seeds")


def _summary(sc, get) -> str:
    pname = "hartmann3" if "hartmann3" in sc.problems else sc.problems[0]
    if "ETC-Ada" not in sc.methods or "UCB-PSQ" not in sc.methods:
        return "ETC-Ada or UCB-PSQ not run at this scale"
    parts = []
    for regime in sc.regimes:
        for var in sc.variances:
            ada = get(pname, "ETC-Ada", regime, var)["final"]
            psq = get(pname, "UCB-PSQ", regime, var)["final"]
            verdict = paired(_log_regret(ada), _log_regret(psq), better="lower").verdict
            parts.append(f"{regime}/{var:g}: {verdict}")
    return (f"ETC-Ada below UCB-PSQ in final simple regret on {pname} ({sc.seeds} seeds, budget "
            f"{sc.budget:g}; paired, log10 regret, 2 s.e.): " + "; ".join(parts) + ".")


def _plots(ctx, sc, get, grid):
    plt = pyplot()
    paths = []
    for pname in sc.problems:
        nr, nv = len(sc.regimes), len(sc.variances)
        fig, axes = plt.subplots(nr, nv, figsize=(4.2 * nv, 3.3 * nr), squeeze=False,
                                 sharex=True)
        for a, regime in enumerate(sc.regimes):
            for b, var in enumerate(sc.variances):
                ax = axes[a, b]
                for method in sc.methods:
                    r = get(pname, method, regime, var)
                    curve = r["curve"]
                    ok = np.all(np.isfinite(curve), axis=0)
                    mean = np.where(ok, np.mean(np.where(np.isfinite(curve), curve, 0), 0), np.nan)
                    se = np.std(curve, axis=0, ddof=1) / np.sqrt(curve.shape[0])
                    floor = 1e-6
                    line, = ax.plot(grid, np.maximum(mean, floor), label=method, lw=1.4)
                    ax.fill_between(grid, np.maximum(mean - se, floor),
                                    np.maximum(mean + se, floor), color=line.get_color(),
                                    alpha=0.2, lw=0)
                    commit = float(np.mean(r["commit"]))
                    if method.startswith("ETC") and 0 < commit < sc.budget:
                        i = min(int(np.searchsorted(grid, commit)), len(grid) - 1)
                        if np.isfinite(mean[i]):
                            ax.plot([commit], [max(mean[i], floor)], "D",
                                    color=line.get_color(), ms=5)
                ax.set_yscale("log")
                ax.set_title(f"{pname}, {regime} costs, var {var}", fontsize=9)
                if a == nr - 1:
                    ax.set_xlabel("budget spent")
                if b == 0:
                    ax.set_ylabel("simple regret")
        axes[0, 0].legend(fontsize=7)
        fig.suptitle(f"Simple regret vs budget (mean ± s.e., {sc.seeds} seeds)\ndiamond: mean "
                     "budget after which ETC plays only the full set", fontsize=9)
        paths.append(save_figure(ctx, fig, f"bocvs_{pname}_simple_regret.png"))
    return paths
