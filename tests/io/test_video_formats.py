"""WebM (VP9) and animated PNG / WebP outputs (issue 26, item 5): written, read back, refused in one line."""
from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import pytest
from PIL import Image

from deepdream_caffe.cli.main import main
from deepdream_caffe.errors import DeepDreamError
from deepdream_caffe.io.video import check_video_output, open_source, write_video
from video_clips import audio_codec_of, moving_square, stream_seconds, write_clip_with_audio


@pytest.fixture(scope="module")
def clip():
    return moving_square(n=6, width=64, height=64, side=16)


@pytest.mark.parametrize("rate", [Fraction(25), Fraction(10)])
def test_webm_is_vp9_with_its_frames_and_rate(tmp_path, clip, rate):
    out = tmp_path / "c.webm"
    assert write_video(out, clip.frames, rate) == 6
    with av.open(str(out)) as c:
        s = c.streams.video[0]
        assert (c.format.name.split(",")[0], s.codec_context.name) == ("matroska", "vp9")
        frames = list(c.decode(s))
        assert [round(float(f.time), 3) for f in frames] == [round(i / float(rate), 3) for i in range(6)]
    src = open_source(out)
    assert (src.frame_count, src.frame_rate, src.width, src.height) == (6, rate, 64, 64)
    # crf 18 keeps the picture: the moving square is where it was drawn.
    assert np.abs(frames[3].to_ndarray(format="rgb24").astype(float) - clip.frames[3]).mean() < 6


@pytest.mark.parametrize("name", ["c.apng", "c.webp"])
def test_animated_png_and_webp_hold_every_frame_at_the_rate_and_loop(tmp_path, clip, name):
    out = tmp_path / name
    assert write_video(out, clip.frames, Fraction(25)) == 6
    with Image.open(out) as im:
        assert (im.format, im.n_frames, im.size, im.info["loop"]) == (name[-4:].upper().replace("APNG", "PNG"), 6,
                                                                       (64, 64), 0)
        durations = []
        for i in range(im.n_frames):
            im.seek(i)
            im.load()  # WebP tells a frame's duration once it is decoded
            durations.append(im.info["duration"])
            if name.endswith(".apng"):  # lossless
                assert np.array_equal(np.asarray(im.convert("RGB")), np.uint8(np.clip(clip.frames[i], 0, 255)))
    assert durations == [40] * 6


def test_an_animation_has_no_sound_and_webm_takes_opus(tmp_path):
    frames = moving_square(n=5, width=64, height=64, side=16).frames
    src = tmp_path / "s.mp4"
    write_clip_with_audio(src, frames)
    assert main(["frames-to-video", str(src), str(tmp_path / "o.webm"), "-q"]) == 0
    assert audio_codec_of(tmp_path / "o.webm") == "opus"
    assert stream_seconds(tmp_path / "o.webm", "audio") == pytest.approx(0.2, abs=0.03)
    assert main(["frames-to-video", str(src), str(tmp_path / "o.apng"), "-q"]) == 0
    assert audio_codec_of(tmp_path / "o.apng") is None


def test_frames_to_video_writes_each_new_format(tmp_path, clip, capsys):
    folder = tmp_path / "f"
    folder.mkdir()
    for i, f in enumerate(clip.frames):
        Image.fromarray(np.uint8(f)).save(folder / f"{i:04d}.png")
    for name in ("x.webm", "x.apng", "x.webp"):
        assert main(["frames-to-video", str(folder), str(tmp_path / name), "--fps", "12"]) == 0
        assert f"wrote {tmp_path / name} (6 frames at 12 fps)" in capsys.readouterr().err
        assert open_source(tmp_path / name).frame_count == 6 if name == "x.webm" else \
            Image.open(tmp_path / name).n_frames == 6


@pytest.mark.parametrize("name,codec,fragment", [
    ("o.webm", "libx264", "cannot write libx264 video into o.webm"),
    ("o.apng", "libx264", "cannot write libx264 video into o.apng"),
    ("o.webp", "libx264", "a .webp holds only WEBP frames"),
    ("o.webm", "libnope", "no video encoder named 'libnope'"),
])
def test_codecs_a_format_cannot_take_are_one_line(tmp_path, name, codec, fragment):
    with pytest.raises(DeepDreamError, match=fragment) as e:
        check_video_output(tmp_path / name, 64, 48, codec)
    assert "\n" not in str(e.value)
    assert main(["frames-to-video", str(tmp_path), str(tmp_path / name), "--codec", codec]) == 1
