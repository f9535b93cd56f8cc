"""Zoom motion (rotate, pan, zooming out) and keyframe schedules for zooms and videos (issue 26, items 4 and 5)."""
from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest
from PIL import Image

from cli_util import assert_one_line_error, run_cli
from deepdream_caffe.app.config import DreamConfig, ZoomConfig
from deepdream_caffe.app.netspec import NetSource
from deepdream_caffe.app.pipeline import zoom_file
from deepdream_caffe.app.reporting import Reporter
from deepdream_caffe.app.video import VideoConfig, video_file
from deepdream_caffe.dream.flow import move, zoom_in
from deepdream_caffe.dream.keyframes import Keyframes, read_keyframes
from deepdream_caffe.dream.params import Ascent, Octaves
from deepdream_caffe.errors import DeepDreamError


def _bar(h=60, w=80, length=25):
    """A bright bar from the centre (h/2, w/2) to the right on black."""
    img = np.zeros((h, w, 3), np.float32)
    img[h // 2, w // 2:w // 2 + length] = 255
    return img


def _angle(img):
    """Direction (degrees counterclockwise from the right) of the bright pixels as seen from the centre."""
    ys, xs = np.nonzero(img[..., 0] > 60)
    wts = img[ys, xs, 0]
    h, w = img.shape[:2]
    return math.degrees(math.atan2(-np.average(ys - h / 2, weights=wts), np.average(xs - w / 2, weights=wts)))


@pytest.mark.parametrize("deg", [30.0, -45.0, 90.0])
def test_rotate_turns_the_picture_counterclockwise_by_its_degrees(deg):
    assert _angle(_bar()) == pytest.approx(0.0, abs=1.5)
    assert _angle(move(_bar(), 0.0, deg)) == pytest.approx(deg, abs=1.5)


def test_pan_moves_the_picture_by_its_pixels():
    img = np.float32(np.random.RandomState(0).randint(0, 256, (40, 50, 3)))
    out = move(img, 0.0, 0.0, (5.0, -3.0))  # 5 right, 3 up
    assert np.array_equal(out[:-3, 5:], img[3:, :-5])  # whole pixels: the same values, not resampled


def test_negative_scale_zooms_out_and_default_zoom_is_the_notebooks():
    img = np.zeros((60, 60, 3), np.float32)
    img[20:40, 20:40] = 255  # a 20-pixel square at the centre
    small = move(img, -0.25, 0.0)  # 1/(1+0.25): to 16 pixels
    side = np.sqrt((small[..., 0] > 128)[10:50, 10:50].sum())
    assert side == pytest.approx(16, abs=1)
    rnd = np.float32(np.random.RandomState(1).randint(0, 256, (37, 45, 3)))
    assert np.array_equal(move(rnd, 0.05), zoom_in(rnd, 0.05))
    assert not np.array_equal(move(rnd, 0.05, 0.5), zoom_in(rnd, 0.05))


def test_keyframes_interpolate_numbers_and_hold_the_layer():
    k = Keyframes.from_dicts([
        {"frame": 0, "scale": 0.05, "pan": [0, 0], "layer": "conv1"},
        {"frame": 10, "scale": -0.05, "rotate": 2, "pan": [4, -2]},
        {"frame": 20, "layer": "a/output", "rotate": 4, "step_size": 3},
    ])
    assert [k.at("scale", f, 0.5) for f in (0, 5, 10, 30)] == pytest.approx([0.05, 0.0, -0.05, -0.05])
    assert [k.at("rotate", f, 0.5) for f in (0, 9, 10, 15, 20, 99)] == pytest.approx([0.5, 0.5, 2, 3, 4, 4])
    assert k.at("pan", 5, (0, 0)) == pytest.approx((2, -1))
    assert [k.at("layer", f, None) for f in (0, 19, 20, 40)] == ["conv1", "conv1", "a/output", "a/output"]
    assert (k.at("step_size", 19, 1.5), k.at("step_size", 20, 1.5), k.at("step_size", 90, 1.5)) == (1.5, 3, 3)
    assert k.layers() == ("conv1", "a/output") and k.given() == ("scale", "rotate", "pan", "layer", "step_size")
    zoom = ZoomConfig(frames=30, scale=0.1, rotate=1.0, keyframes=Keyframes.from_dicts([{"frame": 0, "rotate": 3}]))
    assert zoom.motion(7) == (0.1, 3.0, (0.0, 0.0))


@pytest.mark.parametrize("text,fragment", [
    ("[[key]]\nframe = 5\n[[key]]\nframe = 2\n", "the key at frame 2 comes after the one at frame 5"),
    ("[[key]]\nframe = 0\n[[key]]\nframe = 0\n", "the key at frame 0 comes after"),
    ("[[key]]\nframe = 0\nzoom = 0.1\n", "unknown setting 'zoom'"),
    ("fps = 3\n[[key]]\nframe = 0\n", "unknown table or setting 'fps'"),
    ("[[key]]\nframe = 0\nscale = \"big\"\n", "scale must be in (-1, 1), got 'big'"),
    ("[[key]]\nframe = 0\nscale = nan\n", "scale must be in (-1, 1), got nan"),
    ("[[key]]\nframe = 0\nrotate = inf\n", "rotate must be in [-180, 180]"),
    ("[[key]]\nframe = 0\nstep_size = true\n", "step_size must be positive"),
    ("[[key]]\nframe = 0\npan = [1]\n", "pan must be [dx, dy]"),
    ("[[key]]\nframe = 0\npan = [1, nan]\n", "pan must be finite numbers"),
    ("[[key]]\nframe = 1.5\n", "frame must be a whole number"),
    ("[[key]]\nscale = 0.1\n", "key 1 has no frame"),
    ("[[key]]\nframe = 0\nlayer = 3\n", "layer must be a layer's name"),
    ("", "no keys"),
    ("[[key]\n", "is not TOML"),
])
def test_bad_keyframe_files_are_one_line(tmp_path, text, fragment):
    p = tmp_path / "k.toml"
    p.write_text(text)
    with pytest.raises(DeepDreamError) as e:
        read_keyframes(p)
    assert fragment in str(e.value) and str(p) in str(e.value) and "\n" not in str(e.value)


def test_a_keyframe_file_that_is_not_a_file_is_refused_without_waiting(tmp_path):
    fifo = tmp_path / "k.toml"
    os.mkfifo(fifo)
    for path, fragment in ((fifo, "FIFO"), (tmp_path, "directory"), (tmp_path / "none.toml", "not found")):
        with pytest.raises(DeepDreamError, match=fragment):
            read_keyframes(path)


def _photo(path, h=32, w=32):
    Image.fromarray(np.random.RandomState(0).randint(0, 256, (h, w, 3)).astype(np.uint8)).save(path)
    return path


def _config(tiny_model, **kw):
    return DreamConfig(net=NetSource(prototxt=tiny_model[0], weights=tiny_model[1]), layer="a/output",
                       solver=Ascent(iter_n=1, jitter=2), octaves=Octaves(1), seed=5, **kw)


class _StopAfter(Reporter):
    """Ctrl-C as the note of frame ``n`` is given (the frame is on disk, the next not begun)."""

    def __init__(self, n):
        super().__init__()
        self.n = n

    def note(self, message):
        if message.startswith(f"frame {self.n}/"):
            raise KeyboardInterrupt


def _frames(d):
    return {p.name: p.read_bytes() for p in sorted(d.glob("*.jpg"))}


def test_zoom_schedule_changes_the_frames_it_says_is_recorded_and_resumes_bit_identical(tiny_model, tmp_path):
    src = _photo(tmp_path / "in.png")
    schedule = Keyframes.from_dicts([
        {"frame": 0, "scale": 0.1},
        {"frame": 2, "layer": "a/output", "rotate": 0, "pan": [0, 0], "step_size": 1.5},
        {"frame": 3, "layer": "conv1", "rotate": 10, "pan": [2, 1], "step_size": 3}])
    zoom = ZoomConfig(frames=5, keyframes=schedule)
    zoom_file(src, tmp_path / "plain", _config(tiny_model), ZoomConfig(frames=5, scale=0.1))
    zoom_file(src, tmp_path / "whole", _config(tiny_model), zoom)
    plain, whole = _frames(tmp_path / "plain"), _frames(tmp_path / "whole")
    # Frames 0-2 are the plain zoom's (scale 0.1, a/output); from frame 3 on the layer, step and motion changed.
    assert [plain[n] == whole[n] for n in sorted(plain)] == [True, True, True, False, False]
    record = json.loads((tmp_path / "whole" / "zoom.json").read_text())
    assert record["params"]["keyframes"] == schedule.describe()
    assert record["params"]["keyframes"][2] == {"frame": 3, "layer": "conv1", "rotate": 10.0, "pan": [2.0, 1.0],
                                                "step_size": 3.0}

    with pytest.raises(KeyboardInterrupt):
        zoom_file(src, tmp_path / "cut", _config(tiny_model), zoom, reporter=_StopAfter(3))
    assert sorted(_frames(tmp_path / "cut")) == ["0000.jpg", "0001.jpg", "0002.jpg"]
    assert zoom_file(src, tmp_path / "cut", _config(tiny_model), zoom) == 3
    assert _frames(tmp_path / "cut") == whole
    other = ZoomConfig(frames=5, keyframes=Keyframes.from_dicts([{"frame": 0, "scale": 0.1, "rotate": 1}]))
    with pytest.raises(DeepDreamError, match="other keyframes"):
        zoom_file(src, tmp_path / "cut", _config(tiny_model), other)
    # The record is never written over the schedule it was read from.
    (tmp_path / "cut" / "zoom.json").rename(tmp_path / "keys.json")
    (tmp_path / "keys.json").write_text('[[key]]\nframe = 0\nscale = 0.1\n')
    mine = ZoomConfig(frames=1, keyframes=read_keyframes(tmp_path / "keys.json"))
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "zoom.json").symlink_to(tmp_path / "keys.json")
    with pytest.raises(DeepDreamError, match="refusing to overwrite the input"):
        zoom_file(src, tmp_path / "d", _config(tiny_model), mine)


def test_zoom_cli_motion_flags_and_bad_schedules(tiny_model, tmp_path):
    src = _photo(tmp_path / "in.png")
    net = ["--prototxt", tiny_model[0], "--weights", tiny_model[1], "--layer", "a/output", "--iters", "1",
           "--octaves", "1", "--seed", "3", "-q"]
    r = run_cli(["zoom", src, "--out-dir", tmp_path / "z", "--frames", "2", "--scale=-0.1", "--rotate", "5",
                 "--pan=2,-1", *net])
    assert r.returncode == 0, r.stderr
    params = json.loads((tmp_path / "z" / "zoom.json").read_text())["params"]
    assert (params["scale"], params["rotate"], params["pan"]) == (-0.1, 5.0, [2.0, -1.0])

    bad = tmp_path / "bad.toml"
    bad.write_text('[[key]]\nframe = 0\nlayer = "no/such"\n')
    r = run_cli(["zoom", src, "--out-dir", tmp_path / "b", "--frames", "2", "--keyframes", bad, *net])
    assert_one_line_error(r, "no/such")
    assert not (tmp_path / "b").exists()
    bad.write_text('[[key]]\nframe = 3\n[[key]]\nframe = 1\n')
    assert_one_line_error(run_cli(["zoom", src, "--out-dir", tmp_path / "b", "--keyframes", bad, *net]),
                          "comes after")
    bad.write_text('[[key]]\nframe = 0\nrotate = 3\n')
    assert_one_line_error(run_cli(["video", tmp_path, "-o", tmp_path / "v", "--keyframes", bad, *net]),
                          "a video takes layer, step_size in its keys, not rotate")
    assert_one_line_error(run_cli(["zoom", src, "--out-dir", tmp_path / "b", "--pan", "1;2", *net]), "DX,DY", code=2)
    assert not (tmp_path / "b").exists()


def test_video_schedule_changes_layer_and_strength_from_its_frame(tiny_model, tmp_path):
    clip = tmp_path / "clip"
    clip.mkdir()
    for i in range(3):
        _photo(clip / f"{i}.png")
    cfg = _config(tiny_model)
    video_file(clip, tmp_path / "plain", cfg, VideoConfig(blend=0.0))
    schedule = Keyframes.from_dicts([{"frame": 1, "layer": "a/output"}, {"frame": 2, "layer": "conv1",
                                                                        "step_size": 4}])
    video_file(clip, tmp_path / "kf", cfg, VideoConfig(blend=0.0, keyframes=schedule))
    same = [(tmp_path / "plain" / n).read_bytes() == (tmp_path / "kf" / n).read_bytes()
            for n in ("000000.png", "000001.png", "000002.png")]
    assert same == [True, True, False]
    assert json.loads((tmp_path / "kf" / "video.json").read_text())["params"]["keyframes"] == schedule.describe()
    with pytest.raises(DeepDreamError, match="a video takes layer, step_size in its keys, not scale"):
        VideoConfig(keyframes=Keyframes.from_dicts([{"frame": 0, "scale": 0.1}]))
