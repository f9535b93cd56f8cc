"""What a step maximises: functions that set the end blob's diff from its data.

An objective takes the end blob (pycaffe ``Blob``: ``.data`` and ``.diff`` of
shape 1xCxHxW) and writes the gradient of the quantity to maximise into
``.diff``. Backprop from there carries it to the image.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

Objective = Callable[[Any], None]


def objective_L2(dst: Any) -> None:  # noqa: N802 - the notebook's name
    """Maximise 0.5 * ||a||^2 of the activations: its gradient is a itself."""
    dst.diff[:] = dst.data


def guide_match(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """For each position of ``x`` (C x N), the column of ``y`` (C x M) with the largest dot product.

    Returns a C x N array. Ties go to the first column, as ``argmax`` does.
    """
    a = x.T.dot(y)
    return y[:, a.argmax(1)]


def objective_guide(guide_features: np.ndarray) -> Objective:
    """The notebook's guided objective for features of a guide image (C x h x w at the end layer).

    Each position of the current activations is pulled towards the guide
    feature vector it already resembles most (largest dot product).
    """
    y = np.asarray(guide_features)
    ch = y.shape[0]
    y = y.reshape(ch, -1)

    def objective(dst: Any) -> None:
        x = dst.data[0].copy().reshape(ch, -1)
        dst.diff[0].reshape(ch, -1)[:] = guide_match(x, y)

    return objective
