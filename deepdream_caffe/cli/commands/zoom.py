"""``deepdream-caffe zoom``: the notebook's zoom sequence (dream, zoom in, repeat), resumable."""
from __future__ import annotations

import argparse
from pathlib import Path

from ...app.config import ZoomConfig
from ...errors import DeepDreamError
from ...io.video_formats import DEFAULT_CRF
from ..fields import settings
from ..options import add_common_args, add_dream_args, add_net_args, dream_config, pan_pair, scheduled
from ..progress import StderrReporter
from ..video_options import add_encode_args

ORDER = 20


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    z = subparsers.add_parser("zoom", help="the notebook's zoom sequence: dream, zoom in, repeat (resumable)")
    z.add_argument("input", nargs="?", type=Path, help="first frame (default: a sample photo)")
    z.add_argument("--frames", type=int, default=ZoomConfig.frames, help=f"number of frames ({ZoomConfig.frames})")
    z.add_argument("--scale", type=float, default=ZoomConfig.scale,
                   help=f"zoom per frame, the picture grows 1/(1-SCALE) times; below 0 zooms out ({ZoomConfig.scale})")
    z.add_argument("--rotate", type=float, default=ZoomConfig.rotate, metavar="DEG",
                   help="degrees the picture turns counterclockwise per frame, -180 to 180 (0)")
    z.add_argument("--pan", type=pan_pair, default=ZoomConfig.pan, metavar="DX,DY",
                   help="pixels the picture moves right and down per frame (0,0)")
    z.add_argument("--keyframes", type=Path, metavar="FILE",
                   help="a TOML schedule of scale, rotate, pan, layer and step_size over the frames "
                        "(see docs/creative.md); its settings replace those flags")
    z.add_argument("--out-dir", type=Path, required=True, help="folder for 0000.jpg, 0001.jpg, ...")
    v = z.add_argument_group("video")
    v.add_argument("--video", type=Path, default=None, metavar="OUT",
                   help="also write the frames as OUT.mp4 (H.264), OUT.webm (VP9) or an animated OUT.gif, "
                        "OUT.apng or OUT.webp (the folder stays as it is)")
    add_encode_args(v, "frame rate of --video (default 25)")
    add_net_args(z)
    add_dream_args(z)
    add_common_args(z)
    z.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ...app.pipeline import zoom_file

    config = dream_config(args)
    zoom = settings(ZoomConfig, args, keyframes=scheduled(args.keyframes, ("scale", "rotate", "pan", "layer",
                                                                             "step_size"), "zoom"))
    reporter = StderrReporter(args.quiet)
    if args.video is None:
        given = [flag for flag, value, unset in (("--fps", args.fps, None), ("--codec", args.codec, None),
                                                 ("--crf", args.crf, DEFAULT_CRF)) if value != unset]
        if given:  # they would be ignored without a word
            raise DeepDreamError(f"{given[0]} is for --video (the frames are JPEGs; see --quality)")
    if args.video is not None:
        from ...app.video import check_zoom_video, zoom_video_file

        check_zoom_video(args.input, args.video, fps=args.fps, codec=args.codec, crf=args.crf, out_dir=args.out_dir,
                         config=config, zoom=zoom)
    zoom_file(args.input, args.out_dir, config, zoom, reporter=reporter)
    if args.video is not None:
        zoom_video_file(args.out_dir, zoom.frames, args.video, fps=args.fps, codec=args.codec, crf=args.crf,
                        reporter=reporter)
    return 0
