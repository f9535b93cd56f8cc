"""Issue 28, classes 1, 2 and 10: what a run writes never replaces what it reads, a user's file, or anything outside.

Generated: every command that writes (dream, visualize, zoom, video,
frames-to-video, batch, atlas) x every path it writes (output, record,
state, frame, work folder, frame folder, video, sheet, page) x every
file it reads (image, guide, init, labels, keyframes, prototxt, weights,
frames) x {the same file, a symlink to it, a hard link to it}, and each
written path also as an
existing folder, a folder that is a symlink, a folder holding a planted
symlink, and a user's own file at a record's place. Each runs ``main()``
in this process (the refusal comes before any net loads) and asserts one
line on stderr, exit != 0, and the folder exactly as it was: the input's
bytes, and nothing new anywhere.

A fixed sample runs by default; DEEPDREAM_CAFFE_ABUSE_ALL=1 runs all.
"""
from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from typing import Callable, Dict, List, Tuple

import numpy as np
import pytest
from PIL import Image

from abuse_nets import stable_sample
from cli_util import BIN
from deepdream_caffe.app.run import RunFiles, lock_path, output_lock
from deepdream_caffe.cli.main import main
from deepdream_caffe.errors import DeepDreamError
from deepdream_caffe.io.atomic import _host, sweep_dead_writers
from deepdream_caffe.io.video import write_video

RUN_ALL = os.environ.get("DEEPDREAM_CAFFE_ABUSE_ALL") == "1"
SAMPLE = 60
DOCUMENTED = 313  # docs/reliability.md cites it; test_the_documented_count_is_honest keeps it so

# ---------------------------------------------------------------- the commands, their reads and their writes

Paths = Dict[str, str]  # role -> path relative to the case's folder
NET = {"prototxt": "net/deploy.prototxt", "weights": "net/tiny.caffemodel"}
SMALL = ["--layer", "a/output", "--iters", "1", "--octaves", "1", "--jitter", "2", "-q"]


def _net(p: Paths) -> List[str]:
    return ["--prototxt", p["prototxt"], "--weights", p["weights"]]


class Command:
    """A command line built from its paths: ``reads`` and ``writes`` map roles to where they are."""

    def __init__(self, name: str, reads: Paths, writes: Dict[str, Callable[[Paths], str]],
                 argv: Callable[[Paths], List[str]], folders: Tuple[str, ...] = (), records: Tuple[str, ...] = (),
                 frame: str = ""):
        self.name, self.reads, self.writes, self.argv = name, reads, writes, argv
        self.folders, self.records, self.frame = folders, records, frame  # frame: a frame's name in its folder


def _stem(p: str) -> str:
    return Path(p).stem


COMMANDS = [
    Command("dream", {"input": "in.png", "guide": "g.png", **NET},
            {"output": lambda p: "out.jpg", "record": lambda p: "out.jpg.json",
             "state": lambda p: ".out.jpg.dream-state.npz"},
            lambda p: ["dream", p["input"], "-o", "out.jpg", "--guide", p["guide"], *_net(p), *SMALL],
            records=("record",)),
    Command("visualize", {"init": "init.png", "labels": "labels.txt", **NET},
            {"output": lambda p: "out.jpg", "record": lambda p: "out.jpg.json",
             "state": lambda p: ".out.jpg.dream-state.npz"},
            lambda p: ["visualize", "--class", "1", "-o", "out.jpg", "--init", p["init"], "--labels", p["labels"],
                       *_net(p), "--iters", "1", "-q"],
            records=("record",)),
    Command("zoom", {"input": "in.png", "guide": "g.png", "keyframes": "keys.toml", **NET},
            {"folder": lambda p: "z", "frame": lambda p: "z/0000.jpg", "record": lambda p: "z/zoom.json",
             "video": lambda p: "z.gif", "video record": lambda p: "z.gif.json"},
            lambda p: ["zoom", p["input"], "--out-dir", "z", "--frames", "1", "--video", "z.gif",
                       "--guide", p["guide"], "--keyframes", p["keyframes"], *_net(p), *SMALL],
            folders=("folder",), records=("record", "video record"), frame="0000.jpg"),
    Command("video", {"frame": "clip/0000.png", "guide": "g.png", "keyframes": "keys.toml", **NET},
            {"output": lambda p: "v.gif", "record": lambda p: "v.gif.json", "work folder": lambda p: ".v.gif.frames"},
            lambda p: ["video", "clip", "-o", "v.gif", "--guide", p["guide"], "--keyframes", p["keyframes"],
                       *_net(p), *SMALL],
            folders=("work folder",), records=("record",), frame="000000.png"),
    Command("video to frames", {"frame": "clip/0000.png", "guide": "g.png", **NET},
            {"folder": lambda p: "vf", "frame": lambda p: "vf/000000.png", "record": lambda p: "vf/video.json"},
            lambda p: ["video", "clip", "-o", "vf", "--guide", p["guide"], *_net(p), *SMALL],
            folders=("folder",), records=("record",), frame="000000.png"),
    Command("frames-to-video", {"frame": "clip/0000.png"},
            {"output": lambda p: "o.gif", "record": lambda p: "o.gif.json"},
            lambda p: ["frames-to-video", "clip", "o.gif", "-q"], records=("record",)),
    Command("batch", {"input": "in.png", "guide": "g.png", **NET},
            {"output": lambda p: f"outs/{_stem(p['input'])}.jpg", "record": lambda p: f"outs/{_stem(p['input'])}.jpg.json",
             "sheet": lambda p: "sheet.png"},
            lambda p: ["batch", p["input"], "--out-dir", "outs", "--sheet", "sheet.png", "--guide", p["guide"],
                       "--workers", "1", "--no-dashboard", *_net(p), *SMALL],
            records=("record",)),
    Command("atlas", {"image": "in.png", **NET},
            {"folder": lambda p: "site", "page": lambda p: "site/index.html"},
            lambda p: ["atlas", "--image", p["image"], "-o", "site", "--workers", "1", "--no-dashboard", *_net(p),
                       "--layers", "a/output", *SMALL[2:]],
            folders=("folder",)),
]
BY_NAME = {c.name: c for c in COMMANDS}
# Reads that are one of a folder's files: "the same file" would take it out of the folder it is read from.
MEMBERS = {"frame"}


def _cases() -> List[Tuple[str, str, str, str]]:
    """(command, written role, read role or "", attack) of every case."""
    cases = []
    for c in COMMANDS:
        for w, where in c.writes.items():
            for r in c.reads:
                for kind in ("same file", "symlink", "hard link"):
                    if kind == "same file":
                        moved = dict(c.reads, **{r: where(c.reads)})
                        if r in MEMBERS or where(moved) != where(c.reads):
                            continue  # the written path moves with the read one: no longer the same file
                    cases.append((c.name, w, r, kind))
            if w in c.folders:
                cases.append((c.name, w, "", "folder is a symlink"))
                if c.frame:
                    cases.append((c.name, w, "", "planted symlink"))
            elif w != "state":  # a state that is a folder is set aside, and the run starts over
                cases.append((c.name, w, "", "a folder"))
            if w in c.records or (c.name == "batch" and w == "output"):
                cases.append((c.name, w, "", "user's own file"))
    return cases


CASES = _cases()


def test_the_documented_count_is_honest():
    assert len(CASES) == DOCUMENTED


# ---------------------------------------------------------------- building a case


def _image(path: Path, seed: int = 0, size=(40, 48)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = np.random.RandomState(seed).randint(0, 256, (*size, 3)).astype(np.uint8)
    Image.fromarray(arr).save(path, format="PNG")  # whatever the name says: the bytes are a PNG


def _lay_out(d: Path, paths: Paths, tiny_model) -> None:
    """The read files at their places (images, the tiny net, labels, a two-frame clip)."""
    for role, rel in paths.items():
        p = d / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        if role in ("prototxt", "weights"):
            shutil.copy(tiny_model[0 if role == "prototxt" else 1], p)
        elif role == "labels":
            p.write_text("".join(f"class {i}\n" for i in range(5)))
        elif role == "keyframes":
            p.write_text("[[key]]\nframe = 0\nstep_size = 1.5\n")
        else:
            _image(p, seed=len(rel))
    if "frame" in paths:
        _image(d / "clip/0001.png", seed=9)


def _snapshot(d: Path) -> Dict[str, object]:
    """Every path under ``d`` (links not followed): its bytes, its link target, or "folder"."""
    out: Dict[str, object] = {}
    for root, dirs, files in os.walk(d):
        for name in dirs + files:
            p = Path(root) / name
            rel = str(p.relative_to(d))
            out[rel] = (f"-> {os.readlink(p)}" if p.is_symlink() else "folder" if p.is_dir() else p.read_bytes())
    return out


def _run(argv: List[str], capsys, cwd: Path) -> Tuple[int, str]:
    """main() in this process, in ``cwd``, bounded: (exit code, stderr)."""
    out: Dict[str, object] = {}
    old = os.getcwd()
    os.chdir(cwd)
    try:
        def go():
            try:
                out["rc"] = main([str(a) for a in argv])
            except SystemExit as e:
                out["rc"] = e.code

        t = threading.Thread(target=go, daemon=True)
        t.start()
        t.join(120)
        assert not t.is_alive(), f"blocked: {argv}"
    finally:
        os.chdir(old)
    return out["rc"], capsys.readouterr().err


def _one_line(rc, err) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert rc not in (0, None), (rc, err)
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def _attack(d: Path, c: Command, w: str, r: str, kind: str, tiny_model) -> Paths:
    """Plant the attack in ``d``; returns the paths the command line uses."""
    paths = dict(c.reads)
    target = c.writes[w](paths)
    if kind == "same file":
        paths[r] = target
    _lay_out(d, paths, tiny_model)
    at = d / target
    at.parent.mkdir(parents=True, exist_ok=True)
    if kind == "symlink":
        at.symlink_to(d / paths[r])
    elif kind == "hard link":
        os.link(d / paths[r], at)
    elif kind == "a folder":
        at.mkdir()
    elif kind == "user's own file":
        at.write_text('{"mine": "my notes"}\n' if at.suffix == ".json" else "my own picture")
    elif kind == "folder is a symlink":
        elsewhere = d / "elsewhere"
        elsewhere.mkdir()
        (elsewhere / "keep.txt").write_text("someone's file")
        at.symlink_to(elsewhere)
    elif kind == "planted symlink":
        at.mkdir()
        _image(d / "elsewhere/photo.png", seed=7)  # a photo of the user's, not an input of this run
        (at / c.frame).symlink_to(d / "elsewhere/photo.png")
    return paths


@pytest.mark.parametrize("cmd,written,read,kind", [
    pytest.param(*c, id=f"{c[0]}: {c[1]} {c[3]} {c[2]}".strip())
    for c in stable_sample(CASES, None if RUN_ALL else SAMPLE, key=lambda c: "|".join(c))])
def test_a_write_never_replaces_an_input_or_a_users_file(cmd, written, read, kind, tmp_path, tiny_model, capsys):
    c = BY_NAME[cmd]
    paths = _attack(tmp_path, c, written, read, kind, tiny_model)
    before = _snapshot(tmp_path)
    line = _one_line(*_run(c.argv(paths), capsys, tmp_path))
    assert any(f in line for f in ("refusing", "is a folder", "not a folder", "not a record", "not made by")), line
    assert _snapshot(tmp_path) == before


# ---------------------------------------------------------------- the issue's own cases


@pytest.fixture
def photo(tmp_path):
    p = tmp_path / "a.png"
    _image(p)
    return p


@pytest.mark.parametrize("ext", ["./escaped.png", "../up.png", "/abs.png", "png/..", ".j pg", ".png\n"])
def test_batch_ext_must_be_a_plain_extension(ext, tmp_path, photo, tiny_model, capsys):
    (tmp_path / "outs").mkdir()
    before = _snapshot(tmp_path.parent)
    argv = ["batch", photo, "--out-dir", tmp_path / "outs", "--ext", ext, "--workers", "1", "--no-dashboard",
            "--prototxt", tiny_model[0], "--weights", tiny_model[1], *SMALL]
    assert "--ext" in _one_line(*_run(argv, capsys, tmp_path))
    assert _snapshot(tmp_path.parent) == before


@pytest.mark.parametrize("sheet,tile,fragment", [
    ("missing/sheet.png", 192, "does not exist"),
    ("sheet.jpg", 200000, "smaller --sheet-tile"),
])
def test_a_sheet_that_cannot_be_written_is_refused_before_the_batch(sheet, tile, fragment, tmp_path, photo,
                                                                    tiny_model, capsys):
    (tmp_path / "outs").mkdir()
    before = _snapshot(tmp_path)
    argv = ["batch", photo, "--out-dir", "outs", "--sheet", sheet, "--sheet-tile", str(tile), "--workers", "1",
            "--no-dashboard", "--prototxt", tiny_model[0], "--weights", tiny_model[1], *SMALL]
    assert fragment in _one_line(*_run(argv, capsys, tmp_path))
    assert _snapshot(tmp_path) == before


def test_the_temp_sweep_leaves_other_users_files(tmp_path):
    dead = 2**22 + 1  # a pid no process has (above the default pid_max)
    host = _host()
    mine, theirs = (tmp_path / f".{n}.png.{host}-{dead}-x.tmp" for n in ("mine", "theirs"))
    mine.write_bytes(b"1")
    theirs.write_bytes(b"2")
    try:
        os.chown(theirs, 65534, 65534)
    except PermissionError:
        pytest.skip("changing a file's owner needs root")
    assert sweep_dead_writers(tmp_path) == 1
    assert not mine.exists() and theirs.read_bytes() == b"2"


def test_a_second_run_writing_the_same_output_is_refused(tmp_path, photo, tiny_model, capsys):
    out = tmp_path / "out.png"
    argv = ["dream", photo, "-o", out, "--prototxt", tiny_model[0], "--weights", tiny_model[1], *SMALL]
    with output_lock(out):
        assert lock_path(out).exists()
        assert "another run is writing" in _one_line(*_run(argv, capsys, tmp_path))
        assert not out.exists()
        with pytest.raises(DeepDreamError, match="another run is writing"):
            with output_lock(out):
                pass
    assert not lock_path(out).exists()  # released: the lock file goes with it
    rc, err = _run(argv, capsys, tmp_path)
    assert rc == 0, err
    assert out.exists() and not lock_path(out).exists()


@pytest.mark.parametrize("cmd", ["video", "frames-to-video"])
def test_a_video_input_named_like_the_outputs_record_is_kept(cmd, tmp_path, tiny_model, capsys):
    src = tmp_path / "clip.gif.json"  # a GIF, whatever its name says
    write_video(tmp_path / "c.gif", [np.full((16, 16, 3), 9 * i, np.uint8) for i in range(2)])
    (tmp_path / "c.gif").rename(src)
    argv = {"video": ["video", src, "-o", tmp_path / "clip.gif", "--prototxt", tiny_model[0], "--weights",
                      tiny_model[1], *SMALL],
            "frames-to-video": ["frames-to-video", src, tmp_path / "clip.gif", "-q"]}[cmd]
    before = _snapshot(tmp_path)
    assert "refusing to overwrite the input" in _one_line(*_run(argv, capsys, tmp_path))
    assert _snapshot(tmp_path) == before


def test_an_output_of_a_long_name_can_be_locked(tmp_path):
    out = tmp_path / ("x" * 250 + ".png")
    with output_lock(out):
        assert len(lock_path(out).name) < 60 and lock_path(out).exists()
    assert list(tmp_path.iterdir()) == []
    frames = tmp_path / "new" / "frames"
    with output_lock(frames, folder=True):  # a folder's lock is in it; a folder made for it goes if left empty
        assert lock_path(frames, folder=True).exists()
    assert list(tmp_path.iterdir()) == []


def test_a_video_run_never_touches_the_work_folder_of_another_run(tmp_path, tiny_model, capsys):
    """Another process holds the lock of v.gif (as a running video does): this run is refused, its folder kept."""
    for i in range(2):
        _image(tmp_path / f"clip/{i:04d}.png", seed=i)
    work = tmp_path / ".v.gif.frames"
    work.mkdir()
    (work / "000000.png").write_bytes(b"the other run's frame")
    holder = subprocess.Popen([sys.executable, "-c", "import sys; from deepdream_caffe.app.run import output_lock\n"
                               "with output_lock(sys.argv[1]):\n print('locked', flush=True); sys.stdin.read()",
                               str(tmp_path / "v.gif")], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        before = _snapshot(tmp_path)
        argv = ["video", "clip", "-o", "v.gif", "--prototxt", tiny_model[0], "--weights", tiny_model[1], *SMALL]
        assert "another run is writing" in _one_line(*_run(argv, capsys, tmp_path))
        assert _snapshot(tmp_path) == before
    finally:
        holder.communicate("", timeout=60)
    assert not lock_path(tmp_path / "v.gif").exists()


def test_a_planted_frame_link_is_never_encoded_into_a_zoom_video(tmp_path, photo, tiny_model, capsys):
    argv = ["zoom", photo, "--out-dir", "z", "--frames", "2", "--video", "z.gif", "--prototxt", tiny_model[0],
            "--weights", tiny_model[1], *SMALL]
    rc, err = _run(argv, capsys, tmp_path)
    assert rc == 0, err
    secret = tmp_path / "secret.png"
    _image(secret, seed=5)
    (tmp_path / "z/0001.jpg").unlink()
    (tmp_path / "z/0001.jpg").symlink_to(secret)
    (tmp_path / "z.gif").unlink()
    (tmp_path / "z.gif.json").unlink()
    assert "symbolic link" in _one_line(*_run(argv, capsys, tmp_path))
    assert not (tmp_path / "z.gif").exists()


def test_run_files_compare_by_identity(tmp_path):
    a = tmp_path / "a.png"
    a.write_bytes(b"x")
    (tmp_path / "sub").mkdir()
    for write in (a, tmp_path / "sub" / ".." / "a.png"):
        with pytest.raises(DeepDreamError, match="refusing to overwrite the input"):
            RunFiles([a], writes=[write]).check()
    RunFiles([a], writes=[tmp_path / "b.png"], records=[tmp_path / "b.png.json"]).check()
    (tmp_path / "b.png.json").write_text(json.dumps({"tool": "deepdream-caffe", "params": {}}))
    RunFiles([a], records=[tmp_path / "b.png.json"]).check()  # its own record: replaced


# ---------------------------------------------------------------- a full disk leaves nothing


def _encode_under_limit(clip: Path, out: Path, limit: int) -> subprocess.CompletedProcess:
    def cap():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    cmd = [str(BIN)] if BIN.exists() else [sys.executable, "-m", "deepdream_caffe.cli"]
    return subprocess.run(cmd + ["frames-to-video", str(clip), str(out), "-q"], capture_output=True, text=True,
                          preexec_fn=cap, timeout=120)


@pytest.mark.parametrize("suffix", [".gif", ".mp4"])
def test_frames_to_video_on_a_full_disk_leaves_nothing(suffix, tmp_path):
    clip = tmp_path / "clip"
    for i in range(6):
        _image(clip / f"{i:04d}.png", seed=i, size=(96, 128))
    out = tmp_path / f"o{suffix}"
    r = _encode_under_limit(clip, out, 4096)  # past the first few kB every write fails (EFBIG)
    _one_line(r.returncode, r.stderr)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip"]


@pytest.fixture
def small_disk(tmp_path):
    """A 1 MiB tmpfs (root only; skipped where mounting is not permitted)."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)],
                                           capture_output=True).returncode != 0:
        pytest.skip("mounting a small tmpfs needs root and the permission to mount")
    yield mnt
    subprocess.run(["umount", str(mnt)], check=True)


def test_a_video_whose_record_does_not_fit_on_the_disk_is_not_left_either(tmp_path, small_disk, capsys):
    clip = tmp_path / "clip"
    for i in range(3):
        _image(clip / f"{i:04d}.png", seed=i, size=(32, 40))
    probe = small_disk / "o.gif"
    assert _run(["frames-to-video", clip, probe, "-q"], capsys, tmp_path)[0] == 0
    size = probe.stat().st_blocks * 512
    probe.unlink()
    (small_disk / "o.gif.json").unlink()
    st = os.statvfs(small_disk)
    (small_disk / "filler").write_bytes(b"\0" * (st.f_bavail * st.f_frsize - size))  # room for the GIF alone
    assert "disk full" in _one_line(*_run(["frames-to-video", clip, probe, "-q"], capsys, tmp_path))
    assert sorted(p.name for p in small_disk.iterdir()) == ["filler"]
