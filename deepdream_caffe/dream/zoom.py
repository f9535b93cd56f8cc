"""The notebook's zoom sequence: dream, save, zoom in a little, dream again; resumable."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Callable, Dict, Optional

import numpy as np
import scipy.ndimage as nd

from ..io.atomic import atomic_output
from ..errors import DeepDreamError
from ..io.image import save_image

STATE_FILE = ".zoom-state.npz"
PARAMS_FILE = "zoom.json"


def zoom_in(frame: np.ndarray, s: float = 0.05) -> np.ndarray:
    """Scale the frame up by 1/(1-s) about its centre, keeping its size (the notebook's affine_transform)."""
    h, w = frame.shape[:2]
    return nd.affine_transform(frame, [1 - s, 1 - s, 1], [h * s / 2, w * s / 2, 0], order=1)


def frame_path(out_dir: Path, i: int) -> Path:
    return out_dir / ("%04d.jpg" % i)


def _save_state(out_dir: Path, index: int, frame: np.ndarray, rng: np.random.RandomState) -> None:
    name, keys, pos, has_gauss, cached = rng.get_state()
    with atomic_output(out_dir / STATE_FILE) as f:
        np.savez(f, index=index, frame=frame, keys=keys, pos=pos, has_gauss=has_gauss, cached=cached)


def _load_state(out_dir: Path, rng: np.random.RandomState):
    p = out_dir / STATE_FILE
    if not p.exists():
        return None
    try:
        with np.load(p) as z:
            rng.set_state(("MT19937", z["keys"], int(z["pos"]), int(z["has_gauss"]), float(z["cached"])))
            return int(z["index"]), z["frame"].copy()
    except (OSError, ValueError, KeyError) as e:
        raise DeepDreamError(f"cannot resume from {p}: {e}; remove it to start over") from None


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
) -> int:
    """Write frames 0000.jpg .. (frames-1).jpg into ``out_dir``; returns the first frame index made now.

    ``dream(frame, rng)`` dreams one frame. After each frame the float frame
    and the generator state are saved, so an interrupted run continues
    exactly where it stopped (same frames as an uninterrupted run), and
    finished frames are never rewritten. ``params`` must match those of the
    run that made the frames already there.
    """
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DeepDreamError(f"cannot create output directory {out_dir}: {e.strerror or e}") from None
    params = dict(params or {}, scale=scale)
    ppath = out_dir / PARAMS_FILE
    if ppath.exists():
        old = json.loads(ppath.read_text()).get("params", {})
        cmp_old = {k: v for k, v in old.items() if k != "frames"}
        cmp_new = {k: v for k, v in params.items() if k != "frames"}
        if cmp_old != cmp_new:
            diff = sorted(k for k in set(cmp_old) | set(cmp_new) if cmp_old.get(k) != cmp_new.get(k))
            raise DeepDreamError(
                f"{out_dir} holds frames made with other parameters ({', '.join(diff)}); use a new --out-dir"
            )
    with atomic_output(ppath, "w") as f:
        json.dump(dict(metadata or {}, params=params), f, indent=2, sort_keys=True)

    state = _load_state(out_dir, rng)
    if state is None:
        start, frame = 0, img
    else:
        done, last = state
        if not frame_path(out_dir, done).exists():
            save_image(frame_path(out_dir, done), last)  # killed between state and frame
        start, frame = done + 1, zoom_in(last, scale)
    for i in range(start, frames):
        frame = dream(frame, rng)
        _save_state(out_dir, i, frame, rng)
        save_image(frame_path(out_dir, i), frame)
        if on_frame is not None:
            on_frame(i)
        frame = zoom_in(frame, scale)
    return start
