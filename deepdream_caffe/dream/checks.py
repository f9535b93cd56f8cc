"""Stopping a dream that has gone numerically wrong, before Caffe or a file sees it.

A NaN reaching Caffe is worse than a black picture: a max-pooling window
that holds only NaN keeps the index -1, and the backward pass then writes
before its buffer (heap corruption, a crash later). So nothing non-finite
may reach a forward pass. The guards are cheap on purpose:

* each octave's input (base + detail) is checked once (one pass), and the
  weights once per dream;
* each step checks two scalars it computes anyway: the gradient's mean |g|
  (0 < m < inf implies every gradient value is finite) and the step factor
  step_size / m. With clipping that is enough: finite + finite cannot be
  NaN, and an overflow to infinity is clipped back to the pixel range;
* without clipping the image may grow without bound, so each step checks
  its range (one pass, only then): beyond ``UNCLIPPED_LIMIT`` the step has
  diverged, and values near float32's limit would overflow inside the net.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import DeepDreamError

UNCLIPPED_LIMIT = 1e6  # |pixel| without clipping; real dreams stay within a few thousand


class GradientError(DeepDreamError):
    """The input gradient is zero or not finite, so the normalised step is undefined."""


def check_step(m: Any, step_size: Any) -> None:
    """Raise :class:`GradientError` unless the step's ``m = mean(|g|)`` and ``step_size / m`` are finite, m > 0."""
    if 0.0 < m < np.inf:  # NaN fails both compares
        with np.errstate(over="ignore"):
            if np.isfinite(step_size / m):  # the step's own factor, in its own precision
                return
    if m == 0:
        raise GradientError(
            "the gradient at the input is zero: the net does not run backward to its input "
            "(a caffe.Classifier needs force_backward: true in its prototxt, as the notebook set; "
            "load_net() sets it), or the layer's output is all zero for this image"
        )
    raise GradientError(
        "the gradient at the input is NaN or infinite (or too small to divide by): the image, the net's "
        "mean or its weights hold a non-finite value, or the step has blown up"
    )


def check_unclipped(data: np.ndarray) -> None:
    """Raise unless an image that is not clipped stays within +-UNCLIPPED_LIMIT (NaN fails)."""
    if data.max() <= UNCLIPPED_LIMIT and data.min() >= -UNCLIPPED_LIMIT:
        return
    raise DeepDreamError(
        f"the image left the range +-{UNCLIPPED_LIMIT:g} without clipping (NaN or infinite values included): "
        "the step diverges; use a smaller step_size or clip=True"
    )


def check_image_finite(data: np.ndarray, octave: int, octave_n: int) -> None:
    """Raise a DeepDreamError if the net input ``data`` holds NaN or infinity in octave ``octave``."""
    if not np.isfinite(data).all():
        raise DeepDreamError(
            f"the image holds NaN or infinite values in octave {octave + 1} of {octave_n}: "
            "the net's mean or the step produced them"
        )


def check_net_finite(net: Any) -> None:
    """Raise a DeepDreamError naming the first layer whose weights hold NaN or infinity."""
    cnet = getattr(net, "net", net)
    for name, blobs in cnet.params.items():
        for blob in blobs:
            if not np.isfinite(blob.data).all():
                raise DeepDreamError(f"the weights of layer '{name}' hold NaN or infinite values")
