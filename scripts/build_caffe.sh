#!/usr/bin/env bash
# Build pycaffe from Debian's Caffe source package and make it importable
# from one Python interpreter (normally the project's .venv).
#
#   scripts/build_caffe.sh --python .venv/bin/python [--cuda] [--cuda-arch LIST]
#                          [--jobs N] [--force]
#
# Order of preference, first that works wins:
#   1. a `caffe` the interpreter already imports (conda-forge, a system build);
#   2. $CAFFE_ROOT naming a built Caffe tree (python/caffe/_caffe.so present);
#   3. a finished build in the cache, keyed by source version, patch set,
#      Python version and CPU/CUDA;
#   4. a new build: apt build deps, bullseye source via a private apt config,
#      Debian's patches + ours (scripts/caffe-patches), CMake, make pycaffe.
# The result is put on the interpreter's path with a .pth file, so nothing
# needs PYTHONPATH. A build is used only after it is complete and an import
# plus a forward/backward through a tiny net succeeds; a half-finished one
# is resumed and, if that fails, rebuilt from scratch.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SRC_VERSION="1.0.0+git20180821.99bd997-8"
ORIG_VERSION="1.0.0+git20180821.99bd997"
DEBIAN_SUITE="bullseye"
DEBIAN_MIRRORS="${DEEPDREAM_CAFFE_DEBIAN_MIRROR:-http://deb.debian.org/debian http://archive.debian.org/debian}"
APT_BUILD_DEPS="cmake g++ make patch xz-utils libboost-system-dev libboost-thread-dev libboost-filesystem-dev libboost-python-dev libboost-regex-dev libprotobuf-dev protobuf-compiler libgoogle-glog-dev libgflags-dev libhdf5-dev libopenblas-dev"

py=python3
cuda=0
cuda_arch="Auto"
jobs=$(( $(nproc) + 1 ))
force=0
while [ $# -gt 0 ]; do
  case "$1" in
    --python) py=$2; shift 2 ;;
    --cuda) cuda=1; shift ;;
    --cuda-arch) cuda_arch=$2; shift 2 ;;
    --jobs) jobs=$2; shift 2 ;;
    --force) force=1; shift ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "build_caffe: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
done

cache_root="${DEEPDREAM_CAFFE_CACHE:-$HOME/.cache/deepdream-caffe}"
say() { echo "build_caffe: $*" >&2; }
die() { say "$*"; exit 1; }

# run STEP LOG CMD...: run a step quietly; on failure one line naming it and its log.
run() {
  local step=$1 log=$2; shift 2
  if ! "$@" >>"$log" 2>&1; then
    die "step '$step' failed; see $log (last line: $(tail -n 1 "$log" | cut -c1-160))"
  fi
}

command -v "$py" >/dev/null 2>&1 || die "python interpreter '$py' not found"
site=$("$py" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
pth="$site/deepdream_caffe_pycaffe.pth"

# OpenMP: the project's patches run Caffe's own loops (pooling, im2col,
# element-wise math) on all cores.
CXX_FLAGS="-fopenmp"
# The patch set, flags and interpreter decide the key: change one, get a new build.
patch_hash=$( (cat "$here"/caffe-patches/*.patch 2>/dev/null || true; echo "$CXX_FLAGS") | sha1sum | cut -c1-10)
pyver=$("$py" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
npmajor=$("$py" -c 'import numpy; print(numpy.__version__.split(".")[0])' 2>/dev/null) \
  || die "numpy must be installed in '$py' before building (pycaffe compiles against it)"
variant=cpu; [ "$cuda" = 1 ] && variant="cuda-$cuda_arch"
key="caffe-${SRC_VERSION//+/_}-p${patch_hash}-py${pyver}-np${npmajor}-${variant}"
dir="$cache_root/caffe/$key"

# 1. Something already importable that is not one of our own builds.
if [ "$force" = 0 ] && existing=$("$py" -c 'import caffe, os; print(os.path.dirname(caffe.__file__))' 2>/dev/null); then
  case "$existing" in
    "$dir"/*) [ -f "$dir/.complete" ] && { say "up to date ($key)"; exit 0; } ;;
    "$cache_root"/caffe/*) rm -f "$pth" ;;  # an older build of ours: replace it
    *) say "using the caffe already importable at $existing"; exit 0 ;;
  esac
fi

# 2. A built tree named by CAFFE_ROOT.
if [ "$force" = 0 ] && [ -n "${CAFFE_ROOT:-}" ]; then
  [ -f "$CAFFE_ROOT/python/caffe/_caffe.so" ] \
    || die "CAFFE_ROOT=$CAFFE_ROOT has no python/caffe/_caffe.so; build it (make pycaffe) or unset CAFFE_ROOT"
  echo "$CAFFE_ROOT/python" >"$pth"
  "$py" -c 'import caffe' 2>/dev/null || { rm -f "$pth"; die "caffe from CAFFE_ROOT=$CAFFE_ROOT does not import in $py"; }
  say "using CAFFE_ROOT=$CAFFE_ROOT"
  exit 0
fi

mkdir -p "$dir/logs" || die "cannot create the build cache $dir"
exec 9>"$dir.lock"
flock 9  # a second build of the same key waits, then finds it done

# import + a forward/backward on a tiny net, from the build tree.
# Exit 3: a Python dependency of pycaffe is missing (no point rebuilding).
verify() {
  PYTHONPATH="$dir/src/python" GLOG_minloglevel=2 "$py" - <<'PY'
import sys, tempfile
for mod in ("numpy", "six", "google.protobuf", "skimage"):
    try:
        __import__(mod)
    except ImportError as e:
        print("missing python module:", e); sys.exit(3)
import numpy as np, caffe
proto = b'''force_backward: true
input: "data" input_shape { dim: 1 dim: 2 dim: 6 dim: 6 }
layer { name: "c" type: "Convolution" bottom: "data" top: "c"
  convolution_param { num_output: 3 kernel_size: 3 weight_filler { type: "gaussian" std: 0.1 } } }
'''
with tempfile.NamedTemporaryFile(suffix=".prototxt") as f:
    f.write(proto); f.flush()
    caffe.set_mode_cpu()
    net = caffe.Net(f.name, caffe.TEST)
net.blobs["data"].data[...] = np.random.RandomState(0).randn(1, 2, 6, 6)
net.forward(end="c")
net.blobs["c"].diff[...] = net.blobs["c"].data
net.backward(start="c")
assert np.isfinite(net.blobs["data"].diff).all() and np.abs(net.blobs["data"].diff).sum() > 0
PY
}

install_pth() {
  echo "$dir/src/python" >"$pth"
  touch "$dir/.complete"
  say "pycaffe ready: $dir/src/python (on $py's path via $pth)"
}

if [ "$force" = 0 ] && [ -f "$dir/.complete" ] && verify >>"$dir/logs/verify.log" 2>&1; then
  install_pth; exit 0
fi
rm -f "$dir/.complete"

# 3. apt build dependencies (only what is missing).
missing=""
for p in $APT_BUILD_DEPS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  say "installing build dependencies:$missing"
  command -v apt-get >/dev/null || die "apt-get not found: this build needs Debian/Ubuntu; on other systems use conda (environment.yml)"
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  run "apt-get update" "$dir/logs/apt.log" $sudo apt-get update
  run "apt-get install" "$dir/logs/apt.log" env DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y --no-install-recommends $missing
fi

# 4. Source: Debian's package through a private apt configuration.
if [ ! -f "$dir/src/.unpacked" ]; then
  rm -rf "$dir/src" "$dir/dl"
  mkdir -p "$dir/dl/lists/partial" "$dir/src"
  got=0
  for m in $DEBIAN_MIRRORS; do
    echo "deb-src $m $DEBIAN_SUITE main" >"$dir/dl/sources.list"
    aptopts=(-o Dir::Etc::sourcelist="$dir/dl/sources.list" -o Dir::Etc::sourceparts=/nonexistent
             -o Dir::State::Lists="$dir/dl/lists" -o APT::Sandbox::User=root)
    if apt-get "${aptopts[@]}" update >>"$dir/logs/source.log" 2>&1 &&
       (cd "$dir/dl" && apt-get "${aptopts[@]}" source --download-only "caffe=$SRC_VERSION") >>"$dir/logs/source.log" 2>&1; then
      say "source: caffe $SRC_VERSION from $m $DEBIAN_SUITE"
      got=1; break
    fi
  done
  [ "$got" = 1 ] || die "cannot fetch Debian source package caffe $SRC_VERSION from ($DEBIAN_MIRRORS); see $dir/logs/source.log. Alternatives: conda env create -f environment.yml, or set CAFFE_ROOT to a built Caffe"
  run "unpack source" "$dir/logs/source.log" tar -xzf "$dir/dl/caffe_$ORIG_VERSION.orig.tar.gz" -C "$dir/src"
  run "unpack debian patches" "$dir/logs/source.log" tar -xJf "$dir/dl/caffe_$SRC_VERSION.debian.tar.xz" -C "$dir/src"
  while read -r p; do
    case "$p" in ''|'#'*) continue ;; esac
    run "debian patch $p" "$dir/logs/source.log" patch -d "$dir/src" -p1 -i "$dir/src/debian/patches/$p"
  done <"$dir/src/debian/patches/series"
  # protobuf >= 3.21 only has the one-argument SetTotalBytesLimit.
  run "protobuf fix" "$dir/logs/source.log" sed -i \
    's/SetTotalBytesLimit(kProtoReadBytesLimit, 536870912)/SetTotalBytesLimit(kProtoReadBytesLimit)/' \
    "$dir/src/src/caffe/util/io.cpp"
  for p in "$here"/caffe-patches/*.patch; do
    [ -e "$p" ] || continue
    run "project patch $(basename "$p")" "$dir/logs/source.log" patch -d "$dir/src" -p1 -i "$p"
  done
  touch "$dir/src/.unpacked"
fi

# 5. Configure and build.
build() {
  mkdir -p "$dir/build"
  local incl lib cudaopts=(-DCPU_ONLY=ON)
  incl=$("$py" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
  lib=$("$py" -c 'import sysconfig, os; print(os.path.join(sysconfig.get_config_var("LIBDIR"), sysconfig.get_config_var("LDLIBRARY")))')
  [ "$cuda" = 1 ] && cudaopts=(-DCPU_ONLY=OFF -DUSE_CUDNN=ON "-DCUDA_ARCH_NAME=$cuda_arch")
  say "building pycaffe ($variant, $jobs jobs); log: $dir/logs/build.log (4-12 min on 2 cores)"
  run "cmake" "$dir/logs/build.log" cmake -S "$dir/src" -B "$dir/build" \
    "${cudaopts[@]}" -DUSE_OPENCV=OFF -DUSE_LEVELDB=OFF -DUSE_LMDB=OFF -DBLAS=Open \
    -Dpython_version=3 -DBUILD_docs=OFF -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_FLAGS="$CXX_FLAGS" \
    -DPYTHON_EXECUTABLE="$("$py" -c 'import sys; print(sys.executable)')" \
    -DPYTHON_INCLUDE_DIR="$incl" -DPYTHON_LIBRARY="$lib"
  run "make pycaffe" "$dir/logs/build.log" make -C "$dir/build" -j"$jobs" pycaffe
}

build
rc=0; verify >>"$dir/logs/verify.log" 2>&1 || rc=$?
[ "$rc" = 3 ] && die "pycaffe needs Python modules missing from $py: $(tail -n 1 "$dir/logs/verify.log") (scripts/setup.sh installs them)"
if [ "$rc" != 0 ]; then
  say "the build does not import or run; rebuilding from scratch"
  rm -rf "$dir/build"
  build
  verify >>"$dir/logs/verify.log" 2>&1 || die "the fresh build does not import or run; see $dir/logs/verify.log"
fi
install_pth
