#!/usr/bin/env bash
# Runs bench/boltz_gpu.py on the lent GPU machine, in one device call, from what bench/device_kit.py
# packed here:  run(command='bash bench/boltz_gpu_device.sh', carry=['.whl', '.bench-cache'], timeout_s=600)
#
# Installs the carried wheels into /tmp/site (nothing there can reach a package index), prints
# Python's version and the GPU (the bench records the package versions), then runs the benchmark
# with the results and logs under $OUT, which the device tool brings back (also when the command
# runs past its limit: each arm's figures are written as soon as it ends). Arguments replace the default benchmark arguments, sized to end well
# inside the device's 10-minute command limit.
#
# Rehearsal on a CPU (a Python environment holding what the GPU image holds, wheels for its version):
#   PYTHON=/tmp/devenv/bin/python WHEELS=/tmp/kit311/.whl OUT=/tmp/out \
#     bash bench/boltz_gpu_device.sh --size tiny --accelerator cpu --fast --residues 40 --ligands 3 --per-process 2
set -uo pipefail
PYTHON=${PYTHON:-python3}
WHEELS=${WHEELS:-.whl}
SITE=${SITE:-/tmp/site}
OUT=${OUT:-$(mktemp -d)}
CACHE=${CACHE:-.bench-cache}
ARGS=("$@")
[ ${#ARGS[@]} -gt 0 ] || ARGS=(--ligands 8 --per-process 2)

"$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" "$WHEELS"/*.whl \
  || { echo "installing the carried wheels failed"; exit 1; }
export PYTHONPATH="$SITE" PATH="$SITE/bin:$PATH" PYTHONUNBUFFERED=1

{
  "$PYTHON" --version
  command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
} 2>&1 | tee "$OUT/versions.txt"

"$PYTHON" bench/boltz_gpu.py --cache "$CACHE" --out "$OUT/boltz_gpu.json" --logs "$OUT" "${ARGS[@]}" 2>&1 \
  | tee "$OUT/bench.log"
