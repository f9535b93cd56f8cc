"""Every default setting, named once: the API, the app and the CLI all take them from here.

Plain constants, no imports: the command line reads them to build its
``--help`` without loading numpy, scipy or Caffe.
"""
from __future__ import annotations

# The notebook's (google/deepdream dream.ipynb).
DEFAULT_LAYER = "inception_4c/output"  # its `end`
ITER_N = 10
OCTAVE_N = 4
OCTAVE_SCALE = 1.4
STEP_SIZE = 1.5
JITTER = 32
JPEG_QUALITY = 75  # PIL's default, which the notebook's saves used

# The L-BFGS mode (dream/lbfgs.py).
# Chosen on the trained open_nsfw net (README, "Choosing the defaults").
LBFGS_OBJECTIVES = ("gain", "l2")
LBFGS_OBJECTIVE = "l2"
LBFGS_GAIN = 2.0
LBFGS_TV_WEIGHT = 100.0  # relative to the layer scale S = 0.5*||phi(X0)||^2 / (C*H*W)
LBFGS_FIRST_STEP = 3.0  # mean pixel move of L-BFGS-B's first trial point (0..255 levels)
LBFGS_TV_BETA = 2.0
LBFGS_ALPHA = 6.0
LBFGS_MAXITER = 10

# Tiles for big images (dream/tiling.py).
TILE = 768
TILE_MARGIN = 32
TILE_ABOVE_MP = 1.5

# Video: what a frame carries from the last (dream/flow.py).
FLOW_METHODS = ("none", "farneback", "dis")
FLOW = "dis"
CARRY_MODES = ("dream", "detail")
CARRY = "detail"
BLEND = 0.5

# Class visualisation (dream/visualize.py): what is climbed, the pre-softmax score (Simonyan et al.'s) or log p_k.
CLASS_SCORES = ("logit", "log-softmax")
CLASS_SCORE = "logit"
