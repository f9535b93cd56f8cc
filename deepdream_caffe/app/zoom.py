"""The notebook's zoom sequence: dream, save, zoom in a little, dream again; a frame loop whose carry-over is a zoom.

The folder holds the frames, ``zoom.json`` (the run's record, checked
against every later run in the folder) and, while the sequence is
unfinished, ``.zoom-state.npz`` (the last dreamed frame and the generator
state); see :mod:`.run`. Without a usable state the sequence starts over
from frame 0 and frames already on disk are not rewritten (the same
parameters and seed give them again, bit for bit).
"""
from __future__ import annotations

import io
import itertools
import os
import shutil
from pathlib import Path
from typing import Any, Callable, Dict, Optional, Sequence

import numpy as np
from PIL import Image

from ..dream.flow import move
from ..errors import DeepDreamError
from ..io.image import to_uint8
from .config import ZoomConfig
from .run import DreamFn, Note, RunDir, frame_loop, run_files, run_key

KIND = "zoom"
PARAMS_FILE, STATE_FILE = run_files(KIND)


def frame_path(out_dir: os.PathLike, i: int) -> Path:
    return Path(out_dir) / f"{i:04d}.jpg"


class FramePaths(Sequence[Path]):
    """``0000.jpg`` ... ``(n-1).jpg`` of ``out_dir``, each named when asked for (a sequence may be long)."""

    def __init__(self, out_dir: os.PathLike, n: int) -> None:
        self.out_dir, self.n = out_dir, n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: Any) -> Any:
        if not isinstance(i, int) or not -self.n <= i < self.n:
            raise IndexError(i)
        return frame_path(self.out_dir, i % self.n)


def is_complete(out_dir: os.PathLike, frames: int) -> bool:
    """Whether frames 0 .. frames-1 are all in ``out_dir`` (whose record says which run made them)."""
    return all(f.is_file() for f in FramePaths(out_dir, frames))


def check_room(out_dir: os.PathLike, frames: int, img: np.ndarray, quality: int, name: str = "frames") -> None:
    """Refuse ``frames`` frames that would not fit on the disk of ``out_dir``, each counted as large as the
    first frame as a JPEG at ``quality`` (dreamed frames carry more detail: larger still)."""
    buf = io.BytesIO()
    Image.fromarray(to_uint8(img)).save(buf, "JPEG", quality=quality)
    folder = Path(out_dir).absolute()
    while not folder.exists():
        folder = folder.parent
    have = len(list(Path(out_dir).glob("[0-9]*.jpg"))) if Path(out_dir).is_dir() else 0  # a resumed run's
    need = buf.tell() * max(0, frames - have)
    free = shutil.disk_usage(folder).free
    if need > free:
        raise DeepDreamError(f"{name} {frames}: frames of about {buf.tell()} bytes (the first as a JPEG) need "
                             f"about {need / 1e9:.3g} GB; {folder} has {free / 1e9:.3g} GB free")


def zoom_frames(
    dream: DreamFn,
    img: np.ndarray,
    out_dir: os.PathLike,
    frames: int,
    rng: np.random.RandomState,
    scale: float = 0.05,
    params: Optional[Dict[str, Any]] = None,
    metadata: Optional[Dict[str, Any]] = None,
    on_frame: Optional[Callable[[int], None]] = None,
    on_start: Optional[Callable[[int], None]] = None,
    note: Optional[Note] = None,
    quality: int = 75,
    inputs: Sequence[Optional[os.PathLike]] = (),
    zoom: Optional[ZoomConfig] = None,
    before: Optional[Callable[[int], None]] = None,
) -> int:
    """Write frames 0000.jpg .. (frames-1).jpg into ``out_dir``; returns the first frame index made now.

    ``dream(frame, rng)`` dreams one frame. After each frame the dreamed
    frame and the generator state are saved, so an interrupted run
    continues exactly where it stopped (same frames as an uninterrupted
    run), and finished frames are never rewritten. ``params`` decide the
    frames (with ``scale``, or ``zoom``: each frame's move and schedule,
    which replaces ``scale``): a folder of other ones is refused.
    ``before(i)`` is called before frame ``i`` is dreamed (a schedule sets
    the dream's settings there).
    ``on_start(first)`` is called before the first dream, ``on_frame(i)``
    after each frame is written, ``note`` hears about files set aside. None
    of ``inputs`` (files the caller read) may be among the files this
    writes. The state file is removed once all frames exist.
    """
    zoom = zoom or ZoomConfig(frames=frames, scale=scale)
    params = dict(params or {}, **zoom.record())
    run = RunDir(out_dir, KIND, run_key(params, None, None), dict(metadata or {}, params=params), quality=quality,
                 note=note)
    run.check(inputs)
    run.open()
    if is_complete(out_dir, frames):  # this run's record is there (open checked it): nothing to dream
        run.state.remove()
        if on_start is not None:
            on_start(frames)
        return frames
    start, last = run.resume(rng, {"dream": img.shape}, frames)
    if on_start is not None:
        on_start(start)
    now = [start]

    def at(i: int) -> None:
        now[0] = i
        if before is not None:
            before(i)

    frame_loop(run, rng, dream, start, last, itertools.repeat(None, max(0, frames - start)),
               lambda _, last: img if last is None else move(last["dream"], *zoom.motion(now[0])), on_frame, at)
    run.state.remove()  # finished: nothing to resume
    return start
