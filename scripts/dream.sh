#!/usr/bin/env bash
# The main job on a fresh machine: set everything up (once), then dream.
#   scripts/dream.sh                     -> dream.jpg from a sample photo, notebook defaults
#   scripts/dream.sh IN.jpg -o OUT.jpg   -> any `deepdream-caffe dream` arguments
set -euo pipefail
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$top/scripts/setup.sh"
venv="${DEEPDREAM_CAFFE_VENV:-$top/.venv}"
if [ $# -eq 0 ]; then
  set -- -o dream.jpg
fi
exec "$venv/bin/deepdream-caffe" dream "$@"
