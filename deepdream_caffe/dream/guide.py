"""Features of a guide image at the objective's layers, for the guided objective."""
from __future__ import annotations

from typing import Any, Dict, Sequence

import numpy as np

from ..net.access import input_blob, raw_net
from .gradient import forward_snapshots
from .defaults import DEFAULT_LAYER
from .transform import preprocess


def guide_features_at(net: Any, guide_img: np.ndarray, layers: Sequence[str]) -> Dict[str, np.ndarray]:
    """Run ``guide_img`` (HxWx3 RGB) forward once and return each layer's activations (CxHxW copies),
    read where the forward pass reaches the layer."""
    src = input_blob(raw_net(net))
    h, w = guide_img.shape[:2]
    src.reshape(1, 3, h, w)
    src.data[0] = preprocess(net, guide_img)
    return {layer: a[0] for layer, a in forward_snapshots(net, tuple(layers)).items()}


def guide_features(net: Any, guide_img: np.ndarray, end: str = DEFAULT_LAYER) -> np.ndarray:
    """Run ``guide_img`` (HxWx3 RGB) forward to ``end`` and return a copy of its activations (CxHxW)."""
    return guide_features_at(net, guide_img, [end])[end]
