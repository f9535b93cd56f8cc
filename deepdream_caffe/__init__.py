"""deepdream-caffe: Google's 2015 DeepDream notebook, faithfully, on pycaffe.

The notebook's names are here: ``make_step``, ``deepdream``, ``objective_L2``,
``objective_guide``, ``preprocess``, ``deprocess``; plus ``load_net`` for
the net and ``zoom_frames`` for the zoom sequence.
"""
__version__ = "0.1.0"

from .dream import StepInfo, deepdream  # noqa: E402
from .errors import DeepDreamError  # noqa: E402
from .guide import guide_features  # noqa: E402
from .net import DreamNet, load_net  # noqa: E402
from .objectives import objective_guide, objective_L2  # noqa: E402
from .step import make_step  # noqa: E402
from .transform import deprocess, preprocess  # noqa: E402

__all__ = [
    "DeepDreamError", "DreamNet", "StepInfo", "deepdream", "deprocess", "guide_features",
    "load_net", "make_step", "objective_L2", "objective_guide", "preprocess",
]
