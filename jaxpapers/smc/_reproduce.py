"""``jaxpapers reproduce smc``: the variance ordering of resampling schemes.

A bootstrap particle filter on a linear-Gaussian state-space model (exact Kalman likelihood)
is run many times per scheme and particle count; the bias and variance of the log-likelihood
estimate are compared. Claim (Douc, Cappé & Moulines 2005): residual and stratified resampling
never have larger conditional variance than multinomial; systematic has no such guarantee but is
usually best in practice.
"""

from __future__ import annotations

import time

import jax
import numpy as np

from jaxpapers._src.progress import progress
from jaxpapers.experiments._registry import RunContext, RunResult
from jaxpapers.experiments._report import pyplot
from jaxpapers.smc._lgssm import LGSSM, bootstrap_particle_filter, kalman_log_likelihood, simulate

SCHEMES = ("multinomial", "residual", "stratified", "systematic")
SIZES = {
    "smoke": dict(particles=(16,), replicates=64, steps=20),
    "quick": dict(particles=(32, 128, 512), replicates=1000, steps=50),
    "paper": dict(particles=(32, 128, 512, 2048, 8192), replicates=10000, steps=100),
}


def _variance_se(values: np.ndarray) -> float:
    centred = (values - values.mean()) ** 2
    return float(centred.std(ddof=1) / np.sqrt(values.size))


def run(ctx: RunContext) -> RunResult:
    sizes = SIZES[ctx.scale]
    model = LGSSM(transition=0.9, transition_scale=1.0, observation_scale=0.5)
    key_data, key_runs = jax.random.split(jax.random.key(ctx.seed))
    _, observations = simulate(key_data, model, sizes["steps"])
    exact = float(kalman_log_likelihood(model, observations))
    mesh = ctx.mesh()
    replicates = sizes["replicates"] - sizes["replicates"] % mesh.devices.size
    keys = jax.random.split(key_runs, replicates)
    from jaxpapers._src.sharding import shard_batch

    keys = shard_batch(keys, mesh)
    rows, metrics, compile_s = [], {}, 0.0
    cells = [(n, s) for n in sizes["particles"] for s in SCHEMES]
    for num_particles, scheme in progress(cells, total=len(cells), desc="smc",
                                          enabled=ctx.show_progress):
        fn = jax.jit(jax.vmap(lambda k, n=num_particles, s=scheme: bootstrap_particle_filter(
            k, model, observations, n, s).log_likelihood))
        start = time.perf_counter()
        estimates = np.asarray(jax.block_until_ready(fn(keys)), np.float64)
        compile_s += time.perf_counter() - start
        errors = estimates - exact
        cell = {
            "num_particles": num_particles, "scheme": scheme,
            "bias": float(errors.mean()),
            "bias_se": float(errors.std(ddof=1) / np.sqrt(errors.size)),
            "variance": float(errors.var(ddof=1)), "variance_se": _variance_se(errors),
            "ratio_hat_p": float(np.mean(np.exp(errors))),
        }
        rows.append(cell)
        metrics[f"{scheme}@{num_particles}"] = cell

    table, holds_dcm, systematic_best = [], True, 0
    for num_particles in sizes["particles"]:
        cells_n = {r["scheme"]: r for r in rows if r["num_particles"] == num_particles}
        base = cells_n["multinomial"]
        for scheme in SCHEMES:
            c = cells_n[scheme]
            diff = c["variance"] - base["variance"]
            diff_se = float(np.hypot(c["variance_se"], base["variance_se"]))
            note = ("" if scheme == "multinomial"
                    else f"Δ vs multinomial {diff:+.3f} ± {diff_se:.3f}")
            if scheme in ("residual", "stratified") and diff > 2 * diff_se:
                holds_dcm = False
            table.append({
                "quantity": f"Var[log Ẑ − log Z], N={num_particles}, {scheme}",
                "ours": f"{c['variance']:.4f} ± {c['variance_se']:.4f}",
                "paper": "≤ multinomial" if scheme in ("residual", "stratified") else
                         ("usually lowest" if scheme == "systematic" else "reference"),
                "note": note + f"; bias {c['bias']:+.3f} ± {c['bias_se']:.3f}",
            })
        best = min(cells_n.values(), key=lambda r: r["variance"])["scheme"]
        systematic_best += best == "systematic"
    verdict = (
        ("Held: residual and stratified were never significantly (2 s.e.) above multinomial"
         if holds_dcm else
         "Did not hold: residual or stratified exceeded multinomial by more than 2 s.e.")
        + f"; systematic had the lowest variance at {systematic_best} of "
          f"{len(sizes['particles'])} particle counts ({replicates} replicates each)."
    )
    count_rows, count_holds = _count_variances(ctx, sizes["replicates"] * 10)
    table = count_rows + table
    verdict = ("Count variances " + ("followed" if count_holds else "broke")
               + " the exact ordering (multinomial largest); filter: " + verdict)
    plots = [_plot(ctx, rows, sizes["particles"])]
    return RunResult(
        experiment="bootstrap PF on a linear-Gaussian SSM: log-likelihood error per scheme",
        config={"model": vars(model), "num_steps": sizes["steps"], "replicates": replicates,
                "num_particles": list(sizes["particles"]), "schemes": list(SCHEMES),
                "resample": "every step", "exact_log_likelihood": exact},
        metrics=metrics,
        paper={"claim": "Var(residual) <= Var(multinomial), Var(stratified) <= Var(multinomial); "
                        "systematic usually best, no guarantee",
               "source": "Douc, Cappé & Moulines (2005), arXiv cs/0507025"},
        table=table, verdict=verdict, plots=plots, compile_s=None,
        notes=[f"Exact log-likelihood (Kalman): {exact:.4f}. Times include compilation of "
               f"{len(cells)} filters ({compile_s:.1f} s in all)."],
    )


def exact_count_variance_sum(scheme: str, weights: np.ndarray, num_samples: int) -> float:
    """Exact sum over particles of Var(N_i) for one resampling step (float64)."""
    w = np.asarray(weights, np.float64) / np.sum(weights)
    expected = num_samples * w
    frac = expected - np.floor(expected)
    if scheme == "multinomial":
        return float(np.sum(num_samples * w * (1 - w)))
    if scheme == "systematic":
        return float(np.sum(frac * (1 - frac)))
    if scheme == "residual":
        remaining = num_samples - np.floor(expected).sum()
        r = frac / frac.sum() if remaining > 0 else np.zeros_like(w)
        return float(np.sum(remaining * r * (1 - r)))
    upper = num_samples * np.cumsum(w)
    lower = np.concatenate([[0.0], upper[:-1]])
    total = 0.0
    for stratum in range(num_samples):
        length = np.clip(np.minimum(upper, stratum + 1) - np.maximum(lower, stratum), 0, None)
        total += float(np.sum(length * (1 - length)))
    return total


def _count_variances(ctx: RunContext, replicates: int):
    """One resampling step: measured vs exact sum of offspring-count variances per scheme."""
    import jax.numpy as jnp

    from jaxpapers.smc._resampling import RESAMPLERS

    cases = {
        "W=[1/2,1/4,1/8,1/16,1/16]": np.array([0.5, 0.25, 0.125, 0.0625, 0.0625]),
        "Gamma(0.5) weights, N=64": np.random.default_rng(ctx.seed).gamma(0.5, size=64),
    }
    if ctx.scale == "smoke":
        cases = dict(list(cases.items())[:1])
    rows, holds = [], True
    for label, weights in cases.items():
        n = weights.shape[0]
        keys = jax.random.split(jax.random.key(ctx.seed + 1), replicates)
        measured = {}
        for scheme in SCHEMES:
            fn = RESAMPLERS[scheme]
            w32 = jnp.asarray(weights, jnp.float32)
            counts = jax.jit(jax.vmap(lambda k, f=fn, w=w32, n=n: jnp.bincount(
                f(k, w, n), length=n)))(keys)
            counts = np.asarray(counts, np.float64)
            measured[scheme] = float(counts.var(0, ddof=1).sum())
            exact = exact_count_variance_sum(scheme, weights, n)
            rows.append({"quantity": f"Σ Var(N_i), {label}, {scheme}",
                         "ours": f"{measured[scheme]:.4f}", "paper": f"{exact:.4f} (exact)",
                         "note": f"{replicates} replicates"})
        holds &= all(measured[s] < measured["multinomial"] for s in ("residual", "stratified"))
    return rows, holds


def _plot(ctx: RunContext, rows, particle_counts) -> str:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    for scheme in SCHEMES:
        cells = [r for r in rows if r["scheme"] == scheme]
        ax.errorbar([r["num_particles"] for r in cells], [r["variance"] for r in cells],
                    yerr=[2 * r["variance_se"] for r in cells], marker="o", capsize=3,
                    label=scheme)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("particles N")
    ax.set_ylabel("Var of log-likelihood estimate (±2 s.e.)")
    ax.set_title("Bootstrap PF on a linear-Gaussian SSM")
    ax.legend()
    fig.tight_layout()
    path = ctx.path("variance_vs_particles.png")
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
