"""``deepdream-caffe models``: the zoo's own command (list, fetch, path, verify)."""
from __future__ import annotations

import argparse

from ...zoo.cli import add_models_parser

ORDER = 40


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    add_models_parser(subparsers)
