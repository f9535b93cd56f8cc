"""Features of a guide image at the objective's layers, for the guided objective."""
from __future__ import annotations

from typing import Any, Dict, Optional, Sequence

import numpy as np

from ..io.image import as_image_array
from ..net.access import input_blob, net_lock, raw_net, resolve_end
from .arguments import check_arguments
from .defaults import DEFAULT_LAYER
from .gradient import forward_snapshots
from .params import Octaves
from .sizing import check_octaves_fit
from .transform import preprocess


def guide_features_at(net: Any, guide_img: np.ndarray, layers: Sequence[str]) -> Dict[str, np.ndarray]:
    """Run ``guide_img`` (HxWx3 RGB) forward once and return each layer's activations (CxHxW copies),
    read where the forward pass reaches the layer.

    ``guide_img`` is taken as :func:`~deepdream_caffe.dream.ascent.deepdream` takes its image."""
    guide_img = as_image_array(guide_img, "guide_img")
    for layer in layers:
        check_octaves_fit(net, layer, guide_img.shape[0], guide_img.shape[1], 1, Octaves.octave_scale)  # one octave
    src = input_blob(raw_net(net))
    h, w = guide_img.shape[:2]
    with net_lock(net):
        src.reshape(1, 3, h, w)
        src.data[0] = preprocess(net, guide_img)
        return {layer: a[0] for layer, a in forward_snapshots(net, tuple(layers)).items()}


def guide_features(net: Any, guide_img: np.ndarray, end: Optional[str] = None) -> np.ndarray:
    """Run ``guide_img`` (HxWx3 RGB) forward to ``end`` and return a copy of its activations (CxHxW).

    ``end=None``: the layer ``load_net(end=...)`` cut the net after, else the notebook's.
    """
    check_arguments(net=net, guide_img=guide_img, end=end)
    end = resolve_end(net, end, DEFAULT_LAYER)
    return guide_features_at(net, guide_img, [end])[end]

