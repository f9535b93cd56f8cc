"""Issue 28, classes 3, 8 and 9: every file the tool reads, planted as something that is not one; names
that would break the one-line promise; good input that was refused.

* Reads: every command x every role a file it reads plays (image, guide, init, video, frame of a
  folder, prototxt, weights, labels, model manifest, a manifest's labels, state, record) x
  {FIFO, link to /dev/zero, folder, oversize (a sparse file above every cap)}. Each case runs
  ``main()`` in its own forked process with a deadline (tests/forkrun.py), so a hang fails the case
  instead of blocking the suite. A refusal is one line and exit != 0; a state or record may instead
  be set aside and the run started over (exit 0). The same four kinds replace the entries of the
  caches read on the way: OpenBLAS's kernel choice (through the hook itself, in a child with a
  timeout) and Caffe's kept answers about a net (a miss: the run goes on).
* Names: a missing or planted input whose name holds a newline, tab, CR, escape, DEL or a byte
  that is not UTF-8, in every command's error path: one line, the character shown escaped.
* Good input: 32-bit integer, 16-bit and float gray images; an output name of 240 characters
  (and of 240 bytes of two-byte characters).

A fixed sample of the read and name cases runs by default; DEEPDREAM_CAFFE_ABUSE_ALL=1 runs all.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Callable, Dict, List, Tuple

import numpy as np
import pytest
from PIL import Image

from deepdream_caffe import blas_hook
from deepdream_caffe.errors import one_line
from deepdream_caffe.io.image import read_image, read_metadata
from forkrun import run_cases
from zoo_helpers import case_env, case_os_env, run_zoo_many, write_manifest

RUN_ALL = os.environ.get("DEEPDREAM_CAFFE_ABUSE_ALL") == "1"
DEADLINE_S = 30  # a case that has not ended by then hangs
SAMPLE = 44  # read cases run by default: each role at least once, the kinds taken in turn
# docs/reliability.md cites these counts; the test keeps them honest.
DOCUMENTED = {"reads": 172, "cache": 8, "names": 120}

KINDS = ("fifo", "dev-zero-link", "folder", "oversize")
OVERSIZE = 3 << 30  # sparse: above every cap (Caffe's 2 GB for weights), costs no disk


def plant(path: Path, kind: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() or path.is_symlink():
        shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "dev-zero-link":
        path.symlink_to("/dev/zero")
    elif kind == "folder":
        path.mkdir()
    else:
        with open(path, "wb") as f:
            f.truncate(OVERSIZE)


# ---------------------------------------------------------------- the commands and what each reads

NET_COMMANDS = ("dream", "zoom", "video", "visualize", "batch", "atlas", "layers")


class Case:
    """One command line in its own folder ``d``: ``argv``, the path planted, and the environment."""

    def __init__(self, d: Path, photo: Path, tiny: Tuple[Path, Path]) -> None:
        self.d, self.tiny = d, tiny
        d.mkdir(parents=True)
        self.photo = d / "in.png"
        shutil.copy(photo, self.photo)
        self.frames = d / "clip"
        self.frames.mkdir()
        for i in range(2):
            shutil.copy(photo, self.frames / f"{i:04d}.png")
        self.env: Dict[str, str] = {"DEEPDREAM_CAFFE_CACHE": str(d / "cache")}
        # A zoo model "m" of the tiny net, its files already in the cache, its labels beside the manifest.
        self.models = d / "models"
        cached = d / "cache" / "models" / "m"
        cached.mkdir(parents=True)
        shutil.copy(tiny[0], cached / "deploy.prototxt")
        shutil.copy(tiny[1], cached / "w.caffemodel")
        write_manifest(self.models, "m", prototxt_url="http://127.0.0.1:9/deploy.prototxt",
                       weights_url="http://127.0.0.1:9/w.caffemodel", labels="labels.txt")
        (self.models / "m" / "labels.txt").write_text("cat\ndog\nbird\nfish\nfrog\n")

    def net(self, zoo: bool) -> List[str]:
        if zoo:
            return ["--model", "m", "--models-dir", str(self.models)]
        return ["--prototxt", str(self.tiny[0]), "--weights", str(self.tiny[1])]

    def argv(self, cmd: str, zoo: bool = False) -> List[str]:
        d, net = self.d, self.net(zoo)
        small = ["--layer", "a/output", "--iters", "1", "--octaves", "1", "--jitter", "2", "-q"]
        if cmd == "dream":
            return ["dream", self.photo, "-o", d / "out.png", *net, *small]
        if cmd == "zoom":
            return ["zoom", self.photo, "--out-dir", d / "zoom", "--frames", "2", *net, *small]
        if cmd == "video":
            return ["video", self.frames, "-o", d / "out.mp4", *net, *small]
        if cmd == "frames-to-video":
            return ["frames-to-video", self.frames, d / "out.mp4", "-q"]
        if cmd == "visualize":
            return ["visualize", "--class", "dog" if zoo else "1", "-o", d / "out.png", *net, "--iters", "1",
                    "--size", "32", "32", "-q"]
        if cmd == "batch":
            (d / "outs").mkdir(exist_ok=True)
            return ["batch", self.photo, "--out-dir", d / "outs", "--workers", "1", "--no-dashboard", *net, *small]
        if cmd == "atlas":
            return ["atlas", "--image", self.photo, "-o", d / "site", "--workers", "1", "--no-dashboard", *net,
                    "--layers", "a/output", *small[2:]]
        if cmd == "layers":
            return ["layers", *net[:2 if not zoo else 4], "-q"]
        if cmd == "models verify":
            return ["models", "verify", "m", "--models-dir", self.models]
        raise AssertionError(cmd)


def _flag(argv: List, flag: str, value) -> List:
    if flag in argv:
        argv[argv.index(flag) + 1] = value
        return argv
    return argv + [flag, value]


# role -> (commands, how the case reads the planted path: (case, cmd) -> (argv, planted path))
Setup = Callable[[Case, str], Tuple[List, Path]]


def _positional(c: Case, cmd: str, name: str = "bad.png") -> Tuple[List, Path]:
    bad, argv = c.d / name, c.argv(cmd)
    return (_flag(argv, "--image", bad) if cmd == "atlas" else [argv[0], bad, *argv[2:]]), bad


def _option(flag: str, name: str, zoo: bool = False) -> Setup:
    def setup(c: Case, cmd: str) -> Tuple[List, Path]:
        bad = c.d / name
        return _flag(c.argv(cmd, zoo), flag, bad), bad
    return setup


def _beside(rel: Callable[[Case, str], Path], zoo: bool = False) -> Setup:
    """A file the run reads from where it writes (state, record) or from the zoo's folders."""
    def setup(c: Case, cmd: str) -> Tuple[List, Path]:
        return c.argv(cmd, zoo), rel(c, cmd)
    return setup


_RUN_DIR = {"dream": lambda c: c.d, "visualize": lambda c: c.d, "zoom": lambda c: c.d / "zoom",
            "video": lambda c: c.d / ".out.mp4.frames"}
_STATE = {"dream": ".out.png.dream-state.npz", "visualize": ".out.png.dream-state.npz",
          "zoom": ".zoom-state.npz", "video": ".video-state.npz"}
_RECORD = {"dream": "out.png.json", "visualize": "out.png.json", "zoom": "zoom.json", "video": "video.json"}

ROLES: Dict[str, Tuple[Tuple[str, ...], Setup]] = {
    "image": (("dream", "zoom", "batch", "atlas"), _positional),
    "guide": (("dream", "zoom", "video", "batch"), _option("--guide", "guide.png")),
    "init": (("visualize",), _option("--init", "init.png")),
    "video": (("video",), lambda c, cmd: ([cmd, c.d / "clip.mp4", *c.argv(cmd)[2:]], c.d / "clip.mp4")),
    "frame": (("video", "frames-to-video"), lambda c, cmd: (c.argv(cmd), c.frames / "0001.png")),
    "prototxt": (NET_COMMANDS, _option("--prototxt", "deploy.prototxt")),
    "weights": (tuple(x for x in NET_COMMANDS if x != "layers"), _option("--weights", "w.caffemodel")),
    "labels": (("visualize",), _option("--labels", "labels.txt")),
    "manifest": (NET_COMMANDS + ("models verify",), _beside(lambda c, cmd: c.models / "m" / "model.toml", True)),
    "manifest labels": (("visualize",), _beside(lambda c, cmd: c.models / "m" / "labels.txt", True)),
    "state": (tuple(_STATE), _beside(lambda c, cmd: _RUN_DIR[cmd](c) / _STATE[cmd])),
    "record": (tuple(_RECORD), _beside(lambda c, cmd: _RUN_DIR[cmd](c) / _RECORD[cmd])),
}
SET_ASIDE = {"state", "record"}  # may be set aside, the run started over


def read_cases() -> List[Tuple[str, str, str]]:
    return [(cmd, role, kind) for role, (cmds, _) in ROLES.items() for cmd in cmds for kind in KINDS]


def sampled(cases: List[Tuple[str, str, str]]) -> List[Tuple[str, str, str]]:
    if RUN_ALL:
        return cases
    # Every (command, role) once, the kind taken in turn; then every 5th of the rest, to SAMPLE.
    pairs = list(dict.fromkeys((cmd, role) for cmd, role, _ in cases))
    first = [(cmd, role, KINDS[i % len(KINDS)]) for i, (cmd, role) in enumerate(pairs)]
    rest = [c for c in cases if c not in first]
    return (first + rest[::5])[:SAMPLE]


def test_the_documented_counts_are_the_generated_ones():
    assert {"reads": len(read_cases()), "cache": 2 * len(KINDS), "names": len(name_cases())} == DOCUMENTED
    assert len(sampled(read_cases())) == (len(read_cases()) if RUN_ALL else SAMPLE)


def _lines(err: str) -> List[str]:
    return [ln for ln in err.splitlines() if ln.strip()]


def _not_one_line(res: dict) -> str:
    """Why the case's result is not a refusal in one printable line, or ""."""
    if res["rc"] == "timeout":
        return "hung"
    lines = _lines(res["stderr"])
    if not isinstance(res["rc"], int) or res["rc"] == 0 or len(lines) != 1 or "Traceback" in res["stderr"]:
        return f"rc {res['rc']}: {res['stderr'][-600:]!r}"
    return "" if lines[0].isprintable() else f"unprintable: {lines[0]!r}"


def test_every_file_read_refuses_what_is_not_one(tmp_path, tiny_model):
    photo = tmp_path / "photo.png"
    Image.fromarray(np.random.RandomState(0).randint(0, 256, (32, 40, 3)).astype(np.uint8)).save(photo)
    cases = []
    for n, (cmd, role, kind) in enumerate(sampled(read_cases())):
        c = Case(tmp_path / f"c{n}", photo, tiny_model)
        argv, bad = ROLES[role][1](c, cmd)
        plant(bad, kind)
        label = f"{cmd} / {role} / {kind}"
        cases.append({"id": label, "kind": "cli", "argv": [str(a) for a in argv], "env": c.env})
    results = run_cases(cases, tmp_path / "fork", deadline_s=DEADLINE_S)
    assert len(results) == len(cases)
    failed = [f"{label}: {why}" for label, res in results.items() if (why := _read_failure(label, res))]
    assert not failed, "\n".join(failed)


def _read_failure(label: str, res: dict) -> str:
    """Why the case did not hold its promise, or ""."""
    role, kind = label.split(" / ")[1:]
    if role in SET_ASIDE and res["rc"] == 0:
        # Set aside (never followed nor read whole) and the run started over, or not read at all.
        return ("Traceback" in res["stderr"] or not all(ln.isprintable() for ln in _lines(res["stderr"]))) \
            and res["stderr"]
    why = _not_one_line(res)
    if not why and kind != "oversize" and not any(w in res["stderr"] for w in _SAYS):
        return f"does not say what is wrong: {res['stderr']}"
    return why


_SAYS = ("FIFO", "character device", "directory", "not a regular file", "not found", "larger than",
         "no image frames")  # a folder as a video input is a folder of frames


# ---------------------------------------------------------------- the OpenBLAS kernel-choice cache


@pytest.mark.skipif(not blas_hook.has_modern_simd(blas_hook.cpu_info()["flags"]),
                    reason="without AVX2+FMA or AVX-512 the hook never reads its cache")
@pytest.mark.parametrize("kind", KINDS)
def test_import_caffe_goes_on_past_a_planted_cache_entry(kind, tmp_path):
    """The hook as ``import caffe`` runs it (before pycaffe loads OpenBLAS), in a child with a timeout."""
    env = dict({k: v for k, v in os.environ.items() if not k.startswith("OPENBLAS_")},
               DEEPDREAM_CAFFE_CACHE=str(tmp_path))
    code = ("import json, sys; sys.path.insert(0, sys.argv[1]); import blas_hook as h; "
            "print(json.dumps(h._cache_file(h._cache_key(h.cpu_info()))))")
    hook_dir = str(Path(blas_hook.__file__).parent)
    where = subprocess.run([sys.executable, "-I", "-c", code, hook_dir], capture_output=True, text=True, env=env,
                           timeout=60)
    assert where.returncode == 0, where.stderr
    entry = Path(json.loads(where.stdout.splitlines()[-1]))
    plant(entry, kind)
    run = ("import json, sys; sys.path.insert(0, sys.argv[1]); import blas_hook as h; "
           "print(json.dumps(h.choose()))")
    r = subprocess.run([sys.executable, "-I", "-c", run, hook_dir], capture_output=True, text=True, env=env,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    choice = json.loads(r.stdout.splitlines()[-1])
    assert choice["cache"] == str(entry) and "skipped" not in choice.get("note", ""), choice
    assert [p.name for p in entry.parent.iterdir()] == [entry.name]  # replaced by a good entry, or left


def test_a_planted_answer_in_the_referee_cache_is_asked_again(tmp_path, tiny_model):
    """Caffe's answers about a net are kept in the cache; one replaced by anything but a file is a miss."""
    photo = tmp_path / "photo.png"
    Image.fromarray(np.zeros((32, 40, 3), np.uint8)).save(photo)
    runs = {kind: Case(tmp_path / kind, photo, tiny_model) for kind in KINDS}

    def dream_each() -> Dict[str, dict]:
        return run_cases([{"id": kind, "kind": "cli", "argv": [str(a) for a in c.argv("dream")], "env": c.env}
                          for kind, c in runs.items()], tmp_path / f"fork{len(list(tmp_path.glob('fork*')))}",
                         deadline_s=DEADLINE_S)

    assert all(r["rc"] == 0 for r in dream_each().values())
    for kind, c in runs.items():
        kept = sorted((c.d / "cache" / "referee").glob("*.json"))
        assert kept
        for path in kept:
            plant(path, kind)
        (c.d / "out.png").unlink()
    for kind, r in dream_each().items():
        assert r["rc"] == 0 and not r["stderr"].strip(), (kind, r)
        assert (runs[kind].d / "out.png").is_file()


# ---------------------------------------------------------------- names that hold what a line cannot

ODD = {"newline": "a\nb", "tab": "a\tb", "cr": "a\rb", "escape": "a\x1b[2Jb", "del": "a\x7fb",
       "not utf-8": os.fsdecode(b"a\xffb")}
NAMED = ("dream", "zoom", "video", "frames-to-video", "visualize", "batch", "atlas", "layers", "models verify",
         "dream --guide")


def name_cases() -> List[Tuple[str, str, bool]]:
    """(command, odd name, planted): the name missing, or present as a FIFO."""
    return [(cmd, odd, planted) for cmd in NAMED for odd in ODD for planted in (False, True)]


def sampled_names(cases: List[Tuple[str, str, bool]]) -> List[Tuple[str, str, bool]]:
    """All with DEEPDREAM_CAFFE_ABUSE_ALL=1; else every command, missing and planted, the names in turn."""
    if RUN_ALL:
        return cases
    return [(cmd, list(ODD)[i % len(ODD)], planted) for i, cmd in enumerate(NAMED) for planted in (False, True)]


def _named_argv(c: Case, cmd: str, name: str) -> Tuple[List, Path]:
    if cmd == "visualize":
        bad = c.d / f"{name}.txt"
        return _flag(c.argv(cmd), "--labels", bad), bad
    if cmd == "layers":
        bad = c.d / f"{name}.prototxt"
        return _flag(c.argv(cmd), "--prototxt", bad), bad
    if cmd == "models verify":
        bad = c.d / name / "m" / "model.toml"
        bad.parent.mkdir(parents=True)
        bad.write_text("not = [toml")
        return ["models", "verify", "m", "--models-dir", bad.parent.parent], bad
    if cmd == "dream --guide":
        bad = c.d / f"{name}.png"
        return _flag(c.argv("dream"), "--guide", bad), bad
    if cmd in ("video", "frames-to-video"):
        bad = c.frames / f"{name}.png"
        return c.argv(cmd), bad
    return _positional(c, cmd, f"{name}.png")


def test_odd_names_are_shown_escaped_on_one_line(tmp_path, tiny_model):
    photo = tmp_path / "photo.png"
    Image.fromarray(np.zeros((32, 40, 3), np.uint8)).save(photo)
    cases = []
    for n, (cmd, odd, planted) in enumerate(sampled_names(name_cases())):
        c = Case(tmp_path / f"c{n}", photo, tiny_model)
        argv, bad = _named_argv(c, cmd, ODD[odd])
        if planted:
            plant(bad, "fifo")
        elif cmd in ("video", "frames-to-video"):  # a missing frame cannot be named: a frame that is no image
            bad.write_bytes(b"not an image")
        # (models verify: a manifest that is not TOML, as a missing one is not named)
        cases.append({"id": f"{cmd} / {odd} / {planted}", "kind": "cli", "argv": [str(a) for a in argv],
                      "env": c.env})
    results = run_cases(cases, tmp_path / "fork", deadline_s=DEADLINE_S)
    assert len(results) == len(cases)
    failed = [f"{label}: {_not_one_line(res) or 'the name is not shown escaped: ' + res['stderr']}"
              for label, res in results.items()
              if _not_one_line(res) or one_line(ODD[label.split(" / ")[1]]) not in res["stderr"]]
    assert not failed, "\n".join(failed)


def test_the_escape_keeps_printable_text_and_shows_every_other_character():
    assert one_line("plain name, ünïcode – and \\ too") == "plain name, ünïcode – and \\ too"
    assert one_line("a\nb\tc\x1b\x7f\u2028" + os.fsdecode(b"\xff")) == "a\\nb\\tc\\x1b\\x7f\\u2028\\udcff"


def test_a_redirect_loop_is_one_line(tmp_path, server):
    z = case_env(tmp_path)
    url = server.url("loop/deploy.prototxt")
    server.add("loop/deploy.prototxt", b"", redirect=url)
    write_manifest(z.models, "m", prototxt_url=url, weights_url=server.url("loop/w.caffemodel"))
    (r,) = run_zoo_many([(["fetch", "m", "-q", "--models-dir", str(z.models)], case_os_env(z))])
    lines = _lines(r.stderr)
    assert r.returncode != 0 and len(lines) == 1, r.stderr
    assert "redirects in a loop" in lines[0], lines[0]


# ---------------------------------------------------------------- good input, taken


@pytest.mark.parametrize("mode, values, want", [
    ("I", [0, 128, 255], [0, 128, 255]),  # 8-bit values in a 32-bit image: as they are
    ("I", [0, 32768, 65535], [0, 255 * 32768 / 65535, 255]),  # 16-bit values
    ("I", [-5, 0, 2**31 - 1], [0, 0, 255 * (2**31 - 1) / (2**32 - 1)]),  # 32-bit values; below 0 is black
    ("I;16", [0, 257, 65535], [0, 1, 255]),
    ("F", [0.0, 0.5, 1.0], [0, 127.5, 255]),  # a [0, 1] float image
    ("F", [0.0, 100.0, 300.0], [0, 100, 255]),  # already on 0..255
])
def test_one_channel_images_are_scaled_to_8_bit_range(mode, values, want, tmp_path):
    dtype = {"I": np.int32, "I;16": np.uint16, "F": np.float32}[mode]
    im = Image.fromarray(np.array([values], dtype=dtype), mode if mode != "I;16" else None)
    path = tmp_path / "g.tif"
    im.save(path)
    assert Image.open(path).mode == mode
    img, _ = read_image(path)
    np.testing.assert_allclose(img[0, :, 0], want, rtol=1e-6, atol=1e-4)
    assert (img[..., 0] == img[..., 2]).all()


LONG = {  # command -> an output name of 240 characters or bytes, or one whose work folder's would pass 255
    "dream": "a" * 236 + ".png", "dream ": "é" * 118 + ".png", "video": "v" * 246 + ".mp4",
    "frames-to-video": "g" * 246 + ".gif",
}


def test_a_long_output_name_is_written_under_that_name(tmp_path, tiny_model):
    frames = tmp_path / "clip"
    frames.mkdir()
    for i in range(2):  # mode I (32-bit integer) images
        Image.fromarray(np.random.RandomState(i).randint(0, 256, (32, 40)).astype(np.int32)).save(frames / f"{i}.tif")
    net = ["--prototxt", tiny_model[0], "--weights", tiny_model[1], "--layer", "a/output", "--iters", "1",
           "--octaves", "1", "-q"]
    cases = []
    for n, (cmd, name) in enumerate(LONG.items()):
        out = tmp_path / f"o{n}" / name
        out.parent.mkdir()
        argv = {"dream": ["dream", frames / "0.tif", "-o", out, *net], "video": ["video", frames, "-o", out, *net],
                "frames-to-video": ["frames-to-video", frames, out, "-q"]}[cmd.strip()]
        cases.append({"id": str(out), "kind": "cli", "argv": [str(a) for a in argv]})
    for out, res in run_cases(cases, tmp_path / "fork").items():
        out = Path(out)
        assert res["rc"] == 0, res["stderr"]
        # Nothing else left: no temp file, state or work folder (a PNG holds its record inside).
        png = out.suffix == ".png"
        assert sorted(p.name for p in out.parent.iterdir()) == [out.name] + ([] if png else [out.name + ".json"])
        if png:
            assert read_metadata(out)["command"] == "dream"
            assert float(np.asarray(Image.open(out)).mean()) > 20  # not the near-black of a misread mode I image
