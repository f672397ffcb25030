"""Where the time of our multinomial and residual resampling goes: each internal stage jitted and
timed on its own, beside the whole call (a white-box profile of ``jaxpapers.smc``'s private
stages; the anchor comparison is ``benchmarks/smc_resampling.py``).

    python tools/profile_smc_stages.py --size 1000000
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

from jaxpapers.experiments import bench  # noqa: E402


def _weights(key, shape):
    """Log-normal weights (log-weights ~ N(0, 1)), normalised, float32 (as in the benchmark)."""
    log_weights = jax.random.normal(key, shape, jnp.float32)
    weights = jnp.exp(log_weights - jnp.max(log_weights, axis=-1, keepdims=True))
    return weights / jnp.sum(weights, axis=-1, keepdims=True)


def breakdown(size: int, repeats: int) -> list[dict]:
    """Steady-state time of the stages of our multinomial and residual at N = M = ``size``,
    each jitted on its own: where the time goes, beside the whole call."""
    from jaxpapers.smc import _resampling as r
    from jaxpapers.smc._scan import standard_exponential

    weights = _weights(jax.random.key(3), (size,))
    key = jax.random.key(4)
    cdf = jax.jit(r._normalized_cdf)(weights)
    uniforms = jax.jit(lambda k: r._sorted_uniforms(k, size, size, jnp.float32))(key)
    counts = jax.jit(lambda c, u: r._merge_counts(c, u))(cdf, uniforms)
    valid = jnp.asarray(True)
    stages = [
        ("multinomial, whole call", jax.jit(r.multinomial), (key, weights)),
        ("residual, whole call", jax.jit(r.residual), (key, weights)),
        ("Exp(1) draws (threefry)", jax.jit(lambda k: standard_exponential(k, (size,),
                                                                        jnp.float32)), (key,)),
        ("sorted uniforms (draws + prefix sum)", jax.jit(
            lambda k: r._sorted_uniforms(k, size, size, jnp.float32)), (key,)),
        ("CDF (monotone prefix sum)", jax.jit(r._normalized_cdf), (weights,)),
        ("counts k_i (histogram merge)", jax.jit(lambda c, u: r._merge_counts(c, u)),
         (cdf, uniforms)),
        ("ancestors from counts (scatter + prefix sum)", jax.jit(
            lambda k_: r._indices_from_cumulative_counts(k_, valid, size)), (counts,)),
    ]
    rows = []
    for name, fn, args in stages:
        timing = bench.time_call(fn, *args, repeats=repeats)
        rows.append({"stage": name, "N": size, "median_s": timing.median_s,
                     "min_s": timing.min_s})
    return rows


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=10**6, help="N = M")
    p.add_argument("--repeats", type=int, default=7)
    args = p.parse_args(argv)
    print(bench.header())
    print()
    print("| stage | N | median | min |")
    print("|---|---|---|---|")
    for r in breakdown(args.size, args.repeats):
        size = f"{r['N']:.0e}".replace("e+0", "e")
        print(f"| {r['stage']} | {size} | {r['median_s'] * 1e3:.2f} ms | "
              f"{r['min_s'] * 1e3:.2f} ms |")


if __name__ == "__main__":
    main()
