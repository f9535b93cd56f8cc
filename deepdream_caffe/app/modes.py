"""The L-BFGS mode as a run drives it, with its progress display."""
from __future__ import annotations

from typing import Any, Callable, Dict, List, Tuple

import numpy as np

from ..dream.lbfgs import descend
from ..dream.octaves import octave_sizes
from ..dream.params import Lbfgs, Octaves
from .reporting import LbfgsProgress, Progress

ProgressFactory = Callable[[List[Tuple[int, int]], int], Progress]


def run_lbfgs(net: Any, img: np.ndarray, *, end: str, octaves: Octaves, options: Lbfgs,
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
    sizes = octave_sizes(img.shape[0], img.shape[1], octaves.octave_n, octaves.octave_scale)
    feed = LbfgsProgress(lambda: progress(sizes, options.maxiter), options.maxiter)
    try:
        out, info = descend(net, img, options, octaves, end=end, objective=objective, callback=feed,
                            checkpoint=checkpoint)
        feed.finish(octaves.octave_n)
    finally:
        feed.close()
    resumed = getattr(checkpoint, "resumed_from", None)
    if resumed is not None:
        info["resumed_after_octave"] = resumed + 1  # octaves 1..this came from the saved state
    return out, info
