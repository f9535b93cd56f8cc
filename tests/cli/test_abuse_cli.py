"""Issue 12: the command line attacked -- every numeric option, odd inputs, corrupt state, signals mid-run.

The numeric options are read from the parser itself, so an option added
later is attacked too (and ``RANGE_CASES`` must say how it can be out of
range, or the coverage test fails). Refusals run ``main()`` in this process
(they fail before any net loads); runs that dream or get signals run the
real console script on the tiny net. Every case asserts: one line on
stderr, exit != 0, nothing written, the input untouched.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cli_util import BIN
from deepdream_caffe.app.run import FileCheckpoint, run_key, state_path
from deepdream_caffe.app.zoom import STATE_FILE
from deepdream_caffe.cli.main import build_parser, main
from deepdream_caffe.io.image import read_metadata

# ---------------------------------------------------------------- helpers


@pytest.fixture
def photo(tmp_path):
    p = tmp_path / "in.png"
    Image.fromarray(np.random.RandomState(0).randint(0, 256, (40, 48, 3)).astype(np.uint8)).save(p)
    return p


def _run(argv, capsys):
    """main() in this process, bounded: (exit code, stderr)."""
    out = {}

    def go():
        try:
            out["rc"] = main([str(a) for a in argv])
        except SystemExit as e:  # argparse's usage errors
            out["rc"] = e.code

    t = threading.Thread(target=go, daemon=True)
    t.start()
    t.join(120)
    assert not t.is_alive(), f"blocked: {argv}"
    return out["rc"], capsys.readouterr().err


def _one_line(rc, err, *fragments):
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert rc not in (0, None), (rc, err)
    assert len(lines) == 1 and "Traceback" not in err, err
    for f in fragments:
        assert f in lines[0], (f, lines[0])
    return lines[0]


def _snapshot(d: Path):
    return {p.relative_to(d): (p.read_bytes() if p.is_file() else None) for p in sorted(d.rglob("*"))}


def _subparsers(parser):
    return next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices


def numeric_options():
    """(command, flag, type, nargs) of every int/float option of every command, from the parser."""
    found = []

    def walk(prefix, parser):
        for a in parser._actions:
            if isinstance(a, argparse._SubParsersAction):
                for name, p in a.choices.items():
                    walk(prefix + [name], p)
            elif a.option_strings and a.type in (int, float):
                found.append((" ".join(prefix), a.option_strings[-1], a.type, a.nargs))

    walk([], build_parser())
    return found


def _base(cmd, tmp_path, photo, tiny_model):
    proto, weights = tiny_model
    net = ["--prototxt", proto, "--weights", weights]
    small = ["--layer", "a/output", "--iters", "1", "--octaves", "1", "--jitter", "2", "-q"]
    if cmd == "dream":
        return ["dream", photo, "-o", tmp_path / "out.png", *net, *small]
    if cmd == "zoom":
        return ["zoom", photo, "--out-dir", tmp_path / "frames", "--frames", "1", *net, *small]
    if cmd == "layers":
        return ["layers", "--prototxt", proto, "-q"]
    if cmd in ("video", "frames-to-video"):
        frames = tmp_path / "clip"
        frames.mkdir(exist_ok=True)
        for i in range(2):
            shutil.copy(photo, frames / f"{i:04d}.png")
        if cmd == "video":
            return ["video", frames, "-o", tmp_path / "out.mp4", *net, *small]
        return ["frames-to-video", frames, tmp_path / "out.mp4", "-q"]
    if cmd == "visualize":
        return ["visualize", "--class", "1", "-o", tmp_path / "out.png", *net, "--iters", "1", "-q"]
    if cmd == "batch":
        (tmp_path / "outs").mkdir(exist_ok=True)
        return ["batch", photo, "--out-dir", tmp_path / "outs", "--workers", "1", "--no-dashboard", *net, *small]
    if cmd == "atlas":
        return ["atlas", "--image", photo, "-o", tmp_path / "site", "--workers", "1", "--no-dashboard", *net,
                "--layers", "a/output", *small[2:]]
    raise AssertionError(f"no base command line for '{cmd}': add one")


NON_FINITE = ["nan", "inf", "-inf", "1e400", "NaN"]

# Out-of-range values for every numeric option (a new option must be added here).
RANGE_CASES = {
    "--iters": ["0", "-1"],
    "--octaves": ["0", "-3"],
    "--octave-scale": ["1", "0.5", "-2", "0"],
    "--step-size": ["0", "-1.5"],
    "--jitter": ["-1"],
    "--seed": ["-1", str(2**32)],
    "--tile-size": ["0", "31", "-768"],
    "--tile-above": ["-1"],
    "--quality": ["0", "101", "-1"],
    "--gpu": ["-1"],
    "--mean": ["-1 0 0", "256 0 0", "1e38 0 0"],
    "--channel-swap": ["0 0 1", "3 1 0", "-1 1 0"],
    "--frames": ["0", "-1"],
    "--scale": ["1", "-1", "1.5", "-1.5"],
    "--rotate": ["180.5", "-181", "360"],
    "--gain": ["0", "-2"],
    "--tv-weight": ["-1"],
    "--tv-beta": ["0.5", "-1"],
    "--alpha-weight": ["-1"],
    "--alpha": ["0.5"],
    "--lbfgs-iters": ["0"],
    "--lbfgs-maxfun": ["0", "-1"],
    "--crf": ["-1", "52"],
    "--blend": ["-0.1", "1.5"],
    "--max-frames": ["0", "-1"],
    "--sheet-tile": ["0", "-1"],
    "--workers": ["0", "-1"],
    "--retries": ["-1"],
    "--channels": ["-1"],
    "--size": ["0 32", "-1 32", "32 0"],
    "--step-end": ["-1"],
    "--momentum": ["1", "-0.1", "1.5"],
    "--paper-set": ["0", "5"],
    "--l2": ["-1"],
    "--decay": ["-0.1", "1"],
    "--blur-sigma": ["-1"],
    "--blur-every": ["-1"],
    "--norm-pct": ["-1", "101"],
    "--contrib-pct": ["-1", "101"],
    "--lap-levels": ["-1", "17"],
    "--max-size": ["0", "-1"],
    "--learning-rate": ["0", "-0.05"],
    "--sd": ["0", "-1"],
    "--decay-power": ["-1"],
}
NEEDS_LBFGS = {"--gain", "--tv-weight", "--tv-beta", "--alpha-weight", "--alpha", "--lbfgs-iters", "--lbfgs-maxfun"}


def test_every_numeric_option_is_attacked():
    flags = {flag for _, flag, _, _ in numeric_options()}
    assert {"--iters", "--step-size", "--mean", "--quality", "--frames"} <= flags  # the walk finds them
    missing = sorted(flags - set(RANGE_CASES))
    assert not missing, f"add out-of-range cases for {missing} to RANGE_CASES"


def _value_args(flag, nargs, value):
    values = value.split()
    if nargs == 3 and len(values) == 1:
        values = values + ["0", "1"] if flag == "--mean" else values + ["1", "0"]
    if nargs == 2 and len(values) == 1:
        values = values + ["32"]
    return [flag, *values]


def attack_argv(cmd, flag, nargs, value, d, photo, tiny_model):
    """The base command line of ``cmd`` with ``flag`` set to ``value`` (in L-BFGS mode for its options)."""
    argv = _base(cmd, d, photo, tiny_model) + _value_args(flag, nargs, value)
    if flag in NEEDS_LBFGS:
        # --mode lbfgs refuses the ascent's own --iters and --jitter: the base run goes without them
        for own in ("--iters", "--jitter"):
            if own in argv:
                i = argv.index(own)
                del argv[i:i + 2]
        argv += ["--mode", "lbfgs"]
    return argv


def _cases():
    for cmd, flag, kind, nargs in numeric_options():
        values = (NON_FINITE if kind is float else ["nan", "1.5", "x"]) + RANGE_CASES.get(flag, [])
        for v in values:
            yield pytest.param(cmd, flag, nargs, v, id=f"{cmd} {flag} {v}")


@pytest.mark.parametrize("cmd,flag,nargs,value", list(_cases()))
def test_numeric_option_out_of_range_is_one_line_and_writes_nothing(cmd, flag, nargs, value, tmp_path, photo,
                                                                    tiny_model, capsys):
    argv = attack_argv(cmd, flag, nargs, value, tmp_path, photo, tiny_model)
    before = _snapshot(tmp_path)
    rc, err = _run(argv, capsys)
    line = _one_line(rc, err)
    assert flag in line or rc == 2, line  # our own refusals name the flag; argparse's say "invalid int"
    assert _snapshot(tmp_path) == before


# Numbers the parser keeps as text (a rate, a size): the same attack, listed by hand.
TEXT_NUMBERS = {
    ("video", "--fps"): ["nan", "inf", "0", "-25", "1/0", "x"],
    ("frames-to-video", "--fps"): ["nan", "inf", "0", "-25", "1/0"],
    ("zoom", "--fps"): ["25"],  # without --video it would be ignored
    ("layers", "--size"): ["0x0", "nanxnan", "-5x5", "10", "1e9x1e9", "x"],
    ("batch", "--sweep"): ["step_size=1,nan", "iters=0,1", "octave_scale=inf", "quality=101", "jitter=-1"],
}


@pytest.mark.parametrize("cmd,flag,value", [pytest.param(c, f, v, id=f"{c} {f} {v}")
                                            for (c, f), vs in TEXT_NUMBERS.items() for v in vs])
def test_numbers_given_as_text_are_checked_too(cmd, flag, value, tmp_path, photo, tiny_model, capsys):
    argv = _base(cmd, tmp_path, photo, tiny_model)
    before = _snapshot(tmp_path)  # after the base made its frame folder
    rc, err = _run(argv + [flag, value], capsys)
    _one_line(rc, err)
    assert _snapshot(tmp_path) == before


# ---------------------------------------------------------------- silent acceptance, now honoured or refused


@pytest.mark.parametrize("extra,fragment", [
    (["--layer", ""], "--layer"),
    (["--layer", "   "], "unknown layer"),
    (["--quality", "90"], "--quality is for"),  # a PNG output has no quality
    (["--exif-orientation", "sideways"], "--exif-orientation"),
])
def test_silently_accepted_options_are_refused(extra, fragment, tmp_path, photo, tiny_model, capsys):
    argv = _base("dream", tmp_path, photo, tiny_model) + extra
    before = _snapshot(tmp_path)
    _one_line(*_run(argv, capsys), fragment)
    assert _snapshot(tmp_path) == before


def test_layers_refuses_size_with_image(tmp_path, photo, tiny_model, capsys):
    _one_line(*_run(["layers", "--prototxt", tiny_model[0], "--size", "64x64", "--image", photo], capsys),
              "--size", "--image")


def test_quality_is_honoured_for_webp_and_recorded(tmp_path, photo, tiny_model, capsys):
    sizes = {}
    for q in ("10", "95"):
        out = tmp_path / f"q{q}.webp"
        argv = _base("dream", tmp_path, photo, tiny_model)
        argv[argv.index("-o") + 1] = out
        rc, err = _run(argv + ["--quality", q, "--seed", "1"], capsys)
        assert rc == 0, err
        sizes[q] = out.stat().st_size
        assert json.loads((tmp_path / f"q{q}.webp.json").read_text())["quality"] == int(q)
    assert sizes["10"] < sizes["95"]


# ---------------------------------------------------------------- odd input files through the CLI


def _fifo(d):
    p = d / "pipe.png"
    os.mkfifo(p)
    return p


@pytest.mark.parametrize("kind", ["fifo", "directory", "device"])
@pytest.mark.parametrize("role", ["input", "--guide", "--prototxt", "--weights"])
def test_inputs_that_are_not_files_are_refused_without_hanging(kind, role, tmp_path, photo, tiny_model, capsys):
    bad = {"fifo": lambda: _fifo(tmp_path), "directory": lambda: tmp_path,
           "device": lambda: Path("/dev/zero")}[kind]()
    argv = _base("dream", tmp_path, photo, tiny_model)
    if role == "input":
        argv[1] = bad
    elif role == "--guide":
        argv += ["--guide", bad]
    else:
        argv[argv.index(role) + 1] = bad
    before = _snapshot(tmp_path)
    _one_line(*_run(argv, capsys), "not a regular file" if kind != "directory" else "directory")
    assert _snapshot(tmp_path) == before


def test_zoom_refuses_to_overwrite_its_input_under_a_frame_name(tmp_path, photo, tiny_model, capsys):
    d = tmp_path / "D"
    d.mkdir()
    shutil.copy(photo, d / "0000.jpg")
    data = (d / "0000.jpg").read_bytes()
    argv = _base("zoom", tmp_path, photo, tiny_model)
    argv[1] = d / "0000.jpg"
    argv[argv.index("--out-dir") + 1] = d
    _one_line(*_run(argv, capsys), "refusing to overwrite the input")
    assert (d / "0000.jpg").read_bytes() == data and sorted(p.name for p in d.iterdir()) == ["0000.jpg"]


def test_a_crafted_state_beside_the_output_is_set_aside_and_the_dream_is_right(tmp_path, photo, tiny_model, capsys):
    out = tmp_path / "out.png"
    FileCheckpoint(state_path(out), "x", np.random.RandomState(0), seed=5).save(99, np.zeros((3, 4, 4), np.float32))
    argv = _base("dream", tmp_path, photo, tiny_model) + ["--seed", "5"]
    argv.remove("-q")
    rc, err = _run(argv, capsys)
    assert rc == 0, err
    assert "set aside" in err and Image.open(out).size == (48, 40)
    assert len(list(tmp_path.glob(".out.png.dream-state.npz.old-*"))) == 1


# ---------------------------------------------------------------- signals mid-run (the real console script)


def _spawn(args, **kw):
    cmd = [str(BIN)] if BIN.exists() else [sys.executable, "-m", "deepdream_caffe.cli"]
    env = dict(os.environ)
    env.pop("GLOG_minloglevel", None)
    return subprocess.Popen(cmd + [str(a) for a in args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env, **kw)


def _wait_for(path_fn, proc, limit=120.0):
    """Poll (bounded) until ``path_fn()`` is true; fails if the process ended first."""
    t0 = time.monotonic()
    while not path_fn():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() - t0 < limit, "timed out waiting for the run to progress"
        time.sleep(0.02)


def _no_temp_files(d: Path):
    return [p.name for p in d.rglob("*.tmp")]


def _long_dream_args(tmp_path, tiny_model, photo_big, out, seed=None):
    proto, weights = tiny_model
    args = ["dream", photo_big, "-o", out, "--prototxt", proto, "--weights", weights, "--layer", "a/output",
            "--iters", "30", "--octaves", "3", "--jitter", "4", "-q"]
    return args + ([] if seed is None else ["--seed", str(seed)])


@pytest.fixture
def photo_big(tmp_path):
    p = tmp_path / "big.png"
    Image.fromarray(np.random.RandomState(1).randint(0, 256, (360, 480, 3)).astype(np.uint8)).save(p)
    return p


def test_sigterm_then_kill_9_then_resume_gives_the_uninterrupted_pixels(tmp_path, tiny_model, photo_big, capsys):
    out = tmp_path / "out.png"
    state = state_path(out)
    args = _long_dream_args(tmp_path, tiny_model, photo_big, out)
    input_bytes = photo_big.read_bytes()

    # 1. SIGTERM after the first octave: exit 143, one line saying how to resume, no output, the state kept.
    p = _spawn(args)
    _wait_for(state.exists, p)
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=120)
    line = _one_line(p.returncode, err, "interrupted", "run the same command again", "seed")
    assert p.returncode == 143
    seed = int(line.split("seed ")[1].split()[0].strip("();,."))
    assert not out.exists() and state.exists() and not _no_temp_files(tmp_path)

    # 2. The same command (no --seed) resumes with the saved seed; kill -9 it mid-way.
    mtime = state.stat().st_mtime_ns
    p = _spawn(args)
    _wait_for(lambda: state.exists() and state.stat().st_mtime_ns != mtime, p)
    p.kill()
    p.communicate(timeout=60)
    assert not out.exists() and state.exists()

    # 3. Once more, to the end: the pixels of an uninterrupted run. Both run as their own processes, so
    # each has the BLAS thread count of a fresh process (it decides the bits), whatever this one has.
    p = _spawn(args[:-1])  # without -q: the notes
    _, err = p.communicate(timeout=300)
    assert p.returncode == 0, err
    assert f"seed {seed}" in err and "resuming" in err
    assert not state.exists() and photo_big.read_bytes() == input_bytes
    whole = tmp_path / "uninterrupted.png"
    ref = [whole if a == out else a for a in args] + ["--seed", str(seed)]
    p = _spawn(ref)
    _, err = p.communicate(timeout=300)
    assert p.returncode == 0, err
    assert np.array_equal(np.asarray(Image.open(out)), np.asarray(Image.open(whole)))
    assert read_metadata(out)["seed"] == seed


def test_sigint_mid_zoom_then_resume_without_seed(tmp_path, tiny_model, capsys):
    proto, weights = tiny_model
    d = tmp_path / "frames"
    src = tmp_path / "mid.png"  # big enough that frames take a while: the signal lands mid-run
    Image.fromarray(np.random.RandomState(3).randint(0, 256, (120, 160, 3)).astype(np.uint8)).save(src)
    args = ["zoom", src, "--out-dir", d, "--frames", "6", "--prototxt", proto, "--weights", weights,
            "--layer", "a/output", "--iters", "15", "--octaves", "2", "--jitter", "2", "-q"]
    p = _spawn(args)
    _wait_for(lambda: (d / "0001.jpg").exists(), p)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=120)
    line = _one_line(p.returncode, err, "interrupted", "run the same command again", "seed")
    assert p.returncode == 130
    done = sorted(x.name for x in d.glob("*.jpg"))
    assert done and not _no_temp_files(d) and (d / STATE_FILE).exists()

    rc, err = _run(args[:-1], capsys)  # to the end, in this process; without -q: the notes
    assert rc == 0, err
    notes = [ln for ln in err.splitlines() if ln.startswith("deepdream-caffe:")]
    assert "seed" in notes[0] and "zoom.json" in notes[0]  # the saved seed, said first
    resumed = [i for i, ln in enumerate(notes) if f"resumed at frame {len(done)}" in ln]
    written = [i for i, ln in enumerate(notes) if "written" in ln]
    assert resumed and written and resumed[0] < written[0]  # said at the start, not the end
    assert sorted(x.name for x in d.glob("*.jpg")) == [f"{i:04d}.jpg" for i in range(6)]
    assert not (d / STATE_FILE).exists()  # finished: no state left, nothing called unfinished
    assert "unfinished" not in err and "frame" in line


def test_kill_9_mid_zoom_then_resume_gives_the_uninterrupted_frames(tmp_path, tiny_model):
    proto, weights = tiny_model
    src = tmp_path / "mid.png"
    Image.fromarray(np.random.RandomState(4).randint(0, 256, (120, 160, 3)).astype(np.uint8)).save(src)

    def args(d):
        return ["zoom", src, "--out-dir", d, "--frames", "5", "--prototxt", proto, "--weights", weights,
                "--layer", "a/output", "--iters", "10", "--octaves", "2", "--jitter", "2", "--seed", "8", "-q"]

    cut, whole = tmp_path / "cut", tmp_path / "whole"
    p = _spawn(args(cut))
    _wait_for(lambda: (cut / "0001.jpg").exists(), p)
    p.kill()
    p.communicate(timeout=60)
    assert p.returncode == -signal.SIGKILL and (cut / STATE_FILE).exists()
    assert not (cut / "0004.jpg").exists()
    for d in (cut, whole):  # both as their own processes: the BLAS thread count of a fresh process
        p = _spawn(args(d))
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    frames = sorted(x.name for x in whole.glob("*.jpg"))
    assert frames == [f"{i:04d}.jpg" for i in range(5)] == sorted(x.name for x in cut.glob("*.jpg"))
    assert all((cut / f).read_bytes() == (whole / f).read_bytes() for f in frames)
    assert not (cut / STATE_FILE).exists() and not _no_temp_files(cut)


# ---------------------------------------------------------------- EXIF and the resume key


@pytest.mark.parametrize("mode,size", [("apply", (40, 48)), ("ignore", (48, 40))])
def test_a_sideways_phone_photo_comes_out_upright_unless_told(tmp_path, tiny_model, capsys, mode, size):
    src = tmp_path / "phone.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # stored 48 wide, 40 high; shown turned a quarter
    Image.fromarray(np.random.RandomState(2).randint(0, 256, (40, 48, 3)).astype(np.uint8)).save(
        src, "JPEG", exif=exif.tobytes())
    out = tmp_path / "o.png"
    argv = _base("dream", tmp_path, src, tiny_model) + ["--seed", "1", "--exif-orientation", mode]
    argv[argv.index("-o") + 1] = out
    rc, err = _run(argv, capsys)
    assert rc == 0, err
    assert Image.open(out).size == size
    meta = read_metadata(out)
    assert meta["input_orientation"] == {"exif_orientation": 6, "rotated": mode == "apply"}
    assert meta["params"]["exif_orientation"] == mode


def test_the_run_key_covers_the_prototxt():
    args = ({"layer": "a"}, 1, "in")
    more = dict(weights="w", shape=(3, 4, 5))
    assert run_key(*args, prototxt="p1", **more) != run_key(*args, prototxt="p2", **more)
    assert run_key(*args, prototxt="p1", **more) == run_key(*args, **more, prototxt="p1")


@pytest.mark.parametrize("extra,fragment", [(["--quality", "80"], "--quality"),
                                            (["--exif-orientation", "ignore"], "--exif-orientation")])
def test_video_takes_no_image_settings(extra, fragment, tmp_path, photo, tiny_model, capsys):
    """A video's quality is --crf, its frames turn upright by its display matrix: not options of video."""
    assert fragment not in build_parser()._subparsers._group_actions[0].choices["video"].format_help()
    argv = _base("video", tmp_path, photo, tiny_model)
    before = _snapshot(tmp_path)
    rc, err = _run(argv + extra, capsys)
    assert rc == 2 and f"unrecognized arguments: {' '.join(extra)}" in _one_line(rc, err, fragment)
    assert _snapshot(tmp_path) == before
