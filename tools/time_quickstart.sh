#!/usr/bin/env bash
# Time the README's Quickstart line, verbatim, in a fresh clone with an empty compilation cache.
# Usage: tools/time_quickstart.sh [CLONE_DIR]   (run it on an otherwise idle machine)
# Prints the load average before and after, the whole wall time, and the run's summary table.
set -uo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
dest=${1:-/tmp/jaxpapers-quickstart}
rm -rf "$dest" && git clone -q "$repo" "$dest" && cd "$dest" || exit 1
cmd=$(awk '/^## Quickstart/{q=1} q && /^```bash/{getline; print; exit}' README.md)
export JAXPAPERS_COMPILE_CACHE="$dest/.xla-cache"  # empty: nothing compiled before
echo "+ $cmd"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"
start=$(date +%s)
bash -c "$cmd" > quickstart.out 2> quickstart.err
rc=$?
end=$(date +%s)
echo "exit code $rc; wall $((end - start)) s (install included)"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
cat runs/summary.md 2>/dev/null
echo "--- lines on stderr other than progress bars and section headers:"
grep -v -E '^== |it/s\]|s/it\]|[0-9]+%\|' quickstart.err | head -40
