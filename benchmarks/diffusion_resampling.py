"""Benchmark: resampling sampler overhead and grouped resampling throughput.

1. Particle-steps per second of ``smc_sample`` vs ``plain_sample`` on the same DDPM (MLP
   denoiser, T = 50) with a zero-cost potential (``log phi = 0``), so the difference is the
   sampler's own overhead (weighting, grouped resampling, gathers); goal < 5 %. A row with a
   discriminator potential shows the potential's cost separately.
2. Grouped resampling at ``G x K = 4096 x 8``: ``jax.vmap`` of ``jaxpapers.smc.resample`` over
   groups vs blackjax's ``smc.resampling`` schemes vmapped the same way.

Usage: ``python benchmarks/diffusion_resampling.py [--smoke] [--json OUT] [--repeats N]``.
"""

from __future__ import annotations

import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

from jaxpapers import smc  # noqa: E402
from jaxpapers.diffusion_resampling import (  # noqa: E402
    discriminator_log_potential,
    make_ddpm_step,
    make_schedule,
    plain_sample,
    smc_sample,
)
from jaxpapers.diffusion_resampling.models import TimeMLP, eps_fn_from, logit_fn_from  # noqa: E402
from jaxpapers.experiments import bench  # noqa: E402

SCHEMES = ("multinomial", "systematic", "stratified", "residual")


def sampler_rows(groups, k, num_steps, every, repeats, with_disc=True):
    schedule = make_schedule(num_steps, "linear", 1e-4, 0.2)
    key = jax.random.key(0)
    den = TimeMLP(128, 3)
    params = jax.jit(den.init)(key, jnp.ones((1, 2)), jnp.ones(1, jnp.int32))
    step = make_ddpm_step(eps_fn_from(den, params), schedule)
    disc = TimeMLP(128, 3, out_features=1)
    dparams = jax.jit(disc.init)(jax.random.key(1), jnp.ones((1, 2)), jnp.ones(1, jnp.int32))
    disc_pot = discriminator_log_potential(logit_fn_from(disc, dparams))
    zero_pot = lambda x, t, c: jnp.zeros(x.shape[:2])
    levels = tuple(t for t in range(1, num_steps) if t % every == 0)
    x_init = jax.random.normal(key, (groups, k, 2))

    plain = jax.jit(lambda kk, x: plain_sample(kk, step, x, num_steps))
    smc_zero = jax.jit(lambda kk, x: smc_sample(kk, step, zero_pot, levels, k, x,
                                                num_steps).samples)
    smc_disc = jax.jit(lambda kk, x: smc_sample(kk, step, disc_pot, levels, k, x,
                                                num_steps).samples)
    cases = [("plain", plain), ("smc, log phi = 0", smc_zero)]
    if with_disc:
        cases.append(("smc, discriminator", smc_disc))
    # interleave the cases so that load on a shared machine hits all of them alike
    compile_s = {name: bench.time_call(fn, key, x_init, repeats=1).compile_s
                 for name, fn in cases}
    times: dict[str, list[float]] = {name: [] for name, _ in cases}
    for _ in range(repeats):
        for name, fn in cases:
            times[name].append(bench.time_call(fn, key, x_init, repeats=1).min_s)
    rows = []
    particle_steps = groups * k * num_steps
    base_min, base_med = min(times["plain"]), statistics.median(times["plain"])
    for name, _ in cases:
        t_min, t_med = min(times[name]), statistics.median(times[name])
        rows.append({"table": "sampler", "sampler": name, "G x K": f"{groups} x {k}",
                     "steps": num_steps, "events": len(levels),
                     "median_s": t_med, "min_s": t_min, "compile_s": compile_s[name],
                     "particle_steps_per_s": particle_steps / t_min,
                     "overhead_vs_plain_min": t_min / base_min - 1.0,
                     "overhead_vs_plain_median": t_med / base_med - 1.0,
                     "overhead_paired": statistics.median(
                         a / b for a, b in zip(times[name], times["plain"], strict=True)) - 1.0})
    return rows


def resampling_rows(groups, k, repeats, schemes=SCHEMES):
    import blackjax.smc.resampling as bj

    key = jax.random.key(2)
    log_w = jax.random.normal(key, (groups, k)) * 2.0
    rows = []
    for scheme in schemes:
        ours = jax.jit(lambda kk, lw, s=scheme: jax.vmap(
            lambda a, b: smc.resample(a, b, s))(jax.random.split(kk, groups), lw))
        anchor_fn = getattr(bj, scheme)
        anchor = jax.jit(lambda kk, lw, f=anchor_fn: jax.vmap(
            lambda a, b: f(a, jax.nn.softmax(b), k))(jax.random.split(kk, groups), lw))
        t_ours = bench.time_call(ours, key, log_w, repeats=repeats)
        t_anchor = bench.time_call(anchor, key, log_w, repeats=repeats)
        rows.append({"table": "resampling", "scheme": scheme, "G x K": f"{groups} x {k}",
                     "ours": t_ours.median_s, "blackjax": t_anchor.median_s,
                     "ours_compile_s": t_ours.compile_s,
                     "groups_per_s": groups / t_ours.median_s})
    return rows


def main(argv=None):
    args = bench.parser(__doc__.splitlines()[0]).parse_args(argv)
    repeats = 2 if args.smoke else args.repeats
    if args.smoke:
        srows = sampler_rows(16, 4, 10, 2, repeats, with_disc=False)
        rrows = resampling_rows(64, 8, repeats, schemes=("systematic",))
    else:
        srows = (sampler_rows(1024, 8, 50, 5, repeats)
                 + sampler_rows(1024, 8, 50, 1, repeats, with_disc=False))
        rrows = resampling_rows(4096, 8, repeats)
    print(bench.header({"benchmark": "diffusion_resampling"}))
    print("\nSampler throughput (DDPM, MLP 3x128 denoiser; overhead = time / plain - 1, as the "
          "median over interleaved rounds of the per-round ratio; particle-steps/s from the "
          "fastest repeat; goal: overhead < 5 % at every event count)\n")
    print("| sampler | G x K | steps | events | min | median | particle-steps/s "
          "| overhead (paired median) | overhead (min) | compile |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in srows:
        print(f"| {r['sampler']} | {r['G x K']} | {r['steps']} | {r['events']} | "
              f"{r['min_s'] * 1e3:.1f} ms | {r['median_s'] * 1e3:.1f} ms | "
              f"{r['particle_steps_per_s']:.3g} | {100 * r['overhead_paired']:+.1f} % | "
              f"{100 * r['overhead_vs_plain_min']:+.1f} % | {r['compile_s']:.2f} s |")
    print("\nGrouped resampling (vmap over groups), ours vs blackjax\n")
    print(bench.ratio_table(rrows, ["scheme", "G x K"], "ours", ["blackjax"],
                            goal=lambda r: ">= 1x"))
    bench.write_json(args.json, {"device": bench.device_name(), "rows": srows + rrows,
                                 "smoke": args.smoke})
    return srows + rrows


if __name__ == "__main__":
    main()
