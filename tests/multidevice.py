"""Run a snippet with 8 simulated CPU devices in a fresh Python process.

The device count must be fixed before jax is imported, so sharding tests cannot run in the main
pytest process. ``run_with_devices(code)`` executes ``code`` (which should assert its own
equalities) and fails the calling test with the child's output if it exits non-zero.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

NUM_FAKE_DEVICES = 8


def run_with_devices(code: str, num_devices: int = NUM_FAKE_DEVICES, timeout: int = 900) -> str:
    env = dict(os.environ)
    env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") +
                        f" --xla_force_host_platform_device_count={num_devices}").strip()
    env["JAX_PLATFORMS"] = "cpu"
    prelude = f"import jax\nassert jax.device_count() == {num_devices}, jax.devices()\n"
    proc = subprocess.run([sys.executable, "-c", prelude + textwrap.dedent(code)], env=env,
                          capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise AssertionError(f"multi-device child failed ({proc.returncode}):\n"
                             f"{proc.stdout[-4000:]}\n{proc.stderr[-8000:]}")
    return proc.stdout
