#!/usr/bin/env bash
# Make the project runnable on this machine: a .venv in the clone with the
# Python deps, pycaffe (built once and cached, see build_caffe.sh), and the
# package itself installed editable. Idempotent; seconds when already done.
#   scripts/setup.sh [build_caffe.sh options, e.g. --cuda, --caffe-source PATH]
# Offline: pip honours PIP_NO_INDEX=1 PIP_FIND_LINKS=DIR (a folder of wheels),
# build_caffe.sh takes the Caffe source from --caffe-source / DEEPDREAM_CAFFE_SOURCE,
# and nothing is installed with apt that is already there.
set -euo pipefail
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv="${DEEPDREAM_CAFFE_VENV:-$top/.venv}"
say() { echo "setup: $*" >&2; }

py_sys=${PYTHON:-python3}
command -v "$py_sys" >/dev/null || { say "python3 not found; install Python 3.8+ first"; exit 1; }
if [ ! -x "$venv/bin/python" ]; then
  say "creating $venv"
  "$py_sys" -m venv "$venv" 2>/dev/null || {
    say "python3 -m venv failed; installing python3-venv"
    apt-get install -y python3-venv >/dev/null 2>&1 || true
    "$py_sys" -m venv "$venv" || { say "cannot create a virtual environment at $venv"; exit 1; }
  }
fi
py="$venv/bin/python"

# Re-install Python deps only when pyproject.toml changed.
stamp="$venv/.deepdream-deps-$(sha1sum "$top/pyproject.toml" | cut -c1-12)"
if [ ! -f "$stamp" ]; then
  log="$venv/pip.log"
  say "installing Python dependencies (log: $log)"
  "$py" -m pip install -q --upgrade pip >"$log" 2>&1 || true
  # Runtime deps before Caffe: pycaffe compiles against numpy and imports the rest.
  "$py" -m pip install -q "numpy>=2" scipy pillow "protobuf>=3.20,<5" six scikit-image tqdm \
    >>"$log" 2>&1 || { say "pip could not install the Python dependencies (offline? PIP_NO_INDEX=1 PIP_FIND_LINKS=DIR installs from a folder of wheels); see $log"; exit 1; }
fi

"$top/scripts/build_caffe.sh" --python "$py" "$@"

if [ ! -f "$stamp" ]; then
  "$py" -m pip install -q -e "$top[all,notebook,test]" >>"$log" 2>&1 || { say "pip install of the project failed; see $log"; exit 1; }
  rm -f "$venv"/.deepdream-deps-*
  touch "$stamp"
fi
