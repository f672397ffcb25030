"""Benchmark: SMC resampling kernels (jaxpapers.smc) against blackjax and, if importable, particles.

All four schemes (multinomial, stratified, systematic, residual) on the same float32 weights:
single groups of N particles and G groups of K particles (``jax.vmap`` over groups). Compile time
(first call) is reported apart from the steady state (median of ``--repeats`` calls, each ended by
``block_until_ready``; the libraries alternate, each round giving every library a warm-up call
and a timed call, so that a drift in the machine's speed hits every side alike). Ratios are
anchor time / our time (above 1: we are faster).

``particles`` (numba) pins ``numpy<2``, which breaks jax when pip resolves it, so it is never a
dependency of this project. It is timed only when it is already importable; to add it::

    pip install --no-deps particles numba llvmlite

Its grouped cases loop over the groups in Python (it has no batched API) on float64 weights.

Usage::

    python benchmarks/smc_resampling.py [--smoke] [--repeats 7] [--json out.json]
"""

from __future__ import annotations

import functools
import sys
import time
from pathlib import Path

try:
    import jaxpapers  # noqa: F401
except ImportError:  # run from a checkout without installing
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import jax
import jax.numpy as jnp
import numpy as np

from jaxpapers.experiments import bench
from jaxpapers.smc import RESAMPLERS

SCHEMES = ("multinomial", "stratified", "systematic", "residual")
SINGLE_SIZES = (10**3, 10**4, 10**5, 10**6)
GROUPED_SIZES = ((4096, 8), (1024, 64), (16384, 16))
SMOKE_SINGLE = (10**3,)
SMOKE_GROUPED = ((16, 16),)
INSTALL_PARTICLES = "pip install --no-deps particles numba llvmlite"


def _blackjax():
    try:
        import blackjax
        from blackjax.smc import resampling
    except ImportError:
        return None, "not installed (pip install blackjax)"
    return resampling, f"blackjax {blackjax.__version__}"


def _particles():
    try:
        import particles
        from particles import resampling
    except Exception as err:  # ImportError, or a numba/numpy mismatch at import
        return None, f"not importable ({type(err).__name__}); to include it: {INSTALL_PARTICLES}"
    return resampling, f"particles {getattr(particles, '__version__', '?')} (numba, CPU, float64)"


def _weights(key, shape):
    """Log-normal weights (log-weights ~ N(0, 1)), normalised along the last axis, float32."""
    log_weights = jax.random.normal(key, shape, jnp.float32)
    weights = jnp.exp(log_weights - jnp.max(log_weights, axis=-1, keepdims=True))
    return weights / jnp.sum(weights, axis=-1, keepdims=True)


def _case_label(groups, size):
    if groups is None:
        return f"N={size:.0e}".replace("e+0", "e")
    return f"G×K={groups}×{size}"


def _ours(scheme, grouped):
    fn = RESAMPLERS[scheme]
    if grouped:
        return jax.jit(jax.vmap(fn))
    return jax.jit(lambda key, weights: fn(key, weights))  # a new program on every call here


def _blackjax_fn(resampling, scheme, size, grouped):
    fn = getattr(resampling, scheme)

    def single(key, weights):
        return fn(key, weights, size)

    return jax.jit(jax.vmap(single)) if grouped else jax.jit(single)


def _particles_fn(resampling, scheme, grouped):
    fn = getattr(resampling, scheme)
    if grouped:
        return lambda weights: [fn(w) for w in weights]
    return fn


def _numpy_sync(out):
    return out


def _record(row, name, timing):
    row[name], row[f"{name}_min_s"], row[f"{name}_compile_s"] = (
        timing.median_s, timing.min_s, timing.compile_s)


def _first_calls(makers, args, rounds):
    """Median first-call time (trace + compile + one run) of freshly built jitted functions,
    ``rounds`` of each, alternating: single compile times vary by tens of per cent here."""
    times = {name: [] for name in makers}
    for _ in range(rounds):
        for name, make in makers.items():
            fn = make()
            start = time.perf_counter()
            jax.block_until_ready(fn(*args))
            times[name].append(time.perf_counter() - start)
    return {name: float(np.median(t)) for name, t in times.items()}


def run(sizes, grouped_sizes, repeats, seed=0, compile_rounds=1):
    bj, bj_note = _blackjax()
    pt, pt_note = _particles()
    key = jax.random.key(seed)
    cases = [(None, n) for n in sizes] + list(grouped_sizes)
    rows = []
    for groups, size in cases:
        grouped = groups is not None
        shape = (groups, size) if grouped else (size,)
        weights = _weights(jax.random.fold_in(key, size), shape)
        keys = jax.random.split(jax.random.fold_in(key, 1), groups) if grouped else key
        weights_np = np.asarray(weights, np.float64)
        weights_np = weights_np / weights_np.sum(axis=-1, keepdims=True)
        for scheme in SCHEMES:
            row = {"scheme": scheme, "case": _case_label(groups, size),
                   "groups": groups or 1, "size": size, "dtype": "float32"}
            ours = _ours(scheme, grouped)
            calls = {"jaxpapers": (ours, (keys, weights), None)}
            if bj is not None:
                calls["blackjax"] = (_blackjax_fn(bj, scheme, size, grouped), (keys, weights),
                                     None)
            if pt is not None:
                calls["particles"] = (_particles_fn(pt, scheme, grouped), (weights_np,),
                                      _numpy_sync)
            for name, timing in bench.time_interleaved(calls, repeats=repeats).items():
                _record(row, name, timing)
            if compile_rounds > 1:  # needs --no-compile-cache, or later rounds load the cache
                makers = {"jaxpapers": functools.partial(_ours, scheme, grouped)}
                if bj is not None:
                    makers["blackjax"] = functools.partial(_blackjax_fn, bj, scheme, size,
                                                           grouped)
                for name, seconds in _first_calls(makers, (keys, weights),
                                                  compile_rounds).items():
                    row[f"{name}_compile_s"] = seconds
            out = ours(keys, weights)
            assert out.shape == shape and out.dtype == jnp.int32, (scheme, out.shape, out.dtype)
            rows.append(row)
            print(f"  {row['case']:>16s} {scheme:12s} ours {row['jaxpapers'] * 1e3:9.3f} ms",
                  file=sys.stderr, flush=True)
    return rows, bj_note, pt_note


def goal(row) -> str:
    """The target each row's ratios are held to (single N >= 1e5: multinomial and the others
    against blackjax, and every scheme against particles; groups: not slower than blackjax)."""
    if row.get("groups", 1) > 1 or "×" in str(row.get("case", "")):
        return "blackjax >= 1x"
    if row.get("size", 0) >= 10**5:
        return "blackjax >= 5x, particles >= 1x"
    return "–"


def main(argv=None):
    p = bench.parser(__doc__.splitlines()[0])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--only", choices=["single", "grouped"], help="run one kind of case only")
    p.add_argument("--compile-rounds", type=int, default=1,
                   help="compile time as the median of this many fresh builds of our and "
                        "blackjax's programs, alternating (use with --no-compile-cache)")
    args = p.parse_args(argv)
    if args.compile_rounds < 1:
        p.error(f"--compile-rounds must be at least 1; got {args.compile_rounds}")
    sizes = SMOKE_SINGLE if args.smoke else SINGLE_SIZES
    grouped_sizes = SMOKE_GROUPED if args.smoke else GROUPED_SIZES
    sizes = () if args.only == "grouped" else sizes
    grouped_sizes = () if args.only == "single" else grouped_sizes
    repeats = min(args.repeats, 3) if args.smoke else args.repeats
    _, bj_note = _blackjax()
    _, pt_note = _particles()
    head = bench.header({"anchors": f"{bj_note}; {pt_note}",
                         "setup": f"float32 log-normal weights, M = N, median of {repeats}, "
                                  "grouped = jax.vmap over G groups of K"})
    print(head)
    print()
    rows, bj_note, pt_note = run(sizes, grouped_sizes, repeats, seed=args.seed,
                                 compile_rounds=args.compile_rounds)
    anchors = [name for name in ("blackjax", "particles") if any(name in r for r in rows)]
    print("## Steady state (median; ratio = anchor / jaxpapers, above 1 means jaxpapers is faster)")
    print()
    print(bench.ratio_table(rows, ["scheme", "case"], "jaxpapers", anchors, goal=goal))
    print()
    print("## Best of the repeats (min; less sensitive to other load on a shared machine)")
    print()
    min_rows = [{"scheme": r["scheme"], "case": r["case"],
                 **{name: r.get(f"{name}_min_s") for name in ["jaxpapers", *anchors]}}
                for r in rows]
    print(bench.ratio_table(min_rows, ["scheme", "case"], "jaxpapers", anchors))
    print()
    print("## Compile time (first call: trace + compile + one run)")
    print()
    compile_rows = [{"scheme": r["scheme"], "case": r["case"],
                     **{name: r.get(f"{name}_compile_s") for name in ["jaxpapers", *anchors]}}
                    for r in rows]
    print(bench.ratio_table(compile_rows, ["scheme", "case"], "jaxpapers", anchors,
                            goal=lambda r: "blackjax / jaxpapers >= 0.67x (CPU), >= 0.5x (GPU)"))
    bench.write_json(args.json, {"device": bench.device_name(), "header": head,
                                 "anchors": {"blackjax": bj_note, "particles": pt_note},
                                 "repeats": repeats, "rows": rows})
    return rows


if __name__ == "__main__":
    main()
