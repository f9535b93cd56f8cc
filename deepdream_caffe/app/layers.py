"""The net's layers and their output shapes for an input size, from the prototxt alone."""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Tuple

from ..errors import DeepDreamError
from .netspec import NetSource, resolve_net


@dataclass(frozen=True)
class LayerRow:
    """One layer: its name, Caffe type and output shapes (CxHxW per top; None if not computed)."""

    name: str
    type: str
    shapes: Optional[Tuple[Tuple[int, ...], ...]]


def layer_table(source: NetSource, h: int, w: int, quiet: bool = True) -> List[LayerRow]:
    """Every layer of ``source``'s prototxt with its output shapes for an ``h`` x ``w`` input (no Caffe run)."""
    from ..net.prototxt import check_structure, read_prototxt  # noqa: PLC0415
    from ..net.shapes import ShapeError, layer_shapes  # noqa: PLC0415

    spec = resolve_net(source, need_weights=False, quiet=quiet)
    param = read_prototxt(spec.prototxt)
    check_structure(param, spec.prototxt)
    try:
        shapes = layer_shapes(param, h, w)
    except ShapeError as e:
        raise DeepDreamError(f"a {w}x{h} input is too small for this net: {e}") from None
    rows = []
    for layer in param.layer:
        tops = shapes[layer.name]["tops"] if layer.name in shapes else None
        rows.append(LayerRow(layer.name, layer.type,
                             None if tops is None else tuple(tuple(int(d) for d in t[1:]) for t in tops)))
    return rows
