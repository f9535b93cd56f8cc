"""Resuming a long dream: the input and the generator state saved after each octave.

The state file sits beside the output (``.NAME.dream-state.npz``) and is
keyed by everything that decides the result (parameters, seed, input,
prototxt and weights hashes). It is removed once the output is written.

A state file is only a shortcut, so one that cannot be used -- empty,
truncated, not an .npz, wrong keys, an octave or a shape this run does not
have, a generator state numpy would misread, or made by a run with other
settings -- is never trusted and never deleted: it is set aside (renamed
to ``NAME.bad-<sha1>`` or ``NAME.old-<sha1>``), a note says so, and the run
starts over.
"""
from __future__ import annotations

import hashlib
import json
import math
import sys
import zipfile
from pathlib import Path
from typing import Any, Callable, Dict, Optional, Sequence, Tuple

import numpy as np

from .atomic import atomic_output
from .files import open_regular, set_aside
from ..errors import DeepDreamError

Note = Callable[[str], None]
_MT_LEN = 624  # MT19937's state words


def state_path(output: Path) -> Path:
    output = Path(output)
    return output.with_name(f".{output.name}.dream-state.npz")


def run_key(record: Dict[str, Any]) -> str:
    return hashlib.sha1(json.dumps(record, sort_keys=True, default=str).encode()).hexdigest()


def stderr_note(message: str) -> None:
    print(message, file=sys.stderr)


class UnusableState(Exception):
    """A state file that cannot be used; the message says why."""


def read_npz(path: Path, limits: Dict[str, int]) -> Dict[str, np.ndarray]:
    """The arrays ``limits`` names from an .npz, each at most its limit in bytes, or UnusableState.

    Member sizes are checked in the zip directory before anything is
    decompressed, so a crafted state cannot make the run allocate more than
    its own data needs; pickled objects are refused (numpy's default).
    """
    try:
        f = open_regular(path, "state file")
    except DeepDreamError as e:
        raise UnusableState(str(e)) from None
    with f:
        try:
            with zipfile.ZipFile(f) as zf:
                sizes = {i.filename: i.file_size for i in zf.infolist()}
        except (zipfile.BadZipFile, OSError, EOFError, ValueError) as e:
            raise UnusableState(f"not a readable .npz ({e or type(e).__name__})") from None
        missing = sorted(k for k in limits if f"{k}.npy" not in sizes)
        if missing:
            raise UnusableState(f"it lacks {', '.join(missing)}")
        for k, limit in limits.items():
            if sizes[f"{k}.npy"] > limit + 4096:  # + room for the .npy header
                raise UnusableState(f"its '{k}' is larger than this run's data")
        try:
            f.seek(0)
            with np.load(f, allow_pickle=False) as z:
                return {k: z[k] for k in limits}
        except Exception as e:  # noqa: BLE001 - truncated members raise zlib, zipfile, EOF and value errors
            raise UnusableState(f"it does not read ({type(e).__name__}: {e})") from None


def scalar(arrays: Dict[str, np.ndarray], key: str, kind: str) -> Any:
    """A 0-d array of dtype kind ``kind`` ("i", "f", "U") as a Python value, or UnusableState."""
    a = arrays[key]
    if a.shape != () or (a.dtype.kind not in (kind + ("u" if kind == "i" else ""))):
        raise UnusableState(f"its '{key}' is not a single {dict(i='integer', f='number', U='string')[kind]}")
    return a.item()


def rng_state(arrays: Dict[str, np.ndarray]) -> Tuple[str, np.ndarray, int, int, float]:
    """A MT19937 state numpy accepts and reads within bounds (it trusts ``pos`` without checking it)."""
    keys = arrays["keys"]
    if keys.shape != (_MT_LEN,) or keys.dtype.kind not in "ui" or keys.min() < 0 or keys.max() >= 2**32:
        raise UnusableState("its generator state is not 624 32-bit words")
    pos = scalar(arrays, "pos", "i")
    has_gauss = scalar(arrays, "has_gauss", "i")
    cached = float(scalar(arrays, "cached", "f"))
    if not 0 <= pos <= _MT_LEN or has_gauss not in (0, 1) or not math.isfinite(cached):
        raise UnusableState("its generator state is out of range")
    return "MT19937", keys.astype(np.uint32), int(pos), int(has_gauss), cached


def rng_arrays(rng: np.random.RandomState) -> Dict[str, Any]:
    _, keys, pos, has_gauss, cached = rng.get_state()
    return {"keys": keys, "pos": pos, "has_gauss": has_gauss, "cached": cached}


RNG_LIMITS = {"keys": 4 * _MT_LEN, "pos": 8, "has_gauss": 8, "cached": 8}


class FileCheckpoint:
    """An :class:`~deepdream_caffe.dream.octaves.OctaveCheckpoint` in a file, restoring ``rng`` with the data.

    ``seed`` is stored with the state so a later run without a seed can
    continue this one (:meth:`saved_seed`). ``note`` hears about a state
    that was set aside (default: a line on stderr).
    """

    def __init__(self, path: Path, key: str, rng: np.random.RandomState, seed: Optional[int] = None,
                 note: Optional[Note] = None) -> None:
        self.path, self.key, self.rng, self.seed = Path(path), key, rng, seed
        self.note = note or stderr_note
        self.resumed_from: Optional[int] = None
        self.saved_octave: Optional[int] = None  # the last octave on disk (loaded or saved by this run)

    @staticmethod
    def peek(path: Path) -> Optional[Tuple[str, Optional[int]]]:
        """(key, seed or None) of the state at ``path``, or None if there is none or it does not read.

        Reads only those two small members; the file is left as it is.
        """
        if not Path(path).exists():
            return None
        try:
            z = read_npz(Path(path), {"key": 4 * 40 + 64})
            key = scalar(z, "key", "U")
        except UnusableState:
            return None
        try:
            seed = int(scalar(read_npz(Path(path), {"seed": 8}), "seed", "i"))
        except UnusableState:
            seed = None
        return key, (seed if seed is not None and 0 <= seed < 2**32 else None)

    def saved_seed(self) -> Optional[int]:
        """The seed of the run that left this state, or None (no state, or one that does not read)."""
        peeked = self.peek(self.path)
        return None if peeked is None else peeked[1]

    def load(self, shapes: Optional[Sequence[Tuple[int, ...]]] = None) -> Optional[Tuple[int, np.ndarray]]:
        """(last octave done, its input), or None to start over.

        ``shapes`` are this run's octave input shapes, smallest first; the
        saved octave must be one of them and its data must have its shape.
        """
        if not self.path.exists():
            return None
        limit = 4 * max((int(np.prod(s)) for s in shapes), default=0) if shapes else 1 << 40
        try:
            z = read_npz(self.path, {"key": 4 * 40 + 64, "octave": 8, "data": limit, **RNG_LIMITS})
            if scalar(z, "key", "U") != self.key:
                self._set_aside("old", "it was made with other settings or another seed, input or net")
                return None
            octave = scalar(z, "octave", "i")
            data = z["data"]
            if shapes is not None:
                if not 0 <= octave < len(shapes):
                    raise UnusableState(f"its octave {octave} is not one of this run's {len(shapes)}")
                if tuple(data.shape) != tuple(shapes[octave]):
                    raise UnusableState(f"its data has shape {data.shape}, octave {octave} has {tuple(shapes[octave])}")
            if data.dtype != np.float32 or not np.isfinite(data).all():
                raise UnusableState("its data is not a finite float32 array")
            state = rng_state(z)
        except UnusableState as e:
            self._set_aside("bad", str(e))
            return None
        self.rng.set_state(state)  # only once everything checked: a rejected state leaves rng untouched
        self.resumed_from = self.saved_octave = int(octave)
        total = f" of {len(shapes)}" if shapes else ""
        self.note(f"resumed after octave {octave + 1}{total} from {self.path}")
        return self.resumed_from, data.copy()

    def _set_aside(self, label: str, why: str) -> None:
        moved = set_aside(self.path, label)
        self.note(f"the saved state {self.path} cannot be used ({why}); set aside as {moved.name}, starting over")

    def save(self, octave: int, data: np.ndarray) -> None:
        extra = {} if self.seed is None else {"seed": np.int64(self.seed)}
        with atomic_output(self.path) as f:
            np.savez(f, key=self.key, octave=octave, data=data, **rng_arrays(self.rng), **extra)
        self.saved_octave = int(octave)

    def remove(self) -> None:
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass
