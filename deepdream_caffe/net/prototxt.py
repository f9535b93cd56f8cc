"""Reading and rewriting net definitions (NetParameter) without touching the user's file.

Whether Caffe would build the result is Caffe's to say (see :mod:`referee`).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, List, Optional, Sequence, Set

from google.protobuf import text_format

from ..errors import DeepDreamError
from ..io.files import MAX_PROTOTXT_BYTES, read_regular
from .caffe_env import import_caffe


def caffe_pb2() -> Any:
    import_caffe()
    from caffe.proto import caffe_pb2 as pb  # noqa: PLC0415

    return pb


def read_prototxt(path: Path) -> Any:
    """Parse a text prototxt into a NetParameter, keeping the layers of Caffe's TEST net.

    One-line error on a missing or bad file. Layers whose include/exclude
    rules leave them out of a TEST net are dropped here, as ``Net::Init``
    drops them, so every later check sees the net Caffe would build.
    """
    path = Path(path)
    try:
        text = read_regular(path, "prototxt", MAX_PROTOTXT_BYTES).decode()  # a FIFO is refused, not waited on
    except UnicodeDecodeError as e:
        raise DeepDreamError(f"cannot read prototxt {path}: {e}") from None
    param = caffe_pb2().NetParameter()
    try:
        text_format.Merge(text, param)
    except (text_format.ParseError, ValueError, RecursionError) as e:
        raise DeepDreamError(f"prototxt {path} does not parse: {str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
    if param.layers:
        raise DeepDreamError(
            f"prototxt {path} uses the pre-2015 'layers' (V1) format; upgrade it with Caffe's "
            "upgrade_net_proto_text tool"
        )
    # Caffe's UpgradeNetInput reads input_shape(i), or input_dim(4i) to input_dim(4i+3), for every `input:`
    # without a bounds check: fewer of them make it read past the list (garbage sizes, or a crash).
    n = len(param.input)
    if (param.input_shape and len(param.input_shape) < n) or (param.input_dim and len(param.input_dim) < 4 * n):
        given = f"{len(param.input_shape)} input_shape" if param.input_shape else f"{len(param.input_dim)} input_dim"
        raise DeepDreamError(f"prototxt {path}: {n} input: names need one input_shape (or 4 input_dim values) "
                             f"each; it gives {given}")
    keep_test_phase(param)
    if not param.layer and not param.input:
        raise DeepDreamError(f"prototxt {path} defines no layers")
    return param


def _meets(rule: Any, level: int, stages: List[str]) -> bool:
    """Net::StateMeetsRule for the TEST phase."""
    if rule.HasField("phase") and rule.phase != caffe_pb2().TEST:
        return False
    if rule.HasField("min_level") and level < rule.min_level:
        return False
    if rule.HasField("max_level") and level > rule.max_level:
        return False
    if any(st not in stages for st in rule.stage):
        return False
    return not any(st in stages for st in rule.not_stage)


def keep_test_phase(param: Any) -> None:
    """Drop the layers Net::FilterNet leaves out of a TEST net (pycaffe sets level 0, keeps the file's stages)."""
    stages = list(param.state.stage)
    kept = []
    for layer in param.layer:
        if layer.include:
            ok = any(_meets(r, 0, stages) for r in layer.include)
        else:
            ok = not any(_meets(r, 0, stages) for r in layer.exclude)
        if ok:
            kept.append(layer)
    if len(kept) != len(param.layer):
        del param.layer[:]
        param.layer.extend(kept)


def input_names(param: Any) -> List[str]:
    names = list(param.input)
    names += [top for layer in param.layer if layer.type == "Input" for top in layer.top]
    return names


def input_shape(param: Any) -> List[int]:
    """Declared shape of the first input (N, C, H, W, or whatever it declares)."""
    if param.input:
        if param.input_shape:
            return list(param.input_shape[0].dim)
        return list(param.input_dim[:4])
    for layer in param.layer:
        if layer.type == "Input" and layer.input_param.shape:
            return list(layer.input_param.shape[0].dim)
    raise DeepDreamError("the prototxt declares no input (input: or an Input layer)")


def set_batch_one(param: Any) -> None:
    """Make the input batch 1 (deploy files often say 10): the dream uses one image."""
    if param.input:
        if param.input_shape:
            if param.input_shape[0].dim:
                param.input_shape[0].dim[0] = 1
        elif param.input_dim:
            param.input_dim[0] = 1
        return
    for layer in param.layer:
        if layer.type == "Input":
            if layer.input_param.shape and layer.input_param.shape[0].dim:
                layer.input_param.shape[0].dim[0] = 1
            return


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
    """A copy with batch 1, ``force_backward``, Caffe's own engines and optionally nothing past ``end``."""
    out = caffe_pb2().NetParameter()
    out.CopyFrom(param)
    out.force_backward = force_backward
    set_batch_one(out)
    if end is not None:
        truncate_after(out, end)
    default_engines(out)
    return out


_ENGINE_PARAMS = ("convolution_param", "pooling_param", "lrn_param", "relu_param", "sigmoid_param",
                  "softmax_param", "tanh_param")


def default_engines(param: Any) -> None:
    """Let Caffe pick each layer's engine: ``engine: CUDNN`` in a build without cuDNN is a fatal error.

    DEFAULT is cuDNN where the build has it and Caffe's own code otherwise,
    which compute the same layer.
    """
    for layer in param.layer:
        for name in _ENGINE_PARAMS:
            if layer.HasField(name):
                p = getattr(layer, name)
                if p.HasField("engine"):
                    p.ClearField("engine")
