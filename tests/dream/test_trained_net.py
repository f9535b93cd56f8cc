"""On a trained net (open_nsfw, BatchNorm/Scale/Eltwise): dreams dream, L-BFGS's defaults are clean, parity holds."""
from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image
from skimage import data as skdata

from deepdream_caffe import deepdream, guide_features, load_net, objective_guide
from deepdream_caffe.dream.lbfgs import deepdream_lbfgs
from deepdream_caffe.dream.measures import (
    energy_gain,
    high_frequency_ratio,
    laplacian_energy,
    layer_energy,
    measure_dream,
    pixel_change,
)
from deepdream_caffe.dream.reference import nb_deepdream, nb_guide_features, nb_guide_objective, notebook_net

END = "eltwise_stage1_block3"


def small(photo: np.ndarray, width: int) -> np.ndarray:
    h = round(photo.shape[0] * width / photo.shape[1])
    return np.float32(Image.fromarray(np.uint8(photo)).resize((width, h), Image.LANCZOS))


@pytest.fixture(scope="module")
def nsfw(open_nsfw_model):
    m = open_nsfw_model
    return m.prototxt, m.weights, m.mean


@pytest.fixture(scope="module")
def net(nsfw):
    proto, weights, mean = nsfw
    return load_net(proto, weights, mean=mean, end=END, fast=True)


@pytest.fixture(scope="module")
def coffee() -> np.ndarray:
    return small(skdata.coffee(), 180)


def test_measures_on_known_images(net):
    flat = np.full((20, 30, 3), 100.0, np.float32)
    ramp = flat + np.arange(30, dtype=np.float32)[None, :, None]
    assert laplacian_energy(flat) == 0.0 and laplacian_energy(ramp) == 0.0  # a ramp has no curvature
    spike = flat.copy()
    spike[10, 15, 0] = 108.0
    # interior 18x28 pixels x 3 channels; the spike gives |4*8| once and |-8| at its 4 neighbours
    assert laplacian_energy(spike) == pytest.approx((32 + 4 * 8) / (18 * 28 * 3))
    assert pixel_change(flat, spike) == pytest.approx(8 / (20 * 30 * 3))
    assert high_frequency_ratio(spike, spike) == 1.0
    img = small(skdata.chelsea(), 96)
    assert energy_gain(net, END, img, img) == 1.0
    assert layer_energy(net, END, 2 * img) != layer_energy(net, END, img)
    # outputs are measured as they are saved: clipped to 0..255
    assert layer_energy(net, END, img + 1000) == layer_energy(net, END, np.full_like(img, 255))


def test_ascent_raises_the_layer_energy_by_a_clear_factor(net, coffee):
    out = deepdream(net, coffee, iter_n=10, octave_n=2, end=END, rng=np.random.RandomState(0))
    m = measure_dream(net, END, coffee, out, 20)
    assert m.energy_gain > 1.5, m
    assert m.pixel_change > 3, m


def test_lbfgs_defaults_beat_ascent_at_the_same_budget_and_are_cleaner(net, coffee):
    lb, info = deepdream_lbfgs(net, coffee, end=END, octave_n=2)
    iters = math.ceil(info["nfev"] / 2)  # ascent with at least L-BFGS's forward+backward passes
    asc = deepdream(net, coffee, iter_n=iters, octave_n=2, end=END, rng=np.random.RandomState(0))
    a = measure_dream(net, END, coffee, asc, 2 * iters)
    b = measure_dream(net, END, coffee, lb, info["nfev"])
    assert b.passes <= a.passes
    assert b.energy_gain >= a.energy_gain, (a, b)
    assert b.high_frequency < 0.6 * a.high_frequency, (a, b)
    assert b.energy_gain > 1.5  # a dream, not a blurred photo


@pytest.mark.parametrize("fast", [False, True])
def test_dream_is_bit_identical_to_the_notebook_on_batchnorm_eltwise(nsfw, fast):
    proto, weights, mean = nsfw
    img = small(skdata.rocket(), 160)
    nb = notebook_net(proto, weights, mean=mean)
    np.random.seed(7)
    want = nb_deepdream(nb, img, iter_n=2, octave_n=2, end=END)
    ours = load_net(proto, weights, mean=mean, end=END, fast=fast)  # as the CLI loads it, --notebook-net or not
    got = deepdream(ours, img, iter_n=2, octave_n=2, end=END, rng=np.random.RandomState(7))
    assert np.array_equal(got, want)
    assert not np.array_equal(got, img)


def test_guided_dream_is_bit_identical_to_the_notebook_on_batchnorm_eltwise(nsfw):
    proto, weights, mean = nsfw
    end = "eltwise_stage2_block2"  # an out-of-place top: the notebook reads net.blobs[end]
    img, guide = small(skdata.rocket(), 160), small(skdata.chelsea(), 96)
    nb = notebook_net(proto, weights, mean=mean)
    np.random.seed(3)
    want = nb_deepdream(nb, img, iter_n=2, octave_n=2, end=end, objective=nb_guide_objective(
        nb_guide_features(nb, guide, end)))
    ours = load_net(proto, weights, mean=mean, end=end, fast=True)
    obj = objective_guide(guide_features(ours, guide, end))
    got = deepdream(ours, img, iter_n=2, octave_n=2, end=end, objective=obj, rng=np.random.RandomState(3))
    assert np.array_equal(got, want)
