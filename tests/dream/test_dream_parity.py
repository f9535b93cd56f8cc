"""Issue 3/6: with a seed, the product's output is bit-identical to the notebook's algorithm."""
from __future__ import annotations

import numpy as np
import pytest

from deepdream_caffe import deepdream, guide_features, load_net, make_step, objective_guide
from deepdream_caffe.dream.reference import nb_deepdream, nb_guide_features, nb_guide_objective, notebook_net
from deepdream_caffe.dream.step import draw_jitter
from deepdream_caffe.errors import DeepDreamError


def _image(h, w, seed=0):
    return np.float32(np.random.RandomState(seed).randint(0, 256, (h, w, 3)))


def test_jitter_follows_np_random_seed():
    np.random.seed(42)
    expected = [tuple(np.random.randint(-32, 33, 2)) for _ in range(50)]
    rng = np.random.RandomState(42)
    assert [draw_jitter(32, rng) for _ in range(50)] == expected
    np.random.seed(42)
    assert [draw_jitter(32) for _ in range(50)] == expected  # rng=None: the global one, as the notebook


@pytest.mark.parametrize("end", ["inception_4c/output", "inception_3b/5x5_reduce"])
@pytest.mark.parametrize("fast", [False, True])
def test_googlenet_dream_is_bit_identical_to_notebook(googlenet_model, end, fast):
    proto, weights = googlenet_model
    img = _image(150, 200)
    nb = notebook_net(proto, weights)
    np.random.seed(7)
    want = nb_deepdream(nb, img, iter_n=3, octave_n=2, end=end)

    ours = load_net(proto, weights, end=end if fast else None, fast=fast)
    got = deepdream(ours, img, iter_n=3, octave_n=2, end=end, rng=np.random.RandomState(7))
    assert got.dtype == np.float32 and got.shape == img.shape
    assert np.array_equal(got, want)
    assert not np.array_equal(got, img)


def test_the_notebooks_own_order_on_one_net_is_reproduced_stale_gradients_and_all(googlenet_model):
    """The notebook dreams 4c, then 3b/5x5_reduce on the same net: the second sees the first's stale diffs.

    backward(start=) runs every layer below the start in the net's order, so
    inception_3b's other branches push their leftover top diffs through the
    split into the image. A whole net reused in the same order repeats that;
    a net cut after the layer (the default) gives the layer's own dream.
    """
    proto, weights = googlenet_model
    img = _image(120, 160, 3)
    first, second = "inception_4c/output", "inception_3b/5x5_reduce"
    nb = notebook_net(proto, weights)
    for end in (first, second):
        np.random.seed(5)
        want = nb_deepdream(nb, img, iter_n=2, octave_n=2, end=end)

    whole = load_net(proto, weights)
    for end in (first, second):
        got = deepdream(whole, img, iter_n=2, octave_n=2, end=end, rng=np.random.RandomState(5))
    assert np.array_equal(got, want)

    alone = deepdream(load_net(proto, weights, end=second, fast=True), img, iter_n=2, octave_n=2, end=second,
                      rng=np.random.RandomState(5))
    np.random.seed(5)
    assert np.array_equal(alone, nb_deepdream(notebook_net(proto, weights), img, iter_n=2, octave_n=2, end=second))
    assert np.abs(alone - want).max() > 0.5  # the stale diffs really change the notebook's second dream


@pytest.mark.parametrize("end", ["inception_3b/output", "inception_4c/output"])
def test_guided_dream_is_bit_identical_to_notebook(googlenet_model, end):
    proto, weights = googlenet_model
    img, guide = _image(120, 160, 1), _image(90, 90, 2)
    nb = notebook_net(proto, weights)
    nb_obj = nb_guide_objective(nb_guide_features(nb, guide, end))
    np.random.seed(3)
    want = nb_deepdream(nb, img, iter_n=2, octave_n=2, end=end, objective=nb_obj)

    ours = load_net(proto, weights, end=end, fast=True)
    obj = objective_guide(guide_features(ours, guide, end))
    got = deepdream(ours, img, iter_n=2, octave_n=2, end=end, objective=obj, rng=np.random.RandomState(3))
    assert np.array_equal(got, want)
    # The guide must matter: the same run with the L2 objective ends elsewhere.
    l2 = deepdream(ours, img, iter_n=2, octave_n=2, end=end, rng=np.random.RandomState(3))
    assert not np.array_equal(got, l2)


def test_tiny_net_parity_without_clip_and_other_params(tiny_model):
    proto, weights = tiny_model
    img = _image(64, 80, 5)
    nb = notebook_net(proto, weights)
    np.random.seed(11)
    want = nb_deepdream(nb, img, iter_n=4, octave_n=3, octave_scale=1.3, end="a/output", clip=False,
                        step_size=2.5, jitter=5)
    ours = load_net(proto, weights, end="a/output", fast=True)
    got = deepdream(ours, img, iter_n=4, octave_n=3, octave_scale=1.3, end="a/output", clip=False,
                    step_size=2.5, jitter=5, rng=np.random.RandomState(11))
    assert np.array_equal(got, want)
    assert got.max() > 255 or got.min() < 0  # unclipped really is unclipped


def test_notebook_classifier_works_with_our_functions(googlenet_model):
    """A notebook user's caffe.Classifier can be passed straight to make_step/deepdream."""
    proto, weights = googlenet_model
    nb = notebook_net(proto, weights)
    img = _image(100, 120, 3)
    np.random.seed(5)
    want = nb_deepdream(nb, img, iter_n=2, octave_n=1, end="inception_3a/output")
    np.random.seed(5)
    got = deepdream(nb, img, iter_n=2, octave_n=1, end="inception_3a/output", step_fn=make_step)
    assert np.array_equal(got, want)


def test_different_seeds_differ(tiny_model):
    proto, weights = tiny_model
    net = load_net(proto, weights, end="a/output", fast=True)
    img = _image(48, 48, 9)
    a = deepdream(net, img, iter_n=3, octave_n=1, end="a/output", jitter=4, rng=np.random.RandomState(1))
    b = deepdream(net, img, iter_n=3, octave_n=1, end="a/output", jitter=4, rng=np.random.RandomState(2))
    assert not np.array_equal(a, b)


def test_load_net_gpu_on_cpu_only_caffe_is_one_clear_error(tiny_model):
    with pytest.raises(DeepDreamError, match="GPU 0 is not usable"):
        load_net(*tiny_model, gpu=0)
    net = load_net(*tiny_model, select=True)  # back on the CPU
    assert net.weights_sha1 is not None
