"""Image <-> net input: the notebook's ``preprocess`` and ``deprocess``.

A net here is anything with a per-channel ``mean`` and a ``channel_swap``
(our :class:`~deepdream_caffe.net.DreamNet`), or a pycaffe ``Classifier``
whose ``transformer`` holds them, as in the notebook.
"""
from __future__ import annotations

from typing import Any, Sequence, Tuple

import numpy as np

from ..errors import DeepDreamError
from .arguments import check_kinds


def net_mean(net: Any, input_name: str = "data") -> np.ndarray:
    """The net's input mean as a float32 (C, 1, 1) array (B, G, R for GoogLeNet)."""
    mean = getattr(net, "mean", None)
    if mean is None:
        mean = net.transformer.mean[input_name]
    mean = np.asarray(mean, dtype=np.float32)
    if mean.ndim == 1:
        mean = mean[:, None, None]
    return mean


def pixel_range(net: Any) -> Tuple[np.ndarray, np.ndarray]:
    """(low, high) of a valid input pixel in the net's input space: -mean and 255 - mean, float32 (C, 1, 1)."""
    bias = net_mean(net)
    return -bias, 255 - bias


def net_channel_swap(net: Any, input_name: str = "data") -> Tuple[int, ...]:
    """Order in which an RGB image's channels feed the net ((2, 1, 0): RGB -> BGR)."""
    swap = getattr(net, "channel_swap", None)
    if swap is None:
        swap = getattr(getattr(net, "transformer", None), "channel_swap", {}).get(input_name, (2, 1, 0))
    return tuple(int(c) for c in swap)


def _reorder(chw: np.ndarray, order: Sequence[int]) -> np.ndarray:
    # (2, 1, 0) as a reversed view, exactly as the notebook's [::-1].
    if tuple(order) == (2, 1, 0):
        return chw[::-1]
    return chw[list(order)]


def _net_input(net: Any, img: Any, channels_first: bool) -> None:
    """Refuse, in one line, what is not a net with a mean or not an image with 3 channels where they go."""
    check_kinds(img=(img, np.ndarray, "a 3xHxW net input" if channels_first else "an HxWx3 RGB array"))
    if img.ndim != 3 or img.shape[0 if channels_first else 2] != 3:
        raise DeepDreamError(f"img has shape {img.shape}; expected {'3xHxW' if channels_first else 'HxWx3'}")
    mean = getattr(net, "mean", None)
    if (mean is None or callable(mean)) and getattr(net, "transformer", None) is None:  # an array's mean() is no mean
        raise DeepDreamError("net must be a net from load_net() or a caffe.Classifier (one with a mean), "
                             f"got a {type(net).__name__}")


def preprocess(net: Any, img: np.ndarray) -> np.ndarray:
    """HxWx3 RGB image (any numeric dtype) -> float32 3xHxW BGR net input minus the mean."""
    _net_input(net, img, channels_first=False)
    return np.float32(_reorder(np.rollaxis(img, 2), net_channel_swap(net))) - net_mean(net)


def deprocess(net: Any, img: np.ndarray) -> np.ndarray:
    """Inverse of :func:`preprocess`: 3xHxW net input -> float32 HxWx3 RGB image."""
    _net_input(net, img, channels_first=True)
    inverse = np.argsort(net_channel_swap(net))
    return np.dstack(_reorder(img + net_mean(net), inverse))
