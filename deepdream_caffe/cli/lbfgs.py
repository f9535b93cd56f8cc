"""The ``--mode lbfgs`` options: their flags, and the :class:`~deepdream_caffe.dream.params.Lbfgs` from them."""
from __future__ import annotations

import argparse
from typing import Optional

from ..dream.params import LBFGS_OBJECTIVES, Lbfgs
from ..errors import DeepDreamError
from .fields import add_fields, flag, given


def add_lbfgs_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the "L-BFGS mode" argument group (used with ``--mode lbfgs``)."""
    g = parser.add_argument_group(
        "L-BFGS mode",
        "with --mode lbfgs each octave minimises D(X) + S*(tv_weight*R_TV(X) + alpha_weight*R_alpha(X)) "
        "with scipy's L-BFGS-B, pixels bounded to the valid range; S = 0.5*||phi(X0)||^2/(C*H*W), "
        "X0 the octave's start, makes the weights independent of the layer's scale and the image size",
    )
    # --gain defaults to None (not given), so that --objective l2 can refuse a --gain it would not use.
    add_fields(g, Lbfgs, unset=("gain",), choices={"objective": LBFGS_OBJECTIVES})


def lbfgs_options(args: argparse.Namespace) -> Optional[Lbfgs]:
    """The L-BFGS settings on the command line with ``--mode lbfgs``; None in the ascent mode, which refuses
    any of them set to other than its default (NaN counts as set)."""
    values = given(args, Lbfgs)
    if getattr(args, "mode", "lbfgs") != "lbfgs":
        unused = [key for key, value in values.items() if value != getattr(Lbfgs, key)]
        if unused:
            raise DeepDreamError(f"{flag(unused[0])} is for --mode lbfgs")
        return None
    if args.gain is not None and args.objective != "gain":
        raise DeepDreamError("--gain is for --objective gain (the l2 objective has no target)")
    return Lbfgs(**values)
