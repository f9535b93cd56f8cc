"""The dream algorithms: preprocess/deprocess, objectives, priors, the gradient, the ascent step, octaves,
the notebook's ``deepdream``, the L-BFGS mode, tiling and the zoom sequence.

Arrays in, arrays out: files and command lines live in ``io``, ``app`` and ``cli``.
"""
