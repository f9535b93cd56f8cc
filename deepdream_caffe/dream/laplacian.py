"""Laplacian-pyramid gradient normalisation (``lap_normalize`` of Mordvintsev's TensorFlow DeepDream tutorial).

A step's gradient is split into frequency bands: each split blurs with the
5x5 binomial kernel (1 4 6 4 1 along each axis, /16) and keeps every other
pixel; the band is what the blurred image, upsampled back, misses. Each
band is divided by its own root-mean-square, and the bands are summed
again. The fine bands of a gradient hold most of its energy; equalised,
the coarse ones get their share, so large structures keep growing on big
images. Edges reflect (the tutorial pads with zeros); the split is exact:
the bands sum to the gradient they came from.
"""
from __future__ import annotations

from typing import List

import numpy as np
from scipy.ndimage import convolve1d

_KERNEL = np.array([1.0, 4.0, 6.0, 4.0, 1.0]) / 16.0


def _blur(x: np.ndarray) -> np.ndarray:
    return convolve1d(convolve1d(x, _KERNEL, axis=-1, mode="reflect"), _KERNEL, axis=-2, mode="reflect")


def _up(lo: np.ndarray, shape: tuple) -> np.ndarray:
    """``lo`` on the grid of ``shape``: zeros between its pixels, blurred, times 4 (the lost samples' share)."""
    z = np.zeros(shape, dtype=lo.dtype)
    z[..., ::2, ::2] = lo
    return 4.0 * _blur(z)


def lap_split(x: np.ndarray, levels: int) -> List[np.ndarray]:
    """``x`` (...xHxW) as ``levels`` bands, coarsest first; their upsampled sum is ``x``."""
    bands = []
    for _ in range(levels - 1):
        lo = _blur(x)[..., ::2, ::2]
        bands.append(x - _up(lo, x.shape))
        x = lo
    bands.append(x)
    return bands[::-1]


def lap_merge(bands: List[np.ndarray]) -> np.ndarray:
    """The inverse of :func:`lap_split`."""
    x = bands[0]
    for hi in bands[1:]:
        x = _up(x, hi.shape) + hi
    return x


def band_rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x))))


def lap_normalize(g: np.ndarray, levels: int, eps: float = 1e-10) -> np.ndarray:
    """``g`` (CxHxW) with each of its ``levels`` bands scaled to unit RMS, as float32 (1 level: ``g / rms(g)``)."""
    bands = lap_split(np.asarray(g, dtype=np.float64), levels)
    return lap_merge([b / max(band_rms(b), eps) for b in bands]).astype(np.float32)
