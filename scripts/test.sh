#!/usr/bin/env bash
# Set everything up (once), then run the test suite. Extra arguments go to pytest.
set -euo pipefail
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$top/scripts/setup.sh"
venv="${DEEPDREAM_CAFFE_VENV:-$top/.venv}"
cd "$top"
"$venv/bin/ruff" check .
rc=0
"$venv/bin/python" -m pytest "$@" || rc=$?
if [ "$rc" = 5 ]; then
  echo "test.sh: pytest collected no tests; that is a failure" >&2
fi
exit "$rc"
