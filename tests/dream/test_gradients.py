"""Issue 3: the input gradient from partial backprop is the true gradient of each objective."""
from __future__ import annotations

import numpy as np
import pytest

from deepdream_caffe import load_net, objective_guide, objective_L2
from deepdream_caffe.dream.gradient import objective_gradient
from deepdream_caffe.dream.objectives import as_objective, guide_match
from deepdream_caffe.net.access import end_blob, input_blob

# Caffe computes in float32, so the check is built to keep float32 noise out:
# each direction touches one 4x4 patch and the change of the objective is
# summed element by element in float64 (untouched activations cancel
# exactly), with a step large against rounding and small against the
# ReLU/max-pool kinks. A direction can still straddle a kink, so the median
# error over 12 directions must be under 0.3% and most under 1%.
SCALE = 20.0
EPS = 1e-2


def _set(net, x):
    src = input_blob(net.net)
    src.reshape(*x.shape)
    src.data[...] = x


def _acts(net, x, end):
    _set(net, x)
    net.net.forward(end=end)
    return end_blob(net.net, end).data[0].astype(np.float64).copy()


def _check(net, x, end, objective, delta):
    """``delta(a_plus, a_minus)``: objective(a_plus) - objective(a_minus) in float64."""
    _set(net, x)
    g = objective_gradient(net, as_objective(objective, end)).astype(np.float64).copy()
    assert np.abs(g).sum() > 0
    rs = np.random.RandomState(0)
    errors = []
    for _ in range(12):
        d = np.zeros_like(x)
        y0, x0 = rs.randint(0, x.shape[2] - 4, 2)
        d[:, :, y0:y0 + 4, x0:x0 + 4] = rs.randn(1, x.shape[1], 4, 4)
        fd = delta(_acts(net, x + EPS * d, end), _acts(net, x - EPS * d, end)) / (2 * EPS)
        an = float((g * d).sum())
        errors.append(abs(fd - an) / max(abs(an), 1e-6))
    assert float(np.median(errors)) < 3e-3 and np.mean(np.array(errors) < 1e-2) >= 0.75, errors
    return g


def _l2_delta(ap, am):
    return 0.5 * float((ap * ap - am * am).sum())


@pytest.mark.parametrize("end", ["norm1", "a/output", "fc"])
@pytest.mark.parametrize("fast", [False, True])
def test_l2_gradient_matches_finite_differences(tiny_model, end, fast):
    proto, weights = tiny_model
    net = load_net(proto, weights, end=end if fast else None, fast=fast)
    x = np.random.RandomState(1).uniform(-SCALE, SCALE, (1, 3, 24, 24)).astype(np.float32)
    _check(net, x, end, objective_L2, _l2_delta)


def test_guided_gradient_matches_finite_differences(tiny_model):
    proto, weights = tiny_model
    end = "a/output"
    net = load_net(proto, weights, end=end, fast=True)
    guide = np.random.RandomState(2).uniform(-SCALE, SCALE, (1, 3, 20, 20)).astype(np.float32)
    y = _acts(net, guide, end).astype(np.float32)
    ch = y.shape[0]
    y2 = y.reshape(ch, -1).astype(np.float64)

    def delta(ap, am):  # of: sum over positions of the best dot product with a guide feature
        best = lambda a: (a.reshape(ch, -1).T @ y2).max(axis=1)  # noqa: E731
        return float((best(ap) - best(am)).sum())

    x = np.random.RandomState(3).uniform(-SCALE, SCALE, (1, 3, 24, 24)).astype(np.float32)
    _check(net, x, end, objective_guide(y), delta)


def test_a_wrong_gradient_fails_the_check(tiny_model):
    """The check above can fail: a deliberately wrong objective is caught."""
    proto, weights = tiny_model
    net = load_net(proto, weights, end="a/output", fast=True)
    x = np.random.RandomState(1).uniform(-SCALE, SCALE, (1, 3, 24, 24)).astype(np.float32)

    def wrong(dst):
        dst.diff[:] = 1.05 * dst.data  # 5% off the true gradient

    with pytest.raises(AssertionError):
        _check(net, x, "a/output", wrong, _l2_delta)


def test_guide_match_picks_argmax_columns():
    x = np.array([[1.0, 0.0, -1.0], [0.0, 1.0, 0.0]], dtype=np.float32)  # C=2, N=3 positions
    y = np.array([[2.0, 0.0, -3.0, 1.0], [0.0, 3.0, 0.0, 1.0]], dtype=np.float32)  # C=2, M=4 guides
    # dots per position: p0 -> [2,0,-3,1] -> col 0; p1 -> [0,3,0,1] -> col 1; p2 -> [-2,0,3,-1] -> col 2
    out = guide_match(x, y)
    assert out.shape == (2, 3)
    np.testing.assert_array_equal(out, y[:, [0, 1, 2]])


def test_guide_match_ties_go_to_first_column():
    x = np.array([[1.0], [1.0]], dtype=np.float32)
    y = np.array([[1.0, 0.0, 2.0], [1.0, 2.0, 0.0]], dtype=np.float32)  # all dots equal 2
    np.testing.assert_array_equal(guide_match(x, y), y[:, [0]])
