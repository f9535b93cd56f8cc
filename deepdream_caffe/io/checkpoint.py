"""Resuming a long dream: the input and the generator state saved after each octave.

The state file sits beside the output (``.NAME.dream-state.npz``) and is
keyed by everything that decides the result (parameters, seed, input and
weights hashes): a run with other settings ignores it and starts afresh.
It is removed once the output is written.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

import numpy as np

from .atomic import atomic_output


def state_path(output: Path) -> Path:
    output = Path(output)
    return output.with_name(f".{output.name}.dream-state.npz")


def run_key(record: Dict[str, Any]) -> str:
    return hashlib.sha1(json.dumps(record, sort_keys=True, default=str).encode()).hexdigest()


class FileCheckpoint:
    """An :class:`~deepdream_caffe.octaves.OctaveCheckpoint` in a file, restoring ``rng`` with the data."""

    def __init__(self, path: Path, key: str, rng: np.random.RandomState) -> None:
        self.path, self.key, self.rng = Path(path), key, rng
        self.resumed_from: Optional[int] = None

    def load(self) -> Optional[Tuple[int, np.ndarray]]:
        if not self.path.exists():
            return None
        try:
            with np.load(self.path) as z:
                if str(z["key"]) != self.key:
                    return None
                self.rng.set_state(("MT19937", z["keys"], int(z["pos"]), int(z["has_gauss"]), float(z["cached"])))
                self.resumed_from = int(z["octave"])
                return self.resumed_from, z["data"].copy()
        except (OSError, ValueError, KeyError):
            return None  # unreadable: start over, it is only a shortcut

    def save(self, octave: int, data: np.ndarray) -> None:
        _, keys, pos, has_gauss, cached = self.rng.get_state()
        with atomic_output(self.path) as f:
            np.savez(f, key=self.key, octave=octave, data=data, keys=keys, pos=pos, has_gauss=has_gauss,
                     cached=cached)

    def remove(self) -> None:
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass
