"""Hostile nets: generators that mutate prototxts and caffemodels the way an attacker (or a bad download) would.

Every numeric field of the layer parameters Caffe CHECKs is set to values
at and past its edges (0, -1, the int32 limit, past it, 1e38, inf, NaN,
every enum value), and the wiring is broken on purpose (duplicate tops,
missing bottoms, cycles, shapes that do not meet, in-place misuse, reserved
names, Python layers). The caffemodel generators cut, pad, poison and
re-encode a valid file. Cases are ``(id, text or bytes)`` and come out in a
fixed order, so a sample of them is the same on every run.
"""
from __future__ import annotations

import hashlib
import math
import struct
from typing import Any, Callable, Iterator, List, Optional, Tuple

from zoo_helpers import varint  # protobuf's base-128 length prefix

# A net with the layer types a ResNet/FCN-style deploy file uses that the tiny net lacks.
TINYRES_PROTOTXT = """name: "tinyres"
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 3 dim: 24 dim: 24 } } }
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
  convolution_param { num_output: 8 kernel_size: 3 pad: 1 bias_term: false weight_filler { type: "msra" } } }
layer { name: "bn1" type: "BatchNorm" bottom: "conv1" top: "conv1" }
layer { name: "scale1" type: "Scale" bottom: "conv1" top: "conv1" scale_param { bias_term: true } }
layer { name: "prelu1" type: "PReLU" bottom: "conv1" top: "conv1" }
layer { name: "branch" type: "Convolution" bottom: "conv1" top: "branch"
  convolution_param { num_output: 8 kernel_size: 3 pad: 1 group: 2 weight_filler { type: "gaussian" std: 0.1 } } }
layer { name: "elu" type: "ELU" bottom: "branch" top: "branch" }
layer { name: "sum" type: "Eltwise" bottom: "conv1" bottom: "branch" top: "sum"
  eltwise_param { operation: SUM coeff: 1 coeff: 0.5 } }
layer { name: "up" type: "Deconvolution" bottom: "sum" top: "up"
  convolution_param { num_output: 8 kernel_size: 4 stride: 2 pad: 1 group: 8 bias_term: false
    weight_filler { type: "bilinear" } } }
layer { name: "crop" type: "Crop" bottom: "up" bottom: "data" top: "crop" crop_param { axis: 2 offset: 1 } }
layer { name: "slice" type: "Slice" bottom: "crop" top: "s1" top: "s2" slice_param { axis: 1 slice_point: 3 } }
layer { name: "sig" type: "Sigmoid" bottom: "s1" top: "s1" }
layer { name: "pool" type: "Pooling" bottom: "s2" top: "pool" pooling_param { pool: AVE kernel_size: 2 stride: 2 } }
layer { name: "bias" type: "Bias" bottom: "pool" top: "pool" }
layer { name: "power" type: "Power" bottom: "pool" top: "pool" power_param { power: 1 scale: 0.5 shift: 0.1 } }
layer { name: "flat" type: "Flatten" bottom: "pool" top: "flat" }
layer { name: "resh" type: "Reshape" bottom: "flat" top: "resh" reshape_param { shape { dim: 0 dim: 5 dim: -1 dim: 1 } } }
layer { name: "fc" type: "InnerProduct" bottom: "resh" top: "fc" inner_product_param { num_output: 4 weight_filler { type: "xavier" } } }
layer { name: "prob" type: "Softmax" bottom: "fc" top: "prob" }
"""

PARAM_FIELD = {
    "Convolution": "convolution_param", "Deconvolution": "convolution_param", "Pooling": "pooling_param",
    "LRN": "lrn_param", "InnerProduct": "inner_product_param", "Concat": "concat_param",
    "Eltwise": "eltwise_param", "BatchNorm": "batch_norm_param", "Scale": "scale_param",
    "ReLU": "relu_param", "Input": "input_param", "Bias": "bias_param", "PReLU": "prelu_param",
    "Crop": "crop_param", "Reshape": "reshape_param", "Slice": "slice_param", "Flatten": "flatten_param",
    "Softmax": "softmax_param", "ELU": "elu_param", "Power": "power_param", "Dropout": "dropout_param",
}

INF = float("inf")


def edge_values(fd: Any, current: Any) -> List[Any]:
    """Values at and past the edges of a field's type."""
    t = fd.type
    if t == fd.TYPE_INT32:
        return [0, -1, 2**31 - 1]
    if t == fd.TYPE_UINT32:
        return [0, 2**31, 2**32 - 1]
    if t == fd.TYPE_INT64:
        return [0, -1, 2**40]
    if t in (fd.TYPE_FLOAT, fd.TYPE_DOUBLE):
        return [0.0, -1.0, 1e38, INF, math.nan]
    if t == fd.TYPE_BOOL:
        return [not current]
    if t == fd.TYPE_ENUM:
        return [v.number for v in fd.enum_type.values if v.number != current]
    if t == fd.TYPE_STRING and fd.name == "type":
        return ["bogus"]
    return []


def _field_paths(desc: Any, prefix: Tuple[str, ...] = ()) -> Iterator[Tuple[Tuple[str, ...], Any]]:
    for fd in desc.fields:
        if fd.type == fd.TYPE_MESSAGE:
            if fd.message_type.name in ("FillerParameter", "BlobShape"):
                yield from _field_paths(fd.message_type, prefix + (fd.name,))
            continue
        yield prefix + (fd.name,), fd


def _navigate(msg: Any, path: Tuple[str, ...]) -> Any:
    for name in path:
        fd = msg.DESCRIPTOR.fields_by_name[name]
        if fd.label == fd.LABEL_REPEATED:  # a repeated message (input_param.shape): its first element
            field = getattr(msg, name)
            msg = field[0] if len(field) else field.add()
        else:
            msg = getattr(msg, name)
    return msg


def numeric_mutations(param: Any, types: Optional[List[str]] = None) -> Iterator[Tuple[str, Any, str]]:
    """(id, mutated NetParameter, mutated layer name): one field of one layer per type set to an edge value."""
    seen = set()
    for li, layer in enumerate(param.layer):
        if layer.type not in PARAM_FIELD or layer.type in seen or (types and layer.type not in types):
            continue
        seen.add(layer.type)
        pfield = PARAM_FIELD[layer.type]
        desc = getattr(layer, pfield).DESCRIPTOR
        for path, fd in _field_paths(desc):
            parent_path, name = path[:-1], path[-1]
            current = getattr(_navigate(getattr(layer, pfield), parent_path), name)
            repeated = fd.label == fd.LABEL_REPEATED
            values = edge_values(fd, None if repeated else current)
            for v in values:
                m = type(param)()
                m.CopyFrom(param)
                target = _navigate(getattr(m.layer[li], pfield), parent_path)
                if repeated:
                    field = getattr(target, name)
                    idx = len(field) - 1 if len(field) else 0
                    if len(field):
                        field[idx] = v
                    else:
                        field.append(v)
                else:
                    setattr(target, name, v)
                yield f"{layer.name}:{'.'.join(path)}={v}", m, layer.name
            if repeated and len(current):
                m = type(param)()
                m.CopyFrom(param)
                target = _navigate(getattr(m.layer[li], pfield), parent_path)
                getattr(target, name).append(getattr(target, name)[-1])
                yield f"{layer.name}:{'.'.join(path)}+=extra", m, layer.name


def input_mutations(param: Any) -> Iterator[Tuple[str, Any, str]]:
    """The `input:` declaration's dims at the edges (the Input layer's come from numeric_mutations)."""
    if not param.input:
        return
    dims = param.input_shape[0].dim if param.input_shape else param.input_dim
    for i in range(len(dims)):
        for v in (0, -1, 2**40):
            m = type(param)()
            m.CopyFrom(param)
            (m.input_shape[0].dim if m.input_shape else m.input_dim)[i] = v
            yield f"input_shape.dim[{i}]={v}", m, m.layer[0].name


def stable_sample(cases: List[Any], n: Optional[int], key: Callable[[Any], str]) -> List[Any]:
    """``n`` cases chosen by a hash of their id: the same ones on every run (all when n is None)."""
    if n is None or n >= len(cases):
        return list(cases)
    ranked = sorted(cases, key=lambda c: hashlib.sha1(key(c).encode()).hexdigest())
    chosen = {id(c) for c in ranked[:n]}
    return [c for c in cases if id(c) in chosen]


# ---------------------------------------------------------------- structural mutations (text level)


def structural_mutations(tiny: str, tinyres: str) -> List[Tuple[str, str, str, str]]:
    """(id, base name, prototxt text, layer to dream on): wiring and definitions Caffe aborts on or mishandles."""
    t, r = tiny, tinyres
    cases = [
        # the cases of the issue
        ("input-shape-2-dims", "tiny", t.replace("input_shape { dim: 1 dim: 3 dim: 32 dim: 32 }", "input_shape { dim: 1 dim: 3 }"), "a/output"),
        ("input-without-dims", "tiny", t.replace("input_shape { dim: 1 dim: 3 dim: 32 dim: 32 }\n", ""), "a/output"),
        ("kernel-size-0", "tiny", t.replace("num_output: 8 kernel_size: 3", "num_output: 8 kernel_size: 0"), "a/output"),
        ("pool-stride-0", "tiny", t.replace("pool: MAX kernel_size: 3 stride: 2", "pool: MAX kernel_size: 3 stride: 0"), "a/output"),
        ("group-not-dividing", "tiny", t.replace("num_output: 6 kernel_size: 1", "num_output: 6 kernel_size: 1 group: 4"), "a/output"),
        ("group-zero", "tiny", t.replace("num_output: 6 kernel_size: 1", "num_output: 6 kernel_size: 1 group: 0"), "a/output"),
        ("lrn-even-local-size", "tiny", t.replace("local_size: 3", "local_size: 4"), "a/output"),
        # inputs
        ("input-dim-3-values", "tiny", t.replace("input_shape { dim: 1 dim: 3 dim: 32 dim: 32 }", "input_dim: 1 input_dim: 3 input_dim: 32"), "a/output"),
        ("two-inputs-one-shape", "tiny", t.replace('input: "data"\n', 'input: "data"\ninput: "extra"\n'), "a/output"),
        ("input-5-dims", "tiny", t.replace("dim: 1 dim: 3 dim: 32 dim: 32", "dim: 1 dim: 3 dim: 32 dim: 32 dim: 1"), "a/output"),
        ("input-1-channel", "tiny", t.replace("dim: 1 dim: 3 dim: 32 dim: 32", "dim: 1 dim: 1 dim: 32 dim: 32"), "a/output"),
        ("input-layer-no-shape", "tinyres", r.replace(" input_param { shape { dim: 1 dim: 3 dim: 24 dim: 24 } }", ""), "sum"),
        ("input-layer-two-shapes-one-top", "tinyres", r.replace("shape { dim: 1 dim: 3 dim: 24 dim: 24 }", "shape { dim: 1 dim: 3 dim: 24 dim: 24 } shape { dim: 1 }"), "sum"),
        ("no-input-at-all", "tiny", t.replace('input: "data"\ninput_shape { dim: 1 dim: 3 dim: 32 dim: 32 }\n', ""), "a/output"),
        ("input-and-input-layer-same-top", "tiny", t.replace('layer { name: "conv1"', 'layer { name: "in2" type: "Input" top: "data" input_param { shape { dim: 1 dim: 3 dim: 8 dim: 8 } } }\nlayer { name: "conv1"', 1), "a/output"),
        # wiring
        ("duplicate-top", "tiny", t.replace('bottom: "pool1" top: "a/3x3"', 'bottom: "pool1" top: "a/1x1"'), "a/output"),
        ("top-overwrites-input", "tiny", t.replace('bottom: "pool1" top: "a/3x3"', 'bottom: "pool1" top: "data"'), "a/output"),
        ("two-tops-same-name", "tiny", t.replace('top: "pool1"\n', 'top: "pool1" top: "pool1"\n'), "a/output"),
        ("missing-bottom", "tiny", t.replace('bottom: "norm1" top: "pool1"', 'bottom: "norm9" top: "pool1"'), "a/output"),
        ("cycle", "tiny", t.replace('bottom: "conv1" top: "norm1"', 'bottom: "pool1" top: "norm1"'), "a/output"),
        ("self-cycle", "tiny", t.replace('bottom: "norm1" top: "pool1"', 'bottom: "pool1" top: "pool1"'), "a/output"),
        ("inplace-on-other-index", "tiny", t.replace('bottom: "a/1x1" bottom: "a/3x3" top: "a/output"', 'bottom: "a/1x1" bottom: "a/3x3" top: "a/3x3"'), "a/output"),
        ("empty-top-name", "tiny", t.replace('top: "norm1"', 'top: ""'), "conv1"),
        ("duplicate-layer-name", "tiny", t.replace('name: "a/3x3"', 'name: "a/1x1"'), "a/output"),
        ("inplace-pooling", "tiny", t.replace('bottom: "norm1" top: "pool1"', 'bottom: "norm1" top: "norm1"').replace('bottom: "pool1"', 'bottom: "norm1"'), "a/output"),
        ("inplace-concat", "tiny", t.replace('bottom: "a/1x1" bottom: "a/3x3" top: "a/output"', 'bottom: "a/1x1" bottom: "a/3x3" top: "a/1x1"').replace('bottom: "a/output"', 'bottom: "a/1x1"'), "pool2"),
        ("inplace-on-input", "tiny", t.replace('layer { name: "conv1"', 'layer { name: "scale_in" type: "Power" bottom: "data" top: "data" power_param { scale: 2 } }\nlayer { name: "conv1"', 1), "a/output"),
        ("inplace-lrn", "tiny", t.replace('bottom: "conv1" top: "norm1"', 'bottom: "conv1" top: "conv1"').replace('bottom: "norm1"', 'bottom: "conv1"'), "a/output"),
        ("inplace-on-shared-blob", "tiny", t.replace('layer { name: "relu1"', 'layer { name: "peek" type: "Power" bottom: "conv1" top: "peek" }\nlayer { name: "relu1"', 1), "a/output"),
        ("blob-named-like-a-split-copy", "tiny", t.replace('bottom: "pool1" top: "a/3x3"', 'bottom: "pool1" top: "pool1_pool1_0_split_0"').replace('bottom: "a/1x1" bottom: "a/3x3"', 'bottom: "a/1x1" bottom: "pool1_pool1_0_split_0"'), "a/output"),
        ("inplace-flatten", "tinyres", r.replace('bottom: "pool" top: "flat"', 'bottom: "pool" top: "pool"').replace('bottom: "flat"', 'bottom: "pool"'), "resh"),
        # shapes that do not meet
        ("concat-mismatch", "tiny", t.replace('bottom: "a/1x1" bottom: "a/3x3" top: "a/output"', 'bottom: "a/1x1" bottom: "conv1" top: "a/output"'), "a/output"),
        ("concat-axis-5", "tiny", t.replace('bottom: "a/1x1" bottom: "a/3x3" top: "a/output" }', 'bottom: "a/1x1" bottom: "a/3x3" top: "a/output" concat_param { axis: 5 } }'), "a/output"),
        ("concat-axis-and-dim", "tiny", t.replace('bottom: "a/1x1" bottom: "a/3x3" top: "a/output" }', 'bottom: "a/1x1" bottom: "a/3x3" top: "a/output" concat_param { axis: 1 concat_dim: 1 } }'), "a/output"),
        ("eltwise-mismatch", "tinyres", r.replace('bottom: "conv1" bottom: "branch" top: "sum"', 'bottom: "data" bottom: "branch" top: "sum"'), "sum"),
        ("eltwise-one-input", "tinyres", r.replace('bottom: "conv1" bottom: "branch" top: "sum"\n  eltwise_param { operation: SUM coeff: 1 coeff: 0.5 }', 'bottom: "branch" top: "sum"'), "sum"),
        ("eltwise-prod-coeffs", "tinyres", r.replace("operation: SUM", "operation: PROD"), "sum"),
        ("crop-offset-too-big", "tinyres", r.replace("crop_param { axis: 2 offset: 1 }", "crop_param { axis: 2 offset: 40 }"), "crop"),
        ("crop-three-offsets", "tinyres", r.replace("crop_param { axis: 2 offset: 1 }", "crop_param { axis: 2 offset: 1 offset: 1 offset: 1 }"), "crop"),
        ("crop-bigger-than-input", "tinyres", r.replace('bottom: "up" bottom: "data" top: "crop"', 'bottom: "data" bottom: "up" top: "crop"'), "crop"),
        ("crop-offset-wraps-negative", "tinyres", r.replace("crop_param { axis: 2 offset: 1 }", "crop_param { axis: 2 offset: 4294967295 }"), "crop"),
        ("reshape-two-minus-ones", "tinyres", r.replace("dim: 0 dim: 5 dim: -1 dim: 1", "dim: 0 dim: -1 dim: -1 dim: 1"), "resh"),
        ("reshape-count-mismatch", "tinyres", r.replace("dim: 0 dim: 5 dim: -1 dim: 1", "dim: 1 dim: 5 dim: 7 dim: 1"), "resh"),
        ("reshape-not-divisible", "tinyres", r.replace("dim: 0 dim: 5 dim: -1 dim: 1", "dim: 0 dim: 7 dim: -1 dim: 1"), "resh"),
        ("reshape-zero-past-axes", "tinyres", r.replace("dim: 0 dim: 5 dim: -1 dim: 1", "dim: 0 dim: 0 dim: 0 dim: 0 dim: -1"), "resh"),
        ("reshape-minus-two", "tinyres", r.replace("dim: 0 dim: 5 dim: -1 dim: 1", "dim: 0 dim: -2 dim: -1 dim: 1"), "resh"),
        ("reshape-overflowing-dims", "tinyres", r.replace("dim: 0 dim: 5 dim: -1 dim: 1", "dim: 65536 dim: 65536 dim: -1"), "resh"),
        ("reshape-five-axes", "tinyres", r.replace("dim: 0 dim: 5 dim: -1 dim: 1", "dim: 0 dim: 5 dim: -1 dim: 1 dim: 1"), "resh"),
        ("slice-points-decreasing", "tinyres", r.replace("slice_point: 3", "slice_point: 3 slice_point: 2"), "sig"),
        ("slice-point-past-axis", "tinyres", r.replace("slice_point: 3", "slice_point: 30"), "sig"),
        ("slice-too-many-tops", "tinyres", r.replace('top: "s1" top: "s2" slice_param { axis: 1 slice_point: 3 }', 'top: "s1" top: "s2" top: "s3" slice_param { axis: 1 }'), "sig"),
        ("split-in-place", "tiny", t.replace('layer { name: "pool1"', 'layer { name: "sp" type: "Split" bottom: "norm1" top: "norm1" }\nlayer { name: "pool1"', 1), "a/output"),
        ("softmax-axis-out-of-range", "tinyres", r.replace('top: "prob" }', 'top: "prob" softmax_param { axis: 7 } }'), "prob"),
        ("flatten-axis-after-end", "tinyres", r.replace('bottom: "pool" top: "flat" }', 'bottom: "pool" top: "flat" flatten_param { axis: 3 end_axis: 1 } }'), "flat"),
        ("scale-num-axes-past-end", "tinyres", r.replace("scale_param { bias_term: true }", "scale_param { bias_term: true axis: 2 num_axes: 5 }"), "sum"),
        ("scale-two-bottoms-mismatch", "tinyres", r.replace('name: "scale1" type: "Scale" bottom: "conv1" top: "conv1"', 'name: "scale1" type: "Scale" bottom: "conv1" bottom: "data" top: "conv1"'), "sum"),
        ("bias-two-bottoms", "tinyres", r.replace('name: "bias" type: "Bias" bottom: "pool" top: "pool"', 'name: "bias" type: "Bias" bottom: "pool" bottom: "s1" top: "pool"'), "power"),
        ("batchnorm-1-axis", "tinyres", r.replace('name: "bn1" type: "BatchNorm" bottom: "conv1" top: "conv1"', 'name: "bn1" type: "BatchNorm" bottom: "fl0" top: "fl0"').replace('layer { name: "bn1"', 'layer { name: "f0" type: "Reshape" bottom: "conv1" top: "fl0" reshape_param { shape { dim: -1 } } }\nlayer { name: "bn1"'), "sum"),
        # per-layer definitions
        ("pool-stochastic", "tiny", t.replace("pool: MAX kernel_size: 3 stride: 2", "pool: STOCHASTIC kernel_size: 3 stride: 2"), "a/output"),
        ("pool-pad-not-below-kernel", "tiny", t.replace("pool: MAX kernel_size: 3 stride: 2", "pool: MAX kernel_size: 3 stride: 2 pad: 3"), "a/output"),
        ("pool-kernel-and-kernel-h", "tiny", t.replace("pool: MAX kernel_size: 3 stride: 2", "pool: MAX kernel_size: 3 kernel_h: 2 stride: 2"), "a/output"),
        ("pool-global-with-kernel", "tiny", t.replace("pool: AVE global_pooling: true", "pool: AVE global_pooling: true kernel_size: 2"), "pool2"),
        ("pool-mask-top-on-ave", "tiny", t.replace('bottom: "a/output" top: "pool2"', 'bottom: "a/output" top: "pool2" top: "mask"'), "pool2"),
        ("conv-kernel-h-only", "tiny", t.replace("num_output: 8 kernel_size: 3", "num_output: 8 kernel_h: 3"), "a/output"),
        ("conv-3-kernel-sizes", "tiny", t.replace("num_output: 8 kernel_size: 3", "num_output: 8 kernel_size: 3 kernel_size: 3 kernel_size: 3"), "a/output"),
        ("conv-pad-overflow", "tiny", t.replace("num_output: 8 kernel_size: 3 pad: 1 stride: 1", "num_output: 8 kernel_size: 3 pad: 1073741824 stride: 1073741824"), "a/output"),
        ("conv-two-bottoms-two-tops-mismatch", "tiny", t.replace('bottom: "pool1" top: "a/3x3"', 'bottom: "pool1" bottom: "conv1" top: "a/3x3" top: "a/3x3b"'), "a/output"),
        ("conv-axis-2", "tiny", t.replace("num_output: 8 kernel_size: 3", "num_output: 8 axis: 2 kernel_size: 3"), "a/output"),
        ("deconv-huge-stride", "tinyres", r.replace("kernel_size: 4 stride: 2 pad: 1 group: 8", "kernel_size: 4 stride: 1073741824 pad: 1 group: 8"), "crop"),
        ("deconv-pad-eats-output", "tinyres", r.replace("kernel_size: 4 stride: 2 pad: 1 group: 8", "kernel_size: 4 stride: 2 pad: 100 group: 8"), "crop"),
        ("bilinear-non-square", "tinyres", r.replace("kernel_size: 4 stride: 2 pad: 1 group: 8", "kernel_h: 4 kernel_w: 2 stride: 2 pad: 1 group: 8"), "crop"),
        ("filler-bogus", "tiny", t.replace('weight_filler { type: "gaussian" std: 0.2 }', 'weight_filler { type: "bogus" }'), "a/output"),
        ("gaussian-std-0", "tiny", t.replace("std: 0.2", "std: 0"), "a/output"),
        ("gaussian-sparse-too-big", "tiny", t.replace("std: 0.2", "std: 0.2 sparse: 100"), "a/output"),
        ("uniform-min-above-max", "tiny", t.replace('weight_filler { type: "gaussian" std: 0.2 }', 'weight_filler { type: "uniform" min: 1 max: 0 }'), "a/output"),
        ("xavier-sparse", "tiny", t.replace('weight_filler { type: "xavier" } bias_filler { type: "constant" value: 0.05 } } }\nlayer { name: "a/relu_1x1"', 'weight_filler { type: "xavier" sparse: 2 } bias_filler { type: "constant" value: 0.05 } } }\nlayer { name: "a/relu_1x1"'), "a/output"),
        ("ip-num-output-0", "tiny", t.replace("num_output: 5", "num_output: 0"), "fc"),
        ("ip-axis-out-of-range", "tiny", t.replace("num_output: 5", "num_output: 5 axis: 4"), "fc"),
        ("exp-base-negative", "tiny", t.replace('layer { name: "relu1" type: "ReLU"', 'layer { name: "relu1" type: "Exp" exp_param { base: -2 }', 1), "a/output"),
        ("log-base-1", "tiny", t.replace('layer { name: "relu1" type: "ReLU"', 'layer { name: "relu1" type: "Log" log_param { base: 1 }', 1), "a/output"),
        ("absval-in-place", "tiny", t.replace('layer { name: "relu1" type: "ReLU"', 'layer { name: "relu1" type: "AbsVal"', 1), "a/output"),
        ("prelu-on-1-axis", "tinyres", r.replace('name: "prob" type: "Softmax" bottom: "fc" top: "prob"', 'name: "prob" type: "PReLU" bottom: "fl1" top: "prob"').replace('layer { name: "prob"', 'layer { name: "f1" type: "Reshape" bottom: "fc" top: "fl1" reshape_param { shape { dim: -1 } } }\nlayer { name: "prob"'), "prob"),
        # layer-level fields
        ("propagate-down-count", "tiny", t.replace('bottom: "conv1" top: "norm1"', 'bottom: "conv1" top: "norm1" propagate_down: true propagate_down: false'), "a/output"),
        ("loss-weight-count", "tiny", t.replace('bottom: "conv1" top: "norm1"', 'bottom: "conv1" top: "norm1" loss_weight: 1 loss_weight: 1'), "a/output"),
        ("param-on-relu", "tiny", t.replace('layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" }', 'layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" param { lr_mult: 1 } }'), "a/output"),
        ("three-params-on-conv", "tiny", t.replace('top: "conv1"\n  convolution_param', 'top: "conv1" param { } param { } param { }\n  convolution_param'), "a/output"),
        ("batchnorm-learned-stats", "tinyres", r.replace('name: "bn1" type: "BatchNorm" bottom: "conv1" top: "conv1"', 'name: "bn1" type: "BatchNorm" bottom: "conv1" top: "conv1" param { lr_mult: 1 }'), "sum"),
        ("batchnorm-four-params", "tinyres", r.replace('name: "bn1" type: "BatchNorm" bottom: "conv1" top: "conv1"', 'name: "bn1" type: "BatchNorm" bottom: "conv1" top: "conv1" param { lr_mult: 0 } param { lr_mult: 0 } param { lr_mult: 0 } param { lr_mult: 0 }'), "sum"),
        ("shared-param-shape-mismatch", "tiny", t.replace('name: "a/1x1" type: "Convolution" bottom: "pool1" top: "a/1x1"', 'name: "a/1x1" type: "Convolution" bottom: "pool1" top: "a/1x1" param { name: "w" }').replace('name: "a/3x3" type: "Convolution" bottom: "pool1" top: "a/3x3"', 'name: "a/3x3" type: "Convolution" bottom: "pool1" top: "a/3x3" param { name: "w" }'), "a/output"),
        ("shared-param-lr-mismatch", "tiny", t.replace('name: "a/1x1" type: "Convolution" bottom: "pool1" top: "a/1x1"', 'name: "a/1x1" type: "Convolution" bottom: "pool1" top: "a/1x1" param { name: "w" lr_mult: 1 }').replace('name: "a/3x3" type: "Convolution" bottom: "pool1" top: "a/3x3"\n  convolution_param { num_output: 6 kernel_size: 3 pad: 1', 'name: "a/3x3" type: "Convolution" bottom: "pool1" top: "a/3x3" param { name: "w" lr_mult: 2 }\n  convolution_param { num_output: 6 kernel_size: 1 pad: 0'), "a/output"),
        ("blobs-in-prototxt", "tiny", t.replace('layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" }', 'layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" blobs { data: 1 } }'), "a/output"),
        ("include-and-exclude", "tiny", t.replace('bottom: "conv1" top: "norm1"', 'bottom: "conv1" top: "norm1" include { phase: TEST } exclude { phase: TRAIN }'), "a/output"),
        ("train-only-layer-in-the-middle", "tiny", t.replace('bottom: "conv1" top: "norm1"', 'bottom: "conv1" top: "norm1" include { phase: TRAIN }'), "a/output"),
        ("engine-cudnn", "tiny", t.replace("num_output: 8 kernel_size: 3", "num_output: 8 engine: CUDNN kernel_size: 3").replace("pool: MAX", "pool: MAX engine: CUDNN"), "a/output"),
        # types
        ("unknown-type", "tiny", t.replace('type: "LRN"', 'type: "Frobnicate"'), "a/output"),
        ("data-layer", "tiny", t.replace('layer { name: "conv1"', 'layer { name: "db" type: "Data" top: "dbdata" top: "label" data_param { source: "/nonexistent" backend: LMDB batch_size: 1 } }\nlayer { name: "conv1"', 1), "a/output"),
        ("loss-layer", "tiny", t.replace('layer { name: "prob"', 'layer { name: "loss" type: "SoftmaxWithLoss" bottom: "fc" bottom: "fc" top: "loss" }\nlayer { name: "prob"'), "prob"),
        ("hdf5-output", "tiny", t.replace('layer { name: "pool1"', 'layer { name: "h5" type: "HDF5Output" bottom: "norm1" bottom: "norm1" hdf5_output_param { file_name: "/tmp/x.h5" } }\nlayer { name: "pool1"', 1), "a/output"),
        ("python-layer", "tiny", t.replace('layer { name: "pool1"', 'layer { name: "py" type: "Python" bottom: "norm1" top: "pynorm" python_param { module: "os" layer: "system" } }\nlayer { name: "pool1"', 1), "a/output"),
        # reserved names
        ("layer-named-like-the-gate", "tiny", t.replace('name: "norm1"', 'name: "deepdream/input_gate"'), "a/output"),
        ("blob-named-like-the-gate", "tiny", t.replace('top: "norm1"', 'top: "data/deepdream_gate"').replace('bottom: "norm1"', 'bottom: "data/deepdream_gate"'), "a/output"),
        # files that are not prototxts
        ("empty-file", "tiny", "", "a/output"),
        ("v1-format", "tiny", 'name: "v1"\ninput: "data"\ninput_dim: 1 input_dim: 3 input_dim: 8 input_dim: 8\nlayers { name: "c" type: CONVOLUTION bottom: "data" top: "c" convolution_param { num_output: 1 kernel_size: 1 } }\n', "c"),
        ("garbage", "tiny", "\x00\x01 layer {{{ ]]] \ufffd", "a/output"),
        ("deep-nesting", "tiny", "layer { " * 3000, "a/output"),
        ("negative-uint", "tiny", t.replace("kernel_size: 3 pad: 1 stride: 1", "kernel_size: -3 pad: 1 stride: 1"), "a/output"),
        ("nan-param", "tiny", t.replace("alpha: 0.0001", "alpha: nan"), "a/output"),
        ("inf-param", "tiny", t.replace("beta: 0.75", "beta: inf"), "a/output"),
    ]
    return cases


# ---------------------------------------------------------------- caffemodel mutations


def caffemodel_mutations(raw: bytes, pb: Any) -> List[Tuple[str, bytes, bool]]:
    """(id, file bytes, valid): a tiny net's caffemodel damaged (or re-encoded validly) in every way we know.

    ``pb`` is caffe_pb2. Valid variants (legacy 4-D shapes, V1 layers,
    unpacked floats, double data) must dream exactly like the original.
    """
    def edit(fn: Callable[[Any], None]) -> bytes:
        m = pb.NetParameter()
        m.ParseFromString(raw)
        fn(m)
        return m.SerializeToString()

    def layer(m: Any, name: str) -> Any:
        return next(lay for lay in m.layer if lay.name == name)

    def fewer_values(m: Any) -> None:
        del layer(m, "conv1").blobs[0].data[-1]

    def extra_blob(m: Any) -> None:
        layer(m, "conv1").blobs.add().CopyFrom(layer(m, "conv1").blobs[1])

    def missing_blob(m: Any) -> None:
        del layer(m, "conv1").blobs[1]

    def gate_layer(m: Any) -> None:
        g = m.layer.add()
        g.name, g.type = "deepdream/input_gate", "Bias"
        b = g.blobs.add()
        b.shape.dim.append(3)
        b.data.extend([50.0, 50.0, 50.0])

    def poison(value: float) -> Callable[[Any], None]:
        def fn(m: Any) -> None:
            layer(m, "a/3x3").blobs[0].data[7] = value
        return fn

    def wrong_shape(m: Any) -> None:
        b = layer(m, "conv1").blobs[0]
        b.shape.dim[0], b.shape.dim[1] = b.shape.dim[1], b.shape.dim[0]  # 8x3x3x3 -> 3x8x3x3: same count

    def wrong_shape_count(m: Any) -> None:
        b = layer(m, "a/3x3").blobs[0]
        b.shape.dim[0] += 1

    def legacy_shapes(m: Any) -> None:
        for lay in m.layer:
            for b in lay.blobs:
                dims = [1] * (4 - len(b.shape.dim)) + list(b.shape.dim)
                b.ClearField("shape")
                b.num, b.channels, b.height, b.width = dims

    def legacy_mismatch(m: Any) -> None:
        b = layer(m, "conv1").blobs[1]
        b.ClearField("shape")
        b.num, b.channels, b.height, b.width = 8, 1, 1, 1

    def diff_wrong(m: Any) -> None:
        layer(m, "conv1").blobs[1].diff.extend([0.0, 0.0])

    def diff_right(m: Any) -> None:
        b = layer(m, "conv1").blobs[1]
        b.diff.extend([0.0] * len(b.data))

    def double_data(m: Any) -> None:
        b = layer(m, "a/3x3").blobs[0]
        b.double_data.extend(list(b.data))
        b.ClearField("data")

    def double_overflow(m: Any) -> None:
        b = layer(m, "a/3x3").blobs[0]
        vals = list(b.data)
        vals[0] = 1e300
        b.double_data.extend(vals)
        b.ClearField("data")

    def both_data(m: Any) -> None:
        b = layer(m, "fc").blobs[0]
        b.double_data.extend(list(b.data))

    def blobs_on_relu(m: Any) -> None:
        r = m.layer.add()
        r.name, r.type = "relu1", "ReLU"
        r.blobs.add().CopyFrom(layer(m, "conv1").blobs[1])

    def duplicate_layer(m: Any) -> None:
        m.layer.add().CopyFrom(layer(m, "conv1"))

    def rename_all(m: Any) -> None:
        for lay in m.layer:
            lay.name = "x_" + lay.name

    def v1(m: Any) -> None:
        old = list(m.layer)
        del m.layer[:]
        for lay in old:
            if lay.blobs:
                v = m.layers.add()
                v.name = lay.name
                for b in lay.blobs:
                    v.blobs.add().CopyFrom(b)

    def v1_and_new(m: Any) -> None:
        v = m.layers.add()
        v.name = "conv1"
        v.blobs.add().CopyFrom(layer(m, "conv1").blobs[0])

    cases: List[Tuple[str, bytes, bool]] = [
        ("fewer-values", edit(fewer_values), False),
        ("extra-blob", edit(extra_blob), False),
        ("missing-blob", edit(missing_blob), False),
        ("gate-named-layer", edit(gate_layer), False),
        ("nan-weight", edit(poison(math.nan)), False),
        ("inf-weight", edit(poison(INF)), False),
        ("minus-inf-weight", edit(poison(-INF)), False),
        ("permuted-shape", edit(wrong_shape), False),
        ("wrong-shape-count", edit(wrong_shape_count), False),
        ("legacy-shape-mismatch", edit(legacy_mismatch), False),
        ("diff-wrong-count", edit(diff_wrong), False),
        ("double-overflows-float", edit(double_overflow), False),
        ("float-and-double-data", edit(both_data), False),
        ("blobs-for-relu", edit(blobs_on_relu), False),
        ("no-matching-names", edit(rename_all), False),
        ("v1-and-new-layers", edit(v1_and_new), False),
        ("empty", b"", False),
        ("garbage", bytes(range(256)) * 4, False),
        ("text-prototxt", b'name: "x"\nlayer { name: "c" type: "Convolution" }\n', False),
        ("group-wire-type", b"\x0b\x0c" + raw[:50], False),
        ("overlong-varint", b"\xa2\x06" + b"\xff" * 11, False),
        # valid re-encodings: must load and dream exactly like the original
        ("legacy-4d-shapes", edit(legacy_shapes), True),
        ("diff-right-count", edit(diff_right), True),
        ("double-data", edit(double_data), True),
        ("duplicate-layer", edit(duplicate_layer), True),
        ("v1-layers", edit(v1), True),
        ("unpacked-floats", _unpack_first_blob(raw, pb), True),
    ]
    for frac in (0.001, 0.1, 0.33, 0.5, 0.77, 0.999):
        cut = max(1, int(len(raw) * frac))
        cases.append((f"cut-at-{frac}", raw[:cut], False))
    cases.append(("one-byte-short", raw[:-1], False))
    return cases


def _unpack_first_blob(raw: bytes, pb: Any) -> bytes:
    """The same model with conv1's weights written as unpacked floats (legal protobuf, rarely seen)."""

    m = pb.NetParameter()
    m.ParseFromString(raw)
    conv = next(lay for lay in m.layer if lay.name == "conv1")
    values = list(conv.blobs[0].data)
    conv.blobs[0].ClearField("data")
    blob = conv.blobs[0].SerializeToString() + b"".join(b"\x2d" + struct.pack("<f", v) for v in values)
    # rebuild conv1: its other fields, then the hand-made blob in place of the first one
    first = pb.BlobProto()
    first.ParseFromString(blob)  # check it parses
    rest = [b.SerializeToString() for b in conv.blobs[1:]]
    del conv.blobs[:]
    body = conv.SerializeToString()
    for b in [blob] + rest:
        body += b"\x3a" + varint(len(b)) + b
    layers = []
    for lay in m.layer:
        layers.append(body if lay.name == "conv1" else lay.SerializeToString())
    del m.layer[:]
    out = m.SerializeToString()
    for lb in layers:
        out += b"\xa2\x06" + varint(len(lb)) + lb
    return out
