"""The tier without Caffe: tests of zoo/, io/ and argument parsing pass where pycaffe cannot be imported."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TIER = ["tests/zoo", "tests/io", "tests/cli", "tests/app"]


@pytest.mark.packaging
def test_zoo_io_and_parsing_tests_pass_with_pycaffe_unimportable(tmp_path):
    # A `caffe` package first on the path that refuses to import: what a machine without pycaffe sees
    # (import_caffe turns it into its one-line error), for pytest and every process the tests start.
    blocker = tmp_path / "block" / "caffe"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text('raise ImportError("pycaffe is blocked for this test run")\n')
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(blocker.parent),
                                                                      os.environ.get("PYTHONPATH")])))
    env.pop("CAFFE_ROOT", None)

    r = subprocess.run([sys.executable, "-c", "import caffe"], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "blocked" in r.stderr

    r = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "not requires_caffe and not packaging",
         "-o", "addopts=", *TIER],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600,
    )
    summary = r.stdout.strip().splitlines()[-1] if r.stdout.strip() else r.stderr
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    counts = {k: int(v) for v, k in re.findall(r"(\d+) (passed|failed|error|errors|skipped|deselected)", summary)}
    assert counts.get("failed", 0) == 0 and counts.get("error", 0) == 0 and counts.get("errors", 0) == 0, summary
    assert counts.get("skipped", 0) == 0, summary  # nothing quietly skipped for want of Caffe
    # Most of the zoo's tests are in the tier (all but the few that load or dream with a fetched net).
    assert counts.get("passed", 0) >= 60, summary
