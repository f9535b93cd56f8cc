"""Reading and rewriting net definitions (NetParameter) without touching the user's file.

Everything Caffe would abort on (CHECK failures end the whole process) is
checked here first, so bad input becomes one clear error line.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Set

from .caffe_env import import_caffe
from ..errors import DeepDreamError
from ..io.files import read_regular


def caffe_pb2() -> Any:
    import_caffe()
    from caffe.proto import caffe_pb2 as pb  # noqa: PLC0415

    return pb


def read_prototxt(path: Path) -> Any:
    """Parse a text prototxt into a NetParameter; one-line error on a missing or bad file."""
    from google.protobuf import text_format  # noqa: PLC0415

    path = Path(path)
    try:
        text = read_regular(path, "prototxt").decode()  # a FIFO or device is refused, not waited on
    except UnicodeDecodeError as e:
        raise DeepDreamError(f"cannot read prototxt {path}: {e}") from None
    param = caffe_pb2().NetParameter()
    try:
        text_format.Merge(text, param)
    except text_format.ParseError as e:
        raise DeepDreamError(f"prototxt {path} does not parse: {e}") from None
    if param.layers:
        raise DeepDreamError(
            f"prototxt {path} uses the pre-2015 'layers' (V1) format; upgrade it with Caffe's "
            "upgrade_net_proto_text tool"
        )
    if not param.layer:
        raise DeepDreamError(f"prototxt {path} defines no layers")
    return param


def input_names(param: Any) -> List[str]:
    names = list(param.input)
    names += [top for layer in param.layer if layer.type == "Input" for top in layer.top]
    return names


def input_shape(param: Any) -> List[int]:
    """Declared shape of the first input (N, C, H, W)."""
    if param.input:
        if param.input_shape:
            return list(param.input_shape[0].dim)
        return list(param.input_dim[:4])
    for layer in param.layer:
        if layer.type == "Input":
            return list(layer.input_param.shape[0].dim)
    raise DeepDreamError("the prototxt declares no input (input: or an Input layer)")


def set_batch_one(param: Any) -> None:
    """Make the input batch 1 (deploy files often say 10): the dream uses one image."""
    if param.input:
        if param.input_shape:
            param.input_shape[0].dim[0] = 1
        elif param.input_dim:
            param.input_dim[0] = 1
        return
    for layer in param.layer:
        if layer.type == "Input":
            layer.input_param.shape[0].dim[0] = 1
            return


def check_structure(param: Any, path: Path) -> None:
    """Layer types known to this Caffe and every bottom produced before use."""
    caffe = import_caffe()
    known = set(caffe.layer_type_list())
    available = set(input_names(param))
    if not available:
        raise DeepDreamError(f"prototxt {path} declares no input (input: or an Input layer)")
    for layer in param.layer:
        if layer.type not in known:
            raise DeepDreamError(f"prototxt {path}: layer '{layer.name}' has type '{layer.type}' unknown to this Caffe")
        for bottom in layer.bottom:
            if bottom not in available:
                raise DeepDreamError(f"prototxt {path}: layer '{layer.name}' reads blob '{bottom}' that no earlier layer makes")
        if layer.propagate_down and len(layer.propagate_down) != len(layer.bottom):
            raise DeepDreamError(f"prototxt {path}: layer '{layer.name}' has a propagate_down per bottom missing")
        available.update(layer.top)


def layer_index(param: Any, name: str) -> Optional[int]:
    for i, layer in enumerate(param.layer):
        if layer.name == name:
            return i
    return None


def deepest_layer(param: Any, layers: Sequence[str]) -> str:
    """The one of ``layers`` that comes last in the net (a forward pass to it passes the others)."""
    known = [(layer_index(param, name), name) for name in layers]
    missing = [name for i, name in known if i is None]
    if missing:
        raise DeepDreamError(f"unknown layer '{missing[0]}'")
    return max(known)[1]


def loss_layers(param: Any) -> Set[str]:
    """The layers Caffe runs backward for in a net without ``force_backward``: those with a loss
    weight on a top, and every layer whose output feeds one of them (Caffe's rule, by blob name)."""
    under: Set[str] = set()
    out: Set[str] = set()
    for layer in reversed(param.layer):
        weighted = any(w != 0 for w in layer.loss_weight) or (
            not layer.loss_weight and layer.type.endswith("Loss"))
        if weighted or any(t in under for t in layer.top):
            out.add(layer.name)
            under.update(layer.bottom)
    return out


def truncate_after(param: Any, end: str) -> None:
    """Drop every layer after ``end``: forward(end=) never runs them, they only cost memory."""
    i = layer_index(param, end)
    if i is None:
        return
    del param.layer[i + 1 :]


def patched_copy(param: Any, *, force_backward: bool = True, end: Optional[str] = None) -> Any:
    """A copy with batch 1, ``force_backward`` and optionally nothing past ``end``."""
    out = caffe_pb2().NetParameter()
    out.CopyFrom(param)
    out.force_backward = force_backward
    set_batch_one(out)
    if end is not None:
        truncate_after(out, end)
    return out


# Number of learnable blobs of the layer types that have them (for lr_mult surgery).
def param_blob_count(layer: Any) -> Optional[int]:
    t = layer.type
    if t in ("Convolution", "Deconvolution"):
        return 1 + int(layer.convolution_param.bias_term)
    if t == "InnerProduct":
        return 1 + int(layer.inner_product_param.bias_term)
    if t == "Scale":
        return 1 + int(layer.scale_param.bias_term)
    if t == "Embed":
        return 1 + int(layer.embed_param.bias_term)
    if t in ("Bias", "PReLU"):
        return 1
    if t == "BatchNorm":
        return 3
    if t in _NO_PARAMS:
        return 0
    return None


_NO_PARAMS = {
    "Input", "ReLU", "LRN", "Pooling", "Concat", "Dropout", "Softmax", "Split", "Eltwise",
    "Flatten", "Reshape", "Sigmoid", "TanH", "Power", "AbsVal", "BNLL", "ELU", "Exp", "Log",
    "Slice", "Crop", "MVN", "Threshold", "Silence", "ArgMax", "Tile", "Reduction",
}


def param_shapes_from_weights(weights_param: Any) -> Dict[str, List[List[int]]]:
    """Layer name -> shapes of its stored blobs, for new- and V1-format caffemodels."""
    out: Dict[str, List[List[int]]] = {}
    for layer in list(weights_param.layer) + list(weights_param.layers):
        shapes = []
        for b in layer.blobs:
            if b.HasField("shape"):
                shapes.append(list(b.shape.dim))
            else:
                shapes.append([b.num, b.channels, b.height, b.width])
        out[layer.name] = shapes
    return out
