"""CPU or GPU for Caffe, checked in a child process first.

Asking a CPU-only Caffe for the GPU (or a CUDA build for a device it does
not have) is a fatal glog error that aborts the process; a throw-away child
process finds that out instead of us.
"""
from __future__ import annotations

import os
import subprocess
import sys
from typing import Optional

from ..errors import DeepDreamError
from .caffe_env import import_caffe

_PROBE = """
import caffe
caffe.set_device({dev})
caffe.set_mode_gpu()
print("ok")
"""


def gpu_usable(device: int) -> bool:
    """Whether this Caffe can run on GPU ``device`` (tried in a child process)."""
    env = dict(os.environ, GLOG_minloglevel="3")
    try:
        r = subprocess.run(
            [sys.executable, "-c", _PROBE.format(dev=int(device))],
            capture_output=True, text=True, timeout=120, env=env,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return r.returncode == 0 and r.stdout.strip().endswith("ok")


def select_device(gpu: Optional[int]) -> str:
    """Put Caffe in CPU mode (``gpu=None``) or GPU mode on that device; returns a label for logs."""
    caffe = import_caffe()
    if gpu is None:
        caffe.set_mode_cpu()
        return "cpu"
    if gpu < 0:
        raise DeepDreamError(f"GPU device id must be >= 0, got {gpu}")
    if not gpu_usable(gpu):
        raise DeepDreamError(
            f"GPU {gpu} is not usable: this Caffe is CPU-only or has no such device "
            "(rebuild with scripts/setup.sh --cuda on a CUDA machine, or run on the CPU)"
        )
    caffe.set_device(gpu)
    caffe.set_mode_gpu()
    return f"gpu:{gpu}"
