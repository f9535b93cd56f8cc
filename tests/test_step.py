"""The ascent step's array work: rolls and the normalised update keep numpy's exact results."""
from __future__ import annotations

import numpy as np
import pytest

from deepdream_caffe.step import ascent_update, roll_into


@pytest.mark.parametrize("oy,ox", [(0, 0), (3, -5), (-32, 32), (40, -77), (7, 0), (0, -1)])
def test_roll_into_is_np_roll(oy, ox):
    src = np.random.RandomState(0).randn(3, 29, 41).astype(np.float32)
    dst = np.full_like(src, np.nan)
    roll_into(dst, src, oy, ox)
    assert np.array_equal(dst, np.roll(np.roll(src, ox, -1), oy, -2))


@pytest.mark.parametrize("step_size", [1.5, 0.25, np.float64(1.5), np.float32(2.0), 3])
def test_ascent_update_has_the_bits_of_the_notebook_line(step_size):
    rs = np.random.RandomState(1)
    data = (rs.randn(3, 31, 47) * 50).astype(np.float32)
    g = (rs.randn(3, 31, 47) * 1e-3).astype(np.float32)
    want = data.copy()
    want += step_size / np.abs(g).mean() * g
    ascent_update(data, g, step_size)
    assert np.array_equal(data.view(np.uint32), want.view(np.uint32))
    # a second call with another shape must not reuse the wrong scratch array
    small, gs = data[:, :5, :6].copy(), g[:, :5, :6].copy()
    want_small = small.copy()
    want_small += step_size / np.abs(gs).mean() * gs
    ascent_update(small, gs, step_size)
    assert np.array_equal(small, want_small)
