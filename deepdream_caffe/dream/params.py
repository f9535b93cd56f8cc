"""The settings of a dream, one frozen object per part, checked once when made.

``Octaves`` (the pyramid), ``Ascent`` (the notebook's step), ``Tiling``
(how a big image's gradient is computed) and ``Lbfgs`` (the L-BFGS mode)
carry the notebook's names and hold the only copy of each default. They go
whole from the caller to the solver. A bad value raises a
:class:`SettingError` naming its field; each field's ``help`` metadata says
what it means (the command line builds its flags from it). No imports
beyond the standard library: the command line reads these for ``--help``.
"""
from __future__ import annotations

import math
import numbers
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Optional

from ..errors import SettingError


def is_number(v: Any, kind: type = float) -> bool:
    """``v`` is a finite real number (``kind=int``: a whole number); bools are not numbers here."""
    if isinstance(v, bool) or not isinstance(v, numbers.Integral if kind is int else numbers.Real):
        return False
    return kind is int or math.isfinite(v)


def check(obj: Any, key: str, kind: type, ok: Callable[[Any], bool], want: str) -> None:
    """Raise unless ``obj.key`` is a ``kind`` number for which ``ok`` holds; store it as a plain ``kind``
    (numpy's numbers are welcome in, but not in a JSON record)."""
    v = getattr(obj, key)
    if not (is_number(v, kind) and ok(v)):
        raise SettingError(f"{{{key}}} must be {want}, got {v!r}")
    object.__setattr__(obj, key, kind(v))


def _doc(text: str, default: Any) -> Any:
    return field(default=default, metadata={"help": text})


@dataclass(frozen=True)
class Octaves:
    """The octave pyramid: ``octave_n`` sizes, each ``octave_scale`` times smaller than the last."""

    octave_n: int = _doc("number of octaves", 4)
    octave_scale: float = _doc("size ratio between octaves", 1.4)

    def __post_init__(self) -> None:
        check(self, "octave_n", int, lambda v: v >= 1, "at least 1")
        check(self, "octave_scale", float, lambda v: v > 1, "above 1")


@dataclass(frozen=True)
class Ascent:
    """The notebook's gradient ascent: ``iter_n`` normalised steps per octave.

    ``lap_levels`` and ``preserve_colors`` change the step's direction
    (:mod:`~deepdream_caffe.dream.laplacian`, :mod:`~deepdream_caffe.dream.colour`); off, the
    step is the notebook's.
    """

    iter_n: int = _doc("ascent steps per octave", 10)
    step_size: float = _doc("ascent step size", 1.5)
    jitter: int = _doc("ascent's random shift in pixels", 32)
    clip: bool = _doc("clip pixels to the valid range after each step", True)
    lap_levels: int = _doc("split each step's gradient into this many frequency bands (a Laplacian pyramid), "
                           "each scaled to unit standard deviation, then summed; 0 is off", 0)
    preserve_colors: bool = _doc("dream the luminance only: every step moves a pixel along grey, "
                                 "so the input's chroma (YCbCr's Cb and Cr) is kept", False)

    def __post_init__(self) -> None:
        check(self, "iter_n", int, lambda v: v >= 1, "at least 1")
        check(self, "step_size", float, lambda v: v > 0, "positive")
        check(self, "jitter", int, lambda v: 0 <= v < 2**31 - 1, ">= 0 (and below 2**31 - 1)")
        check(self, "lap_levels", int, lambda v: 0 <= v <= 16, "in [0, 16] (0 is off)")
        object.__setattr__(self, "clip", bool(self.clip))
        object.__setattr__(self, "preserve_colors", bool(self.preserve_colors))


@dataclass(frozen=True)
class Tiling:
    """Steps on images above ``above_mp`` megapixels (0: never) compute the gradient in tiles of ``tile``
    pixels with ``margin`` pixels of context (bounded memory; see :mod:`~deepdream_caffe.dream.tiling`).

    The choice is made per octave size, so small octaves of a big image still run whole.
    """

    tile: int = _doc("tile size in pixels, for bounded memory on images above the tiling threshold", 768)
    above_mp: float = _doc("megapixels above which steps work in tiles; 0 is never", 1.5)
    margin: int = _doc("pixels of context around each tile", 32)

    def __post_init__(self) -> None:
        check(self, "tile", int, lambda v: v >= 32, "at least 32")
        check(self, "above_mp", float, lambda v: v >= 0, ">= 0")
        check(self, "margin", int, lambda v: v >= 0, ">= 0")

    def active(self, h: int, w: int) -> bool:
        return self.above_mp > 0 and h * w > self.above_mp * 1e6

    def runs_whole(self, h: int, w: int) -> bool:
        return not self.active(h, w)

    def describe(self) -> dict:
        return {"tile": self.tile, "above_megapixels": self.above_mp, "margin": self.margin}


LBFGS_OBJECTIVES = ("gain", "l2")


@dataclass(frozen=True)
class Lbfgs:
    """The L-BFGS mode (:func:`~deepdream_caffe.dream.lbfgs.deepdream_lbfgs`): per octave, minimise
    D(X) + S*(tv_weight*R_TV(X) + alpha_weight*R_alpha(X)) with scipy's L-BFGS-B.

    The defaults were chosen on the trained open_nsfw net (README, "Choosing the defaults").
    """

    objective: str = _doc("l2: D = -0.5*||phi(X)||^2, the notebook's objective; "
                          "gain: D = 0.5*||phi(X) - gain*phi(X0)||^2", "l2")
    gain: float = _doc("enhancement factor of the gain objective, > 0", 2.0)
    tv_weight: float = _doc("weight of the beta-TV prior relative to S, >= 0", 100.0)
    tv_beta: float = _doc("beta of the TV prior (Mahendran & Vedaldi), >= 1", 2.0)
    alpha_weight: float = _doc("weight of the alpha-norm prior relative to S, >= 0; 0 is off", 0.0)
    alpha: float = _doc("exponent of the alpha-norm prior, >= 1", 6.0)
    maxiter: int = _doc("L-BFGS iterations per octave", 10)
    maxfun: Optional[int] = _doc("function evaluations per octave (default: bounded by the iterations only)", None)

    def __post_init__(self) -> None:
        if self.objective not in LBFGS_OBJECTIVES:
            raise SettingError(f"{{objective}} must be one of {', '.join(LBFGS_OBJECTIVES)}; got {self.objective!r}")
        for key in ("gain", "tv_weight", "tv_beta", "alpha_weight", "alpha"):
            check(self, key, float, lambda v: True, "a finite number")
        check(self, "gain", float, lambda v: v > 0, "positive (enhanced = gain * activations)")
        check(self, "tv_weight", float, lambda v: v >= 0, ">= 0")
        check(self, "alpha_weight", float, lambda v: v >= 0, ">= 0")
        check(self, "tv_beta", float, lambda v: v >= 1, ">= 1 (TV is not differentiable below)")
        check(self, "alpha", float, lambda v: v >= 1, ">= 1 (the alpha-norm is not differentiable below)")
        check(self, "maxiter", int, lambda v: v >= 1, "at least 1")
        if self.maxfun is not None:
            check(self, "maxfun", int, lambda v: v >= 1, "at least 1")

    def solver_settings(self) -> dict:
        """The settings besides the data term's (objective, gain): the priors and the bounds."""
        return {k: v for k, v in asdict(self).items() if k not in ("objective", "gain")}
