"""What is written down about a run, in one place: its parameters and its metadata.

The parameters decide the pixels (with the seed, the input and the
weights; their hash is the run's key, see :mod:`.run`); the metadata goes
with the output.
"""
from __future__ import annotations

import datetime as _dt
from dataclasses import asdict
from pathlib import Path
from typing import Any, Dict, Optional, Sequence, Tuple

from .. import __version__
from ..blas_hook import kernel_choice
from ..dream.params import Lbfgs
from ..io.hashing import file_sha1
from .config import DreamConfig
from .netspec import NetSpec
from .run import TOOL


def run_params(config: DreamConfig, spec: NetSpec, layers: Sequence[str], octave_n: int,
               objective: str, chosen: Sequence[Tuple[str, int, float]] = ()) -> Dict[str, Any]:
    """The settings that decide a dream's pixels, as recorded (``octave_n`` is the count actually used).

    ``layers`` are those the objective reads (one: recorded as a name, as
    before), ``objective`` its expression, which
    :func:`~deepdream_caffe.dream.objectives.parse_objective` reads back (a
    guide's features by name, from the guide image at each layer). Only
    what the mode uses: the ascent's steps, jitter, clipping, guide and
    tiles, or the L-BFGS settings (``gain`` only for its objective) and guide.
    Options that are off are left out (a run without them keeps its key):
    the ascent's ``lap_levels`` and ``preserve_colors``, ``max_size``, and
    ``picks`` with the channels ``chosen`` for them (in the picks' order).
    """
    params: Dict[str, Any] = {
        "mode": config.mode, "layer": layers[0] if len(layers) == 1 else list(layers), "objective": objective,
        "octaves": octave_n, "octave_scale": config.octaves.octave_scale,
    }
    solver = config.solver
    if isinstance(solver, Lbfgs):  # they decide the pixels too (and so the resume key)
        lb = asdict(solver)
        if lb["objective"] != "gain":
            del lb["gain"]
        params["lbfgs"] = lb
        if config.guide is not None:
            params["guide"] = str(config.guide)
    else:
        params.update({"iters": solver.iter_n, "step_size": solver.step_size, "jitter": solver.jitter,
                       "clip": solver.clip, "guide": str(config.guide) if config.guide else None,
                       "tiling": config.tiling.describe()})
        params.update({k: v for k, v in (("lap_levels", solver.lap_levels),
                                         ("preserve_colors", solver.preserve_colors)) if v})
    if config.max_size is not None:
        params["max_size"] = config.max_size
    if config.picks:
        rest = iter(c for _, c, _ in chosen)
        params["picks"] = [{"layer": layer, "how": how, "k": k, "channels": [next(rest) for _ in range(k)]}
                           for layer, how, k in config.picks]
    params.update({"mean": list(spec.mean), "channel_swap": list(spec.channel_swap),
                   "exif_orientation": config.exif_orientation})
    return params


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


def output_metadata(command: str, params: Dict[str, Any], seed: Optional[int], spec: NetSpec, device: str,
                    input_path: Optional[Path], input_sha1: Optional[str] = None,
                    extra: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """The record saved with an output (PNG text chunk or ``.json`` sidecar; ``zoom.json``, ``video.json``).

    Tool version, parameters, seed, model files and their hashes, and the
    BLAS that decides the bits; ``input_sha1`` saves hashing the input
    again when the caller knows it.
    """
    blas = kernel_choice()
    meta: Dict[str, Any] = {
        "tool": TOOL,
        "version": __version__,
        "command": command,
        "params": params,
        "seed": seed,
        "model": spec.model,
        "prototxt": str(spec.prototxt),
        "prototxt_sha1": file_sha1(spec.prototxt),
        "weights": str(spec.weights) if spec.weights else None,
        "weights_sha1": spec.weights_sha1,
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
    meta.update(extra or {})
    return meta
