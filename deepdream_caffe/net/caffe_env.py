"""Importing pycaffe: one clear error when it is missing, glog kept quiet."""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from types import ModuleType
from typing import Optional

from ..errors import DeepDreamError

_HOW_TO_GET_CAFFE = (
    "pycaffe is not importable: run scripts/setup.sh (builds Caffe from Debian's source) "
    "or use conda (conda env create -f environment.yml)"
)


def import_caffe(verbose: bool = False) -> ModuleType:
    """Import and return the ``caffe`` module.

    Caffe's glog INFO/WARNING chatter is hidden unless ``verbose``; glog reads
    GLOG_minloglevel when libcaffe loads, so this must run before the first
    import to have any effect.
    """
    if not verbose:
        os.environ.setdefault("GLOG_minloglevel", "2")
    # Our Caffe build runs its own loops with OpenMP between OpenBLAS's
    # (pthread) matrix products. Idle workers of either pool spin by default
    # and steal the cores the other needs next: 1.05 s -> 0.77 s per
    # full-size GoogLeNet step here (scripts/bench.py). Thread counts and
    # results are unchanged. Both are read when libcaffe loads.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")
    try:
        import caffe  # noqa: PLC0415
    except ImportError as e:
        raise DeepDreamError(f"{_HOW_TO_GET_CAFFE} ({e})") from None
    return caffe


def find_caffe_root() -> Optional[Path]:
    """The Caffe source tree in use: $CAFFE_ROOT, else the tree pycaffe was imported from.

    Returns None for a Caffe without its source tree (conda-forge's package).
    """
    env = os.environ.get("CAFFE_ROOT")
    if env:
        return Path(env)
    try:
        spec = importlib.util.find_spec("caffe")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin:
        return None
    # <root>/python/caffe/__init__.py
    root = Path(spec.origin).resolve().parent.parent.parent
    return root if (root / "models").is_dir() else None


def googlenet_deploy_prototxt() -> Optional[Path]:
    """BVLC GoogLeNet's deploy.prototxt from the Caffe tree, if there is one."""
    root = find_caffe_root()
    if root is None:
        return None
    p = root / "models" / "bvlc_googlenet" / "deploy.prototxt"
    return p if p.is_file() else None
