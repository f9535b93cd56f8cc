"""Net surgery that gives the same input gradient without computing weight gradients.

``force_backward: true`` (the notebook's switch) makes Caffe compute every
weight gradient on each backward pass, which dreaming throws away. Instead:
every learnable blob gets ``lr_mult: 0`` (so no weight gradients), a Bias
layer with one learnable all-zero blob sits between the input and the rest
of the net (so Caffe decides the whole net needs backward), its bottom has
``propagate_down: true`` (so the input blob receives its diff), and the
deepest objective layer's top carries a loss weight (so Caffe sees every
layer below it as contributing to a loss). x + 0 == x and the Bias backward
is a copy, so the input gradient is the same bits as with force_backward.

With several objective layers, one that does not feed the deepest would
get no backward pass. A loss weight on its own top cannot help: Caffe then
splits the blob to give the loss its own copy, which breaks an in-place
ReLU after it ("produced by multiple sources") and whose backward adds the
constant loss weight to the gradient. Instead such a layer gets a sink: a
``Reduction`` (SUM, coeff 0) reading its blob after the last in-place layer
on it, with the loss weight on the sink's scalar top. Its backward writes
0 * top_diff = 0, so it changes no gradient, and Caffe now runs backward
for the layer and all below it.
"""
from __future__ import annotations

from typing import Any, Dict, Optional, Sequence, Union

from ..errors import DeepDreamError
from .prototxt import deepest_layer, input_names, layer_index, loss_layers, patched_copy

RESERVED_PREFIX = "deepdream/"
GATE_LAYER = RESERVED_PREFIX + "input_gate"
SINK_PREFIX = RESERVED_PREFIX + "sink/"
GATE_SUFFIX = "/deepdream_gate"


def reserved_name_problem(param: Any) -> Optional[str]:
    """Why ``param`` clashes with the layers and blobs this surgery adds (or None).

    A layer of the user's called like the gate would also receive the gate's
    weights from a caffemodel, and a blob called like one of ours would be
    written twice (a fatal error in Caffe).
    """
    for layer in param.layer:
        if layer.name.startswith(RESERVED_PREFIX):
            return f"layer name '{layer.name}': names starting with '{RESERVED_PREFIX}' are reserved for the layers this tool inserts"
        for blob in list(layer.top) + list(layer.bottom):
            if blob.endswith(GATE_SUFFIX) or blob.startswith(RESERVED_PREFIX):
                return f"blob name '{blob}' is reserved for this tool's own blobs"
    return None


def dream_surgery(param: Any, end: Union[str, Sequence[str]], param_counts: Dict[str, int]) -> Any:
    """A copy of ``param`` cut after the deepest of ``end`` (one layer or several) and rewired as above.

    ``param_counts``: layer name -> the number of learnable blobs Caffe
    gives it (as many param specs go in; more is a fatal error in Caffe).
    """
    ends = [end] if isinstance(end, str) else list(end)
    out = patched_copy(param, force_backward=False, end=deepest_layer(param, ends))
    problem = reserved_name_problem(out)
    if problem:
        raise DeepDreamError(problem)
    src = input_names(out)[0]
    gate_top = src + GATE_SUFFIX

    for layer in out.layer:
        n = param_counts.get(layer.name)
        if n:
            del layer.param[:]
            for _ in range(n):
                layer.param.add(lr_mult=0, decay_mult=0)
        if layer.type != "Input":
            for i, b in enumerate(layer.bottom):
                if b == src:
                    layer.bottom[i] = gate_top

    gate = out.layer.add()
    gate.name = GATE_LAYER
    gate.type = "Bias"
    gate.bottom.append(src)
    gate.top.append(gate_top)
    gate.propagate_down.append(True)
    gate.param.add(lr_mult=1, decay_mult=0)
    gate.bias_param.axis = 1
    gate.bias_param.num_axes = 1
    gate.bias_param.filler.type = "constant"
    gate.bias_param.filler.value = 0
    # Move it right after the Input layer (or first, for `input:` declarations).
    pos = next((i + 1 for i, layer in enumerate(out.layer) if layer.type == "Input"), 0)
    layers = list(out.layer)
    layers.insert(pos, layers.pop())
    del out.layer[:]
    out.layer.extend(layers)

    deepest = deepest_layer(out, ends)
    end_layer = out.layer[layer_index(out, deepest)]
    del end_layer.loss_weight[:]
    end_layer.loss_weight.extend([1.0] * len(end_layer.top))
    reached = loss_layers(out)
    for name in ends:
        if name not in reached:
            _add_sink(out, name)
    return out


def _add_sink(param: Any, name: str) -> None:
    """A zero-gradient loss on layer ``name``'s first top, read after the last layer that writes it."""
    i = layer_index(param, name)
    blob = param.layer[i].top[0]
    last = max(j for j, layer in enumerate(param.layer) if j >= i and blob in layer.top)
    sink = param.layer.add()
    sink.name = SINK_PREFIX + name
    sink.type = "Reduction"
    sink.bottom.append(blob)
    sink.top.append(SINK_PREFIX + name)
    sink.loss_weight.append(1.0)
    sink.reduction_param.operation = sink.reduction_param.SUM
    sink.reduction_param.axis = 0
    sink.reduction_param.coeff = 0.0
    layers = list(param.layer)
    layers.insert(last + 1, layers.pop())
    del param.layer[:]
    param.layer.extend(layers)
