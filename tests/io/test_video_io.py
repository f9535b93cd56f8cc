"""Video in and out through PyAV and Pillow: real files written and read back, no Caffe."""
from __future__ import annotations

import json
import os
from fractions import Fraction

import av
import numpy as np
import pytest
from PIL import Image

from deepdream_caffe.errors import DeepDreamError
from deepdream_caffe.io.video import (
    as_rate,
    check_video_output,
    count_frames,
    open_source,
    write_video,
)
from video_clips import audio_codec_of, moving_square, stream_seconds, write_clip_with_audio, write_turned_clip


@pytest.fixture(scope="module")
def clip():
    return moving_square(n=8)


def _listing(d):
    return sorted(os.listdir(d))


@pytest.mark.parametrize("rate", [Fraction(25), Fraction(30000, 1001)])
def test_mp4_round_trip_keeps_count_size_rate_and_pixels(tmp_path, clip, rate):
    out = tmp_path / "c.mp4"
    assert write_video(out, clip.frames, rate) == 8
    src = open_source(out)
    assert (src.kind, src.width, src.height, src.frame_count, src.frame_rate) == ("video", 160, 120, 8, rate)
    assert src.audio_codec is None
    with av.open(str(out)) as c:
        v = c.streams.video[0]
        assert (v.codec_context.name, v.codec_context.pix_fmt) == ("h264", "yuv420p")
    back = list(src.frames())
    assert len(back) == count_frames(out) == 8
    luma = np.array([0.299, 0.587, 0.114], np.float32)
    err = [float(np.abs((a - b) @ luma).mean()) for a, b in zip(back, clip.frames)]
    off = [float(np.abs((a - b) @ luma).mean()) for a, b in zip(back[1:], clip.frames)]
    print("luma error per frame (crf 18):", [round(e, 2) for e in err], "against the next frame:", round(min(off), 2))
    assert max(err) < 2.5 and max(err) < min(off) / 2  # lossy (4:2:0, crf 18), but the same pictures in order
    assert _listing(tmp_path) == ["c.mp4"]  # no temp file left, no sidecar without metadata


def test_odd_sizes_are_padded_to_even_for_yuv420p(tmp_path):
    frames = [np.full((121, 161, 3), 10.0 * i, np.float32) for i in range(3)]
    out = tmp_path / "odd.mp4"
    write_video(out, frames, 25)
    src = open_source(out)
    assert (src.width, src.height, src.frame_count) == (162, 122, 3)
    last = list(src.frames())[2]
    # The extra column and row repeat the edge rather than adding black.
    assert abs(float(last[:, -1].mean()) - 20.0) < 2 and abs(float(last[-1].mean()) - 20.0) < 2


def test_gif_round_trip_and_its_comment(tmp_path, clip):
    out = tmp_path / "c.gif"
    assert write_video(out, clip.frames, 25, metadata={"seed": 3}) == 8
    assert count_frames(out) == 8
    src = open_source(out)
    assert (src.width, src.height) == (160, 120)
    with Image.open(out) as im:
        assert im.n_frames == 8 and im.info["duration"] == 40 and im.info["loop"] == 0
        assert json.loads(im.info["comment"]) == {"seed": 3}
    assert json.loads((tmp_path / "c.gif.json").read_text()) == {"seed": 3}


def test_metadata_in_the_container_comment_and_a_sidecar(tmp_path, clip):
    out = tmp_path / "m.mp4"
    meta = {"tool": "deepdream-caffe", "seed": 7, "params": {"blend": 0.5}}
    write_video(out, clip.frames[:2], 25, metadata=meta)
    with av.open(str(out)) as c:
        assert json.loads(c.metadata["comment"]) == meta
    assert json.loads((tmp_path / "m.mp4.json").read_text()) == meta


def test_aac_audio_is_copied_as_it_is(tmp_path, clip):
    src_path = tmp_path / "in.mp4"
    seconds = write_clip_with_audio(src_path, clip.frames)
    src = open_source(src_path)
    assert src.has_audio and src.audio_codec == "aac"
    out = tmp_path / "out.mp4"
    write_video(out, src.frames(), src.frame_rate, audio_from=src)
    assert audio_codec_of(out) == "aac"
    with av.open(str(src_path)) as a, av.open(str(out)) as b:
        pa = [bytes(p) for p in a.demux(a.streams.audio[0]) if p.size]
        pb = [bytes(p) for p in b.demux(b.streams.audio[0]) if p.size]
    assert pa == pb  # packet for packet: copied, not re-encoded
    assert abs(stream_seconds(out, "audio") - seconds) < 0.05


def _main_hz(path, index: int) -> float:
    """The strongest frequency in the first 1/8 s of audio track ``index`` (first channel)."""
    with av.open(str(path)) as c:
        s = c.streams.audio[index]
        pcm = np.concatenate([f.to_ndarray()[0] for f in c.decode(s)])[: 44100 // 8].astype(np.float64)
    return float(np.argmax(np.abs(np.fft.rfft(pcm))[1:]) + 1) * 44100 / len(pcm)


@pytest.mark.parametrize("fmt, suffix, out_suffix, codec", [(None, ".mp4", ".mp4", "aac"),
                                                            ("matroska", ".mkv", ".mp4", "pcm_s16le")])
def test_every_audio_track_is_carried_with_its_language(tmp_path, clip, fmt, suffix, out_suffix, codec):
    src_path = tmp_path / f"in{suffix}"
    write_clip_with_audio(src_path, clip.frames, audio_codec=codec, fmt=fmt, tracks=((440.0, "eng"), (880.0, "fra")))
    src = open_source(src_path)
    assert src.audio_tracks == 2 and "(+1 more track)" in src.describe()
    out = tmp_path / f"out{out_suffix}"
    write_video(out, src.frames(), src.frame_rate, audio_from=src)
    with av.open(str(out)) as c:
        tracks = [(s.codec_context.name, s.metadata.get("language")) for s in c.streams.audio]
    assert tracks == [("aac", "eng"), ("aac", "fra")]
    peaks = [_main_hz(out, i) for i in range(2)]  # each tone stays on its own track
    assert peaks[0] == pytest.approx(440, rel=0.05) and peaks[1] == pytest.approx(880, rel=0.05)


def test_audio_the_container_refuses_is_encoded_to_aac_and_cut_at_the_video_end(tmp_path, clip):
    src_path = tmp_path / "in.mkv"
    write_clip_with_audio(src_path, clip.frames, audio_codec="pcm_s16le", fmt="matroska")
    src = open_source(src_path)
    assert src.audio_codec == "pcm_s16le" and src.frame_count == 8  # counted from packets: MKV has no count
    out = tmp_path / "out.mp4"
    frames = list(src.frames())[:4]  # half the clip: the sound must stop with the picture
    write_video(out, frames, src.frame_rate, audio_from=src)
    assert audio_codec_of(out) == "aac"
    video_s, audio_s = stream_seconds(out, "video"), stream_seconds(out, "audio")
    print(f"video {video_s:.3f} s, audio {audio_s:.3f} s")
    assert video_s == pytest.approx(4 / 25)
    assert abs(audio_s - video_s) < 0.06  # AAC packets are 1024 samples (23 ms)


def test_gif_output_has_no_audio_and_needs_none(tmp_path, clip):
    src_path = tmp_path / "in.mp4"
    write_clip_with_audio(src_path, clip.frames[:3])
    src = open_source(src_path)
    write_video(tmp_path / "o.gif", src.frames(), src.frame_rate, audio_from=src)
    assert count_frames(tmp_path / "o.gif") == 3


def test_frame_folder_and_glob_sorted_with_numbers_as_numbers(tmp_path, clip):
    d = tmp_path / "frames"
    d.mkdir()
    order = [1, 2, 10]  # a plain sort would put 10 before 2
    for k, i in enumerate(order):
        Image.fromarray(np.uint8(clip.frames[k])).save(d / f"f{i}.png")
    (d / "notes.txt").write_text("not a frame")
    src = open_source(d, fps=12.5)
    assert [f.name for f in src.files] == ["f1.png", "f2.png", "f10.png"]
    assert (src.kind, src.frame_count, src.frame_rate, src.width, src.height) == ("frames", 3, Fraction(25, 2), 160, 120)
    got = list(src.frames(start=1))
    assert len(got) == 2 and np.array_equal(got[1], clip.frames[2])
    assert [f.name for f in open_source(str(d / "f1*.png")).files] == ["f1.png", "f10.png"]
    assert open_source(d).frame_rate == 25  # FFmpeg's default for image sequences


def test_video_file_frames_from_a_start_index(tmp_path, clip):
    out = tmp_path / "c.mkv"
    write_video(out, clip.frames, 25)
    src = open_source(out)
    all_frames = list(src.frames())
    later = list(src.frames(start=5))
    assert len(later) == 3 and all(np.array_equal(a, b) for a, b in zip(later, all_frames[5:]))


@pytest.mark.parametrize("degrees, turns", [(90, 1), (-90, 3), (180, 2)])
def test_a_phone_videos_display_matrix_is_applied(tmp_path, degrees, turns):
    stored = np.zeros((48, 80, 3), np.float32)
    stored[:, :12] = 255  # a white bar along the stored frame's left edge
    stored[:6, :, 0] = 255  # and a red one along its top
    path = tmp_path / "phone.mp4"
    write_turned_clip(path, [stored] * 3, degrees)
    src = open_source(path)
    assert src.quarter_turns == turns and f"turned {90 * turns} degrees" in src.describe()
    assert (src.width, src.height) == ((48, 80) if turns % 2 else (80, 48))  # the upright size
    frames = list(src.frames())
    assert len(frames) == 3 and frames[0].shape == (src.height, src.width, 3)
    # A counter-clockwise quarter turn takes the left edge to the bottom and the top edge to the left.
    white = (frames[0].min(axis=2) > 200)
    edge = {1: white[-12:, :], 3: white[:12, :], 2: white[:, -12:]}[turns]
    assert edge.mean() > 0.9 and white.mean() < 0.3
    back = open_source(tmp_path / "plain.mp4") if write_video(tmp_path / "plain.mp4", frames, 25) else None
    assert back.quarter_turns == 0 and (back.width, back.height) == (src.width, src.height)  # written upright


def test_frame_rates_as_people_write_them():
    assert as_rate(29.97) == Fraction(30000, 1001)
    assert as_rate("30000/1001") == Fraction(30000, 1001)
    assert as_rate(23.976) == Fraction(24000, 1001)
    assert as_rate(12.5) == Fraction(25, 2)
    for bad in ("fast", 0, -3, "1/0"):
        with pytest.raises(DeepDreamError, match="frame rate"):
            as_rate(bad)


# ---------------------------------------------------------------- bad input


def _zero_frame_video(path, fmt):
    with av.open(str(path), "w", format=fmt) as out:
        s = out.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        out.start_encoding()


def _audio_only_mp4(path):
    with av.open(str(path), "w") as out:
        s = out.add_stream("aac", rate=44100)
        s.layout = "mono"
        f = av.AudioFrame.from_ndarray(np.zeros((1, 4096), np.float32), format="fltp", layout="mono")
        f.sample_rate, f.pts = 44100, 0
        for p in list(s.encode(f)) + list(s.encode(None)):
            out.mux(p)


@pytest.mark.parametrize("case,fragment", [
    ("text", "not a video file"),
    ("empty", "not a video file"),
    ("zero_frames_avi", "has no video frames"),
    ("zero_frames_mp4", "has no video (frames|stream)"),  # FFmpeg drops an MP4 track without samples
    ("audio_only", "has no video stream"),
    ("image", "is one image, not a video"),
    ("missing", "input not found"),
    ("empty_dir", "no image frames"),
    ("no_match", "no image files match"),
    ("mixed_sizes", "all frames must have one size"),
    ("bad_frame", "not an image file"),
])
def test_bad_inputs_are_one_clear_error(tmp_path, case, fragment):
    p = tmp_path / "in.mp4"
    if case == "text":
        p.write_text("this is not a video\n" * 50)
    elif case == "empty":
        p.write_bytes(b"")
    elif case.startswith("zero_frames"):
        _zero_frame_video(p, "avi" if case.endswith("avi") else "mp4")
    elif case == "audio_only":
        _audio_only_mp4(p)
    elif case == "image":
        p = tmp_path / "in.png"
        Image.new("RGB", (8, 8)).save(p)
    elif case == "empty_dir":
        p = tmp_path / "d"
        p.mkdir()
    elif case == "no_match":
        p = tmp_path / "nothing*.png"
    elif case in ("mixed_sizes", "bad_frame"):
        p = tmp_path / "d"
        p.mkdir()
        Image.new("RGB", (8, 8)).save(p / "1.png")
        if case == "mixed_sizes":
            Image.new("RGB", (8, 9)).save(p / "2.png")
        else:
            (p / "2.png").write_text("no picture here")
    with pytest.raises(DeepDreamError, match=fragment) as e:
        open_source(p)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("name,codec,fragment", [
    ("o.avi", None, "cannot tell the video format"),
    ("o.png", None, "names one image"),
    ("o.mp4", "nope", "no video encoder named 'nope'"),
    ("o.mp4", "aac", "is an audio encoder"),
    ("o.mp4", "gif", "cannot write gif video into o.mp4"),
    ("o.gif", "libx264", "a .gif holds only GIF frames"),
])
def test_outputs_and_codecs_that_cannot_be_written(tmp_path, name, codec, fragment):
    with pytest.raises(DeepDreamError, match=fragment):
        check_video_output(tmp_path / name, 64, 48, codec)
    with pytest.raises(DeepDreamError, match=fragment):
        write_video(tmp_path / name, [np.zeros((48, 64, 3), np.float32)], 25, codec=codec)
    assert _listing(tmp_path) == []


def test_unwritable_destinations(tmp_path):
    frame = [np.zeros((48, 64, 3), np.float32)]
    with pytest.raises(DeepDreamError, match="output directory does not exist"):
        write_video(tmp_path / "no" / "o.mp4", frame, 25)
    (tmp_path / "file").write_text("x")
    with pytest.raises(DeepDreamError, match="output directory does not exist"):
        write_video(tmp_path / "file" / "o.mp4", frame, 25)
    (tmp_path / "dir.mp4").mkdir()
    with pytest.raises(DeepDreamError, match="is a directory"):
        write_video(tmp_path / "dir.mp4", frame, 25)
    with pytest.raises(DeepDreamError, match="no frames to write"):
        write_video(tmp_path / "o.mp4", [], 25)
    assert _listing(tmp_path) == ["dir.mp4", "file"]


@pytest.mark.parametrize("name", ["o.mp4", "o.gif"])
def test_a_failure_mid_encode_leaves_nothing_and_keeps_the_old_output(tmp_path, clip, name):
    out = tmp_path / name
    write_video(out, clip.frames[:2], 25)
    before = out.read_bytes()

    def frames():
        yield from clip.frames[:3]
        raise DeepDreamError("the dream stopped")

    with pytest.raises(DeepDreamError, match="the dream stopped"):
        write_video(out, frames(), 25)
    assert out.read_bytes() == before
    assert _listing(tmp_path) == [name]
    # A frame of another size is refused the same way.
    with pytest.raises(DeepDreamError, match="frame 1 is 80x60"):
        write_video(out, [clip.frames[0], np.zeros((60, 80, 3), np.float32)], 25)
    assert out.read_bytes() == before and _listing(tmp_path) == [name]
