"""The ascent step: jitter, forward to the end layer, objective, partial backward, normalised step."""
from __future__ import annotations

from typing import Any, Optional, Tuple

import numpy as np

from .netaccess import end_blob, input_blob, raw_net
from .objectives import Objective, objective_L2
from .transform import net_mean


def draw_jitter(jitter: int, rng: Optional[np.random.RandomState] = None) -> Tuple[int, int]:
    """(ox, oy) drawn as the notebook draws them: ``randint(-jitter, jitter+1, 2)``.

    ``rng=None`` draws from numpy's global generator, exactly like the notebook
    after ``np.random.seed``; a ``RandomState(seed)`` gives the same sequence.
    """
    ox, oy = (rng if rng is not None else np.random).randint(-jitter, jitter + 1, 2)
    return int(ox), int(oy)


def roll_into(dst: np.ndarray, src: np.ndarray, oy: int, ox: int) -> None:
    """``dst[...] = np.roll(src, (oy, ox), (-2, -1))`` as four block copies, without a temporary."""
    h, w = src.shape[-2:]
    oy, ox = oy % h, ox % w
    for dy, sy in ((slice(oy, h), slice(0, h - oy)), (slice(0, oy), slice(h - oy, h))):
        for dx, sx in ((slice(ox, w), slice(0, w - ox)), (slice(0, ox), slice(w - ox, w))):
            dst[..., dy, dx] = src[..., sy, sx]


class _Scratch:
    """One reusable array of the last shape asked for: a step's temporaries without fresh pages each time."""

    def __init__(self) -> None:
        self._a = np.empty(0, np.float32)

    def __call__(self, shape: Tuple[int, ...]) -> np.ndarray:
        if self._a.shape != shape:
            self._a = np.empty(shape, np.float32)
        return self._a


_scratch = _Scratch()


def ascent_update(data: np.ndarray, g: np.ndarray, step_size: float) -> None:
    """``data += step_size / mean(|g|) * g`` in place: the step length ignores the gradient's scale."""
    if g.dtype != np.float32 or data.dtype != np.float32:
        data += step_size / np.abs(g).mean() * g
        return
    # The same operations on the same values as the line above (so the same
    # bits), in one scratch array instead of two fresh temporaries.
    t = _scratch(g.shape)
    np.abs(g, out=t)
    scale = step_size / t.mean()
    if np.result_type(scale, g) != np.float32:
        # e.g. a float64 step_size: numpy computes scale * g in float64 first
        data += scale * g
        return
    np.multiply(scale, g, out=t)
    data += t


def input_gradient(net: Any, end: str, objective: Objective = objective_L2) -> np.ndarray:
    """Forward to ``end`` only, set its diff by ``objective``, backward from ``end``; the input blob's diff.

    The returned array is the blob's own memory (1xCxHxW): copy it to keep it.
    """
    cnet = raw_net(net)
    cnet.forward(end=end)
    objective(end_blob(cnet, end))
    cnet.backward(start=end)
    return input_blob(cnet).diff


def make_step(
    net: Any,
    step_size: float = 1.5,
    end: str = "inception_4c/output",
    jitter: int = 32,
    clip: bool = True,
    objective: Objective = objective_L2,
    rng: Optional[np.random.RandomState] = None,
) -> None:
    """One gradient-ascent step on the net's input blob, in place (the notebook's ``make_step``).

    ``end`` is a Caffe layer name: the net runs forward up to that layer only,
    the objective sets its output's diff, and backward runs from that layer
    down to the input.
    """
    src = input_blob(raw_net(net))
    x = src.data[0]

    ox, oy = draw_jitter(jitter, rng)
    # One roll over both axes moves the same pixels as the notebook's two.
    _roll_in_place(x, oy, ox)

    g = input_gradient(net, end, objective)[0]
    ascent_update(x, g, step_size)

    _roll_in_place(x, -oy, -ox)

    if clip:
        bias = net_mean(net)
        np.clip(x, -bias, 255 - bias, out=x)


def _roll_in_place(x: np.ndarray, oy: int, ox: int) -> None:
    if oy or ox:
        t = _scratch(x.shape)
        t[...] = x
        roll_into(x, t, oy, ox)
