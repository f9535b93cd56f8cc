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
import itertools
import os
import sys
import time
from dataclasses import dataclass, fields
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np

from .. import __version__
from ..dream.arguments import check_arguments, check_kinds
from ..dream.defaults import BLEND, CARRY, CARRY_MODES, FLOW, FLOW_METHODS
from ..dream.flow import FrameCarry
from ..dream.keyframes import DREAM, Keyframes
from ..dream.params import SettingError, check
from ..errors import DeepDreamError
from ..io.atomic import fit_name
from ..io.hashing import sha1_file
from ..io.image import load_image, shrink, shrunk_size, sidecar_path
from ..io.video import (
    DEFAULT_CRF,
    DEFAULT_FPS,
    VideoSource,
    as_rate,
    check_video_output,
    format_rate,
    header_size,
    open_source,
    output_kind,
    video_suffixes,
    write_video,
)
from .config import ZoomConfig
from .pipeline import DreamSession, Scheduled, _settings, choose_seed, load_input, net_files, zoom_dir, zoom_inputs
from .record import output_metadata
from .reporting import FrameProgress, Progress, Reporter
from .run import TOOL, DreamFn, RunDir, RunFiles, frame_loop, output_lock, run_key, saved_record, saved_seed
from .zoom import KIND as ZOOM
from .zoom import FramePaths

KIND = "video"  # the work folder's record and state: video.json, .video-state.npz


def work_dir(out: os.PathLike) -> Path:
    """Where the frames of a run go: the output itself for a frame folder, else a hidden folder beside it."""
    out = Path(out)
    return out if output_kind(out) == "frames" else out.with_name(f".{fit_name(out.name, '..frames')}.frames")


def check_files(source: VideoSource, out: os.PathLike, inputs: Sequence[Optional[os.PathLike]] = ()) -> None:
    """Refuse, before any work, a video, record or work folder that would replace a file the run reads.

    ``inputs`` are the files read besides the source (net, guide); see
    :class:`~deepdream_caffe.app.run.RunFiles` and :meth:`RunDir.check`.
    """
    out = Path(out)
    reads = [source.path, *source.files, *inputs]
    work = work_dir(out)
    if source.kind == "frames" and source.files and work.is_dir() and os.path.samefile(source.files[0].parent, work):
        raise DeepDreamError(f"refusing to write frames into the input folder {work}; choose another output")
    if work != out:
        RunFiles(reads, writes=[out], records=[sidecar_path(out)]).check()
    _run_dir(work).check(reads)


def _run_dir(work: Path, key: str = "", record: Optional[Dict[str, Any]] = None, **kw: Any) -> RunDir:
    return RunDir(work, KIND, key, record or {}, digits=6, ext=".png", **kw)


def source_sha1(source: VideoSource) -> str:
    """What identifies the input: the video file's sha1, or the names and sha1s of the frame files."""
    if source.kind == "video":
        return sha1_file(source.path)
    h = hashlib.sha1()
    for f in source.files:
        h.update(f"{f.name}\0{sha1_file(f)}\n".encode())
    return h.hexdigest()


@dataclass
class VideoResult:
    """What a video run did."""

    output: Path
    frames: int  # frames in the output
    resumed_at: int  # the first frame dreamed by this run (0: a fresh run)
    seed: int
    seconds: float


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
    reporter: Optional[Reporter] = None,
    on_frame: Optional[Callable[[int], None]] = None,
    before: Optional[Callable[[int], None]] = None,
    inputs: Sequence[Optional[os.PathLike]] = (),
) -> VideoResult:
    """Dream every frame of ``source`` into ``out`` (a video, an animation or a frame folder); resumable.

    ``dream(image, rng)`` dreams one frame (all dream options live in it);
    ``carry`` builds each frame's input from the previous one (flow, blend).
    ``params`` are what decides the frames besides the input and ``seed``:
    a work folder left by a run with other ones is refused, not mixed in.
    ``on_frame(i)`` is called after frame ``i`` is safely on disk, ``before(i)``
    before it is dreamed (a schedule sets its settings there). None of
    ``inputs`` (other files the caller read: net, guide) may be among the
    files this writes (see :func:`check_files`). Progress
    goes to ``reporter.frames``; a reporter whose ``progress`` feeds
    :meth:`FrameProgress.advance` moves it within frames too.
    """
    t0 = time.monotonic()
    rep = reporter or Reporter()
    out = Path(out)
    kind = output_kind(out)
    check_files(source, out, inputs)
    if kind != "frames":
        check_video_output(out, source.width, source.height, codec, crf, source.frame_rate)
    # A second run writing ``out`` is refused, never mixed into this one's work folder.
    with output_lock(out, folder=kind == "frames"):
        total = source.frame_count if max_frames is None else min(max_frames, source.frame_count)
        params = dict(params, flow=carry.method, blend=carry.blend, carry=carry.carry,
                      frame_rate=str(source.frame_rate), size=[source.width, source.height])
        input_sha1 = source_sha1(source)
        record = dict(metadata or {}, seed=seed, params=params, input=source.spec, input_sha1=input_sha1)
        run = _run_dir(work_dir(out), run_key(params, seed, input_sha1), record, note=rep.note)
        run.open()

        rng = np.random.RandomState(seed)
        shape = (source.height, source.width, 3)
        # A video's count is its container's (decoding may find a few more): only a frame folder's is exact.
        start, last = run.resume(rng, {"frame": shape, "dream": shape}, len(source.files) or None)
        if start:
            rep.note(f"resuming after frame {start} from {run.folder}")
        bar = rep.frames(total, min(start, total), "video")
        if isinstance(rep, _FrameReporter):
            rep.bar = bar
        carried = {"visible": 0.0}

        def carry_in(frame: np.ndarray, last: Optional[Dict[str, np.ndarray]]) -> np.ndarray:
            x, info = carry(frame, *((last["frame"], last["dream"]) if last else (None, None)))
            carried["visible"] = info.visible
            return x

        def frame_done(i: int) -> None:
            bar.frame_done(min(i + 1, total), f"{carried['visible']:.0%} carried" if carry.blend > 0 and i > 0 else "")
            if on_frame is not None:
                on_frame(i)

        frames = itertools.islice(source.frames(start),
                                  None if max_frames is None else max(0, min(max_frames, sys.maxsize) - start))
        try:
            done = frame_loop(run, rng, dream, start, last, frames, carry_in, frame_done, before)
        except KeyboardInterrupt:
            rep.note(f"stopped after frame {0 if run.state.last is None else run.state.last + 1}; "
                     f"the same command carries on from {run.folder}")
            raise
        finally:
            bar.close()
        if done == 0:
            raise DeepDreamError(f"{source.spec} has no video frames")
        if kind != "frames":
            meta = dict(record, frames=done, frame_rate=format_rate(source.frame_rate))
            encode_frames([run.frame(i) for i in range(done)], out, source, meta, codec=codec, crf=crf, reporter=rep)
            run.remove()
        return VideoResult(out, done, start, seed, time.monotonic() - t0)


def encode_frames(
    files: Sequence[Path],
    out: os.PathLike,
    source: Optional[VideoSource],
    metadata: Optional[Dict[str, Any]],
    *,
    rate: Optional[Any] = None,
    codec: Optional[str] = None,
    crf: int = DEFAULT_CRF,
    reporter: Optional[Reporter] = None,
) -> int:
    """Encode image ``files`` into the video ``out`` at ``rate`` (default: the source's, with its frames' own
    times where they vary), with the source's audio."""
    bar = (reporter or Reporter()).frames(len(files), 0, "encode")

    def frames() -> Iterator[np.ndarray]:
        for i, f in enumerate(files):
            yield load_image(f)
            bar.frame_done(i + 1)

    try:
        return write_video(out, frames(), rate if rate is not None else source.frame_rate,
                           audio_from=source if source is not None and source.kind == "video" else None,
                           metadata=metadata, codec=codec, crf=crf, times=source.times if rate is None else None)
    finally:
        bar.close()


# ---------------------------------------------------------------- progress


class _FrameFraction(Progress):
    """One frame's dream as a fraction of the frame bar: each step moves it by its octave's share of pixels."""

    def __init__(self, bar: FrameProgress, sizes: List[Tuple[int, int]], iter_n: int) -> None:
        self.bar = bar
        pixels = [h * w for h, w in sizes[::-1]]  # smallest first, as the dream visits them
        total = float(sum(pixels) * iter_n) or 1.0
        self.share = [p / total for p in pixels]

    def update(self, octave: int, step: int, extra: Optional[str] = None) -> None:
        self.bar.advance(self.share[octave])


class _FrameReporter(Reporter):
    """The caller's reporter, with each frame's dream shown inside the frame bar instead of a bar of its own."""

    def __init__(self, inner: Reporter) -> None:
        self.inner = inner
        self.quiet = inner.quiet
        self.bar: FrameProgress = FrameProgress()

    def note(self, message: str) -> None:
        self.inner.note(message)

    def name(self, setting: str) -> str:
        return self.inner.name(setting)

    def seed_chosen(self, seed: int) -> None:
        self.inner.seed_chosen(seed)

    def progress(self, sizes: List[Tuple[int, int]], iter_n: int, label: str) -> Progress:
        return _FrameFraction(self.bar, sizes, iter_n)

    def frames(self, total: int, done: int, label: str) -> FrameProgress:
        return self.inner.frames(total, done, label)


# ---------------------------------------------------------------- file in, file out


@dataclass(frozen=True)
class VideoConfig:
    """How a video is dreamed and written, besides the dream itself; checked when made.

    ``flow``/``blend``/``carry``: see :mod:`deepdream_caffe.dream.flow`.
    ``fps`` is the frame rate of image-frame input (default 25);
    ``max_frames`` dreams only the first frames; ``codec``/``crf`` are the
    encoder's (libx264, 18); ``keyframes`` change the layer and the step
    size over the frames (:mod:`~deepdream_caffe.dream.keyframes`).
    """

    flow: str = FLOW
    blend: float = BLEND
    carry: str = CARRY
    fps: Optional[Union[float, str]] = None
    max_frames: Optional[int] = None
    codec: Optional[str] = None
    crf: int = DEFAULT_CRF
    keyframes: Optional[Keyframes] = None

    def __post_init__(self) -> None:
        if self.keyframes is not None:
            if not isinstance(self.keyframes, Keyframes):
                raise SettingError(f"{{keyframes}} must be a Keyframes, got {self.keyframes!r}")
            self.keyframes.only(DREAM, "video")
        if self.flow not in FLOW_METHODS:
            raise SettingError(f"{{flow}} must be one of {', '.join(FLOW_METHODS)}; got {self.flow!r}")
        if self.carry not in CARRY_MODES:
            raise SettingError(f"{{carry}} must be one of {', '.join(CARRY_MODES)}; got {self.carry!r}")
        check(self, "blend", float, lambda v: 0 <= v <= 1, "in [0, 1]")
        if self.max_frames is not None:
            check(self, "max_frames", int, lambda v: 1 <= v <= 10**6, "in [1, 1000000] (frames are numbered "
                  "with 6 digits)")
        check(self, "crf", int, lambda v: 0 <= v <= 51, "in [0, 51]")
        if self.fps is not None:
            as_rate(self.fps)

    def carrier(self) -> FrameCarry:
        return FrameCarry(self.flow, float(self.blend), self.carry)


@dataclass(frozen=True)
class ShrunkSource(VideoSource):
    """``whole``'s frames with their long side brought down to ``max_size`` (width and height say so)."""

    whole: Optional[VideoSource] = None
    max_size: int = 0

    @classmethod
    def of(cls, source: VideoSource, max_size: Optional[int]) -> VideoSource:
        """``source`` as ``--max-size`` has it dreamed: itself when it is within the size."""
        h, w = shrunk_size(source.height, source.width, max_size)
        if (h, w) == (source.height, source.width):
            return source
        same = {f.name: getattr(source, f.name) for f in fields(source)}
        return cls(**{**same, "height": h, "width": w}, whole=source, max_size=max_size)

    def frames(self, start: int = 0) -> Iterator[np.ndarray]:
        return (shrink(f, self.max_size) for f in self.whole.frames(start))


def _seed_for(config: Any, work: Path, rep: Reporter) -> int:
    """The config's seed; else an unfinished run's (so re-running the same command resumes it); else a new one."""
    seed = saved_seed(work, KIND) if config.seed is None else None
    if seed is not None:
        rep.note(f"seed {seed}, that of the run in {work}")
        return seed
    return choose_seed(config, rep)


def video_file(
    input_spec: Union[str, os.PathLike],
    output: os.PathLike,
    config: Optional[Any] = None,
    video: VideoConfig = VideoConfig(),
    *,
    session: Optional[Any] = None,
    reporter: Optional[Reporter] = None,
    on_frame: Optional[Callable[[int], None]] = None,
) -> VideoResult:
    """Dream every frame of ``input_spec`` (a video file, a frame folder or a glob) into ``output``.

    ``config`` is a :class:`~deepdream_caffe.app.config.DreamConfig` (all
    dream options: layer, guide, mode, seed, tiling), or pass a loaded
    :class:`~deepdream_caffe.app.pipeline.DreamSession` instead (it brings
    its own config and reporter). ``output`` is
    .mp4 .m4v .mov .mkv .webm (VP9), an animated .gif .apng .webp, or a
    folder. Resumable: run it again after an
    interruption and it carries on with the same frames. Everything is
    checked before the net loads.
    """
    cfg, rep = _settings("video_file", config, session, reporter)
    check_kinds(input_spec=(input_spec, os.PathLike, "a path or a glob"), output=(output, os.PathLike, "a path"),
                video=(video, VideoConfig, "a VideoConfig"))
    check_arguments(on_frame=on_frame)
    # Dream settings a video does not use would be ignored without a word: refuse them.
    if cfg.quality is not None:
        raise SettingError("{quality} is for JPEG/WebP images; a video's quality is {crf}")
    if cfg.exif_orientation != "apply":
        raise SettingError("{exif_orientation} is for images; a video's frames are turned upright by its display matrix (frame files: by their tags)")
    frame_rep = _FrameReporter(rep)
    header = header_size(input_spec)
    if header is not None:  # a frame size no dream can take is refused before a frame is decoded
        session = session or DreamSession(cfg, frame_rep)
        _fits_either_way(session, *header)
    source = open_source(input_spec, video.fps)
    _note_turn(source, rep)
    source = ShrunkSource.of(source, cfg.max_size)
    if source.kind == "video" and video.fps is not None:
        raise SettingError("{fps} is for frame folders; a video keeps its own frame rate")
    out = Path(output)
    kind = output_kind(out)
    inputs = [cfg.guide, video.keyframes.path if video.keyframes is not None else None, *net_files(cfg)]
    check_files(source, out, inputs)
    if kind != "frames":
        check_video_output(out, source.width, source.height, video.codec, video.crf, source.frame_rate)
    if kind == "animation" and source.has_audio:
        rep.note(f"an animated {out.suffix.lower()} has no sound: the input's audio is left out")
    carry = video.carrier()
    session = session or DreamSession(cfg, frame_rep)
    octave_n = session.octaves_for(source.height, source.width)  # frames too small fail before the net loads
    scheduled = Scheduled(session, video.keyframes, source.height, source.width)
    session.load()
    seed = _seed_for(cfg, work_dir(out), rep)
    if cfg.picks:  # chosen on the first frame, kept for all
        first = next(iter(source.frames()), None)
        if first is None:
            raise DeepDreamError(f"{source.spec} has no video frames")
        session.choose(first, seed)
    spec = session.spec
    params = dict(session.params(octave_n), model=spec.model, weights_sha1=spec.weights_sha1,
                  input_turn_degrees=90 * source.quarter_turns)
    if video.keyframes is not None:
        params["keyframes"] = video.keyframes.describe()
    input_sha1 = source_sha1(source)
    meta = output_metadata("video", params, seed, spec, session.device, Path(source.spec), input_sha1)

    result = dream_video(source, out, scheduled, carry=carry, seed=seed, params=params, metadata=meta,
                         max_frames=video.max_frames, codec=video.codec, crf=video.crf,
                         reporter=frame_rep if session.reporter is frame_rep else rep, on_frame=on_frame,
                         before=scheduled.before, inputs=inputs)
    rep.note(f"wrote {out} ({result.frames} frames)")
    return result


def _fits_either_way(session: Any, h: int, w: int) -> None:
    """Raise unless ``h`` x ``w`` frames, upright or turned a quarter (the header does not say), can be dreamed."""
    try:
        session.octaves_for(h, w)
    except DeepDreamError:
        if h == w:
            raise
        session.octaves_for(w, h)


def _note_turn(source: VideoSource, rep: Reporter) -> None:
    if source.quarter_turns:
        rep.note(f"{source.spec} is shown turned {90 * source.quarter_turns} degrees (its display matrix): its "
                 f"frames are turned {90 * source.quarter_turns} degrees upright, {source.width}x{source.height}, "
                 "and written that way")


def _encode_metadata(command: str, source: VideoSource, rate: Fraction, extra: Optional[Dict[str, Any]] = None
                     ) -> Dict[str, Any]:
    meta = {"tool": TOOL, "version": __version__, "command": command, "input": source.spec,
            "frames": source.frame_count, "frame_rate": format_rate(rate)}
    meta.update(extra or {})
    return meta


def frames_to_video_file(
    input_spec: Union[str, os.PathLike],
    output: os.PathLike,
    *,
    fps: Optional[Union[float, str]] = None,
    codec: Optional[str] = None,
    crf: int = DEFAULT_CRF,
    reporter: Optional[Reporter] = None,
) -> int:
    """Encode a frame folder or glob (or re-encode a video) into ``output`` (a video or an animation).

    Frames are taken in name order (numbers as numbers) at ``fps`` (25).
    Returns the frame count.
    """
    check_kinds(input_spec=(input_spec, os.PathLike, "a path or a glob"), output=(output, os.PathLike, "a path"),
                reporter=(reporter, (Reporter, None), "a Reporter or None"))
    source = open_source(input_spec, fps)
    rep = reporter or Reporter()
    _note_turn(source, rep)
    out = Path(output)
    if output_kind(out) == "frames":
        raise DeepDreamError(f"cannot tell the video format from '{out}'; use one of {', '.join(video_suffixes())}")
    RunFiles([source.path, *source.files], writes=[out], records=[sidecar_path(out)]).check()
    check_video_output(out, source.width, source.height, codec, crf, source.frame_rate)
    bar = rep.frames(source.frame_count, 0, "encode")

    def frames() -> Iterator[np.ndarray]:
        for i, img in enumerate(source.frames()):
            yield img
            bar.frame_done(i + 1)

    try:
        with output_lock(out):
            n = write_video(out, frames(), source.frame_rate, audio_from=source if source.kind == "video" else None,
                            metadata=_encode_metadata("frames-to-video", source, source.frame_rate), codec=codec,
                            crf=crf, times=source.times)
    finally:
        bar.close()
    rep.note(f"wrote {out} ({n} frames at {format_rate(source.frame_rate)} fps)")
    return n


def check_zoom_video(input_path: Optional[os.PathLike], output: os.PathLike, *, fps: Optional[Union[float, str]] = None,
                     codec: Optional[str] = None, crf: int = DEFAULT_CRF, out_dir: Optional[os.PathLike] = None,
                     config: Optional[Any] = None, zoom: Optional[ZoomConfig] = None) -> None:
    """Refuse now, before the zoom's dreams, a video output that could not be written for this input,
    or that would replace a file the zoom reads (with ``config`` and ``zoom``) or writes (in ``out_dir``)."""
    out = Path(output)
    if output_kind(out) == "frames":
        raise DeepDreamError(f"cannot tell the video format from '{out}'; use one of {', '.join(video_suffixes())}")
    reads = zoom_inputs(input_path, config, zoom or ZoomConfig()) if config is not None else [input_path]
    if out_dir is not None:
        reads += zoom_dir(out_dir).files()
    RunFiles(reads, writes=[out], records=[sidecar_path(out)]).check()
    h, w = load_input(input_path).shape[:2]
    check_video_output(out, w, h, codec, crf, as_rate(fps) if fps is not None else DEFAULT_FPS)


def zoom_video_file(
    out_dir: os.PathLike,
    frames: int,
    output: os.PathLike,
    *,
    fps: Optional[Union[float, str]] = None,
    codec: Optional[str] = None,
    crf: int = DEFAULT_CRF,
    reporter: Optional[Reporter] = None,
) -> int:
    """Encode a zoom's frames ``0000.jpg`` ... of ``out_dir`` into ``output``; the folder stays as it is."""
    out_dir = Path(out_dir)
    files = FramePaths(out_dir, frames)
    missing = next((f for f in files if not f.exists()), None)
    if missing is not None:
        raise DeepDreamError(f"{missing} is missing; finish the zoom first")
    zoom_dir(out_dir).check([])  # no link planted among the frames is taken into the video
    RunFiles(files, writes=[output], records=[sidecar_path(output)]).check()
    rate = as_rate(fps) if fps is not None else DEFAULT_FPS
    source = open_source(out_dir, rate)
    meta = _encode_metadata("zoom", source, rate, {"frames": frames})
    record = saved_record(out_dir, ZOOM)
    if record is not None:
        meta["zoom"] = record
    rep = reporter or Reporter()
    with output_lock(output):
        n = encode_frames(files, output, None, meta, rate=rate, codec=codec, crf=crf, reporter=rep)
    rep.note(f"wrote {output} ({n} frames at {format_rate(rate)} fps)")
    return n
