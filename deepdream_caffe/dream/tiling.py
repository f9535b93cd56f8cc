"""Bounded memory for big images: each step computes the gradient tile by tile.

Caffe keeps every blob up to the end layer at the input's size, so a 12 MP
photo would need many GiB in one pass. Above a size limit the step instead
rolls the whole image by the jitter, cuts it into tiles on a grid whose
origin moves randomly every step (so no seam stays in one place), runs
forward/backward on each tile with a margin of context (only the tile's
inner gradient is kept), and then applies the notebook's normalised step to
the whole image at once. Below the limit nothing changes: the plain
``make_step`` runs and the output keeps bit-parity with the notebook.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Dict, Optional, Tuple

import numpy as np

from ..net.access import end_blob, input_blob, raw_net
from . import defaults as nb
from .objectives import Objective, objective_L2
from .step import ascent_update, draw_jitter, make_step
from .transform import net_mean

DEFAULT_TILE = nb.TILE
DEFAULT_MARGIN = nb.TILE_MARGIN
DEFAULT_ABOVE_MP = nb.TILE_ABOVE_MP


def tile_gradient(cnet: Any, x: np.ndarray, end: str, objective: Objective, tile: int, margin: int,
                  origin: Tuple[int, int]) -> np.ndarray:
    """The objective's gradient for image ``x`` (3xHxW), assembled from tiles with context margins."""
    _, h, w = x.shape
    src, dst = input_blob(cnet), end_blob(cnet, end)
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
            cnet.forward(end=end)
            objective(dst)
            cnet.backward(start=end)
            g[:, y0:y1, x0:x1] = src.diff[0][:, y0 - a0 : y1 - a0, x0 - b0 : x1 - b0]
    return g


def make_tiled_step(tile: int = DEFAULT_TILE, margin: int = DEFAULT_MARGIN) -> Callable[..., None]:
    """A drop-in for ``make_step`` that works in tiles (see the module docstring)."""

    def tiled_step(net: Any, step_size: float = nb.STEP_SIZE, end: str = nb.DEFAULT_LAYER, jitter: int = nb.JITTER,
                   clip: bool = True, objective: Objective = objective_L2,
                   rng: Optional[np.random.RandomState] = None) -> None:
        cnet = raw_net(net)
        src = input_blob(cnet)
        shape = src.data.shape
        x = src.data[0].copy()
        ox, oy = draw_jitter(jitter, rng)
        origin = tuple(int(v) for v in (rng if rng is not None else np.random).randint(0, tile, 2))
        x = np.roll(np.roll(x, ox, -1), oy, -2)
        g = tile_gradient(cnet, x, end, objective, tile, margin, origin)
        ascent_update(x, g, step_size)
        x = np.roll(np.roll(x, -ox, -1), -oy, -2)
        if clip:
            bias = net_mean(net)
            x = np.clip(x, -bias, 255 - bias)
        src.reshape(*shape)
        src.data[0] = x

    return tiled_step


@dataclass
class TilePolicy:
    """When to tile: images above ``above_mp`` megapixels, in tiles of ``tile`` pixels."""

    tile: int = DEFAULT_TILE
    above_mp: float = DEFAULT_ABOVE_MP
    margin: int = DEFAULT_MARGIN

    @classmethod
    def from_args(cls, tile: Optional[int], above_mp: Optional[float]) -> "TilePolicy":
        from ..errors import DeepDreamError  # noqa: PLC0415

        p = cls(tile=tile or DEFAULT_TILE, above_mp=DEFAULT_ABOVE_MP if above_mp is None else above_mp)
        if p.tile < 32:
            raise DeepDreamError(f"--tile-size must be at least 32, got {p.tile}")
        if p.above_mp < 0:
            raise DeepDreamError(f"--tile-above must be >= 0, got {p.above_mp}")
        return p

    def active(self, h: int, w: int) -> bool:
        return self.above_mp > 0 and h * w > self.above_mp * 1e6

    def step_fn(self, shape: Tuple[int, int]) -> Callable[..., None]:
        """The step for a run on an image of ``shape``: plain below the limit, tiled above it.

        The choice is made per octave size, so small octaves of a big image
        still run whole.
        """
        tiled = make_tiled_step(self.tile, self.margin)
        policy = self

        def step(net: Any, **kw: Any) -> None:
            h, w = input_blob(raw_net(net)).data.shape[-2:]
            (tiled if policy.active(h, w) else make_step)(net, **kw)

        # deepdream() may size the net for the largest octave up front only
        # when that octave runs whole.
        step.runs_whole = lambda h, w: not policy.active(h, w)  # type: ignore[attr-defined]
        return step

    def describe(self) -> Dict[str, Any]:
        return {"tile": self.tile, "above_megapixels": self.above_mp, "margin": self.margin}
