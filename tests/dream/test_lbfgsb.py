"""The L-BFGS-B driver: the same iterates, bit for bit, as scipy.optimize.minimize, without its per-variable loops."""
from __future__ import annotations

import numpy as np
import pytest
import scipy

from deepdream_caffe.dream.lbfgs import octave_objective, pixel_bounds
from deepdream_caffe.dream.lbfgsb import fast_path_available, lbfgsb
from deepdream_caffe.dream.transform import preprocess
from deepdream_caffe.net.loading import load_net


def test_this_scipy_has_the_known_calling_convention():
    major, minor = (int(p) for p in scipy.__version__.split(".")[:2])
    assert fast_path_available() == ((1, 15) <= (major, minor) < (1, 18))


@pytest.mark.skipif(not fast_path_available(), reason=f"scipy {scipy.__version__}: minimize() itself is used")
@pytest.mark.parametrize("maxiter, maxfun", [(8, None), (30, 9), (60, None)])
def test_same_bits_as_minimize_on_a_net_objective(tiny_model, maxiter, maxfun):
    net = load_net(*tiny_model, end="a/output", fast=True)
    img = np.float32(np.random.RandomState(4).randint(0, 256, (30, 34, 3)))
    x0 = preprocess(net, img).astype(np.float64)
    lo, hi = pixel_bounds(net, x0.shape)
    runs = []
    for fast in (True, False):
        f = octave_objective(net, "a/output", x0, tv_weight=20.0, relative=True)
        seen = []
        r = lbfgsb(f, x0.ravel(), lo.ravel(), hi.ravel(), maxiter=maxiter, maxfun=maxfun, fast=fast,
                   callback=lambda x, v: seen.append((x.copy(), v)))
        runs.append((r, seen, f.nfev))
    (a, sa, na), (b, sb, nb) = runs
    assert np.array_equal(a.x, b.x) and a.fun == b.fun
    assert (a.nit, a.nfev, a.status, a.message) == (b.nit, b.nfev, b.status, b.message)
    assert na == nb and len(sa) == len(sb) == a.nit > 0
    assert all(np.array_equal(xa, xb) and va == vb for (xa, va), (xb, vb) in zip(sa, sb))
    assert a.x.min() >= lo.min() and np.all(a.x >= lo.ravel()) and np.all(a.x <= hi.ravel())


def test_bad_bounds_are_refused():
    f = lambda x: (float(x @ x), 2 * x)  # noqa: E731
    with pytest.raises(ValueError, match="lower bound is above"):
        lbfgsb(f, np.zeros(3), np.ones(3), np.zeros(3), maxiter=2, fast=True)
    with pytest.raises(ValueError, match="finite"):
        lbfgsb(f, np.zeros(3), np.full(3, -np.inf), np.ones(3), maxiter=2, fast=True)
