"""What is recorded with each output so the run can be repeated."""
from __future__ import annotations

import ctypes
import datetime as _dt
import os
from pathlib import Path
from typing import Any, Dict, Optional

from .. import __version__
from .hashing import sha1_file


def file_sha1(path: Optional[os.PathLike]) -> Optional[str]:
    return None if path is None else sha1_file(path)


def _caffe_openblas() -> Optional[ctypes.CDLL]:
    """The OpenBLAS that Caffe links, or None for another BLAS.

    Caffe links the soname libopenblas.so.0 (numpy's own copy has another
    name), so this finds the library already loaded in the process.
    """
    try:
        return ctypes.CDLL("libopenblas.so.0")
    except OSError:
        return None


def blas_threads() -> Optional[int]:
    """Threads of the OpenBLAS that Caffe uses, or None for another BLAS.

    Recorded because OpenBLAS's matrix products round differently with a
    different thread count: the same seed repeats its bits only with it.
    """
    lib = _caffe_openblas()
    try:
        return None if lib is None else int(lib.openblas_get_num_threads())
    except AttributeError:
        return None


def blas_core() -> Optional[str]:
    """The kernel family OpenBLAS picked for this CPU (e.g. "Haswell", "Cooperlake"), or None.

    Recorded for the same reason as the thread count: each family has its
    own matrix-product kernels with their own rounding, so the same seed
    gives the same bits only on a CPU that gets the same family.
    """
    lib = _caffe_openblas()
    try:
        if lib is None:
            return None
        lib.openblas_get_corename.restype = ctypes.c_char_p
        return lib.openblas_get_corename().decode("ascii", "replace")
    except AttributeError:
        return None


def run_metadata(
    *,
    command: str,
    params: Dict[str, Any],
    seed: int,
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
        "blas_threads": blas_threads(),
        "blas_core": blas_core(),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    if extra:
        meta.update(extra)
    return meta
