"""A run's settings, validated once, from plain values (no command line needed).

Every check happens when a config is made, before any file or net is
touched, and raises one :class:`~deepdream_caffe.dream.params.SettingError`
line that names the field (the command line words it as its flag).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Optional, Sequence, Tuple, Union

from ..dream.keyframes import Keyframes
from ..dream.params import Ascent, Lbfgs, Octaves, SettingError, Tiling, check, is_number
from .netspec import NetSource

EXIF_ORIENTATION = ("apply", "ignore")  # as io.image.read_image takes it
PICKS = ("strongest", "random")  # how a channel pick chooses (see DreamConfig)


def _weight(w: Any, what: str) -> float:
    if not is_number(w) or w == 0:
        raise SettingError(f"{what}: the weight must be a finite number other than 0, got {w!r}")
    return float(w)


def _layer_name(name: Any, what: str) -> str:
    if not isinstance(name, str) or not name:
        raise SettingError(f"{what}: a layer is named by a non-empty string, got {name!r}")
    return name


def _weighted_layers(items: Sequence[Any], what: str) -> Tuple[Tuple[str, float], ...]:
    """(name, weight) pairs from names or pairs, checked."""
    out = []
    for item in items:
        pair = (item, 1.0) if isinstance(item, str) else tuple(item) if isinstance(item, (tuple, list)) else ()
        if len(pair) != 2:
            raise SettingError(f"{what}: give a layer name or (name, weight), got {item!r}")
        name, w = pair
        out.append((_layer_name(name, what), _weight(w, f"{what} {name}")))
    return tuple(out)


def _weighted_channels(items: Sequence[Any], what: str) -> Tuple[Tuple[str, int, float], ...]:
    """(layer, channel, weight) triples from triples or (layer, channel) pairs, checked."""
    out = []
    for item in items:
        triple = tuple(item) if isinstance(item, (tuple, list)) else ()
        if len(triple) not in (2, 3):
            raise SettingError(f"{what}: give (layer, channel) or (layer, channel, weight), got {item!r}")
        layer, c, *w = triple
        if not is_number(c, int) or c < 0:
            raise SettingError(f"{what} {layer}: the channel must be a whole number >= 0, got {c!r}")
        out.append((_layer_name(layer, what), int(c), _weight(w[0] if w else 1.0, f"{what} {layer}:{c}")))
    return tuple(out)


def _picks(items: Sequence[Any]) -> Tuple[Tuple[str, str, int], ...]:
    """(layer, how, k) triples, checked: ``how`` one of PICKS, ``k`` at least 1."""
    out = []
    for item in items:
        triple = tuple(item) if isinstance(item, (tuple, list)) else ()
        if len(triple) != 3:
            raise SettingError(f"{{picks}}: give (layer, how, k), got {item!r}")
        layer, how, k = triple
        if how not in PICKS:
            raise SettingError(f"{{picks}} {layer}: choose channels by one of {', '.join(PICKS)}, got {how!r}")
        if not is_number(k, int) or k < 1:
            raise SettingError(f"{{picks}} {layer}:{how}: the number of channels must be at least 1, got {k!r}")
        out.append((_layer_name(layer, "{picks}"), how, int(k)))
    return tuple(out)


@dataclass(frozen=True)
class DreamConfig:
    """Everything that decides a dream, checked when made.

    What is maximised: ``layers``, (name, weight) pairs summed (the
    notebook's L2 on each; with ``guide``, the guided objective on each, in
    either mode; in the L-BFGS mode, its data term on each), plus ``channels``, (layer,
    index, weight) triples, each a channel's sum, plus ``picks``, (layer,
    how, k) triples: the k channels of the layer most active on the input
    (``"strongest"``: the highest mean activation, as neural-dream's
    channel_mode strong) or drawn with the run's seed (``"random"``), each
    added as a channel of weight 1 (:mod:`.picks`). ``layer`` is the one-layer
    shorthand. With no layer and no channel: the model's default layer,
    weight 1; channels alone are dreamed alone.
    ``solver`` is the mode and its settings: an :class:`Ascent` (the
    notebook's) or an :class:`Lbfgs`. ``tiling`` bounds memory for big
    images (ascent only). ``seed=None`` lets the run choose one (and report
    it), or take the seed of the unfinished run it resumes. ``fast`` is
    ``load_net(fast=)``: False loads the notebook's force_backward net
    (same output bits). ``quality`` is for JPEG and WebP outputs (None: 75).
    ``max_size`` brings an input's (each frame's) long side down to that
    many pixels before dreaming (None: as it is).
    """

    net: NetSource = NetSource()
    layer: Optional[str] = None
    layers: Tuple[Tuple[str, float], ...] = ()
    channels: Tuple[Tuple[str, int, float], ...] = ()
    picks: Tuple[Tuple[str, str, int], ...] = ()
    octaves: Octaves = Octaves()
    solver: Union[Ascent, Lbfgs] = Ascent()
    tiling: Tiling = Tiling()
    seed: Optional[int] = None
    guide: Optional[Path] = None
    fast: bool = True
    quality: Optional[int] = None  # JPEG/WebP quality; None: 75 (the notebook's PIL default)
    gpu: Optional[int] = None
    exif_orientation: str = "apply"  # or "ignore": the pixels as stored, the notebook's array
    verbose: bool = False  # Caffe's own log
    max_size: Optional[int] = None

    def __post_init__(self) -> None:
        for key, kind, want in (("octaves", Octaves, "an Octaves"), ("solver", (Ascent, Lbfgs), "an Ascent or an Lbfgs"),
                                ("tiling", Tiling, "a Tiling")):
            if not isinstance(getattr(self, key), kind):
                raise SettingError(f"{{{key}}} must be {want}, got {getattr(self, key)!r}")
        if self.layer is not None and self.layers:
            raise SettingError("give {layer} or {layers}, not both")
        object.__setattr__(self, "layers", _weighted_layers(self.layers, "{layers}"))
        object.__setattr__(self, "channels", _weighted_channels(self.channels, "{channels}"))
        object.__setattr__(self, "picks", _picks(self.picks))
        if self.max_size is not None:
            check(self, "max_size", int, lambda v: v >= 1, "at least 1")
        if self.guide is not None and not self.objective_layers(""):
            raise SettingError("{guide} guides the {layer} terms; give a {layer} too")
        if self.seed is not None:
            check(self, "seed", int, lambda v: 0 <= v < 2**32, "in [0, 2**32)")
        if self.layer is not None:
            _layer_name(self.layer, "{layer}")
        if self.quality is not None:
            check(self, "quality", int, lambda v: 1 <= v <= 100, "in [1, 100]")
        if self.gpu is not None:
            check(self, "gpu", int, lambda v: v >= 0, "at least 0")
        if self.exif_orientation not in EXIF_ORIENTATION:
            raise SettingError(f"{{exif_orientation}} must be one of {', '.join(EXIF_ORIENTATION)}; "
                               f"got {self.exif_orientation!r}")
        lbfgs = self.solver
        if isinstance(lbfgs, Lbfgs):  # settings the L-BFGS run would ignore are refused
            if lbfgs.objective != "gain" and lbfgs.gain != Lbfgs.gain:
                raise SettingError("{gain} is for {objective} gain (the l2 objective has no target)")
            if self.guide is not None and lbfgs.objective == "gain":
                raise SettingError("{guide} makes the guided objective the data term; "
                                   "{objective} gain is for unguided L-BFGS")
            if any(how == "random" for _, how, _ in self.picks):
                raise SettingError("{picks} LAYER:random draws with the seed, which L-BFGS has none of")
            if self.tiling != Tiling():
                raise SettingError("{tile}/{above_mp} are for {mode} ascent (L-BFGS optimises whole octaves)")
        if self.guide is not None:
            object.__setattr__(self, "guide", Path(self.guide))

    @property
    def mode(self) -> str:
        """``"ascent"`` or ``"lbfgs"``, as the solver is."""
        return "lbfgs" if isinstance(self.solver, Lbfgs) else "ascent"

    def objective_layers(self, default: str) -> Tuple[Tuple[str, float], ...]:
        """The (layer, weight) pairs: ``default`` (weight 1) when neither layers nor channels were given."""
        if self.layers:
            return self.layers
        if self.layer is not None:
            return ((self.layer, 1.0),)
        return () if self.channels or self.picks else ((default, 1.0),)


@dataclass(frozen=True)
class ZoomConfig:
    """The zoom sequence's own settings: how many frames, and each frame's move from the last dream.

    ``scale`` zooms in (below 0: out), ``rotate`` turns (degrees
    counterclockwise), ``pan`` shifts ((dx, dy) pixels right and down) per
    frame; ``keyframes`` change these, the layer and the step size over
    the frames (:mod:`~deepdream_caffe.dream.keyframes`).
    """

    frames: int = 100
    scale: float = 0.05
    rotate: float = 0.0
    pan: Tuple[float, float] = (0.0, 0.0)
    keyframes: Optional[Keyframes] = None

    def __post_init__(self) -> None:
        check(self, "frames", int, lambda v: v >= 1, "at least 1")
        check(self, "scale", float, lambda v: -1 < v < 1, "between -1 and 1 (below 0 zooms out)")
        check(self, "rotate", float, lambda v: -180 <= v <= 180, "in [-180, 180] degrees")
        pan = self.pan
        if not isinstance(pan, (tuple, list)) or len(pan) != 2 or not all(is_number(v) for v in pan):
            raise SettingError(f"{{pan}} must be two finite numbers DX,DY, got {pan!r}")
        object.__setattr__(self, "pan", (float(pan[0]), float(pan[1])))
        if self.keyframes is not None and not isinstance(self.keyframes, Keyframes):
            raise SettingError(f"{{keyframes}} must be a Keyframes, got {self.keyframes!r}")

    def motion(self, frame: int) -> Tuple[float, float, Tuple[float, float]]:
        """(scale, rotate, pan) of the move that makes ``frame``'s input from the dream before it."""
        k = self.keyframes
        if k is None:
            return self.scale, self.rotate, self.pan
        return k.at("scale", frame, self.scale), k.at("rotate", frame, self.rotate), k.at("pan", frame, self.pan)

    def record(self) -> Dict[str, Any]:
        """What decides the frames besides the dream's settings; the notebook's zoom records its scale alone."""
        out: Dict[str, Any] = {"scale": self.scale}
        if self.rotate:
            out["rotate"] = self.rotate
        if self.pan != (0.0, 0.0):
            out["pan"] = list(self.pan)
        if self.keyframes is not None:
            out["keyframes"] = self.keyframes.describe()
        return out
