"""Synthetic clips for the video tests: a textured square moving over a textured background.

The motion is known exactly, so a test can line up the square in two
frames and measure whether what was dreamed on it moved along.
"""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import List, Optional, Tuple

import numpy as np
import pytest
import scipy.ndimage as nd


@dataclass
class Clip:
    frames: List[np.ndarray]  # HxWx3 float32 RGB in [0, 255]
    boxes: List[Tuple[int, int]]  # (top, left) of the square in each frame
    side: int
    step: Tuple[int, int]  # (dx, dy) per frame

    def square(self, img: np.ndarray, t: int, inset: int = 4) -> np.ndarray:
        """The inside of the square in frame ``t`` of ``img``, ``inset`` pixels from its edges."""
        y, x = self.boxes[t]
        s = self.side
        return img[y + inset:y + s - inset, x + inset:x + s - inset]


def moving_square(n: int = 10, width: int = 160, height: int = 120, side: int = 44,
                  step: Tuple[int, int] = (3, 1), seed: int = 0) -> Clip:
    """``n`` frames: a sharp-textured square moving ``step`` px a frame over a soft-textured background."""
    r = np.random.RandomState(seed)
    bg = nd.gaussian_filter(r.rand(height, width, 3), (1.5, 1.5, 0))
    bg = (bg - bg.min()) / (bg.max() - bg.min()) * 160 + 40
    tex = nd.gaussian_filter(r.rand(side, side, 3), (1, 1, 0))
    tex = (tex - tex.min()) / (tex.max() - tex.min()) * 255
    frames, boxes = [], []
    for t in range(n):
        f = bg.copy()
        y, x = 30 + step[1] * t, 20 + step[0] * t
        f[y:y + side, x:x + side] = tex
        frames.append(np.float32(np.round(f)))
        boxes.append((y, x))
    return Clip(frames, boxes, side, step)


def corr(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of two arrays of one shape."""
    a = np.asarray(a, np.float64).ravel()
    b = np.asarray(b, np.float64).ravel()
    a, b = a - a.mean(), b - b.mean()
    return float(a @ b / np.sqrt((a @ a) * (b @ b)))


def write_clip_with_audio(path: Path, frames: List[np.ndarray], rate: Fraction = Fraction(25),
                          audio_codec: str = "aac", fmt: Optional[str] = None,
                          tracks: Tuple[Tuple[float, Optional[str]], ...] = ((440.0, None),)) -> float:
    """A video with stereo tones as long as the frames, written with PyAV; returns its seconds.

    ``tracks``: one audio stream per (frequency in Hz, language or None); by default one 440 Hz tone.
    """
    import av

    seconds = float(len(frames) / rate)
    h, w = frames[0].shape[:2]
    with av.open(str(path), "w", format=fmt) as out:
        vs = out.add_stream("libx264", rate=rate)
        vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
        streams = []
        for _, language in tracks:
            aus = out.add_stream(audio_codec, rate=44100)
            if audio_codec == "aac":
                aus.layout = "stereo"
            if language:
                aus.metadata["language"] = language
            streams.append(aus)
        _encode(out, vs, frames)
        t = np.arange(int(44100 * seconds)) / 44100.0
        for aus, (hz, _) in zip(streams, tracks):
            tone = np.sin(2 * np.pi * hz * t) * 0.3
            if audio_codec == "aac":
                samples = np.stack([tone, tone]).astype(np.float32)  # planar float
                af = av.AudioFrame.from_ndarray(samples, format="fltp", layout="stereo")
            else:
                pcm = (np.stack([tone, tone], axis=1) * 20000).astype(np.int16).reshape(1, -1)  # packed s16
                af = av.AudioFrame.from_ndarray(pcm, format="s16", layout="stereo")
            af.sample_rate = 44100
            af.pts = 0
            for p in aus.encode(af):
                out.mux(p)
            for p in aus.encode(None):
                out.mux(p)
    return seconds


def stream_seconds(path: Path, kind: str) -> float:
    """Duration of the first ``kind`` ("audio"/"video") stream of a file, by its packets."""
    import av

    with av.open(str(path)) as c:
        s = c.streams.audio[0] if kind == "audio" else c.streams.video[0]
        end = 0.0
        for pkt in c.demux(s):
            if pkt.pts is not None:
                end = max(end, float((pkt.pts + (pkt.duration or 0)) * pkt.time_base))
        return end


def audio_codec_of(path: Path) -> Optional[str]:
    import av

    with av.open(str(path)) as c:
        return c.streams.audio[0].codec_context.name if c.streams.audio else None


def write_turned_clip(path: Path, frames: List[np.ndarray], degrees: int, rate: Fraction = Fraction(25)) -> None:
    """An MP4 whose display matrix turns its frames ``degrees`` counter-clockwise, as a phone writes
    portrait video; skips the test where this PyAV cannot write one."""
    import av
    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=rate)
        if not hasattr(vs, "set_display_rotation"):
            pytest.skip(f"PyAV {av.__version__} cannot write a display matrix (set_display_rotation)")
        h, w = frames[0].shape[:2]
        vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
        vs.set_display_rotation(degrees)
        _encode(out, vs, frames)


def _encode(out, vs, frames: List[np.ndarray]) -> None:
    """Encode and mux RGB ``frames`` into the video stream ``vs`` of ``out``, then flush it."""
    import av

    for i, f in enumerate(frames):
        vf = av.VideoFrame.from_ndarray(np.uint8(f), format="rgb24")
        vf.pts = i
        for p in vs.encode(vf):
            out.mux(p)
    for p in vs.encode(None):
        out.mux(p)


def write_vfr_clip(path: Path, frames: List[np.ndarray], times: List[Fraction]) -> None:
    """A variable-frame-rate video: frame i shown at ``times[i]`` seconds (a millisecond time base)."""
    import av

    tb = Fraction(1, 1000)
    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=25)
        h, w = frames[0].shape[:2]
        vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
        vs.codec_context.time_base = vs.time_base = tb
        for f, t in zip(frames, times):
            vf = av.VideoFrame.from_ndarray(np.uint8(f), format="rgb24")
            vf.pts, vf.time_base = int(t / tb), tb
            for p in vs.encode(vf):
                out.mux(p)
        for p in vs.encode(None):
            out.mux(p)


def frame_times(path: Path) -> List[Fraction]:
    """Each decoded frame's time from the first, in seconds."""
    import av

    with av.open(str(path)) as c:
        v = c.streams.video[0]
        pts = [f.pts for f in c.decode(v)]
    return [(p - pts[0]) * v.time_base for p in pts]


def write_header_only_clip(path: Path, width: int, height: int) -> None:
    """A Matroska file whose header says ``width`` x ``height`` MJPEG frames and whose one frame is not a
    picture: reading its size is fine, decoding it fails."""
    import av

    with av.open(str(path), "w") as out:
        vs = out.add_stream("mjpeg", rate=25)
        vs.width, vs.height, vs.pix_fmt = width, height, "yuvj420p"
        pkt = av.Packet(b"\xff\xd8 not a picture \xff\xd9")
        pkt.stream, pkt.pts, pkt.dts, pkt.time_base = vs, 0, 0, Fraction(1, 25)
        out.mux(pkt)
