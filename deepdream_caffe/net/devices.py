"""CPU or GPU for Caffe, checked in a child process first.

Asking a CPU-only Caffe for the GPU (or a CUDA build for a device it does
not have) is a fatal glog error that aborts the process; a throw-away child
process finds that out instead of us.
"""
from __future__ import annotations

import ctypes.util
import os
import subprocess
import sys
from typing import Optional

from ..errors import DeepDreamError
from .caffe_env import import_caffe

# The child says which build it loaded before asking for the device: a CPU-only one and a
# CUDA one without that GPU both end in a glog FATAL, and the fix differs.
_PROBE = """
import caffe
with open("/proc/self/maps") as f:
    print("cuda" if any("libcudart" in ln for ln in f) else "cpu", flush=True)
caffe.set_device({dev})
caffe.set_mode_gpu()
print("ok")
"""


def gpu_problem(device: int) -> Optional[str]:
    """Why this Caffe cannot run on GPU ``device`` (tried in a child process); None when it can."""
    env = dict(os.environ, GLOG_minloglevel="3")
    try:
        r = subprocess.run(
            [sys.executable, "-c", _PROBE.format(dev=int(device))],
            capture_output=True, text=True, timeout=120, env=env,
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"the probe of GPU {device} did not finish ({e})"
    out = r.stdout.split()
    if r.returncode == 0 and out[-1:] == ["ok"]:
        return None
    if out[:1] == ["cpu"]:
        return "this Caffe is CPU-only (rebuild with scripts/setup.sh --cuda on a CUDA machine, or run on the CPU)"
    # glog's FATAL line ends in CUDA's own words, after "Check failed: error == cudaSuccess (N vs. 0)  ".
    fatal = [ln.split("] ", 1)[1] for ln in r.stderr.splitlines() if ln.startswith("F") and "] " in ln]
    why = fatal[-1].split("  ", 1)[-1] if fatal else (r.stderr.strip().splitlines() or [f"exit {r.returncode}"])[-1]
    if out[:1] == ["cuda"]:
        # Without a driver CUDA blames the driver's version; say what is really missing.
        driver = "" if ctypes.util.find_library("cuda") else "no NVIDIA driver here (no libcuda.so.1); "
        return f'this CUDA build of Caffe cannot use it: {driver}CUDA says "{why}" (leave out --gpu to run on the CPU)'
    return f"pycaffe did not load: {why}"


def gpu_usable(device: int) -> bool:
    """Whether this Caffe can run on GPU ``device`` (tried in a child process)."""
    return gpu_problem(device) is None


def select_device(gpu: Optional[int]) -> str:
    """Put Caffe in CPU mode (``gpu=None``) or GPU mode on that device; returns a label for logs."""
    caffe = import_caffe()
    if gpu is None:
        caffe.set_mode_cpu()
        return "cpu"
    if gpu < 0:
        raise DeepDreamError(f"GPU device id must be >= 0, got {gpu}")
    problem = gpu_problem(gpu)
    if problem is not None:
        raise DeepDreamError(f"GPU {gpu} is not usable: {problem}")
    caffe.set_device(gpu)
    caffe.set_mode_gpu()
    return f"gpu:{gpu}"
