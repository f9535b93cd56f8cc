"""The notebook's ``deepdream``: ascent steps over an octave pyramid."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional

import numpy as np

from ..net.access import check_layer, input_blob, raw_net
from . import defaults as nb
from .octaves import OctaveCheckpoint, octave_pyramid, run_octaves
from .step import make_step
from .transform import deprocess, preprocess


@dataclass
class StepInfo:
    """What a per-step callback is told (the notebook showed an image after every step)."""

    net: Any
    octave: int  # 0 = smallest
    octave_n: int
    step: int  # 0-based within the octave
    iter_n: int
    clip: bool

    def image(self) -> np.ndarray:
        """The current image as the notebook displayed it (contrast stretched when not clipping)."""
        vis = deprocess(self.net, input_blob(raw_net(self.net)).data[0])
        if not self.clip:
            vis = vis * (255.0 / np.percentile(vis, 99.98))
        return vis


StepCallback = Callable[[StepInfo], None]


def deepdream(
    net: Any,
    base_img: np.ndarray,
    iter_n: int = nb.ITER_N,
    octave_n: int = nb.OCTAVE_N,
    octave_scale: float = nb.OCTAVE_SCALE,
    end: str = nb.DEFAULT_LAYER,
    clip: bool = True,
    rng: Optional[np.random.RandomState] = None,
    callback: Optional[StepCallback] = None,
    step_fn: Callable[..., None] = make_step,
    checkpoint: Optional[OctaveCheckpoint] = None,
    **step_params: Any,
) -> np.ndarray:
    """Dream on ``base_img`` (HxWx3 RGB) and return the result as a float32 HxWx3 RGB image.

    Same algorithm and defaults as the notebook. ``rng`` (a RandomState)
    supplies the jitter; ``None`` uses numpy's global generator as the
    notebook did. ``checkpoint`` (see :mod:`checkpoint`) lets a long run
    resume after its last finished octave. ``step_params`` go to
    ``make_step`` (step_size, jitter, objective).
    """
    check_layer(raw_net(net), end)
    octaves = octave_pyramid(preprocess(net, base_img), octave_n, octave_scale)

    def work(octave: int, _base: np.ndarray) -> None:
        for i in range(iter_n):
            step_fn(net, end=end, clip=clip, rng=rng, **step_params)
            if callback is not None:
                callback(StepInfo(net, octave, octave_n, i, iter_n, clip))

    # Sizing the net up front reshapes every layer it has, so only a net cut
    # after ``end`` (load_net(end=...)) qualifies: a whole net's later layers
    # may not fit an image that ``end`` accepts. Tiled steps never qualify.
    h, w = octaves[0].shape[-2:]
    whole = step_fn is make_step or getattr(step_fn, "runs_whole", lambda _h, _w: False)(h, w)
    reserve = whole and getattr(net, "end", None) == end
    return deprocess(net, run_octaves(net, octaves, work, checkpoint, reserve=reserve))
