"""``deepdream-caffe video``: every frame of a clip dreamed, the dream carried along the optical flow (resumable)."""
from __future__ import annotations

import argparse
from pathlib import Path

from ...dream import defaults as d
from ..fields import settings
from ..options import add_common_args, add_dream_args, add_net_args, dream_config, scheduled
from ..progress import StderrReporter
from ..video_options import add_encode_args

ORDER = 25


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    v = subparsers.add_parser(
        "video", help="dream every frame of a video; optical flow keeps the dream on moving things (resumable)")
    v.add_argument("input", help="a video file, a folder of frames, or a quoted glob such as 'shots/*.png'")
    v.add_argument("-o", "--output", type=Path, required=True,
                   help="OUT.mp4 (.m4v .mov .mkv: H.264; .webm: VP9; the input's audio kept), an animated OUT.gif, "
                        "OUT.apng or OUT.webp, or a folder for PNG frames")
    g = v.add_argument_group("video")
    g.add_argument("--flow", choices=d.FLOW_METHODS, default=d.FLOW,
                   help=f"optical flow that moves the previous dream onto this frame (default {d.FLOW}; "
                        "none: blend it in place)")
    g.add_argument("--blend", type=float, default=d.BLEND,
                   help=f"weight of the previous dream in this frame's input, 0 to 1 (default {d.BLEND}; "
                        "0: every frame on its own)")
    g.add_argument("--carry", choices=d.CARRY_MODES, default=d.CARRY,
                   help=f"carry the previous dream's detail (dream minus frame) or the whole dreamed picture "
                        f"(default {d.CARRY})")
    g.add_argument("--keyframes", type=Path, metavar="FILE",
                   help="a TOML schedule of layer and step_size over the frames (see docs/creative.md)")
    g.add_argument("--max-frames", type=int, default=None, metavar="N", help="dream only the first N frames")
    add_encode_args(g, "frame rate of frame-folder input (default 25; a video keeps its own)")
    add_net_args(v)
    add_dream_args(v, images=False)
    add_common_args(v)
    v.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ...app.video import VideoConfig, video_file

    video = settings(VideoConfig, args, keyframes=scheduled(args.keyframes, ("layer", "step_size"), "video"))
    video_file(args.input, args.output, dream_config(args), video, reporter=StderrReporter(args.quiet))
    return 0
