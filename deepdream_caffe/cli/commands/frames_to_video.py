"""``deepdream-caffe frames-to-video``: a folder of frames (a zoom's, say) as a video or an animation."""
from __future__ import annotations

import argparse
from pathlib import Path

from ..options import add_common_args
from ..progress import StderrReporter
from ..video_options import add_encode_args

ORDER = 30


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    f = subparsers.add_parser("frames-to-video", help="encode a folder of frames as MP4 (H.264), WebM (VP9) or animated GIF, PNG or WebP")
    f.add_argument("input", help="a folder of frames (taken in name order, numbers as numbers) or a quoted glob")
    f.add_argument("output", type=Path, help="OUT.mp4 (.m4v .mov .mkv), OUT.webm, or OUT.gif, OUT.apng, OUT.webp")
    add_encode_args(f, "frame rate (default 25)")
    add_common_args(f, caffe=False)
    f.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ...app.video import frames_to_video_file

    frames_to_video_file(args.input, args.output, fps=args.fps, codec=args.codec, crf=args.crf,
                         reporter=StderrReporter(args.quiet))
    return 0
