"""The objective a run's settings ask for, as a :class:`~deepdream_caffe.dream.objectives.Objective`.

Each weighted layer contributes the mode's own term: the guided objective
with a guide image (in either mode); else the notebook's L2 in the ascent
mode, and in the L-BFGS mode its data term (``-feature_match(layer,
gain=...)`` for "gain", ``L2(layer)`` for "l2"). Each weighted channel adds that channel's sum, in
either mode (channels without layers: the channels alone). One layer of
weight 1 and no channel is exactly the notebook's objective.
"""
from __future__ import annotations

from typing import Dict, Optional, Tuple

import numpy as np

from ..dream.objectives import L2, Objective, channel, feature_match, guide
from .config import DreamConfig


def objective_layer_names(config: DreamConfig, default: str) -> Tuple[str, ...]:
    """Every layer the objective reads, first mention first."""
    names = [name for name, _ in config.objective_layers(default)] + [layer for layer, _, _ in config.channels] \
        + [layer for layer, _, _ in config.picks]
    return tuple(dict.fromkeys(names))


def build_objective(config: DreamConfig, default: str,
                    guide_features: Optional[Dict[str, np.ndarray]] = None) -> Objective:
    """The objective of ``config`` (``default``: the model's layer); ``guide_features`` by layer with a guide."""
    terms = []
    for name, w in config.objective_layers(default):
        if guide_features is not None:
            term = guide(name, guide_features[name])
        elif config.mode == "lbfgs" and config.solver.objective == "gain":
            term = -feature_match(name, gain=config.solver.gain)
        else:
            term = L2(name)
        terms.append(term if w == 1.0 else w * term)
    for layer, c, w in config.channels:
        terms.append(channel(layer, c) if w == 1.0 else w * channel(layer, c))
    return sum(terms[1:], terms[0])


def is_plain(config: DreamConfig) -> bool:
    """One layer of weight 1, no channel (given or picked), no guide: the L-BFGS mode's own "gain"/"l2" record applies."""
    layers = config.objective_layers("")
    return len(layers) == 1 and layers[0][1] == 1.0 and not config.channels and not config.picks and config.guide is None
