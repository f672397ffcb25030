"""The benchmark harness of ``benchmarks/*.py``: compile time apart from the steady state,
interleaved timing of both sides, the device and load in a header, ratio tables and JSON."""

from jaxpapers._src.bench import (
    Timing,
    compile_ahead,
    device_name,
    header,
    parser,
    ratio_table,
    time_call,
    time_interleaved,
    write_json,
)

__all__ = ["Timing", "compile_ahead", "device_name", "header", "parser", "ratio_table",
           "time_call", "time_interleaved", "write_json"]
