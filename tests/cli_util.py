"""Running the real console script in a child process, as a user would."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import List, Optional

BIN = Path(sys.executable).parent / "deepdream-caffe"


def run_cli(args: List[str], env: Optional[dict] = None, timeout: int = 600, **kw) -> subprocess.CompletedProcess:
    e = dict(os.environ)
    e.pop("GLOG_minloglevel", None)  # the CLI must quiet Caffe by itself
    if env:
        e.update(env)
    cmd = [str(BIN)] if BIN.exists() else [sys.executable, "-m", "deepdream_caffe.cli"]
    return subprocess.run(cmd + [str(a) for a in args], capture_output=True, text=True, env=e, timeout=timeout, **kw)


def assert_one_line_error(r: subprocess.CompletedProcess, *fragments: str, code: int = 1) -> None:
    assert r.returncode == code, (r.returncode, r.stderr)
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, r.stderr
    assert "Traceback" not in r.stderr
    for frag in fragments:
        assert frag in lines[0], (frag, lines[0])
