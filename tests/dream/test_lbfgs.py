"""L-BFGS objective mode: gradients, optimiser behaviour, recorded info, bad input (real Caffe nets)."""
from __future__ import annotations

import argparse
import inspect
import json
from pathlib import Path
from typing import Callable, Tuple

import numpy as np
import pytest
from skimage import data as skdata
from skimage import transform as sktransform

from conftest import TINY_PROTOTXT, make_weights
from deepdream_caffe.app.config import DreamConfig
from deepdream_caffe.app.modes import run_lbfgs as app_run_lbfgs
from deepdream_caffe.app.run import FileCheckpoint
from deepdream_caffe.cli.fields import worded
from deepdream_caffe.cli.lbfgs import add_lbfgs_arguments, lbfgs_options
from deepdream_caffe.cli.progress import DreamProgress
from deepdream_caffe.dream.lbfgs import (
    DEFAULT_GAIN,
    DEFAULT_MAXITER,
    DEFAULT_OBJECTIVE,
    DEFAULT_TV_BETA,
    DEFAULT_TV_WEIGHT,
    deepdream_lbfgs,
    minimize_octave,
    octave_objective,
    pixel_bounds,
    plain_ascent,
)
from deepdream_caffe.dream.octaves import octave_sizes
from deepdream_caffe.dream.params import Lbfgs, Octaves, SettingError
from deepdream_caffe.dream.priors import alpha_norm, tv_norm
from deepdream_caffe.dream.transform import preprocess
from deepdream_caffe.errors import DeepDreamError
from deepdream_caffe.net.caffe_env import import_caffe
from deepdream_caffe.net.loading import load_net

caffe = import_caffe()

# A net like the tiny one but smooth everywhere (softplus instead of ReLU,
# average instead of max pooling): finite differences see no kinks, so a
# gradient check can be held to 1e-3. BNLL is not in place because Caffe's
# BNLL backward reads its bottom, which an in-place top would overwrite.
SMOOTH_PROTOTXT = """name: "smooth"
input: "data"
input_shape { dim: 1 dim: 3 dim: 24 dim: 24 }
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
  convolution_param { num_output: 8 kernel_size: 3 pad: 1
    weight_filler { type: "gaussian" std: 0.05 } bias_filler { type: "constant" value: 0.1 } } }
layer { name: "soft1" type: "BNLL" bottom: "conv1" top: "soft1" }
layer { name: "norm1" type: "LRN" bottom: "soft1" top: "norm1"
  lrn_param { local_size: 3 alpha: 0.0001 beta: 0.75 } }
layer { name: "pool1" type: "Pooling" bottom: "norm1" top: "pool1"
  pooling_param { pool: AVE kernel_size: 3 stride: 2 } }
layer { name: "a/1x1" type: "Convolution" bottom: "pool1" top: "a/1x1"
  convolution_param { num_output: 6 kernel_size: 1
    weight_filler { type: "xavier" } bias_filler { type: "constant" value: 0.05 } } }
layer { name: "a/soft_1x1" type: "BNLL" bottom: "a/1x1" top: "a/soft_1x1" }
layer { name: "a/3x3" type: "Convolution" bottom: "pool1" top: "a/3x3"
  convolution_param { num_output: 6 kernel_size: 3 pad: 1
    weight_filler { type: "xavier" } bias_filler { type: "constant" value: 0.05 } } }
layer { name: "a/soft_3x3" type: "BNLL" bottom: "a/3x3" top: "a/soft_3x3" }
layer { name: "a/output" type: "Concat" bottom: "a/soft_1x1" bottom: "a/soft_3x3" top: "a/output" }
"""

Fn = Callable[[np.ndarray], Tuple[float, np.ndarray]]


@pytest.fixture(scope="module")
def smooth_model(tmp_path_factory) -> Tuple[Path, Path]:
    d = tmp_path_factory.mktemp("smooth")
    proto = d / "smooth.prototxt"
    proto.write_text(SMOOTH_PROTOTXT)
    caffe.set_mode_cpu()
    caffe.set_random_seed(3)
    weights = d / "smooth.caffemodel"
    caffe.Net(str(proto), caffe.TEST).save(str(weights))
    return proto, weights


def photo(h: int, w: int) -> np.ndarray:
    """A natural image (float32 RGB, 0..255) of the given size."""
    return np.float32(sktransform.resize(skdata.astronaut(), (h, w), anti_aliasing=True) * 255)


def directional_error(f: Fn, x: np.ndarray, h: float = 0.1, k: int = 8, seed: int = 0) -> float:
    """||FD - analytic|| / ||analytic|| over ``k`` random directional derivatives.

    Directions have an rms of 1 per pixel, so ``h`` is a step in pixel
    levels (0..255 scale); central differences. Stacking several directions
    keeps one direction nearly orthogonal to the gradient from dominating.
    """
    _, g = f(x)
    rs = np.random.RandomState(seed)
    fd, an = [], []
    for _ in range(k):
        v = rs.randn(x.size)
        v /= np.sqrt(np.mean(v * v))
        fd.append((f(x + h * v)[0] - f(x - h * v)[0]) / (2 * h))
        an.append(float(g @ v))
    fd_a, an_a = np.array(fd), np.array(an)
    return float(np.linalg.norm(fd_a - an_a) / np.linalg.norm(an_a))


def balanced_objective(net, end: str, size: int, objective: str, beta: float, seed: int = 0):
    """(objective, evaluation point) with the data, TV and alpha gradients of equal norm there.

    The target comes from the clean image, the point is that image plus noise,
    so no term's gradient vanishes and a mistake in any of them shows.
    """
    x0 = preprocess(net, photo(size, size)).astype(np.float64)
    x1 = x0 + np.random.RandomState(seed).randn(*x0.shape) * 3
    data_only = octave_objective(net, end, x0, objective=objective, gain=2.0, tv_weight=0.0)
    gd = np.linalg.norm(data_only(x1.ravel())[1])
    tv_w = gd / np.linalg.norm(tv_norm(x1, beta)[1])
    alpha_w = gd / np.linalg.norm(alpha_norm(x1, 6.0)[1])
    f = octave_objective(net, end, x0, objective=objective, gain=2.0, tv_weight=tv_w, tv_beta=beta,
                         alpha_weight=alpha_w, alpha=6.0)
    return f, x1.ravel(), data_only


# ---------------------------------------------------------------- gradients


@pytest.mark.parametrize("prior, exponent, scale", [
    (tv_norm, 2.0, 30), (tv_norm, 1.5, 30), (tv_norm, 1.0, 30),
    (alpha_norm, 6.0, 60), (alpha_norm, 2.5, 60), (alpha_norm, 1.0, 60),
])
def test_prior_gradient_matches_central_differences(prior, exponent, scale):
    rs = np.random.RandomState(1)
    x = rs.randn(3, 7, 9) * scale
    v = rs.randn(*x.shape)
    _, g = prior(x, exponent)
    h = 1e-4
    fd = (prior(x + h * v, exponent)[0] - prior(x - h * v, exponent)[0]) / (2 * h)
    assert abs(fd - np.sum(g * v)) <= 1e-6 * abs(fd)


def test_regularizers_known_values():
    flat = np.full((3, 4, 5), 17.0)
    v, g = tv_norm(flat, 2.0)
    assert v == 0.0 and not g.any()
    # one vertical edge of height 128 (= 1 in units of B) in one channel: 4 rows cross it
    step = np.zeros((3, 4, 5))
    step[0, :, 3:] = 128.0
    assert tv_norm(step, 2.0)[0] == pytest.approx(4.0)
    # beta < 2 smooths with eps = 1e-6 inside the root: 56 flat pixels give sqrt(eps) each
    assert tv_norm(step, 1.0)[0] == pytest.approx(4 * np.sqrt(1 + 1e-6) + 56 * 1e-3, rel=1e-12)
    assert alpha_norm(np.full((1, 1, 2), -256.0), 3.0)[0] == pytest.approx(16.0)


@pytest.mark.parametrize("objective", ["gain", "l2"])
@pytest.mark.parametrize("beta", [2.0, 1.5])
@pytest.mark.parametrize("fast", [True, False])
def test_full_objective_gradient_check_below_1e3(smooth_model, objective, beta, fast):
    net = load_net(*smooth_model, end="a/output", fast=fast)
    f, x, _ = balanced_objective(net, "a/output", 24, objective, beta)
    for seed in range(3):
        assert directional_error(f, x, seed=seed) < 1e-3


def test_gradient_check_fails_for_wrong_gradients(smooth_model):
    net = load_net(*smooth_model, end="a/output", fast=True)
    f, x, data_only = balanced_objective(net, "a/output", 24, "gain", 1.5)
    assert directional_error(f, x) < 1e-3

    def data_off_by_3pc(z):
        v, g = f(z)
        return v, g + 0.03 * data_only(z)[1]

    def tv_gradient_missing(z):
        v, g = f(z)
        return v, g - f.tv_weight * tv_norm(z.reshape(f.shape), f.tv_beta)[1].ravel()

    def alpha_gradient_halved(z):
        v, g = f(z)
        return v, g - 0.5 * f.alpha_weight * alpha_norm(z.reshape(f.shape), f.alpha)[1].ravel()

    for broken in (data_off_by_3pc, tv_gradient_missing, alpha_gradient_halved):
        assert directional_error(broken, x) > 1e-3, broken.__name__


def test_gradient_through_relu_and_max_pool_tiny_net(tiny_model):
    # ReLU and max-pool kinks put an O(h) error into any finite difference
    # (a switched argmax changes the slope), so the step is smaller and the
    # bound looser than on the smooth net; a wrong gradient is off by far more.
    net = load_net(*tiny_model, end="a/output", fast=True)
    f, x, _ = balanced_objective(net, "a/output", 32, "gain", 2.0)
    assert directional_error(f, x, h=0.01) < 1e-2


# ---------------------------------------------------------------- the optimiser


def test_values_never_increase_and_pixels_stay_in_bounds(tiny_model):
    net = load_net(*tiny_model, end="a/output", fast=True)
    img = photo(40, 40)
    seen = {}
    out, info = deepdream_lbfgs(net, img, end="a/output", octave_n=2, objective="gain", gain=4.0, tv_weight=5.0,
                                alpha_weight=1.0, maxiter=15,
                                callback=lambda s: seen.setdefault(s.octave, []).append((s.step, s.value)))
    assert len(seen) == 2
    for o, rec in enumerate(info["octaves"]):
        assert [i for i, _ in seen[o]] == list(range(rec["nit"]))
        values = [rec["initial"]["total"]] + [v for _, v in seen[o]]
        assert values == rec["values"]
        assert all(values[i + 1] <= values[i] for i in range(len(values) - 1)), values
        assert values[-1] < values[0]
    assert out.min() >= 0.0 and out.max() <= 255.0

    def at_bounds(a):
        return int(np.sum((a == 0.0) | (a == 255.0)))

    assert at_bounds(out) > 5 * max(at_bounds(img), 1)  # the enhancement pushed against the bounds

    # Every accepted iterate, not just the result, is inside the box.
    x0 = preprocess(net, img).astype(np.float64)
    lo, hi = pixel_bounds(net, x0.shape)
    fobj = octave_objective(net, "a/output", x0, objective="gain", gain=4.0, tv_weight=5.0)
    outside = []

    def on_iterate(i, v, x):
        outside.append(int(np.sum((x < lo.ravel()) | (x > hi.ravel()))))

    x, rec = minimize_octave(fobj, x0, lo, hi, maxiter=10, on_iterate=on_iterate)
    assert len(outside) == rec["nit"] > 0 and sum(outside) == 0
    assert np.any(x == lo) or np.any(x == hi)


def test_gain_one_without_prior_stops_at_once_at_x0(tiny_model):
    net = load_net(*tiny_model, end="a/output", fast=True)
    img = np.round(photo(36, 44))
    x0 = preprocess(net, img).astype(np.float64)
    fobj = octave_objective(net, "a/output", x0, objective="gain", gain=1.0, tv_weight=0.0, alpha_weight=0.0)
    value, grad = fobj(x0.ravel())
    assert value == 0.0 and not grad.any()

    calls = []
    out, info = deepdream_lbfgs(net, img, end="a/output", octave_n=2, objective="gain", gain=1.0, tv_weight=0.0,
                                alpha_weight=0.0, callback=calls.append)
    assert calls == []
    assert [(r["nit"], r["nfev"]) for r in info["octaves"]] == [(0, 1), (0, 1)]
    assert all(r["converged"] for r in info["octaves"])
    assert np.array_equal(out, img)


def test_lbfgs_reaches_lower_value_than_plain_ascent(tiny_model):
    net = load_net(*tiny_model, end="a/output", fast=True)
    x0 = preprocess(net, photo(32, 32)).astype(np.float64)
    lo, hi = pixel_bounds(net, x0.shape)
    fobj = octave_objective(net, "a/output", x0, objective="gain", gain=2.0, tv_weight=DEFAULT_TV_WEIGHT,
                            relative=True)
    _, rec = minimize_octave(fobj, x0, lo, hi, maxiter=10)
    # Same number of evaluations of f and its gradient, the start included.
    _, ascent_values = plain_ascent(fobj, x0, lo, hi, steps=rec["nfev"] - 1)
    assert len(ascent_values) == rec["nfev"]
    assert rec["final"]["total"] < ascent_values[-1]


def test_octaves_follow_the_ascent_pyramid_and_info_is_recorded(tiny_model):
    net = load_net(*tiny_model, end="a/output", fast=True)
    img = photo(50, 60)
    out, info = deepdream_lbfgs(net, img, end="a/output", octave_n=3, octave_scale=1.3, objective="gain",
                                tv_weight=2.0, alpha_weight=0.5, maxiter=4, maxfun=6)
    assert out.dtype == np.float32 and out.shape == img.shape
    assert [tuple(r["size"]) for r in info["octaves"]] == octave_sizes(50, 60, 3, 1.3)[::-1]
    json.dumps(info)  # recorded as is in the output's metadata
    assert info["objective"] == "gain" and info["gain"] == 2.0 and "phi_n(X0)" in info["formula"]
    assert info["nfev"] == sum(r["nfev"] for r in info["octaves"])
    assert info["nit"] == sum(r["nit"] for r in info["octaves"])
    for r in info["octaves"]:
        assert 1 <= r["nit"] <= 4 and r["nfev"] <= 6 + 20  # maxfun is checked between iterations
        t = r["final"]
        # the weights are relative to the layer scale S of the octave's start
        assert r["prior_scale"] > 0
        assert r["tv_weight_applied"] == pytest.approx(2.0 * r["prior_scale"], rel=1e-12)
        assert r["alpha_weight_applied"] == pytest.approx(0.5 * r["prior_scale"], rel=1e-12)
        assert t["total"] == pytest.approx(t["data"] + r["tv_weight_applied"] * t["tv"]
                                           + r["alpha_weight_applied"] * t["alpha"], rel=1e-12)
        assert t["tv"] > 0 and t["alpha"] > 0
    assert info["final"] == info["octaves"][-1]["final"]

    again, _ = deepdream_lbfgs(net, img, end="a/output", octave_n=3, octave_scale=1.3, objective="gain",
                               tv_weight=2.0, alpha_weight=0.5, maxiter=4, maxfun=6)
    assert np.array_equal(out, again)  # nothing random


def test_l2_objective_increases_the_activations(tiny_model):
    net = load_net(*tiny_model, end="a/output", fast=True)
    img = photo(32, 32)
    _, info = deepdream_lbfgs(net, img, end="a/output", octave_n=1, objective="l2", tv_weight=0.0, maxiter=5)
    rec = info["octaves"][0]
    assert info["gain"] is None and info["formula"].startswith("-0.5*||phi_n(X)||^2")
    assert rec["final"]["data"] < rec["initial"]["data"] < 0


def test_googlenet_short_run(googlenet_model):
    net = load_net(*googlenet_model, end="inception_3a/output", fast=True)
    img = photo(64, 64)
    out, info = deepdream_lbfgs(net, img, end="inception_3a/output", octave_n=1, maxiter=3)
    rec = info["octaves"][0]
    assert out.shape == (64, 64, 3) and np.isfinite(out).all()
    assert rec["final"]["total"] < rec["initial"]["total"]
    assert rec["nit"] == 3


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize("kw, fragment", [
    ({"gain": 0.0}, "gain must be positive"),
    ({"gain": -2.0}, "gain must be positive"),
    ({"tv_weight": -1.0}, "tv_weight must be >= 0"),
    ({"alpha_weight": -0.1}, "alpha_weight must be >= 0"),
    ({"maxiter": 0}, "maxiter must be at least 1"),
    ({"maxfun": 0}, "maxfun must be at least 1"),
    ({"tv_beta": 0.5}, "tv_beta must be >= 1"),
    ({"alpha": 0.0}, "alpha must be >= 1"),
    ({"objective": "l1"}, "objective must be one of gain, l2"),
    ({"gain": float("nan")}, "gain must be a finite number"),
    ({"octave_n": 0}, "octave_n must be at least 1"),
])
def test_api_rejects_bad_parameters(tiny_model, kw, fragment):
    net = load_net(*tiny_model, end="a/output", fast=True)
    with pytest.raises(DeepDreamError) as e:
        deepdream_lbfgs(net, photo(32, 32), end="a/output", **kw)
    assert fragment in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("layer", ["fc", "pool2", "prob"])
def test_api_rejects_layer_without_spatial_extent(tiny_model, layer):
    net = load_net(*tiny_model)
    with pytest.raises(DeepDreamError, match=f"layer '{layer}' has no spatial extent"):
        deepdream_lbfgs(net, photo(32, 32), end=layer)


def test_api_rejects_unknown_layer_and_too_small_image(tiny_model):
    net = load_net(*tiny_model)
    with pytest.raises(DeepDreamError, match="unknown layer 'a/outptu'"):
        deepdream_lbfgs(net, photo(32, 32), end="a/outptu")
    with pytest.raises(DeepDreamError, match="too small for layer 'a/output'"):
        deepdream_lbfgs(net, photo(16, 16), end="a/output", octave_n=8)


# ---------------------------------------------------------------- CLI glue


def lbfgs_args(*argv: str, layer: str = "a/output", octaves: int = 2) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_lbfgs_arguments(parser)
    args = parser.parse_args(list(argv))
    args.layer, args.octaves, args.octave_scale = layer, octaves, 1.4
    return args


def run_lbfgs(net, img, args, progress_factory):
    """The command line's path: options checked into a config, then the app's L-BFGS run."""
    try:
        cfg = DreamConfig(layer=args.layer, octaves=Octaves(args.octaves, args.octave_scale),
                          solver=lbfgs_options(args))
    except SettingError as e:
        raise DeepDreamError(worded(e)) from None
    return app_run_lbfgs(net, img, end=cfg.layer, octaves=cfg.octaves, options=cfg.solver,
                         progress=progress_factory)


def test_cli_defaults_are_the_api_defaults():
    assert lbfgs_options(lbfgs_args()) == Lbfgs(**{
        "objective": DEFAULT_OBJECTIVE, "gain": DEFAULT_GAIN, "tv_weight": DEFAULT_TV_WEIGHT,
        "tv_beta": DEFAULT_TV_BETA, "alpha_weight": 0.0, "alpha": 6.0, "maxiter": DEFAULT_MAXITER, "maxfun": None})
    sig = inspect.signature(deepdream_lbfgs).parameters
    assert sig["objective"].default == DEFAULT_OBJECTIVE == "l2" and sig["tv_weight"].default == DEFAULT_TV_WEIGHT


@pytest.mark.parametrize("argv, layer, fragment", [
    (["--objective", "gain", "--gain", "0"], "a/output", "--gain must be positive"),
    (["--objective", "gain", "--gain", "-1.5"], "a/output", "--gain must be positive"),
    (["--tv-weight", "-1"], "a/output", "--tv-weight must be >= 0"),
    (["--alpha-weight", "-3"], "a/output", "--alpha-weight must be >= 0"),
    (["--lbfgs-iters", "0"], "a/output", "--lbfgs-iters must be at least 1"),
    (["--lbfgs-maxfun", "0"], "a/output", "--lbfgs-maxfun must be at least 1"),
    (["--tv-beta", "0.5"], "a/output", "--tv-beta must be >= 1"),
    (["--gain", "3"], "a/output", "--gain is for --objective gain"),
    ([], "fc", "layer 'fc' has no spatial extent"),
    ([], "pool2", "layer 'pool2' has no spatial extent"),
])
def test_run_lbfgs_rejects_bad_input_before_any_work(tiny_model, argv, layer, fragment):
    net = load_net(*tiny_model)
    made = []
    with pytest.raises(DeepDreamError) as e:
        run_lbfgs(net, photo(32, 32), lbfgs_args(*argv, layer=layer), lambda s, n: made.append(s))
    assert fragment in str(e.value) and "\n" not in str(e.value)
    assert made == []  # no progress bar was started


def test_run_lbfgs_progress_shows_objective_and_completes(tiny_model, capsys):
    net = load_net(*tiny_model, end="a/output", fast=True)
    bars = []

    def factory(sizes, iter_n):
        bars.append(DreamProgress(sizes, iter_n, quiet=False, label="lbfgs"))
        return bars[-1]

    out, meta = run_lbfgs(net, photo(40, 40), lbfgs_args("--lbfgs-iters", "6", "--objective", "gain", "--gain", "3"),
                          factory)
    assert out.shape == (40, 40, 3)
    assert meta["objective"] == "gain" and meta["gain"] == 3.0 and meta["maxiter"] == 6
    assert len(meta["octaves"]) == 2 and meta["nfev"] >= meta["nit"] > 0
    (bar,) = bars
    assert bar.bar.n == pytest.approx(bar.bar.total)  # full even if an octave stops early
    err = capsys.readouterr().err
    assert "f=" in err and "octave 2/2" in err

    # An octave that converges at once still fills its share of the bar.
    bars.clear()
    run_lbfgs(net, photo(40, 40), lbfgs_args("--objective", "gain", "--gain", "1", "--tv-weight", "0"), factory)
    assert bars[0].bar.n == pytest.approx(bars[0].bar.total)
    assert "converged" in capsys.readouterr().err


# ---------------------------------------------------------------- a full citizen: resume, step images, scale


class _Stop(Exception):
    pass


def test_interrupted_lbfgs_resumes_after_the_last_octave_with_the_same_bits(tiny_model, tmp_path):
    net = load_net(*tiny_model, end="a/output", fast=True)
    img = photo(48, 56)
    kw = dict(end="a/output", octave_n=3, maxiter=4)
    want, want_info = deepdream_lbfgs(net, img, **kw)

    state = tmp_path / "state.npz"

    def die_in_last_octave(info):
        if info.octave == 2 and info.step == 1:
            raise _Stop

    with pytest.raises(_Stop):
        deepdream_lbfgs(net, img, callback=die_in_last_octave,
                        checkpoint=FileCheckpoint(state, "k", np.random.RandomState(0)), **kw)
    cp = FileCheckpoint(state, "k", np.random.RandomState(0))
    seen = []
    got, info = deepdream_lbfgs(net, img, checkpoint=cp, callback=lambda s: seen.append(s.octave), **kw)
    assert cp.resumed_from == 1 and set(seen) == {2}  # only the last octave ran again
    assert np.array_equal(got, want)
    # the record holds the octaves run now: the last one, as the whole run had it
    assert json.dumps(info["octaves"]) == json.dumps(want_info["octaves"][2:])


def test_step_info_shows_each_iterate_as_an_image(tiny_model):
    net = load_net(*tiny_model, end="a/output", fast=True)
    img = photo(40, 52)
    shown = []

    def show(s):
        shown.append((s.octave, s.step, s.value, s.image()))

    out, info = deepdream_lbfgs(net, img, end="a/output", octave_n=2, maxiter=3, callback=show)
    sizes = octave_sizes(40, 52, 2, 1.4)[::-1]
    assert [(o, i) for o, i, _, _ in shown] == [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2)]
    for o, i, v, im in shown:
        assert im.shape == (*sizes[o], 3) and im.dtype == np.float32
        assert v == info["octaves"][o]["values"][i + 1]
        assert im.min() >= 0 and im.max() <= 255  # the iterates are inside the pixel bounds
    assert np.array_equal(shown[-1][3], out)  # the last iterate is the result
    assert not np.array_equal(shown[-2][3], out)


def test_prior_scale_is_the_start_energy_per_input_value(tiny_model):
    net = load_net(*tiny_model, end="a/output", fast=True)
    img = photo(36, 36)
    _, info = deepdream_lbfgs(net, img, end="a/output", octave_n=1, maxiter=2)
    x0 = preprocess(net, img)
    cnet = net.net
    cnet.blobs["data"].reshape(1, *x0.shape)
    cnet.blobs["data"].data[0] = x0
    cnet.forward(end="a/output")
    phi = cnet.blobs["a/output"].data[0].astype(np.float64)
    s = 0.5 * float(np.sum(phi * phi)) / x0.size
    rec = info["octaves"][0]
    assert rec["prior_scale"] == pytest.approx(s, rel=1e-12)
    assert rec["tv_weight_applied"] == pytest.approx(DEFAULT_TV_WEIGHT * s, rel=1e-12)


SCALED_TAIL = """
layer { name: "scaled" type: "Power" bottom: "a/output" top: "scaled" power_param { scale: 30 } }
"""


def test_relative_weights_make_the_dream_independent_of_the_layers_scale(tmp_path):
    """A layer 30x larger (same features) gives the same dream with the same relative weights; absolute ones do not."""
    proto = tmp_path / "scaled.prototxt"
    proto.write_text(TINY_PROTOTXT + SCALED_TAIL)
    weights = make_weights(proto, tmp_path / "scaled.caffemodel", seed=1)
    net = load_net(proto, weights)
    img = photo(40, 40)
    a, ia = deepdream_lbfgs(net, img, end="a/output", octave_n=2, maxiter=6)
    b, ib = deepdream_lbfgs(net, img, end="scaled", octave_n=2, maxiter=6)
    assert ib["octaves"][0]["prior_scale"] == pytest.approx(900 * ia["octaves"][0]["prior_scale"], rel=1e-5)
    assert np.abs(a - b).max() < 0.05 * np.abs(a - img).max()  # the same dream, up to float32 rounding
    # with the weight of the small layer taken as absolute on the large one, the prior all but vanishes
    x0 = preprocess(net, img).astype(np.float64)
    lo, hi = pixel_bounds(net, x0.shape)
    small = octave_objective(net, "a/output", x0, relative=True)
    fixed = octave_objective(net, "scaled", x0, tv_weight=small.tv_weight)
    xs, _ = minimize_octave(small, x0, lo, hi, maxiter=6)
    xf, _ = minimize_octave(fixed, x0, lo, hi, maxiter=6)
    assert tv_norm(xf)[0] > 1.5 * tv_norm(xs)[0]
