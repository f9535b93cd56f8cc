"""`video`, `zoom --video` and `frames-to-video` through the real console script, as a user runs them."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from fractions import Fraction

import numpy as np
import pytest
from PIL import Image

from cli_util import BIN, run_cli
from deepdream_caffe.cli.main import main
from deepdream_caffe.io.video import count_frames, open_source
from video_clips import audio_codec_of, moving_square, write_clip_with_audio, write_turned_clip


@pytest.fixture(scope="module")
def clip_file(tmp_path_factory):
    p = tmp_path_factory.mktemp("clip") / "square.mp4"
    write_clip_with_audio(p, moving_square(n=8).frames, rate=Fraction(25))
    return p


@pytest.fixture(scope="module")
def tiny_args(tiny_model):
    proto, weights = tiny_model
    return ["--prototxt", proto, "--weights", weights, "--layer", "a/output", "--iters", "1", "--octaves", "1",
            "--jitter", "8", "--seed", "3"]


@pytest.fixture(scope="module")
def dreamed(clip_file, tiny_args, tmp_path_factory):
    """An uninterrupted `video` run: its folder and output."""
    d = tmp_path_factory.mktemp("video")
    out = d / "out.mp4"
    r = run_cli(["video", clip_file, "-o", out, "--flow", "dis", "--blend", "0.5", "-q", *tiny_args])
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""  # --quiet: nothing at all
    return d, out


def _frames(path):
    return list(open_source(path).frames())


def test_video_keeps_count_size_rate_audio_and_records_the_run(dreamed, clip_file):
    d, out = dreamed
    src, back = open_source(clip_file), open_source(out)
    assert (back.frame_count, back.width, back.height, back.frame_rate) == (8, 160, 120, src.frame_rate)
    assert count_frames(out) == 8 and audio_codec_of(out) == "aac"
    meta = json.loads((d / "out.mp4.json").read_text())
    assert meta["command"] == "video" and meta["seed"] == 3
    assert meta["params"]["layer"] == "a/output" and meta["params"]["flow"] == "dis"
    assert meta["input_sha1"] and meta["weights_sha1"] and meta["blas_core"] is not None
    assert sorted(os.listdir(d)) == ["out.mp4", "out.mp4.json"]
    # The dream changed the frames: not a re-encode of the input.
    assert np.abs(_frames(out)[4] - _frames(clip_file)[4]).mean() > 2.0


def test_a_portrait_phone_video_is_dreamed_and_written_upright(tiny_args, tmp_path):
    stored = moving_square(n=3).frames  # 160x120 as stored, shown turned a quarter counter-clockwise
    phone = tmp_path / "phone.mp4"
    write_turned_clip(phone, stored, 90)
    out = tmp_path / "out.mp4"
    r = run_cli(["video", phone, "-o", out, "--flow", "none", *tiny_args])
    assert r.returncode == 0, r.stderr
    assert "turned 90 degrees upright, 120x160" in r.stderr
    back = open_source(out)
    assert (back.width, back.height, back.frame_count, back.quarter_turns) == (120, 160, 3, 0)
    got, upright = _frames(out)[1], np.rot90(stored[1])
    near = np.abs(got - upright).mean()
    assert near < np.abs(got - upright[::-1, ::-1]).mean() / 2  # the picture, not it upside down


def test_sigkill_mid_video_then_rerun_gives_the_same_frames(dreamed, clip_file, tiny_args, tmp_path):
    out = tmp_path / "killed.mp4"
    work = tmp_path / ".killed.mp4.frames"
    cmd = [str(BIN)] if BIN.exists() else [sys.executable, "-m", "deepdream_caffe.cli"]
    args = ["video", clip_file, "-o", out, "--flow", "dis", "--blend", "0.5", "-q", *tiny_args]
    proc = subprocess.Popen(cmd + [str(a) for a in args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    done_at_kill = 0
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            done_at_kill = len(list(work.glob("*.png"))) if work.is_dir() else 0
            if done_at_kill >= 3:
                break
            time.sleep(0.01)
        assert proc.poll() is None, f"the run ended before it could be killed: {proc.stderr.read()}"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert not out.exists() and 3 <= done_at_kill < 8
    print(f"killed with {done_at_kill} frames done")
    r = run_cli(args[:-len(tiny_args)] + tiny_args)
    assert r.returncode == 0, r.stderr
    a, b = _frames(dreamed[1]), _frames(out)
    assert len(a) == len(b) == 8
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not work.exists()


def test_zoom_writes_a_video_and_frames_to_video_a_gif(tiny_args, tmp_path, capsys):
    img = tmp_path / "in.png"
    Image.fromarray(np.uint8(moving_square(n=1).frames[0])).save(img)
    z = tmp_path / "zoom"
    r = run_cli(["zoom", img, "--frames", "3", "--out-dir", z, "--video", tmp_path / "zoom.mp4", "-q", *tiny_args])
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in z.glob("*.jpg")) == ["0000.jpg", "0001.jpg", "0002.jpg"]  # the folder stays
    src = open_source(tmp_path / "zoom.mp4")
    assert (count_frames(tmp_path / "zoom.mp4"), src.width, src.height, src.frame_rate) == (3, 160, 120, 25)
    assert json.loads((tmp_path / "zoom.mp4.json").read_text())["zoom"]["params"]["seed"] == 3
    # frames-to-video in process: the same parser and error handler, without another interpreter start.
    assert main(["frames-to-video", str(z), str(tmp_path / "zoom.gif"), "--fps", "10", "-q"]) == 0
    assert count_frames(tmp_path / "zoom.gif") == 3
    with Image.open(tmp_path / "zoom.gif") as im:
        assert im.size == (160, 120) and im.info["duration"] == 100
    assert json.loads((tmp_path / "zoom.gif.json").read_text())["command"] == "frames-to-video"
    assert capsys.readouterr().err == ""


def test_a_finished_zoom_dreams_nothing_and_still_writes_its_video(tiny_args, tmp_path):
    img = tmp_path / "in.png"
    Image.fromarray(np.uint8(moving_square(n=1).frames[0])).save(img)
    z = tmp_path / "zoom"
    args = ["zoom", img, "--frames", "3", "--out-dir", z, *tiny_args]
    assert run_cli(args).returncode == 0
    before = {p.name: p.stat().st_mtime_ns for p in z.glob("*.jpg")}
    i = args.index("--seed")
    again = args[:i] + args[i + 2:]  # without --seed: the folder's own seed
    r = run_cli([*again, "--video", tmp_path / "zoom.gif"])
    assert r.returncode == 0, r.stderr
    assert "all 3 frames exist" in r.stderr and "nothing to dream" in r.stderr
    assert "written" not in r.stderr and "continuing the sequence" not in r.stderr
    assert "octave" not in r.stderr  # no progress bar: nothing was dreamed
    assert {p.name: p.stat().st_mtime_ns for p in z.glob("*.jpg")} == before  # no frame rewritten
    assert sorted(p.name for p in z.iterdir()) == ["0000.jpg", "0001.jpg", "0002.jpg", "zoom.json"]
    assert count_frames(tmp_path / "zoom.gif") == 3


def _zero_frame_avi(path):
    import av

    with av.open(str(path), "w", format="avi") as c:
        s = c.add_stream("mpeg4", rate=25)
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        c.start_encoding()


@pytest.mark.parametrize("case", ["not_video", "zero_frames", "no_dir", "bad_codec", "codec_for_gif", "blend",
                                  "fps_for_video", "out_is_input", "empty_frames_dir", "zoom_video_suffix"])
def test_bad_input_is_one_line_and_leaves_nothing(case, clip_file, tiny_args, tmp_path, capsys):
    out = tmp_path / "out.mp4"
    src = clip_file
    extra = []
    argv = None
    if case == "not_video":
        src = tmp_path / "notes.mp4"
        src.write_text("not a video\n")
        fragment = "not a video file"
    elif case == "zero_frames":
        src = tmp_path / "empty.avi"
        _zero_frame_avi(src)
        fragment = "has no video frames"
    elif case == "no_dir":
        out = tmp_path / "missing" / "out.mp4"
        fragment = "output directory does not exist"
    elif case == "bad_codec":
        extra = ["--codec", "nope"]
        fragment = "no video encoder named 'nope'"
    elif case == "codec_for_gif":
        out = tmp_path / "out.gif"
        extra = ["--codec", "libx264"]
        fragment = "a .gif holds only GIF frames"
    elif case == "blend":
        extra = ["--blend", "2"]
        fragment = "--blend must be in [0, 1]"
    elif case == "fps_for_video":
        extra = ["--fps", "12"]
        fragment = "--fps is for frame folders"
    elif case == "out_is_input":
        src = tmp_path / "in.mp4"
        src.write_bytes(clip_file.read_bytes())
        out = src
        fragment = "refusing to overwrite the input"
    elif case == "empty_frames_dir":
        (tmp_path / "frames").mkdir()
        argv = ["frames-to-video", str(tmp_path / "frames"), str(out)]
        fragment = "no image frames"
    else:
        img = tmp_path / "in.png"
        Image.new("RGB", (64, 48)).save(img)
        argv = ["zoom", str(img), "--frames", "2", "--out-dir", str(tmp_path / "z"), "--video",
                str(tmp_path / "z.avi"), *map(str, tiny_args)]
        fragment = "cannot tell the video format"
    before = sorted(os.listdir(tmp_path))
    if argv is None:
        argv = ["video", str(src), "-o", str(out), *extra, *map(str, tiny_args)]
    assert main(argv) == 1
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert fragment in lines[0] and lines[0].startswith("deepdream-caffe: error: "), lines[0]
    assert sorted(os.listdir(tmp_path)) == before


def test_flow_choices_are_checked_by_the_parser(clip_file, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["video", str(clip_file), "-o", str(tmp_path / "o.mp4"), "--flow", "lucas-kanade"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "--flow" in err
