"""What is recorded with each output so the run can be repeated."""
from __future__ import annotations

import datetime as _dt
import os
from pathlib import Path
from typing import Any, Dict, Optional

from .. import __version__
from ..blas_hook import kernel_choice
from .hashing import sha1_file


def file_sha1(path: Optional[os.PathLike]) -> Optional[str]:
    return None if path is None else sha1_file(path)


def blas_threads() -> Optional[int]:
    """Threads of the OpenBLAS that Caffe uses, or None for another BLAS (or before Caffe loaded it).

    Recorded because OpenBLAS's matrix products round differently with a
    different thread count: the same seed repeats its bits only with it.
    """
    return kernel_choice()["threads"]


def blas_core() -> Optional[str]:
    """The kernel family OpenBLAS uses for this CPU (e.g. "Haswell", "Cooperlake"), or None.

    Recorded for the same reason as the thread count: each family has its
    own matrix-product kernels with their own rounding, so the same seed
    gives the same bits only with the same family.
    """
    return kernel_choice()["core"]


def run_metadata(
    *,
    command: str,
    params: Dict[str, Any],
    seed: Optional[int],
    model: Optional[str],
    prototxt: Path,
    weights: Optional[Path],
    weights_sha1: Optional[str],
    input_path: Optional[Path],
    device: str,
    input_sha1: Optional[str] = None,
    extra: Optional[Dict[str, Any]] = None,
) -> Dict[str, Any]:
    """A JSON-able record: tool version, parameters, seed, model files and their hashes.

    ``input_sha1`` saves hashing the input again when the caller knows it.
    """
    blas = kernel_choice()
    meta: Dict[str, Any] = {
        "tool": "deepdream-caffe",
        "version": __version__,
        "command": command,
        "params": params,
        "seed": seed,
        "model": model,
        "prototxt": str(prototxt),
        "prototxt_sha1": file_sha1(prototxt),
        "weights": str(weights) if weights else None,
        "weights_sha1": weights_sha1,
        "input": str(input_path) if input_path else "skimage.data.astronaut",
        "input_sha1": (input_sha1 or file_sha1(input_path)) if input_path else None,
        "device": device,
        "blas_threads": blas["threads"],
        "blas_core": blas["core"],
        # Why that family: "detected" (OpenBLAS's own), "user" (OPENBLAS_CORETYPE),
        # "project" (chosen instead of a generic fallback; see blas_hook.py).
        "blas_core_reason": blas["reason"] if blas["core"] else None,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    if extra:
        meta.update(extra)
    return meta
