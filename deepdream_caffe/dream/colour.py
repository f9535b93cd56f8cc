"""Dreaming the luminance only: steps along grey keep every pixel's chroma.

In YCbCr (ITU-R BT.601, JPEG's and scikit-image's), Cb and Cr are
combinations of R, G and B whose weights sum to 0, so adding the same
amount to a pixel's three channels changes Y alone. A step that moves
each pixel along (1, 1, 1) -- the gradient's channel mean, the gradient
with respect to Y at fixed chroma -- and a clip that slides a pixel along
(1, 1, 1) back into range (instead of clipping each channel alone) leave
the input's Cb and Cr as they were, in the net's input space (mean
subtracted, channels swapped) as in RGB. The octaves' detail is then grey
too, so the whole dream is.
"""
from __future__ import annotations

import numpy as np


def luminance_gradient(g: np.ndarray) -> np.ndarray:
    """``g`` (CxHxW) projected on grey: each pixel's channel mean, in every channel."""
    return np.broadcast_to(g.mean(axis=0, dtype=np.float64).astype(g.dtype), g.shape)


def clip_along_grey(x: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """``x`` (CxHxW) with each pixel moved along (1, 1, 1) by the least that puts it in [lo, hi] (Cx1x1).

    A pixel whose channels spread wider than the range cannot fit; it is
    brought as close as it goes (its low channels at ``lo``) and clipped.
    """
    up, down = np.max(lo - x, axis=0), np.min(hi - x, axis=0)
    t = np.where(up > 0, up, np.minimum(down, 0))
    return np.clip(x + t, lo, hi)
