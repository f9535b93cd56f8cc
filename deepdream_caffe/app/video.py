"""Dreaming a video, file in, file out: every frame dreamed, the previous dream carried along the flow.

Frames are dreamed into a work folder beside the output
(``.OUT.mp4.frames/000000.png ...``) and encoded at the end, the input's
audio copied in. After each frame the state that decides the next one is
saved (the frame index, the previous input frame, the previous dream as
floats, the generator's state), so a run killed at any point and started
again carries on after its last finished frame and makes the same frames
as a run never stopped. For a frame-folder output the folder itself is the
work folder, and the frames in it are the result.
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional

import numpy as np

from ..dream.flow import FrameCarry
from ..errors import DeepDreamError
from ..io.atomic import atomic_output
from ..io.checkpoint import run_key
from ..io.hashing import sha1_file
from ..io.image import load_image, save_image
from ..io.video import DEFAULT_CRF, VideoSource, check_video_output, format_rate, output_kind, write_video

RECORD_FILE = "video.json"
STATE_FILE = ".video-state.npz"

DreamFn = Callable[[np.ndarray, np.random.RandomState], np.ndarray]


def work_dir(out: os.PathLike) -> Path:
    """Where the frames of a run go: the output itself for a frame folder, else a hidden folder beside it."""
    out = Path(out)
    return out if output_kind(out) == "frames" else out.with_name(f".{out.name}.frames")


def frame_file(work: Path, i: int) -> Path:
    return work / f"{i:06d}.png"


def source_sha1(source: VideoSource) -> str:
    """What identifies the input: the video file's sha1, or the names and sha1s of the frame files."""
    if source.kind == "video":
        return sha1_file(source.path)
    h = hashlib.sha1()
    for f in source.files:
        h.update(f"{f.name}\0{sha1_file(f)}\n".encode())
    return h.hexdigest()


def read_record(work: Path) -> Optional[Dict[str, Any]]:
    """The record of the run whose frames are in ``work``, or None."""
    p = work / RECORD_FILE
    if not p.exists():
        return None
    try:
        rec = json.loads(p.read_text())
        return rec if isinstance(rec, dict) and "key" in rec else None
    except (OSError, ValueError):
        return None


@dataclass
class _State:
    index: int  # the last finished frame
    prev_frame: np.ndarray
    prev_dream: np.ndarray


def _save_state(work: Path, index: int, frame: np.ndarray, dream: np.ndarray, rng: np.random.RandomState) -> None:
    _, keys, pos, has_gauss, cached = rng.get_state()
    with atomic_output(work / STATE_FILE) as f:
        np.savez(f, index=index, prev_frame=frame, prev_dream=dream, keys=keys, pos=pos, has_gauss=has_gauss,
                 cached=cached)


def _load_state(work: Path, rng: np.random.RandomState) -> Optional[_State]:
    p = work / STATE_FILE
    if not p.exists():
        return None
    try:
        with np.load(p) as z:
            rng.set_state(("MT19937", z["keys"], int(z["pos"]), int(z["has_gauss"]), float(z["cached"])))
            return _State(int(z["index"]), z["prev_frame"].copy(), z["prev_dream"].copy())
    except (OSError, ValueError, KeyError) as e:
        raise DeepDreamError(f"cannot resume from {p}: {e}; remove it to start over") from None


def _open_work(work: Path, key: str, record: Dict[str, Any]) -> bool:
    """Create or check the work folder; True when it holds frames of this very run."""
    old = read_record(work) if work.is_dir() else None
    if old is not None and old["key"] != key:
        was, now = old.get("params", {}), record.get("params", {})
        diff = sorted(k for k in set(was) | set(now) if was.get(k) != now.get(k))
        if old.get("seed") != record.get("seed"):
            diff.append("seed")
        if old.get("input_sha1") != record.get("input_sha1"):
            diff.append("input")
        what = ", ".join(diff) or "settings"
        raise DeepDreamError(f"{work} holds frames of another run (other {what}); remove it or choose another output")
    if old is None and work.is_dir() and any(work.glob("[0-9][0-9][0-9][0-9][0-9][0-9].png")):
        raise DeepDreamError(f"{work} holds frames not made by this tool; choose an empty folder")
    try:
        work.mkdir(parents=False, exist_ok=True)
    except FileNotFoundError:
        raise DeepDreamError(f"output directory does not exist: {work.parent}") from None
    except OSError as e:
        raise DeepDreamError(f"cannot create {work}: {e.strerror or e}") from None
    with atomic_output(work / RECORD_FILE, "w") as f:
        json.dump(record, f, indent=2, sort_keys=True)
        f.write("\n")
    return old is not None


def _remove_work(work: Path, frames: int) -> None:
    for i in range(frames):
        frame_file(work, i).unlink(missing_ok=True)
    for name in (STATE_FILE, RECORD_FILE):
        (work / name).unlink(missing_ok=True)
    try:
        work.rmdir()
    except OSError:
        pass  # something else was put there: leave it


@dataclass
class VideoResult:
    """What a video run did."""

    output: Path
    frames: int  # frames in the output
    resumed_at: int  # the first frame dreamed by this run (0: a fresh run)
    seed: int
    seconds: float


class _FrameBar:
    """A tqdm bar over frames (time left from the frames done so far), or nothing when quiet."""

    def __init__(self, total: Optional[int], initial: int, quiet: bool, desc: str) -> None:
        self.bar = None
        if not quiet:
            from tqdm import tqdm  # noqa: PLC0415

            self.bar = tqdm(total=total, initial=initial, desc=desc, unit="frame", file=sys.stderr,
                            dynamic_ncols=True, leave=True)

    def update(self, note: str = "") -> None:
        if self.bar is not None:
            if note:
                self.bar.set_postfix_str(note, refresh=False)
            self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def dream_video(
    source: VideoSource,
    out: os.PathLike,
    dream: DreamFn,
    *,
    carry: FrameCarry,
    seed: int,
    params: Dict[str, Any],
    metadata: Optional[Dict[str, Any]] = None,
    max_frames: Optional[int] = None,
    codec: Optional[str] = None,
    crf: int = DEFAULT_CRF,
    quiet: bool = True,
    on_frame: Optional[Callable[[int], None]] = None,
) -> VideoResult:
    """Dream every frame of ``source`` into ``out`` (.mp4 .mov .mkv .gif, or a frame folder); resumable.

    ``dream(image, rng)`` dreams one frame (all dream options live in it);
    ``carry`` builds each frame's input from the previous one (flow, blend).
    ``params`` are what decides the frames besides the input and ``seed``:
    a work folder left by a run with other ones is refused, not mixed in.
    ``on_frame(i)`` is called after frame ``i`` is safely on disk.
    """
    t0 = time.monotonic()
    out = Path(out)
    kind = output_kind(out)
    if kind == "frames" and source.kind == "frames" and source.files and out.exists() \
            and os.path.samefile(source.files[0].parent, out):
        raise DeepDreamError(f"refusing to write frames into the input folder {out}; choose another output")
    if kind != "frames":
        if source.path is not None and out.exists() and os.path.samefile(source.path, out):
            raise DeepDreamError(f"refusing to overwrite the input {out}; choose another -o")
        check_video_output(out, source.width, source.height, codec, crf, source.frame_rate)
    total = source.frame_count if max_frames is None else min(max_frames, source.frame_count)
    params = dict(params, flow=carry.method, blend=carry.blend, carry=carry.carry,
                  frame_rate=str(source.frame_rate), size=[source.width, source.height])
    input_sha1 = source_sha1(source)
    key = run_key({"params": params, "seed": seed, "input": input_sha1})
    record = {"key": key, "seed": seed, "params": params, "input": source.spec, "input_sha1": input_sha1,
              "metadata": metadata or {}}
    work = work_dir(out)
    _open_work(work, key, record)

    rng = np.random.RandomState(seed)
    state = _load_state(work, rng)
    prev_frame = prev_dream = None
    start = 0
    if state is not None:
        start, prev_frame, prev_dream = state.index + 1, state.prev_frame, state.prev_dream
        if not frame_file(work, state.index).exists():
            save_image(frame_file(work, state.index), prev_dream)  # killed between the state and the frame
    done = start
    bar = _FrameBar(total, min(start, total), quiet, "video")
    try:
        if max_frames is None or start < max_frames:
            for i, frame in enumerate(source.frames(start), start):
                if max_frames is not None and i >= max_frames:
                    break
                x, info = carry(frame, prev_frame, prev_dream)
                result = dream(x, rng)
                _save_state(work, i, frame, result, rng)
                save_image(frame_file(work, i), result)
                done = i + 1
                bar.update(f"{info.visible:.0%} carried" if carry.blend > 0 and i > 0 else "")
                if on_frame is not None:
                    on_frame(i)
                prev_frame, prev_dream = frame, result
    finally:
        bar.close()
    if done == 0:
        raise DeepDreamError(f"{source.spec} has no video frames")
    if kind != "frames":
        meta = dict(metadata or {}, params=params, seed=seed, frames=done, frame_rate=format_rate(source.frame_rate),
                    input=source.spec, input_sha1=input_sha1)
        encode_frames([frame_file(work, i) for i in range(done)], out, source, meta, codec=codec, crf=crf,
                      quiet=quiet)
        _remove_work(work, done)
    return VideoResult(out, done, start, seed, time.monotonic() - t0)


def encode_frames(
    files: List[Path],
    out: os.PathLike,
    source: Optional[VideoSource],
    metadata: Optional[Dict[str, Any]],
    *,
    rate: Optional[Any] = None,
    codec: Optional[str] = None,
    crf: int = DEFAULT_CRF,
    quiet: bool = True,
) -> int:
    """Encode image ``files`` into the video ``out`` at ``rate`` (default: the source's), with the source's audio."""
    bar = _FrameBar(len(files), 0, quiet, "encode")

    def frames() -> Iterator[np.ndarray]:
        for f in files:
            yield load_image(f)
            bar.update()

    try:
        return write_video(out, frames(), rate if rate is not None else source.frame_rate,
                           audio_from=source if source is not None and source.kind == "video" else None,
                           metadata=metadata, codec=codec, crf=crf)
    finally:
        bar.close()
