"""The ascent step: jitter, forward to the end layer, objective, partial backward, normalised step."""
from __future__ import annotations

from typing import Any, Optional, Tuple

import numpy as np

from ..net.access import end_blob, input_blob, raw_net
from . import defaults as nb
from .objectives import Objective, objective_L2
from .transform import net_mean


def draw_jitter(jitter: int, rng: Optional[np.random.RandomState] = None) -> Tuple[int, int]:
    """(ox, oy) drawn as the notebook draws them: ``randint(-jitter, jitter+1, 2)``.

    ``rng=None`` draws from numpy's global generator, exactly like the notebook
    after ``np.random.seed``; a ``RandomState(seed)`` gives the same sequence.
    """
    ox, oy = (rng if rng is not None else np.random).randint(-jitter, jitter + 1, 2)
    return int(ox), int(oy)


def ascent_update(data: np.ndarray, g: np.ndarray, step_size: float) -> None:
    """``data += step_size / mean(|g|) * g`` in place: the step length ignores the gradient's scale."""
    data += step_size / np.abs(g).mean() * g


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
    step_size: float = nb.STEP_SIZE,
    end: str = nb.DEFAULT_LAYER,
    jitter: int = nb.JITTER,
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

    ox, oy = draw_jitter(jitter, rng)
    # One roll over both axes moves the same pixels as the notebook's two.
    src.data[0] = np.roll(src.data[0], (oy, ox), (-2, -1))

    g = input_gradient(net, end, objective)[0]
    ascent_update(src.data[:], g, step_size)

    src.data[0] = np.roll(src.data[0], (-oy, -ox), (-2, -1))

    if clip:
        bias = net_mean(net)
        src.data[:] = np.clip(src.data, -bias, 255 - bias)
