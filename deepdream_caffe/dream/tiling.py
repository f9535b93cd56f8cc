"""Bounded memory for big images: each step computes the gradient tile by tile.

Caffe keeps every blob up to the end layer at the input's size, so a 12 MP
photo would need many GiB in one pass. Above a size limit the gradient is
instead assembled from tiles on a grid whose origin moves randomly every
step (so no seam stays in one place): each tile runs forward/backward with
a margin of context and only its inner gradient is kept. The step around
it (jitter, the notebook's normalised update on the whole image, clip) is
the same :func:`~deepdream_caffe.dream.step.make_step`. Below the limit
nothing changes: the whole image runs at once and keeps bit-parity with
the notebook.
"""
from __future__ import annotations

from typing import Any, Optional, Tuple

import numpy as np

from ..net.access import input_blob, raw_net
from .gradient import add_input_terms, net_gradient, objective_gradient
from .objectives import Objective
from .params import Tiling


def tile_gradient(cnet: Any, x: np.ndarray, objective: Objective, tile: int, margin: int,
                  origin: Tuple[int, int]) -> np.ndarray:
    """The gradient of the objective's net terms for image ``x`` (3xHxW), assembled from tiles with margins.

    Leaves the input blob at the last tile's size.
    """
    _, h, w = x.shape
    src = input_blob(cnet)
    g = np.zeros_like(x)
    oy, ox = origin
    ys = sorted({0, *range(oy % tile or tile, h, tile)}) if h > tile else [0]
    xs = sorted({0, *range(ox % tile or tile, w, tile)}) if w > tile else [0]
    for i, y0 in enumerate(ys):
        y1 = ys[i + 1] if i + 1 < len(ys) else h
        for j, x0 in enumerate(xs):
            x1 = xs[j + 1] if j + 1 < len(xs) else w
            a0, a1 = max(0, y0 - margin), min(h, y1 + margin)
            b0, b1 = max(0, x0 - margin), min(w, x1 + margin)
            src.reshape(1, x.shape[0], a1 - a0, b1 - b0)
            src.data[0] = x[:, a0:a1, b0:b1]
            diff = net_gradient(cnet, objective)
            g[:, y0:y1, x0:x1] = diff[0][:, y0 - a0 : y1 - a0, x0 - b0 : x1 - b0]
    return g


class TilePolicy(Tiling):
    """A :class:`~deepdream_caffe.dream.gradient.Gradient` that works in tiles as its
    :class:`~deepdream_caffe.dream.params.Tiling` says."""

    def __call__(self, net: Any, objective: Objective, rng: Optional[np.random.RandomState] = None) -> np.ndarray:
        cnet = raw_net(net)
        src = input_blob(cnet)
        shape = src.data.shape
        if self.runs_whole(*shape[-2:]):
            return objective_gradient(net, objective)
        x = src.data[0].copy()
        origin = tuple(int(v) for v in (rng if rng is not None else np.random).randint(0, self.tile, 2))
        g = tile_gradient(cnet, x, objective, self.tile, self.margin, origin)
        src.reshape(*shape)
        src.data[0] = x
        return add_input_terms(objective, x, g)
