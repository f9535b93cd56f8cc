"""deepdream-caffe: Google's 2015 DeepDream notebook, faithfully, on pycaffe.

The notebook's names are here: ``make_step``, ``deepdream``, ``objective_L2``,
``objective_guide``, ``preprocess``, ``deprocess``; plus ``load_net`` for
the net (a zoo model's name, or your prototxt and weights), ``guide_features`` for the guided objective and
``deepdream_lbfgs`` for the L-BFGS mode; ``Ascent``, ``Octaves``, ``Tiling`` and
``Lbfgs`` hold their settings, checked once (for ``ascend`` and ``descend``).
"""
from __future__ import annotations

from ._lazy import lazy_exports

__version__ = "0.1.0"

# Loaded on first use, so `deepdream-caffe models ...` does not pay for scipy and Caffe.
_EXPORTS = {
    "Ascent": ".dream.params",
    "DeepDreamError": ".errors",
    "DreamNet": ".net.loading",
    "ascend": ".dream.ascent",
    "Lbfgs": ".dream.params",
    "Octaves": ".dream.params",
    "StepInfo": ".dream.ascent",
    "Tiling": ".dream.params",
    "deepdream": ".dream.ascent",
    "deepdream_lbfgs": ".dream.lbfgs",
    "descend": ".dream.lbfgs",
    "deprocess": ".dream.transform",
    "guide_features": ".dream.guide",
    "load_net": ".app.loadnet",
    "make_step": ".dream.step",
    "objective_L2": ".dream.objectives",
    "objective_guide": ".dream.objectives",
    "preprocess": ".dream.transform",
}

__all__, __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
