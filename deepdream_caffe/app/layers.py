"""The net's layers, their output shapes for an input size, and which can be dreamed on there: prototxt only."""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Tuple

from .netspec import NetSource, resolve_net


@dataclass(frozen=True)
class LayerRow:
    """One layer: name, Caffe type, output shapes (CxHxW per top; None if not known) and ``dream``.

    ``dream`` is "yes" when ``--layer NAME`` works at this size, else why
    not: input, no-output, fixed-size (a classifier: only the net's own
    input size), too-small, too-large, mismatch (shapes that do not meet at
    this size), broken (Caffe could not build it or a layer before it), or
    unchecked (after a Python layer, whose shapes are its own business).
    ``default`` marks the layer a run takes without ``--layer`` (the model's).
    """

    name: str
    type: str
    shapes: Optional[Tuple[Tuple[int, ...], ...]]
    dream: str = "yes"
    default: bool = False


@dataclass(frozen=True)
class LayerNote:
    """Why a run of layers cannot be dreamed on: the reason, the first layer it starts at, the details."""

    reason: str
    layer: str
    detail: str


def layer_table(source: NetSource, h: int, w: int, quiet: bool = True) -> Tuple[List[LayerRow], List[LayerNote]]:
    """Every layer of ``source``'s prototxt at an ``h`` x ``w`` input (no Caffe run, no weights needed)."""
    from ..net.caffe_env import import_caffe  # noqa: PLC0415
    from ..net.prototxt import patched_copy, read_prototxt  # noqa: PLC0415
    from ..net.shapes import layer_table as table  # noqa: PLC0415

    spec = resolve_net(source, need_weights=False, quiet=quiet)
    param = read_prototxt(spec.prototxt)
    known = frozenset(import_caffe().layer_type_list())
    rows, notes = table(patched_copy(param), h, w, allow_python=source.allow_python_layers, known_types=known)
    out = [LayerRow(r.name, r.type, None if r.tops is None else tuple(tuple(int(d) for d in t[1:]) for t in r.tops),
                    r.dream, r.name == spec.default_layer) for r in rows]
    out = _classifiers(param, out, h, w)
    found = [LayerNote(*n) for n in notes]
    if not any(n.reason == "fixed-size" for n in found):
        found += _classifier_note(param, out, h, w)
    return out, found


def _classifiers(param, rows: List[LayerRow], h: int, w: int) -> List[LayerRow]:
    """Layers that depend on an InnerProduct are classifier layers: only the native size (as ``dream`` decides)."""
    from dataclasses import replace  # noqa: PLC0415

    from ..errors import DeepDreamError  # noqa: PLC0415
    from ..net.classifier import fixed_size_layer, native_size  # noqa: PLC0415

    try:
        if (h, w) == native_size(param):
            return rows
    except DeepDreamError:  # no N x C x H x W input: the rows already say the net is broken
        return rows
    return [replace(r, dream="fixed-size") if r.dream == "yes" and fixed_size_layer(param, r.name) else r
            for r in rows]


def _classifier_note(param, rows: List[LayerRow], h: int, w: int) -> List[LayerNote]:
    from ..net.classifier import fixed_size_layer, native_size  # noqa: PLC0415

    first = next((r.name for r in rows if r.dream == "fixed-size"), None)
    ip = fixed_size_layer(param, first) if first else None
    if ip is None:
        return []
    nh, nw = native_size(param)  # known to work: _classifiers marked the rows with it
    return [LayerNote("fixed-size", first, f"classifier layers (fixed-size): they depend on the InnerProduct '{ip}' "
                                          f"and take only the net's own {nw}x{nh} input, not {w}x{h}")]
