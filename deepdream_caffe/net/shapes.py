"""Output shapes of each layer for a given input size, worked out from the prototxt alone.

Used to refuse sizes Caffe would abort on (a pooling window larger than
its input is a CHECK failure that kills the process), to find the smallest
image a layer accepts, and to count a net's multiply-adds.
"""
from __future__ import annotations

import math
from typing import Any, Dict, List, Optional, Tuple

from .prototxt import input_names, input_shape

Shape = Tuple[int, ...]


class ShapeError(ValueError):
    """The input is too small (or otherwise wrong) for some layer."""


def _pair(values: Any, single: Any, h: Any, w: Any, default: int) -> Tuple[int, int]:
    if h or w:
        return int(h), int(w)
    vals = list(values) if values is not None else []
    if single:
        return int(single), int(single)
    if not vals:
        return default, default
    return int(vals[0]), int(vals[-1])


def _conv_geometry(cp: Any) -> Tuple[int, int, int, int, int, int, int, int]:
    kh, kw = _pair(cp.kernel_size, None, cp.kernel_h, cp.kernel_w, 1)
    sh, sw = _pair(cp.stride, None, cp.stride_h, cp.stride_w, 1)
    ph, pw = _pair(cp.pad, None, cp.pad_h, cp.pad_w, 0)
    dh, dw = _pair(cp.dilation, None, None, None, 1)
    return kh, kw, sh, sw, ph, pw, dh, dw


def layer_shapes(param: Any, height: int, width: int, upto: Optional[str] = None) -> Dict[str, Dict[str, Any]]:
    """For each layer (in order, up to ``upto``): its top shapes and multiply-adds.

    Raises ShapeError where Caffe would refuse the size. Layer types it does
    not know end the walk (the result holds what came before).
    """
    shape0 = list(input_shape(param))
    blobs: Dict[str, Shape] = {}
    for name in input_names(param):
        blobs[name] = (1, shape0[1] if len(shape0) > 1 else 3, height, width)
    out: Dict[str, Dict[str, Any]] = {}
    for layer in param.layer:
        if layer.type == "Input":
            out[layer.name] = {"tops": [blobs[t] for t in layer.top], "macs": 0}
            if layer.name == upto:
                break
            continue
        try:
            bottoms = [blobs[b] for b in layer.bottom]
        except KeyError:
            break
        tops, macs = _infer(layer, bottoms)
        if tops is None:
            break
        for t, s in zip(layer.top, tops):
            if any(d <= 0 for d in s):
                raise ShapeError(f"layer '{layer.name}' would get an empty output {s}")
            blobs[t] = s
        out[layer.name] = {"tops": tops, "macs": macs}
        if layer.name == upto:
            break
    return out


def _infer(layer: Any, bottoms: List[Shape]) -> Tuple[Optional[List[Shape]], int]:
    t = layer.type
    b = bottoms[0] if bottoms else None
    if t in ("ReLU", "LRN", "Dropout", "Sigmoid", "TanH", "Power", "AbsVal", "BatchNorm", "Scale", "Bias",
             "PReLU", "ELU", "BNLL", "Exp", "Log", "MVN", "Threshold", "Split", "Softmax"):
        return [b] * max(1, len(layer.top)), 0
    if t == "Eltwise":
        return [b], 0
    if t == "Convolution":
        cp = layer.convolution_param
        kh, kw, sh, sw, ph, pw, dh, dw = _conv_geometry(cp)
        n, c, h, w = b
        oh = (h + 2 * ph - (dh * (kh - 1) + 1)) // sh + 1
        ow = (w + 2 * pw - (dw * (kw - 1) + 1)) // sw + 1
        if oh <= 0 or ow <= 0:
            raise ShapeError(f"layer '{layer.name}': a {kh}x{kw} kernel does not fit a {h}x{w} input")
        group = cp.group or 1
        co = cp.num_output
        return [(n, co, oh, ow)], co * oh * ow * (c // group) * kh * kw
    if t == "Pooling":
        pp = layer.pooling_param
        n, c, h, w = b
        if pp.global_pooling:
            return [(n, c, 1, 1)], 0
        kh, kw = _pair(None, pp.kernel_size, pp.kernel_h, pp.kernel_w, 1)
        sh, sw = _pair(None, pp.stride, pp.stride_h, pp.stride_w, 1)
        ph, pw = _pair(None, pp.pad, pp.pad_h, pp.pad_w, 0)
        # Caffe's formula; a window larger than the input still gives one output
        # when the ceil lands on 0, and an empty blob (which Caffe dies on) otherwise.
        oh = int(math.ceil((h + 2 * ph - kh) / sh)) + 1
        ow = int(math.ceil((w + 2 * pw - kw) / sw)) + 1
        if oh <= 0 or ow <= 0:
            raise ShapeError(f"layer '{layer.name}': a {kh}x{kw} pooling window does not fit a {h}x{w} input")
        # Caffe drops a last window that would start inside the padding.
        if ph or pw:
            if (oh - 1) * sh >= h + ph:
                oh -= 1
            if (ow - 1) * sw >= w + pw:
                ow -= 1
        return [(n, c, oh, ow)], 0
    if t == "Concat":
        axis = layer.concat_param.axis if layer.concat_param.HasField("axis") else 1
        if axis != 1:
            return None, 0
        if len({s[2:] for s in bottoms}) != 1:
            raise ShapeError(f"layer '{layer.name}': inputs of different sizes {bottoms}")
        return [(b[0], sum(s[1] for s in bottoms)) + tuple(b[2:])], 0
    if t == "InnerProduct":
        ip = layer.inner_product_param
        k = 1
        for d in b[1:]:
            k *= d
        return [(b[0], ip.num_output)], k * ip.num_output
    if t == "Flatten":
        k = 1
        for d in b[1:]:
            k *= d
        return [(b[0], k)], 0
    return None, 0


def has_spatial_extent(shape: Shape) -> bool:
    return len(shape) == 4 and shape[2] >= 1 and shape[3] >= 1 and (shape[2] > 1 or shape[3] > 1)


def fits(param: Any, height: int, width: int, end: str) -> bool:
    try:
        layer_shapes(param, height, width, upto=end)
    except ShapeError:
        return False
    return True


def smallest_side(param: Any, end: str, aspect: float = 1.0, limit: int = 4096) -> int:
    """Smallest height (width = height * aspect) the net accepts up to ``end``."""
    lo, hi = 1, limit
    if not fits(param, hi, max(1, int(round(hi * aspect))), end):
        return limit
    while lo < hi:  # fitting is monotone in the size
        mid = (lo + hi) // 2
        if fits(param, mid, max(1, int(round(mid * aspect))), end):
            hi = mid
        else:
            lo = mid + 1
    return lo
