"""What a classifier's prototxt says about visualising its classes: the native input size,
the score layer before the softmax, and which layers tie the input to one size."""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

from ..errors import DeepDreamError
from .prototxt import input_shape, layer_index

# Layers that pass a blob through unchanged in shape (the score layer may feed the softmax through them).
_PASS_THROUGH = {"ReLU", "Dropout", "Scale", "Bias", "Power", "Split"}


def native_size(param: Any) -> Tuple[int, int]:
    """(height, width) of the input the prototxt declares: the only size a classifier layer accepts."""
    shape = list(input_shape(param))
    if len(shape) != 4 or shape[2] < 1 or shape[3] < 1:
        raise DeepDreamError(f"the prototxt declares an input of shape {shape}, not N x C x H x W")
    return int(shape[2]), int(shape[3])


def classifier_layer(param: Any) -> str:
    """The class-score layer: the last InnerProduct whose output reaches a Softmax (through
    in-place or shape-keeping layers), else the last InnerProduct of the net.

    These are pre-softmax scores (GoogLeNet's ``loss3/classifier``, open_nsfw's ``fc_nsfw``).
    """
    types = {layer.name: layer.type for layer in param.layer}
    bottoms = {layer.name: list(layer.bottom) for layer in param.layer}
    found: Optional[str] = None
    writers: Dict[str, List[str]] = {}
    for layer in param.layer:
        if layer.type in ("Softmax", "SoftmaxWithLoss") and layer.bottom:
            blob = layer.bottom[0]
            # walk back over the writers of the blob (latest first) to an InnerProduct
            for name in reversed(writers.get(blob, [])):
                if types[name] == "InnerProduct":
                    found = name
                    break
                if types[name] not in _PASS_THROUGH or not bottoms[name]:
                    break
                blob = bottoms[name][0]
        for top in layer.top:
            writers.setdefault(top, []).append(layer.name)
    if found is None:
        ips = [layer.name for layer in param.layer if layer.type == "InnerProduct"]
        if not ips:
            raise DeepDreamError("the net has no InnerProduct (classifier) layer; give the class-score layer "
                                 "with --layer")
        found = ips[-1]
    return found


def fixed_size_layer(param: Any, layer: str) -> Optional[str]:
    """The first InnerProduct at or before ``layer`` that ``layer`` depends on, or ``None``.

    An InnerProduct's weights fix the size of its input, so every layer that
    depends on one accepts only the net's native input size.
    """
    end = layer_index(param, layer)
    if end is None:
        return None
    producers = _producers_upto(param, end)
    needed = {layer}
    first: Optional[str] = None
    for i in range(end, -1, -1):
        cur = param.layer[i]
        if cur.name not in needed:
            continue
        if cur.type == "InnerProduct":
            first = cur.name
        for b in cur.bottom:
            for p in producers.get(b, []):
                if layer_index(param, p) is not None and layer_index(param, p) < i:
                    needed.add(p)
    return first


def _producers_upto(param: Any, end: int) -> Dict[str, List[str]]:
    out: Dict[str, List[str]] = {}
    for layer in list(param.layer)[: end + 1]:
        for top in layer.top:
            out.setdefault(top, []).append(layer.name)
    return out


def fixed_size_refusal(layer: str, ip: str, native: Tuple[int, int], h: int, w: int) -> DeepDreamError:
    """The one line for a classifier layer asked to take another size than the native one."""
    nh, nw = native
    via = "" if ip == layer else f" (it depends on the InnerProduct '{ip}')"
    return DeepDreamError(
        f"layer '{layer}' is a classifier layer (fixed-size){via}: it takes only the net's {nw}x{nh} input, not {w}x{h}; "
        f"for the image of a class use `deepdream-caffe visualize --class K --layer {layer}`"
    )
