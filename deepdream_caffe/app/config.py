"""A run's settings, validated once, from plain values (no command line needed).

Every check happens when a config is made, before any file or net is
touched, and raises one DeepDreamError line. ``names`` says what each field
is called where the value came from (the CLI passes its flags), so the line
names what the user typed.
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, Mapping, Optional, Sequence, Tuple

from ..dream import defaults as nb
from ..errors import DeepDreamError
from .netspec import NetSource

if TYPE_CHECKING:
    from ..dream.tiling import TilePolicy

MODES = ("ascent", "lbfgs")
EXIF_ORIENTATION = ("apply", "ignore")  # as io.image.read_image takes it
LBFGS_FIELDS = ("objective", "gain", "tv_weight", "tv_beta", "alpha_weight", "alpha", "maxiter", "maxfun")
# The ascent's own settings, their defaults, and why ``mode="lbfgs"`` refuses them rather than ignore them.
ASCENT_ONLY = {
    "iters": (nb.ITER_N, "use {maxiter} for L-BFGS iterations per octave"),
    "step_size": (nb.STEP_SIZE, "L-BFGS chooses its steps by line search"),
    "jitter": (nb.JITTER, "L-BFGS keeps the image in place"),
    "seed": (None, "L-BFGS has no randomness"),
    "clip": (True, "L-BFGS keeps pixels in range by bounds"),
}


def ascent_only_error(key: str, names: Mapping[str, str]) -> DeepDreamError:
    """The one line refusing ascent setting ``key`` in the L-BFGS mode."""
    n = _namer(names)
    why = ASCENT_ONLY[key][1].format(maxiter=n("maxiter"))
    return DeepDreamError(f"{n(key)} is for {n('mode')} ascent; {why}")


def _namer(names: Mapping[str, str]):
    return lambda key: names.get(key, key)


def _is_number(v: Any) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v)


def _is_integer(v: Any) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b or (_is_number(a) and _is_number(b) and a == b)


def _weight(w: Any, what: str) -> float:
    if not _is_number(w) or w == 0:
        raise DeepDreamError(f"{what}: the weight must be a finite number other than 0, got {w!r}")
    return float(w)


def _layer_name(name: Any, what: str) -> str:
    if not isinstance(name, str) or not name:
        raise DeepDreamError(f"{what}: a layer is named by a non-empty string, got {name!r}")
    return name


def _weighted_layers(items: Sequence[Any], what: str) -> Tuple[Tuple[str, float], ...]:
    """(name, weight) pairs from names or pairs, checked."""
    out = []
    for item in items:
        pair = (item, 1.0) if isinstance(item, str) else tuple(item) if isinstance(item, (tuple, list)) else ()
        if len(pair) != 2:
            raise DeepDreamError(f"{what}: give a layer name or (name, weight), got {item!r}")
        name, w = pair
        out.append((_layer_name(name, what), _weight(w, f"{what} {name}")))
    return tuple(out)


def _weighted_channels(items: Sequence[Any], what: str) -> Tuple[Tuple[str, int, float], ...]:
    """(layer, channel, weight) triples from triples or (layer, channel) pairs, checked."""
    out = []
    for item in items:
        triple = tuple(item) if isinstance(item, (tuple, list)) else ()
        if len(triple) not in (2, 3):
            raise DeepDreamError(f"{what}: give (layer, channel) or (layer, channel, weight), got {item!r}")
        layer, c, *w = triple
        if not _is_integer(c) or c < 0:
            raise DeepDreamError(f"{what} {layer}: the channel must be a whole number >= 0, got {c!r}")
        out.append((_layer_name(layer, what), int(c), _weight(w[0] if w else 1.0, f"{what} {layer}:{c}")))
    return tuple(out)


@dataclass(frozen=True)
class LbfgsOptions:
    """The settings of ``--mode lbfgs`` (see :func:`deepdream_caffe.dream.lbfgs.deepdream_lbfgs`)."""

    objective: str = nb.LBFGS_OBJECTIVE
    gain: float = nb.LBFGS_GAIN
    tv_weight: float = nb.LBFGS_TV_WEIGHT
    tv_beta: float = nb.LBFGS_TV_BETA
    alpha_weight: float = 0.0
    alpha: float = nb.LBFGS_ALPHA
    maxiter: int = nb.LBFGS_MAXITER
    maxfun: Optional[int] = None

    def kwargs(self) -> Dict[str, Any]:
        """Keyword arguments for ``deepdream_lbfgs``."""
        return {k: getattr(self, k) for k in LBFGS_FIELDS}


@dataclass(frozen=True)
class DreamConfig:
    """Everything that decides a dream, checked when made.

    What is maximised: ``layers``, (name, weight) pairs summed (the
    notebook's L2 on each; with ``guide``, the guided objective on each, in
    either mode; in the L-BFGS mode, its data term on each), plus ``channels``, (layer,
    index, weight) triples, each a channel's sum. ``layer`` is the one-layer
    shorthand. With no layer and no channel: the model's default layer,
    weight 1; channels alone are dreamed alone.
    ``seed=None`` lets the run choose one (and report it), or take the seed
    of the unfinished run it resumes. ``tile_size``/``tile_above`` bound
    memory for big images (ascent only); ``lbfgs`` is used with
    ``mode="lbfgs"`` (and must be left at its defaults otherwise).
    ``quality`` is for JPEG and WebP outputs (None: 75).
    """

    net: NetSource = NetSource()
    layer: Optional[str] = None
    layers: Tuple[Tuple[str, float], ...] = ()
    channels: Tuple[Tuple[str, int, float], ...] = ()
    iters: int = nb.ITER_N
    octaves: int = nb.OCTAVE_N
    octave_scale: float = nb.OCTAVE_SCALE
    step_size: float = nb.STEP_SIZE
    jitter: int = nb.JITTER
    clip: bool = True
    seed: Optional[int] = None
    guide: Optional[Path] = None
    mode: str = "ascent"
    tile_size: Optional[int] = None
    tile_above: Optional[float] = None
    notebook_net: bool = False
    quality: Optional[int] = None  # JPEG/WebP quality; None: 75 (the notebook's PIL default)
    gpu: Optional[int] = None
    exif_orientation: str = "apply"  # or "ignore": the pixels as stored, the notebook's array
    verbose: bool = False  # Caffe's own log
    lbfgs: LbfgsOptions = LbfgsOptions()
    names: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False, hash=False)

    def __post_init__(self) -> None:
        n = _namer(self.names)

        def integer(key: str, low: int, high: Optional[int] = None) -> None:
            v = getattr(self, key)
            if not _is_integer(v) or v < low or (high is not None and v > high):
                bound = f"at least {low}" if high is None else f"in [{low}, {high}]"
                raise DeepDreamError(f"{n(key)} must be {bound}, got {v!r}")
            object.__setattr__(self, key, int(v))

        integer("iters", 1)
        integer("octaves", 1)
        if self.layer is not None and self.layers:
            raise DeepDreamError(f"give {n('layer')} or {n('layers')}, not both")
        object.__setattr__(self, "layers", _weighted_layers(self.layers, n("layers")))
        object.__setattr__(self, "channels", _weighted_channels(self.channels, n("channels")))
        if self.guide is not None and not self.objective_layers(""):
            raise DeepDreamError(f"{n('guide')} guides the {n('layer')} terms; give a {n('layer')} too")
        if not _is_number(self.octave_scale) or not self.octave_scale > 1.0:
            raise DeepDreamError(f"{n('octave_scale')} must be above 1, got {self.octave_scale!r}")
        if not _is_number(self.step_size) or not self.step_size > 0:
            raise DeepDreamError(f"{n('step_size')} must be positive, got {self.step_size!r}")
        if not _is_integer(self.jitter) or self.jitter < 0:
            raise DeepDreamError(f"{n('jitter')} must be >= 0, got {self.jitter!r}")
        if self.seed is not None and not (_is_integer(self.seed) and 0 <= self.seed < 2**32):
            raise DeepDreamError(f"{n('seed')} must be in [0, 2**32), got {self.seed!r}")
        if self.layer is not None:
            _layer_name(self.layer, n("layer"))
        if self.quality is not None:
            integer("quality", 1, 100)
        if self.gpu is not None:
            integer("gpu", 0)
        if self.exif_orientation not in EXIF_ORIENTATION:
            raise DeepDreamError(f"{n('exif_orientation')} must be one of {', '.join(EXIF_ORIENTATION)}; "
                                 f"got {self.exif_orientation!r}")
        if self.tile_size is not None:
            integer("tile_size", 32)
        if self.tile_above is not None and (not _is_number(self.tile_above) or self.tile_above < 0):
            raise DeepDreamError(f"{n('tile_above')} must be >= 0, got {self.tile_above!r}")
        if self.mode not in MODES:
            raise DeepDreamError(f"{n('mode')} must be one of {', '.join(MODES)}; got {self.mode!r}")
        if self.mode == "lbfgs":
            # Refused rather than ignored. The seed is let through: a zoom or video keeps it as its
            # run's identity; the CLI refuses a --seed given with --mode lbfgs.
            for key, (default, _) in ASCENT_ONLY.items():
                if key != "seed" and getattr(self, key) != default:
                    raise ascent_only_error(key, self.names)
            if self.lbfgs.objective != "gain" and self.lbfgs.gain != nb.LBFGS_GAIN:
                raise DeepDreamError(f"{n('gain')} is for {n('objective')} gain (the l2 objective has no target)")
            if self.guide is not None and self.lbfgs.objective == "gain":
                raise DeepDreamError(f"{n('guide')} makes the guided objective the data term; "
                                     f"{n('objective')} gain is for unguided L-BFGS")
            if self.tile_size is not None or self.tile_above is not None:
                raise DeepDreamError(f"{n('tile_size')}/{n('tile_above')} are for {n('mode')} ascent "
                                     "(L-BFGS optimises whole octaves)")
            from ..dream.lbfgs import check_lbfgs_params  # noqa: PLC0415 - scipy only when needed

            names = {k: n(k) for k in LBFGS_FIELDS}
            names.update(octave_n=n("octaves"), octave_scale=n("octave_scale"))
            check_lbfgs_params(**self.lbfgs.kwargs(), octave_n=self.octaves, octave_scale=self.octave_scale,
                               names=names)
        else:
            # Settings of the other mode would be ignored without a word: refuse them (NaN counts as set).
            unused = [k for k in LBFGS_FIELDS if not _same(getattr(self.lbfgs, k), getattr(LbfgsOptions(), k))]
            if unused:
                raise DeepDreamError(f"{n(unused[0])} is for {n('mode')} lbfgs")
        # Stored as plain Python numbers (numpy's are welcome in, but not in the JSON record).
        for key, kind in (("jitter", int), ("seed", int), ("octave_scale", float), ("step_size", float),
                          ("tile_above", float)):
            if getattr(self, key) is not None:
                object.__setattr__(self, key, kind(getattr(self, key)))
        if self.guide is not None:
            object.__setattr__(self, "guide", Path(self.guide))

    def objective_layers(self, default: str) -> Tuple[Tuple[str, float], ...]:
        """The (layer, weight) pairs: ``default`` (weight 1) when neither layers nor channels were given."""
        if self.layers:
            return self.layers
        if self.layer is not None:
            return ((self.layer, 1.0),)
        return () if self.channels else ((default, 1.0),)

    @property
    def tiling(self) -> "TilePolicy":
        """When and how the steps work in tiles, as these settings ask."""
        from ..dream.tiling import TilePolicy  # noqa: PLC0415

        return TilePolicy(tile=self.tile_size or nb.TILE,
                          above_mp=nb.TILE_ABOVE_MP if self.tile_above is None else float(self.tile_above),
                          margin=nb.TILE_MARGIN)


@dataclass(frozen=True)
class ZoomConfig:
    """The zoom sequence's own settings: how many frames, how much zoom per frame."""

    frames: int = 100
    scale: float = 0.05
    names: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False, hash=False)

    def __post_init__(self) -> None:
        n = _namer(self.names)
        if not isinstance(self.frames, int) or isinstance(self.frames, bool) or self.frames < 1:
            raise DeepDreamError(f"{n('frames')} must be at least 1, got {self.frames!r}")
        if not _is_number(self.scale) or not 0 < self.scale < 1:
            raise DeepDreamError(f"{n('scale')} must be between 0 and 1, got {self.scale!r}")
