"""``deepdream-caffe doctor``: the build, its BLAS and kernel family, threads, CPU flags, GPUs."""
from __future__ import annotations

import argparse

ORDER = 90


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("doctor", help="the Caffe build, BLAS and its kernel family, threads, CPU flags, GPUs")
    p.add_argument("--json", action="store_true", help="the facts as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ...app.doctor import run_doctor

    return run_doctor(as_json=args.json)
