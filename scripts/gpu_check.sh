#!/usr/bin/env bash
# On a machine with an NVIDIA GPU: build (or reuse) the CUDA pycaffe in its own venv,
# run the GPU-marked tests and bench.py --gpu, and print a short report.
#   scripts/gpu_check.sh [build_caffe.sh options, e.g. --caffe-source PATH --cuda-arch 86]
# Offline it works as scripts/setup.sh does (see there). On a machine without a GPU
# it says so in one line and exits 1. The venv is $DEEPDREAM_CAFFE_GPU_VENV
# (default .venv-cuda), so the CPU venv keeps its CPU build.
set -euo pipefail
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
say() { echo "gpu_check: $*" >&2; }

gpus=""
command -v nvidia-smi >/dev/null 2>&1 && gpus=$(nvidia-smi -L 2>/dev/null | grep '^GPU' || true)
[ -n "$gpus" ] || { say "no NVIDIA GPU on this machine (nvidia-smi lists none): nothing to check"; exit 1; }

venv="${DEEPDREAM_CAFFE_GPU_VENV:-$top/.venv-cuda}"
logs=$(mktemp -d "${TMPDIR:-/tmp}/gpu_check.XXXXXX")
say "building or reusing the CUDA pycaffe in $venv (logs: $logs)"
DEEPDREAM_CAFFE_VENV="$venv" "$top/scripts/setup.sh" --cuda "$@" 2>"$logs/setup.log" \
  || { say "setup failed: $(tail -n 1 "$logs/setup.log")"; exit 1; }
py="$venv/bin/python"

cd "$top"
trc=0; "$py" -m pytest -m gpu -q -rs >"$logs/tests.log" 2>&1 || trc=$?
grep -q ' passed' "$logs/tests.log" || trc=1  # all skipped: the GPU is not usable from this build
brc=0; "$py" scripts/bench.py --gpu 0 --repeat 1 >"$logs/bench.log" 2>&1 || brc=$?

echo "GPU check"
echo "  gpus:    $(echo "$gpus" | head -n 3 | tr '\n' ';' | sed 's/;$//')"
echo "  caffe:   $(grep 'build_caffe:' "$logs/setup.log" | tail -n 1 | sed 's/^build_caffe: //')"
echo "  tests:   $(tail -n 1 "$logs/tests.log") (exit $trc)"
grep -E '^(deepdream-caffe|notebook loop) ' "$logs/bench.log" | sed 's/^/  bench:   /' || true
grep -E '^(speed-up over the notebook loop|outputs bit-identical)' "$logs/bench.log" | sed 's/^/  bench:   /' || true
[ "$brc" = 0 ] || echo "  bench:   failed (exit $brc): $(tail -n 1 "$logs/bench.log")"
echo "  logs:    $logs"
[ "$trc" = 0 ] && [ "$brc" = 0 ]
