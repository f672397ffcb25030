"""The ``jaxpapers`` console script: list, reproduce, diff, bench."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, no usage dump
        self.exit(2, f"jaxpapers: error: {message}\n")


def _fail(message: str, code: int = 2) -> int:
    print(f"jaxpapers: error: {message}", file=sys.stderr)
    return code


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}")
    return value


#: seeds are made into keys with ``jax.random.key``, which takes 32-bit seeds without x64
MAX_SEED = 2**32 - 1


def _seed(text: str) -> int:
    value = _non_negative_int(text)
    if value > MAX_SEED:
        raise argparse.ArgumentTypeError(f"expected a seed in [0, {MAX_SEED}] (a 32-bit key), "
                                         f"got {text!r}")
    return value


def _out_dir(text: str) -> str:
    """``--out`` as an absolute path (``~`` expanded), resolved once here: nothing after the
    command line sees a relative output folder."""
    if not text.strip():
        raise argparse.ArgumentTypeError("expected a folder, got an empty string")
    return os.path.abspath(os.path.expanduser(text))


def _tolerance(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a finite tolerance >= 0, got {text!r}")
    return value


def _positive_arg(text: str) -> int:
    """An argparse type: a positive integer from the command line (config fields use
    :func:`jaxpapers._src.checks.require_positive_int_field`)."""
    value = _non_negative_int(text)
    if value == 0:
        raise argparse.ArgumentTypeError("expected a positive integer, got 0")
    return value


def _method_scales() -> dict[str, list[str]]:
    """``{method: [scale names]}`` of the implemented methods, from their runners' SCALES."""
    from jaxpapers.experiments import METHODS, implemented, scales

    return {name: list(scales(name)) for name in METHODS if implemented(name)}


def _build_parser(method_scales: dict[str, list[str]]) -> argparse.ArgumentParser:
    from jaxpapers import __version__
    from jaxpapers.experiments import METHODS

    parser = _Parser(prog="jaxpapers", description="Reproduce papers with JAX kernels.")
    parser.add_argument("--version", action="version", version=f"jaxpapers {__version__}")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)
    sub.add_parser("list", help="the methods, whether each is implemented, and their scales")

    all_scales = list(dict.fromkeys(s for names in method_scales.values() for s in names))
    epilog = "methods and their scales:\n" + "\n".join(
        f"  {name:<22} {', '.join(method_scales.get(name, [])) or '(planned)'}  -- {m.title}"
        for name, m in METHODS.items())
    rep = sub.add_parser("reproduce", help="run a method's headline experiment", epilog=epilog,
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    rep.add_argument("method", help="method name (see below) or `all`")
    rep.add_argument("--scale", default="quick", choices=all_scales,
                     help="sizes of the run (default: quick, minutes on a CPU)")
    rep.add_argument("--seed", type=_seed, default=0, help=f"base seed, 0 to {MAX_SEED}")
    rep.add_argument("--out", type=_out_dir, default="runs",
                     help="output folder, relative to the working folder (default: runs/)")
    rep.add_argument("--devices", type=_positive_arg, default=None,
                     help="devices of the data mesh (on a CPU: simulated devices)")
    rep.add_argument("--resume", action="store_true",
                     help="resume trainings from their checkpoints in --out (same seed and "
                          "config only)")
    rep.add_argument("--no-progress", action="store_true", help="hide progress bars")
    rep.add_argument("--no-compile-cache", action="store_true",
                     help="do not use the persistent compilation cache "
                          "($JAXPAPERS_COMPILE_CACHE sets its folder, 'off' disables it)")
    dist = rep.add_argument_group(
        "many hosts (jax.distributed; auto-detected on SLURM, Open MPI, Cloud TPU, Kubernetes)")
    dist.add_argument("--coordinator", metavar="ADDR", default=None,
                      help="coordinator address host:port (process 0's host)")
    dist.add_argument("--num-processes", type=_positive_arg, default=None)
    dist.add_argument("--process-id", type=_non_negative_int, default=None)
    dist.add_argument("--coordinator-timeout", type=_positive_arg, default=30, metavar="SECONDS",
                      help="give up when the coordinator or a process does not answer within "
                           "this many seconds (default: 30)")

    diff = sub.add_parser("diff", help="compare two runs' results.json (numbers, leaf by leaf)")
    diff.add_argument("a", help="a results.json or a run folder")
    diff.add_argument("b", help="a results.json or a run folder")
    diff.add_argument("--rtol", type=_tolerance, default=0.0,
                      help="relative tolerance (default 0)")

    bench = sub.add_parser("bench", help="run benchmarks/FAMILY.py from a source checkout")
    bench.add_argument("family")
    bench.add_argument("--smoke", action="store_true")
    bench.add_argument("--json", default=None)
    return parser


def _writable(path: str) -> str | None:
    try:
        os.makedirs(path, exist_ok=True)
        probe = os.path.join(path, f".write_test_{os.getpid()}")
        with open(probe, "w") as f:
            f.write("")
        os.remove(probe)
    except OSError as err:
        return f"--out {path!r} is not writable ({err.strerror or err})"
    return None


def _cmd_list(method_scales) -> int:
    from jaxpapers.experiments import METHODS

    width = max(len(n) for n in METHODS)
    for name, method in METHODS.items():
        status = "implemented" if name in method_scales else "planned"
        scales = f" [{', '.join(method_scales[name])}]" if name in method_scales else ""
        print(f"{name:<{width}}  {status:<11}  {method.title} ({method.paper}){scales}")
    return 0


def _start_processes(args) -> str | None:
    """Start jax.distributed and configure devices before any device is used."""
    import jax

    from jaxpapers.sharding import initialize

    try:
        multi = initialize(args.coordinator, args.num_processes, args.process_id,
                           timeout=args.coordinator_timeout)
    except ValueError as err:
        return f"{err} (--coordinator, --num-processes, --process-id)"
    except ConnectionError as err:
        return str(err)
    if args.devices and not multi and args.devices > 1:
        # on a CPU host this creates the simulated devices; elsewhere it is ignored
        jax.config.update("jax_num_cpu_devices", args.devices)
    if args.devices and args.devices > jax.device_count():
        return f"--devices {args.devices}: only {jax.device_count()} device(s) available"
    return None


def _one_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__


def _run_method(name: str, args) -> dict:
    """Run one method; a failure is caught and described, so ``all`` can go on.

    Returns a summary row: ``status`` is ``"ok"``, ``"skipped"`` (an optional package or data set
    is missing; ``error`` says what to install) or ``"failed"`` (``error`` is the one-line
    reason; the traceback is written to ``<out>/<method>/error.log``).
    """
    import traceback

    from jaxpapers._src.errors import MissingDependencyError
    from jaxpapers.experiments import RunContext, reproduce
    from jaxpapers.sharding import is_primary

    ctx = RunContext(out_dir=os.path.join(args.out, name), scale=args.scale, seed=args.seed,
                     devices=args.devices, resume=args.resume,
                     show_progress=not args.no_progress, method=name)
    row = {"method": name, "status": "ok", "error": "", "report": ctx.path("report.md"),
           "held": None, "tie": None, "reversed": None, "wall_s": None, "compile_s": None}
    if is_primary():
        print(f"== {name} ({args.scale}) -> {ctx.out_dir}", file=sys.stderr)
    start = time.perf_counter()
    try:
        results = reproduce(name, ctx)
    except MissingDependencyError as err:
        row.update(status="skipped", error=_one_line(err))
    except Exception as err:  # reported in one line; `all` goes on with the rest
        log = ctx.path("error.log")
        try:
            os.makedirs(ctx.out_dir, exist_ok=True)
            with open(log, "w") as f:
                traceback.print_exc(file=f)
        except OSError:
            log = None
        where = f" (traceback: {log})" if log else ""
        row.update(status="failed", error=f"{type(err).__name__}: {_one_line(err)}{where}")
    else:
        if os.path.exists(ctx.path("error.log")):  # from an earlier failed run of this method
            os.remove(ctx.path("error.log"))
        v = results["verdict"]
        row.update(held=v["held"], tie=v["tie"], reversed=v["reversed"],
                   wall_s=results["wall_s"], compile_s=results["compile_s"])
        if is_primary():
            print(f"{name}: {v['summary']} [{v['held']} held, {v['tie']} tie, {v['reversed']} "
                  f"reversed] (wall {results['wall_s']:.1f} s, compile {results['compile_s']:.1f}"
                  f" s; report: {ctx.path('report.md')})")
    if row["wall_s"] is None:
        row["wall_s"] = round(time.perf_counter() - start, 3)
    if row["status"] != "ok" and is_primary():
        print(f"jaxpapers: {name}: {row['status']}: {row['error']}", file=sys.stderr)
    return row


def summary_table(rows: list[dict]) -> str:
    """The Markdown table ``reproduce all`` prints and writes to ``<out>/summary.md``."""
    lines = ["| method | held / tie / reversed | wall (s) | compile (s) | status | report |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        verdicts = "–" if r["held"] is None else f"{r['held']} / {r['tie']} / {r['reversed']}"
        compile_s = "–" if r["compile_s"] is None else f"{r['compile_s']:.1f}"
        status = r["status"] if r["status"] == "ok" else f"{r['status']}: {r['error']}"
        report = r["report"] if r["status"] == "ok" else "–"
        lines.append(f"| {r['method']} | {verdicts} | {r['wall_s']:.1f} | {compile_s} | "
                     f"{status} | {report} |")
    return "\n".join(lines)


def _cmd_reproduce(args, method_scales) -> int:
    from jaxpapers.experiments import METHODS

    if args.method == "all":
        names = [n for n in method_scales if args.scale in method_scales[n]]
    elif args.method not in METHODS:
        return _fail(f"unknown method {args.method!r}; choose from: all, " + ", ".join(METHODS))
    elif args.method not in method_scales:
        return _fail(f"method {args.method!r} is not implemented yet (see `jaxpapers list`)")
    elif args.scale not in method_scales[args.method]:
        return _fail(f"{args.method} has no scale {args.scale!r}; choose from: "
                     + ", ".join(method_scales[args.method]))
    else:
        names = [args.method]
    problem = _writable(args.out) or _start_processes(args)
    if problem:
        return _fail(problem)
    if not args.no_compile_cache:
        from jaxpapers._src.compile_cache import enable_compile_cache

        enable_compile_cache()
    from jaxpapers.sharding import is_primary

    rows = []
    for name in names:
        try:
            rows.append(_run_method(name, args))
        except KeyboardInterrupt:
            print(f"interrupted: finished methods are on disk under {args.out}", file=sys.stderr)
            return 130
    bad = [r for r in rows if r["status"] != "ok"]
    if args.method == "all" and is_primary():
        table = summary_table(rows)
        with open(os.path.join(args.out, "summary.md"), "w") as f:
            f.write(table + "\n")
        print(f"\n{table}\n")
    if bad:
        if args.method == "all":
            return _fail(f"{len(bad)} of {len(rows)} methods did not finish: "
                         + "; ".join(f"{r['method']} ({r['status']}: {r['error']})" for r in bad),
                         code=1)
        return 1
    return 0


def _cmd_diff(args) -> int:
    from jaxpapers.experiments import diff_results, load_results

    try:
        a, b = load_results(args.a), load_results(args.b)
    except OSError as err:
        return _fail(f"{err.filename or args.a}: {err.strerror or err}")
    except ValueError as err:
        return _fail(str(err))
    for field in ("method", "scale"):
        if a[field] != b[field]:
            return _fail(f"cannot compare runs of different {field}s: {a[field]!r} ({args.a}) "
                         f"and {b[field]!r} ({args.b})")
    found = diff_results(a, b, rtol=args.rtol)
    for path, va, vb in found:
        print(f"{path}: {va!r} != {vb!r}")
    print(f"{len(found)} difference(s)" + (f" (rtol {args.rtol})" if args.rtol else ""),
          file=sys.stderr)
    return 1 if found else 0


def _cmd_bench(args) -> int:
    root = Path(__file__).resolve().parents[1] / "benchmarks"
    script = root / f"{args.family}.py"
    if not script.is_file():
        known = sorted(p.stem for p in root.glob("*.py")) if root.is_dir() else []
        hint = f"available: {', '.join(known)}" if known else \
            "benchmarks/ ships with the source checkout only"
        return _fail(f"no benchmark {args.family!r} ({hint})")
    cmd = [sys.executable, str(script)] + (["--smoke"] if args.smoke else [])
    cmd += ["--json", args.json] if args.json else []
    return subprocess.call(cmd)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] in (["--version"], ["-V"]):  # answer without importing jax
        from jaxpapers import __version__

        print(f"jaxpapers {__version__}")
        return 0
    method_scales = _method_scales()
    parser = _build_parser(method_scales)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    if args.command == "list":
        return _cmd_list(method_scales)
    if args.command == "reproduce":
        return _cmd_reproduce(args, method_scales)
    if args.command == "diff":
        return _cmd_diff(args)
    return _cmd_bench(args)


if __name__ == "__main__":
    sys.exit(main())
