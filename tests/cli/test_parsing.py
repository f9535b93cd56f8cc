"""Argument parsing: flags become the app's config, bad values name their flag, commands find themselves (no Caffe)."""
from __future__ import annotations

import dataclasses
import inspect
import subprocess
import sys
from pathlib import Path

import pytest

from deepdream_caffe.app.config import DreamConfig
from deepdream_caffe.cli import build_parser, commands
from deepdream_caffe.cli.options import channel_term, dream_config, layer_term, term_text
from deepdream_caffe.dream.ascent import deepdream
from deepdream_caffe.dream.lbfgs import deepdream_lbfgs
from deepdream_caffe.dream.params import Ascent, Lbfgs, Octaves, Tiling
from deepdream_caffe.dream.step import make_step
from deepdream_caffe.errors import DeepDreamError


def _config(*argv: str) -> DreamConfig:
    return dream_config(build_parser().parse_args(["dream", "-o", "o.png", *argv]))


def test_defaults_are_the_notebook_api_defaults():
    cfg = _config()
    api = {**inspect.signature(make_step).parameters, **inspect.signature(deepdream).parameters}
    for key, value in {**dataclasses.asdict(cfg.solver), **dataclasses.asdict(cfg.octaves)}.items():
        assert value == api[key].default, key
    assert cfg.layer is None and cfg.seed is None and cfg.mode == "ascent" and cfg.quality is None
    assert cfg.exif_orientation == "apply"  # quality None: the format's default (JPEG 75, the notebook's)
    lbfgs_api = inspect.signature(deepdream_lbfgs).parameters
    for key, value in dataclasses.asdict(_config("--mode", "lbfgs").solver).items():
        assert value == lbfgs_api[key].default, key
    assert cfg == DreamConfig()  # the command line adds nothing of its own


def test_flags_reach_the_config():
    cfg = _config("--layer", "conv2/3x3", "--iters", "3", "--octaves", "2", "--octave-scale", "1.5",
                  "--step-size", "2", "--jitter", "0", "--no-clip", "--seed", "7", "--tile-size", "256",
                  "--tile-above", "0.5", "--notebook-net", "--quality", "90", "--prototxt", "d.prototxt",
                  "--weights", "w.caffemodel", "--mean", "1", "2", "3", "--channel-swap", "0", "1", "2")
    assert (cfg.layer, cfg.solver, cfg.octaves, cfg.seed) == (
        "conv2/3x3", Ascent(iter_n=3, step_size=2.0, jitter=0, clip=False), Octaves(2, 1.5), 7)
    assert (cfg.tiling, cfg.fast, cfg.quality) == (Tiling(tile=256, above_mp=0.5), False, 90)
    assert cfg.tiling.active(1000, 1000) and not cfg.tiling.active(500, 500)
    assert cfg.net.prototxt == Path("d.prototxt") and cfg.net.weights == Path("w.caffemodel")
    assert cfg.net.mean == (1.0, 2.0, 3.0) and cfg.net.channel_swap == (0, 1, 2)
    cfg = _config("--mode", "lbfgs", "--objective", "gain", "--gain", "3", "--tv-weight", "0", "--lbfgs-iters", "4",
                  "--lbfgs-maxfun", "9")
    assert cfg.solver == Lbfgs(objective="gain", gain=3.0, tv_weight=0.0, tv_beta=2.0, alpha_weight=0.0, alpha=6.0,
                               maxiter=4, maxfun=9)


@pytest.mark.parametrize("argv, fragment", [
    (["--iters", "0"], "--iters must be at least 1"),
    (["--octaves", "-1"], "--octaves must be at least 1"),
    (["--octave-scale", "1"], "--octave-scale must be above 1"),
    (["--octave-scale", "nan"], "--octave-scale must be above 1"),
    (["--step-size", "0"], "--step-size must be positive"),
    (["--step-size", "inf"], "--step-size must be positive"),
    (["--jitter", "-1"], "--jitter must be >= 0"),
    (["--seed", str(2**32)], "--seed must be in [0, 2**32)"),
    (["--quality", "101"], "--quality must be in [1, 100]"),
    (["--tile-size", "16"], "--tile-size must be at least 32"),
    (["--tile-above", "-1"], "--tile-above must be >= 0"),
    (["--mode", "lbfgs", "--objective", "gain", "--gain", "0"], "--gain must be positive"),
    (["--mode", "lbfgs", "--gain", "3"], "--gain is for --objective gain"),
    (["--mode", "lbfgs", "--iters", "10"], "--iters is for --mode ascent; use --lbfgs-iters"),
    (["--mode", "lbfgs", "--jitter", "0"], "--jitter is for --mode ascent"),
    (["--mode", "lbfgs", "--step-size", "2"], "--step-size is for --mode ascent"),
    (["--mode", "lbfgs", "--seed", "1"], "--seed is for --mode ascent; L-BFGS has no randomness"),
    (["--mode", "lbfgs", "--no-clip"], "--no-clip is for --mode ascent"),
    (["--mode", "lbfgs", "--tv-beta", "0.5"], "--tv-beta must be >= 1"),
    (["--mode", "lbfgs", "--objective", "gain", "--guide", "g.jpg"], "--objective gain is for unguided L-BFGS"),
    (["--mode", "lbfgs", "--tile-size", "512"], "--tile-size/--tile-above are for --mode ascent"),
    (["--model", "m", "--prototxt", "p"], "either --model or --prototxt"),
    (["--weights", "w"], "--weights goes with --prototxt"),
])
def test_bad_values_name_their_flag(argv, fragment):
    with pytest.raises(DeepDreamError) as e:
        _config(*argv)
    assert fragment in str(e.value) and "\n" not in str(e.value)


def test_lbfgs_options_are_refused_in_ascent_mode():
    """Issue 12: an option the mode would ignore is refused, not silently accepted (NaN included)."""
    for argv in (["--gain", "0"], ["--gain", "nan"], ["--tv-weight", "3"], ["--lbfgs-iters", "4"]):
        with pytest.raises(DeepDreamError, match=f"{argv[0]} is for --mode lbfgs"):
            _config(*argv)
    assert _config("--mode", "lbfgs", "--objective", "gain", "--gain", "3").solver.gain == 3.0
    assert _config("--gain", "2").mode == "ascent"  # its default, given explicitly: nothing ignored


def test_every_command_module_adds_itself(tmp_path, monkeypatch):
    sub = build_parser()._subparsers._group_actions[0]
    assert list(sub.choices) == ["dream", "visualize", "zoom", "video", "frames-to-video", "layers", "batch", "atlas",
                                 "models", "doctor"]
    # A new command is one module with add_parser(subparsers) in cli/commands/: nothing else to edit.
    (tmp_path / "hello.py").write_text(
        "ORDER = 5\n"
        "def add_parser(subparsers):\n"
        "    p = subparsers.add_parser('hello', help='say hello')\n"
        "    p.add_argument('--name', default='world')\n"
        "    p.set_defaults(func=lambda args: print('hello ' + args.name) or 0)\n")
    monkeypatch.setattr(commands, "__path__", [*commands.__path__, str(tmp_path)])
    monkeypatch.delitem(sys.modules, f"{commands.__name__}.hello", raising=False)
    try:
        parser = build_parser()
        assert list(parser._subparsers._group_actions[0].choices)[0] == "hello"
        args = parser.parse_args(["hello", "--name", "you"])
        assert args.func(args) == 0
    finally:
        sys.modules.pop(f"{commands.__name__}.hello", None)


def test_parsing_loads_neither_numpy_nor_caffe():
    code = ("import sys; from deepdream_caffe.cli import build_parser; "
            "build_parser().parse_args(['dream', '-o', 'x.png', '--mode', 'lbfgs']); "
            "build_parser().parse_args(['video', 'in.mp4', '-o', 'x.mp4', '--flow', 'farneback']); "
            "build_parser().parse_args(['frames-to-video', 'd', 'x.gif', '--fps', '10']); "
            "build_parser().parse_args(['batch', 'a.jpg', '--out-dir', 'd', '--sweep', 'layer=x,y']); "
            "print(sorted(m for m in ('numpy', 'scipy', 'caffe', 'PIL', 'av', 'cv2', 'dask', 'distributed') "
            "if m in sys.modules))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"


def test_layer_and_channel_terms_print_back_as_they_parse():
    for text in ["inception_4c/output", "inception_3b/output=0.5", "a=b=-2.0"]:
        assert layer_term(term_text(layer_term(text))) == layer_term(text)
    for text in ["inception_4c/output:42", "inception_4c/output:42=2.0"]:
        assert channel_term(term_text(channel_term(text))) == channel_term(text)
    assert term_text(layer_term("x=1")) == "x" and term_text(channel_term("x:3=0.25")) == "x:3=0.25"
