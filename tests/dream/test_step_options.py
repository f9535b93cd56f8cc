"""The step's options: Laplacian-pyramid normalisation of the gradient, and dreaming the luminance only."""
from __future__ import annotations

import numpy as np
import pytest
from skimage.color import rgb2ycbcr

from deepdream_caffe import deepdream, load_net
from deepdream_caffe.dream.colour import clip_along_grey
from deepdream_caffe.dream.gradient import objective_gradient
from deepdream_caffe.dream.laplacian import band_rms, lap_merge, lap_normalize, lap_split
from deepdream_caffe.dream.objectives import as_objective
from deepdream_caffe.dream.params import Ascent
from deepdream_caffe.dream.step import make_step
from deepdream_caffe.dream.transform import preprocess
from deepdream_caffe.errors import SettingError
from deepdream_caffe.net.access import input_blob

END = "a/output"


def _spread(x: np.ndarray, levels: int) -> float:
    """Largest over smallest RMS of ``x``'s bands."""
    rms = [band_rms(b) for b in lap_split(np.asarray(x, dtype=np.float64), levels)]
    return max(rms) / min(rms)


def test_the_split_is_exact_and_each_split_halves_the_size():
    x = np.random.RandomState(0).randn(3, 37, 50)
    bands = lap_split(x, 4)
    assert [b.shape for b in bands] == [(3, 5, 7), (3, 10, 13), (3, 19, 25), (3, 37, 50)]
    assert np.allclose(lap_merge(bands), x, atol=1e-12)
    assert lap_split(x, 1)[0] is x


def _photo(h: int = 40, w: int = 48, seed: int = 0) -> np.ndarray:
    """A smooth colourful picture with some texture (random pixels would make every band alike)."""
    rs = np.random.RandomState(seed)
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    base = np.dstack([200 * xx + 30, 180 * yy + 40, 120 * (1 - xx) + 60])
    return np.float32(np.clip(base + rs.randint(-20, 21, (h, w, 3)), 0, 255))


def _step(net, x, **kw):
    src = input_blob(net.net)
    src.reshape(1, *x.shape)
    src.data[0] = x
    make_step(net, end=END, jitter=0, clip=False, **kw)
    return src.data[0].copy()


def test_the_lap_step_moves_along_the_band_equalised_gradient(tiny_model):
    net = load_net(*tiny_model, end=END, fast=True)
    x = preprocess(net, _photo(64, 64))
    input_blob(net.net).reshape(1, *x.shape)
    input_blob(net.net).data[0] = x
    g = objective_gradient(net, as_objective(None, END)).copy()

    plain = _step(net, x) - x
    lap = _step(net, x, lap_levels=4) - x
    # Computed here from the gradient alone: each band divided by its own RMS, summed, then the
    # notebook's normalised step.
    bands = lap_split(g.astype(np.float64), 4)
    want = lap_merge([b / np.sqrt(np.mean(b * b)) for b in bands])
    want = 1.5 / np.abs(want).mean() * want
    assert np.allclose(lap, want, rtol=1e-4, atol=1e-5 * np.abs(want).max())
    # The plain step's bands differ more than tenfold in RMS; the lap step's within a factor of about 2
    # (bands scaled to equal RMS and summed do not split back into exactly equal ones).
    assert _spread(plain, 4) > 10 and _spread(lap, 4) < 2.5
    assert np.allclose(plain, 1.5 / np.abs(g).mean() * g, rtol=1e-4, atol=1e-5)  # off: the notebook's step


def test_lap_normalize_equalises_a_gradient_whose_energy_is_in_its_fine_band():
    rs = np.random.RandomState(1)
    g = np.float32(rs.randn(3, 64, 80) + 0.2 * np.kron(rs.randn(3, 8, 10), np.ones((8, 8))))
    assert _spread(g, 4) > 5
    assert _spread(lap_normalize(g, 4), 4) < 1.6
    one = lap_normalize(g, 1)  # one band: the gradient over its RMS
    assert np.allclose(one, g / np.sqrt(np.mean(np.float64(g) ** 2)), rtol=1e-5)


def _chroma(rgb: np.ndarray) -> np.ndarray:
    """Cb and Cr (scikit-image's BT.601 YCbCr) of an image in 0..255."""
    return rgb2ycbcr(np.clip(rgb, 0, 255) / 255.0)[..., 1:]


def test_preserve_colors_steps_along_grey_and_keeps_the_chroma(tiny_model):
    net = load_net(*tiny_model, end=END, fast=True)
    x = preprocess(net, _photo())
    d = _step(net, x, preserve_colors=True) - x
    assert np.abs(d).mean() > 0.5  # it moved
    assert np.allclose(d[0], d[1], atol=1e-4) and np.allclose(d[1], d[2], atol=1e-4)
    assert not np.allclose((_step(net, x) - x)[0], (_step(net, x) - x)[1], atol=1e-2)  # the plain step does not


def test_a_whole_dream_with_preserve_colors_keeps_the_inputs_chroma(tiny_model):
    net = load_net(*tiny_model, end=END, fast=True)
    img = _photo(48, 56)
    kw = dict(iter_n=4, octave_n=2, end=END, jitter=4, step_size=6.0)  # big steps: many pixels hit the clip
    plain = deepdream(net, img, rng=np.random.RandomState(0), **kw)
    kept = deepdream(net, img, rng=np.random.RandomState(0), preserve_colors=True, **kw)
    assert np.abs(_chroma(plain) - _chroma(img)).mean() > 2
    assert np.abs(_chroma(kept) - _chroma(img)).mean() < 0.01
    assert np.abs(kept - img).mean() > 2  # the luminance was dreamed
    assert kept.min() >= 0 and kept.max() <= 255


def test_clip_along_grey_slides_a_pixel_into_range_keeping_its_spread():
    lo, hi = np.float32([-10, -20, -30])[:, None, None], np.float32([245, 235, 225])[:, None, None]
    x = np.float32([[[250, 0]], [[200, -25]], [[100, -5]]])  # two pixels: R too high; G too low
    y = clip_along_grey(x, lo, hi)
    assert np.allclose(y[:, 0, 0], [245, 195, 95]) and np.allclose(y[:, 0, 1], [5, -20, 0])
    assert np.array_equal(clip_along_grey(np.zeros_like(x), lo, hi), np.zeros_like(x))


@pytest.mark.parametrize("kw, fragment", [
    (dict(lap_levels=-1), "lap_levels must be in [0, 16]"),
    (dict(lap_levels=2.5), "lap_levels must be in [0, 16]"),
    (dict(lap_levels=17), "lap_levels must be in [0, 16]"),
])
def test_bad_lap_levels_are_refused(kw, fragment):
    with pytest.raises(SettingError, match=fragment.replace("[", r"\[").replace("]", r"\]")):
        Ascent(**kw)
