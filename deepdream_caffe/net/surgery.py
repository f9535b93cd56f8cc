"""Net surgery that gives the same input gradient without computing weight gradients.

``force_backward: true`` (the notebook's switch) makes Caffe compute every
weight gradient on each backward pass, which dreaming throws away. Instead:
every learnable blob gets ``lr_mult: 0`` (so no weight gradients), a Bias
layer with one learnable all-zero blob sits between the input and the rest
of the net (so Caffe decides the whole net needs backward), its bottom has
``propagate_down: true`` (so the input blob receives its diff), and the end
layer's top carries a loss weight (so Caffe sees every layer below it as
contributing to a loss). x + 0 == x and the Bias backward is a copy, so
the input gradient is the same bits as with force_backward.
"""
from __future__ import annotations

from typing import Any

from ..errors import DeepDreamError
from .prototxt import input_names, layer_index, param_blob_count, patched_copy

GATE_LAYER = "deepdream/input_gate"


def dream_surgery(param: Any, end: str) -> Any:
    """A copy of ``param`` cut after ``end`` and rewired as described above."""
    out = patched_copy(param, force_backward=False, end=end)
    end_i = layer_index(out, end)
    if end_i is None:
        raise DeepDreamError(f"unknown layer '{end}'")
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

    end_layer = out.layer[layer_index(out, end)]
    del end_layer.loss_weight[:]
    end_layer.loss_weight.extend([1.0] * len(end_layer.top))
    return out
