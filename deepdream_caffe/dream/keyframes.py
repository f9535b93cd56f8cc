"""Keyframes: settings that change over the frames of a zoom or a video, as DeepDreamAnim's keyframes do.

A TOML file of keys, each at a frame::

    [[key]]
    frame = 0
    scale = 0.05        # zoom per frame, as --scale (below 0 zooms out)
    rotate = 0          # degrees counterclockwise per frame, as --rotate
    pan = [0, 0]        # pixels right and down per frame, as --pan
    layer = "conv1"     # the layer dreamed, as --layer
    step_size = 1.5     # the ascent's step size, as --step-size

Each setting is a track of the keys that give it. Between two of its keys
a number goes in a straight line (a pan per coordinate) and a layer is
held until the next key; after its last key the last value holds. Before
its first key, and where no key gives it at all, a setting has its flag's
value. A zoom takes all five; a video the layer and step size.
The motion of frame N is the move from frame N-1's dream to frame N's input.
"""
from __future__ import annotations

import bisect
import os
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

import tomllib

from ..errors import DeepDreamError
from ..io.files import open_regular
from .params import is_number

MOTION = ("scale", "rotate", "pan")
DREAM = ("layer", "step_size")
_MAX_BYTES = 1 << 20
_MAX_FRAME = 10**6


def _number(v: Any, ok: Any, want: str, name: str) -> float:
    if not is_number(v) or not ok(v):
        raise ValueError(f"{name} must be {want}, got {v!r}")
    return float(v)


@dataclass(frozen=True)
class Key:
    """One key: the settings it gives at ``frame`` (None: not given here)."""

    frame: int
    scale: Optional[float] = None
    rotate: Optional[float] = None
    pan: Optional[Tuple[float, float]] = None
    layer: Optional[str] = None
    step_size: Optional[float] = None

    def __post_init__(self) -> None:
        """Raises ValueError naming the bad field (a schedule adds where it is)."""
        if not is_number(self.frame, int) or not 0 <= self.frame < _MAX_FRAME:
            raise ValueError(f"frame must be a whole number in [0, {_MAX_FRAME}), got {self.frame!r}")
        object.__setattr__(self, "frame", int(self.frame))
        checks = {"scale": (lambda v: -1 < v < 1, "in (-1, 1)"), "rotate": (lambda v: -180 <= v <= 180,
                  "in [-180, 180]"), "step_size": (lambda v: v > 0, "positive")}
        for name, (ok, want) in checks.items():
            if getattr(self, name) is not None:
                object.__setattr__(self, name, _number(getattr(self, name), ok, want, name))
        if self.pan is not None:
            if not isinstance(self.pan, (list, tuple)) or len(self.pan) != 2:
                raise ValueError(f"pan must be [dx, dy], got {self.pan!r}")
            object.__setattr__(self, "pan", tuple(_number(v, lambda v: True, "finite numbers", "pan")
                                                  for v in self.pan))
        if self.layer is not None and (not isinstance(self.layer, str) or not self.layer):
            raise ValueError(f"layer must be a layer's name, got {self.layer!r}")

    def given(self) -> Dict[str, Any]:
        """The settings this key gives, frame first (for the record)."""
        return {f.name: v if f.name != "pan" else list(v)
                for f in fields(self) if (v := getattr(self, f.name)) is not None}


FIELDS = tuple(f.name for f in fields(Key))


@dataclass(frozen=True)
class Keyframes:
    """A schedule: ``keys`` in increasing frame order; ``name`` says where it came from in errors, ``path``
    is the file it was read from (a run never writes over it)."""

    keys: Tuple[Key, ...]
    name: str = "keyframes"
    path: Optional[Path] = None

    def __post_init__(self) -> None:
        if not self.keys:
            raise DeepDreamError(f"{self.name}: no keys; give at least one [[key]] with a frame")
        for before, key in zip(self.keys, self.keys[1:]):
            if key.frame <= before.frame:
                raise DeepDreamError(f"{self.name}: the key at frame {key.frame} comes after the one at frame "
                                     f"{before.frame}; keys go in increasing frame order")
        object.__setattr__(self, "keys", tuple(self.keys))

    @classmethod
    def from_dicts(cls, keys: Any, name: str = "keyframes") -> "Keyframes":
        """A schedule from a list of plain dicts (a parsed file's ``key`` array); one line per problem."""
        if not isinstance(keys, list):
            raise DeepDreamError(f"{name}: 'key' must be an array of tables ([[key]]), got {type(keys).__name__}")
        out = []
        for i, d in enumerate(keys, 1):
            where = f"{name}: key {i}"
            if not isinstance(d, dict):
                raise DeepDreamError(f"{where} is not a table")
            unknown = sorted(set(d) - set(FIELDS))
            if unknown:
                raise DeepDreamError(f"{where}: unknown setting '{unknown[0]}'; a key takes {', '.join(FIELDS)}")
            if "frame" not in d:
                raise DeepDreamError(f"{where} has no frame")
            try:
                out.append(Key(**d))
            except ValueError as e:
                raise DeepDreamError(f"{where}: {e}") from None
        return cls(tuple(out), name)

    def given(self) -> Tuple[str, ...]:
        """The settings some key gives, in :data:`FIELDS` order."""
        return tuple(f for f in FIELDS[1:] if any(getattr(k, f) is not None for k in self.keys))

    def only(self, allowed: Tuple[str, ...], what: str) -> "Keyframes":
        """This schedule, or one line naming a setting that ``what`` cannot change."""
        extra = [f for f in self.given() if f not in allowed]
        if extra:
            raise DeepDreamError(f"{self.name}: a {what} takes {', '.join(allowed)} in its keys, not {extra[0]}")
        return self

    def layers(self) -> Tuple[str, ...]:
        """The layers the schedule names, in order of first use."""
        return tuple(dict.fromkeys(k.layer for k in self.keys if k.layer is not None))

    def at(self, name: str, frame: int, default: Any) -> Any:
        """Setting ``name`` at ``frame``: interpolated (numbers), held (the layer), or ``default`` before its first key."""
        track = [(k.frame, getattr(k, name)) for k in self.keys if getattr(k, name) is not None]
        i = bisect.bisect_right([f for f, _ in track], frame)
        if i == 0:
            return default
        f0, v0 = track[i - 1]
        if i == len(track) or name == "layer":
            return v0
        f1, v1 = track[i]
        t = (frame - f0) / (f1 - f0)
        if name == "pan":
            return tuple(a + t * (b - a) for a, b in zip(v0, v1))
        return v0 + t * (v1 - v0)

    def describe(self) -> list:
        """The keys as plain data (what the record holds)."""
        return [k.given() for k in self.keys]


def read_keyframes(path: os.PathLike) -> Keyframes:
    """The schedule in a TOML file, checked; one line naming the file for anything wrong."""
    with open_regular(path, "keyframe file") as f:
        data = f.read(_MAX_BYTES + 1)
    if len(data) > _MAX_BYTES:
        raise DeepDreamError(f"{path}: larger than a keyframe file ({_MAX_BYTES} bytes)")
    try:
        doc = tomllib.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise DeepDreamError(f"{path} is not TOML: {e}") from None
    unknown = sorted(set(doc) - {"key"})
    if unknown:
        raise DeepDreamError(f"{path}: unknown table or setting '{unknown[0]}'; a keyframe file holds [[key]] tables")
    return replace(Keyframes.from_dicts(doc.get("key", []), str(path)), path=Path(path))
