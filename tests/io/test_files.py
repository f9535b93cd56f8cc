"""io/: images in any mode, outputs with their record, atomic writes, resumable state (no Caffe)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

from deepdream_caffe.errors import DeepDreamError
from deepdream_caffe.io.atomic import _host, atomic_output, sweep_dead_writers
from deepdream_caffe.io.image import load_image, read_metadata, save_image


def test_grey_alpha_and_16_bit_images_load_as_float_rgb(tmp_path):
    grey = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    Image.fromarray(grey).save(tmp_path / "g.png")
    x = load_image(tmp_path / "g.png")
    assert x.shape == (3, 4, 3) and x.dtype == np.float32
    assert np.array_equal(x[..., 0], grey) and np.array_equal(x[..., 0], x[..., 2])

    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[0, 0] = (10, 20, 30, 255)  # opaque: kept
    rgba[1, 1] = (10, 20, 30, 0)  # transparent: white, not the colour stored under it
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    x = load_image(tmp_path / "a.png")
    assert x[0, 0].tolist() == [10, 20, 30] and x[1, 1].tolist() == [255, 255, 255]

    Image.fromarray(np.array([[0, 65535]], np.uint16)).save(tmp_path / "16.png")
    assert load_image(tmp_path / "16.png")[0, :, 0].tolist() == pytest.approx([0, 255])


def test_bad_image_paths_are_one_line_errors(tmp_path):
    with pytest.raises(DeepDreamError, match="image not found"):
        load_image(tmp_path / "none.png")
    with pytest.raises(DeepDreamError, match="is a directory"):
        load_image(tmp_path)
    (tmp_path / "t.jpg").write_text("text")
    with pytest.raises(DeepDreamError, match="not an image"):
        load_image(tmp_path / "t.jpg")


def test_png_keeps_its_record_inside_other_formats_beside(tmp_path):
    img = np.full((4, 5, 3), 300.0, np.float32)  # clipped to 255 on the way out
    meta = {"seed": 3, "params": {"layer": "x"}}
    save_image(tmp_path / "o.png", img, meta)
    assert read_metadata(tmp_path / "o.png") == meta and not (tmp_path / "o.png.json").exists()
    assert np.asarray(Image.open(tmp_path / "o.png")).max() == 255
    save_image(tmp_path / "o.jpg", img, meta)
    assert json.loads((tmp_path / "o.jpg.json").read_text()) == meta == read_metadata(tmp_path / "o.jpg")
    with pytest.raises(DeepDreamError, match="image format"):
        save_image(tmp_path / "o.xyz", img)


def test_a_failed_atomic_write_leaves_the_old_file_and_no_temp(tmp_path):
    target = tmp_path / "f.bin"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with atomic_output(target) as f:
            f.write(b"new, half")
            raise RuntimeError("interrupted")
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.bin"]


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait(timeout=60)
    return p.pid


def test_temp_files_of_killed_writers_on_this_host_are_swept_and_no_others(tmp_path):
    dead, live, host = _dead_pid(), os.getppid(), _host()
    names = {
        "dead": f".a.png.{host}-{dead}-x1y2.tmp",
        "dead_suffixed": f".v.mp4.{host}-{dead}-q9_z.tmp.mp4",
        "live": f".a.png.{host}-{live}-k3j4.tmp",
        "other_host": f".a.png.elsewhere-{dead}-m5n6.tmp",
        "untagged": ".a.png.abc123.tmp",  # the name before writers were tagged: whose it is, nobody knows
        "user_file": f"notes.{host}-{dead}-a.tmp",  # not hidden: not ours
    }
    for n in names.values():
        (tmp_path / n).write_bytes(b"partial")
    with atomic_output(tmp_path / "b.bin") as f:
        f.write(b"x")
    left = {p.name for p in tmp_path.iterdir()}
    assert left == {"b.bin"} | {names[k] for k in ("live", "other_host", "untagged", "user_file")}
    assert sweep_dead_writers(tmp_path) == 0  # once per folder and process


def test_a_writer_killed_mid_write_leaves_a_temp_the_next_write_removes(tmp_path):
    code = ("import sys, time; from deepdream_caffe.io.atomic import atomic_output\n"
            "with atomic_output(sys.argv[1]) as f:\n    f.write(b'half'); f.flush(); print('in', flush=True); "
            "time.sleep(60)\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [os.getcwd(), os.environ.get("PYTHONPATH")])))
    p = subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "out.png")], stdout=subprocess.PIPE, text=True,
                         env=env)
    try:
        assert p.stdout.readline().strip() == "in"
        os.kill(p.pid, signal.SIGKILL)
        p.wait(timeout=30)
    finally:
        p.kill()
    stale = [q.name for q in tmp_path.iterdir()]
    assert len(stale) == 1 and stale[0].startswith(".out.png.") and not (tmp_path / "out.png").exists()
    deadline = time.monotonic() + 10
    while os.path.exists(f"/proc/{p.pid}") and time.monotonic() < deadline:  # reaped: the pid is gone
        time.sleep(0.01)
    with atomic_output(tmp_path / "out.png") as f:
        f.write(b"whole")
    assert [q.name for q in tmp_path.iterdir()] == ["out.png"] and (tmp_path / "out.png").read_bytes() == b"whole"
