"""The objective's gradient at the input: forward and backward in segments, one layer at a time.

For an objective on layers L1 < ... < Lk (in the net's order) the net runs
forward to L1, where the terms on L1 see its output as the forward pass
left it (before any in-place layer after it changes the blob) and their
gradient is put aside; then on to L2, and so on to Lk, whose gradient
becomes Lk's diff. Backward then runs from Lk down to just after L(k-1),
L(k-1)'s put-aside gradient is added to the diff that arrived there, and
so on down to the input. This is pycaffe's ``forward(start=, end=)`` /
``backward(start=, end=)``; for one layer it is exactly the notebook's
``forward(end=)``, objective, ``backward(start=)``.

Each non-deepest layer's diff is cleared after its gradient is put aside:
what reaches it on the way back must come only from the layers above, and
Caffe's layers overwrite the diffs they write, so a diff nothing above
writes (an in-place ReLU whose output feeds no later objective layer, say)
would otherwise carry an old value into the backward pass.

With several layers, the diffs of blobs that only layers past the deepest
objective layer read are cleared before each pass too: their backward never
runs, so their share of a Split's sum must be 0, yet a whole net used
before for a deeper layer holds old values there. With one layer they are
left alone, as the notebook left them: its own order (4c, then
3b/5x5_reduce on one net) carries those stale gradients, and a reused
whole net reproduces that bit for bit (README, "Notebooks"). On a fresh
net, or one cut after the deepest layer, there is nothing to clear.

Terms on the input (priors) are added to the input's gradient afterwards.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Protocol, Tuple

import numpy as np

from ..errors import DeepDreamError
from ..net.access import check_backward_reaches, check_layer, check_pool_windows, end_blob, input_blob, raw_net
from .objectives import INPUT, Objective

Values = Optional[List[Optional[float]]]


def layer_order(cnet: Any, layers: Tuple[str, ...]) -> List[Tuple[int, str]]:
    """(index in the net, name) of ``layers``, shallowest first."""
    names = list(cnet._layer_names)
    return sorted((names.index(layer), layer) for layer in layers)


def forward_segments(cnet: Any, layers: Tuple[str, ...], visit: Callable[[int, str, Any], None]) -> List[Tuple[int, str]]:
    """Run the net forward to the deepest of ``layers``, calling ``visit(k, layer, blob)`` as it reaches each.

    ``k`` counts the layers from the shallowest; ``blob`` is the layer's
    output blob at that moment. Returns :func:`layer_order`'s list.
    """
    order = layer_order(cnet, layers)
    names = list(cnet._layer_names)
    start = None
    for k, (i, layer) in enumerate(order):
        cnet.forward(start=start, end=layer)
        visit(k, layer, end_blob(cnet, layer))
        if i + 1 < len(names):
            start = names[i + 1]
    return order


def frontier_blobs(cnet: Any, deepest: int) -> List[str]:
    """Blobs made by layers up to index ``deepest`` and read by a layer after it."""
    names = list(cnet._layer_names)
    made = {b for name in names[: deepest + 1] for b in cnet.top_names[name]}
    return sorted({b for name in names[deepest + 1:] for b in cnet.bottom_names[name] if b in made})


def net_gradient(cnet: Any, objective: Objective, values: Values = None) -> np.ndarray:
    """The gradient of the objective's net terms at the input blob (its diff, 1xCxHxW: the blob's memory).

    ``values[i]`` receives term i's unweighted value when ``values`` is a list.
    """
    layers = objective.layers
    src = input_blob(cnet)
    if not layers:
        src.diff[...] = 0
        return src.diff
    order = layer_order(cnet, layers)
    if len(order) > 1:
        for blob in frontier_blobs(cnet, order[-1][0]):
            cnet.blobs[blob].diff[...] = 0
    # With one layer the loops below are the notebook's forward(end=), objective, backward(start=).
    aside: Dict[str, np.ndarray] = {}

    def at_layer(k: int, layer: str, blob: Any) -> None:
        objective.write_diff(layer, blob, values)
        if k < len(layers) - 1:
            aside[layer] = blob.diff.copy()
            blob.diff[...] = 0

    forward_segments(cnet, layers, at_layer)
    check_pool_windows(cnet, order[-1][0])  # a window of NaN would make the backward pass overrun a buffer
    names = list(cnet._layer_names)
    for k in range(len(order) - 1, -1, -1):
        layer = order[k][1]
        if layer in aside:
            end_blob(cnet, layer).diff[...] += aside[layer]
        stop = names[order[k - 1][0] + 1] if k > 0 else None
        cnet.backward(start=layer, end=stop)
    return src.diff


def add_input_terms(objective: Objective, x: np.ndarray, g: np.ndarray, values: Values = None) -> np.ndarray:
    """``g`` plus the weighted gradients of the terms on the input at ``x`` (both CxHxW).

    Returns ``g`` itself when there are none, else a new float64 array.
    """
    terms = objective.at(INPUT)
    if not terms:
        return g
    out = g.astype(np.float64)
    for i, w, t in terms:
        v, gt = t.value_and_grad(x)
        out += w * np.asarray(gt, dtype=np.float64)  # a float32 x stays float32 in w * x
        if values is not None:
            values[i] = v
    return out


def objective_gradient(net: Any, objective: Objective, values: Values = None,
                       x: Optional[np.ndarray] = None) -> np.ndarray:
    """The gradient of ``objective`` at the net's current input, CxHxW.

    Terms on the input see ``x`` (the float64 point L-BFGS is at, say) or,
    by default, the input blob's data. Without input terms this is the
    input blob's diff (its memory: copy it to keep it); with them, a new
    float64 array.
    """
    cnet = raw_net(net)
    g = net_gradient(cnet, objective, values)[0]
    return add_input_terms(objective, input_blob(cnet).data[0] if x is None else x, g, values)


def forward_snapshots(net: Any, layers: Tuple[str, ...]) -> Dict[str, np.ndarray]:
    """Copies of each layer's output (1xCx...) where the forward pass reaches it, for the current input."""
    out: Dict[str, np.ndarray] = {}
    forward_segments(raw_net(net), tuple(layers), lambda _k, layer, blob: out.__setitem__(layer, blob.data.copy()))
    return out


def bind_start(net: Any, objective: Objective, x0: np.ndarray) -> Objective:
    """``objective`` with its start-dependent terms fixed at input ``x0`` (CxHxW); the blob is resized to x0."""
    layers = objective.needs_start()
    if not layers:
        return objective
    src = input_blob(raw_net(net))
    src.reshape(1, *x0.shape)
    src.data[0] = x0
    return objective.bind(forward_snapshots(net, layers))


def check_objective(net: Any, objective: Objective) -> None:
    """Raise a one-line DeepDreamError unless every layer of ``objective`` exists, gets a gradient
    in this net, and fits its terms (channel indices, guide features)."""
    cnet = raw_net(net)
    for layer in objective.layers:
        check_layer(cnet, layer)
    check_backward_reaches(net, objective.layers)
    for _, t in objective.terms:
        if t.layer != INPUT:
            t.check(tuple(end_blob(cnet, t.layer).data.shape))
    if not objective.terms:
        raise DeepDreamError("the objective is empty")


class Gradient(Protocol):
    """Computes the objective's gradient at the input (CxHxW) for a step; may work in tiles."""

    def __call__(self, net: Any, objective: Objective, rng: Optional[np.random.RandomState] = None) -> np.ndarray: ...

    def runs_whole(self, h: int, w: int) -> bool:
        """Whether an ``h`` x ``w`` input goes through the net in one piece (so the net may be sized for it)."""
        ...


class WholeImage:
    """The gradient in one pass of the whole image through the net, as the notebook computed it."""

    def __call__(self, net: Any, objective: Objective, rng: Optional[np.random.RandomState] = None) -> np.ndarray:
        return objective_gradient(net, objective)

    def runs_whole(self, h: int, w: int) -> bool:
        return True


WHOLE_IMAGE = WholeImage()
