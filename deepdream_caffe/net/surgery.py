"""Net surgery that gives the same input gradient without computing weight gradients.

``force_backward: true`` (the notebook's switch) makes Caffe compute every
weight gradient on each backward pass, which dreaming throws away. Instead:
every learnable blob gets ``lr_mult: 0`` (so no weight gradients), a Bias
layer with one learnable all-zero blob sits between the input and the rest
of the net (so Caffe decides the whole net needs backward), its bottom has
``propagate_down: true`` (so the input blob receives its diff), and each
objective layer's top carries a loss weight (so Caffe sees every layer below
them as contributing to a loss; a layer that feeds none of them gets no
backward pass, so every layer an objective reads must be named here). x + 0 == x and the Bias backward is a copy, so
the input gradient is the same bits as with force_backward.
"""
from __future__ import annotations

from typing import Any, Sequence, Union

from .prototxt import deepest_layer, input_names, layer_index, param_blob_count, patched_copy

GATE_LAYER = "deepdream/input_gate"


def dream_surgery(param: Any, end: Union[str, Sequence[str]]) -> Any:
    """A copy of ``param`` cut after the deepest of ``end`` (one layer or several) and rewired as above."""
    ends = [end] if isinstance(end, str) else list(end)
    out = patched_copy(param, force_backward=False, end=deepest_layer(param, ends))
    src = input_names(out)[0]
    gate_top = src + "/deepdream_gate"

    for layer in out.layer:
        n = param_blob_count(layer)
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

    for name in ends:
        end_layer = out.layer[layer_index(out, name)]
        del end_layer.loss_weight[:]
        end_layer.loss_weight.extend([1.0] * len(end_layer.top))
    return out
