"""The commands of ``deepdream-caffe``, one module each, found here by :func:`add_all`.

A command is a module in this package with ``add_parser(subparsers)``:
it adds its parser and sets ``func(args) -> int`` on it (parsing only: the
work is a call into ``deepdream_caffe.app``, imported inside ``func``: every
parser is built for any command line, and ``--help`` or ``models list`` must
not load numpy or Caffe). ``ORDER`` places it in
``--help`` (lower first; default 100). Nothing else needs editing to add one.
"""
from __future__ import annotations

import importlib
import pkgutil
from typing import Any, List


def command_modules() -> List[Any]:
    """This package's command modules, in help order."""
    mods = [importlib.import_module(f"{__name__}.{info.name}") for info in pkgutil.iter_modules(__path__)
            if not info.name.startswith("_")]
    mods = [m for m in mods if hasattr(m, "add_parser")]
    return sorted(mods, key=lambda m: (getattr(m, "ORDER", 100), m.__name__))


def add_all(subparsers: Any) -> None:
    """Add every command's parser to ``subparsers``."""
    for module in command_modules():
        module.add_parser(subparsers)
