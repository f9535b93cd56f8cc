"""The ``--mode lbfgs`` options: their definitions, and the app's :class:`LbfgsOptions` from them."""
from __future__ import annotations

import argparse

from ..app.config import LbfgsOptions
from ..errors import DeepDreamError
from ..dream.defaults import (
    LBFGS_ALPHA as DEFAULT_ALPHA,
    LBFGS_GAIN as DEFAULT_GAIN,
    LBFGS_MAXITER as DEFAULT_MAXITER,
    LBFGS_OBJECTIVE as DEFAULT_OBJECTIVE,
    LBFGS_OBJECTIVES as OBJECTIVES,
    LBFGS_TV_BETA as DEFAULT_TV_BETA,
    LBFGS_TV_WEIGHT as DEFAULT_TV_WEIGHT,
)

# The flag of each LbfgsOptions field, for error lines.
LBFGS_FLAGS = {
    "objective": "--objective",
    "gain": "--gain",
    "tv_weight": "--tv-weight",
    "tv_beta": "--tv-beta",
    "alpha_weight": "--alpha-weight",
    "alpha": "--alpha",
    "maxiter": "--lbfgs-iters",
    "maxfun": "--lbfgs-maxfun",
}


def add_lbfgs_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the "L-BFGS mode" argument group (used with ``--mode lbfgs``)."""
    g = parser.add_argument_group(
        "L-BFGS mode",
        "with --mode lbfgs each octave minimises D(X) + S*(tv_weight*R_TV(X) + alpha_weight*R_alpha(X)) "
        "with scipy's L-BFGS-B, pixels bounded to the valid range; S = 0.5*||phi(X0)||^2/(C*H*W), "
        "X0 the octave's start, makes the weights independent of the layer's scale and the image size",
    )
    g.add_argument("--objective", choices=OBJECTIVES, default=DEFAULT_OBJECTIVE,
                   help="l2: D = -0.5*||phi(X)||^2, the notebook's objective; "
                        f"gain: D = 0.5*||phi(X) - gain*phi(X0)||^2 (default {DEFAULT_OBJECTIVE})")
    # None: not given, so that --objective l2 can refuse a --gain it would not use.
    g.add_argument("--gain", type=float, default=None,
                   help=f"enhancement factor for --objective gain, > 0 ({DEFAULT_GAIN:g})")
    g.add_argument("--tv-weight", type=float, default=DEFAULT_TV_WEIGHT,
                   help=f"weight of the beta-TV prior relative to S, >= 0 ({DEFAULT_TV_WEIGHT:g})")
    g.add_argument("--tv-beta", type=float, default=DEFAULT_TV_BETA,
                   help=f"beta of the TV prior (Mahendran & Vedaldi), >= 1 ({DEFAULT_TV_BETA:g})")
    g.add_argument("--alpha-weight", type=float, default=0.0,
                   help="weight of the alpha-norm prior relative to S, >= 0 (0: off)")
    g.add_argument("--alpha", type=float, default=DEFAULT_ALPHA,
                   help=f"exponent of the alpha-norm prior, >= 1 ({DEFAULT_ALPHA:g})")
    g.add_argument("--lbfgs-iters", type=int, default=DEFAULT_MAXITER,
                   help=f"L-BFGS iterations per octave ({DEFAULT_MAXITER})")
    g.add_argument("--lbfgs-maxfun", type=int, default=None,
                   help="function evaluations per octave (default: bounded by --lbfgs-iters only)")


def lbfgs_options(args: argparse.Namespace) -> LbfgsOptions:
    """The L-BFGS settings on the command line (checked by the DreamConfig they go into)."""
    if getattr(args, "mode", "lbfgs") == "lbfgs" and args.gain is not None and args.objective != "gain":
        raise DeepDreamError("--gain is for --objective gain (the l2 objective has no target)")
    gain = DEFAULT_GAIN if args.gain is None else args.gain
    return LbfgsOptions(objective=args.objective, gain=gain, tv_weight=args.tv_weight, tv_beta=args.tv_beta,
                        alpha_weight=args.alpha_weight, alpha=args.alpha, maxiter=args.lbfgs_iters,
                        maxfun=args.lbfgs_maxfun)
