"""How much a dream dreamed, and how clean it is: cheap measures of an output against its input.

All take HxWx3 RGB images on the 0..255 scale (outputs are clipped to it
first, as saving does) and are forward-only:

* layer-energy gain ``||phi(out)||^2 / ||phi(in)||^2``, phi the output of
  the dreamed layer on the whole image: how much stronger the layer fires;
* high-frequency ratio: mean absolute 4-neighbour Laplacian of the output
  over that of the input (interior pixels, all channels): above 1 the
  dream added fine, noisy detail; below 1 it smoothed the photo;
* pixel change: mean absolute difference of the two images, in 0..255 units;
* channel activation: the mean over positions of one channel of a layer on
  one image (how strongly a feature visualisation drives its unit).

The fourth figure of a run, its forward+backward passes, is counted by the
dream itself (``iter_n * octave_n`` for ascent, ``info["nfev"]`` for L-BFGS).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Dict

import numpy as np

from ..net.access import end_blob, input_blob, raw_net
from .transform import preprocess


def _valid(img: np.ndarray) -> np.ndarray:
    return np.clip(np.asarray(img, dtype=np.float64), 0.0, 255.0)


def _features(net: Any, end: str, img: np.ndarray) -> np.ndarray:
    """Layer ``end``'s output (C x ...) for the whole image, float64; reshapes the net's input blob to it."""
    x = preprocess(net, _valid(img).astype(np.float32))
    cnet = raw_net(net)
    src = input_blob(cnet)
    src.reshape(1, *x.shape)
    src.data[0] = x
    cnet.forward(end=end)
    return end_blob(cnet, end).data[0].astype(np.float64)


def layer_energy(net: Any, end: str, img: np.ndarray) -> float:
    """``||phi(img)||^2``: the sum of squares of layer ``end``'s output, the net run on the whole image."""
    phi = _features(net, end, img)
    return float(np.sum(phi * phi))


def channel_activation(net: Any, end: str, c: int, img: np.ndarray) -> float:
    """The mean over positions of channel ``c`` of layer ``end``'s output, the net run on the whole image."""
    return float(np.mean(_features(net, end, img)[c]))


def energy_gain(net: Any, end: str, before: np.ndarray, after: np.ndarray) -> float:
    """``||phi(after)||^2 / ||phi(before)||^2`` at layer ``end``."""
    return layer_energy(net, end, after) / layer_energy(net, end, before)


def laplacian_energy(img: np.ndarray) -> float:
    """Mean absolute 4-neighbour Laplacian ``4x - up - down - left - right`` over interior pixels and channels."""
    x = _valid(img)
    lap = 4.0 * x[1:-1, 1:-1] - x[:-2, 1:-1] - x[2:, 1:-1] - x[1:-1, :-2] - x[1:-1, 2:]
    return float(np.mean(np.abs(lap)))


def high_frequency_ratio(before: np.ndarray, after: np.ndarray) -> float:
    """``laplacian_energy(after) / laplacian_energy(before)``."""
    return laplacian_energy(after) / laplacian_energy(before)


def pixel_change(before: np.ndarray, after: np.ndarray) -> float:
    """Mean absolute pixel difference, 0..255 units."""
    return float(np.mean(np.abs(_valid(after) - _valid(before))))


@dataclass(frozen=True)
class DreamMeasures:
    """The measures of one dream (see the module docstring)."""

    energy_gain: float
    high_frequency: float
    pixel_change: float
    passes: int

    def as_dict(self) -> Dict[str, Any]:
        return asdict(self)


def measure_dream(net: Any, end: str, before: np.ndarray, after: np.ndarray, passes: int) -> DreamMeasures:
    """All measures of ``after`` (a dream of ``before`` at layer ``end`` that cost ``passes``)."""
    return DreamMeasures(
        energy_gain=energy_gain(net, end, before, after),
        high_frequency=high_frequency_ratio(before, after),
        pixel_change=pixel_change(before, after),
        passes=int(passes),
    )
