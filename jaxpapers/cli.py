"""The ``jaxpapers`` console script: list, reproduce, bench."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

_SCALES = ("quick", "paper", "smoke")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, no usage dump
        self.exit(2, f"jaxpapers: error: {message}\n")


def _fail(message: str, code: int = 2) -> int:
    print(f"jaxpapers: error: {message}", file=sys.stderr)
    return code


def _build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="jaxpapers", description="Reproduce papers with JAX kernels.")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)
    sub.add_parser("list", help="the methods and whether each is implemented")
    rep = sub.add_parser("reproduce", help="run a method's headline experiment")
    rep.add_argument("method", help="method name (see `jaxpapers list`) or `all`")
    rep.add_argument("--scale", default="quick", choices=_SCALES)
    rep.add_argument("--seed", type=_non_negative_int, default=0)
    rep.add_argument("--out", default="runs", help="output folder (default: runs/)")
    rep.add_argument("--devices", type=_positive_int, default=None,
                     help="number of devices for the data mesh (on CPU: simulated devices)")
    rep.add_argument("--resume", action="store_true", help="resume from checkpoints in --out")
    rep.add_argument("--no-progress", action="store_true", help="hide progress bars")
    bench = sub.add_parser("bench", help="run benchmarks/FAMILY.py from a source checkout")
    bench.add_argument("family")
    bench.add_argument("--smoke", action="store_true")
    bench.add_argument("--json", default=None)
    return parser


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}")
    return value


def _positive_int(text: str) -> int:
    value = _non_negative_int(text)
    if value == 0:
        raise argparse.ArgumentTypeError("expected a positive integer, got 0")
    return value


def _writable(path: str) -> str | None:
    try:
        os.makedirs(path, exist_ok=True)
        probe = os.path.join(path, ".write_test")
        with open(probe, "w") as f:
            f.write("")
        os.remove(probe)
    except OSError as err:
        return f"--out {path!r} is not writable ({err.strerror or err})"
    return None


def _configure_devices(devices: int | None) -> None:
    """Simulated CPU devices must be requested before jax is imported."""
    if devices and devices > 1 and "jax" not in sys.modules:
        flag = f"--xla_force_host_platform_device_count={devices}"
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + flag).strip()


def _cmd_list() -> int:
    from jaxpapers.experiments import METHODS, implemented

    width = max(len(n) for n in METHODS)
    for name, method in METHODS.items():
        status = "implemented" if implemented(name) else "planned"
        print(f"{name:<{width}}  {status:<11}  {method.title} ({method.paper})")
    return 0


def _cmd_reproduce(args) -> int:
    # Simulated CPU devices must be configured before anything imports jax (implemented()
    # imports the method's package).
    _configure_devices(args.devices)
    from jaxpapers.experiments import METHODS, implemented

    if args.method == "all":
        names = [n for n in METHODS if implemented(n)]
    elif args.method not in METHODS:
        return _fail(f"unknown method {args.method!r}; choose from: all, "
                     + ", ".join(METHODS))
    elif not implemented(args.method):
        return _fail(f"method {args.method!r} is not implemented yet (see `jaxpapers list`)")
    else:
        names = [args.method]
    problem = _writable(args.out)
    if problem:
        return _fail(problem)
    from jaxpapers.experiments import RunContext, reproduce

    for name in names:
        ctx = RunContext(out_dir=os.path.join(args.out, name), scale=args.scale, seed=args.seed,
                         devices=args.devices, resume=args.resume,
                         show_progress=not args.no_progress)
        print(f"== {name} ({args.scale}) -> {ctx.out_dir}", file=sys.stderr)
        try:
            results = reproduce(name, ctx)
        except KeyboardInterrupt:
            print(f"interrupted: finished methods are on disk under {args.out}", file=sys.stderr)
            return 130
        except ValueError as err:
            return _fail(f"{name}: {err}")
        print(f"{name}: {results['verdict']} (wall {results['wall_s']} s; "
              f"report: {ctx.path('report.md')})")
    return 0


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
    parser = _build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    if args.command == "list":
        return _cmd_list()
    if args.command == "reproduce":
        return _cmd_reproduce(args)
    return _cmd_bench(args)


if __name__ == "__main__":
    sys.exit(main())
