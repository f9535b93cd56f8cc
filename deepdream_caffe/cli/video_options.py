"""The encoder's options, shared by ``video``, ``zoom --video`` and ``frames-to-video``."""
from __future__ import annotations

import argparse

from ..io.video_formats import DEFAULT_CODEC, DEFAULT_CRF


def add_encode_args(g: argparse._ActionsContainer, fps_help: str) -> None:
    """--fps, --codec, --crf."""
    g.add_argument("--fps", default=None, metavar="RATE", help=fps_help)
    g.add_argument("--codec", default=None,
                   help=f"FFmpeg video encoder for .mp4/.m4v/.mov/.mkv/.webm (default {DEFAULT_CODEC}: H.264, "
                        "yuv420p; libvpx-vp9 for .webm)")
    g.add_argument("--crf", type=int, default=DEFAULT_CRF,
                   help=f"x264/x265/VP9 quality, 0 (best) to 51 (default {DEFAULT_CRF}, visually lossless)")
