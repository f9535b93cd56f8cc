"""Issue 3: preprocessing, octave sizes, size checks."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.ndimage as nd

from deepdream_caffe.dream.octaves import octave_pyramid, octave_sizes, shrinking_sizes, zoom_planes
from deepdream_caffe.dream.sizing import fit_octaves
from deepdream_caffe.dream.transform import deprocess, preprocess
from deepdream_caffe.errors import DeepDreamError
from deepdream_caffe.io.image import to_uint8
from deepdream_caffe.net.prototxt import read_prototxt


class _Net:
    mean = np.float32([104.0, 116.0, 122.0])
    channel_swap = (2, 1, 0)


def test_preprocess_is_bgr_chw_minus_mean_and_inverts():
    img = np.zeros((2, 3, 3), np.float32)
    img[..., 0], img[..., 1], img[..., 2] = 10, 20, 30  # R, G, B
    x = preprocess(_Net, img)
    assert x.dtype == np.float32 and x.shape == (3, 2, 3)
    assert np.all(x[0] == 30 - 104) and np.all(x[1] == 20 - 116) and np.all(x[2] == 10 - 122)
    back = deprocess(_Net, x)
    assert back.shape == img.shape and np.array_equal(back, img)


def test_other_channel_order():
    class Rgb:
        mean = np.float32([1, 2, 3])
        channel_swap = (0, 1, 2)

    img = np.random.RandomState(0).randint(0, 256, (4, 5, 3)).astype(np.float32)
    x = preprocess(Rgb, img)
    assert np.array_equal(x[0], img[..., 0] - 1)
    assert np.array_equal(deprocess(Rgb, x), img)


def test_to_uint8_clips_then_truncates():
    assert to_uint8(np.array([-5.0, 0.7, 254.9, 300.0])).tolist() == [0, 0, 254, 255]


def test_octave_sizes_for_the_notebook_sky_image():
    assert octave_sizes(575, 1024, 4, 1.4) == [(575, 1024), (411, 731), (294, 522), (210, 373)]
    pyr = octave_pyramid(np.zeros((3, 575, 1024), np.float32), 4, 1.4)
    assert [p.shape[1:] for p in pyr] == octave_sizes(575, 1024, 4, 1.4)


def test_too_small_octaves_are_dropped_or_refused(googlenet_prototxt):
    param = read_prototxt(googlenet_prototxt)
    assert fit_octaves(param, "inception_4c/output", 575, 1024, 4, 1.4) == (4, None)
    # inception_4c needs 15 px: 30 -> 21 -> 15 -> 11 keeps three octaves
    n, note = fit_octaves(param, "inception_4c/output", 30, 30, 4, 1.4)
    assert n == 3 and "3 octaves" in note
    with pytest.raises(DeepDreamError, match="too small.*at least about 15x15"):
        fit_octaves(param, "inception_4c/output", 10, 10, 4, 1.4)


def test_octave_counts_are_bounded_by_arithmetic(googlenet_prototxt):
    """Issue #28, class 4: an octave count past what the image can shrink to is told from its sizes, before
    any octave is made; fitting asks Caffe about each distinct size once."""
    assert len(shrinking_sizes(575, 1024, 10 ** 9, 1.4)) == 20  # down to 1x1, which 1.4 cannot shrink
    assert shrinking_sizes(3, 3, 10 ** 9, 2.5) == [(3, 3), (1, 1)]  # then empty
    for h, w, scale, why in [(40, 48, 1.4, "octave 12 would be no smaller than 1x1; at most 11 octaves"),
                             (40, 48, 1.0000001, "octave 2 would be no smaller than 48x40; at most 1 octave"),
                             (40, 48, 1e300, "octave 2 would be empty; at most 1 octave")]:
        with pytest.raises(DeepDreamError, match=f"octave_n=1000000000 is too many for a {w}x{h} image: .*{why}"):
            octave_pyramid(np.zeros((3, h, w), np.float32), 10 ** 9, scale)
    param = read_prototxt(googlenet_prototxt)
    for n in (10 ** 5, 10 ** 9):
        got, note = fit_octaves(param, "inception_4c/output", 575, 1024, n, 1.4)
        assert got == 11 and f"using 11 octaves instead of {n}: a smaller octave would be too small" in note
    assert fit_octaves(param, "inception_4c/output", 224, 224, 10 ** 9, 1.0000001) == (
        1, "using 1 octaves instead of 1000000000: with octave_scale 1.0000001 octave 2 would be no smaller "
           "than 224x224 (smallest now 224x224)")


def test_zoom_planes_has_the_bits_of_a_3d_zoom():
    """The per-plane zoom the octave loop uses gives scipy's 3-D zoom bit for bit (signed zeros too)."""
    rs = np.random.RandomState(7)
    for _ in range(120):
        c, h, w = rs.randint(1, 5), rs.randint(1, 70), rs.randint(1, 70)
        img = (rs.randn(c, h, w) * rs.choice([1e-3, 1.0, 120.0])).astype(np.float32)
        img[rs.rand(c, h, w) < 0.1] = 0.0
        img[rs.rand(c, h, w) < 0.05] = -0.0
        fy = rs.choice([1 / 1.4, 1.4, 0.5, 2.3, (h + 3) / h])
        fx = rs.choice([1 / 1.4, 1.4, 0.77, 1.0])
        want = nd.zoom(img, (1, fy, fx), order=1)
        got = zoom_planes(img, fy, fx)
        assert got.shape == want.shape and got.dtype == want.dtype
        assert np.array_equal(got.view(np.uint32), want.view(np.uint32)), (c, h, w, fy, fx)
