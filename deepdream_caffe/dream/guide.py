"""Features of a guide image at the end layer, for the guided objective."""
from __future__ import annotations

from typing import Any

import numpy as np

from ..net.access import end_blob, input_blob, raw_net
from .defaults import DEFAULT_LAYER
from .transform import preprocess


def guide_features(net: Any, guide_img: np.ndarray, end: str = DEFAULT_LAYER) -> np.ndarray:
    """Run ``guide_img`` (HxWx3 RGB) forward to ``end`` and return a copy of its activations (CxHxW)."""
    cnet = raw_net(net)
    h, w = guide_img.shape[:2]
    src, dst = input_blob(cnet), end_blob(cnet, end)
    src.reshape(1, 3, h, w)
    src.data[0] = preprocess(net, guide_img)
    cnet.forward(end=end)
    return dst.data[0].copy()
