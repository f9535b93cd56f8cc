"""``deepdream-caffe visualize``: the image of a class (Simonyan et al. 2014; Yosinski et al. 2015), or of a
channel or neuron from noise (lucid's optvis: Olah et al. 2017)."""
from __future__ import annotations

import argparse
from pathlib import Path

from ...app.visualize import SIMONYAN_ONLY
from ...app.visualize import VisualizeConfig as V
from ...dream import defaults as nb
from ...dream.params import OPTVIS_PARAMS, OPTVIS_TRANSFORMS, Optvis
from ...errors import DeepDreamError
from ..fields import add_fields, dest, flag, given, settings
from ..lbfgs import add_lbfgs_arguments, lbfgs_options
from ..options import add_common_args, add_net_args, net_source
from ..progress import StderrReporter

ORDER = 15

# Yosinski et al. 2015, Table 1, set 3 (the defaults; see deepdream_caffe/dream/visualize.py).
_SET3 = "decay 0.0001, blur 1.0 every 4 steps, no pixel clipping"
# The ascent's steps and transforms (default None: given or not), which --mode lbfgs refuses rather than ignore.
ASCENT_ONLY = ("iter_n", "step_size", "step_end", "momentum", "jitter", "paper_set", "decay", "blur_sigma",
               "blur_every", "norm_pct", "contrib_pct")

def add_parser(subparsers: argparse._SubParsersAction) -> None:
    v = subparsers.add_parser("visualize", help="the image of a class (ascent on its pre-softmax score), "
                                                "or of a channel or neuron from noise")
    what = v.add_mutually_exclusive_group(required=True)
    what.add_argument("--class", dest="klass", metavar="K", help="class index, or its name in the model's labels file")
    what.add_argument("--channel", metavar="LAYER:C", help="channel C of LAYER, from noise (lucid's optvis)")
    what.add_argument("--neuron", metavar="LAYER:C", help="the centre unit of channel C of LAYER, from noise")
    v.add_argument("-o", "--output", type=Path, required=True, help="output image (.jpg, .png, ...)")
    v.add_argument("--layer", help="class-score layer (default: the last InnerProduct before the Softmax)")
    v.add_argument("--labels", type=Path, help="labels file, one class per line (default: the model's, if any)")
    add_net_args(v)
    g = v.add_argument_group("visualisation")
    g.add_argument("--score", choices=nb.CLASS_SCORES, default=nb.CLASS_SCORE,
                   help="what is climbed: the pre-softmax score (Simonyan's, default) or log softmax, "
                        "which also pushes the other classes down")
    g.add_argument("--init", metavar="zero|noise|IMAGE",
                   help="start: zero (the training mean, Simonyan's), noise, or an image (default zero)")
    g.add_argument("--size", type=int, nargs=2, metavar=("W", "H"),
                   help="canvas size (default: the net's input size); larger ones use octaves upward and tiles")
    g.add_argument("--iters", type=int, help=f"steps per octave ({V.iter_n})")
    g.add_argument("--octaves", type=int, default=None, help="octaves (default: as many as fit above the native size)")
    g.add_argument("--octave-scale", type=float,
                   help=f"size ratio between octaves ({V.octave_scale})")
    g.add_argument("--step-size", type=float, help=f"normalised step size ({V.step_size})")
    g.add_argument("--step-end", type=float, default=None,
                   help="step size at the last step of each octave, linear from --step-size (default: constant)")
    g.add_argument("--momentum", type=float,
                   help="heavy-ball momentum on the normalised gradient, in [0, 1) (0: plain ascent)")
    g.add_argument("--jitter", type=int, help=f"random shift in pixels per step ({V.jitter})")
    g.add_argument("--seed", type=int, help="seed for jitter and noise (default: chosen and reported)")
    g.add_argument("--mode", choices=("ascent", "lbfgs"), default="ascent",
                   help="ascent with the transforms, or L-BFGS-B on the score minus the TV prior (native size)")
    g.add_argument("--quality", type=int, default=V.quality, help=f"JPEG quality ({V.quality})")
    r = v.add_argument_group("regularisers", f"defaults: Yosinski et al. 2015 Table 1 set 3 ({_SET3})")
    r.add_argument("--paper-set", type=int, choices=(1, 2, 3, 4),
                   help=f"start from this hyperparameter set of Yosinski et al.'s Table 1 ({V.paper_set})")
    r.add_argument("--l2", type=float, help="Simonyan's lambda: maximise S_k - lambda*||X||^2 (0)")
    r.add_argument("--decay", type=float, help="theta_decay: X *= 1 - decay after each step")
    r.add_argument("--blur-sigma", type=float, help="theta_b_width: Gaussian blur sigma in pixels (0: none)")
    r.add_argument("--blur-every", type=int, help="theta_b_every: blur every N steps (0: never)")
    r.add_argument("--norm-pct", type=float, help="theta_n_pct: zero pixels of norm below this percentile")
    r.add_argument("--contrib-pct", type=float, help="theta_c_pct: zero pixels of contribution below this percentile")
    o = v.add_argument_group("optvis", "lucid's feature visualisation: the default for --channel and --neuron; "
                                       "with --class, any of these flags climbs the class score this way")
    add_fields(o, Optvis, unset=[f for f in Optvis.__dataclass_fields__],
               choices={"param": OPTVIS_PARAMS, "transforms": OPTVIS_TRANSFORMS})
    # Its L-BFGS maximises the class score: the objective and its gain are dream's.
    add_lbfgs_arguments(v, skip=("objective", "gain"))
    add_common_args(v)
    v.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ...app.visualize import visualize_file

    if args.mode == "lbfgs":
        given_ascent = [f for f in ASCENT_ONLY if getattr(args, dest(f)) is not None]
        if given_ascent:
            raise DeepDreamError(f"{flag(given_ascent[0])} is for --mode ascent; the L-BFGS mode solves for the "
                                 "class score with the TV prior, without the ascent's steps and transforms")
    optvis = None
    if args.klass is None or given(args, Optvis):
        given_simonyan = [f for f in SIMONYAN_ONLY if getattr(args, dest(f)) is not None]
        if given_simonyan or args.mode == "lbfgs":
            raise DeepDreamError(f"{flag(given_simonyan[0]) if given_simonyan else '--mode lbfgs'} is for "
                                 "Simonyan's ascent on a class; optvis climbs with Adam from noise at one size")
        optvis = settings(Optvis, args)
    klass = None if args.klass is None else int(args.klass) if args.klass.strip().isdigit() else args.klass
    config = settings(V, args, klass=klass, net=net_source(args), size=tuple(args.size) if args.size else None,
                      lbfgs=lbfgs_options(args), optvis=optvis)
    visualize_file(args.output, config, reporter=StderrReporter(args.quiet))
    return 0
