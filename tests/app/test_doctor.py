"""Issue 13: `deepdream-caffe doctor` reports the build, the BLAS and its kernel family, the CPU and the GPUs."""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
from pathlib import Path

import pytest

from cli_util import run_cli
from deepdream_caffe import blas_hook


def _kind() -> str:
    """What the doctor must call the imported pycaffe: a CUDA build loads libcudart (ldd says)."""
    so = Path(importlib.util.find_spec("caffe").origin).parent / "_caffe.so"
    return "CUDA" if "libcudart" in subprocess.run(["ldd", str(so)], capture_output=True, text=True).stdout else "CPU only"


@pytest.mark.requires_caffe
def test_doctor_reports_what_decides_speed_and_bits():
    r = run_cli(["doctor"])
    assert r.returncode == 0, r.stderr
    lines = dict(ln.split(":", 1) for ln in r.stdout.splitlines() if ":" in ln and not ln.startswith("warning"))
    lines = {k.strip(): v.strip() for k, v in lines.items()}
    assert lines["caffe"].startswith(f"1.0.0, {_kind()}, ") and lines["caffe"].endswith("python/caffe")
    assert "OpenBLAS 0.3" in lines["caffe's BLAS"] and "libopenblas" in lines["caffe's BLAS"]
    cpu = blas_hook.cpu_info()
    assert cpu["model_name"] in lines["cpu"]
    have, _, lack = lines["cpu flags"].partition("(not:")
    with open("/proc/cpuinfo") as f:  # the kernel's own word, not the code under test's reading of it
        present = set(next(ln for ln in f if ln.startswith("flags")).split(":", 1)[1].split())
    have, lack = set(have.split()), set(lack.rstrip(")").split())
    for flag in have | lack | {"avx2", "fma", "avx512f"}:  # each flag shown, on its own side
        assert (flag in have) == (flag in present) and (flag in lack) == (flag not in present), (flag, lines["cpu flags"])
    assert lines["gpu"]  # "none found" here, the GPUs on a CUDA machine
    assert lines["numpy"].startswith(__import__("numpy").__version__)

    r = run_cli(["doctor", "--json"])
    assert r.returncode == 0, r.stderr
    facts = json.loads(r.stdout)
    ch = facts["blas"]
    assert ch["core"] and ch["threads"] >= 1 and facts["caffe"]["hook"] is True
    want = "user" if "OPENBLAS_CORETYPE" in os.environ else ("detected", "project")
    assert ch["reason"] in want
    assert f"{ch['core']} (" in lines["kernel family"] and f"reason: {ch['reason']}" in lines["kernel family"]
    assert facts["flags"]["avx2"] == ("avx2" in cpu["flags"])


@pytest.mark.requires_caffe
def test_doctor_names_a_user_choice_of_kernels():
    r = run_cli(["doctor"], env={"OPENBLAS_CORETYPE": "Nehalem"})
    assert r.returncode == 0, r.stderr
    line = next(ln for ln in r.stdout.splitlines() if ln.startswith("kernel family:"))
    assert "Nehalem (OPENBLAS_CORETYPE=Nehalem set by the user); reason: user" in line
    if blas_hook.has_modern_simd(blas_hook.cpu_info()["flags"]):
        assert "warning: Caffe's OpenBLAS runs generic Nehalem kernels" in r.stdout


def test_doctor_without_pycaffe_says_so_and_fails(tmp_path):
    blocker = tmp_path / "block" / "caffe"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text('raise ImportError("pycaffe is blocked for this test")\n')
    path = os.pathsep.join(filter(None, [str(blocker.parent), os.environ.get("PYTHONPATH")]))
    r = run_cli(["doctor"], env={"PYTHONPATH": path})
    assert r.returncode == 1 and "Traceback" not in r.stderr
    line = next(ln for ln in r.stdout.splitlines() if ln.startswith("caffe:"))
    assert "NOT importable" in line and "scripts/setup.sh" in line and "blocked" in line
    assert any(ln.startswith("cpu flags:") for ln in r.stdout.splitlines())  # the rest is still reported
