"""``deepdream-caffe dream --mode lbfgs`` run as a user runs it: output, metadata, bad input."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from skimage import data as skdata
from skimage import transform as sktransform

from cli_util import assert_one_line_error, run_cli
from deepdream_caffe import guide_features
from deepdream_caffe.dream.lbfgs import deepdream_lbfgs
from deepdream_caffe.dream.objectives import guide
from deepdream_caffe.io.image import encode_image, load_image
from deepdream_caffe.net.loading import load_net


@pytest.fixture
def photo(tmp_path):
    p = tmp_path / "in.png"
    img = sktransform.resize(skdata.astronaut(), (40, 48), anti_aliasing=True) * 255
    Image.fromarray(np.uint8(img)).save(p)
    return p


def _lbfgs_cmd(model, photo, out, *extra):
    proto, weights = model
    return ["dream", photo, "-o", out, "--mode", "lbfgs", "--prototxt", proto, "--weights", weights,
            "--layer", "a/output", "--octaves", "2", "-q", *extra]


def test_cli_lbfgs_output_is_the_api_output_and_metadata_is_recorded(tiny_model, photo, tmp_path):
    out = tmp_path / "out.jpg"
    r = run_cli(_lbfgs_cmd(tiny_model, photo, out, "--lbfgs-iters", "4", "--objective", "gain", "--gain", "3",
                           "--tv-weight", "7", "--alpha-weight", "0.5"))
    assert r.returncode == 0, r.stderr
    assert "seed" not in r.stderr  # nothing random, so no seed is drawn or reported
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.png", "out.jpg", "out.jpg.json"]  # no state left

    net = load_net(*tiny_model, end="a/output", fast=True)
    img, info = deepdream_lbfgs(net, load_image(photo), end="a/output", octave_n=2, objective="gain", gain=3.0,
                                tv_weight=7.0, alpha_weight=0.5, maxiter=4)
    assert out.read_bytes() == encode_image(img, "JPEG")

    meta = json.loads((tmp_path / "out.jpg.json").read_text())
    rec = meta["lbfgs"]
    assert meta["params"]["mode"] == "lbfgs" and meta["seed"] is None
    # only what the run used: no ascent-only settings
    assert not {"iters", "step_size", "jitter", "clip", "guide", "tiling"} & set(meta["params"])
    lb = meta["params"]["lbfgs"]
    assert (lb["objective"], lb["gain"], lb["maxiter"]) == ("gain", 3.0, 4)
    assert rec["objective"] == "gain" and rec["formula"] == info["formula"]
    assert (rec["gain"], rec["tv_weight"], rec["alpha_weight"], rec["maxiter"]) == (3.0, 7.0, 0.5, 4)
    assert rec["final"] == pytest.approx(info["final"])
    assert rec["nfev"] == info["nfev"] > 0
    assert [o["nfev"] for o in rec["octaves"]] == [o["nfev"] for o in info["octaves"]]


def test_cli_guided_lbfgs_is_the_api_run_on_the_guided_objective(tiny_model, photo, tmp_path):
    g = tmp_path / "guide.png"
    Image.fromarray(np.uint8(sktransform.resize(skdata.chelsea(), (36, 36), anti_aliasing=True) * 255)).save(g)
    out, plain = tmp_path / "guided.jpg", tmp_path / "plain.jpg"
    r = run_cli(_lbfgs_cmd(tiny_model, photo, out, "--lbfgs-iters", "4", "--guide", g))
    assert r.returncode == 0, r.stderr
    assert run_cli(_lbfgs_cmd(tiny_model, photo, plain, "--lbfgs-iters", "4")).returncode == 0

    net = load_net(*tiny_model, end="a/output", fast=True)
    objective = guide("a/output", guide_features(net, load_image(g), "a/output"))
    img, info = deepdream_lbfgs(net, load_image(photo), end="a/output", octave_n=2, objective=objective, maxiter=4)
    assert out.read_bytes() == encode_image(img, "JPEG")
    assert not np.array_equal(load_image(out), load_image(plain))  # the guide is the data term, not ignored
    for octave in info["octaves"]:  # each octave raised the guided objective minus the prior
        assert octave["final"]["total"] < octave["initial"]["total"]
    meta = json.loads(out.with_name("guided.jpg.json").read_text())
    assert meta["params"]["guide"] == str(g) and meta["params"]["objective"].startswith("guide('a/output'")



@pytest.mark.parametrize("extra, fragment", [
    (["--objective", "gain", "--gain", "0"], "--gain must be positive"),
    (["--objective", "gain", "--gain", "-2"], "--gain must be positive"),
    (["--gain", "3"], "--gain is for --objective gain"),
    (["--iters", "5"], "--iters is for --mode ascent; use --lbfgs-iters"),
    (["--jitter", "0"], "--jitter is for --mode ascent"),
    (["--step-size", "1.5"], "--step-size is for --mode ascent"),
    (["--seed", "3"], "--seed is for --mode ascent; L-BFGS has no randomness"),
    (["--no-clip"], "--no-clip is for --mode ascent"),
    (["--tv-weight", "-1"], "--tv-weight must be >= 0"),
    (["--alpha-weight", "-0.5"], "--alpha-weight must be >= 0"),
    (["--lbfgs-iters", "0"], "--lbfgs-iters must be at least 1"),
    (["--lbfgs-maxfun", "0"], "--lbfgs-maxfun must be at least 1"),
    (["--layer", "fc"], "layer 'fc' is a classifier layer"),
    (["--layer", "pool2"], "layer 'pool2' has no spatial extent"),
])
def test_cli_lbfgs_bad_input_is_one_line_and_writes_nothing(tiny_model, photo, tmp_path, extra, fragment):
    out = tmp_path / "out.png"
    r = run_cli(_lbfgs_cmd(tiny_model, photo, out, *extra))
    assert_one_line_error(r, fragment, code=1)
    assert not out.exists()
    assert not (tmp_path / "out.png.json").exists()
