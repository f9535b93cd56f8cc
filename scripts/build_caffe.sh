#!/usr/bin/env bash
# Build pycaffe from Debian's Caffe source package and make it importable
# from one Python interpreter (normally the project's .venv).
#
#   scripts/build_caffe.sh --python .venv/bin/python [--cuda] [--cuda-arch LIST]
#                          [--caffe-source PATH] [--jobs N] [--force]
#
# Order of preference, first that works wins:
#   1. a `caffe` the interpreter already imports (conda-forge, a system build);
#   2. $CAFFE_ROOT naming a built Caffe tree (python/caffe/_caffe.so present);
#   3. a finished build in the cache, keyed by source version, patch set,
#      Python version and CPU/CUDA;
#   4. a new build: apt build deps (only those missing), bullseye source via a
#      private apt config, Debian's patches + ours (scripts/caffe-patches),
#      CMake, make pycaffe.
# Without network: --caffe-source PATH (or DEEPDREAM_CAFFE_SOURCE) names
# Debian's source files (a folder with caffe_*.orig.tar.gz and
# caffe_*.debian.tar.xz, checked against their sha256), or any Caffe source
# tree as a folder or a tarball (built with the same fixes and patches,
# cached under its own key). --cuda finds nvcc on PATH, in $CUDA_HOME or in
# /usr/local/cuda, pip-installs NVIDIA's wheels for what the toolkit lacks
# (cuBLAS, cuRAND, cudart; nvcc itself if there is none) and builds with
# patch 0006; --cuda-arch defaults to the GPUs present, else "75 80 86 89 90".
# The result is put on the interpreter's path with a .pth file, so nothing
# needs PYTHONPATH. A build is used only after it is complete and an import
# plus a forward/backward through a tiny net succeeds; a half-finished one
# is resumed and, if that fails, rebuilt from scratch.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SRC_VERSION="1.0.0+git20180821.99bd997-8"
ORIG_VERSION="1.0.0+git20180821.99bd997"
# From the package's .dsc (Checksums-Sha256): a local copy must be these files.
ORIG_SHA256="e0eb3f06794f7402c77b7dec8e8480273ee1a1bb192e9122b621a69d4147ad0c"
DEBIAN_SHA256="07cf073227494a6b07234e40cb5df91db566616593eef9baafdc4d06ad159f21"
DEBIAN_SUITE="bullseye"
DEBIAN_MIRRORS="${DEEPDREAM_CAFFE_DEBIAN_MIRROR:-http://deb.debian.org/debian http://archive.debian.org/debian}"
APT_BUILD_DEPS="cmake g++ make patch xz-utils libboost-system-dev libboost-thread-dev libboost-filesystem-dev libboost-python-dev libboost-regex-dev libprotobuf-dev protobuf-compiler libgoogle-glog-dev libgflags-dev libhdf5-dev libopenblas-dev"

py=python3
cuda=0
cuda_arch="Auto"
jobs=$(( $(nproc) + 1 ))
force=0
caffe_source="${DEEPDREAM_CAFFE_SOURCE:-}"
while [ $# -gt 0 ]; do
  case "$1" in
    --python) py=$2; shift 2 ;;
    --cuda) cuda=1; shift ;;
    --cuda-arch) cuda_arch=$2; shift 2 ;;
    --caffe-source) caffe_source=$2; shift 2 ;;
    --jobs) jobs=$2; shift 2 ;;
    --force) force=1; shift ;;
    -h|--help) sed -n '2,27p' "$0"; exit 0 ;;
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
# The OpenBLAS kernel-family hook that goes into the build's caffe/__init__.py.
blas_hook="$here/../deepdream_caffe/blas_hook.py"

# --cuda: the toolkit (nvcc, cudart, cuBLAS, cuRAND; cuDNN if Caffe can use it) and the GPU
# architectures, found before anything is built. What the toolkit lacks comes from NVIDIA's
# wheels, pip-installed into $py's environment; merge_toolkit makes one tree of both for CMake.
cuda_root="" cuda_major="" cudnn=OFF wheel_roots=() nvcc_wheels=0
DEFAULT_CUDA_ARCH="75 80 86 89 90"  # Turing..Hopper; PTX for the last runs on newer chips
find_cuda() {
  local nvcc="" c lack="" lib pkgs=""
  for c in "${CUDA_HOME:+$CUDA_HOME/bin/nvcc}" "$(command -v nvcc 2>/dev/null || true)" /usr/local/cuda/bin/nvcc; do
    [ -n "$c" ] && [ -x "$c" ] && { nvcc=$(readlink -f "$c"); break; }
  done
  if [ -z "$nvcc" ]; then
    "$py" -m pip install -q "nvidia-cuda-nvcc>=13,<14" "nvidia-cuda-crt>=13,<14" "nvidia-nvvm>=13,<14" \
      "nvidia-cuda-cccl>=13,<14" "nvidia-cuda-runtime>=13,<14" >/dev/null 2>&1 \
      || die "--cuda: no CUDA toolkit, and pip could not install nvidia-cuda-nvcc (offline? PIP_NO_INDEX=1 PIP_FIND_LINKS=DIR, or install the toolkit and set CUDA_HOME)"
    nvcc="$site/nvidia/cu13/bin/nvcc" nvcc_wheels=1
    say "no nvcc on PATH, in \$CUDA_HOME/bin or in /usr/local/cuda/bin: installed CUDA 13's compiler wheels into $py's environment"
  fi
  # nvcc may be a wrapper script elsewhere (/usr/local/bin/nvcc): nvcc itself knows its home.
  cuda_root=$("$nvcc" --dryrun -x cu -c /dev/null -o /dev/null 2>&1 | sed -n 's/^#\$ _HERE_=//p' | head -n 1)
  cuda_root=$(readlink -f "${cuda_root:-$(dirname "$nvcc")}/..")
  cuda_major=$("$nvcc" --version | sed -n 's/.*release \([0-9]*\)\..*/\1/p')
  [ "$cuda_major" = 12 ] || [ "$cuda_major" = 13 ] || say "warning: nvcc $cuda_major: Caffe's CUDA code is patched for CUDA 12 and 13"
  have() { local f; for f in "$@"; do [ -e "$f" ] && return 0; done; return 1; }
  found() {  # found LIB HEADER: in the toolkit, the wheels in wheel_roots, or the system
    have {"$cuda_root","${wheel_roots[@]:-/nonexistent}"}/lib{,64}/lib$1.so* "$cuda_root"/targets/*/lib/lib$1.so* \
         /usr/lib/x86_64-linux-gnu/lib$1.so* &&
      have {"$cuda_root","${wheel_roots[@]:-/nonexistent}"}/include/$2 "$cuda_root"/targets/*/include/$2 /usr/include/$2
  }
  wheels() {  # wheel_roots: the NVIDIA wheels' trees in $py's environment
    local d; wheel_roots=()
    for d in "$site"/nvidia/cu$cuda_major "$site"/nvidia/cublas "$site"/nvidia/curand "$site"/nvidia/cuda_runtime; do
      [ -d "$d" ] && [ "$d" != "$cuda_root" ] && wheel_roots+=("$d")
    done
    return 0
  }
  local -A pkg13=([cudart]="nvidia-cuda-runtime>=13,<14" [cublas]="nvidia-cublas>=13,<14" [curand]=nvidia-curand)
  local -A pkg12=([cudart]=nvidia-cuda-runtime-cu12 [cublas]=nvidia-cublas-cu12 [curand]=nvidia-curand-cu12)
  local -A header=([cudart]=cuda_runtime_api.h [cublas]=cublas_v2.h [curand]=curand.h)
  for lib in cudart cublas curand; do found $lib "${header[$lib]}" || lack="$lack lib$lib"; done
  if [ -n "$lack" ]; then
    wheels
    for lib in cudart cublas curand; do
      found $lib "${header[$lib]}" && continue
      case "$cuda_major" in 12) pkgs="$pkgs ${pkg12[$lib]}" ;; *) pkgs="$pkgs ${pkg13[$lib]}" ;; esac
    done
    if [ -n "$pkgs" ]; then
      local out
      # shellcheck disable=SC2086
      out=$("$py" -m pip install -q $pkgs 2>&1) \
        || die "--cuda: the CUDA $cuda_major toolkit at $cuda_root lacks$lack, and pip could not install$pkgs (offline? PIP_NO_INDEX=1 PIP_FIND_LINKS=DIR installs from a folder of wheels): $(echo "$out" | grep -v '^WARNING' | tail -n 1)"
      say "the CUDA $cuda_major toolkit at $cuda_root lacks$lack: installed NVIDIA's wheels into $py's environment:$pkgs"
      wheels; lack=""
      for lib in cudart cublas curand; do found $lib "${header[$lib]}" || lack="$lack lib$lib"; done
      [ -z "$lack" ] || die "--cuda: still missing after pip install:$lack (looked in $cuda_root and $site/nvidia)"
    fi
  fi
  # Caffe 1.0's cuDNN code stops at cuDNN 7 (cudnnGetConvolutionForwardAlgorithm left in 8).
  local h major
  for h in "$cuda_root/include/cudnn_version.h" "$cuda_root/include/cudnn.h" /usr/include/cudnn_version.h \
           /usr/include/cudnn.h /usr/include/x86_64-linux-gnu/cudnn_version_v*.h; do
    [ -f "$h" ] || continue
    major=$(sed -n 's/^#define CUDNN_MAJOR *\([0-9]*\).*/\1/p' "$h" | head -n 1)
    [ -n "$major" ] || continue
    if [ "$major" -le 7 ]; then cudnn=ON; else say "cuDNN $major is newer than Caffe 1.0 supports (up to 7): building without cuDNN (Caffe's own CUDA kernels)"; fi
    break
  done
  # "Auto": the architectures of the GPUs present (nvidia-smi), else Turing..Hopper.
  if [ "$cuda_arch" = Auto ]; then
    local caps=""
    command -v nvidia-smi >/dev/null 2>&1 &&
      caps=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | tr -d '. ' | sort -u | tr '\n' ' ' | sed 's/ *$//')
    cuda_arch=${caps:-$DEFAULT_CUDA_ARCH}
  fi
  return 0
}

# merge_toolkit DIR: the toolkit with the wheels' headers and libraries beside its own (links),
# and the unversioned .so names the linker asks for. The libraries' folder lands in the
# build's RPATH, so `import caffe` finds cuBLAS/cuRAND with no LD_LIBRARY_PATH.
merge_toolkit() {
  local t=$1 d e n
  rm -rf "$t"; mkdir -p "$t/include" "$t/lib64"
  for e in "$cuda_root"/*; do
    case ${e##*/} in include|lib|lib64|targets) ;; *) ln -s "$e" "$t/" ;; esac
  done
  for d in "$cuda_root" "${wheel_roots[@]}"; do
    for e in "$d"/include/* "$d"/lib/* "$d"/lib64/*; do
      [ -e "$e" ] || continue
      n=include; case "$e" in "$d"/lib*) n=lib64 ;; esac
      [ -e "$t/$n/${e##*/}" ] || ln -s "$(readlink -f "$e")" "$t/$n/${e##*/}"
    done
  done
  for e in "$t"/lib64/lib*.so.*; do
    n=${e##*/}; n=${n%%.so.*}.so
    [ -e "$t/lib64/$n" ] || ln -s "${e##*/}" "$t/lib64/$n"
  done
}
[ "$cuda" = 1 ] && find_cuda

# --caffe-source: Debian's files (same source, same key) or any Caffe tree (its own key).
src_kind=debian src_tag=""
if [ -n "$caffe_source" ]; then
  [ -e "$caffe_source" ] || die "--caffe-source $caffe_source: no such file or folder"
  caffe_source=$(readlink -f "$caffe_source")
  sdir=$caffe_source; [ -f "$caffe_source" ] && sdir=$(dirname "$caffe_source")
  if [ -f "$sdir/caffe_$ORIG_VERSION.orig.tar.gz" ] && [ -f "$sdir/caffe_$SRC_VERSION.debian.tar.xz" ] &&
     { [ -d "$caffe_source" ] || [ "$(basename "$caffe_source")" = "caffe_$ORIG_VERSION.orig.tar.gz" ]; }; then
    src_kind=debian-local caffe_source=$sdir
    [ "$(sha256sum <"$sdir/caffe_$ORIG_VERSION.orig.tar.gz" | cut -c1-64)" = "$ORIG_SHA256" ] &&
      [ "$(sha256sum <"$sdir/caffe_$SRC_VERSION.debian.tar.xz" | cut -c1-64)" = "$DEBIAN_SHA256" ] ||
      die "--caffe-source $sdir: the caffe $SRC_VERSION files there do not match Debian's sha256"
  elif [ -f "$caffe_source" ]; then
    case "$caffe_source" in
      *.tar.gz|*.tgz|*.tar.xz|*.txz|*.tar.bz2|*.tar) ;;
      *) die "--caffe-source $caffe_source: not a tarball (.tar.gz, .tar.xz, .tar.bz2) or a folder" ;;
    esac
    src_kind=tarball src_tag="-src$(sha1sum <"$caffe_source" | cut -c1-10)"
  elif [ -f "$caffe_source/CMakeLists.txt" ] && [ -d "$caffe_source/src/caffe" ]; then
    src_kind=tree
    src_tag="-src$(cd "$caffe_source" && find . -type f ! -path './.git/*' ! -path './build/*' -printf '%P %s %T@\n' | LC_ALL=C sort | sha1sum | cut -c1-10)"
  else
    die "--caffe-source $caffe_source: neither Debian's caffe $SRC_VERSION files (caffe_$ORIG_VERSION.orig.tar.gz and caffe_$SRC_VERSION.debian.tar.xz), a Caffe source tarball, nor a Caffe source folder (CMakeLists.txt, src/caffe)"
  fi
fi

# OpenMP: the project's patches run Caffe's own loops (pooling, im2col,
# element-wise math) on all cores.
CXX_FLAGS="-fopenmp"
# The patch set, flags and interpreter decide the key: change one, get a new build.
# Patches named *cuda* change only code a CPU build does not compile: --cuda builds alone get them.
patches=()
for p in "$here"/caffe-patches/*.patch; do
  [ -e "$p" ] || continue
  case ${p##*/} in *cuda*) [ "$cuda" = 1 ] || continue ;; esac
  patches+=("$p")
done
patch_hash=$( (cat "${patches[@]}" 2>/dev/null || true; echo "$CXX_FLAGS") | sha1sum | cut -c1-10)
pyver=$("$py" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
npmajor=$("$py" -c 'import numpy; print(numpy.__version__.split(".")[0])' 2>/dev/null) \
  || die "numpy must be installed in '$py' before building (pycaffe compiles against it)"
variant=cpu; [ "$cuda" = 1 ] && variant="cuda${cuda_major}-${cuda_arch// /_}-cudnn${cudnn}"
key="caffe-${SRC_VERSION//+/_}${src_tag}-p${patch_hash}-py${pyver}-np${npmajor}-${variant}"
dir="$cache_root/caffe/$key"

# The hook goes in (or is brought up to date) on every run: a Python-only change,
# so it never changes the key or costs a rebuild. Idempotent and atomic.
install_hook() {
  local out
  out=$("$py" -I "$blas_hook" --install-hook "$dir/src/python/caffe" 2>&1) \
    || say "warning: OpenBLAS's kernel family stays OpenBLAS's own choice: $(echo "$out" | tail -n 1)"
}

# 1. Something already importable that is not one of our own builds.
if [ "$force" = 0 ] && existing=$("$py" -c 'import caffe, os; print(os.path.dirname(caffe.__file__))' 2>/dev/null); then
  case "$existing" in
    "$dir"/*) [ -f "$dir/.complete" ] && { install_hook; say "up to date ($key)"; exit 0; } ;;
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
# Links into $py's environment: made again on every run, so the build follows the wheels.
toolkit=$cuda_root
if [ "$cuda" = 1 ] && [ $(( ${#wheel_roots[@]} + nvcc_wheels )) -gt 0 ]; then toolkit="$dir/cuda"; merge_toolkit "$toolkit"; fi

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
  install_hook
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
  { $sudo apt-get update && env DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y --no-install-recommends $missing; } \
    >>"$dir/logs/apt.log" 2>&1 \
    || die "missing build packages:$missing; apt-get could not install them (no network?), see $dir/logs/apt.log"
fi

# 4. Source: Debian's package through a private apt configuration, or the local one.
if [ ! -f "$dir/src/.unpacked" ]; then
  rm -rf "$dir/src" "$dir/dl"
  mkdir -p "$dir/dl/lists/partial" "$dir/src"
  got=0
  case "$src_kind" in
    debian-local)
      cp "$caffe_source/caffe_$ORIG_VERSION.orig.tar.gz" "$caffe_source/caffe_$SRC_VERSION.debian.tar.xz" "$dir/dl/"
      say "source: caffe $SRC_VERSION from $caffe_source"; got=1 ;;
    tarball|tree)
      if [ "$src_kind" = tarball ]; then
        run "unpack $caffe_source" "$dir/logs/source.log" tar -xf "$caffe_source" -C "$dir/src"
        # One top folder (caffe-1.0/ and the like): its content is the tree.
        if [ ! -f "$dir/src/CMakeLists.txt" ] && [ "$(ls -A "$dir/src" | wc -l)" = 1 ]; then
          top_dir=$(ls -A "$dir/src"); mv "$dir/src/$top_dir" "$dir/src.tmp" && rmdir "$dir/src" && mv "$dir/src.tmp" "$dir/src"
        fi
      else
        run "copy $caffe_source" "$dir/logs/source.log" cp -a "$caffe_source/." "$dir/src/"
      fi
      [ -f "$dir/src/CMakeLists.txt" ] && [ -d "$dir/src/src/caffe" ] \
        || die "--caffe-source $caffe_source holds no Caffe source tree (CMakeLists.txt, src/caffe)"
      say "source: $caffe_source"; got=2 ;;
  esac
  for m in $DEBIAN_MIRRORS; do
    [ "$got" = 0 ] || break
    echo "deb-src $m $DEBIAN_SUITE main" >"$dir/dl/sources.list"
    aptopts=(-o Dir::Etc::sourcelist="$dir/dl/sources.list" -o Dir::Etc::sourceparts=/nonexistent
             -o Dir::State::Lists="$dir/dl/lists" -o APT::Sandbox::User=root)
    if apt-get "${aptopts[@]}" update >>"$dir/logs/source.log" 2>&1 &&
       (cd "$dir/dl" && apt-get "${aptopts[@]}" source --download-only "caffe=$SRC_VERSION") >>"$dir/logs/source.log" 2>&1; then
      say "source: caffe $SRC_VERSION from $m $DEBIAN_SUITE"
      got=1; break
    fi
  done
  [ "$got" != 0 ] || die "cannot fetch Debian source package caffe $SRC_VERSION from ($DEBIAN_MIRRORS); see $dir/logs/source.log. Alternatives: --caffe-source with the source files or a Caffe tree, conda env create -f environment.yml, or set CAFFE_ROOT to a built Caffe"
  if [ "$got" = 1 ]; then
    run "unpack source" "$dir/logs/source.log" tar -xzf "$dir/dl/caffe_$ORIG_VERSION.orig.tar.gz" -C "$dir/src"
    run "unpack debian patches" "$dir/logs/source.log" tar -xJf "$dir/dl/caffe_$SRC_VERSION.debian.tar.xz" -C "$dir/src"
  fi
  if [ -f "$dir/src/debian/patches/series" ]; then
    while read -r p; do
      case "$p" in ''|'#'*) continue ;; esac
      run "debian patch $p" "$dir/logs/source.log" patch -d "$dir/src" -p1 -i "$dir/src/debian/patches/$p"
    done <"$dir/src/debian/patches/series"
  fi
  # protobuf >= 3.21 only has the one-argument SetTotalBytesLimit.
  run "protobuf fix" "$dir/logs/source.log" sed -i \
    's/SetTotalBytesLimit(kProtoReadBytesLimit, 536870912)/SetTotalBytesLimit(kProtoReadBytesLimit)/' \
    "$dir/src/src/caffe/util/io.cpp"
  for p in "${patches[@]}"; do
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
  if [ "$cuda" = 1 ]; then
    cudaopts=(-DCPU_ONLY=OFF "-DUSE_CUDNN=$cudnn" "-DCUDA_TOOLKIT_ROOT_DIR=$toolkit")
    case "$cuda_arch" in
      All) cudaopts+=("-DCUDA_ARCH_NAME=$cuda_arch") ;;
      *) cudaopts+=(-DCUDA_ARCH_NAME=Manual "-DCUDA_ARCH_BIN=$cuda_arch" "-DCUDA_ARCH_PTX=${cuda_arch##* }") ;;
    esac
  fi
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
