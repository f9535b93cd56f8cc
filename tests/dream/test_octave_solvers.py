"""Both modes solve octave by octave through run_octaves, so both resume from the same checkpoint."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from deepdream_caffe import deepdream, deepdream_lbfgs, load_net
from deepdream_caffe.app.run import FileCheckpoint
from deepdream_caffe.dream.objectives import custom, feature_match, objective_L2
from deepdream_caffe.dream.octaves import octave_pyramid, run_octaves
from deepdream_caffe.errors import DeepDreamError


class _Stop(Exception):
    pass


def test_run_octaves_hands_each_solver_base_plus_detail():
    base = np.random.RandomState(0).uniform(-50, 50, (3, 40, 50)).astype(np.float32)
    octaves = octave_pyramid(base, 3, 1.4)
    seen = []

    class AddOne:
        def solve(self, octave, x0):
            seen.append((octave, x0.shape, x0.dtype))
            return x0 + 1

    out = run_octaves(SimpleNamespace(), octaves, AddOne())  # a stand-in net: only its lock is taken
    assert [s[:2] for s in seen] == [(0, octaves[2].shape), (1, octaves[1].shape), (2, octaves[0].shape)]
    assert all(s[2] == np.float32 for s in seen)
    # each octave adds 1, and the detail carries it up: 3 in the end (up to the zoom's interpolation of constants)
    np.testing.assert_allclose(out - octaves[0], 3.0, atol=1e-4)


def test_interrupted_lbfgs_resumes_after_the_last_octave(tiny_model, tmp_path):
    net = load_net(*tiny_model, end="a/output", fast=True)
    img = np.float32(np.random.RandomState(0).randint(0, 256, (48, 56, 3)))
    kw = dict(end="a/output", octave_n=3, maxiter=3, tv_weight=2.0)
    want, info = deepdream_lbfgs(net, img, **kw)

    state = tmp_path / "state.npz"

    def die_in_last_octave(info):  # an LbfgsStepInfo
        if info.octave == 2:
            raise _Stop

    with pytest.raises(_Stop):
        deepdream_lbfgs(net, img, callback=die_in_last_octave,
                        checkpoint=FileCheckpoint(state, "k", np.random.RandomState(0)), **kw)
    cp = FileCheckpoint(state, "k", np.random.RandomState(0))
    got, resumed = deepdream_lbfgs(net, img, checkpoint=cp, **kw)
    assert cp.resumed_from == 1
    assert np.array_equal(got, want)
    assert len(resumed["octaves"]) == 1 and resumed["octaves"][0] == info["octaves"][2]


def test_feature_match_with_gain_is_fixed_at_each_octaves_start_in_ascent_too(tiny_model):
    net = load_net(*tiny_model, end="a/output", fast=True)
    img = np.float32(np.random.RandomState(1).randint(0, 256, (40, 48, 3)))
    kw = dict(end="a/output", iter_n=2, octave_n=2, jitter=0)
    # Each octave's target is twice its own start's activations: the image moves, and not as L2 moves it.
    enhanced = deepdream(net, img, objective=-feature_match("a/output", gain=2), rng=np.random.RandomState(0), **kw)
    l2 = deepdream(net, img, rng=np.random.RandomState(0), **kw)
    assert np.isfinite(enhanced).all() and not np.array_equal(enhanced, l2) and not np.array_equal(enhanced, img)


def test_lbfgs_refuses_an_objective_without_a_value_before_any_work(tiny_model):
    net = load_net(*tiny_model, end="a/output", fast=True)
    with pytest.raises(DeepDreamError, match=r"custom\('a/output', objective_L2\) only writes a gradient"):
        deepdream_lbfgs(net, np.zeros((32, 32, 3), np.float32), objective=custom("a/output", objective_L2),
                        callback=lambda *a: pytest.fail("it ran"))
