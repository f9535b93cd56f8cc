"""The ``deepdream-caffe`` command: dream, zoom, layers, models.

Every failure the user can cause ends as one line on stderr and exit 1
(2 for a malformed command line); tracebacks are for ``--verbose``.
"""
from __future__ import annotations

import argparse
import os
import secrets
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..errors import DeepDreamError

PROG = "deepdream-caffe"
DEFAULT_MODEL = "bvlc_googlenet"
DEFAULT_LAYER = "inception_4c/output"


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line too."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"{self.prog}: error: {message} (see --help)\n")
        sys.exit(2)


# ---------------------------------------------------------------- arguments


def _add_net_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("net")
    g.add_argument("--model", help=f"model from the zoo (default {DEFAULT_MODEL}; see `{PROG} models list`)")
    g.add_argument("--prototxt", type=Path, help="a deploy prototxt of your own (with --weights)")
    g.add_argument("--weights", type=Path, help="the .caffemodel for --prototxt")
    g.add_argument("--mean", type=float, nargs=3, metavar=("B", "G", "R"),
                   help="per-channel input mean in the net's channel order (default: the model's, or 104 116 122)")
    g.add_argument("--channel-swap", type=int, nargs=3, metavar="I",
                   help="order of the image's RGB channels at the net input (default 2 1 0: RGB->BGR)")
    g.add_argument("--models-dir", type=Path, action="append", default=[],
                   help="extra folder of model manifests, searched first (repeatable)")
    g.add_argument("--mirror", help="fetch model files from MIRROR/<file name> first")
    g.add_argument("--gpu", type=int, nargs="?", const=0, default=None, metavar="ID",
                   help="run on GPU ID (default 0 when given without a value)")


def _add_dream_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("dream (defaults are the notebook's)")
    g.add_argument("--layer", help=f"Caffe layer name to maximise (default: the model's, {DEFAULT_LAYER})")
    g.add_argument("--iters", type=int, default=10, help="steps per octave (10)")
    g.add_argument("--octaves", type=int, default=4, help="number of octaves (4)")
    g.add_argument("--octave-scale", type=float, default=1.4, help="size ratio between octaves (1.4)")
    g.add_argument("--step-size", type=float, default=1.5, help="ascent step size (1.5)")
    g.add_argument("--jitter", type=int, default=32, help="random shift in pixels (32)")
    g.add_argument("--no-clip", action="store_true", help="do not clip pixels to the valid range")
    g.add_argument("--seed", type=int, help="seed for the jitter (default: chosen and reported)")
    g.add_argument("--guide", type=Path, help="guide image for the guided objective")
    g.add_argument("--mode", choices=("ascent", "lbfgs"), default="ascent",
                   help="ascent: the notebook's gradient ascent; lbfgs: scipy L-BFGS-B on an enhanced target")
    g.add_argument("--tile-size", type=int, default=None,
                   help="work in tiles of this size for images above --tile-above pixels (bounded memory)")
    g.add_argument("--tile-above", type=float, default=None,
                   help="megapixels above which steps work in tiles (default 1.5; 0 = never)")
    g.add_argument("--notebook-net", action="store_true",
                   help="use the notebook's force_backward net instead of the faster surgery (same output bits)")
    g.add_argument("--quality", type=int, default=75, help="JPEG quality (75, as the notebook's PIL default)")
    try:
        from .lbfgs import add_lbfgs_arguments  # noqa: PLC0415

        add_lbfgs_arguments(p)
    except ImportError:
        pass


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar or notes")
    p.add_argument("-v", "--verbose", action="store_true", help="show Caffe's log and tracebacks")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description="Google's 2015 DeepDream, faithfully, on Caffe.")
    from .. import __version__  # noqa: PLC0415

    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    d = sub.add_parser("dream", help="dream on one image")
    d.add_argument("input", nargs="?", type=Path, help="input image (default: a sample photo from scikit-image)")
    d.add_argument("-o", "--output", type=Path, required=True, help="output image (.jpg, .png, ...)")
    _add_net_args(d)
    _add_dream_args(d)
    _add_common(d)
    d.set_defaults(func=cmd_dream)

    z = sub.add_parser("zoom", help="the notebook's zoom sequence: dream, zoom in, repeat (resumable)")
    z.add_argument("input", nargs="?", type=Path, help="first frame (default: a sample photo)")
    z.add_argument("--frames", type=int, default=100, help="number of frames (100)")
    z.add_argument("--scale", type=float, default=0.05, help="zoom per frame (0.05)")
    z.add_argument("--out-dir", type=Path, required=True, help="folder for 0000.jpg, 0001.jpg, ...")
    _add_net_args(z)
    _add_dream_args(z)
    _add_common(z)
    z.set_defaults(func=cmd_zoom)

    lay = sub.add_parser("layers", help="list the net's layers and their output shapes")
    lay.add_argument("--size", default=None, metavar="WxH", help="input size (default 1024x575)")
    lay.add_argument("--image", type=Path, help="take the input size from this image")
    _add_net_args(lay)
    _add_common(lay)
    lay.set_defaults(func=cmd_layers)

    try:
        from ..zoo import add_models_parser  # noqa: PLC0415

        add_models_parser(sub)
    except ImportError:
        pass
    return parser


# ---------------------------------------------------------------- net resolution


@dataclass
class NetSpec:
    """Where a net comes from and how its input looks."""

    prototxt: Path
    weights: Optional[Path]
    weights_sha1: Optional[str]
    mean: Tuple[float, float, float]
    channel_swap: Tuple[int, int, int]
    default_layer: str
    model: Optional[str]


def resolve_net(args: argparse.Namespace, need_weights: bool = True) -> NetSpec:
    """The files and input conventions named on the command line (zoo model or own prototxt)."""
    if args.prototxt is not None:
        if args.model:
            raise DeepDreamError("give either --model or --prototxt/--weights, not both")
        if need_weights and args.weights is None:
            raise DeepDreamError("--prototxt needs --weights (the .caffemodel)")
        spec = NetSpec(args.prototxt, args.weights, None, (104.0, 116.0, 122.0), (2, 1, 0), DEFAULT_LAYER, None)
    else:
        if args.weights is not None:
            raise DeepDreamError("--weights goes with --prototxt")
        from ..zoo import resolve_model  # noqa: PLC0415

        mf = resolve_model(
            args.model or DEFAULT_MODEL, models_dirs=args.models_dir or None, mirror=args.mirror,
            quiet=getattr(args, "quiet", False),
        )
        spec = NetSpec(mf.prototxt, mf.weights, mf.weights_sha1, tuple(mf.mean), tuple(mf.channel_swap),
                       mf.default_layer or DEFAULT_LAYER, mf.name)
    if args.mean is not None:
        spec.mean = tuple(args.mean)
    if args.channel_swap is not None:
        spec.channel_swap = tuple(args.channel_swap)
    return spec


def _note(args: argparse.Namespace, msg: str) -> None:
    if not getattr(args, "quiet", False):
        print(f"{PROG}: {msg}", file=sys.stderr)


# ---------------------------------------------------------------- commands


def _check_dream_args(args: argparse.Namespace) -> None:
    if args.iters < 1:
        raise DeepDreamError(f"--iters must be at least 1, got {args.iters}")
    if args.octaves < 1:
        raise DeepDreamError(f"--octaves must be at least 1, got {args.octaves}")
    if not args.octave_scale > 1.0:
        raise DeepDreamError(f"--octave-scale must be above 1, got {args.octave_scale}")
    if not args.step_size > 0:
        raise DeepDreamError(f"--step-size must be positive, got {args.step_size}")
    if args.jitter < 0:
        raise DeepDreamError(f"--jitter must be >= 0, got {args.jitter}")
    if args.seed is not None and not 0 <= args.seed < 2**32:
        raise DeepDreamError(f"--seed must be in [0, 2**32), got {args.seed}")
    if args.mode == "lbfgs":
        if args.guide is not None:
            raise DeepDreamError("--guide is for --mode ascent")
        if args.tile_size is not None or args.tile_above is not None:
            raise DeepDreamError("--tile-size/--tile-above are for --mode ascent (L-BFGS optimises whole octaves)")
        from .lbfgs import check_lbfgs_args  # noqa: PLC0415

        check_lbfgs_args(args)


def _load_input(path: Optional[Path]) -> np.ndarray:
    from ..io.image import load_image, sample_image  # noqa: PLC0415

    return sample_image() if path is None else load_image(path)


def _check_output(out: Path, inputs: Sequence[Optional[Path]]) -> None:
    from ..io.image import image_format  # noqa: PLC0415

    image_format(out)
    if not (out.parent if str(out.parent) else Path(".")).is_dir():
        raise DeepDreamError(f"output directory does not exist: {out.parent}")
    for p in inputs:
        if p is not None and out.exists() and p.exists() and os.path.samefile(out, p):
            raise DeepDreamError(f"refusing to overwrite the input {p}; choose another -o")


@dataclass
class DreamSetup:
    """Everything a dream or zoom run needs once the command line is checked."""

    dnet: Any
    spec: NetSpec
    end: str
    octave_n: int
    device: str
    guide_objective: Any
    tiling: Any


def _prepare(args: argparse.Namespace, img: np.ndarray) -> DreamSetup:
    """Resolve, validate and load the net for ``img``; nothing here can abort the process."""
    from ..net.caffe_env import import_caffe  # noqa: PLC0415

    import_caffe(verbose=args.verbose)
    from ..net.devices import select_device  # noqa: PLC0415
    from ..net.loading import load_net  # noqa: PLC0415
    from ..net.prototxt import check_structure, read_prototxt  # noqa: PLC0415
    from ..dream.sizing import fit_octaves  # noqa: PLC0415

    spec = resolve_net(args)
    end = args.layer or spec.default_layer
    param = read_prototxt(spec.prototxt)
    check_structure(param, spec.prototxt)
    from ..net.loading import _NamesOnly  # noqa: PLC0415
    from ..net.access import check_layer  # noqa: PLC0415

    check_layer(_NamesOnly(param), end)
    h, w = img.shape[:2]
    octave_n, why = fit_octaves(param, end, h, w, args.octaves, args.octave_scale)
    if why:
        _note(args, why)
    guide_img = _load_input(args.guide) if args.guide is not None else None
    if guide_img is not None:
        fit_octaves(param, end, guide_img.shape[0], guide_img.shape[1], 1, args.octave_scale)
    device = select_device(args.gpu)
    dnet = load_net(spec.prototxt, spec.weights, mean=spec.mean, channel_swap=spec.channel_swap,
                    end=end, fast=not args.notebook_net)
    if spec.weights_sha1 is None:
        spec.weights_sha1 = dnet.weights_sha1
    guide_objective = None
    if guide_img is not None:
        from ..dream.guide import guide_features  # noqa: PLC0415
        from ..dream.objectives import objective_guide  # noqa: PLC0415

        guide_objective = objective_guide(guide_features(dnet, guide_img, end))
    from ..dream.tiling import TilePolicy  # noqa: PLC0415

    tiling = TilePolicy.from_args(args.tile_size, args.tile_above)
    return DreamSetup(dnet, spec, end, octave_n, device, guide_objective, tiling)


def _params(args: argparse.Namespace, setup: DreamSetup) -> Dict[str, Any]:
    p = {
        "mode": args.mode, "layer": setup.end, "iters": args.iters, "octaves": setup.octave_n,
        "octave_scale": args.octave_scale, "step_size": args.step_size, "jitter": args.jitter,
        "clip": not args.no_clip, "guide": str(args.guide) if args.guide else None,
        "mean": list(setup.spec.mean), "channel_swap": list(setup.spec.channel_swap),
        "tiling": setup.tiling.describe(),
    }
    return p


def _dream_once(args, setup: DreamSetup, img: np.ndarray, rng: np.random.RandomState, label: str = "dream",
                checkpoint: Any = None):
    """One dream of ``img`` with a progress bar; returns (image, extra metadata)."""
    from ..dream.ascent import deepdream  # noqa: PLC0415
    from ..dream.octaves import octave_sizes  # noqa: PLC0415
    from .progress import DreamProgress  # noqa: PLC0415

    h, w = img.shape[:2]
    sizes = octave_sizes(h, w, setup.octave_n, args.octave_scale)
    if args.mode == "lbfgs":
        from .lbfgs import run_lbfgs  # noqa: PLC0415

        args.layer, args.octaves = setup.end, setup.octave_n
        out, info = run_lbfgs(setup.dnet, img, args, lambda s, n: DreamProgress(s, n, quiet=args.quiet, label=label))
        return out, {"lbfgs": info}
    progress = DreamProgress(sizes, args.iters, quiet=args.quiet, label=label)
    step_params: Dict[str, Any] = {"step_size": args.step_size, "jitter": args.jitter}
    if setup.guide_objective is not None:
        step_params["objective"] = setup.guide_objective
    try:
        out = deepdream(setup.dnet, img, iter_n=args.iters, octave_n=setup.octave_n, octave_scale=args.octave_scale,
                        end=setup.end, clip=not args.no_clip, rng=rng, callback=progress,
                        step_fn=setup.tiling.step_fn(img.shape[:2]), checkpoint=checkpoint, **step_params)
    finally:
        progress.close()
    return out, {}


def _seed(args: argparse.Namespace) -> int:
    if args.seed is not None:
        return args.seed
    seed = secrets.randbelow(2**32)
    _note(args, f"seed {seed} (repeat this run with --seed {seed})")
    return seed


def cmd_dream(args: argparse.Namespace) -> int:
    from ..io.image import save_image  # noqa: PLC0415
    from ..io.metadata import file_sha1, run_metadata  # noqa: PLC0415

    _check_dream_args(args)
    _check_output(args.output, [args.input, args.guide])
    from ..io.checkpoint import FileCheckpoint, run_key, state_path  # noqa: PLC0415

    img = _load_input(args.input)
    setup = _prepare(args, img)
    seed = _seed(args)
    rng = np.random.RandomState(seed)
    params = _params(args, setup)
    checkpoint = None
    if args.mode == "ascent":
        key = run_key({"params": params, "seed": seed, "input": file_sha1(args.input) if args.input else None,
                       "weights": setup.spec.weights_sha1, "shape": img.shape})
        checkpoint = FileCheckpoint(state_path(args.output), key, rng)
    out, extra = _dream_once(args, setup, img, rng, checkpoint=checkpoint)
    if checkpoint is not None and checkpoint.resumed_from is not None:
        _note(args, f"resumed after octave {checkpoint.resumed_from + 1} from {checkpoint.path}")
    meta = run_metadata(
        command="dream", params=params, seed=seed, model=setup.spec.model,
        prototxt=setup.spec.prototxt, weights=setup.spec.weights, weights_sha1=setup.spec.weights_sha1,
        input_path=args.input, device=setup.device, extra=extra,
    )
    save_image(args.output, out, meta, quality=args.quality)
    if checkpoint is not None:
        checkpoint.remove()
    _note(args, f"wrote {args.output}")
    return 0


def cmd_zoom(args: argparse.Namespace) -> int:
    from ..io.metadata import run_metadata  # noqa: PLC0415
    from ..dream.zoom import zoom_frames  # noqa: PLC0415

    _check_dream_args(args)
    if args.frames < 1:
        raise DeepDreamError(f"--frames must be at least 1, got {args.frames}")
    if not 0 < args.scale < 1:
        raise DeepDreamError(f"--scale must be between 0 and 1, got {args.scale}")
    if args.seed is None and (args.out_dir / ".zoom-state.npz").exists():
        raise DeepDreamError(f"{args.out_dir} holds an unfinished run; repeat it with its --seed (see {args.out_dir}/zoom.json)")
    img = _load_input(args.input)
    setup = _prepare(args, img)
    seed = _seed(args)
    params = dict(_params(args, setup), seed=seed, model=setup.spec.model, weights_sha1=setup.spec.weights_sha1,
                  input=str(args.input) if args.input else None)
    meta = run_metadata(
        command="zoom", params=params, seed=seed, model=setup.spec.model, prototxt=setup.spec.prototxt,
        weights=setup.spec.weights, weights_sha1=setup.spec.weights_sha1, input_path=args.input, device=setup.device,
    )

    def dream(frame: np.ndarray, rng: np.random.RandomState) -> np.ndarray:
        return _dream_once(args, setup, frame, rng, label="frame")[0]

    def on_frame(i: int) -> None:
        _note(args, f"frame {i + 1}/{args.frames} written")

    start = zoom_frames(dream, img, args.out_dir, args.frames, np.random.RandomState(seed), scale=args.scale,
                        params=params, metadata=meta, on_frame=on_frame)
    if start > 0:
        _note(args, f"resumed at frame {start}")
    return 0


def _parse_size(text: str) -> Tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise DeepDreamError(f"--size wants WxH, e.g. 1024x575; got '{text}'") from None
    if w < 1 or h < 1:
        raise DeepDreamError(f"--size must be positive, got '{text}'")
    return h, w


def cmd_layers(args: argparse.Namespace) -> int:
    from ..net.prototxt import check_structure, read_prototxt  # noqa: PLC0415
    from ..net.shapes import ShapeError, layer_shapes  # noqa: PLC0415

    spec = resolve_net(args, need_weights=False)
    if args.image is not None:
        h, w = _load_input(args.image).shape[:2]
    else:
        h, w = _parse_size(args.size or "1024x575")
    param = read_prototxt(spec.prototxt)
    check_structure(param, spec.prototxt)
    try:
        shapes = layer_shapes(param, h, w)
    except ShapeError as e:
        raise DeepDreamError(f"a {w}x{h} input is too small for this net: {e}") from None
    width = max(len(n) for n in shapes) if shapes else 10
    known = set(shapes)
    for layer in param.layer:
        if layer.name in known:
            tops = shapes[layer.name]["tops"]
            shape = " ".join("x".join(str(d) for d in t[1:]) for t in tops)
            print(f"{layer.name:<{width}}  {layer.type:<12}  {shape}")
        else:
            print(f"{layer.name:<{width}}  {layer.type:<12}  ?")
    return 0


# ---------------------------------------------------------------- entry point


def main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    verbose = "-v" in argv or "--verbose" in argv
    if not verbose:
        os.environ.setdefault("GLOG_minloglevel", "2")
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except DeepDreamError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # `deepdream-caffe layers | head`: the reader left; not an error.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except MemoryError:
        print(f"{PROG}: error: out of memory (try a smaller image or --tile-above)", file=sys.stderr)
        return 1
    except OSError as e:
        if verbose:
            raise
        from ..io.atomic import describe_os_error  # noqa: PLC0415

        print(f"{PROG}: error: {describe_os_error(e, Path(e.filename or '?'))}", file=sys.stderr)
        return 1
    except Exception as e:  # noqa: BLE001 - last line of defence: no traceback for users
        if verbose:
            raise
        print(f"{PROG}: error: unexpected {type(e).__name__}: {e} (run with --verbose for details)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
