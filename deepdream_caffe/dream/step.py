"""The ascent step: jitter, the objective's gradient at the input, the normalised update, clip."""
from __future__ import annotations

from typing import Any, Optional, Tuple

import numpy as np

from ..net.access import input_blob, net_lock, raw_net
from . import defaults as nb
from .arguments import check_arguments
from .checks import check_step, check_unclipped
from .colour import clip_along_grey, luminance_gradient
from .gradient import WHOLE_IMAGE, Gradient
from .laplacian import lap_normalize
from .objectives import ObjectiveLike, as_objective, objective_L2
from .params import Ascent
from .transform import pixel_range


def draw_jitter(jitter: int, rng: Optional[np.random.RandomState] = None) -> Tuple[int, int]:
    """(ox, oy) drawn as the notebook draws them: ``randint(-jitter, jitter+1, 2)``.

    ``rng=None`` draws from numpy's global generator, exactly like the notebook
    after ``np.random.seed``; a ``RandomState(seed)`` gives the same sequence.
    """
    ox, oy = (rng if rng is not None else np.random).randint(-jitter, jitter + 1, 2)
    return int(ox), int(oy)


def ascent_update(data: np.ndarray, g: np.ndarray, step_size: float) -> None:
    """``data += step_size / mean(|g|) * g`` in place: the step length ignores the gradient's scale.

    A zero or non-finite mean would turn the image into NaN: it raises a
    :class:`~deepdream_caffe.dream.checks.GradientError` instead
    (see :mod:`~deepdream_caffe.dream.checks`).
    """
    with np.errstate(over="ignore", invalid="ignore"):  # an overflowing mean is reported by check_step, in one line
        m = np.abs(g).mean()
    check_step(m, step_size)
    with np.errstate(over="ignore"):  # a finite factor times a finite g can only overflow to +-inf:
        data += step_size / m * g  # the clip takes that back into range, or check_unclipped reports it


def make_step(
    net: Any,
    step_size: float = Ascent.step_size,
    end: str = nb.DEFAULT_LAYER,
    jitter: int = Ascent.jitter,
    clip: bool = True,
    objective: ObjectiveLike = objective_L2,
    rng: Optional[np.random.RandomState] = None,
    gradient: Gradient = WHOLE_IMAGE,
    lap_levels: int = 0,
    preserve_colors: bool = False,
) -> None:
    """One gradient-ascent step on the net's input blob, in place (the notebook's ``make_step``).

    ``objective`` is an :class:`~deepdream_caffe.dream.objectives.Objective`
    or, as in the notebook, a function that writes the diff of layer
    ``end`` (a Caffe layer name: the net runs forward up to that layer only
    and backward from it). ``gradient`` computes the gradient: in one pass
    (the notebook's) or in tiles (:mod:`tiling`). ``lap_levels`` > 0
    equalises the gradient's frequency bands (:mod:`laplacian`);
    ``preserve_colors`` steps and clips along grey only (:mod:`colour`).
    """
    check_arguments(net=net, end=end, clip=clip, objective=objective, rng=rng, gradient=gradient)
    Ascent(1, step_size, jitter, clip, lap_levels, preserve_colors)  # the numbers, checked as a dream's are
    step(net, step_size, end, jitter, clip, objective, rng, gradient, lap_levels, preserve_colors)


def step(net: Any, step_size: float, end: str, jitter: int, clip: bool, objective: ObjectiveLike,
         rng: Optional[np.random.RandomState], gradient: Gradient, lap_levels: int = 0,
         preserve_colors: bool = False) -> None:
    """:func:`make_step` with its arguments checked already (a dream checks them once, not every step)."""
    # the step works in the net's input blob: a second thread on this net waits
    with net_lock(net):
        src = input_blob(raw_net(net))

        ox, oy = draw_jitter(jitter, rng)
        # One roll over both axes moves the same pixels as the notebook's two.
        src.data[0] = np.roll(src.data[0], (oy, ox), (-2, -1))

        g = gradient(net, as_objective(objective, end), rng)
        if lap_levels:
            g = lap_normalize(g, lap_levels)
        if preserve_colors:
            g = luminance_gradient(g)
        ascent_update(src.data[:], g, step_size)

        src.data[0] = np.roll(src.data[0], (-oy, -ox), (-2, -1))

        if clip:
            lo, hi = pixel_range(net)
            if preserve_colors:
                src.data[0] = clip_along_grey(src.data[0], lo, hi)
            else:
                src.data[:] = np.clip(src.data, lo, hi)
        else:
            check_unclipped(src.data)  # before the next forward pass sees it
