"""``deepdream-caffe dream``: one image in, one dreamed image out."""
from __future__ import annotations

import argparse
from pathlib import Path

from ..options import add_common_args, add_dream_args, add_net_args, dream_config
from ..progress import StderrReporter

ORDER = 10


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    d = subparsers.add_parser("dream", help="dream on one image")
    d.add_argument("input", nargs="?", type=Path, help="input image (default: a sample photo from scikit-image)")
    d.add_argument("-o", "--output", type=Path, required=True, help="output image (.jpg, .png, ...)")
    add_net_args(d)
    add_dream_args(d)
    add_common_args(d)
    d.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ...app.pipeline import dream_file

    dream_file(args.input, args.output, dream_config(args), reporter=StderrReporter(args.quiet))
    return 0
