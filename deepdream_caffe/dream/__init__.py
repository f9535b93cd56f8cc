"""The dream algorithms: preprocess/deprocess, objectives, priors, the gradient, the ascent step, octaves,
the notebook's ``deepdream``, the L-BFGS mode, tiling and what a frame carries to
the next (optical flow, a zoom).

Arrays in, arrays out: files and command lines live in ``io``, ``app`` and ``cli``.
"""
