"""Several layers and channels through the app and the command line, in both modes, recorded so they read back."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from PIL import Image

from app_util import DiesAt
from cli_util import assert_one_line_error, run_cli
from deepdream_caffe import deepdream, load_net
from deepdream_caffe.app import DreamConfig, NetSource, dream_file
from deepdream_caffe.dream.objectives import L2, channel, parse_objective
from deepdream_caffe.dream.params import Ascent, Lbfgs, Octaves
from deepdream_caffe.io.image import load_image, read_metadata

TERMS = ["--layer", "a/output", "--layer", "norm1=0.5", "--channel", "a/output:3=2"]


def _photo(path, h=40, w=48, seed=0):
    Image.fromarray(np.random.RandomState(seed).randint(0, 256, (h, w, 3)).astype(np.uint8)).save(path)
    return path


@pytest.mark.parametrize("mode", ["ascent", "lbfgs"])
def test_cli_dreams_several_layers_and_a_channel_and_records_the_expression(tiny_model, tmp_path, mode):
    src = _photo(tmp_path / "in.png")
    out = tmp_path / f"{mode}.png"
    # (each mode refuses the other's own options: ascent's --iters and --seed, L-BFGS's --lbfgs-iters)
    own = ["--iters", "2", "--seed", "1"] if mode == "ascent" else ["--lbfgs-iters", "3"]
    r = run_cli(["dream", src, "-o", out, "--prototxt", tiny_model[0], "--weights", tiny_model[1], *TERMS,
                 "--mode", mode, "--octaves", "2", *own, "-q"])
    assert r.returncode == 0, r.stderr
    params = read_metadata(out)["params"]
    assert params["layer"] == ["a/output", "norm1"]
    objective = parse_objective(params["objective"])
    assert objective.layers == ("a/output", "norm1")
    if mode == "ascent":
        assert params["objective"] == "L2('a/output') + 0.5*L2('norm1') + 2*channel('a/output', 3)"
        # the API with that objective makes the same pixels
        net = load_net(*tiny_model, end=["norm1", "a/output"], fast=True)
        img = load_image(src)
        want = deepdream(net, img, objective=objective, iter_n=2, octave_n=2, rng=np.random.RandomState(1))
        assert np.array_equal(load_image(out), np.uint8(np.clip(want, 0, 255)))
    else:
        # the mode's default data term, l2, on each layer
        assert params["objective"] == "L2('a/output') + 0.5*L2('norm1') + 2*channel('a/output', 3)"
        lbfgs = read_metadata(out)["lbfgs"]
        assert lbfgs["objective"] == "expression" and lbfgs["expression"].startswith(params["objective"])
        assert all(rec["final"]["total"] < rec["initial"]["total"] for rec in lbfgs["octaves"])


def test_a_channel_alone_is_dreamed_alone(tiny_model, tmp_path):
    src = _photo(tmp_path / "in.png")
    cfg = DreamConfig(net=NetSource(prototxt=tiny_model[0], weights=tiny_model[1]), channels=(("a/output", 3, 1.0),),
                      solver=Ascent(iter_n=2, jitter=2), octaves=Octaves(1), seed=4)
    result = dream_file(src, tmp_path / "o.png", cfg)
    assert read_metadata(tmp_path / "o.png")["params"]["objective"] == "channel('a/output', 3)"
    want = deepdream(load_net(*tiny_model, end="a/output", fast=True), load_image(src), iter_n=2, octave_n=1,
                     jitter=2, objective=channel("a/output", 3), rng=np.random.RandomState(4))
    assert np.array_equal(result.image, want)


def test_cli_refuses_a_channel_past_the_layers_count_before_any_work(tiny_model, tmp_path):
    src = _photo(tmp_path / "in.png")
    r = run_cli(["dream", src, "-o", tmp_path / "o.png", "--prototxt", tiny_model[0], "--weights", tiny_model[1],
                 "--channel", "a/output:12", "-q"])
    assert_one_line_error(r, "channel 12 is out of range for layer 'a/output' (12 channels: 0..11)")
    assert not (tmp_path / "o.png").exists()
    r = run_cli(["dream", src, "-o", tmp_path / "o.png", "--prototxt", tiny_model[0], "--weights", tiny_model[1],
                 "--layer", "a/output", "--layer", "a/outptu=2", "-q"])
    assert_one_line_error(r, "unknown layer 'a/outptu'")


def test_the_issues_objective_runs_on_googlenet_in_both_modes(googlenet_model, tmp_path):
    """deepdream-caffe dream --layer inception_4c/output --layer inception_3b/output=0.5
    --channel inception_4c/output:42=2, through the app, on a small image (random weights)."""
    src = _photo(tmp_path / "in.png", 72, 80)
    terms = dict(layers=(("inception_4c/output", 1.0), ("inception_3b/output", 0.5)),
                 channels=(("inception_4c/output", 42, 2.0),))
    net = NetSource(prototxt=googlenet_model[0], weights=googlenet_model[1])
    for mode in ("ascent", "lbfgs"):
        solver = Ascent(iter_n=2) if mode == "ascent" else Lbfgs()
        cfg = DreamConfig(net=net, **terms, solver=solver, octaves=Octaves(2), seed=0)
        result = dream_file(src, tmp_path / f"{mode}.png", cfg)
        assert result.image.shape == (72, 80, 3) and np.isfinite(result.image).all()
        params = read_metadata(tmp_path / f"{mode}.png")["params"]
        assert params["layer"] == ["inception_4c/output", "inception_3b/output"]
    assert parse_objective(params["objective"]).layers == ("inception_4c/output", "inception_3b/output")
    ascent = load_image(tmp_path / "ascent.png")
    assert not np.array_equal(ascent, load_image(src)) and not np.array_equal(ascent, load_image(tmp_path / "lbfgs.png"))


def test_an_interrupted_lbfgs_dream_file_resumes_after_its_last_octave(tiny_model, tmp_path):
    src = _photo(tmp_path / "in.png", 48, 56)
    cfg = DreamConfig(net=NetSource(prototxt=tiny_model[0], weights=tiny_model[1]), layer="a/output",
                      solver=Lbfgs(), octaves=Octaves(3), seed=2)
    whole = dream_file(src, tmp_path / "whole.png", cfg)
    with pytest.raises(KeyboardInterrupt):
        dream_file(src, tmp_path / "cut.png", cfg, reporter=DiesAt(last=2))
    assert (tmp_path / ".cut.png.dream-state.npz").exists() and not (tmp_path / "cut.png").exists()
    rep = DiesAt(last=99)
    again = dream_file(src, tmp_path / "cut.png", cfg, reporter=rep)
    assert np.array_equal(again.image, whole.image)
    assert any("resumed after octave 2" in n for n in rep.notes)
    assert again.extra["lbfgs"]["resumed_after_octave"] == 2 and len(again.extra["lbfgs"]["octaves"]) == 1
    assert not (tmp_path / ".cut.png.dream-state.npz").exists()
    # The L-BFGS settings are in the resume key: a state left by a run with another TV weight is not picked up.
    with pytest.raises(KeyboardInterrupt):
        dream_file(src, tmp_path / "other.png", cfg, reporter=DiesAt(last=2))
    rep = DiesAt(last=99)
    dream_file(src, tmp_path / "other.png", replace(cfg, solver=Lbfgs(tv_weight=30.0)), reporter=rep)
    assert not any("resumed" in n for n in rep.notes)
    assert read_metadata(tmp_path / "other.png")["params"]["lbfgs"]["tv_weight"] == 30.0


def test_plain_layer_objective_is_the_notebooks(tiny_model, tmp_path):
    """One --layer of weight 1 records L2 on it and keeps the API's (the notebook's) bits."""
    src = _photo(tmp_path / "in.png")
    cfg = DreamConfig(net=NetSource(prototxt=tiny_model[0], weights=tiny_model[1]), layer="a/output",
                      solver=Ascent(iter_n=2, jitter=4), octaves=Octaves(2), seed=3)
    result = dream_file(src, tmp_path / "o.png", cfg)
    assert read_metadata(tmp_path / "o.png")["params"]["objective"] == "L2('a/output')"
    want = deepdream(load_net(*tiny_model, end="a/output", fast=True), load_image(src), end="a/output",
                     iter_n=2, octave_n=2, jitter=4, rng=np.random.RandomState(3))
    assert np.array_equal(result.image, want)
    # weights in the API mean the same as on the command line
    assert repr(L2("a/output") + 0.5 * L2("norm1") + 2 * channel("a/output", 3)) == \
        "L2('a/output') + 0.5*L2('norm1') + 2*channel('a/output', 3)"
