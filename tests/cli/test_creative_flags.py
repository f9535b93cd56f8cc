"""--max-size, --lap-levels, --preserve-colors and --channel LAYER:strongest/random on the command line."""
from __future__ import annotations

import argparse
from dataclasses import replace

import pytest

from cli_util import assert_one_line_error, run_cli
from deepdream_caffe.app.config import DreamConfig
from deepdream_caffe.cli import build_parser
from deepdream_caffe.cli.commands.batch import settings
from deepdream_caffe.cli.options import channel_term, dream_config, term_text
from deepdream_caffe.dream.params import Ascent
from deepdream_caffe.errors import DeepDreamError
from deepdream_caffe.io.image import read_metadata


def _config(*argv: str) -> DreamConfig:
    return dream_config(build_parser().parse_args(["dream", "-o", "o.png", *argv]))


def test_the_flags_reach_the_config_and_are_off_by_default():
    cfg = _config("--max-size", "512", "--lap-levels", "4", "--preserve-colors",
                  "--channel", "x:strongest=3", "--channel", "y:random", "--channel", "x:2=0.5")
    assert cfg.max_size == 512 and cfg.solver == Ascent(lap_levels=4, preserve_colors=True)
    assert cfg.picks == (("x", "strongest", 3), ("y", "random", 1)) and cfg.channels == (("x", 2, 0.5),)
    assert _config() == DreamConfig() and DreamConfig().solver == Ascent()
    for command in ("zoom", "video"):
        args = build_parser().parse_args([command, "in", "--max-size", "64", "--preserve-colors",
                                          *(["--out-dir", "z"] if command == "zoom" else ["-o", "v"])])
        assert dream_config(args).max_size == 64 and dream_config(args).solver.preserve_colors


def test_a_batch_passes_them_on_and_its_reproducing_command_repeats_them(tmp_path):
    args = build_parser().parse_args(["batch", "a.jpg", "--out-dir", str(tmp_path), "--max-size", "300",
                                      "--lap-levels", "3", "--channel", "x:strongest=2"])
    (s,) = settings(args)
    assert s.config.max_size == 300 and s.config.solver.lap_levels == 3 and s.config.picks == (("x", "strongest", 2),)
    flags = list(s.flags)
    assert flags[flags.index("--max-size") + 1] == "300" and flags[flags.index("--channel") + 1] == "x:strongest=2"
    assert _config(*flags) == replace(s.config, seed=None)


def test_picks_print_back_as_they_parse():
    for text in ["a/output:strongest", "a/output:strongest=4", "a/output:random=2"]:
        assert term_text(channel_term(text)) == text


@pytest.mark.parametrize("argv, fragment", [
    (["--lap-levels", "-1"], "--lap-levels must be in [0, 16]"),
    (["--max-size", "0"], "--max-size must be at least 1"),
    (["--channel", "x:strongest=0"], "--channel x:strongest: the number of channels must be at least 1"),
    (["--mode", "lbfgs", "--lap-levels", "3"], "--lap-levels is for --mode ascent"),
    (["--mode", "lbfgs", "--preserve-colors"], "--preserve-colors is for --mode ascent"),
    (["--mode", "lbfgs", "--channel", "x:random=2"], "--channel LAYER:random draws with the seed"),
])
def test_bad_values_name_their_flag(argv, fragment):
    with pytest.raises(DeepDreamError) as e:
        _config(*argv)
    assert fragment in str(e.value) and "\n" not in str(e.value)


def test_an_unknown_pick_or_count_is_a_parse_error():
    for text, fragment in [("x:loudest=2", "LAYER:strongest[=K] or LAYER:random[=K]"),
                           ("x:strongest=1.5", "the count in 'x:strongest=1.5' is not a whole number")]:
        with pytest.raises(argparse.ArgumentTypeError, match=fragment.replace("[", r"\[").replace("]", r"\]")):
            channel_term(text)


def test_cli_refuses_in_one_line_before_any_work_and_records_what_it_chose(tiny_model, tmp_path):
    net = ["--prototxt", tiny_model[0], "--weights", tiny_model[1]]
    r = run_cli(["dream", "-o", tmp_path / "o.png", *net, "--channel", "a/output:strongest=13", "--seed", "1"])
    assert_one_line_error(r, "--channel a/output:strongest=13: a/output has only 12 channels")
    r = run_cli(["dream", "-o", tmp_path / "o.png", *net, "--channel", "a/output:weird"])
    assert_one_line_error(r, "is not LAYER:INDEX[=WEIGHT]", code=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == []

    r = run_cli(["dream", "-o", tmp_path / "o.png", *net, "--channel", "a/output:random=2", "--seed", "4",
                 "--max-size", "100", "--lap-levels", "2", "--preserve-colors", "--iters", "1", "--octaves", "1", "-q"])
    assert r.returncode == 0, r.stderr
    params = read_metadata(tmp_path / "o.png")["params"]
    assert (params["max_size"], params["lap_levels"], params["preserve_colors"]) == (100, 2, True)
    assert params["picks"][0]["how"] == "random" and len(params["picks"][0]["channels"]) == 2
