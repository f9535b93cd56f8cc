#!/usr/bin/env bash
# The entry point of the bundle scripts/gpu_bundle.sh writes (it is bundle/run.sh there);
# every path is relative to this file.
#   run.sh gpu_check            GPU tests, bench.py --gpu 0 on the default job (with the same
#                               dream on the CPU: time and difference; GPU memory at 1, 4, 12 MP)
#   run.sh cpu_check [OUT.npy]  a short CPU dream (GoogLeNet, random weights, 256x144, 2 octaves
#                               x 3 steps) saved to OUT.npy, and what the process loaded from where
#   run.sh doctor | dream ARGS... | python ARGS...
# cuBLAS/cuRAND (CUDA 13), first found: the bundle's lib/, $DEEPDREAM_CAFFE_CUDA_LIBS, a
# site-packages nvidia/cu13/lib (/opt/*/.venv, /usr/local, /usr, ~/.local), the system's.
set -euo pipefail
b=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
say() { echo "run.sh: $*" >&2; }
die() { say "$*"; exit 1; }
py="$b/python/usr/bin/python3.11"

# Python and the libraries are Debian 12's and need glibc >= 2.36; on an older system Python runs
# on the bundle's own glibc through its loader (python3.11-glibc), and so do its child processes.
glibc=$(getconf GNU_LIBC_VERSION 2>/dev/null | awk '{print $2}')
if [ "$(printf '%s\n' 2.36 "${glibc:-0}" | sort -V | head -n 1)" != 2.36 ] || [ "${DEEPDREAM_CAFFE_BUNDLE_GLIBC:-}" = 1 ]; then
  py="$b/python/usr/bin/python3.11-glibc"
fi

cuda_libs=""
if [ ! -e "$b/lib/libcublas.so.13" ]; then
  for d in ${DEEPDREAM_CAFFE_CUDA_LIBS:-} /opt/*/.venv/lib/python3*/site-packages/nvidia/cu13/lib \
           /opt/*/lib/python3*/site-packages/nvidia/cu13/lib /usr/local/lib/python3*/dist-packages/nvidia/cu13/lib \
           /usr/lib/python3/dist-packages/nvidia/cu13/lib "${HOME:-/nonexistent}"/.local/lib/python3*/site-packages/nvidia/cu13/lib; do
    [ -e "$d/libcublas.so.13" ] && [ -e "$d/libcurand.so.10" ] && { cuda_libs=$d; break; }
  done
  if [ -z "$cuda_libs" ] && ! { /sbin/ldconfig -p 2>/dev/null || true; } | grep -q 'libcublas\.so\.13 '; then
    die "cuBLAS and cuRAND for CUDA 13 (libcublas.so.13, libcurand.so.10) not found: set DEEPDREAM_CAFFE_CUDA_LIBS to the folder that has them (pip install nvidia-cublas nvidia-curand puts them in site-packages/nvidia/cu13/lib)"
  fi
fi
export LD_LIBRARY_PATH="$b/lib${cuda_libs:+:$cuda_libs}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export PYTHONPATH="$b/app:$b/caffe/python:$b/site"
export PYTHONNOUSERSITE=1 PYTHONDONTWRITEBYTECODE=1
export DEEPDREAM_CAFFE_CACHE="${DEEPDREAM_CAFFE_CACHE:-$b/cache}"
export PATH="${PATH:-/usr/bin:/bin}"

# googlenet: the deploy.prototxt and its random-weights caffemodel (made once, seed 0), as bench.py makes them.
googlenet() {
  "$py" -c 'import os, sys; sys.path.insert(0, sys.argv[1]); import bench, pathlib
print(*bench.googlenet_files(pathlib.Path(os.environ["DEEPDREAM_CAFFE_CACHE"]) / "bench"))' "$b/app/scripts"
}

cmd=${1:-}
[ $# -gt 0 ] && shift
[ "$cmd" = dream ] || [ "$cmd" = python ] || cd "$b/app"  # not the caller's folder first on sys.path
case "$cmd" in
  cpu_check)
    out=${1:-$DEEPDREAM_CAFFE_CACHE/cpu_check.npy}
    mkdir -p "$(dirname "$out")"
    gn=$(googlenet) || die "pycaffe does not load from the bundle (see above)"
    read -r proto weights <<<"$gn"
    t0=$(date +%s.%N)
    "$py" "$b/app/scripts/bench.py" --job product --out "$out" --proto "$proto" --weights "$weights" \
      --layer inception_4c/output --size 256x144 --iters 3 --octaves 2 --seed 0 >/dev/null
    echo "cpu dream: 256x144, 2 octaves x 3 steps, seed 0, $(awk "BEGIN {printf \"%.1f\", $(date +%s.%N) - $t0}") s -> $out"
    echo "weights: $weights"
    "$py" - "$b" <<'PY'
import sys
from deepdream_caffe.net.caffe_env import import_caffe

caffe = import_caffe()
caffe.set_mode_cpu()
import numpy, scipy.ndimage, PIL.Image, skimage, google.protobuf, deepdream_caffe  # noqa: E401,F401
b = sys.argv[1]
print("python:", sys.executable, sys.version.split()[0])
for m in ("numpy", "scipy", "PIL", "skimage", "google.protobuf", "caffe", "deepdream_caffe"):
    print(f"{m}: {sys.modules[m].__file__}")
with open("/proc/self/maps") as f:
    objs = sorted({ln.split()[-1] for ln in f if ".so" in ln.split()[-1]})
print("shared objects from outside the bundle:", " ".join(o for o in objs if not o.startswith(b + "/")) or "none")
PY
    ;;
  gpu_check)
    command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L 2>/dev/null | grep -q '^GPU' \
      || die "no NVIDIA GPU here (nvidia-smi lists none): run.sh cpu_check checks the bundle without one"
    logs=${DEEPDREAM_CAFFE_LOGS:-$(mktemp -d "${TMPDIR:-/tmp}/gpu_check.XXXXXX")}
    mkdir -p "$logs"
    start=$SECONDS
    echo "== deepdream-caffe bundle, GPU check"
    sed 's/^/  /' "$b/BUILD"
    echo "  gpu: $(nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap --format=csv,noheader | head -n 3 | tr '\n' ';')"
    "$py" -m deepdream_caffe.cli doctor >"$logs/doctor.log" 2>&1 || true
    grep -E '^(caffe|gpu|cpu|kernel family):' "$logs/doctor.log" | sed 's/^/  /'
    trc=0; "$py" -m pytest -p no:cacheprovider -m gpu -q -rs tests/net/test_gpu.py >"$logs/tests.log" 2>&1 || trc=$?
    grep -q ' passed' "$logs/tests.log" || trc=1  # all skipped: this Caffe cannot use the GPU
    echo "  tests (pytest -m gpu): $(tail -n 1 "$logs/tests.log") (exit $trc)"
    brc=0; "$py" scripts/bench.py --gpu 0 --repeat 1 --rss 1,4,12 >"$logs/bench.log" 2>&1 || brc=$?
    grep -E '^(machine|job|notebook loop |deepdream-caffe |speed-up|outputs bit-identical|GPU memory|GPU vs CPU| +[0-9.]+ MP)' \
      "$logs/bench.log" | sed 's/^/  bench: /' || true
    [ "$brc" = 0 ] || echo "  bench: failed (exit $brc): $(tail -n 1 "$logs/bench.log")"
    echo "  seconds: $((SECONDS - start)); logs: $logs"
    [ "$trc" = 0 ] && [ "$brc" = 0 ]
    ;;
  doctor) exec "$py" -m deepdream_caffe.cli doctor "$@" ;;
  dream) exec "$py" -m deepdream_caffe.cli dream "$@" ;;
  python) exec "$py" "$@" ;;
  *) sed -n '4,10p' "$0" >&2; exit 2 ;;
esac
