#!/usr/bin/env bash
# Set everything up (once), then run the test suite. Extra arguments go to pytest.
set -euo pipefail
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$top/scripts/setup.sh"
venv="${DEEPDREAM_CAFFE_VENV:-$top/.venv}"
cd "$top"
# The atlas's browser test: headless Chromium and its driver from apt (only what is missing).
missing=""
for p in chromium chromium-driver; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ] && command -v apt-get >/dev/null; then
  echo "test.sh: installing$missing (log: $venv/apt.log)" >&2
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  { $sudo apt-get update && env DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y --no-install-recommends $missing; } \
    >>"$venv/apt.log" 2>&1 || echo "test.sh: apt-get could not install$missing; the browser test is skipped" >&2
fi
"$venv/bin/ruff" check .
rc=0
"$venv/bin/python" -m pytest "$@" || rc=$?
if [ "$rc" = 5 ]; then
  echo "test.sh: pytest collected no tests; that is a failure" >&2
fi
exit "$rc"
