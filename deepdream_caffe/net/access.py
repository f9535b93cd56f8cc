"""Reaching into a pycaffe net: the raw net, its input blob, a layer's output blob."""
from __future__ import annotations

import difflib
import threading
from typing import Any, List, Optional, Sequence

import numpy as np

from ..errors import DeepDreamError


def raw_net(net: Any) -> Any:
    """The pycaffe ``Net`` behind ``net`` (a :class:`DreamNet` or a ``caffe.Net``/``Classifier``)."""
    return getattr(net, "net", net)


_LOCKS_MADE = threading.Lock()


def net_lock(net: Any) -> threading.RLock:
    """The lock of the pycaffe net behind ``net``: whoever writes its input blob and reads what the net
    made of it holds it, since a Caffe net is one set of blobs (two threads would dream on each other's).
    Reentrant: a dream holds it around an octave, its steps take it again."""
    cnet = raw_net(net)
    lock = getattr(cnet, "_dream_lock", None)
    if lock is None:
        with _LOCKS_MADE:
            lock = getattr(cnet, "_dream_lock", None)
            if lock is None:
                lock = threading.RLock()
                cnet._dream_lock = lock
    return lock


def input_blob(cnet: Any) -> Any:
    """The net's image input blob (its first input)."""
    return cnet.blobs[cnet.inputs[0]]


def reserve_input(cnet: Any, h: int, w: int) -> None:
    """Size every blob for an ``h`` x ``w`` input now.

    Caffe grows a blob's memory but never shrinks it, so the smaller
    octaves that run first then reuse memory sized for the largest, instead
    of each octave allocating (and page-faulting) its own and dropping the
    last one's. Values are unaffected.
    """
    src = input_blob(cnet)
    src.reshape(1, src.shape[1], h, w)
    cnet.reshape()


def layer_names(cnet: Any) -> List[str]:
    return list(cnet._layer_names)


def check_layer(cnet: Any, end: str) -> None:
    """Raise a one-line DeepDreamError unless ``end`` names a layer past the input that has an output."""
    names = layer_names(cnet)
    if end in names:
        if not cnet.top_names.get(end):
            raise DeepDreamError(f"layer '{end}' has no output blob to dream on")
        if end in cnet.inputs or cnet.top_names[end][0] in cnet.inputs:
            raise DeepDreamError(f"layer '{end}' is the net's input; pick a layer after it")
        return
    producers = [layer for layer, tops in cnet.top_names.items() if end in tops]
    if producers:
        raise DeepDreamError(
            f"'{end}' is a blob, not a layer; layer names are what forward(end=) takes, "
            f"e.g. '{producers[0]}'"
        )
    close = difflib.get_close_matches(end, names, n=5, cutoff=0.5)
    if close:
        hint = f"; close names: {', '.join(close)}"
    else:
        own = _own_layers(cnet)
        shown = own[:6]
        hint = f"; this net's layers: {', '.join(shown)}{', ...' if len(own) > len(shown) else ''} ({len(own)} in all)"
    raise DeepDreamError(f"unknown layer '{end}'{hint}")


def _own_layers(cnet: Any) -> List[str]:
    """Layer names a user could dream on: not the input, nor the Split layers Caffe inserts, nor our gate."""
    types = [getattr(layer, "type", "") for layer in getattr(cnet, "layers", [])]
    out = []
    for i, name in enumerate(layer_names(cnet)):
        kind = types[i] if i < len(types) else ""
        if kind == "Input" or (kind == "Split" and name.endswith("_split")) or name.startswith("deepdream/"):
            continue
        out.append(name)
    return out


def resolve_end(net: Any, end: Optional[str], default: str) -> str:
    """``end``, or when None the layer ``load_net(end=...)`` cut the net after, else ``default``; checked.

    ``net`` is a DreamNet or a pycaffe net.
    """
    cut = getattr(net, "end", None)
    name = end if end is not None else (cut or default)
    cnet = raw_net(net)
    if cut and name != cut and name not in layer_names(cnet):
        raise DeepDreamError(
            f"layer '{name}' is not in this net: it was cut after '{cut}' (load_net(end=...)); "
            f"dream on '{cut}' or a layer before it, or load the net again with end='{name}'"
        )
    check_layer(cnet, name)
    return name


def end_blob(cnet: Any, end: str) -> Any:
    """The blob that layer ``end`` writes (its first top), as the notebook's ``net.blobs[end]``."""
    try:
        tops = cnet.top_names[end]
    except KeyError:
        check_layer(cnet, end)
        raise
    return cnet.blobs[tops[0]]


def check_backward_reaches(net: Any, layers: Sequence[str]) -> None:
    """Raise a one-line DeepDreamError if a layer would get no backward pass in ``net``.

    A net built by the surgery (``load_net(fast=True)``) runs backward only
    for the layers it was loaded for and those below them; an objective on
    any other layer would silently lose that term's gradient.
    """
    reach = getattr(net, "backward_layers", None)
    if reach is None:
        return
    for layer in layers:
        if layer not in reach:
            loaded = ", ".join(getattr(net, "layers", ()) or ())
            raise DeepDreamError(
                f"layer '{layer}' gets no gradient in this net (loaded with fast=True for {loaded}); "
                "load it with end= naming every layer of the objective"
            )


_FLT_MAX = float(np.finfo(np.float32).max)


def check_pool_windows(cnet: Any, deepest: int) -> None:
    """Raise a one-line DeepDreamError if a pooling layer up to index ``deepest`` found no number in a window.

    Caffe's max pooling starts each window at -FLT_MAX with the index -1 and
    keeps both unless a value is larger, which NaN (and -inf) never is; its
    backward pass then adds to element -1, outside the buffer, corrupting
    the heap. NaN can come from a net's own parameters (an LRN with a
    negative alpha, say) however clean the image and the weights are. An
    output of exactly -FLT_MAX marks such a window, so this runs between the
    forward and the backward pass. It reads only the pooling outputs.
    """
    for i, layer in enumerate(cnet.layers[: deepest + 1]):
        if layer.type != "Pooling":
            continue
        name = cnet._layer_names[i]
        top = cnet.blobs[cnet.top_names[name][0]].data
        if top.size and float(top.min()) == -_FLT_MAX:
            raise DeepDreamError(
                f"layer '{name}' (Pooling) found only NaN or -inf in a window (the net's parameters or weights "
                "make non-finite values); stopped before Caffe's backward pass, which would write outside its buffer"
            )
