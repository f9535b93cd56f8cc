#!/usr/bin/env bash
# On a machine with an NVIDIA GPU: build (or reuse) the CUDA pycaffe in its own venv,
# run the GPU-marked tests and bench.py --gpu, and print a short report.
#   scripts/gpu_check.sh [--no-gpu] [build_caffe.sh options, e.g. --caffe-source PATH --cuda-arch 86]
# Offline it works as scripts/setup.sh does (see there). On a machine without a GPU it says
# so in one line and exits 1, unless --no-gpu: then it builds the CUDA pycaffe all the same
# and runs the cuda_build-marked tests (links, errors, doctor, and the bundle of
# scripts/gpu_bundle.sh dreaming on the CPU by itself; DEEPDREAM_CAFFE_CPU_PYTHON names the
# CPU build it is compared with, default .venv). The venv is $DEEPDREAM_CAFFE_GPU_VENV
# (default .venv-cuda), so the CPU venv keeps its CPU build.
set -euo pipefail
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
say() { echo "gpu_check: $*" >&2; }

no_gpu=0
[ "${1:-}" = --no-gpu ] && { no_gpu=1; shift; }
gpus=""
command -v nvidia-smi >/dev/null 2>&1 && gpus=$(nvidia-smi -L 2>/dev/null | grep '^GPU' || true)
[ -n "$gpus" ] || [ "$no_gpu" = 1 ] \
  || { say "no NVIDIA GPU on this machine (nvidia-smi lists none): nothing to check (--no-gpu checks the CUDA build)"; exit 1; }

venv="${DEEPDREAM_CAFFE_GPU_VENV:-$top/.venv-cuda}"
logs=$(mktemp -d "${TMPDIR:-/tmp}/gpu_check.XXXXXX")
say "building or reusing the CUDA pycaffe in $venv (logs: $logs)"
DEEPDREAM_CAFFE_VENV="$venv" "$top/scripts/setup.sh" --cuda "$@" 2>"$logs/setup.log" \
  || { say "setup failed: $(tail -n 1 "$logs/setup.log")"; exit 1; }
py="$venv/bin/python"

cd "$top"
if [ "$no_gpu" = 1 ]; then
  trc=0; "$py" -m pytest -m cuda_build -q -rs -s tests/net/test_cuda_build.py >"$logs/tests.log" 2>&1 || trc=$?
  grep -q ' passed' "$logs/tests.log" || trc=1
  echo "CUDA build check (no GPU)"
  echo "  caffe:   $(grep 'build_caffe:' "$logs/setup.log" | tail -n 1 | sed 's/^build_caffe: //')"
  grep -E '^(run.sh cpu_check|cpu dream)' "$logs/tests.log" | sed 's/^/  bundle:  /' || true
  echo "  tests:   $(tail -n 1 "$logs/tests.log") (exit $trc)"
  echo "  logs:    $logs"
  exit "$trc"
fi
trc=0; "$py" -m pytest -m gpu -q -rs >"$logs/tests.log" 2>&1 || trc=$?
grep -q ' passed' "$logs/tests.log" || trc=1  # all skipped: the GPU is not usable from this build
brc=0; "$py" scripts/bench.py --gpu 0 --repeat 1 >"$logs/bench.log" 2>&1 || brc=$?

echo "GPU check"
echo "  gpus:    $(echo "$gpus" | head -n 3 | tr '\n' ';' | sed 's/;$//')"
echo "  caffe:   $(grep 'build_caffe:' "$logs/setup.log" | tail -n 1 | sed 's/^build_caffe: //')"
echo "  tests:   $(tail -n 1 "$logs/tests.log") (exit $trc)"
grep -E '^(deepdream-caffe|notebook loop) ' "$logs/bench.log" | sed 's/^/  bench:   /' || true
grep -E '^(speed-up over the notebook loop|outputs bit-identical|GPU vs CPU)' "$logs/bench.log" | sed 's/^/  bench:   /' || true
[ "$brc" = 0 ] || echo "  bench:   failed (exit $brc): $(tail -n 1 "$logs/bench.log")"
echo "  logs:    $logs"
[ "$trc" = 0 ] && [ "$brc" = 0 ]
