"""``jaxpapers reproduce smc``: the variance ordering of resampling schemes.

Two parts. (1) One resampling step: the sum over particles of the offspring-count variance,
measured over many replicates, against its exact value per scheme. (2) A bootstrap particle
filter on a linear-Gaussian state-space model (exact Kalman likelihood), run many times per
scheme and particle count; the bias and variance of the log-likelihood estimate. Claim (Douc,
Cappé & Moulines 2005): residual and stratified resampling never have larger conditional
variance than multinomial; systematic has no such guarantee but is usually best in practice.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from jaxpapers.experiments import Row, RunContext, RunResult
from jaxpapers.experiments.report import pyplot, save_figure
from jaxpapers.experiments.stats import Estimate, agree, compare
from jaxpapers.smc import LGSSM, RESAMPLERS, bootstrap_particle_filter, kalman_log_likelihood
from jaxpapers.smc import simulate as simulate_lgssm

SCHEMES = ("multinomial", "residual", "stratified", "systematic")
_COUNT_BATCHES = 10  # replicate batches for the standard error of a count-variance sum


@dataclasses.dataclass(frozen=True)
class SMCScale:
    """Sizes of the SMC reproduction."""

    particles: tuple[int, ...]   # particle counts of the filter
    replicates: int              # independent filter runs per (scheme, particle count)
    steps: int                   # length of the observed series
    count_cases: int = 2         # weight vectors of the one-step part (1: the hand-made one)
    # a filter where resampling noise matters: small mutation noise and informative (not
    # degenerate) observations, few particles. With a = 0.9, sx = 0.3, sy = 0.15 the predictive
    # variance is about 4.7 sy^2, so one step's ESS is about 0.57 N.
    informative_particles: tuple[int, ...] = (8, 32)
    informative_transition_scale: float = 0.3
    informative_observation_scale: float = 0.15
    informative_steps: int = 20
    informative_replicates: int = 10000   # the scheme differences are a few s.e. of 1000 runs

    def __post_init__(self):
        if not self.particles or any(n < 1 for n in self.particles):
            raise ValueError(f"SMCScale.particles must be positive ints; got {self.particles}")
        for name in ("replicates", "steps"):
            if getattr(self, name) < 2:
                raise ValueError(f"SMCScale.{name} must be >= 2; got {getattr(self, name)}")
        if self.count_cases not in (1, 2):
            raise ValueError(f"SMCScale.count_cases must be 1 or 2; got {self.count_cases}")


SCALES = {
    "smoke": SMCScale(particles=(16,), replicates=64, steps=20, count_cases=1,
                      informative_particles=(8,), informative_steps=10,
                      informative_replicates=64),
    "quick": SMCScale(particles=(32, 128, 512), replicates=1000, steps=50),
    "paper": SMCScale(particles=(32, 128, 512, 2048, 8192), replicates=10000, steps=100),
}

PAPER = {
    "claim": "Var(residual) <= Var(multinomial), Var(stratified) <= Var(multinomial); "
             "systematic usually best, no guarantee",
    "source": "Douc, Cappé & Moulines (2005), arXiv cs/0507025",
}


def _variance_estimate(errors: np.ndarray) -> Estimate:
    """The sample variance of ``errors`` with the standard error of the squared deviations."""
    centred = (errors - errors.mean()) ** 2
    return Estimate(float(errors.var(ddof=1)), float(centred.std(ddof=1) / np.sqrt(errors.size)),
                    int(errors.size))


def _filter_cells(ctx: RunContext, scale: SMCScale, model: LGSSM, observations, exact: float,
                  particles=None, key_runs=None, replicates=None):
    if key_runs is None:
        key_runs = jax.random.split(jax.random.key(ctx.seed))[1]
    particles = scale.particles if particles is None else particles
    keys = ctx.shard(jax.random.split(key_runs, replicates or scale.replicates))
    cells = [(n, s) for n in particles for s in SCHEMES]
    out: dict[str, dict[str, dict]] = {s: {} for s in SCHEMES}
    for num_particles, scheme in ctx.progress(cells, desc="smc"):
        fn = ctx.timer.jit(jax.vmap(lambda k, n=num_particles, s=scheme: bootstrap_particle_filter(
            k, model, observations, n, s).log_likelihood))
        errors = np.asarray(ctx.gather(fn(keys)), np.float64) - exact
        out[scheme][str(num_particles)] = {
            "bias": float(errors.mean()),
            "bias_se": float(errors.std(ddof=1) / np.sqrt(errors.size)),
            "variance": float(errors.var(ddof=1)),
            "variance_se": _variance_estimate(errors).se,
            "ratio_hat_p": float(np.mean(np.exp(errors))),
            "ratio_variance": float(np.exp(errors).var(ddof=1)),
            "ratio_variance_se": _variance_estimate(np.exp(errors)).se,
            "replicates": int(errors.size),
        }
    return out


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


def _count_cases(ctx: RunContext, scale: SMCScale) -> dict[str, np.ndarray]:
    cases = {
        "W=[1/2,1/4,1/8,1/16,1/16]": np.array([0.5, 0.25, 0.125, 0.0625, 0.0625]),
        "Gamma(0.5) weights, N=64": np.random.default_rng(ctx.seed).gamma(0.5, size=64),
    }
    return dict(list(cases.items())[:scale.count_cases])


def _count_variances(ctx: RunContext, scale: SMCScale):
    """One resampling step: measured vs exact sum of offspring-count variances per scheme."""
    replicates = scale.replicates * 10
    out: dict[str, dict[str, dict]] = {}
    for label, weights in _count_cases(ctx, scale).items():
        n = weights.shape[0]
        keys = jax.random.split(jax.random.key(ctx.seed + 1), replicates)
        out[label] = {}
        for scheme in SCHEMES:
            w32 = jnp.asarray(weights, jnp.float32)
            fn = ctx.timer.jit(jax.vmap(lambda k, f=RESAMPLERS[scheme], w=w32, n=n: jnp.bincount(
                f(k, w, n), length=n)))
            counts = np.asarray(fn(keys), np.float64)
            batches = counts.reshape(_COUNT_BATCHES, -1, n).var(1, ddof=1).sum(-1)
            out[label][scheme] = {
                "measured": float(counts.var(0, ddof=1).sum()),
                "measured_se": float(batches.std(ddof=1) / np.sqrt(_COUNT_BATCHES)),
                "exact": exact_count_variance_sum(scheme, weights, n),
                "replicates": replicates,
            }
    return out


def _rows(counts, cells, scale: SMCScale) -> tuple[list[Row], dict[str, int]]:
    rows, tally = [], {"orderings": 0, "orderings_reversed": 0, "systematic_lowest": 0}
    section = "One resampling step: Σ_i Var(N_i), measured vs exact"
    for label, by_scheme in counts.items():
        multinomial = by_scheme["multinomial"]
        for scheme in SCHEMES:
            c = by_scheme[scheme]
            ours = Estimate(c["measured"], c["measured_se"], c["replicates"])
            rows.append(Row(f"{label}, {scheme}", ours, c["exact"], section=section,
                            comparison=agree(ours, c["exact"], threshold=3.0,
                                             claim="measured = exact law"),
                            note=f"{c['replicates']} replicates; s.e. from "
                                 f"{_COUNT_BATCHES} batches"))
            if scheme in ("residual", "stratified"):
                base = Estimate(multinomial["measured"], multinomial["measured_se"])
                rows.append(Row(f"{label}, {scheme} vs multinomial", ours, "≤ multinomial",
                                section=section,
                                comparison=compare(ours, base, better="lower",
                                                   claim=f"{scheme} < multinomial")))
    section = "Bootstrap particle filter: Var[log Ẑ − log Z]"
    bias_rows = []
    for n in scale.particles:
        cells_n = {s: cells[s][str(n)] for s in SCHEMES}
        base = Estimate(cells_n["multinomial"]["variance"], cells_n["multinomial"]["variance_se"])
        for scheme in SCHEMES:
            c = cells_n[scheme]
            ours = Estimate(c["variance"], c["variance_se"], c["replicates"])
            comparison = None
            if scheme != "multinomial":
                comparison = compare(ours, base, better="lower",
                                     claim=f"{scheme} < multinomial")
            if scheme in ("residual", "stratified"):
                tally["orderings"] += 1
                tally["orderings_reversed"] += comparison.verdict == "reversed"
            paper = {"multinomial": "reference", "systematic": "usually lowest"}.get(
                scheme, "≤ multinomial")
            rows.append(Row(f"N={n}, {scheme}", ours, paper, section=section,
                            comparison=comparison))
            bias_rows.append(Row(f"N={n}, {scheme}", Estimate(c["bias"], c["bias_se"],
                                                              c["replicates"]),
                                 section="Bootstrap particle filter: bias of log Ẑ",
                                 note="≈ −Var/2 for a log-normal-like Ẑ"))
        best = min(SCHEMES, key=lambda s: cells_n[s]["variance"])
        tally["systematic_lowest"] += best == "systematic"
    return rows + bias_rows, tally


def _plot(ctx: RunContext, cells, particle_counts) -> str:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    for scheme in SCHEMES:
        points = [cells[scheme][str(n)] for n in particle_counts]
        ax.errorbar(particle_counts, [p["variance"] for p in points],
                    yerr=[2 * p["variance_se"] for p in points], marker="o", capsize=3,
                    label=scheme)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xticks(list(particle_counts), [str(n) for n in particle_counts])
    ax.minorticks_off()
    ax.set_xlabel("particles N")
    ax.set_ylabel("Var of log-likelihood estimate (±2 s.e.)")
    ax.set_title("Bootstrap PF on a linear-Gaussian SSM")
    ax.legend()
    return save_figure(ctx, fig, "variance_vs_particles.png", dpi=120)


def _informative_rows(cells, particles) -> tuple[list[Row], int, int]:
    """Var(Ẑ/Z) and Var(log Ẑ) where resampling noise matters; residual/stratified vs
    multinomial on both."""
    rows, held, total = [], 0, 0
    for key, label in (("ratio_variance", "Var(Ẑ/Z)"), ("variance", "Var[log Ẑ − log Z]")):
        section = f"Informative observations, few particles: {label}"
        for n in particles:
            base = cells["multinomial"][str(n)]
            base_est = Estimate(base[key], base[f"{key}_se"])
            for scheme in SCHEMES:
                c = cells[scheme][str(n)]
                ours = Estimate(c[key], c[f"{key}_se"], c["replicates"])
                comparison = None if scheme == "multinomial" else compare(
                    ours, base_est, better="lower", claim=f"{scheme} < multinomial")
                if scheme in ("residual", "stratified"):
                    total += 1
                    held += comparison.verdict == "held"
                paper = {"multinomial": "reference", "systematic": "usually lowest"}.get(
                    scheme, "≤ multinomial")
                rows.append(Row(f"N={n}, {scheme}", ours, paper, section=section,
                                comparison=comparison))
    return rows, held, total


def run(ctx: RunContext, scale: SMCScale) -> RunResult:
    model = LGSSM(transition=0.9, transition_scale=1.0, observation_scale=0.5)
    key_data = jax.random.split(jax.random.key(ctx.seed))[0]
    _, observations = simulate_lgssm(key_data, model, scale.steps)
    exact = float(kalman_log_likelihood(model, observations))
    cells = _filter_cells(ctx, scale, model, observations, exact)
    counts = _count_variances(ctx, scale)
    rows, tally = _rows(counts, cells, scale)
    sharp = LGSSM(transition=0.9, transition_scale=scale.informative_transition_scale,
                  observation_scale=scale.informative_observation_scale)
    key_sharp = jax.random.fold_in(jax.random.key(ctx.seed), 7)
    _, sharp_obs = simulate_lgssm(jax.random.fold_in(key_sharp, 0), sharp,
                                  scale.informative_steps)
    sharp_exact = float(kalman_log_likelihood(sharp, sharp_obs))
    sharp_cells = _filter_cells(ctx, scale, sharp, sharp_obs, sharp_exact,
                                scale.informative_particles, jax.random.fold_in(key_sharp, 1),
                                scale.informative_replicates)
    sharp_rows, sharp_held, sharp_total = _informative_rows(sharp_cells,
                                                            scale.informative_particles)
    rows += sharp_rows
    reversed_ = tally["orderings_reversed"]
    summary = (f"Residual and stratified vs multinomial in the filter: {reversed_} of "
               f"{tally['orderings']} orderings reversed (2 s.e.); systematic had the lowest "
               f"variance at {tally['systematic_lowest']} of {len(scale.particles)} particle "
               f"counts ({scale.replicates} runs each). With small mutation noise and "
               f"informative observations (σx = {scale.informative_transition_scale:g}, "
               f"σy = {scale.informative_observation_scale:g}) and few particles "
               f"({scale.informative_replicates} runs each), residual and "
               f"stratified below multinomial held in {sharp_held} of {sharp_total} comparisons "
               "(Var(Ẑ/Z) and Var(log Ẑ)). One step: count variances against the exact laws "
               "and orderings are in the first table.")
    return RunResult(
        experiment="one resampling step (exact count variances) and a bootstrap PF on a "
                   "linear-Gaussian SSM (log-likelihood error per scheme)",
        metrics={"count_variance": counts, "filter": cells, "exact_log_likelihood": exact,
                 "informative_filter": sharp_cells,
                 "informative_exact_log_likelihood": sharp_exact},
        table=rows, summary=summary, paper=PAPER,
        config={"model": dataclasses.asdict(model), "schemes": list(SCHEMES),
                "informative_model": dataclasses.asdict(sharp), "resample": "every step"},
        plots=[_plot(ctx, cells, scale.particles)],
        notes=[f"Exact log-likelihood (Kalman): {exact:.4f}."],
    )
