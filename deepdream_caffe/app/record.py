"""What is written down about a run, in one place: its parameters and its metadata.

The parameters decide the pixels (with the seed, the input and the
weights; their hash is the run's key, see :mod:`.run`); the metadata goes
with the output.
"""
from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any, Dict, Optional, Sequence

from ..dream.params import Lbfgs
from ..io.metadata import run_metadata
from .config import DreamConfig
from .netspec import NetSpec


def run_params(config: DreamConfig, spec: NetSpec, layers: Sequence[str], octave_n: int,
               objective: str) -> Dict[str, Any]:
    """The settings that decide a dream's pixels, as recorded (``octave_n`` is the count actually used).

    ``layers`` are those the objective reads (one: recorded as a name, as
    before), ``objective`` its expression, which
    :func:`~deepdream_caffe.dream.objectives.parse_objective` reads back (a
    guide's features by name, from the guide image at each layer). Only
    what the mode uses: the ascent's steps, jitter, clipping, guide and
    tiles, or the L-BFGS settings (``gain`` only for its objective) and guide.
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
    params.update({"mean": list(spec.mean), "channel_swap": list(spec.channel_swap),
                   "exif_orientation": config.exif_orientation})
    return params


def output_metadata(command: str, params: Dict[str, Any], seed: Optional[int], spec: NetSpec, device: str,
                    input_path: Optional[Path], input_sha1: Optional[str],
                    extra: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """The record saved with an output (PNG text chunk or ``.json`` sidecar; ``zoom.json``)."""
    return run_metadata(
        command=command, params=params, seed=seed, model=spec.model, prototxt=spec.prototxt,
        weights=spec.weights, weights_sha1=spec.weights_sha1, input_path=input_path, input_sha1=input_sha1,
        device=device, extra=extra,
    )
