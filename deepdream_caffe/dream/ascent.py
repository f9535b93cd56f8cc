"""The notebook's ``deepdream``: ascent steps over an octave pyramid."""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any, Callable, Optional

import numpy as np

from ..io.image import as_image_array
from ..net.access import input_blob, raw_net, resolve_end
from . import defaults as nb
from .checks import check_net_finite
from .gradient import WHOLE_IMAGE, Gradient, bind_start, check_objective, layer_order
from .objectives import Objective, ObjectiveLike, as_objective
from .octaves import OctaveCheckpoint, octave_pyramid, run_octaves
from .params import Ascent, Octaves
from .sizing import check_octaves_fit
from .step import make_step
from .transform import deprocess, preprocess


@dataclass
class StepInfo:
    """What a per-step callback is told (the notebook showed an image after every step)."""

    net: Any
    octave: int  # 0 = smallest
    octave_n: int
    step: int  # 0-based within the octave
    iter_n: int
    clip: bool

    def image(self) -> np.ndarray:
        """The current image as the notebook displayed it (contrast stretched when not clipping)."""
        vis = deprocess(self.net, input_blob(raw_net(self.net)).data[0])
        if not self.clip:
            vis = vis * (255.0 / np.percentile(vis, 99.98))
        return vis


StepCallback = Callable[[StepInfo], None]


@dataclass
class AscentSolver:
    """``ascent.iter_n`` ascent steps per octave (an :class:`~deepdream_caffe.dream.octaves.OctaveSolver`).

    With ``step_fn`` (a notebook-style step, its own parameters bound) it
    is called as the notebook called ``make_step``: ``step_fn(net, end=, clip=, rng=)``.
    """

    net: Any
    objective: Objective
    end: str
    ascent: Ascent
    octave_n: int
    rng: Optional[np.random.RandomState] = None
    callback: Optional[StepCallback] = None
    gradient: Gradient = WHOLE_IMAGE
    step_fn: Optional[Callable[..., None]] = None

    def solve(self, octave: int, x0: np.ndarray) -> np.ndarray:
        a = self.ascent
        src = input_blob(raw_net(self.net))
        objective = bind_start(self.net, self.objective, x0)
        src.reshape(1, *x0.shape)
        src.data[0] = x0
        for i in range(a.iter_n):
            if self.step_fn is None:
                make_step(self.net, a.step_size, self.end, a.jitter, a.clip, objective, self.rng, self.gradient,
                          a.lap_levels, a.preserve_colors)
            else:
                self.step_fn(self.net, end=self.end, clip=a.clip, rng=self.rng)
            if self.callback is not None:
                self.callback(StepInfo(self.net, octave, self.octave_n, i, a.iter_n, a.clip))
        return src.data[0]


def deepdream(
    net: Any,
    base_img: np.ndarray,
    iter_n: int = Ascent.iter_n,
    octave_n: int = Octaves.octave_n,
    octave_scale: float = Octaves.octave_scale,
    end: Optional[str] = None,
    clip: bool = True,
    rng: Optional[np.random.RandomState] = None,
    callback: Optional[StepCallback] = None,
    step_fn: Optional[Callable[..., None]] = None,
    checkpoint: Optional[OctaveCheckpoint] = None,
    objective: ObjectiveLike = None,
    gradient: Gradient = WHOLE_IMAGE,
    **step_params: Any,
) -> np.ndarray:
    """Dream on ``base_img`` (HxWx3 RGB) and return the result as a float32 HxWx3 RGB image.

    Same algorithm, names and defaults as the notebook: the settings become
    an :class:`~deepdream_caffe.dream.params.Ascent` and an
    :class:`~deepdream_caffe.dream.params.Octaves` for :func:`ascend`.
    ``step_params`` go to ``make_step`` (step_size, jitter); ``step_fn``
    replaces it with a notebook-style step, which gets ``step_params`` (and
    ``objective``) as the notebook passed them. See :func:`ascend` for the rest.
    """
    if step_fn is None:
        ascent = Ascent(iter_n, clip=clip, **step_params)
    else:  # checked as far as they are the ascent's, and passed on as given
        ascent = Ascent(iter_n, clip=clip, **{k: v for k, v in step_params.items() if k in ("step_size", "jitter")})
        step_fn = partial(step_fn, **step_params, **({} if objective is None else {"objective": objective}))
    return ascend(net, base_img, ascent, Octaves(octave_n, octave_scale), end=end, objective=objective,
                  gradient=gradient, rng=rng, callback=callback, checkpoint=checkpoint, step_fn=step_fn)


def ascend(
    net: Any,
    base_img: np.ndarray,
    ascent: Ascent = Ascent(),
    octaves: Octaves = Octaves(),
    *,
    end: Optional[str] = None,
    objective: ObjectiveLike = None,
    gradient: Gradient = WHOLE_IMAGE,
    rng: Optional[np.random.RandomState] = None,
    callback: Optional[StepCallback] = None,
    checkpoint: Optional[OctaveCheckpoint] = None,
    step_fn: Optional[Callable[..., None]] = None,
) -> np.ndarray:
    """:func:`deepdream` with its settings as objects; returns a float32 HxWx3 RGB image.

    ``objective`` is an
    :class:`~deepdream_caffe.dream.objectives.Objective` (on any layers) or
    a notebook-style function that writes the diff of layer ``end``;
    ``None`` is the notebook's L2 on ``end``. ``rng`` (a RandomState)
    supplies the jitter; ``None`` uses numpy's global generator as the
    notebook did. ``gradient`` may work in tiles (:class:`tiling.TilePolicy`).
    ``checkpoint`` (see :mod:`checkpoint`) lets a long run resume after its
    last finished octave. ``step_fn(net, end=, clip=, rng=)`` replaces the
    package's step (``make_step`` with the ascent's settings).

    ``end=None`` is the layer ``load_net(end=...)`` cut the net after, or the
    notebook's ``inception_4c/output``. ``base_img`` may also be a PIL
    image, a gray or RGBA array (see :func:`~deepdream_caffe.io.image.as_image_array`
    for what is accepted); anything else and (for a net from ``load_net``)
    an image too small for a layer raise a one-line DeepDreamError.
    """
    if isinstance(objective, Objective):
        end = end if end is not None else (getattr(net, "end", None) or nb.DEFAULT_LAYER)
    else:
        end = resolve_end(net, end, nb.DEFAULT_LAYER)
    base_img = as_image_array(base_img, "base_img")
    octave_n, octave_scale = octaves.octave_n, octaves.octave_scale
    obj = as_objective(objective, end)
    check_objective(net, obj)
    for layer in obj.layers:
        check_octaves_fit(net, layer, base_img.shape[0], base_img.shape[1], octave_n, octave_scale)
    check_net_finite(net)
    pyramid = octave_pyramid(preprocess(net, base_img), octave_n, octave_scale)
    solver = AscentSolver(net, obj, end, ascent, octave_n, rng, callback, gradient, step_fn)

    # Sizing the net up front reshapes every layer it has, so only a net cut
    # after the objective's deepest layer (load_net(end=...)) qualifies: a
    # whole net's later layers may not fit an image that layer accepts. Only
    # the package's own step declares (through its gradient) whether it
    # runs the image whole.
    h, w = pyramid[0].shape[-2:]
    deepest = layer_order(raw_net(net), obj.layers)[-1][1] if obj.layers else None
    reserve = (step_fn is None and deepest is not None and gradient.runs_whole(h, w)
               and getattr(net, "end", None) == deepest)
    return deprocess(net, run_octaves(net, pyramid, solver, checkpoint, reserve=reserve))
