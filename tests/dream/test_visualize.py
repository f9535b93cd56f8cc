"""Class visualisation: the score layer and sizes from the prototxt, the regularisers, the tiled score,
and on GoogLeNet (random weights) and the trained open_nsfw net, real ascents of a class score."""
from __future__ import annotations

import numpy as np
import pytest

from deepdream_caffe.dream.gradient import objective_gradient
from deepdream_caffe.dream.objectives import tv
from deepdream_caffe.dream.params import Lbfgs
from deepdream_caffe.dream.transform import deprocess
from deepdream_caffe.dream.visualize import (
    Regularizers,
    TiledScore,
    VisualizeSolver,
    blur,
    class_objective,
    class_probabilities,
    clip_small_contribution,
    clip_small_norm,
    contribution,
    tile_starts,
    upward_octaves,
    visualize_class,
)
from deepdream_caffe.errors import DeepDreamError
from deepdream_caffe.net.access import input_blob, raw_net
from deepdream_caffe.net.classifier import classifier_layer, fixed_size_layer, native_size
from deepdream_caffe.net.loading import load_net
from deepdream_caffe.net.prototxt import read_prototxt


@pytest.fixture(scope="module")
def tiny_fc(tiny_model):
    proto, weights = tiny_model
    return load_net(proto, weights, end="fc", fast=True)


def test_score_layer_native_size_and_fixed_layers_from_the_prototxt(tiny_model, googlenet_prototxt):
    g = read_prototxt(googlenet_prototxt)
    assert classifier_layer(g) == "loss3/classifier"
    assert native_size(g) == (224, 224)
    assert fixed_size_layer(g, "loss3/classifier") == "loss3/classifier"
    assert fixed_size_layer(g, "inception_4c/output") is None
    t = read_prototxt(tiny_model[0])
    assert classifier_layer(t) == "fc" and native_size(t) == (32, 32)


def _fd(f, x, idx, eps=1e-2):
    xp, xm = x.copy(), x.copy()
    xp[idx] += eps
    xm[idx] -= eps
    return (f(xp) - f(xm)) / (2 * eps)


@pytest.mark.parametrize("prior", ["l2", "tv"])
def test_objective_priors_gradient_against_finite_differences(tiny_fc, prior):
    """The L2 prior (Simonyan) and the TV prior (L-BFGS variant) with the class score, on the tiny net."""
    obj = class_objective("fc", 2, l2=0.01) if prior == "l2" else class_objective("fc", 2) - 0.5 * tv(2)
    cnet = raw_net(tiny_fc)
    src = input_blob(cnet)
    src.reshape(1, 3, 32, 32)
    x = np.random.RandomState(0).uniform(-60, 60, (3, 32, 32))

    def value(z):
        src.data[0] = z
        vals = [None] * len(obj.terms)
        objective_gradient(tiny_fc, obj, vals, z.astype(np.float64))
        return obj.total(vals)

    src.data[0] = x
    g = np.array(objective_gradient(tiny_fc, obj, None, x.astype(np.float64)), dtype=np.float64)
    for idx in [(0, 5, 7), (1, 16, 16), (2, 30, 2)]:
        assert g[idx] == pytest.approx(_fd(value, x, idx), rel=2e-2, abs=2e-4)
    if prior == "l2":  # the input term alone: -lambda * 2 * X, i.e. d(-lambda ||X||^2)/dX
        gs = np.array(objective_gradient(tiny_fc, class_objective("fc", 2), None, x), dtype=np.float64)
        np.testing.assert_allclose(g - gs, -0.02 * x, rtol=1e-5, atol=1e-4)


def test_transforms_blur_norm_and_contribution_clipping():
    rng = np.random.RandomState(1)
    x = rng.normal(0, 40, (3, 40, 50)).astype(np.float32)
    b = blur(x, 1.0)
    assert b.shape == x.shape and abs(b.mean() - x.mean()) < 0.05
    assert np.abs(np.diff(b, axis=-1)).mean() < 0.5 * np.abs(np.diff(x, axis=-1)).mean()  # high frequencies go
    n = clip_small_norm(x, 50)
    zero = ~np.any(n, axis=0)
    assert abs(zero.mean() - 0.5) < 0.01
    norms = np.linalg.norm(x, axis=0)
    assert norms[zero].max() <= norms[~zero].min()
    g = rng.normal(0, 1, x.shape)
    c = clip_small_contribution(x, g, 90)
    kept = np.any(c, axis=0)
    assert abs(kept.mean() - 0.1) < 0.01
    assert contribution(x, g)[kept].min() >= contribution(x, g)[~kept].max()


def test_tiled_score_is_the_mean_over_tiles_and_the_plain_gradient_at_native_size(tiny_fc):
    cnet = raw_net(tiny_fc)
    obj = class_objective("fc", 0)
    rng = np.random.RandomState(2)
    x = rng.uniform(-50, 50, (3, 32, 32)).astype(np.float32)
    vals = [None]
    g1 = TiledScore((32, 32))(cnet, obj, x, vals)
    src = input_blob(cnet)
    src.data[0] = x
    np.testing.assert_array_equal(g1, np.asarray(objective_gradient(tiny_fc, obj), dtype=np.float64))
    big = rng.uniform(-50, 50, (3, 40, 56)).astype(np.float32)
    assert tile_starts(40, 32) == [0, 8] and tile_starts(56, 32) == [0, 24]
    vals = [None]
    g = TiledScore((32, 32))(cnet, obj, big, vals)
    want_v, want_g = 0.0, np.zeros(big.shape)
    for y0 in (0, 8):
        for x0 in (0, 24):
            src.data[0] = big[:, y0:y0 + 32, x0:x0 + 32]
            v = [None]
            want_g[:, y0:y0 + 32, x0:x0 + 32] += objective_gradient(tiny_fc, obj, v)
            want_v += v[0]
    assert vals[0] == pytest.approx(want_v / 4, rel=1e-6)
    np.testing.assert_allclose(g, want_g / 4, rtol=1e-5, atol=1e-7)


def test_octaves_go_upward_from_the_native_size():
    assert upward_octaves(224, 224, (224, 224), None, 1.4) == (1, None)
    n, note = upward_octaves(448, 448, (224, 224), None, 1.4)
    assert n == 3 and note is None  # 448, 320, 229
    n, note = upward_octaves(448, 448, (224, 224), 5, 1.4)
    assert n == 3 and "instead of 5" in note
    with pytest.raises(DeepDreamError, match="smaller than the net's 224x224"):
        upward_octaves(200, 300, (224, 224), None, 1.4)
    with pytest.raises(DeepDreamError, match="decay"):
        Regularizers(decay=1.5).check()


def test_beyond_native_size_on_the_tiny_net_raises_the_tiled_score(tiny_fc):
    img, info = visualize_class(tiny_fc, 3, layer="fc", native=(32, 32), size=(48, 64), iter_n=6,
                                rng=np.random.RandomState(0), jitter=2)
    assert img.shape == (48, 64, 3)
    assert info["octave_n"] == 2 and [len(s) for s in info["scores"]] == [7, 7]
    assert info["scores"][-1][-1] > info["scores"][0][0]


def test_the_log_softmax_score_climbs_the_posterior_on_the_tiny_net(tiny_fc):
    kw = dict(layer="fc", native=(32, 32), iter_n=10, reg=Regularizers(decay=0.0, blur_every=0))
    img, info = visualize_class(tiny_fc, 2, score="log-softmax", **kw)
    assert info["score"] == "log-softmax" and info["expression"] == "class_logprob('fc', 2)"
    logp = np.array(info["scores"][0])
    assert np.all(logp <= 0) and logp[-1] > logp[0] + 0.5  # the values are log p_2 and they rise
    p = class_probabilities(tiny_fc, img, "fc")
    assert np.log(p[2]) == pytest.approx(logp[-1], abs=0.02)  # the recorded value is the image's own log p
    img_l, info_l = visualize_class(tiny_fc, 2, **kw)
    assert info_l["score"] == "logit" and info_l["expression"] == "class_score('fc', 2)"
    assert not np.array_equal(img, img_l)
    with pytest.raises(DeepDreamError, match="score must be logit or log-softmax"):
        visualize_class(tiny_fc, 2, score="softmax", **kw)


@pytest.mark.parametrize("score", ["logit", "log-softmax"])
def test_the_lbfgs_variant_climbs_the_class_and_reports_each_iterate(tiny_fc, score):
    seen = []
    opts = Lbfgs(tv_weight=1.0, tv_beta=2.0, alpha_weight=0.0, alpha=6.0, maxiter=8, maxfun=None)
    img, info = visualize_class(tiny_fc, 2, layer="fc", native=(32, 32), lbfgs=opts, score=score,
                                callback=lambda octave, step, v: seen.append((octave, step, v)))
    assert info["mode"] == "lbfgs" and img.shape == (32, 32, 3)
    assert [s[:2] for s in seen] == [(0, i) for i in range(len(seen))] and len(seen) >= 3
    assert seen[-1][2] > seen[0][2]  # the score minus the TV prior, per accepted iterate, rises
    p0 = class_probabilities(tiny_fc, deprocess(tiny_fc, np.zeros((3, 32, 32), np.float32)), "fc")[2]
    assert class_probabilities(tiny_fc, img, "fc")[2] > p0
    assert ("class_logprob" in info["expression"]) == (score == "log-softmax")


def test_momentum_and_falling_step_on_the_tiny_net(tiny_fc):
    sol = VisualizeSolver(tiny_fc, class_objective("fc", 1), (32, 32), 5, step_size=4.0, step_end=1.0)
    assert [sol.step_at(i) for i in range(5)] == [4.0, 3.25, 2.5, 1.75, 1.0]
    _, plain = visualize_class(tiny_fc, 1, layer="fc", native=(32, 32), iter_n=8)
    _, mom = visualize_class(tiny_fc, 1, layer="fc", native=(32, 32), iter_n=8, momentum=0.9, step_end=0.5)
    assert mom["momentum"] == 0.9 and mom["step_end"] == 0.5
    assert mom["scores"][0][-1] > mom["scores"][0][0] and mom["scores"][0][1:] != plain["scores"][0][1:]
    with pytest.raises(DeepDreamError, match="momentum must be in"):
        visualize_class(tiny_fc, 1, layer="fc", native=(32, 32), iter_n=2, momentum=1.0)


# GoogLeNet with random weights: two classes, each climbed from the zero image on its pre-softmax score.
# The bar, p > 0.9, is out of reach there in a test's budget (README "Class visualisation": 800
# steps give p 0.41 for class 3, still rising by ~0.2 in logit(p) per 100 steps; the class gradients are
# nearly orthogonal, but the pool5 features move at cosine ~0.15 to the class's weight row). What a
# trained net makes of its class image is asserted on open_nsfw below (p > 0.999).
# The plain normalised step zig-zags here (successive gradients have cosine -0.1 to -0.45 across the
# ReLU/max-pool kinks); momentum cancels the flipping part and a falling step lets the image settle.
# No blur or decay: blur (sigma 0.5 every step) stops the ascent (0.23 -> 1.6 in 54 steps) on this net.
# Measured with these settings (80 steps, shared 2-core EPYC): class 3: 0.23 -> 6.38, p 0.114 (the
# argmax); class 700: -0.05 -> 4.55, p 0.025 (argmax 788). The thresholds leave some room below.
THRESH_P = {3: 0.08, 700: 0.015}
THRESH_RISE = {3: 5.0, 700: 3.5}
FAST = dict(iter_n=80, step_size=6.0, step_end=0.6, momentum=0.9, reg=Regularizers(decay=0.0, blur_every=0))


@pytest.fixture(scope="module")
def googlenet_fc(googlenet_model):
    proto, weights = googlenet_model
    return load_net(proto, weights, end="loss3/classifier", fast=True)


@pytest.mark.slow
@pytest.mark.parametrize("k", [3, 700])
def test_googlenet_random_visualisation_is_classified_as_its_class(googlenet_fc, k):
    img, info = visualize_class(googlenet_fc, k, layer="loss3/classifier", native=(224, 224),
                                rng=np.random.RandomState(0), **FAST)
    p = class_probabilities(googlenet_fc, img, "loss3/classifier")
    s = np.array(info["scores"][0])
    print(f"class {k}: p={p[k]:.4f} argmax={p.argmax()} score {s[0]:.3f} -> {s[-1]:.3f}")
    p0 = class_probabilities(googlenet_fc, np.zeros((224, 224, 3)) + googlenet_fc.mean[::-1, 0, 0], "loss3/classifier")
    # Asserted: p[k] rises over 15-fold from the zero image (p0 is ~0.001), the score by several logits,
    # nearly every step up.
    assert p[k] > THRESH_P[k] and p[k] > 15 * p0[k]
    assert s[-1] > s[0] + THRESH_RISE[k]
    assert np.mean(np.diff(s) > 0) > 0.9


def _open_nsfw(request):
    try:
        return request.getfixturevalue("open_nsfw_model")
    except pytest.FixtureLookupError:
        pytest.skip("the trained-net fixture open_nsfw_model (tests/conftest.py, issue 14) is not on this branch")


def test_open_nsfw_class0_visualisation_raises_its_score_over_the_zero_image(request):
    """Class 0 only ("safe for work"); the image is measured, never written."""
    mf = _open_nsfw(request)
    param = read_prototxt(mf.prototxt)
    layer = classifier_layer(param)
    assert layer == "fc_nsfw"
    net = load_net(mf.prototxt, mf.weights, mean=mf.mean, channel_swap=mf.channel_swap, end=layer, fast=True)
    img, info = visualize_class(net, 0, layer=layer, native=native_size(param), iter_n=15, step_size=3.0,
                                rng=np.random.RandomState(0))
    s = info["scores"][0]
    zero = np.zeros(tuple(native_size(param)) + (3,)) + np.asarray(mf.mean, dtype=np.float64)[::-1]
    p0, p = class_probabilities(net, zero, layer)[0], class_probabilities(net, img, layer)[0]
    print(f"open_nsfw class 0 score: zero image {s[0]:.3f} -> {s[-1]:.3f}; p {p0:.3f} -> {p:.7f}")
    assert s[-1] > s[0] + max(2.0, abs(s[0]))
    # On a trained net the class image is what the net calls that class (measured: p 0.70 -> 1 - 1e-11).
    assert p > 0.999 and p0 < 0.9
