"""``load_net`` by a zoo model's name or by files: the net module's loader, with the zoo in front.

Kept apart from :mod:`.netspec`, which the command line's parser reads:
loading a net needs numpy and Caffe, parsing must not.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Optional, Sequence, Union

import numpy as np

from ..dream.arguments import check_kinds, check_no_extra
from ..dream.params import is_number
from ..errors import DeepDreamError
from ..net import loading
from ..zoo import resolve_model
from .netspec import DEFAULT_CHANNEL_SWAP, DEFAULT_MEAN


def load_net(
    net: Union[str, os.PathLike],
    weights: Optional[os.PathLike] = None,
    *,
    mean: Optional[Sequence[float]] = None,
    channel_swap: Optional[Sequence[int]] = None,
    **kwargs: Any,
) -> loading.DreamNet:
    """The notebook's net, by a zoo model's name or by its files, ready for dreaming.

    ``load_net("bvlc_googlenet", end="inception_4c/output")`` fetches and
    verifies the model and takes its own mean and channel order, as
    ``caffe.Classifier`` is given them; ``load_net(prototxt, weights)`` loads
    your own files with the notebook's GoogLeNet mean and BGR order.
    ``mean`` and ``channel_swap`` override either; the other keywords are
    :func:`deepdream_caffe.net.loading.load_net`'s (``end``, ``fast``, ``gpu``...).
    """
    check_kinds(net=(net, os.PathLike, "a zoo model's name or a prototxt path"),
                weights=(weights, (os.PathLike, None), "a caffemodel path or None"),
                mean=(mean, (list, tuple, np.ndarray, None), "3 pixel values (B, G, R) or None"),
                channel_swap=(channel_swap, (list, tuple, None), "a permutation of 0, 1, 2 or None"),
                end=(kwargs.get("end"), (str, list, tuple, None), "a layer name, a list of them, or None"),
                gpu=(kwargs.get("gpu"), (int, None), "a GPU number or None"))
    check_no_extra("load_net", kwargs, _KEYWORDS)
    if mean is not None and not all(is_number(v) for v in mean):
        raise DeepDreamError(f"mean must be 3 pixel values (B, G, R), got {list(mean)!r:.60}")
    if channel_swap is not None and not all(is_number(v, int) for v in channel_swap):
        raise DeepDreamError(f"channel_swap must be a permutation of 0, 1, 2, got {list(channel_swap)!r:.60}")
    if not all(isinstance(e, str) for e in ((kwargs.get("end"),) if isinstance(kwargs.get("end"), str)
                                            else kwargs.get("end") or ())):
        raise DeepDreamError(f"end must name layers (strings), got {kwargs.get('end')!r:.60}")
    for flag in ("fast", "select", "allow_python_layers"):
        if flag in kwargs and not isinstance(kwargs[flag], (bool, np.bool_)):
            raise DeepDreamError(f"{flag} must be True or False, got {kwargs[flag]!r:.60}")
    if weights is None and _is_model_name(net):
        m = resolve_model(str(net), quiet=True)
        net, weights = m.prototxt, m.weights
        kwargs.setdefault("weights_sha1", m.weights_sha1)
        mean = m.mean if mean is None else mean
        channel_swap = m.channel_swap if channel_swap is None else channel_swap
    return loading.load_net(net, weights, mean=DEFAULT_MEAN if mean is None else mean,
                            channel_swap=DEFAULT_CHANNEL_SWAP if channel_swap is None else channel_swap, **kwargs)


_KEYWORDS = ("end", "fast", "gpu", "select", "weights_sha1", "allow_python_layers")  # loading.load_net's


def _is_model_name(net: Union[str, os.PathLike]) -> bool:
    """A bare name such as ``open_nsfw``, not a path to a prototxt."""
    return isinstance(net, str) and os.sep not in net and not net.endswith(".prototxt") and not Path(net).exists()
