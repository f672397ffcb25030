"""Benchmark harness shared by ``benchmarks/*.py``.

Timing rules: the first call (trace + compile + one run) is reported separately as
``compile_s``; then ``repeats`` timed calls, each ended by ``jax.block_until_ready`` (or the
anchor's own synchronisation), and the median is the steady-state figure.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as _dt
import json
import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["Timing", "time_call", "time_interleaved", "compile_ahead", "header", "ratio_table",
           "parser", "write_json", "device_name"]


@dataclasses.dataclass(frozen=True)
class Timing:
    """One function's timing.

    Attributes:
      compile_s: seconds of the first call (tracing, compilation and one execution).
      median_s: median seconds of the timed repeats (the steady state).
      min_s: the fastest timed repeat.
      repeats: how many timed repeats.
    """

    compile_s: float
    median_s: float
    min_s: float
    repeats: int


def _sync(out: Any) -> Any:
    import jax

    return jax.block_until_ready(out)


def time_call(fn: Callable[..., Any], *args: Any, repeats: int = 7,
              sync: Callable[[Any], Any] | None = None) -> Timing:
    """Time ``fn(*args)``: the first call apart, then ``repeats`` timed calls.

    Args:
      fn: the function (jitted or not).
      *args: its arguments.
      repeats: timed calls after the first.
      sync: waits for a result (default ``jax.block_until_ready``; a PyTorch anchor passes its
        own synchronisation).

    Returns:
      A :class:`Timing`.

    >>> t = time_call(lambda x: x + 1, 1.0, repeats=3)
    >>> t.repeats, t.min_s <= t.median_s
    (3, True)
    """
    sync = _sync if sync is None else sync
    start = time.perf_counter()
    sync(fn(*args))
    compile_s = time.perf_counter() - start
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        sync(fn(*args))
        times.append(time.perf_counter() - start)
    return Timing(compile_s, statistics.median(times), min(times), repeats)


Call = tuple[Callable[..., Any], tuple, Callable[[Any], Any] | None]


def time_interleaved(calls: dict[str, Call], repeats: int = 7, warm: int = 1) -> dict[str, Timing]:
    """Time several functions against each other, alternating between them.

    ``calls`` maps a name to ``(fn, args, sync)`` (``sync`` None: ``jax.block_until_ready``).
    Each function's first call is timed alone as its ``compile_s``; then ``repeats`` rounds give
    every function, in turn, ``warm`` untimed calls (caches warm again after the other
    functions ran) and one timed call. A machine whose speed drifts over seconds (other load,
    clock changes) then slows both sides of a ratio alike, instead of whichever ran in the slow
    spell.

    Args:
      calls: ``{name: (fn, args, sync)}``.
      repeats: timed rounds.
      warm: untimed calls of each function before its timed call in every round.

    Returns:
      ``{name: Timing}``.
    """
    syncs = {name: _sync if sync is None else sync for name, (_, _, sync) in calls.items()}
    compile_s, times = {}, {name: [] for name in calls}
    for name, (fn, args, _) in calls.items():
        start = time.perf_counter()
        syncs[name](fn(*args))
        compile_s[name] = time.perf_counter() - start
    for _ in range(repeats):
        for name, (fn, args, _) in calls.items():
            for _ in range(warm):
                syncs[name](fn(*args))
            start = time.perf_counter()
            syncs[name](fn(*args))
            times[name].append(time.perf_counter() - start)
    return {name: Timing(compile_s[name], statistics.median(times[name]), min(times[name]),
                         repeats) for name in calls}


def compile_ahead(fn: Callable[..., Any], *args: Any) -> tuple[Callable[..., Any], float]:
    """Compile ``fn`` for ``args`` ahead of time and measure how long that took.

    Args:
      fn: a function, jitted or not (it is jitted if it has no ``lower``).
      *args: example arguments (arrays or ``jax.ShapeDtypeStruct``).

    Returns:
      ``(compiled, seconds)``: calling ``compiled(*args)`` runs exactly the program
      ``jax.jit(fn)(*args)`` would, without compiling again.
    """
    import jax

    jitted = fn if hasattr(fn, "lower") else jax.jit(fn)
    start = time.perf_counter()
    compiled = jitted.lower(*args).compile()
    return compiled, time.perf_counter() - start


def device_name() -> str:
    """The device the benchmark runs on, for its header.

    Returns:
      The first device's platform and kind and the device count, e.g. ``cpu: x86_64 (2 cores)
      x1``; on a CPU the processor and core count stand in for the kind.
    """
    import jax

    device = jax.devices()[0]
    kind = getattr(device, "device_kind", device.platform)
    if device.platform == "cpu":
        kind = f"{platform.processor() or platform.machine()} ({os.cpu_count()} cores)"
    return f"{device.platform}: {kind} x{jax.device_count()}"


def header(extra: dict[str, str] | None = None) -> str:
    """The lines every benchmark prints first: date, device, versions, load average and the
    compile cache, then ``extra``'s ``name: value`` lines.

    Args:
      extra: more ``{name: value}`` lines.

    Returns:
      The header as one string.
    """
    import jax

    cache = jax.config.jax_compilation_cache_dir
    cache_note = f"{cache} (compile times of cached programs measure loading)" if cache else "off"
    lines = [
        f"date: {_dt.datetime.now(_dt.UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"device: {device_name()}",
        f"jax {jax.__version__}, python {platform.python_version()}",
        f"load average: {' '.join(f'{v:.2f}' for v in os.getloadavg())}",
        f"compile cache: {cache_note}",
    ]
    for name, value in (extra or {}).items():
        lines.append(f"{name}: {value}")
    return "\n".join(lines)


def _fmt_seconds(value: float | None) -> str:
    if value is None:
        return "–"
    if value >= 1.0:
        return f"{value:.2f} s"
    if value >= 1e-3:
        return f"{value * 1e3:.2f} ms"
    return f"{value * 1e6:.1f} µs"


def ratio_table(rows: Sequence[dict[str, Any]], keys: Sequence[str], ours: str,
                anchors: Sequence[str], goal: Callable[[dict[str, Any]], str] | None = None
                ) -> str:
    """A Markdown table of times and ratios.

    Args:
      rows: one dict per table row: the ``keys`` values and seconds under ``ours`` and each
        anchor's name (missing or None: a dash).
      keys: the columns that name a row (sizes, settings).
      ours: the key of our time.
      anchors: the keys of the anchors' times.
      goal: optional ``goal(row) -> str``, a last column (the target a row's ratio is held to).

    Returns:
      The table: ``keys``, our time, each anchor's time and each ``anchor / ours`` ratio.

    >>> print(ratio_table([{"n": 8, "ours": 0.001, "numpy": 0.004}], ["n"], "ours", ["numpy"]))
    | n | ours | numpy | numpy / ours |
    |---|---|---|---|
    | 8 | 1.00 ms | 4.00 ms | 4.0x |
    """
    head = list(keys) + [ours] + [f"{a}" for a in anchors] + [f"{a} / {ours}" for a in anchors]
    head += ["goal"] if goal is not None else []
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        ours_s = row.get(ours)
        cells = [str(row[k]) for k in keys] + [_fmt_seconds(ours_s)]
        cells += [_fmt_seconds(row.get(a)) for a in anchors]
        for a in anchors:
            anchor_s = row.get(a)
            ok = anchor_s is not None and ours_s
            cells.append(f"{anchor_s / ours_s:.1f}x" if ok else "–")
        if goal is not None:
            cells.append(goal(row))
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


class _Parser(argparse.ArgumentParser):
    """Turns the persistent compilation cache on after parsing, unless --no-compile-cache."""

    def parse_args(self, args=None, namespace=None):
        parsed = super().parse_args(args, namespace)
        if not parsed.no_compile_cache:
            from jaxpapers._src.compile_cache import enable_compile_cache

            enable_compile_cache()
        return parsed


def parser(description: str) -> argparse.ArgumentParser:
    """The command line every benchmark shares: ``--smoke``, ``--json PATH``, ``--repeats`` and
    ``--no-compile-cache`` (parsing turns JAX's persistent compilation cache on otherwise).

    Args:
      description: the benchmark's ``--help`` text.

    Returns:
      An ``argparse.ArgumentParser`` the benchmark may extend.
    """
    p = _Parser(description=description)
    p.add_argument("--smoke", action="store_true", help="tiny sizes, a few repeats (CI)")
    p.add_argument("--json", metavar="PATH", help="also write the measurements as JSON")
    p.add_argument("--repeats", type=int, default=7, help="timed repeats per cell (median)")
    p.add_argument("--no-compile-cache", action="store_true",
                   help="compile everything afresh (with the cache on, a second run's compile "
                        "times measure loading from the cache)")
    return p


def write_json(path: str | None, payload: dict[str, Any]) -> None:
    """Write a benchmark's measurements as indented JSON.

    Args:
      path: the file (``--json``); nothing is written when it is empty or None.
      payload: the measurements (values JSON cannot hold are written as strings).

    Returns:
      None.

    Raises:
      OSError: the file cannot be written.
    """
    if not path:
        return
    with open(path, "w") as f:
        json.dump(payload, f, indent=2, default=str)
