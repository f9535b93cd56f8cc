"""``deepdream-caffe layers``: the net's layers and their output shapes at an input size."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Tuple

from ...errors import DeepDreamError
from ..options import add_common_args, add_net_args, net_source

ORDER = 30
DEFAULT_SIZE = "1024x575"


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("layers", help="list the net's layers, their output shapes and which can be dreamed on")
    p.add_argument("--size", default=None, metavar="WxH", help=f"input size (default {DEFAULT_SIZE})")
    p.add_argument("--image", type=Path, help="take the input size from this image")
    add_net_args(p, run=False)
    add_common_args(p, caffe=False)
    p.set_defaults(func=run)


def parse_size(text: str) -> Tuple[int, int]:
    """``WxH`` -> (h, w)."""
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise DeepDreamError(f"--size wants WxH, e.g. 1024x575; got '{text}'") from None
    if w < 1 or h < 1:
        raise DeepDreamError(f"--size must be positive, got '{text}'")
    return h, w


def run(args: argparse.Namespace) -> int:
    from ...app.layers import layer_table
    from ...app.pipeline import load_input
    from ...dream.sizing import VISUALIZE_HINT

    source = net_source(args)
    if args.image is not None and args.size is not None:
        raise DeepDreamError("give --size or --image, not both (the image's size would override --size)")
    if args.image is not None:
        h, w = load_input(args.image).shape[:2]
    else:
        h, w = parse_size(args.size or DEFAULT_SIZE)
    rows, notes = layer_table(source, h, w, quiet=args.quiet)
    width = max((len(r.name) for r in rows), default=10)
    print(f"{'layer':<{width}}  {'type':<12}  {'dream':<10}  output at {w}x{h}")
    for r in rows:
        shape = "?" if r.shapes is None else " ".join("x".join(str(d) for d in s) for s in r.shapes)
        print(f"{r.name:<{width}}  {r.type:<12}  {r.dream:<10}  {shape}" + ("  (default --layer)" if r.default else ""))
    for n in notes:
        hint = f"; {VISUALIZE_HINT}" if n.reason == "fixed-size" else ""
        print(f"{n.reason}: '{n.layer}' and the layers after it: {n.detail}{hint}")
    return 0
