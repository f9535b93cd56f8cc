"""Feature visualisation from noise (lucid's optvis): the chain rule through the Fourier and colour
parameterisations and the transforms, through Caffe too, and real ascents on the tiny net."""
from __future__ import annotations

import numpy as np
import pytest

from deepdream_caffe.dream.measures import channel_activation, laplacian_energy
from deepdream_caffe.dream.objectives import channel, class_score, neuron
from deepdream_caffe.dream.optvis import (
    FILL,
    STANDARD_TRANSFORMS,
    FourierImage,
    PixelImage,
    Scene,
    draw_warp,
    render_vis,
    to_valid_rgb,
    to_valid_rgb_adjoint,
    warp_at,
)
from deepdream_caffe.dream.params import Optvis
from deepdream_caffe.dream.visualize import TiledScore
from deepdream_caffe.errors import DeepDreamError
from deepdream_caffe.net.access import input_blob, raw_net
from deepdream_caffe.net.loading import load_net


@pytest.mark.parametrize("size", [(6, 8), (7, 9)])  # even and odd widths: with and without a Nyquist column
@pytest.mark.parametrize("param", [FourierImage, PixelImage])
@pytest.mark.parametrize("decorrelate", [False, True])
def test_the_parameterisation_gradient_matches_finite_differences(size, param, decorrelate):
    rs = np.random.RandomState(0)
    par = param(*size)
    target = rs.randn(3, *size)

    def f(p):  # a linear read-out of the image: its gradient with respect to the image is `target`
        return float((target * to_valid_rgb(par.image(p), decorrelate)).sum())

    p = rs.randn(*par.shape) * 0.3
    g = par.adjoint(to_valid_rgb_adjoint(to_valid_rgb(par.image(p), decorrelate), target, decorrelate))
    for _ in range(5):
        d = rs.randn(*par.shape)
        fd = (f(p + 1e-6 * d) - f(p - 1e-6 * d)) / 2e-6
        assert abs(fd - float((g * d).sum())) < 1e-6 * abs(fd)


def test_the_warp_adjoint_is_its_transpose_and_grey_stays_grey():
    rs = np.random.RandomState(1)
    warp = draw_warp(STANDARD_TRANSFORMS, 20, 24, rs)
    a, b = rs.randn(3, 20, 24), rs.randn(3, 20, 24)
    linear = warp.apply(a) - warp.apply(np.zeros_like(a))
    assert np.isclose(float((linear * b).sum()), float((a * warp.adjoint(b)).sum()), rtol=1e-10)
    assert np.allclose(warp.apply(np.full((3, 20, 24), FILL)), FILL)
    assert not np.allclose(linear, a)  # a draw moves the image
    same = warp_at(np.eye(3), (20, 24), (20, 24))
    assert np.allclose(same.apply(a), a) and np.allclose(same.adjoint(b), b)
    assert draw_warp((), 20, 24, rs) is None


@pytest.fixture(scope="module")
def tiny_a(tiny_model):
    proto, weights = tiny_model
    return load_net(proto, weights, end="a/output", fast=True)


def test_the_gradient_through_caffe_warp_colour_and_fourier_matches_finite_differences(tiny_a):
    # Caffe's own backward against finite differences is tests/dream/test_gradients.py's; here the chain
    # around it, on conv1 before its ReLU (a direction over the whole image would cross ReLU and max-pool
    # kinks deeper in), with a step large against float32 rounding.
    rs = np.random.RandomState(2)
    h = w = 24
    objective = channel("conv1", 3)
    input_blob(raw_net(tiny_a)).reshape(1, 3, h, w)
    scene = Scene(tiny_a, FourierImage(h, w), True, TiledScore((h, w)), objective)
    warp = draw_warp(STANDARD_TRANSFORMS, h, w, rs)
    p = rs.normal(0, 0.5, scene.param.shape)
    _, g = scene.value_and_grad(p, warp)
    errors = []
    for _ in range(6):
        d = rs.randn(*p.shape) * 0.01
        fd = (scene.value_and_grad(p + d, warp)[0] - scene.value_and_grad(p - d, warp)[0]) / 2
        errors.append(abs(fd - float((g * d).sum())) / abs(fd))
    assert float(np.median(errors)) < 1e-3 and max(errors) < 1e-2, errors


@pytest.mark.parametrize("settings", [Optvis(param="pixel", decorrelate=False, transforms="none"), Optvis()])
def test_the_channel_activation_rises(tiny_a, settings):
    img, info = render_vis(tiny_a, channel("a/output", 3), size=(32, 32), iter_n=15, settings=settings,
                           rng=np.random.RandomState(3))
    scores = info["scores"][0]
    assert img.shape == (32, 32, 3) and 0 <= img.min() and img.max() <= 255
    assert scores[-1] > scores[0] + 1.0 and info["final_score"] == scores[-1]
    # the last value is the image's own, untransformed: the channel's sum over its 16x16 positions
    assert np.isclose(channel_activation(tiny_a, "a/output", 3, img) * 16 * 16, scores[-1], rtol=1e-3)
    assert info["optvis"]["param"] == settings.param and info["expression"] == "channel('a/output', 3)"


def test_fourier_decorrelated_images_have_less_high_frequency_than_pixel_ones_at_equal_passes(tiny_a):
    def lap(settings, seed):
        img, _ = render_vis(tiny_a, channel("a/output", 3), size=(32, 32), iter_n=20, settings=settings,
                            rng=np.random.RandomState(seed))
        return laplacian_energy(img)

    for seed in (4, 5):
        assert lap(Optvis(param="fft", transforms="none"), seed) < \
            0.7 * lap(Optvis(param="pixel", decorrelate=False, transforms="none"), seed)


def test_a_neuron_and_a_class_score_climb_too(tiny_model, tiny_a):
    _, info = render_vis(tiny_a, neuron("a/output", 5), size=(32, 32), iter_n=10, rng=np.random.RandomState(6))
    assert info["scores"][0][-1] > info["scores"][0][0]
    proto, weights = tiny_model
    fc = load_net(proto, weights, end="fc", fast=True)
    _, info = render_vis(fc, class_score("fc", 1), size=(40, 36), native=(32, 32), iter_n=10,
                         rng=np.random.RandomState(7))
    assert info["scores"][0][-1] > info["scores"][0][0]


def test_a_channel_out_of_range_or_a_canvas_too_small_is_one_error_before_any_step(tiny_a):
    with pytest.raises(DeepDreamError, match="channel 99 is out of range for layer 'a/output'"):
        render_vis(tiny_a, channel("a/output", 99), size=(32, 32), iter_n=1)
    with pytest.raises(DeepDreamError, match="1x1 image is too small for layer 'a/output'"):  # not Caffe's abort
        render_vis(tiny_a, channel("a/output", 3), size=(1, 1), iter_n=1)
