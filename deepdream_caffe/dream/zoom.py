"""The notebook's zoom sequence: dream, save, zoom in a little, dream again; resumable.

The folder holds the frames, ``zoom.json`` (the run's parameters, checked
against every later run in the folder) and, while the sequence is
unfinished, ``.zoom-state.npz`` (the last float frame and the generator
state). A state or ``zoom.json`` that cannot be used is set aside (renamed,
never deleted) with a note. Without a usable state the sequence starts
over from frame 0 and frames already on disk are not rewritten (the same
parameters and seed give them again, bit for bit). Frames whose
parameters cannot be known (no usable ``zoom.json``) are never mixed with
new ones: the run is refused instead.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Callable, Dict, Optional, Sequence

import numpy as np
import scipy.ndimage as nd

from ..errors import DeepDreamError
from ..io.atomic import atomic_output
from ..io.checkpoint import RNG_LIMITS, Note, UnusableState, read_npz, rng_arrays, rng_state, scalar, stderr_note
from ..io.files import open_regular, set_aside
from ..io.image import save_image

STATE_FILE = ".zoom-state.npz"
PARAMS_FILE = "zoom.json"


def zoom_in(frame: np.ndarray, s: float = 0.05) -> np.ndarray:
    """Scale the frame up by 1/(1-s) about its centre, keeping its size (the notebook's affine_transform)."""
    h, w = frame.shape[:2]
    return nd.affine_transform(frame, [1 - s, 1 - s, 1], [h * s / 2, w * s / 2, 0], order=1)


def frame_path(out_dir: Path, i: int) -> Path:
    return Path(out_dir) / ("%04d.jpg" % i)


def read_zoom_record(out_dir: os.PathLike) -> Optional[Dict[str, Any]]:
    """The record in ``out_dir/zoom.json`` (with its "params"), or None if there is none or it does not read."""
    try:
        return _read_record(Path(out_dir) / PARAMS_FILE)
    except UnusableState:
        return None


def _read_record(ppath: Path) -> Optional[Dict[str, Any]]:
    if not os.path.lexists(ppath):
        return None
    try:
        with open_regular(ppath, "zoom record") as f:
            record = json.loads(f.read().decode("utf-8"))
    except DeepDreamError as e:
        raise UnusableState(str(e)) from None
    except (UnicodeDecodeError, ValueError, OSError) as e:
        raise UnusableState(f"not JSON ({e})") from None
    if not isinstance(record, dict) or not isinstance(record.get("params"), dict):
        raise UnusableState("it holds no parameters")
    return record


def _save_state(out_dir: Path, index: int, frame: np.ndarray, rng: np.random.RandomState) -> None:
    with atomic_output(out_dir / STATE_FILE) as f:
        np.savez(f, index=index, frame=frame, **rng_arrays(rng))


def _load_state(out_dir: Path, rng: np.random.RandomState, shape: Sequence[int], note: Note):
    """(last frame index done, its float frame) from a usable state, else None (set aside with a note)."""
    p = out_dir / STATE_FILE
    if not os.path.lexists(p):
        return None
    try:
        z = read_npz(p, {"index": 8, "frame": 4 * int(np.prod(shape)), **RNG_LIMITS})
        index = scalar(z, "index", "i")
        frame = z["frame"]
        if not 0 <= index < 10**6:
            raise UnusableState(f"its frame index {index} is out of range")
        if tuple(frame.shape) != tuple(shape) or frame.dtype != np.float32 or not np.isfinite(frame).all():
            raise UnusableState(f"its frame is not a finite float32 image of shape {tuple(shape)}")
        missing = [i for i in range(index) if not frame_path(out_dir, i).exists()]
        if missing:
            raise UnusableState(f"it continues frame {index} but {frame_path(out_dir, missing[0]).name} is missing")
        state = rng_state(z)
    except UnusableState as e:
        moved = set_aside(p, "bad")
        note(f"the saved state {p} cannot be used ({e}); set aside as {moved.name}, starting over from frame 0 "
             "(frames already written are kept)")
        return None
    rng.set_state(state)
    return int(index), frame.copy()


def _check_record(out_dir: Path, params: Dict[str, Any], note: Note) -> bool:
    """Refuse a folder whose frames were made with other parameters, or whose parameters cannot be read.

    Returns whether the folder's record matched (so its state may be used).
    """
    ppath = out_dir / PARAMS_FILE
    frames = sorted(p.name for p in out_dir.glob("[0-9][0-9][0-9][0-9].jpg"))
    try:
        record = _read_record(ppath)
    except UnusableState as e:
        moved = set_aside(ppath, "bad")
        if frames:
            raise DeepDreamError(
                f"{ppath} cannot be used ({e}; set aside as {moved.name}), so the frames in {out_dir} cannot be "
                "matched to this run; use another output folder or move them away"
            ) from None
        note(f"{ppath} cannot be used ({e}); set aside as {moved.name}, starting over")
        return False
    if record is None:
        if frames:
            raise DeepDreamError(
                f"{out_dir} holds frames ({frames[0]}, ...) but no {PARAMS_FILE}: they were not made by a zoom run "
                "that can be continued; use another output folder"
            )
        return False
    old = record["params"]
    cmp_old = {k: v for k, v in old.items() if k != "frames"}
    cmp_new = {k: v for k, v in params.items() if k != "frames"}
    if cmp_old != cmp_new:
        diff = sorted(k for k in set(cmp_old) | set(cmp_new) if cmp_old.get(k) != cmp_new.get(k))
        raise DeepDreamError(
            f"{out_dir} holds frames made with other parameters ({', '.join(diff)}); use another output folder"
        )
    return True


def check_inputs_not_written(out_dir: os.PathLike, frames: int, inputs: Sequence[Optional[os.PathLike]]) -> None:
    """Refuse a run whose frames, record or state would replace one of ``inputs`` (same path, symlink or hard link)."""
    out_dir = Path(out_dir)
    targets = [frame_path(out_dir, i) for i in range(frames)] + [out_dir / PARAMS_FILE, out_dir / STATE_FILE]
    for src in inputs:
        if src is None or not Path(src).exists():
            continue
        for t in targets:
            if t.exists() and os.path.samefile(t, src):
                raise DeepDreamError(f"refusing to overwrite the input {src}: it is {t} of this zoom; "
                                     "copy it elsewhere or choose another output folder")


def zoom_frames(
    dream: Callable[[np.ndarray, np.random.RandomState], np.ndarray],
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
) -> int:
    """Write frames 0000.jpg .. (frames-1).jpg into ``out_dir``; returns the first frame index made now.

    ``dream(frame, rng)`` dreams one frame. After each frame the float frame
    and the generator state are saved, so an interrupted run continues
    exactly where it stopped (same frames as an uninterrupted run), and
    finished frames are never rewritten. ``params`` must match those of the
    run that made the frames already there. ``on_start(first)`` is called
    before the first dream, ``on_frame(i)`` after each frame is written,
    ``note`` hears about state files set aside. None of ``inputs`` (files
    the caller read) may be among the files this writes. The state file is
    removed once all frames exist.
    """
    out_dir = Path(out_dir)
    note = note or stderr_note
    check_inputs_not_written(out_dir, frames, inputs)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DeepDreamError(f"cannot create output directory {out_dir}: {e.strerror or e}") from None
    params = dict(params or {}, scale=scale)
    if not _check_record(out_dir, params, note) and os.path.lexists(out_dir / STATE_FILE):
        moved = set_aside(out_dir / STATE_FILE, "old")
        note(f"{out_dir / STATE_FILE} belongs to no known run here; set aside as {moved.name}")
    with atomic_output(out_dir / PARAMS_FILE, "w") as f:
        json.dump(dict(metadata or {}, params=params), f, indent=2, sort_keys=True)

    state = _load_state(out_dir, rng, img.shape, note)
    if state is None:
        start, frame = 0, img
    else:
        done, last = state
        if not frame_path(out_dir, done).exists():
            save_image(frame_path(out_dir, done), last, quality=quality)  # killed between state and frame
        start, frame = done + 1, zoom_in(last, scale)
    if on_start is not None:
        on_start(start)
    for i in range(start, frames):
        frame = dream(frame, rng)
        _save_state(out_dir, i, frame, rng)
        if not frame_path(out_dir, i).exists():  # made again after a lost state: the same bits, keep the file
            save_image(frame_path(out_dir, i), frame, quality=quality)
        if on_frame is not None:
            on_frame(i)
        frame = zoom_in(frame, scale)
    try:
        (out_dir / STATE_FILE).unlink()  # finished: nothing to resume
    except FileNotFoundError:
        pass
    return start
