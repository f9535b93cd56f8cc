"""The notebook's settings, named once: every default of the API, the app and the CLI comes from here."""
from __future__ import annotations

DEFAULT_LAYER = "inception_4c/output"  # the notebook's `end`
ITER_N = 10
OCTAVE_N = 4
OCTAVE_SCALE = 1.4
STEP_SIZE = 1.5
JITTER = 32
JPEG_QUALITY = 75  # PIL's default, which the notebook's saves used
