"""Video in and out: frames from a video file, a folder or a glob of images; H.264 MP4 or animated GIF out.

Video files are decoded and encoded with PyAV (FFmpeg's libraries, shipped
inside its wheels, libx264 included): it runs in-process, so failures are
exceptions rather than a child's stderr to parse; frame rates are exact
fractions (30000/1001, not 29.97); and the input's audio is copied packet
by packet, without re-encoding, where the output container takes its codec.
Animated GIFs are written with Pillow, which picks a palette per frame.
Every output is encoded into a temporary file beside it and renamed, so a
failure leaves nothing behind.
"""
from __future__ import annotations

import glob as _glob
import io
import math
import re
import struct
from dataclasses import dataclass, field
from fractions import Fraction
from itertools import chain
from pathlib import Path
from typing import Any, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..errors import DeepDreamError, import_extra
from .atomic import atomic_with_record
from .files import MAX_IMAGE_BYTES, check_regular, open_regular
from .image import IMAGE_SUFFIXES, load_image, record_json, sidecar_path, to_uint8
from .video_formats import (
    ANIMATIONS,
    AUDIO_CODECS,
    CONTAINER_CODECS,
    CONTAINERS,
    DEFAULT_CODEC,
    DEFAULT_CRF,
    PILLOW_ANIMATIONS,
)
from .video_formats import DEFAULT_FPS as _FPS

DEFAULT_FPS = Fraction(_FPS)
_GLOB_CHARS = re.compile(r"[*?\[]")


def _av() -> Any:
    return import_extra("av", "video")


def _av_errors() -> Tuple[type, ...]:
    # PyAV raises FFmpegError subclasses, and plain ValueError for a codec or muxer it does not know.
    return (_av().FFmpegError, ValueError)


# ---------------------------------------------------------------- reading


@dataclass(frozen=True)
class VideoSource:
    """A sequence of frames: a video file, or image files (a folder or a glob), probed once."""

    spec: str
    kind: str  # "video" or "frames"
    width: int
    height: int
    frame_rate: Fraction
    frame_count: int  # the container's count for a video (decoding may find a few more or fewer)
    audio_codec: Optional[str] = None
    path: Optional[Path] = None  # the video file
    files: Tuple[Path, ...] = field(default=(), repr=False)  # the image files, in order
    audio_tracks: int = 0  # audio streams in a video file: all are carried into the output
    # Quarter turns counter-clockwise that show a video file's frames upright (its display matrix; phones
    # store portrait video as landscape frames plus this). width and height are of the upright frames.
    quarter_turns: int = 0
    # Each frame's time in seconds from the first, for a video file whose frames are not evenly spaced at
    # ``frame_rate`` (variable frame rate); None where they are.
    times: Optional[Tuple[Fraction, ...]] = field(default=None, repr=False)

    @property
    def has_audio(self) -> bool:
        return self.audio_codec is not None

    def describe(self) -> str:
        more = self.audio_tracks - 1
        audio = (f", audio {self.audio_codec}" + (f" (+{more} more track{'s' if more > 1 else ''})" if more > 0 else "")
                 if self.audio_codec else "")
        turn = f", turned {90 * self.quarter_turns} degrees upright" if self.quarter_turns else ""
        return (f"{self.width}x{self.height}, {self.frame_count} frames at {format_rate(self.frame_rate)} fps"
                f"{audio}{turn}")

    def frames(self, start: int = 0) -> Iterator[np.ndarray]:
        """Frames ``start``, ``start+1``, ... as HxWx3 float32 RGB in [0, 255] (as :func:`load_image`)."""
        if self.kind == "frames":
            return self._image_frames(start)
        return self._video_frames(start)

    def _image_frames(self, start: int) -> Iterator[np.ndarray]:
        for f in self.files[start:]:
            img = load_image(f)
            if img.shape[:2] != (self.height, self.width):
                raise DeepDreamError(
                    f"frame {f} is {img.shape[1]}x{img.shape[0]}, the first frame {self.width}x{self.height}; "
                    "all frames must have one size"
                )
            yield img

    def _video_frames(self, start: int) -> Iterator[np.ndarray]:
        av = _av()
        container = _open_video(self.path)
        i = 0
        try:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"  # frame threads: decoding is bit-exact whatever the thread count
            # No seeking: decoding from the start finds frame ``start`` exactly, and costs
            # little next to dreaming the frames.
            for frame in container.decode(stream):
                if i >= start:
                    turns = quarter_turns(frame)
                    h, w = (frame.width, frame.height) if turns % 2 else (frame.height, frame.width)
                    if (h, w) != (self.height, self.width) or turns != self.quarter_turns:
                        raise DeepDreamError(
                            f"frame {i} of {self.path} is {w}x{h} upright, not {self.width}x{self.height}; "
                            "videos that change size or rotation are not supported"
                        )
                    rgb = frame.to_ndarray(format="rgb24")
                    yield np.float32(np.rot90(rgb, turns) if turns else rgb)
                i += 1
        except av.FFmpegError as e:
            raise DeepDreamError(f"cannot decode frame {i} of {self.path}: {_reason(e)}") from None
        finally:
            container.close()


def format_rate(rate: Fraction) -> str:
    """25, 29.97, 12.5: a frame rate as people write it."""
    return str(int(rate)) if rate.denominator == 1 else f"{float(rate):.3f}".rstrip("0").rstrip(".")


def as_rate(fps: Union[float, int, str, Fraction]) -> Fraction:
    """A frame rate as a fraction; 29.97 and "30000/1001" both become 30000/1001."""
    try:
        rate = Fraction(str(fps)) if not isinstance(fps, Fraction) else fps
    except (ValueError, ZeroDivisionError):
        raise DeepDreamError(f"frame rate must be a number like 25 or 30000/1001, got '{fps}'") from None
    if not 0 < rate <= 1000:
        raise DeepDreamError(f"frame rate must be in (0, 1000], got {fps}")
    # The NTSC family: 29.97 means 30000/1001, as every camera that writes it does.
    for base in (24, 30, 60, 120):
        if rate != base and abs(rate - Fraction(base * 1000, 1001)) < Fraction(1, 200):
            return Fraction(base * 1000, 1001)
    return rate


def open_source(spec: Union[str, Path], fps: Optional[Union[float, str, Fraction]] = None) -> VideoSource:
    """Probe a video file, a folder of images or a glob of images (sorted by name, numbers as numbers).

    ``fps`` is the frame rate of image frames (default 25); for a video file
    it overrides the container's rate when given.
    """
    text = str(spec)
    p = Path(text)
    rate = as_rate(fps) if fps is not None else None
    if p.is_dir():
        files = [f for f in p.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES and not f.name.startswith(".")]
        if not files:
            raise DeepDreamError(f"no image frames ({', '.join(sorted(IMAGE_SUFFIXES))}) in folder {p}")
        return _frames_source(text, files, rate)
    if not p.exists() and _GLOB_CHARS.search(text):
        files = [Path(f) for f in _glob.glob(text) if Path(f).suffix.lower() in IMAGE_SUFFIXES and Path(f).is_file()]
        if not files:
            raise DeepDreamError(f"no image files match {text}")
        return _frames_source(text, files, rate)
    if not p.exists():
        raise DeepDreamError(f"input not found: {p}")
    if p.suffix.lower() in IMAGE_SUFFIXES:
        raise DeepDreamError(f"{p} is one image, not a video; give a video file, or a folder or glob of frames")
    return _video_source(p, rate)


def _natural_key(path: Path) -> List[Any]:
    return [(0, int(t), "") if t.isdigit() else (1, 0, t) for t in re.split(r"(\d+)", path.name)]


def _frames_source(spec: str, files: List[Path], rate: Optional[Fraction]) -> VideoSource:
    files = sorted(files, key=_natural_key)
    sizes = set()
    for f in files:  # headers only: a size mismatch is found now, not hours into the run
        try:
            with open_regular(f, "frame", MAX_IMAGE_BYTES) as raw, Image.open(raw) as im:
                sizes.add((im.size, f))
        except (OSError, UnidentifiedImageError, SyntaxError, ValueError):
            raise DeepDreamError(f"not an image file (or a format Pillow cannot read): {f}") from None
        if len({s for s, _ in sizes}) > 1:
            first = files[0]
            raise DeepDreamError(f"frame {f} differs in size from {first}; all frames must have one size")
    (w, h), _ = next(iter(sizes))
    return VideoSource(spec, "frames", w, h, rate or DEFAULT_FPS, len(files), None, None, tuple(files))


def _reason(e: BaseException) -> str:
    # PyAV's messages end with ": 'path'"; the caller names the file itself.
    msg = getattr(e, "strerror", None) or str(e)
    return re.sub(r"\s*:\s*'[^']*'\s*$", "", msg)


def _open_video(path: Path) -> Any:
    av = _av()
    check_regular(path, "video")  # FFmpeg would wait on a FIFO and read a device without end
    try:
        return av.open(str(path), "r")
    except IsADirectoryError:
        raise DeepDreamError(f"input is a directory: {path}") from None
    except PermissionError:
        raise DeepDreamError(f"cannot read {path}: permission denied") from None
    except _av_errors():
        raise DeepDreamError(f"not a video file (or a format FFmpeg cannot read): {path}") from None


def quarter_turns(frame: Any) -> int:
    """0-3: the counter-clockwise quarter turns that show ``frame`` upright (FFmpeg's display matrix, as
    PyAV reads it; an angle between quarter turns is rounded to the nearest, as FFmpeg's player does)."""
    return int(round(float(getattr(frame, "rotation", 0) or 0) / 90.0)) % 4


def _first_turns(path: Path) -> int:
    """The rotation of the first decodable frame (0 for a stream with none), from a container of its own."""
    container = _open_video(path)
    try:
        for frame in container.decode(container.streams.video[0]):
            return quarter_turns(frame)
        return 0
    finally:
        container.close()


def _video_source(path: Path, rate: Optional[Fraction]) -> VideoSource:
    av = _av()
    container = _open_video(path)
    try:
        if not container.streams.video:
            raise DeepDreamError(f"{path} has no video stream")
        v = container.streams.video[0]
        w, h = v.codec_context.width, v.codec_context.height
        native = v.average_rate or v.guessed_rate or v.base_rate
        # Presentation times from the packets (no decoding): their count where the header has none
        # (Matroska, WebM, raw streams), and the timing of a variable-frame-rate video.
        stamps = sorted(pkt.pts for pkt in container.demux(v) if pkt.size and pkt.pts is not None)
        count = v.frames or len(stamps)
        times = _uneven_times(stamps, v.time_base, Fraction(native) if native and not rate else None)
        audio = container.streams.audio[0].codec_context.name if container.streams.audio else None
        tracks = len(container.streams.audio)
        turns = _first_turns(path) if count else 0
    except av.FFmpegError as e:
        raise DeepDreamError(f"cannot read {path}: {_reason(e)}") from None
    finally:
        container.close()
    if count == 0:
        raise DeepDreamError(f"{path} has no video frames")
    if not w or not h:
        raise DeepDreamError(f"cannot tell the frame size of {path}")
    if turns % 2:
        w, h = h, w
    return VideoSource(str(path), "video", w, h, rate or (Fraction(native) if native else DEFAULT_FPS), count,
                       audio, path, audio_tracks=tracks, quarter_turns=turns, times=times)


def _uneven_times(stamps: List[int], time_base: Optional[Fraction],
                  rate: Optional[Fraction]) -> Optional[Tuple[Fraction, ...]]:
    """The frames' times from the first (seconds) where they are not i / rate; None where they are, or
    where there is nothing to tell them by."""
    if not stamps or not time_base or not rate:
        return None
    times = tuple((p - stamps[0]) * Fraction(time_base) for p in stamps)
    if all(abs(t - i / rate) < Fraction(1, 2) * time_base for i, t in enumerate(times)):
        return None
    return times


def header_size(spec: Union[str, Path]) -> Optional[Tuple[int, int]]:
    """(height, width) of a video file's frames as its header gives them, before any frame is decoded (a
    display matrix may turn them); None for anything else, or where the header does not tell."""
    path = Path(spec)
    if path.suffix.lower() in IMAGE_SUFFIXES or not path.is_file():
        return None
    try:
        with _av().open(str(path), "r") as container:
            ctx = container.streams.video[0].codec_context if container.streams.video else None
            return (ctx.height, ctx.width) if ctx is not None and ctx.height and ctx.width else None
    except (*_av_errors(), OSError):
        return None


def count_frames(path: Union[str, Path]) -> int:
    """The number of frames a video file decodes to (every frame decoded, not the header's count)."""
    container = _open_video(Path(path))
    try:
        return sum(1 for _ in container.decode(container.streams.video[0]))
    finally:
        container.close()


# ---------------------------------------------------------------- writing


def output_kind(path: Union[str, Path]) -> str:
    """"video" (.mp4 .m4v .mov .mkv .webm), "animation" (.apng .gif .webp: no sound), or "frames" (a folder:
    an existing one, or a name without suffix)."""
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix in ANIMATIONS:
        return "animation"
    if suffix in CONTAINERS:
        return "video"
    if p.is_dir() or not suffix:
        return "frames"
    if suffix in IMAGE_SUFFIXES:
        raise DeepDreamError(f"{p} names one image; give a video ({', '.join(video_suffixes())}) or a frame folder")
    raise DeepDreamError(f"cannot tell the video format from '{p}'; use one of {', '.join(video_suffixes())}")


def video_suffixes() -> List[str]:
    return sorted(set(CONTAINERS) | set(ANIMATIONS))


def default_codec(path: Union[str, Path]) -> str:
    """The video encoder of a container output when no --codec is given: VP9 for WebM, else H.264."""
    return CONTAINER_CODECS.get(CONTAINERS[Path(path).suffix.lower()], DEFAULT_CODEC)


def even_size(width: int, height: int) -> Tuple[int, int]:
    """The size a yuv420p encoder needs (both sides even): one more column or row where odd."""
    return width + (width & 1), height + (height & 1)


def _pad_even(frame: np.ndarray) -> np.ndarray:
    h, w = frame.shape[:2]
    if not (h | w) & 1:
        return frame
    # Repeat the last row/column rather than cropping: every dreamed pixel stays in the video.
    return np.pad(frame, ((0, h & 1), (0, w & 1), (0, 0)), mode="edge")


def _pick_pix_fmt(codec: Any) -> str:
    names = [f.name for f in (codec.video_formats or ())]
    return "yuv420p" if "yuv420p" in names or not names else names[0]


def _check_codec(name: str) -> None:
    """An FFmpeg video encoder by that name, or one line saying there is none."""
    av = _av()
    try:
        codec = av.Codec(name, "w")
    except _av_errors():
        raise DeepDreamError(f"no video encoder named '{name}' in this FFmpeg (try libx264 for .mp4, "
                             "libvpx-vp9 for .webm)") from None
    if codec.type != "video":
        raise DeepDreamError(f"'{name}' is an {codec.type} encoder, not a video one (try libx264)")


def _add_video_stream(container: Any, codec: str, rate: Fraction, width: int, height: int, crf: int) -> Any:
    _check_codec(codec)
    stream = container.add_stream(codec, rate=rate)
    stream.pix_fmt = _pick_pix_fmt(stream.codec_context.codec)
    if stream.pix_fmt in ("yuv420p", "yuv422p", "nv12"):
        width, height = even_size(width, height)
    stream.width, stream.height = width, height
    if codec in ("libx264", "libx265"):
        stream.options = {"crf": str(crf), "preset": "medium"}
    elif codec == "libvpx-vp9":  # constant quality: VP9's crf counts only with no bit rate target
        stream.options = {"crf": str(crf), "b": "0", "row-mt": "1"}
    return stream


def check_video_output(path: Union[str, Path], width: int, height: int, codec: Optional[str] = None,
                       crf: int = DEFAULT_CRF, rate: Fraction = DEFAULT_FPS) -> None:
    """Fail now, in one line, if ``path`` cannot be written with this codec (before hours of dreaming).

    Encodes one frame of the real size into memory: unknown codecs, codecs
    the container refuses and sizes the encoder refuses all show here.
    """
    path = Path(path)
    if isinstance(crf, bool) or not isinstance(crf, int) or not 0 <= crf <= 51:
        raise DeepDreamError(f"--crf must be in [0, 51], got {crf!r}")  # every path that encodes comes here
    kind = output_kind(path)
    if kind == "frames":
        return
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise DeepDreamError(f"output directory does not exist: {parent}")
    if path.is_dir():
        raise DeepDreamError(f"output {path} is a directory")
    if path.suffix.lower() in PILLOW_ANIMATIONS:
        own = PILLOW_ANIMATIONS[path.suffix.lower()]
        if codec not in (None, own.lower()):
            raise DeepDreamError(f"a {path.suffix.lower()} holds only {own} frames; drop --codec {codec} "
                                 "or write .mp4 or .webm")
        slowest = SLOWEST[own]
        if rate < slowest:
            raise DeepDreamError(f"a {path.suffix.lower()} shows a frame for at most {float(1 / slowest):.6g} s: its "
                                 f"frame rate must be at least {float(slowest):.6f} fps, got {float(rate):.6g}; "
                                 "write .mp4")
        return
    av = _av()
    codec = codec or default_codec(path)
    buf = io.BytesIO()
    try:
        with av.open(buf, "w", format=CONTAINERS[path.suffix.lower()]) as out:
            stream = _add_video_stream(out, codec, rate, width, height, crf)
            frame = av.VideoFrame.from_ndarray(np.zeros((height, width, 3), np.uint8), format="rgb24")
            frame = frame.reformat(width=stream.width, height=stream.height)
            for pkt in chain(stream.encode(frame), stream.encode(None)):
                out.mux(pkt)
    except _av_errors() as e:
        raise DeepDreamError(f"cannot write {codec} video into {path.name}: {_reason(e)}") from None


class _AudioCopy:
    """Audio stream ``index`` of a video file, muxed into an output in step with its video.

    Packets are copied as they are where the output container takes the
    codec; otherwise they are decoded and encoded to AAC. The track's
    language and title go with it.
    """

    def __init__(self, out: Any, src: Path, fmt: str, index: int = 0) -> None:
        av = _av()
        self.inp = _open_video(src)
        self.ist = self.inp.streams.audio[index]
        self.copy = _can_copy(src, fmt, index)
        if self.copy:
            self.ost = out.add_stream_from_template(self.ist)
        else:
            # The default layout for the channel count: AAC refuses "2 channels" of unknown order.
            ch = self.ist.codec_context.channels
            encoder = AUDIO_CODECS.get(fmt, "aac")
            rate = 48000 if encoder == "libopus" else self.ist.codec_context.sample_rate or 48000  # Opus: 48 kHz
            self.ost = out.add_stream(encoder, rate=rate, layout={1: "mono", 2: "stereo"}.get(ch, f"{ch}c"))
        for key in ("language", "title"):
            if self.ist.metadata.get(key):
                self.ost.metadata[key] = self.ist.metadata[key]
        self.out, self.av = out, av
        # The output's video starts at 0: shift the audio by the input video's start to stay in sync.
        vst = self.inp.streams.video[0] if self.inp.streams.video else None
        start = vst.start_time * vst.time_base if vst is not None and vst.start_time is not None else 0
        self.shift = int(round(start / self.ist.time_base)) if start else 0
        self.packets = self.inp.demux(self.ist)
        self.held: Optional[Any] = None

    def _next(self) -> Optional[Any]:
        """The next packet in output time (shifted), or None at the end."""
        if self.held is not None:
            pkt, self.held = self.held, None
            return pkt
        for pkt in self.packets:
            if pkt.pts is None or pkt.dts is None:
                continue  # the demuxer's flush packet
            if self.shift:
                pkt.pts, pkt.dts = pkt.pts - self.shift, pkt.dts - self.shift
                if pkt.pts + (pkt.duration or 0) <= 0:
                    continue  # sound from before the first frame
            return pkt
        return None

    def until(self, seconds: float, final: bool = False) -> None:
        """Mux the audio that ends by ``seconds`` (the video so far); ``final``: all that starts before it.

        At the end the packet that runs past the video is cut at the video's
        end when re-encoding; copied, it is kept whole (up to one packet, 21-32 ms for AAC).
        """
        while True:
            pkt = self._next()
            if pkt is None:
                return
            start = pkt.pts * pkt.time_base
            end = start + (pkt.duration or 0) * pkt.time_base
            if start >= seconds or (not final and end > seconds):
                self.held = pkt
                return
            self._mux(pkt, seconds if final else None)

    def _mux(self, pkt: Any, limit: Optional[float]) -> None:
        if self.copy:
            pkt.stream = self.ost
            self.out.mux(pkt)
            return
        for frame in pkt.decode():
            if limit is not None and frame.pts is not None:
                frame = _cut_audio(frame, limit)
                if frame is None:
                    continue
            frame.pts = None  # the encoder counts samples itself
            for opkt in self.ost.encode(frame):
                self.out.mux(opkt)

    def close(self) -> None:
        if not self.copy:
            for opkt in self.ost.encode(None):
                self.out.mux(opkt)
        self.inp.close()


def _cut_audio(frame: Any, limit: float) -> Optional[Any]:
    """The part of a decoded audio frame before ``limit`` seconds, or None."""
    av = _av()
    start = float(frame.pts * frame.time_base)
    keep = int(round((limit - start) * frame.sample_rate))
    if keep <= 0:
        return None
    if keep >= frame.samples:
        return frame
    arr = frame.to_ndarray()
    arr = arr[:, :keep] if frame.format.is_planar else arr[:, :keep * len(frame.layout.channels)]
    cut = av.AudioFrame.from_ndarray(np.ascontiguousarray(arr), format=frame.format.name, layout=frame.layout.name)
    cut.sample_rate = frame.sample_rate
    return cut


def _can_copy(src: Path, fmt: str, index: int = 0) -> bool:
    """Whether the muxer ``fmt`` takes audio stream ``index`` of ``src`` as it is.

    Tried for real in memory, header, a packet and trailer: some muxers
    accept a codec's header and refuse it only when closing (MP4 and PCM
    of unnamed channel order).
    """
    av = _av()
    inp = _open_video(src)
    try:
        ist = inp.streams.audio[index]
        with av.open(io.BytesIO(), "w", format=fmt) as probe:
            ost = probe.add_stream_from_template(ist)
            for pkt in inp.demux(ist):
                if pkt.dts is not None:
                    pkt.stream = ost
                    probe.mux(pkt)
                    break
        return True
    except _av_errors():
        return False
    finally:
        inp.close()


def write_video(
    path: Union[str, Path],
    frames: Iterable[np.ndarray],
    rate: Fraction = DEFAULT_FPS,
    *,
    audio_from: Optional[VideoSource] = None,
    metadata: Optional[Dict[str, Any]] = None,
    codec: Optional[str] = None,
    crf: int = DEFAULT_CRF,
    times: Optional[Sequence[Fraction]] = None,
) -> int:
    """Encode ``frames`` (HxWx3 RGB, float in [0, 255] or uint8) into ``path`` (.mp4 .mov .mkv .webm, or an
    animated .gif .apng .webp).

    Frame i is shown at ``times[i]`` seconds when given (a variable-frame-rate source's timing; frames
    past its end follow at ``rate``), else at i / ``rate``; a WebP keeps one rate.

    Returns the frame count. Video is H.264 (``codec``; VP9 for .webm) in yuv420p, odd
    sizes padded by one row/column; every audio track of ``audio_from`` (a
    video file) is kept, cut at the video's end. ``metadata`` goes in the
    container's comment and in ``path.json``. Atomic: on any failure
    nothing is left at ``path``.
    """
    path = Path(path)
    kind = output_kind(path)
    if kind == "frames":
        raise DeepDreamError(f"cannot tell the video format from '{path}'; use one of {', '.join(video_suffixes())}")
    if path.is_dir():
        raise DeepDreamError(f"output {path} is a directory")
    rate = as_rate(rate)
    it = iter(frames)
    first = next(it, None)
    if first is None:
        raise DeepDreamError(f"no frames to write into {path}")
    # Codec, container and size checked on one frame in memory: a refusal is one clear line.
    check_video_output(path, first.shape[1], first.shape[0], codec, crf, rate)
    frames = chain([first], it)
    comment = record_json(metadata, separators=(",", ":")) if metadata is not None else None
    with atomic_with_record(path, metadata, sidecar_path(path), suffix=path.suffix) as tmp:
        clock = _Clock(rate, times)
        if path.suffix.lower() in PILLOW_ANIMATIONS:
            n = _write_animation(tmp, frames, clock, PILLOW_ANIMATIONS[path.suffix.lower()], comment)
        else:
            n = _write_av(tmp, frames, clock, CONTAINERS[path.suffix.lower()], codec or default_codec(path), crf,
                          audio_from if kind == "video" and audio_from is not None and audio_from.has_audio else None,
                          comment, path)
    return n


def _checked(frames: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
    """uint8 frames, all of the first one's size."""
    shape = None
    for i, img in enumerate(frames):
        a = img if img.dtype == np.uint8 else to_uint8(img)
        if a.ndim != 3 or a.shape[2] != 3:
            raise DeepDreamError(f"frame {i} is not an RGB image (shape {a.shape})")
        if shape is None:
            shape = a.shape
        elif a.shape != shape:
            raise DeepDreamError(f"frame {i} is {a.shape[1]}x{a.shape[0]}, frame 0 {shape[1]}x{shape[0]}")
        yield np.ascontiguousarray(a)


class _Clock:
    """When each output frame starts: at i / rate, or at a source's own times."""

    def __init__(self, rate: Fraction, times: Optional[Sequence[Fraction]]) -> None:
        self.rate, self.times = rate, list(times) if times else None
        # a time base that holds every given time exactly
        self.time_base = Fraction(1, math.lcm(*(Fraction(t).denominator for t in times))) if times else 1 / rate

    def start(self, i: int) -> Fraction:
        if self.times is None:
            return i / self.rate
        if i < len(self.times):
            return Fraction(self.times[i])
        return Fraction(self.times[-1]) + (i - len(self.times) + 1) / self.rate

    def pts(self, i: int) -> int:
        return int(self.start(i) / self.time_base)


def _write_av(tmp: Path, frames: Iterable[np.ndarray], clock: _Clock, fmt: str, codec: str, crf: int,
              audio: Optional[VideoSource], comment: Optional[str], path: Path) -> int:
    av = _av()
    # mp4/mov: the index first, so it plays while loading; apng: loop forever, as a GIF does.
    options = {"movflags": "+faststart"} if fmt in ("mp4", "mov") else {"plays": "0"} if fmt == "apng" else {}
    n = 0
    try:
        out = av.open(str(tmp), "w", format=fmt, options=options)
    except _av_errors() as e:
        raise DeepDreamError(f"cannot write {path}: {_reason(e)}") from None
    copiers: List[_AudioCopy] = []
    ok = False
    try:
        if comment is not None:
            out.metadata["comment"] = comment
        stream = None
        for arr in _checked(frames):
            if stream is None:
                stream = _add_video_stream(out, codec, clock.rate, arr.shape[1], arr.shape[0], crf)
                if clock.times is not None:
                    stream.codec_context.time_base = stream.time_base = clock.time_base
                if audio is not None:
                    for i in range(max(audio.audio_tracks, 1)):
                        copiers.append(_AudioCopy(out, audio.path, fmt, i))
            if stream.pix_fmt == "yuv420p":
                arr = _pad_even(arr)
            frame = av.VideoFrame.from_ndarray(arr, format="rgb24")
            frame.pts = clock.pts(n)
            if clock.times is not None:
                frame.time_base = clock.time_base
            for pkt in stream.encode(frame):
                out.mux(pkt)
            n += 1
            for copier in copiers:
                copier.until(float(clock.start(n)))
        for pkt in stream.encode(None):
            out.mux(pkt)
        for copier in copiers:
            copier.until(float(clock.start(n)), final=True)
            copier.close()
        ok = True
    except _av_errors() as e:
        raise DeepDreamError(f"cannot write {path}: {_reason(e)}") from None
    finally:
        if not ok:
            for copier in copiers:
                copier.inp.close()
        try:
            out.close()  # writes the trailer (and moves the index first)
        except _av_errors() as e:
            if ok:
                raise DeepDreamError(f"cannot write {path}: {_reason(e)}") from None
    return n


# The slowest rate each animation's frame delay holds: GIF's 16 bits of hundredths, WebP's 24 bits of ms.
SLOWEST = {"GIF": Fraction(100, 65535), "WEBP": Fraction(1000, 2**24 - 1)}


def _write_animation(tmp: Path, frames: Iterable[np.ndarray], clock: _Clock, fmt: str,
                     comment: Optional[str]) -> int:
    """An animated GIF or WebP by Pillow, looping; returns the frame count."""
    count = [0]

    def images() -> Iterator[Any]:
        for i, arr in enumerate(_checked(frames)):
            count[0] += 1
            # GIF: fast octree, a palette per frame in milliseconds (median cut takes ~0.3 s on a
            # dream's many colours, for no visible gain).
            img = (Image.fromarray(arr).quantize(256, method=Image.Quantize.FASTOCTREE) if fmt == "GIF"
                   else Image.fromarray(arr))
            # GIF keeps delays in hundredths of a second: 25 fps is exact, 30 fps plays at 33.3.
            img.info["duration"] = max(20, int(round(100 * float(clock.start(i + 1) - clock.start(i)))) * 10)
            yield img

    it = images()
    first = next(it)
    if fmt == "GIF":  # each frame's own delay (from its info)
        extra: Dict[str, Any] = {"comment": comment.encode()} if comment else {}
    else:  # WebP keeps milliseconds, one delay for all
        extra = {"quality": 90, "method": 4, "duration": max(1, int(round(1000 / float(clock.rate))))}
    try:
        first.save(tmp, format=fmt, save_all=True, append_images=it, loop=0, **extra)
    except (OverflowError, struct.error):  # Pillow shows identical frames in a row as one, their delays summed
        raise DeepDreamError(f"an animation shows a frame for at most {float(1 / SLOWEST[fmt]):.6g} s, and identical "
                             f"frames in a row are one: at {float(clock.rate):.6g} fps they last longer; raise the frame "
                             "rate or write .mp4") from None
    return count[0]
