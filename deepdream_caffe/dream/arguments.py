"""The public API's arguments, checked by kind before any work: a wrong one is one DeepDreamError line.

The notebook's names mean the same thing in every function (``net``,
``base_img``, ``end``, ``rng``...), so one rule per name serves them all.
Numbers are checked where they become settings (:mod:`.params`); here the
rest: a net that is not a net, a random state that is not one, a callback
that cannot be called, an image that is not an array (a ``range`` given as
an image would be expanded until memory runs out).
"""
from __future__ import annotations

import math
import numbers
import os
from typing import Any, Callable, Dict, Tuple

import numpy as np
from PIL import Image

from ..errors import DeepDreamError
from .objectives import Objective
from .params import Ascent, Lbfgs, Octaves


def _is_net(v: Any) -> bool:
    raw = getattr(v, "net", v)
    return all(hasattr(raw, a) for a in ("blobs", "inputs", "forward", "backward"))


def _plain_nested(v: Any) -> bool:
    """Lists and tuples of numbers, nested: what numpy turns into an array of their own size."""
    todo = [v]
    while todo:
        x = todo.pop()
        if isinstance(x, (list, tuple)):
            todo.extend(x)
        elif not isinstance(x, (numbers.Number, np.number, np.bool_)):
            return False
    return True


def _is_image(v: Any) -> bool:
    return isinstance(v, (np.ndarray, Image.Image)) or (isinstance(v, (list, tuple)) and _plain_nested(v))


def _is_objective(v: Any) -> bool:
    return v is None or isinstance(v, Objective) or callable(v)


def _optional(ok: Callable[[Any], bool]) -> Callable[[Any], bool]:
    return lambda v: v is None or ok(v)


_RULES: Dict[str, Tuple[Callable[[Any], bool], str]] = {
    "net": (_is_net, "a net from load_net() or a caffe.Net"),
    "base_img": (_is_image, "an HxWx3 RGB array (or nested lists of numbers) or a PIL image"),
    "guide_img": (_is_image, "an HxWx3 RGB array (or nested lists of numbers) or a PIL image"),
    "end": (_optional(lambda v: isinstance(v, str) and v != ""), "a layer name (a non-empty string) or None"),
    "clip": (lambda v: isinstance(v, (bool, np.bool_)), "True or False"),
    "rng": (_optional(lambda v: isinstance(v, np.random.RandomState)), "a numpy RandomState or None"),
    "callback": (_optional(callable), "a function or None"),
    "step_fn": (_optional(callable), "a function or None"),
    "on_frame": (_optional(callable), "a function or None"),
    "checkpoint": (_optional(lambda v: callable(getattr(v, "load", None)) and callable(getattr(v, "save", None))),
                   "an object with load() and save() (such as FileCheckpoint) or None"),
    "gradient": (lambda v: callable(v) and callable(getattr(v, "runs_whole", None)),
                 "a gradient such as WHOLE_IMAGE or a TilePolicy"),
    "objective": (_is_objective, "an Objective, a function of the end blob, or None"),
    "first_step": (_optional(lambda v: not isinstance(v, bool) and isinstance(v, numbers.Real)
                             and math.isfinite(v) and v > 0), "a positive number or None"),
    "ascent": (lambda v: isinstance(v, Ascent), "an Ascent"),
    "octaves": (lambda v: isinstance(v, Octaves), "an Octaves"),
    "lbfgs": (lambda v: isinstance(v, Lbfgs), "an Lbfgs"),
}


def _shown(v: Any) -> str:
    """The value in a few characters on one line: short plain values as they are, the rest by type."""
    if v is None or isinstance(v, (bool, numbers.Number, str, bytes)):
        text = repr(v)
        if len(text) <= 40 and text.isprintable():
            return text
    module = type(v).__module__
    return f"a {'' if module == 'builtins' else module + '.'}{type(v).__name__}"


def check_arguments(**args: Any) -> None:
    """Refuse the first argument whose kind is wrong, in one line naming it, before any work.

    Each keyword is one of the API's argument names (``net``, ``base_img``,
    ``end``, ``rng``...); its rule is the same in every function.
    """
    for name, value in args.items():
        ok, want = _RULES[name]
        if not ok(value):
            raise DeepDreamError(f"{name} must be {want}, got {_shown(value)}")


def check_kinds(**args: Tuple[Any, Any, str]) -> None:
    """:func:`check_arguments` for a layer's own kinds: each keyword is ``(value, types, what it must be)``.

    ``types`` is a type or tuple for ``isinstance``; ``None`` in it admits None; ``os.PathLike``
    admits ``str`` too (a path).
    """
    for name, (value, types, want) in args.items():
        kinds = types if isinstance(types, tuple) else (types,)
        if value is None and None in kinds:
            continue
        real = tuple(k for k in kinds if k is not None) + ((str,) if os.PathLike in kinds else ())
        if not isinstance(value, real) or (isinstance(value, str) and ("\0" in value or not value)):
            raise DeepDreamError(f"{name} must be {want}, got {_shown(value)}")


def check_no_extra(function: str, given: Dict[str, Any], known: Tuple[str, ...]) -> None:
    """Refuse keyword arguments ``function`` does not take (those its ``**kwargs`` pass on), naming those it does."""
    extra = sorted(set(given) - set(known))
    if extra:
        raise DeepDreamError(f"{function}() has no argument {extra[0]!r}; its other arguments are {', '.join(known)}")
