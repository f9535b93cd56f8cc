"""``load_net`` by a zoo model's name or by files: the net module's loader, with the zoo in front.

Kept apart from :mod:`.netspec`, which the command line's parser reads:
loading a net needs numpy and Caffe, parsing must not.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Optional, Sequence, Union

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
    if weights is None and _is_model_name(net):
        m = resolve_model(str(net), quiet=True)
        net, weights = m.prototxt, m.weights
        kwargs.setdefault("weights_sha1", m.weights_sha1)
        mean = m.mean if mean is None else mean
        channel_swap = m.channel_swap if channel_swap is None else channel_swap
    return loading.load_net(net, weights, mean=DEFAULT_MEAN if mean is None else mean,
                            channel_swap=DEFAULT_CHANNEL_SWAP if channel_swap is None else channel_swap, **kwargs)


def _is_model_name(net: Union[str, os.PathLike]) -> bool:
    """A bare name such as ``open_nsfw``, not a path to a prototxt."""
    return isinstance(net, str) and os.sep not in net and not net.endswith(".prototxt") and not Path(net).exists()
