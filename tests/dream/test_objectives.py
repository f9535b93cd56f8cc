"""Objectives that compose: several layers, weights, priors, expressions (real Caffe nets)."""
from __future__ import annotations

from typing import List, Sequence, Tuple

import numpy as np
import pytest
from skimage import data as skdata
from skimage import transform as sktransform

from deepdream_caffe import deepdream, deepdream_lbfgs, guide_features, load_net, objective_guide
from deepdream_caffe.dream.gradient import add_input_terms, objective_gradient
from deepdream_caffe.dream.objectives import (
    INPUT,
    L2,
    Objective,
    alpha_norm,
    channel,
    class_logprob,
    class_score,
    feature_match,
    guide,
    input_l2,
    neuron,
    parse_objective,
    tv,
)
from deepdream_caffe.dream.priors import tv_norm
from deepdream_caffe.dream.tiling import tile_gradient
from deepdream_caffe.dream.transform import preprocess
from deepdream_caffe.errors import DeepDreamError
from deepdream_caffe.net.access import end_blob, input_blob

# A term as the test writes it down independently of the package: (kind, layer, index).
Part = Tuple[str, str, int]


def _objective(part: Part) -> Objective:
    kind, layer, i = part
    return {"l2": lambda: L2(layer), "channel": lambda: channel(layer, i), "neuron": lambda: neuron(layer, i),
            "class": lambda: class_score(layer, i), "logprob": lambda: class_logprob(layer, i)}[kind]()


def _log_softmax(z: np.ndarray) -> np.ndarray:
    z = z.astype(np.float64).ravel()
    return z - z.max() - np.log(np.exp(z - z.max()).sum())


def _delta(part: Part, ap: np.ndarray, am: np.ndarray) -> float:
    """value(a_plus) - value(a_minus) in float64, element by element (untouched activations cancel exactly)."""
    kind, _, i = part
    if kind == "l2":
        return 0.5 * float((ap * ap - am * am).sum())
    if kind in ("channel", "class"):
        return float((ap[i] - am[i]).sum())
    if kind == "logprob":
        return float(_log_softmax(ap)[i] - _log_softmax(am)[i])
    h, w = ap.shape[1:]
    return float(ap[i, h // 2, w // 2] - am[i, h // 2, w // 2])


def _set(net, x: np.ndarray) -> None:
    src = input_blob(net.net)
    src.reshape(*x.shape)
    src.data[...] = x


def _acts(net, x: np.ndarray, layer: str) -> np.ndarray:
    """The layer's output where forward(end=layer) stops: its own forward pass, not the package's."""
    _set(net, x)
    net.net.forward(end=layer)
    return end_blob(net.net, layer).data[0].astype(np.float64).copy()


def _grad(net, x: np.ndarray, objective: Objective) -> np.ndarray:
    _set(net, x)
    return np.asarray(objective_gradient(net, objective), dtype=np.float64)[None].copy()


def balanced(net, x: np.ndarray, parts: Sequence[Part]) -> Tuple[Objective, List[float]]:
    """The parts summed with weights that give each the same gradient norm at x: a mistake in any shows."""
    weights = [1.0 / np.linalg.norm(_grad(net, x, _objective(p))) for p in parts]
    return sum(w * _objective(p) for w, p in zip(weights, parts)), weights


def fd_error(net, x: np.ndarray, parts: Sequence[Part], weights: Sequence[float], g: np.ndarray,
             eps: float = 1e-2, k: int = 8, patch: int = 6, seed: int = 0) -> float:
    """The median over ``k`` probes of |FD - g.d| / |g.d|, central differences of the weighted parts.

    Each probe d is the gradient on a ``patch`` x ``patch`` square of pixels
    (rms 1 per touched value), so the directional derivative is large
    against Caffe's float32 rounding; the step ``eps`` (in pixel levels) is
    small against the ReLU and max-pool kinks, and the median keeps the odd
    probe whose step crosses one anyway from deciding.
    """
    rs = np.random.RandomState(seed)
    fds, ans = [], []
    energy = float(np.sum(g * g))
    while len(fds) < k:
        y0, x0 = rs.randint(0, x.shape[2] - patch), rs.randint(0, x.shape[3] - patch)
        d = np.zeros_like(x, dtype=np.float64)
        d[:, :, y0:y0 + patch, x0:x0 + patch] = g[:, :, y0:y0 + patch, x0:x0 + patch]
        if np.sum(d * d) < 1e-4 * energy:
            continue  # the objective barely sees these pixels
        d /= np.sqrt(np.mean(d[:, :, y0:y0 + patch, x0:x0 + patch] ** 2))
        xp, xm = (x + eps * d).astype(np.float32), (x - eps * d).astype(np.float32)
        fds.append(sum(w * _delta(p, _acts(net, xp, p[1]), _acts(net, xm, p[1])) for w, p in zip(weights, parts)))
        ans.append(float((g * (xp.astype(np.float64) - xm.astype(np.float64))).sum()))  # the step float32 took
    return float(np.median(np.abs(np.array(fds) - np.array(ans)) / np.abs(np.array(ans))))


def photo(h: int, w: int) -> np.ndarray:
    return np.float32(sktransform.resize(skdata.astronaut(), (h, w), anti_aliasing=True) * 255)


# ---------------------------------------------------------------- the combined gradient

# conv1 and a/1x1 are each followed by an in-place ReLU: their terms read them before it.
# relu1 is the same blob after the ReLU. a/1x1 does not feed a/3x3.
TINY_PARTS: List[Part] = [("l2", "a/output", 0), ("l2", "conv1", 0), ("l2", "relu1", 0),
                          ("channel", "a/1x1", 3), ("neuron", "norm1", 2)]
OFF_PATH: List[Part] = [("l2", "a/3x3", 0), ("l2", "a/1x1", 0)]
# The class terms at the classifier: log softmax of class 2 (every score moves it) and the raw score of 4.
CLASS_PARTS: List[Part] = [("class", "fc", 4), ("logprob", "fc", 2), ("l2", "a/output", 0)]


@pytest.mark.parametrize("parts", [TINY_PARTS, OFF_PATH, CLASS_PARTS], ids=["in-place", "off-path", "class"])
@pytest.mark.parametrize("fast", [False, True])
def test_combined_gradient_matches_finite_differences_tiny(tiny_model, parts, fast):
    layers = sorted({p[1] for p in parts})
    net = load_net(*tiny_model, end=layers if fast else None, fast=fast)
    x = np.random.RandomState(1).uniform(-20, 20, (1, 3, 24, 24)).astype(np.float32)
    objective, weights = balanced(net, x, parts)
    g = _grad(net, x, objective)
    assert fd_error(net, x, parts, weights, g) < 2e-3  # measured: below 4e-5
    # It sees the second term (conv1 before its ReLU; a/1x1 off the path) missing, or a 5% error.
    rest = sum(w * _objective(p) for i, (w, p) in enumerate(zip(weights, parts)) if i != 1)
    assert fd_error(net, x, parts, weights, _grad(net, x, rest)) > 1e-2  # measured: above 0.3
    assert fd_error(net, x, parts, weights, 1.05 * g) > 1e-2


@pytest.fixture(scope="module")
def googlenet_parts(googlenet_model):
    # 3b/5x5_reduce is followed by an in-place ReLU; the example plus that layer.
    parts: List[Part] = [("l2", "inception_4c/output", 0), ("l2", "inception_3b/output", 0),
                         ("channel", "inception_4c/output", 42), ("l2", "inception_3b/5x5_reduce", 0)]
    net = load_net(*googlenet_model, end=[p[1] for p in parts], fast=True)
    x = preprocess(net, photo(64, 64))[None].astype(np.float32)
    objective, weights = balanced(net, x, parts)
    return net, x, parts, objective, weights


def test_combined_gradient_matches_finite_differences_googlenet(googlenet_parts):
    net, x, parts, objective, weights = googlenet_parts
    g = _grad(net, x, objective)
    # Over seeds 0-3 the median error is at most 0.0034 and each wrong gradient's at least 0.046.
    assert fd_error(net, x, parts, weights, g) < 1e-2

    # The check fails on the mistakes it is there for.
    w = dict(zip(parts, weights))
    read_after_relu = [p if p[1] != "inception_3b/5x5_reduce" else ("l2", "inception_3b/relu_5x5_reduce", 0)
                       for p in parts]
    wrong = {
        "5x5_reduce read after its in-place ReLU": sum(w[p] * _objective(q) for p, q in zip(parts, read_after_relu)),
        "the 3b/output term left out": sum(w[p] * _objective(p) for p in parts if p[1] != "inception_3b/output"),
        "5% too large": 1.05 * objective,
    }
    for name, bad in wrong.items():
        assert fd_error(net, x, parts, weights, _grad(net, x, bad)) > 3e-2, name


def test_combined_gradient_is_the_sum_of_single_layer_gradients(googlenet_model, googlenet_parts):
    """Each term alone, on its own net cut after its layer, as the single-layer path computes it."""
    net, x, parts, objective, weights = googlenet_parts
    combined = _grad(net, x, objective)
    total = np.zeros_like(combined)
    for w, p in zip(weights, parts):
        alone = load_net(*googlenet_model, end=p[1], fast=True)
        total += w * _grad(alone, x, _objective(p))
    np.testing.assert_allclose(combined, total, rtol=0, atol=1e-5 * np.abs(total).max())


def test_tiles_with_wide_margins_give_the_whole_gradient_on_several_layers(tiny_model):
    net = load_net(*tiny_model, end=["conv1", "norm1"], fast=True)
    objective = L2("norm1") + 0.5 * channel("conv1", 2) - 3 * L2("conv1")
    x = np.random.RandomState(2).uniform(-50, 50, (3, 70, 90)).astype(np.float32)
    whole = _grad(net, x[None], objective)[0]
    tiled = tile_gradient(net.net, x, objective, tile=32, margin=8, origin=(5, 11))
    np.testing.assert_allclose(tiled, whole, rtol=1e-5, atol=1e-4 * np.abs(whole).max())


# ---------------------------------------------------------------- algebra


def test_weights_scale_gradients_linearly(tiny_model):
    net = load_net(*tiny_model, end=["conv1", "a/output"], fast=True)
    x = np.random.RandomState(3).uniform(-20, 20, (1, 3, 24, 24)).astype(np.float32)
    a, b = L2("a/output"), channel("conv1", 1)
    ga, gb = _grad(net, x, a), _grad(net, x, b)
    assert np.abs(ga).max() > 0 and np.abs(gb).max() > 0
    # Backprop is linear and a power of two scales every rounding exactly: the same bits, doubled.
    assert np.array_equal(_grad(net, x, 2 * a), 2 * ga)
    assert np.array_equal(_grad(net, x, -a), -ga)
    assert np.array_equal(_grad(net, x, a / 4), ga / 4)
    assert not np.any(_grad(net, x, a - a))
    np.testing.assert_allclose(_grad(net, x, 0.3 * a + 0.7 * b), 0.3 * ga + 0.7 * gb, rtol=1e-5,
                               atol=1e-6 * np.abs(ga).max())
    np.testing.assert_allclose(_grad(net, x, sum([a, b, b])), ga + 2 * gb, rtol=1e-5, atol=1e-6 * np.abs(ga).max())


def test_term_values_are_what_they_say(tiny_model):
    net = load_net(*tiny_model)
    x = np.random.RandomState(4).uniform(-20, 20, (1, 3, 24, 24)).astype(np.float32)
    objective = L2("conv1") + 2 * channel("a/output", 3) - neuron("norm1", 1, 2, 5) + class_score("fc", 4) \
        - 0.5 * input_l2() + class_logprob("fc", 1)
    values: list = [None] * len(objective.terms)
    _set(net, x)
    objective_gradient(net, objective, values)
    conv1, a_out, norm1, fc = (_acts(net, x, layer) for layer in ("conv1", "a/output", "norm1", "fc"))
    want = [0.5 * (conv1 ** 2).sum(), a_out[3].sum(), norm1[1, 2, 5], fc[4], 0.5 * (x.astype(np.float64) ** 2).sum(),
            np.log(np.exp(fc[1]) / np.exp(fc).sum())]
    np.testing.assert_allclose(values, want, rtol=1e-6)
    assert objective.total(values) == pytest.approx(want[0] + 2 * want[1] - want[2] + want[3] - 0.5 * want[4] + want[5])


def test_one_term_of_weight_one_dreams_the_notebooks_bits(tiny_model):
    net = load_net(*tiny_model, end="a/output", fast=True)
    img = np.float32(np.random.RandomState(5).randint(0, 256, (40, 48, 3)))
    kw = dict(iter_n=2, octave_n=2, end="a/output", jitter=4)
    plain = deepdream(net, img, rng=np.random.RandomState(1), **kw)
    for objective in (L2("a/output"), 1.0 * L2("a/output"), 2 * L2("a/output")):  # the step ignores scale
        assert np.array_equal(deepdream(net, img, objective=objective, rng=np.random.RandomState(1), **kw), plain)
    feats = guide_features(net, photo(30, 30), "a/output")
    with_writer = deepdream(net, img, objective=objective_guide(feats), rng=np.random.RandomState(1), **kw)
    with_term = deepdream(net, img, objective=guide("a/output", feats), rng=np.random.RandomState(1), **kw)
    assert np.array_equal(with_writer, with_term) and not np.array_equal(with_term, plain)


# ---------------------------------------------------------------- priors


@pytest.mark.parametrize("beta, a", [(2.0, 6.0), (1.5, 2.5), (1.0, 1.0)])
def test_prior_gradients_match_finite_differences_in_objective_form(beta, a):
    objective = 0.3 * input_l2() - 50 * tv(beta) - alpha_norm(a) / 4
    rs = np.random.RandomState(6)
    x = rs.randn(3, 9, 11) * 40

    def value_and_grad(z):
        values = [None] * len(objective.terms)
        g = add_input_terms(objective, z, np.zeros_like(z), values)
        return objective.total(values), g

    _, g = value_and_grad(x)
    for _ in range(3):
        v = rs.randn(*x.shape)
        h = 1e-4
        fd = (value_and_grad(x + h * v)[0] - value_and_grad(x - h * v)[0]) / (2 * h)
        assert fd == pytest.approx(float(np.sum(g * v)), rel=1e-6)


def test_priors_are_terms_on_the_input(tiny_model):
    net = load_net(*tiny_model, end="a/output", fast=True)
    x = np.random.RandomState(7).uniform(-20, 20, (1, 3, 24, 24)).astype(np.float32)
    net_part = L2("a/output")
    prior = -10 * tv(2) - 1e-3 * input_l2()
    assert (net_part + prior).layers == ("a/output",) and [t.layer for _, t in prior.terms] == [INPUT, INPUT]
    both = _grad(net, x, net_part + prior)[0]
    x64 = x[0].astype(np.float64)
    want = _grad(net, x, net_part)[0] + -10 * tv_norm(x64, 2.0)[1]
    want += -1e-3 * x64  # d/dX of 0.5*||X||^2
    np.testing.assert_allclose(both, want, rtol=1e-12)


# ---------------------------------------------------------------- expressions


def test_expression_reads_back_to_the_same_objective(tiny_model):
    net = load_net(*tiny_model)
    feats = guide_features(net, photo(30, 30), "a/output")
    objective = (L2("a/output") + 0.5 * L2("conv1") + 2 * channel("a/output", 7) - 1e-3 * input_l2()
                 - guide("a/output", feats) + neuron("norm1", 2, 3, 4) - 50 * tv(1.5) - alpha_norm(6) / 8
                 - feature_match("norm1", gain=2) + class_score("fc", 3) + 0.5 * class_logprob("fc", 1))
    text = repr(objective)
    assert text == ("L2('a/output') + 0.5*L2('conv1') + 2*channel('a/output', 7) - 0.001*L2('input') "
                    "- guide('a/output', guide_features) + neuron('norm1', 2, 3, 4) - 50*tv(1.5) "
                    "- 0.125*alpha_norm(6) - feature_match('norm1', gain=2) + class_score('fc', 3) "
                    "+ 0.5*class_logprob('fc', 1)")
    seen = []

    def features(name, layer):
        seen.append((name, layer))
        return feats

    back = parse_objective(text, arrays=features)
    assert repr(back) == text and seen == [("guide_features", "a/output")]
    assert repr(parse_objective("0.2*channel('l', 20) + 0.8*channel('l', 21) - 1e-3*L2('input')")) == \
        "0.2*channel('l', 20) + 0.8*channel('l', 21) - 0.001*L2('input')"
    x = np.random.RandomState(8).uniform(-20, 20, (1, 3, 24, 24)).astype(np.float32)
    same = L2("a/output") - guide("a/output", feats) + 2 * channel("a/output", 7)
    assert np.array_equal(_grad(net, x, same), _grad(net, x, parse_objective(repr(same), {"guide_features": feats})))


@pytest.mark.parametrize("text, fragment", [
    ("L2('a') + 1", "unsupported operand"),
    ("L2('a') * L2('b')", "unsupported operand"),
    ("__import__('os').system('true')", "is not an objective"),
    ("L2(a)", "is not an objective"),
    ("guide('a', g)", "stands for an array"),
    ("3", "it is not an objective"),
    ("L2('a') +", "invalid syntax"),
    ("channel('a', -1)", "channel must be a whole number"),
    ("tv(0.5)", "tv beta must be >= 1"),
    ("feature_match('a', gain=-1)", "gain must be a positive number"),
])
def test_bad_expressions_are_one_line_errors(text, fragment):
    with pytest.raises(DeepDreamError) as e:
        parse_objective(text)
    assert fragment in str(e.value) and "\n" not in str(e.value)


# ---------------------------------------------------------------- nets for several layers


def test_load_net_cuts_after_the_deepest_layer_and_wires_every_layer(tiny_model):
    net = load_net(*tiny_model, end=["a/1x1", "conv1", "a/3x3"], fast=True)
    assert net.end == "a/3x3" and net.layers == ("conv1", "a/1x1", "a/3x3")
    assert net.layer_names()[-1] == "a/3x3"
    assert {"conv1", "a/1x1", "a/3x3"} <= net.backward_layers  # a/1x1 by its sink: it does not feed a/3x3
    full = load_net(*tiny_model, end=["a/1x1", "conv1"])
    assert full.end == "a/1x1" and full.backward_layers is None

    only_3x3 = load_net(*tiny_model, end="a/3x3", fast=True)
    img = photo(32, 32)
    with pytest.raises(DeepDreamError, match="layer 'a/1x1' gets no gradient in this net") as e:
        deepdream(only_3x3, img, objective=L2("a/1x1") + L2("a/3x3"), iter_n=1, octave_n=1)
    assert "\n" not in str(e.value)
    with pytest.raises(DeepDreamError, match="unknown layer 'a/3x4'"):
        load_net(*tiny_model, end=["conv1", "a/3x4"], fast=True)


@pytest.mark.parametrize("objective, fragment", [
    (channel("a/output", 12), "channel 12 is out of range for layer 'a/output' (12 channels: 0..11)"),
    (class_score("fc", 5), "class_score 5 is out of range for layer 'fc'"),
    (class_logprob("fc", 5), "class_logprob 5 is out of range for layer 'fc'"),
    (class_logprob("a/output", 2), "outputs, not one score per class"),
    (L2("a/outptu"), "unknown layer 'a/outptu'"),
    (neuron("a/output", 1, 0, 99), "outside layer 'a/output'"),
])
def test_objectives_that_do_not_fit_the_net_are_one_line_errors(tiny_model, objective, fragment):
    net = load_net(*tiny_model)
    with pytest.raises(DeepDreamError) as e:
        deepdream(net, photo(32, 32), objective=objective, iter_n=1, octave_n=1)
    assert fragment in str(e.value) and "\n" not in str(e.value)


def test_several_layers_dream_in_both_modes(tiny_model):
    layers = ["norm1", "a/output"]
    net = load_net(*tiny_model, end=layers, fast=True)
    img = photo(40, 40)
    objective = L2("a/output") + 0.5 * L2("norm1") + 2 * channel("a/output", 5)
    out = deepdream(net, img, objective=objective, iter_n=2, octave_n=2, jitter=4, rng=np.random.RandomState(0))
    alone = deepdream(net, img, end="a/output", iter_n=2, octave_n=2, jitter=4, rng=np.random.RandomState(0))
    assert out.shape == img.shape and not np.array_equal(out, alone)

    out, info = deepdream_lbfgs(net, img, objective=objective - feature_match("norm1", gain=2), octave_n=2,
                                maxiter=4, tv_weight=1.0)
    assert out.shape == img.shape and np.isfinite(out).all()
    assert info["objective"] == "expression" and info["layer"] == ["a/output", "norm1"]
    assert parse_objective(info["expression"]).layers == ("a/output", "norm1")
    assert info["expression"].endswith("- feature_match('norm1', gain=2) - tv(2)")
    for rec in info["octaves"]:
        assert rec["final"]["total"] < rec["initial"]["total"]
        # the TV weight is relative to the layer scale S: the weight applied is tv_weight * S
        assert rec["final"]["total"] == pytest.approx(rec["final"]["data"] + rec["tv_weight_applied"] * rec["final"]["tv"],
                                                      rel=1e-12)


def test_a_net_used_for_a_deeper_layer_first_gives_the_same_gradient_on_several_layers(tiny_model):
    """Diffs an earlier pass to a deeper layer left must not leak into a several-layer gradient.

    (pool1 feeds a Split whose other top goes to a/3x3, past the deepest
    layer here. One layer keeps the notebook's behaviour, stale diffs and all.)
    """
    x = np.random.RandomState(9).uniform(-20, 20, (1, 3, 24, 24)).astype(np.float32)
    objective = L2("a/1x1") + 0.5 * L2("conv1")
    fresh = _grad(load_net(*tiny_model), x, objective)
    used = load_net(*tiny_model)  # the whole net, force_backward, as the notebook's
    _grad(used, x, L2("a/output"))
    assert np.array_equal(_grad(used, x, objective), fresh)
