"""Argument groups shared by several commands, and turning parsed arguments into the app's config."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from ..app.config import PICKS, DreamConfig
from ..app.netspec import DEFAULT_MODEL, FALLBACK_MODEL, NetSource
from ..dream import defaults as nb
from ..dream.keyframes import read_keyframes
from ..dream.params import Ascent, Octaves, SettingError, Tiling, is_number
from ..errors import DeepDreamError
from ..zoo import find_manifest
from .fields import add_fields, flag, given, worded
from .lbfgs import add_lbfgs_arguments, lbfgs_options
from .progress import PROG

# Why --mode lbfgs refuses each ascent setting (and --seed) rather than ignore it.
NOT_FOR_LBFGS = {
    "iter_n": f"use {flag('maxiter')} for L-BFGS iterations per octave",
    "step_size": "L-BFGS chooses its steps by line search",
    "jitter": "L-BFGS keeps the image in place",
    "clip": "L-BFGS keeps pixels in range by bounds",
    "seed": "L-BFGS has no randomness",
    "lap_levels": "L-BFGS takes the gradient as it is",
    "preserve_colors": "L-BFGS optimises all channels",
}


def _weight(text: str, whole: str) -> float:
    try:
        w = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"the weight in '{whole}' is not a number") from None
    if not is_number(w) or w == 0:
        raise argparse.ArgumentTypeError(f"the weight in '{whole}' must be a finite number other than 0")
    return w


def layer_term(text: str) -> Tuple[str, float]:
    """``NAME`` or ``NAME=WEIGHT`` (``--layer``) -> (name, weight)."""
    name, sep, w = text.rpartition("=")
    if not sep:
        name, w = text, "1"
    if not name:
        raise argparse.ArgumentTypeError(f"'{text}' names no layer; use NAME or NAME=WEIGHT")
    return name, _weight(w, text)


def channel_term(text: str) -> Tuple[str, Any, Any]:
    """``LAYER:INDEX[=WEIGHT]`` (``--channel``) -> (layer, index, weight); ``LAYER:strongest[=K]``
    or ``LAYER:random[=K]`` -> (layer, how, k), a pick of k channels (default 1)."""
    spec, sep, w = text.rpartition("=")
    if not sep:
        spec, w = text, "1"
    layer, colon, index = spec.rpartition(":")
    if colon and layer and index in PICKS:
        if not w.isdigit():
            raise argparse.ArgumentTypeError(f"the count in '{text}' is not a whole number")
        return layer, index, int(w)
    if not colon or not layer or not index.isdigit():
        raise argparse.ArgumentTypeError(f"'{text}' is not LAYER:INDEX[=WEIGHT] (INDEX a whole number), "
                                         f"LAYER:strongest[=K] or LAYER:random[=K]")
    return layer, int(index), _weight(w, text)


def pan_pair(text: str) -> Tuple[float, float]:
    """``DX,DY`` (``--pan``) -> (dx, dy), finite numbers."""
    parts = text.split(",")
    try:
        dx, dy = (float(p) for p in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not DX,DY (two numbers, e.g. 2,-1)") from None
    if not (is_number(dx) and is_number(dy)):
        raise argparse.ArgumentTypeError(f"'{text}': DX and DY must be finite numbers")
    return dx, dy


def scheduled(path: Optional[Path], allowed: Tuple[str, ...], what: str) -> Any:
    """The keyframes in ``path`` (None: none), limited to the settings ``what`` takes."""
    return None if path is None else read_keyframes(path).only(allowed, what)


def term_text(term: Tuple[Any, ...]) -> str:
    """The command-line text of a parsed ``--layer`` or ``--channel`` term (the inverse of the two above)."""
    *where, w = term
    text = ":".join(str(x) for x in where)
    return text if w == 1 else f"{text}={w!r}"


def add_net_args(p: argparse.ArgumentParser, run: bool = True) -> None:
    """--model or --prototxt/--weights, the input conventions, where models come from, the device.

    ``run=False`` (``layers``: shapes from the prototxt alone) leaves out what only a run of the net
    takes: --weights, --mean, --channel-swap and --gpu.
    """
    g = p.add_argument_group("net")
    g.add_argument("--model", help=f"model from the zoo (default {DEFAULT_MODEL}; see `{PROG} models list`)")
    g.add_argument("--prototxt", type=Path,
                   help="a deploy prototxt of your own" + (" (with --weights)" if run else ""))
    if run:
        g.add_argument("--weights", type=Path, help="the .caffemodel for --prototxt")
        g.add_argument("--mean", type=float, nargs=3, metavar=("B", "G", "R"),
                       help="per-channel input mean in the net's channel order (default: the model's, or 104 116 122)")
        g.add_argument("--channel-swap", type=int, nargs=3, metavar="I",
                       help="order of the image's RGB channels at the net input (default 2 1 0: RGB->BGR)")
    g.add_argument("--models-dir", type=Path, action="append", default=[],
                   help="extra folder of model manifests, searched first (repeatable)")
    g.add_argument("--mirror", metavar="BASE_URL", help="fetch model files from BASE_URL/<file name> first")
    if run:
        g.add_argument("--gpu", type=int, nargs="?", const=0, default=None, metavar="ID",
                       help="run on GPU ID (default 0 when given without a value)")
    g.add_argument("--allow-python-layers", action="store_true",
                   help='let a type: "Python" layer import and run the module its prototxt names (trusted files only)')


def default_layers() -> str:
    """Each model's own default layer, as its manifest says, for the help of --layer."""
    said = []
    for name in (DEFAULT_MODEL, FALLBACK_MODEL):
        try:
            said.append(f"{find_manifest(name).default_layer} for {name}")
        except DeepDreamError:  # a broken manifest is told where it is used, not in --help
            continue
    return ", ".join(said + [f"{nb.DEFAULT_LAYER} for --prototxt"])


def add_dream_args(p: argparse.ArgumentParser, images: bool = True) -> None:
    """The dream's settings (the notebook's defaults) and the L-BFGS mode's.

    ``images=False`` (``video``: frames in, a video or PNG frames out) leaves out --quality and
    --exif-orientation, which only image files have.
    """
    g = p.add_argument_group("dream (defaults are the notebook's)")
    g.add_argument("--layer", type=layer_term, action="append", metavar="NAME[=WEIGHT]",
                   help="Caffe layer to maximise, with a weight (default 1); repeat it to sum several "
                        f"(default: the model's own: {default_layers()}; every model's in `{PROG} models list`)")
    g.add_argument("--channel", type=channel_term, action="append", metavar="LAYER:INDEX[=WEIGHT]",
                   help="maximise the sum of one channel of a layer, with a weight (default 1), added to the "
                        "--layer terms; without --layer, the channels alone (no default layer); repeatable. "
                        "LAYER:strongest[=K]: the K channels (default 1) most active on the input; "
                        "LAYER:random[=K]: K channels drawn with --seed; the record holds those chosen")
    add_fields(g, Octaves)
    # The ascent's and the tiling's flags default to None (not given) so that --mode lbfgs can refuse them.
    add_fields(g, Ascent, unset=("iter_n", "step_size", "jitter", "lap_levels"))
    g.add_argument("--seed", type=int, help="seed for the ascent's jitter (default: chosen and reported)")
    g.add_argument("--guide", type=Path, help="guide image for the guided objective")
    g.add_argument("--mode", choices=("ascent", "lbfgs"), default="ascent",
                   help="ascent: the notebook's gradient ascent; lbfgs: scipy L-BFGS-B on the layer's energy "
                        "with a smoothness prior (see the L-BFGS group)")
    add_fields(g, Tiling, unset=("tile", "above_mp"), skip=("margin",))
    g.add_argument("--max-size", type=int, default=None, metavar="N",
                   help="bring the input's (each frame's) long side down to N pixels before dreaming")
    g.add_argument("--notebook-net", action="store_true",
                   help="use the notebook's force_backward net instead of the faster surgery (same output bits)")
    if images:
        g.add_argument("--quality", type=int, default=None,
                       help=f"JPEG/WebP quality, 1..100 ({nb.JPEG_QUALITY}, as the notebook's PIL default)")
        g.add_argument("--exif-orientation", choices=("apply", "ignore"), default="apply",
                       help="apply: turn photos upright as their EXIF tag says (default); "
                            "ignore: the pixels as stored, the notebook's np.float32(PIL.Image.open(f))")
    add_lbfgs_arguments(p)


def add_common_args(p: argparse.ArgumentParser, caffe: bool = True) -> None:
    """-q and -v (``caffe=False``: a command that runs no Caffe has no Caffe log to show)."""
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar or notes")
    p.add_argument("-v", "--verbose", action="store_true",
                   help="show Caffe's log and tracebacks" if caffe else "show tracebacks")


def net_source(args: argparse.Namespace) -> NetSource:
    """The net named on the command line."""
    return NetSource(
        model=args.model, prototxt=args.prototxt, weights=getattr(args, "weights", None),
        mean=getattr(args, "mean", None), channel_swap=getattr(args, "channel_swap", None),
        models_dirs=args.models_dir or (), mirror=args.mirror,
        allow_python_layers=args.allow_python_layers,
    )


def _layers(terms: Optional[List[Tuple[str, float]]]) -> Dict[str, Any]:
    """One ``--layer NAME`` is the config's ``layer`` (as before weights existed); weighted or several, ``layers``."""
    if terms and len(terms) == 1 and terms[0][1] == 1.0:
        return {"layer": terms[0][0]}
    return {"layers": tuple(terms or ())}


def dream_config(args: argparse.Namespace) -> DreamConfig:
    """The validated run configuration of a ``dream`` or ``zoom`` command line.

    With ``--mode lbfgs`` an ascent-only flag is refused even at its default
    value: it was given, so the user expects it to count.
    """
    if args.mode == "lbfgs":
        ascent_only = {**given(args, Ascent), "seed": args.seed}
        for key, why in NOT_FOR_LBFGS.items():
            if ascent_only.get(key) is not None:
                raise DeepDreamError(f"{flag(key)} is for --mode ascent; {why}")
    try:
        return DreamConfig(
            net=net_source(args), **_layers(args.layer),
            channels=tuple(t for t in args.channel or () if t[1] not in PICKS),
            picks=tuple(t for t in args.channel or () if t[1] in PICKS),
            octaves=Octaves(**given(args, Octaves)), tiling=Tiling(**given(args, Tiling)),
            solver=lbfgs_options(args) or Ascent(**given(args, Ascent)), seed=args.seed, guide=args.guide,
            fast=not args.notebook_net, quality=getattr(args, "quality", None), gpu=args.gpu,
            exif_orientation=getattr(args, "exif_orientation", "apply"),
            verbose=args.verbose, max_size=args.max_size,
        )
    except SettingError as e:
        raise DeepDreamError(worded(e)) from None
