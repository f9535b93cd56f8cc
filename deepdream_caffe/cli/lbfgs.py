"""Command-line glue for ``--mode lbfgs``: its options, their checks, the progress bar."""
from __future__ import annotations

import argparse
from typing import Any, Callable, Dict, Optional, Tuple

import numpy as np

from ..dream.lbfgs import (
    DEFAULT_ALPHA,
    DEFAULT_GAIN,
    DEFAULT_MAXITER,
    DEFAULT_TV_BETA,
    DEFAULT_TV_WEIGHT,
    OBJECTIVES,
    check_lbfgs_params,
    check_spatial_layer,
    deepdream_lbfgs,
)
from ..dream.octaves import octave_sizes

DEFAULT_LAYER = "inception_4c/output"

# What each checked parameter is called on the command line, for the error line.
FLAG_NAMES = {
    "objective": "--objective",
    "gain": "--gain",
    "tv_weight": "--tv-weight",
    "tv_beta": "--tv-beta",
    "alpha_weight": "--alpha-weight",
    "alpha": "--alpha",
    "maxiter": "--lbfgs-iters",
    "maxfun": "--lbfgs-maxfun",
    "octave_n": "--octaves",
    "octave_scale": "--octave-scale",
}

ProgressFactory = Callable[[Any, int], Any]


def add_lbfgs_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the "L-BFGS mode" argument group (used with ``--mode lbfgs``)."""
    g = parser.add_argument_group(
        "L-BFGS mode",
        "with --mode lbfgs each octave minimises D(X) + tv_weight*R_TV(X) + alpha_weight*R_alpha(X) "
        "with scipy's L-BFGS-B, pixels bounded to the valid range",
    )
    g.add_argument("--objective", choices=OBJECTIVES, default="gain",
                   help="gain: D = 0.5*||phi(X) - gain*phi(X0)||^2, X0 the octave's start; "
                        "l2: D = -0.5*||phi(X)||^2, the notebook's objective (default gain)")
    g.add_argument("--gain", type=float, default=DEFAULT_GAIN,
                   help=f"enhancement factor for --objective gain, > 0 ({DEFAULT_GAIN:g})")
    g.add_argument("--tv-weight", type=float, default=DEFAULT_TV_WEIGHT,
                   help=f"weight of the beta-TV prior, >= 0 ({DEFAULT_TV_WEIGHT:g})")
    g.add_argument("--tv-beta", type=float, default=DEFAULT_TV_BETA,
                   help=f"beta of the TV prior (Mahendran & Vedaldi), >= 1 ({DEFAULT_TV_BETA:g})")
    g.add_argument("--alpha-weight", type=float, default=0.0,
                   help="weight of the alpha-norm prior, >= 0 (0: off)")
    g.add_argument("--alpha", type=float, default=DEFAULT_ALPHA,
                   help=f"exponent of the alpha-norm prior, >= 1 ({DEFAULT_ALPHA:g})")
    g.add_argument("--lbfgs-iters", type=int, default=DEFAULT_MAXITER,
                   help=f"L-BFGS iterations per octave ({DEFAULT_MAXITER})")
    g.add_argument("--lbfgs-maxfun", type=int, default=None,
                   help="function evaluations per octave (default: bounded by --lbfgs-iters only)")


def _lbfgs_params(args: argparse.Namespace) -> Dict[str, Any]:
    return {
        "objective": getattr(args, "objective", "gain"),
        "gain": getattr(args, "gain", DEFAULT_GAIN),
        "tv_weight": getattr(args, "tv_weight", DEFAULT_TV_WEIGHT),
        "tv_beta": getattr(args, "tv_beta", DEFAULT_TV_BETA),
        "alpha_weight": getattr(args, "alpha_weight", 0.0),
        "alpha": getattr(args, "alpha", DEFAULT_ALPHA),
        "maxiter": getattr(args, "lbfgs_iters", DEFAULT_MAXITER),
        "maxfun": getattr(args, "lbfgs_maxfun", None),
    }


def check_lbfgs_args(args: argparse.Namespace) -> None:
    """Raise a one-line DeepDreamError naming the flag if an L-BFGS option is bad (no net needed)."""
    check_lbfgs_params(**_lbfgs_params(args), octave_n=getattr(args, "octaves", 4),
                       octave_scale=getattr(args, "octave_scale", 1.4), names=FLAG_NAMES)


def run_lbfgs(net: Any, img: np.ndarray, args: argparse.Namespace,
              progress_factory: ProgressFactory) -> Tuple[np.ndarray, Dict[str, Any]]:
    """Check the L-BFGS options in ``args``, dream on ``img``; returns (image, metadata for "lbfgs").

    Bad options raise a one-line DeepDreamError naming the flag, before any
    work. ``progress_factory(sizes, iter_n)`` makes the progress bar; it is
    told the objective value after each accepted iterate, and an octave that
    converges early counts as finished.
    """
    params = _lbfgs_params(args)
    octave_n = getattr(args, "octaves", 4)
    octave_scale = getattr(args, "octave_scale", 1.4)
    end = getattr(args, "layer", None) or DEFAULT_LAYER
    check_lbfgs_args(args)
    h, w = img.shape[:2]
    check_spatial_layer(net, end, h, w)

    maxiter = int(params["maxiter"])
    feed = _ProgressFeed(progress_factory(octave_sizes(h, w, octave_n, octave_scale), maxiter), maxiter)
    try:
        out, info = deepdream_lbfgs(net, img, end=end, octave_n=octave_n, octave_scale=octave_scale,
                                    callback=feed, **params)
        feed.finish(octave_n)
    finally:
        feed.progress.close()
    return out, info


class _ProgressFeed:
    """Turns per-iterate callbacks into progress steps; an octave that stops early is filled up.

    L-BFGS-B may stop before ``maxiter`` (converged, or out of evaluations);
    its remaining steps are counted when the next octave starts, so the bar
    ends at 100%.
    """

    def __init__(self, progress: Any, maxiter: int) -> None:
        self.progress = progress
        self.maxiter = maxiter
        self.octave = 0
        self.done = 0
        self.value: Optional[float] = None

    def __call__(self, octave: int, step: int, value: float) -> None:
        self._advance_to(octave)
        if step < self.maxiter:
            self.progress.update(octave, step, extra=f"f={value:.6g}")
        self.done, self.value = step + 1, value

    def finish(self, octave_n: int) -> None:
        self._advance_to(octave_n - 1)
        self._fill()

    def _advance_to(self, octave: int) -> None:
        while octave > self.octave:
            self._fill()
            self.octave, self.done, self.value = self.octave + 1, 0, None

    def _fill(self) -> None:
        extra = "converged" if self.value is None else f"f={self.value:.6g} (stopped)"
        for step in range(self.done, self.maxiter):
            self.progress.update(self.octave, step, extra=extra)
