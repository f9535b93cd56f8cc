"""What Caffe checks in each layer, written out so it can be checked before Caffe sees it.

Caffe ends the whole process on a failed CHECK (exit 134), and some of its
layers go on to divide by zero or write out of bounds instead. Every layer
type a dream can run through is modelled here after Caffe's own
``LayerSetUp`` (run once, when the net is built at the prototxt's input
size) and ``Reshape`` (run again at every input size): the blob counts, the
parameters, the output shapes, the learnable blobs and the scratch buffers.
Types without a rule are refused by the caller (see :mod:`shapes`).

Rules raise :class:`NetError` for what is wrong at any size and the
:class:`ShapeError` kinds for what depends on the input size.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..errors import DeepDreamError

Shape = Tuple[int, ...]
INT_MAX = 2**31 - 1
MAX_AXES = 4  # Caffe allows 32; the legacy num/channels/height/width accessors many layers use allow 4


class NetError(DeepDreamError):
    """The net definition asks for something Caffe would abort on, whatever the input size."""


class ShapeError(ValueError):
    """An input size that some layer cannot take."""


class TooSmall(ShapeError):
    """A window or kernel does not fit, or an output would be empty."""


class FixedSize(ShapeError):
    """The layer only works at the size the net was built at (an InnerProduct, an explicit Reshape...)."""


class Mismatch(ShapeError):
    """Blobs that must agree in shape do not at this size (e.g. the inputs of a Concat)."""


class TooLarge(ShapeError):
    """A blob would exceed Caffe's 2**31-1 values, or the machine's memory."""


@dataclass
class Setup:
    """What a layer fixed when the net was built; every later Reshape is checked against it."""

    params: List[Shape] = field(default_factory=list)  # learnable blobs
    state: Dict[str, Any] = field(default_factory=dict)


@dataclass
class Reshaped:
    tops: List[Shape]
    buffers: List[Shape] = field(default_factory=list)  # scratch blobs the layer allocates
    macs: int = 0


@dataclass(frozen=True)
class Rule:
    setup: Callable[[Any, List[Shape]], Setup]
    reshape: Callable[[Any, Setup, List[Shape]], Reshaped]
    bottoms: Tuple[int, Optional[int]] = (1, 1)  # min, max (None: any)
    tops: Tuple[int, Optional[int]] = (1, 1)
    equal_bottoms_tops: bool = False
    in_place: bool = False  # top i may be bottom i


# ---------------------------------------------------------------- helpers


def count(shape: Sequence[int], start: int = 0, end: Optional[int] = None) -> int:
    n = 1
    for d in list(shape)[start:end]:
        n *= int(d)
    return n


def check_count(shape: Sequence[int], what: str) -> None:
    """Blob::Reshape's CHECK: no more than INT_MAX values."""
    if count(shape) > INT_MAX:
        dims = "x".join(str(d) for d in shape)
        raise TooLarge(f"{what} would hold {count(shape):,} values ({dims}); Caffe's limit is {INT_MAX:,}")


def canonical_axis(axis: int, nd: int, what: str = "axis") -> int:
    """Blob::CanonicalAxisIndex: -nd <= axis < nd, negative counting from the end."""
    if not -nd <= axis < nd:
        raise NetError(f"{what} {axis} is out of range for a {nd}-axis input")
    return axis + nd if axis < 0 else axis


def _f32(x: float) -> np.float32:
    return np.float32(x)


FILLERS = ("constant", "gaussian", "positive_unitball", "uniform", "xavier", "msra", "bilinear")


def check_filler(fp: Any, shape: Shape, what: str) -> None:
    """The CHECKs of Caffe's fillers (filler.hpp, caffe_rng_*), run when a learnable blob is made."""
    t = fp.type
    if t not in FILLERS:
        raise NetError(f"{what} has filler type '{t}', unknown to Caffe (known: {', '.join(FILLERS)})")
    n = count(shape)
    if n == 0 and t != "bilinear":
        raise NetError(f"{what} would be empty ({shape})")
    if t != "gaussian" and fp.sparse != -1:
        raise NetError(f"{what}: filler '{t}' does not take 'sparse' (only gaussian does)")
    if t in ("positive_unitball", "xavier", "msra") or (t == "gaussian" and fp.sparse >= 0):
        if len(shape) < 1:
            raise NetError(f"{what}: filler '{t}' needs a blob with at least one axis")
    if t == "uniform" and not _f32(fp.min) <= _f32(fp.max):
        raise NetError(f"{what}: uniform filler min {fp.min} is above max {fp.max}")
    if t == "gaussian":
        if not _f32(fp.std) > 0:
            raise NetError(f"{what}: gaussian filler std must be positive, got {fp.std}")
        if fp.sparse < -1:
            raise NetError(f"{what}: gaussian filler sparse must be >= -1, got {fp.sparse}")
        if fp.sparse >= 0 and not 0 <= _f32(fp.sparse) / _f32(shape[0]) <= 1:
            raise NetError(f"{what}: gaussian filler sparse {fp.sparse} is more than the {shape[0]} outputs")
    if t == "bilinear" and (len(shape) != 4 or shape[2] != shape[3]):
        raise NetError(f"{what}: bilinear filler needs a 4-axis blob with a square kernel, got {shape}")


def _need_axes(b: Shape, n: int, what: str) -> None:
    if len(b) != n:
        raise NetError(f"{what} needs a {n}-axis input (N, C, H, W), got {len(b)} axes {b}")


def _i32(value: int, what: str) -> int:
    """A value Caffe computes in a C++ int: past its range the arithmetic wraps (undefined behaviour)."""
    if not -(2**31) <= value <= INT_MAX:
        raise TooLarge(f"{what} ({value:,}) overflows Caffe's int arithmetic")
    return value


def _c_div(a: int, b: int) -> int:
    """C++ integer division (truncates toward zero)."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


# ---------------------------------------------------------------- neuron layers


def _no_setup(layer: Any, bottoms: List[Shape]) -> Setup:
    return Setup()


def _same_as_bottom(layer: Any, s: Setup, bottoms: List[Shape]) -> Reshaped:
    return Reshaped([bottoms[0]])


def _base_setup(field_name: str) -> Callable[[Any, List[Shape]], Setup]:
    """Exp and Log: ``base`` is -1 (e) or positive, and its log must be usable."""

    def setup(layer: Any, bottoms: List[Shape]) -> Setup:
        p = getattr(layer, field_name)
        base = _f32(p.base)
        if base != -1:
            if not base > 0:
                raise NetError(f"{field_name}.base must be positive (or -1 for e), got {p.base}")
            log_base = np.log(base)
            if not np.isfinite(log_base) or (field_name == "log_param" and log_base == 0):
                raise NetError(f"{field_name}.base {p.base} has no usable logarithm")
        return Setup()

    return setup


def _prelu_setup(layer: Any, bottoms: List[Shape]) -> Setup:
    b = bottoms[0]
    if len(b) < 2:
        raise NetError(f"PReLU needs an input with at least 2 axes, got {b}")
    p = layer.prelu_param
    shape: Shape = () if p.channel_shared else (b[1],)
    if p.HasField("filler"):
        check_filler(p.filler, shape, "its slope")
    return Setup(params=[shape], state={"channels": b[1]})


def _prelu_reshape(layer: Any, s: Setup, bottoms: List[Shape]) -> Reshaped:
    b = bottoms[0]
    if len(b) < 2:
        raise NetError(f"PReLU needs an input with at least 2 axes, got {b}")
    if b[1] != s.state["channels"]:
        raise Mismatch(f"has {s.state['channels']} slopes but the input now has {b[1]} channels")
    return Reshaped([b], buffers=[(count(b, 1),), (count(b, 1),)])


# ---------------------------------------------------------------- convolution


def _geometry(cp: Any) -> Dict[str, Tuple[int, int]]:
    """kernel, stride, pad, dilation as BaseConvolutionLayer::LayerSetUp reads them (2 spatial axes)."""

    def pick(name: str, hw: Tuple[str, str], default: Optional[int], allowed: Tuple[int, ...]) -> Tuple[int, int]:
        has_hw = cp.HasField(hw[0]) or cp.HasField(hw[1])
        values = list(getattr(cp, name)) if name else []
        if has_hw:
            if values:
                raise NetError(f"give either {name} or {hw[0]}/{hw[1]}, not both")
            return int(getattr(cp, hw[0])), int(getattr(cp, hw[1]))
        if len(values) not in allowed:
            raise NetError(f"{name} must be given {' or '.join(str(a) for a in allowed)} times, got {len(values)}")
        if not values:
            return default, default  # type: ignore[return-value]
        return int(values[0]), int(values[-1])

    kernel = pick("kernel_size", ("kernel_h", "kernel_w"), None, (1, 2))
    stride = pick("stride", ("stride_h", "stride_w"), 1, (0, 1, 2))
    pad = pick("pad", ("pad_h", "pad_w"), 0, (0, 1, 2))
    dil = list(cp.dilation)
    if len(dil) not in (0, 1, 2):
        raise NetError(f"dilation must be given 0, 1 or 2 times, got {len(dil)}")
    dilation = (int(dil[0]), int(dil[-1])) if dil else (1, 1)
    if min(kernel) <= 0:
        raise NetError(f"kernel size must be positive, got {kernel[0]}x{kernel[1]}")
    if min(stride) <= 0:
        raise NetError(f"stride must be positive, got {stride[0]}x{stride[1]}")
    return {"kernel": kernel, "stride": stride, "pad": pad, "dilation": dilation}


def _conv_setup(layer: Any, bottoms: List[Shape]) -> Setup:
    cp = layer.convolution_param
    b = bottoms[0]
    _need_axes(b, 4, "this convolution")
    if canonical_axis(cp.axis, len(b)) != 1:
        raise NetError("only convolutions over axis 1 (channels) of an N x C x H x W input are supported")
    g = _geometry(cp)
    channels, num_output, group = b[1], int(cp.num_output), int(cp.group)
    if num_output <= 0:
        raise NetError(f"num_output must be positive, got {num_output}")
    if group <= 0:
        raise NetError(f"group must be positive, got {group}")
    if channels % group or num_output % group:
        raise NetError(f"group {group} must divide both the {channels} input channels and num_output {num_output}")
    deconv = layer.type == "Deconvolution"
    out_c, in_c = (channels, num_output) if deconv else (num_output, channels)
    kh, kw = g["kernel"]
    weight = (out_c, in_c // group, kh, kw)
    params = [weight]
    check_count(weight, "its weight blob")
    check_filler(cp.weight_filler, weight, "its weights")
    if cp.bias_term:
        params.append((num_output,))
        check_filler(cp.bias_filler, (num_output,), "its biases")
    state = dict(g, channels=channels, num_output=num_output, group=group, deconv=deconv,
                 kernel_dim=count(weight, 1), bias=bool(cp.bias_term))
    return Setup(params=params, state=state)


def _conv_reshape(layer: Any, s: Setup, bottoms: List[Shape]) -> Reshaped:
    st = s.state
    b = bottoms[0]
    _need_axes(b, 4, "this convolution")
    if b[1] != st["channels"]:
        raise Mismatch(f"was built for {st['channels']} input channels, now gets {b[1]}")
    for other in bottoms[1:]:
        if other != b:
            raise Mismatch(f"all its inputs must have one shape, got {b} and {other}")
    out = []
    for i, dim in enumerate(b[2:]):
        k, st_, p, d = st["kernel"][i], st["stride"][i], st["pad"][i], st["dilation"][i]
        extent = _i32(d * (k - 1) + 1, "the dilated kernel extent")
        _i32(2 * p, "twice the pad")
        if st["deconv"]:
            o = _i32(_i32(st_ * (dim - 1), "the upsampled size") + extent, "the output size") - 2 * p
        else:
            o = _c_div(_i32(dim + 2 * p, "the padded input size") - extent, st_) + 1
        if o <= 0:
            raise TooSmall(f"its {st['kernel'][0]}x{st['kernel'][1]} kernel does not fit a {b[2]}x{b[3]} input")
        out.append(o)
    top = (b[0], st["num_output"], out[0], out[1])
    col_spatial = tuple(b[2:]) if st["deconv"] else tuple(out)
    col = (st["kernel_dim"] * st["group"],) + col_spatial
    buffers = [col]
    if st["bias"]:
        buffers.append((count(top, 2),))
    in_c = st["num_output"] if st["deconv"] else st["channels"]
    macs = count(top[1:] if not st["deconv"] else b[1:]) * (in_c // st["group"]) * st["kernel"][0] * st["kernel"][1]
    return Reshaped([top] * len(bottoms), buffers=buffers, macs=macs)


# ---------------------------------------------------------------- pooling


def _pool_setup(layer: Any, bottoms: List[Shape]) -> Setup:
    pp = layer.pooling_param
    has = pp.HasField
    if pp.global_pooling:
        if has("kernel_size") or has("kernel_h") or has("kernel_w"):
            raise NetError("global pooling takes no kernel size")
    else:
        if has("kernel_size") == (has("kernel_h") and has("kernel_w")) or (
            not has("kernel_size") and (has("kernel_h") or has("kernel_w"))
        ):
            raise NetError("give the pooling window as kernel_size or as both kernel_h and kernel_w")
    if not ((not has("pad") and has("pad_h") and has("pad_w")) or (not has("pad_h") and not has("pad_w"))):
        raise NetError("give pad, or both pad_h and pad_w")
    if not ((not has("stride") and has("stride_h") and has("stride_w")) or (not has("stride_h") and not has("stride_w"))):
        raise NetError("give stride, or both stride_h and stride_w")
    b = bottoms[0]
    _need_axes(b, 4, "pooling")
    if pp.global_pooling:
        kh, kw = b[2], b[3]
    elif has("kernel_size"):
        kh = kw = int(pp.kernel_size)
    else:
        kh, kw = int(pp.kernel_h), int(pp.kernel_w)
    if kh <= 0 or kw <= 0:
        raise NetError(f"pooling window must be positive, got {kh}x{kw}")
    ph, pw = (int(pp.pad_h), int(pp.pad_w)) if has("pad_h") else (int(pp.pad),) * 2
    sh, sw = (int(pp.stride_h), int(pp.stride_w)) if has("stride_h") else (int(pp.stride),) * 2
    if sh <= 0 or sw <= 0:  # Caffe does not check this and divides by zero
        raise NetError(f"pooling stride must be positive, got {sh}x{sw}")
    if pp.global_pooling and (ph or pw or sh != 1 or sw != 1):
        raise NetError("global pooling takes only pad 0 and stride 1")
    method = caffe_enum_name(pp, "pool")
    if len(layer.top) > 1 and method != "MAX":
        raise NetError("only MAX pooling has a second (mask) output")
    if method == "STOCHASTIC":
        raise NetError("STOCHASTIC pooling has no CPU implementation in Caffe (and only runs in training)")
    if (ph or pw) and not (ph < kh and pw < kw):
        raise NetError(f"pooling pad {ph}x{pw} must be smaller than the window {kh}x{kw}")
    state = {"kernel": (kh, kw), "pad": (ph, pw), "stride": (sh, sw), "global": bool(pp.global_pooling),
             "ceil": caffe_enum_name(pp, "round_mode") != "FLOOR", "max": method == "MAX"}
    return Setup(state=state)


def _pooled(dim: int, k: int, p: int, s: int, ceil: bool) -> int:
    # Caffe: static_cast<int>(ceil(static_cast<float>(dim + 2p - k) / s)) + 1, in float32
    _i32(dim + 2 * p, "the padded input size")
    q = np.float32(dim + 2 * p - k) / np.float32(s)
    q = np.ceil(q) if ceil else np.floor(q)
    if not -(2.0**31) < float(q) < 2.0**31 - 1:
        raise TooLarge(f"the pooled size ({float(q):.0f}) overflows Caffe's int arithmetic")
    return int(q) + 1


def _pool_reshape(layer: Any, s: Setup, bottoms: List[Shape]) -> Reshaped:
    st = s.state
    b = bottoms[0]
    _need_axes(b, 4, "pooling")
    n, c, h, w = b
    kh, kw = (h, w) if st["global"] else st["kernel"]
    (ph, pw), (sh, sw) = st["pad"], st["stride"]
    oh, ow = _pooled(h, kh, ph, sh, st["ceil"]), _pooled(w, kw, pw, sw, st["ceil"])
    if ph or pw:
        if (oh - 1) * sh >= h + ph:
            oh -= 1
        if (ow - 1) * sw >= w + pw:
            ow -= 1
        if not ((oh - 1) * sh < h + ph and (ow - 1) * sw < w + pw):
            raise TooSmall(f"its last {kh}x{kw} window would start in the padding of a {h}x{w} input")
    if oh <= 0 or ow <= 0:
        raise TooSmall(f"its {kh}x{kw} pooling window does not fit a {h}x{w} input")
    top = (n, c, oh, ow)
    tops = [top] * len(layer.top)
    buffers = [top] if st["max"] and len(layer.top) == 1 else []
    return Reshaped(tops, buffers=buffers)


# ---------------------------------------------------------------- normalisation


def _lrn_setup(layer: Any, bottoms: List[Shape]) -> Setup:
    size = int(layer.lrn_param.local_size)
    if size <= 0 or size % 2 == 0:
        raise NetError(f"LRN local_size must be odd and positive, got {size}")
    _need_axes(bottoms[0], 4, "LRN")
    return Setup(state={"size": size, "across": caffe_enum_name(layer.lrn_param, "norm_region") != "WITHIN_CHANNEL"})


def _lrn_reshape(layer: Any, s: Setup, bottoms: List[Shape]) -> Reshaped:
    b = bottoms[0]
    _need_axes(b, 4, "LRN")
    n, c, h, w = b
    size = s.state["size"]
    _i32(c + size - 1, "channels plus the LRN window")
    if s.state["across"]:
        # scale_, and the padded squares of the forward and backward passes
        return Reshaped([b], buffers=[b, (1, c + size - 1, h, w)])
    return Reshaped([b], buffers=[b, b, b, b, b])


def _bn_setup(layer: Any, bottoms: List[Shape]) -> Setup:
    b = bottoms[0]
    if len(b) < 2:  # Caffe reads shape(1) of a 1-axis input in Reshape and aborts
        raise NetError(f"BatchNorm needs an input with at least 2 axes, got {b}")
    specs = list(layer.param)
    if len(specs) > 3:
        raise NetError(f"BatchNorm has 3 blobs but {len(specs)} param {{}} entries")
    if len(specs) != 3:  # Caffe resets all three to lr_mult 0 only when exactly three are given
        for i, spec in enumerate(specs):
            if spec.lr_mult != 0:
                raise NetError("BatchNorm statistics cannot be learned: its param lr_mult must be 0")
    c = b[1]
    return Setup(params=[(c,), (c,), (1,)], state={"channels": c})


def _bn_reshape(layer: Any, s: Setup, bottoms: List[Shape]) -> Reshaped:
    b = bottoms[0]
    if b[1] != s.state["channels"]:
        raise Mismatch(f"was built for {s.state['channels']} channels, now gets {b[1]}")
    spatial = count(b) // (b[1] * b[0])
    return Reshaped([b], buffers=[b, b, (b[0],), (spatial,)])


def _mvn_reshape(layer: Any, s: Setup, bottoms: List[Shape]) -> Reshaped:
    b = bottoms[0]
    legacy = tuple(b) + (1,) * (4 - len(b))  # Blob::LegacyShape pads missing axes at the end
    return Reshaped([legacy], buffers=[legacy, legacy[:2] + (1, 1)])


def _affine_blob(axis: int, num_axes: int, b: Shape, what: str) -> Shape:
    """The shape of a Scale/Bias blob taken from ``b`` by ``axis`` and ``num_axes`` (-1: to the end)."""
    first = canonical_axis(axis, len(b))
    if num_axes < -1:
        raise NetError(f"{what} num_axes must be >= -1, got {num_axes}")
    if num_axes >= 0 and len(b) < first + num_axes:
        raise NetError(f"{what} axis {axis} + num_axes {num_axes} run past the input's {len(b)} axes")
    return tuple(b[first:]) if num_axes == -1 else tuple(b[first : first + num_axes])


def _affine_check(p: Any, b: Shape, blob: Shape, what: str) -> None:
    """ScaleLayer/BiasLayer::Reshape: the blob must match the input's axes it covers."""
    axis = 0 if len(blob) == 0 else canonical_axis(p.axis, len(b))
    if len(b) < axis + len(blob):
        raise NetError(f"its {what} blob {blob} runs past the input's {len(b)} axes")
    if tuple(b[axis : axis + len(blob)]) != tuple(blob):
        raise (FixedSize if axis + len(blob) > 2 else Mismatch)(
            f"its {what} blob {blob} does not match the input {b} from axis {axis}")


def _bias_setup(layer: Any, bottoms: List[Shape]) -> Setup:
    p = layer.bias_param
    if len(bottoms) > 1:
        return Setup(state={"p": p})
    shape = _affine_blob(p.axis, int(p.num_axes), bottoms[0], "bias_param")
    check_filler(p.filler, shape, "its bias")
    return Setup(params=[shape], state={"p": p})


def _bias_reshape(layer: Any, s: Setup, bottoms: List[Shape]) -> Reshaped:
    blob = bottoms[1] if len(bottoms) > 1 else s.params[0]
    _affine_check(s.state["p"], bottoms[0], blob, "bias")
    return Reshaped([bottoms[0]], buffers=[(count(bottoms[0], len(blob)),)])


def _scale_setup(layer: Any, bottoms: List[Shape]) -> Setup:
    p = layer.scale_param
    b = bottoms[0]
    params: List[Shape] = []
    if len(bottoms) == 1:
        shape = _affine_blob(p.axis, int(p.num_axes), b, "scale_param")
        if p.HasField("filler"):
            check_filler(p.filler, shape, "its scale")
        elif count(shape) == 0:
            raise NetError(f"its scale blob would be empty ({shape})")
        params.append(shape)
    bias_shape: Optional[Shape] = None
    if p.bias_term:
        # Caffe builds a Bias layer over bottom[0] with the Scale's axis and num_axes
        # (the number of axes of bottom[1] when the scale is an input).
        num_axes = len(bottoms[1]) if len(bottoms) > 1 else int(p.num_axes)
        bias_shape = _affine_blob(p.axis, num_axes, b, "scale_param (for its bias)")
        check_filler(p.bias_filler, bias_shape, "its bias")
        params.append(bias_shape)
    return Setup(params=params, state={"p": p, "bias": bias_shape})


def _scale_reshape(layer: Any, s: Setup, bottoms: List[Shape]) -> Reshaped:
    b = bottoms[0]
    scale = bottoms[1] if len(bottoms) > 1 else s.params[0]
    _affine_check(s.state["p"], b, scale, "scale")
    if s.state["bias"] is not None:
        _affine_check(s.state["p"], b, s.state["bias"], "bias")
    axis = 0 if len(scale) == 0 else canonical_axis(s.state["p"].axis, len(b))
    outer, inner = count(b, 0, axis), count(b, axis + len(scale))
    return Reshaped([b], buffers=[b, (outer * count(scale),), (max(outer, inner),)])


# ---------------------------------------------------------------- fully connected


def _ip_setup(layer: Any, bottoms: List[Shape]) -> Setup:
    ip = layer.inner_product_param
    b = bottoms[0]
    axis = canonical_axis(ip.axis, len(b))
    n_out = int(ip.num_output)
    if n_out <= 0:
        raise NetError(f"num_output must be positive, got {n_out}")
    k = count(b, axis)
    weight = (k, n_out) if ip.transpose else (n_out, k)
    check_count(weight, "its weight blob")
    check_filler(ip.weight_filler, weight, "its weights")
    params = [weight]
    if ip.bias_term:
        params.append((n_out,))
        check_filler(ip.bias_filler, (n_out,), "its biases")
    return Setup(params=params, state={"axis": axis, "k": k, "n": n_out, "bias": bool(ip.bias_term)})


def _ip_reshape(layer: Any, s: Setup, bottoms: List[Shape]) -> Reshaped:
    b = bottoms[0]
    axis = canonical_axis(layer.inner_product_param.axis, len(b))
    k = count(b, axis)
    if k != s.state["k"]:
        raise FixedSize(f"an InnerProduct takes exactly {s.state['k']} inputs, and gets {k} at this size")
    top = tuple(b[:axis]) + (s.state["n"],)
    return Reshaped([top], buffers=[(count(b, 0, axis),)] if s.state["bias"] else [], macs=k * s.state["n"])


# ---------------------------------------------------------------- joining, splitting, reshaping


def _concat_setup(layer: Any, bottoms: List[Shape]) -> Setup:
    cp = layer.concat_param
    if cp.HasField("axis") and cp.HasField("concat_dim"):
        raise NetError("give either axis or concat_dim, not both")
    return Setup()


def _join_axis(p: Any, dim_field: str, nd: int) -> int:
    if p.HasField(dim_field):
        axis = int(getattr(p, dim_field))
        if not 0 <= axis < nd:
            raise NetError(f"{dim_field} {axis} is out of range for a {nd}-axis input")
        return axis
    return canonical_axis(p.axis, nd)


def _concat_reshape(layer: Any, s: Setup, bottoms: List[Shape]) -> Reshaped:
    axis = _join_axis(layer.concat_param, "concat_dim", len(bottoms[0]))
    top = list(bottoms[0])
    for b in bottoms[1:]:
        if len(b) != len(top) or any(x != y for j, (x, y) in enumerate(zip(b, bottoms[0])) if j != axis):
            raise Mismatch(f"its inputs must agree except on axis {axis}: {list(bottoms)}")
        top[axis] += b[axis]
    return Reshaped([tuple(top)])


def _eltwise_setup(layer: Any, bottoms: List[Shape]) -> Setup:
    ep = layer.eltwise_param
    if len(ep.coeff) not in (0, len(bottoms)):
        raise NetError(f"Eltwise takes one coefficient per input: {len(ep.coeff)} for {len(bottoms)} inputs")
    if ep.coeff and caffe_enum_name(ep, "operation") != "SUM":
        raise NetError("Eltwise takes coefficients only for SUM")
    return Setup()


def _eltwise_reshape(layer: Any, s: Setup, bottoms: List[Shape]) -> Reshaped:
    for b in bottoms[1:]:
        if b != bottoms[0]:
            raise Mismatch(f"its inputs must have one shape, got {list(bottoms)}")
    op = caffe_enum_name(layer.eltwise_param, "operation")
    return Reshaped([bottoms[0]], buffers=[bottoms[0]] if op == "MAX" else [])


def _reduction_reshape(layer: Any, s: Setup, bottoms: List[Shape]) -> Reshaped:
    b = bottoms[0]
    axis = canonical_axis(layer.reduction_param.axis, len(b))
    op = caffe_enum_name(layer.reduction_param, "operation")
    return Reshaped([tuple(b[:axis])], buffers=[(count(b, axis),)] if op in ("SUM", "MEAN") else [])


def _split_reshape(layer: Any, s: Setup, bottoms: List[Shape]) -> Reshaped:
    return Reshaped([bottoms[0]] * len(layer.top))


def _softmax_reshape(layer: Any, s: Setup, bottoms: List[Shape]) -> Reshaped:
    b = bottoms[0]
    axis = canonical_axis(layer.softmax_param.axis, len(b))
    scale = tuple(1 if i == axis else d for i, d in enumerate(b))
    return Reshaped([b], buffers=[(b[axis],), scale])


def _flatten_reshape(layer: Any, s: Setup, bottoms: List[Shape]) -> Reshaped:
    b = bottoms[0]
    fp = layer.flatten_param
    start, end = canonical_axis(fp.axis, len(b)), canonical_axis(fp.end_axis, len(b), "end_axis")
    if start > end + 1:
        raise NetError(f"flatten axis {fp.axis} comes after end_axis {fp.end_axis}")
    return Reshaped([tuple(b[:start]) + (count(b, start, end + 1),) + tuple(b[end + 1 :])])


def _reshape_setup(layer: Any, bottoms: List[Shape]) -> Setup:
    dims = [int(d) for d in layer.reshape_param.shape.dim]
    if sum(1 for d in dims if d == -1) > 1:
        raise NetError("a Reshape shape may contain at most one -1")
    if any(d < -1 or d > INT_MAX for d in dims):
        raise NetError(f"Reshape dims must be -1, 0 or positive, got {dims}")
    constant = count([d for d in dims if d > 0])
    if constant > INT_MAX:
        raise NetError(f"Reshape dims {dims} multiply past Caffe's int range")
    return Setup(state={"dims": dims, "constant": constant})


def _reshape_reshape(layer: Any, s: Setup, bottoms: List[Shape]) -> Reshaped:
    b = bottoms[0]
    rp = layer.reshape_param
    nd = len(b)
    start = rp.axis if rp.axis >= 0 else nd + rp.axis + 1
    if not 0 <= start <= nd:
        raise NetError(f"Reshape axis {rp.axis} is out of range for a {nd}-axis input")
    if rp.num_axes < -1:
        raise NetError(f"Reshape num_axes must be >= -1, got {rp.num_axes}")
    end = nd if rp.num_axes == -1 else start + rp.num_axes
    if end > nd:
        raise NetError(f"Reshape axis + num_axes run past the input's {nd} axes")
    dims = s.state["dims"]
    top = list(b[:start]) + list(dims) + list(b[end:])
    for i, d in enumerate(dims):
        if d == 0:
            if start + i >= nd:
                raise NetError("a 0 in the Reshape shape has no input axis to copy")
            top[start + i] = b[start + i]
    if -1 in dims:
        explicit = s.state["constant"] * count(b, 0, start) * count(b, end)
        explicit *= count([b[start + i] for i, d in enumerate(dims) if d == 0])
        if explicit > INT_MAX or count(b) % explicit:
            raise FixedSize(f"the input's {count(b)} values do not divide into its shape {dims}")
        top[start + dims.index(-1)] = count(b) // explicit
    if count(top) != count(b):
        raise FixedSize(f"its shape {dims} holds {count(top)} values, the input has {count(b)}")
    return Reshaped([tuple(top)])


def _crop_setup(layer: Any, bottoms: List[Shape]) -> Setup:
    cp = layer.crop_param
    nd = len(bottoms[0])
    start = canonical_axis(cp.axis, nd)
    if len(cp.offset) > 1 and start + len(cp.offset) != nd:
        raise NetError(f"Crop needs one offset, or one per axis from axis {start} ({nd - start}); got {len(cp.offset)}")
    return Setup()


def _crop_reshape(layer: Any, s: Setup, bottoms: List[Shape]) -> Reshaped:
    cp = layer.crop_param
    a, ref = bottoms
    start = canonical_axis(cp.axis, len(a))
    top = list(a)
    for i in range(start, len(a)):
        if i >= len(ref):
            raise NetError(f"its second input {ref} has no axis {i} to take the crop size from")
        off = int(cp.offset[0]) if len(cp.offset) == 1 else int(cp.offset[i - start]) if cp.offset else 0
        if a[i] - off < ref[i]:
            raise (TooSmall if i >= 2 else Mismatch)(
                f"cropping {ref[i]} at offset {off} from axis {i} of {a} runs out of the input")
        top[i] = ref[i]
    return Reshaped([tuple(top)])


def _slice_setup(layer: Any, bottoms: List[Shape]) -> Setup:
    sp = layer.slice_param
    if sp.HasField("axis") and sp.HasField("slice_dim"):
        raise NetError("give either axis or slice_dim, not both")
    return Setup()


def _slice_reshape(layer: Any, s: Setup, bottoms: List[Shape]) -> Reshaped:
    sp = layer.slice_param
    b = bottoms[0]
    axis = _join_axis(sp, "slice_dim", len(b))
    n_top, dim = len(layer.top), b[axis]
    points = [int(p) for p in sp.slice_point]
    if points:
        if len(points) != n_top - 1:
            raise NetError(f"Slice needs one slice_point fewer than its {n_top} outputs, got {len(points)}")
        if n_top > dim:
            raise Mismatch(f"cannot cut axis {axis} of size {dim} into {n_top} parts")
        sizes, prev = [], 0
        for p in points:
            if p <= prev:
                raise NetError(f"slice_points must increase from 1: {points}")
            sizes.append(p - prev)
            prev = p
        sizes.append(dim - prev)
        if sizes[-1] <= 0:
            raise Mismatch(f"slice_points {points} run past axis {axis} of size {dim}")
    else:
        if dim % n_top:
            raise Mismatch(f"{n_top} outputs do not divide axis {axis} of size {dim}")
        sizes = [dim // n_top] * n_top
    return Reshaped([tuple(sz if i == axis else d for i, d in enumerate(b)) for sz in sizes])


def _input_setup(layer: Any, bottoms: List[Shape]) -> Setup:
    shapes = input_layer_shapes(layer)
    for s in shapes:
        check_count(s, "an input")
    return Setup(state={"shapes": shapes})


def _input_reshape(layer: Any, s: Setup, bottoms: List[Shape]) -> Reshaped:
    return Reshaped(list(s.state["shapes"]))


def input_layer_shapes(layer: Any) -> List[Shape]:
    """The top shapes an Input layer declares (one shape for all tops, or one each)."""
    shapes = list(layer.input_param.shape)
    n_top = len(layer.top)
    if len(shapes) not in (1, n_top):
        raise NetError(f"an Input layer needs one shape, or one per top ({n_top}); got {len(shapes)}")
    out = []
    for i in range(n_top):
        dims = [int(d) for d in shapes[0 if len(shapes) == 1 else i].dim]
        if not 1 <= len(dims) <= MAX_AXES or any(not 1 <= d <= INT_MAX for d in dims):
            raise NetError(f"input '{layer.top[i]}' has shape {dims}; it needs 1 to {MAX_AXES} positive dims")
        out.append(tuple(dims))
    return out


def caffe_enum_name(msg: Any, field_name: str) -> str:
    fd = msg.DESCRIPTOR.fields_by_name[field_name]
    value = getattr(msg, field_name)
    ev = fd.enum_type.values_by_number.get(value)
    return ev.name if ev is not None else str(value)


# ---------------------------------------------------------------- the table

_NEURON = dict(setup=_no_setup, reshape=_same_as_bottom, in_place=True)

RULES: Dict[str, Rule] = {
    "Input": Rule(_input_setup, _input_reshape, bottoms=(0, 0), tops=(1, None)),
    "Convolution": Rule(_conv_setup, _conv_reshape, bottoms=(1, None), tops=(1, None), equal_bottoms_tops=True),
    "Deconvolution": Rule(_conv_setup, _conv_reshape, bottoms=(1, None), tops=(1, None), equal_bottoms_tops=True),
    "Pooling": Rule(_pool_setup, _pool_reshape, tops=(1, 2)),
    "LRN": Rule(_lrn_setup, _lrn_reshape),
    "InnerProduct": Rule(_ip_setup, _ip_reshape),
    "Concat": Rule(_concat_setup, _concat_reshape, bottoms=(1, None)),
    "Eltwise": Rule(_eltwise_setup, _eltwise_reshape, bottoms=(2, None)),
    "BatchNorm": Rule(_bn_setup, _bn_reshape, in_place=True),
    "Scale": Rule(_scale_setup, _scale_reshape, bottoms=(1, 2), in_place=True),
    "Bias": Rule(_bias_setup, _bias_reshape, bottoms=(1, 2), in_place=True),
    "PReLU": Rule(_prelu_setup, _prelu_reshape, in_place=True),
    "ReLU": Rule(**_NEURON),
    "ELU": Rule(**_NEURON),
    "Sigmoid": Rule(**_NEURON),
    "TanH": Rule(**_NEURON),
    "Power": Rule(**_NEURON),
    "BNLL": Rule(**_NEURON),
    "Dropout": Rule(**_NEURON),
    "Clip": Rule(**_NEURON),
    "Threshold": Rule(**_NEURON),
    "Exp": Rule(_base_setup("exp_param"), _same_as_bottom, in_place=True),
    "Log": Rule(_base_setup("log_param"), _same_as_bottom, in_place=True),
    "AbsVal": Rule(_no_setup, _same_as_bottom),
    "Swish": Rule(_no_setup, _same_as_bottom),
    "MVN": Rule(_no_setup, _mvn_reshape),
    "Softmax": Rule(_no_setup, _softmax_reshape),
    "Flatten": Rule(_no_setup, _flatten_reshape),
    "Reshape": Rule(_reshape_setup, _reshape_reshape),
    "Crop": Rule(_crop_setup, _crop_reshape, bottoms=(2, 2)),
    "Slice": Rule(_slice_setup, _slice_reshape, tops=(1, None)),
    "Split": Rule(_no_setup, _split_reshape, tops=(1, None)),
    "Reduction": Rule(_no_setup, _reduction_reshape),
    "Silence": Rule(_no_setup, lambda layer, s, bottoms: Reshaped([]), bottoms=(1, None), tops=(0, 0)),
}


def blob_count_problem(rule: Rule, layer: Any) -> Optional[str]:
    """Layer::CheckBlobCounts, as a message, or None."""
    nb, nt = len(layer.bottom), len(layer.top)
    for what, n, (lo, hi) in (("inputs (bottom)", nb, rule.bottoms), ("outputs (top)", nt, rule.tops)):
        if n < lo or (hi is not None and n > hi):
            want = str(lo) if lo == hi else f"at least {lo}" if hi is None else f"{lo} to {hi}"
            return f"takes {want} {what}, has {n}"
    if rule.equal_bottoms_tops and nb != nt:
        return f"needs as many outputs as inputs, has {nb} inputs and {nt} outputs"
    return None


def finite_problem(msg: Any, prefix: str = "") -> Optional[str]:
    """A float field that is NaN/inf or an unsigned field past int32 (Caffe reads those as int), or None."""
    for fd, value in msg.ListFields():
        name = prefix + fd.name
        if fd.name == "blobs":
            continue
        values = value if fd.label == fd.LABEL_REPEATED else [value]
        for v in values:
            if fd.type == fd.TYPE_MESSAGE:
                p = finite_problem(v, name + ".")
                if p:
                    return p
            elif fd.type in (fd.TYPE_FLOAT, fd.TYPE_DOUBLE):
                if not math.isfinite(v) or (fd.type == fd.TYPE_FLOAT and not np.isfinite(np.float32(v))):
                    return f"{name} is {v}; it must be a finite number"
            elif fd.type in (fd.TYPE_UINT32, fd.TYPE_UINT64, fd.TYPE_INT64) and not -INT_MAX <= v <= INT_MAX:
                return f"{name} is {v}, past the int range Caffe reads it into"
    return None
