"""The two modes as a run drives them: ascent (the notebook's) and L-BFGS, each with its progress display."""
from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np

from .config import LbfgsOptions
from .reporting import LbfgsProgress, Progress

ProgressFactory = Callable[[List[Tuple[int, int]], int], Progress]


def run_ascent(net: Any, img: np.ndarray, *, end: str, iter_n: int, octave_n: int, octave_scale: float,
               clip: bool, objective: Any, gradient: Any, rng: Optional[np.random.RandomState],
               progress: ProgressFactory, checkpoint: Any = None, **step_params: Any) -> np.ndarray:
    """The notebook's ``deepdream`` on ``img`` with a progress display; returns the image.

    ``objective`` is an Objective (or ``None``: L2 on ``end``); ``gradient``
    may work in tiles (a :class:`~deepdream_caffe.dream.tiling.TilePolicy`).
    """
    from ..dream.ascent import deepdream  # noqa: PLC0415
    from ..dream.octaves import octave_sizes  # noqa: PLC0415

    bar = progress(octave_sizes(img.shape[0], img.shape[1], octave_n, octave_scale), iter_n)
    try:
        return deepdream(net, img, iter_n=iter_n, octave_n=octave_n, octave_scale=octave_scale, end=end, clip=clip,
                         rng=rng, callback=lambda info: bar.update(info.octave, info.step), objective=objective,
                         gradient=gradient, checkpoint=checkpoint, **step_params)
    finally:
        bar.close()


def run_lbfgs(net: Any, img: np.ndarray, *, end: str, octave_n: int, octave_scale: float, options: LbfgsOptions,
              progress: ProgressFactory, checkpoint: Any = None,
              objective: Any = None) -> Tuple[np.ndarray, Dict[str, Any]]:
    """L-BFGS-B per octave on ``img``; returns (image, the record for the metadata's "lbfgs").

    ``objective`` (an Objective, maximised) replaces the options' "gain"/"l2"
    data term on ``end``; ``checkpoint`` resumes after the last finished
    octave (the record then holds the octaves run now, and says so).
    ``options`` were checked when their config was made; the layer and the
    sizes are checked by ``deepdream_lbfgs`` before any work, and the
    progress display starts with the first iterate, so a refused run shows
    none. Each accepted iterate is a step, and an octave that converges
    early is filled up, so the display ends at 100%.
    """
    from ..dream.lbfgs import deepdream_lbfgs  # noqa: PLC0415
    from ..dream.octaves import octave_sizes  # noqa: PLC0415

    maxiter = int(options.maxiter)
    sizes = octave_sizes(img.shape[0], img.shape[1], octave_n, octave_scale)
    feed = LbfgsProgress(lambda: progress(sizes, maxiter), maxiter)
    kwargs = options.kwargs()
    if objective is not None:
        kwargs["objective"] = objective
    try:
        out, info = deepdream_lbfgs(net, img, end=end, octave_n=octave_n, octave_scale=octave_scale, callback=feed,
                                    checkpoint=checkpoint, **kwargs)
        feed.finish(octave_n)
    finally:
        feed.close()
    resumed = getattr(checkpoint, "resumed_from", None)
    if resumed is not None:
        info["resumed_after_octave"] = resumed + 1  # octaves 1..this came from the saved state
    return out, info
