#!/usr/bin/env bash
# One file that dreams on a GPU machine with no network: the CUDA pycaffe, its C++ runtime
# libraries (Debian 12's), Debian's Python 3.11, the wheels a dream needs, and this package.
#   scripts/gpu_bundle.sh OUT.tar.xz [--python .venv-cuda/bin/python]
# There: tar -xJf OUT.tar.xz -C DIR; DIR/bundle/run.sh gpu_check (or cpu_check, doctor,
# dream ARGS, python ARGS). Not inside: the NVIDIA driver and cuBLAS/cuRAND (hundreds of MB);
# run.sh takes them from $DEEPDREAM_CAFFE_CUDA_LIBS, a site-packages nvidia/cu13/lib, or the
# system. The target needs x86-64 Linux; Debian 12's glibc travels for systems with an older one.
set -euo pipefail
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
say() { echo "gpu_bundle: $*" >&2; }
die() { say "$*"; exit 1; }

out="" py="$top/.venv-cuda/bin/python"
while [ $# -gt 0 ]; do
  case "$1" in
    --python) py=$2; shift 2 ;;
    -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
    -*) die "unknown option '$1' (see --help)" ;;
    *) out=$1; shift ;;
  esac
done
[ -n "$out" ] || die "usage: scripts/gpu_bundle.sh OUT.tar.xz [--python PY]"
for t in patchelf apt-get dpkg xz ldd; do
  command -v $t >/dev/null || die "needs $t (apt-get install patchelf xz-utils)"
done
[ -x "$py" ] || die "no interpreter $py: build the CUDA pycaffe first (DEEPDREAM_CAFFE_VENV=.venv-cuda scripts/setup.sh --cuda)"
pycaffe=$("$py" -c 'import os, caffe; print(os.path.dirname(caffe.__file__))' 2>/dev/null) \
  || die "$py does not import caffe: DEEPDREAM_CAFFE_VENV=$(dirname "$(dirname "$py")") scripts/setup.sh --cuda builds it"
so=$(readlink -f "$pycaffe/_caffe.so")
libcaffe=$(ldd "$so" | awk '$1 ~ /^libcaffe/ {print $3}')
[ -f "$libcaffe" ] || die "cannot resolve libcaffe for $so"
ldd "$libcaffe" | grep -q 'libcublas.*=> /' || die "the caffe in $py is not a CUDA build, or cuBLAS does not resolve: scripts/setup.sh --cuda"
archs=$(sed -n 's/^CUDA_ARCH_BIN:STRING=//p' "$(dirname "$libcaffe")/../CMakeCache.txt")
case " $archs " in *" 90 "*) ;; *) die "the CUDA build is for '$archs'; the bundle needs sm_90 (build_caffe.sh --cuda-arch \"90\" or the default list)" ;; esac

work=$(mktemp -d "${TMPDIR:-/tmp}/gpu_bundle.XXXXXX")
trap 'rm -rf "$work"' EXIT
b=$work/bundle
mkdir -p "$b/lib" "$b/caffe/python" "$b/caffe/models/bvlc_googlenet" "$b/python" "$b/site" "$b/app" "$work/debs"

say "pycaffe ($pycaffe, CUDA archs $archs)"
cp -rL "$pycaffe" "$b/caffe/python/"
rm -rf "$b/caffe/python/caffe/test" "$b/caffe/python/caffe/_caffe.cpp"
find "$b" -name __pycache__ -prune -exec rm -rf {} +
cp "$pycaffe/../../models/bvlc_googlenet/deploy.prototxt" "$b/caffe/models/bvlc_googlenet/"
cp -L "$libcaffe" "$b/lib/"
# The bundle's python is Debian's static one: the extension takes the interpreter from it, not
# from a libpython; paths come from run.sh's LD_LIBRARY_PATH, not the build machine's RPATHs.
patchelf --remove-needed libpython3.11.so.1.0 --remove-rpath "$b/caffe/python/caffe/_caffe.so"
patchelf --remove-needed libpython3.11.so.1.0 --remove-rpath "$b/lib/$(basename "$libcaffe")"
strip --strip-unneeded "$b/caffe/python/caffe/_caffe.so" "$b/lib/$(basename "$libcaffe")"

say "Python 3.11 from Debian's packages"
(cd "$work/debs" && apt-get download python3.11-minimal libpython3.11-minimal libpython3.11-stdlib) >"$work/apt.log" 2>&1 \
  || die "apt-get download of python3.11 failed: $(tail -n 1 "$work/apt.log")"
for d in "$work"/debs/*.deb; do dpkg -x "$d" "$b/python"; done
pyv=$(dpkg-deb -f "$(ls "$work"/debs/python3.11-minimal_*.deb)" Version)
rm -rf "$b/python/usr/share" "$b/python/etc" "$b/python/usr/bin/"*-config
rm -rf "$b/python/usr/lib/python3.11/"{idlelib,tkinter,turtledemo,lib2to3,pydoc_data,ensurepip}
# Modules a dream never loads, and the libraries only they would bring (Berkeley DB, SQLite, curses).
rm -f "$b/python/usr/lib/python3.11/lib-dynload/"{_test,_xx,_ctypes_test,_dbm,_gdbm,_sqlite3,_curses,readline,nis,_tkinter}*
bpy="$b/python/usr/bin/python3.11"
# For a target with a glibc older than Debian 12's: the loader and glibc itself (run.sh decides).
mkdir -p "$b/glibc"
for f in /lib64/ld-linux-x86-64.so.2 /lib/x86_64-linux-gnu/lib{c.so.6,m.so.6,pthread.so.0,dl.so.2,rt.so.1,resolv.so.2,util.so.1}; do
  cp -L "$f" "$b/glibc/"
done
cat >"$bpy-glibc" <<'SH'
#!/bin/sh
# Debian's Python 3.11 on the bundle's glibc; --argv0 makes sys.executable this script, so child
# processes come through here too.
here=$(dirname "$(readlink -f "$0")")
g=$here/../../../glibc
exec "$g/ld-linux-x86-64.so.2" --library-path "$g${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" --argv0 "$0" "$here/python3.11" "$@"
SH
chmod +x "$bpy-glibc"

# Runtime libraries: what the loader resolves here (Debian 12's packages) for caffe and the
# interpreter, less glibc (the target's own) and the CUDA libraries the GPU machine brings.
# cudart is small and pinned to the build's toolkit, so it travels.
say "runtime libraries"
skip='^(ld-linux-x86-64|libc|libm|libpthread|libdl|librt|libresolv|libutil|libanl|libpython3[.0-9]*|libcuda|libcublas|libcublasLt|libcurand|libnvrtc|libnvJitLink)\.so'
for f in "$so" "$libcaffe" "$bpy" "$b"/python/usr/lib/python3.11/lib-dynload/*.so; do
  ldd "$f" 2>/dev/null | awk '$2 == "=>" && $3 ~ /^\// {print $1, $3}'
done | sort -u | while read -r name path; do
  [[ $name =~ $skip ]] || [ -e "$b/lib/$name" ] || cp -L "$path" "$b/lib/$name"
done

say "wheels (the versions $py has)"
# Named one by one (no dependency resolution): scikit-image's networkx and pooch serve parts a
# dream does not use, and every megabyte counts against the 60 MiB.
pins=$("$py" - <<'PY'
from importlib.metadata import version
print(" ".join(f"{p}=={version(p)}" for p in (
    "numpy", "scipy", "pillow", "protobuf", "six", "tqdm", "scikit-image", "imageio", "tifffile", "lazy_loader",
    "packaging", "pytest", "pluggy", "iniconfig", "pygments")))
PY
)
# shellcheck disable=SC2086
"$py" -m pip install -q --no-compile --no-deps --only-binary=:all: --target "$b/site" $pins >"$work/pip.log" 2>&1 \
  || die "pip could not fetch the wheels ($pins); see the log: $(tail -n 1 "$work/pip.log")"
find "$b/site" -type d \( -name tests -o -name __pycache__ \) -prune -exec rm -rf {} +
find "$b/site" -type f \( -name '*.pyx' -o -name '*.pxd' -o -name '*.c' -o -name '*.cpp' -o -name '*.h' \
  -o -name '*.hpp' -o -name '*.f' -o -name '*.f90' \) -delete
# scikit-image's sample images: the astronaut is bench.py's photo.
find "$b/site/skimage/data" -type f ! -name '*.py' ! -name '*.pyi' ! -name '*.txt' ! -name astronaut.png -delete
rm -rf "$b/site/bin" "$b/site/numpy/_core/include" "$b/site/PIL/"_avif.* "$b/site/pillow.libs/"libavif-*
# numpy and scipy carry the same libgfortran: one copy, two names (tar keeps hard links).
find "$b/site" -name '*.so*' -type f -exec sha1sum {} + | sort | awk 'prev == $1 {print first, $2; next} {prev = $1; first = $2}' |
  while read -r keep dup; do ln -f "$keep" "$dup"; done

say "this package"
git -C "$top" ls-files deepdream_caffe tests scripts/bench.py pyproject.toml | tar -C "$top" -cf - -T - | tar -C "$b/app" -xf -
cat >"$b/BUILD" <<EOF
deepdream-caffe $(git -C "$top" describe --always --dirty 2>/dev/null || echo '?'), bundled $(date -u +%Y-%m-%dT%H:%MZ)
caffe: CUDA $(sed -n 's/^CUDA_VERSION:[A-Z]*=//p' "$(dirname "$libcaffe")/../CMakeCache.txt"), archs $archs (PTX $(sed -n 's/^CUDA_ARCH_PTX:STRING=//p' "$(dirname "$libcaffe")/../CMakeCache.txt")), cuDNN off
python: Debian python3.11 $pyv; wheels: $pins
EOF
cp "$top/scripts/bundle_run.sh" "$b/run.sh"
chmod +x "$b/run.sh"

say "compressing"
tar -C "$work" -cf - bundle | xz -T0 -9 >"$out.tmp"
mv "$out.tmp" "$out"
say "$out: $(du -m "$out" | cut -f1) MiB"
