"""Natural-image priors for the L-BFGS mode, each returning (value, analytic gradient).

Both work on a CxHxW image in the net's input space (mean subtracted,
pixel values on the notebook's 0..255 scale) and measure pixels in units of
``PIXEL_SCALE`` so that the weights stay in a readable range whatever the
exponent: without it an alpha-norm with alpha = 6 on pixel values near 100
is ~1e12 per pixel.

* beta-TV (Mahendran & Vedaldi, "Understanding deep image representations by
  inverting them", CVPR 2015), per channel c, with forward differences and
  replicated borders (the difference past the last row/column is 0)::

      R_TV(X) = sum_{c,i,j} ( ((X[c,i,j+1]-X[c,i,j])^2 + (X[c,i+1,j]-X[c,i,j])^2) / B^2 + eps )^(beta/2)

  ``eps`` is 0 for beta >= 2; for beta < 2 it is ``TV_EPS`` so the
  gradient stays finite on flat patches (|grad| <= beta/2 * eps^(beta/2-1)).

* alpha-norm (same paper), which keeps pixels in range::

      R_alpha(X) = sum_{c,i,j} |X[c,i,j] / B|^alpha

with B = ``PIXEL_SCALE`` = 128 (half the 0..255 range).
"""
from __future__ import annotations

from typing import Tuple

import numpy as np

PIXEL_SCALE = 128.0
TV_EPS = 1e-6


def tv_norm(x: np.ndarray, beta: float = 2.0, scale: float = PIXEL_SCALE) -> Tuple[float, np.ndarray]:
    """beta-TV of ``x`` (CxHxW) and its gradient with respect to ``x`` (see the module docstring)."""
    if beta < 1:
        raise ValueError(f"tv beta must be >= 1, got {beta}")
    x = np.asarray(x, dtype=np.float64)
    u = x / scale
    dh = np.zeros_like(u)
    dv = np.zeros_like(u)
    dh[:, :, :-1] = u[:, :, 1:] - u[:, :, :-1]
    dv[:, :-1, :] = u[:, 1:, :] - u[:, :-1, :]
    s = dh * dh + dv * dv
    if beta >= 2:
        value = float(np.sum(s ** (beta / 2.0)))
        w = (beta / 2.0) * s ** (beta / 2.0 - 1.0) if beta != 2 else np.ones_like(s)
    else:
        s = s + TV_EPS
        value = float(np.sum(s ** (beta / 2.0)))
        w = (beta / 2.0) * s ** (beta / 2.0 - 1.0)
    # d s[i,j] / d u[i,j] = -2 (dh + dv); it also depends on u[i,j+1] (+2 dh[i,j])
    # and u[i+1,j] (+2 dv[i,j]), so each pixel collects from its left and upper neighbour.
    wdh = w * dh
    wdv = w * dv
    g = -2.0 * (wdh + wdv)
    g[:, :, 1:] += 2.0 * wdh[:, :, :-1]
    g[:, 1:, :] += 2.0 * wdv[:, :-1, :]
    return value, g / scale


def alpha_norm(x: np.ndarray, alpha: float = 6.0, scale: float = PIXEL_SCALE) -> Tuple[float, np.ndarray]:
    """sum |x/scale|^alpha and its gradient with respect to ``x``."""
    if alpha < 1:
        raise ValueError(f"alpha must be >= 1, got {alpha}")
    u = np.asarray(x, dtype=np.float64) / scale
    a = np.abs(u)
    value = float(np.sum(a ** alpha))
    g = alpha * a ** (alpha - 1.0) * np.sign(u)
    return value, g / scale
