#!/usr/bin/env bash
# The accelerator side of the speed goals in one pass, for a machine with a GPU or TPU:
# resampling steady state and first-call compile against blackjax (which must be installed),
# and the mean-field model's throughput against the measured matmul rate.
#
#   bash benchmarks/accelerator.sh [OUT_DIR] [--smoke]
#
# Writes OUT_DIR/devices.txt, OUT_DIR/smc_resampling.md and OUT_DIR/meanfield.md.
set -euo pipefail
out="${1:-runs/accelerator}"
smoke="${2:-}"
mkdir -p "$out"
python -c "import jax; print(jax.__version__, jax.devices())" | tee "$out/devices.txt"
python benchmarks/smc_resampling.py --no-compile-cache --compile-rounds 3 $smoke \
    > "$out/smc_resampling.md"
python benchmarks/meanfield.py --only throughput --no-compile-cache $smoke \
    > "$out/meanfield.md"
tail -n 40 "$out/smc_resampling.md" "$out/meanfield.md"
