"""Flags from the fields of the settings objects, and errors worded with those flags.

A field's flag is its name with dashes (``step_size``: ``--step-size``),
except where the command line has always used another word (``FLAGS``);
its help is the field's ``help`` metadata, with the default.
"""
from __future__ import annotations

import argparse
from dataclasses import MISSING, fields
from typing import Any, Dict, Iterable, Optional

from ..dream.params import SettingError
from ..errors import DeepDreamError

# The flags that are not their field's name.
FLAGS = {
    "iter_n": "--iters", "octave_n": "--octaves", "clip": "--no-clip", "tile": "--tile-size",
    "above_mp": "--tile-above", "maxiter": "--lbfgs-iters", "maxfun": "--lbfgs-maxfun", "layers": "--layer",
    "channels": "--channel", "picks": "--channel", "klass": "--class",
}


def flag(field: str) -> str:
    """The command-line flag of settings field ``field``."""
    return FLAGS.get(field, "--" + field.replace("_", "-"))


def dest(field: str) -> str:
    """Where argparse keeps the value of ``field``'s flag."""
    return flag(field)[2:].replace("-", "_")


def worded(e: DeepDreamError) -> str:
    """The error's line, a setting named by its flag."""
    return e.worded(flag) if isinstance(e, SettingError) else str(e)


def add_fields(group: argparse._ActionsContainer, cls: type, *, unset: Iterable[str] = (),
               skip: Iterable[str] = (), choices: Optional[Dict[str, Any]] = None) -> None:
    """A flag for each field of the settings class ``cls`` (but ``skip``).

    Flags in ``unset`` default to None, so that one given can be told from
    one left alone; the help shows the field's default either way. A field
    that is True by default gets a ``--no-...`` flag.
    """
    for f in fields(cls):
        if f.name in skip:
            continue
        default = None if f.default is MISSING else f.default
        text = f.metadata["help"]
        if f.type == "bool":
            group.add_argument(flag(f.name), dest=dest(f.name), action="store_const", const=not default,
                               default=None, help=f"do not {text}" if default else text)
            continue
        kind = int if "int" in f.type else float if "float" in f.type else str
        shown = "" if default is None else f" ({default:g})" if kind is float else f" ({default})"
        group.add_argument(flag(f.name), dest=dest(f.name), type=kind, choices=(choices or {}).get(f.name),
                           default=None if f.name in unset else default, help=text + shown)


def given(args: argparse.Namespace, cls: type) -> Dict[str, Any]:
    """The fields of ``cls`` whose flags hold a value (not None) in ``args``."""
    return {f.name: v for f in fields(cls) if (v := getattr(args, dest(f.name), None)) is not None}


def settings(cls: type, args: argparse.Namespace, **values: Any) -> Any:
    """``cls(**given(args, cls), **values)``, an error worded with the flags."""
    try:
        return cls(**{**given(args, cls), **values})
    except SettingError as e:
        raise DeepDreamError(worded(e)) from None
