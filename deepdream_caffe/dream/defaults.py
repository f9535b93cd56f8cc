"""Default settings that are no dream parameter object's (those are in :mod:`params`).

Plain constants, no imports: the command line reads them to build its
``--help`` without loading numpy, scipy or Caffe.
"""
from __future__ import annotations

# The notebook's (google/deepdream dream.ipynb).
DEFAULT_LAYER = "inception_4c/output"  # its `end`
JPEG_QUALITY = 75  # PIL's default, which the notebook's saves used

# The L-BFGS mode (dream/lbfgs.py): mean pixel move of L-BFGS-B's first trial point (0..255 levels).
LBFGS_FIRST_STEP = 3.0

# Video: what a frame carries from the last (dream/flow.py).
FLOW_METHODS = ("none", "farneback", "dis")
FLOW = "dis"
CARRY_MODES = ("dream", "detail")
CARRY = "detail"
BLEND = 0.5

# Class visualisation (dream/visualize.py): what is climbed, the pre-softmax score (Simonyan et al.'s) or log p_k.
CLASS_SCORES = ("logit", "log-softmax")
CLASS_SCORE = "logit"
CLASS_ITER_N = 200  # steps per octave (the toolbox runs 500-1000 plain steps; the normalised step needs fewer)
