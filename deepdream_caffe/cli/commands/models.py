"""``deepdream-caffe models``: the zoo's own command (list, fetch, path, verify)."""
from __future__ import annotations

import argparse

ORDER = 40


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    from ...zoo.cli import add_models_parser  # noqa: PLC0415

    add_models_parser(subparsers)
