"""Issue 12: the API under hostile input -- odd images, bad numbers, nets without backward, NaN, corrupt states.

Errors raised here are the API's: one line, a DeepDreamError, and no
command-line flag or command in the text. Runs use the tiny net.
"""
from __future__ import annotations

import os
import sys
import threading

import numpy as np
import pytest
from PIL import Image

from deepdream_caffe import deepdream, guide_features, load_net, make_step, objective_guide
from deepdream_caffe.app.run import FileCheckpoint
from deepdream_caffe.app.zoom import PARAMS_FILE, STATE_FILE, frame_path, zoom_frames
from deepdream_caffe.dream.checks import GradientError
from deepdream_caffe.dream.lbfgs import deepdream_lbfgs
from deepdream_caffe.errors import DeepDreamError

KW = dict(iter_n=2, octave_n=2, jitter=3)


def _img(h=40, w=48, seed=0):
    return np.float32(np.random.RandomState(seed).randint(0, 256, (h, w, 3)))


@pytest.fixture(scope="module")
def net(tiny_model):
    return load_net(*tiny_model, end="a/output", fast=True)


def _api_error(e: BaseException) -> str:
    msg = str(e)
    assert msg and "\n" not in msg, msg
    assert "--" not in msg and "deepdream-caffe" not in msg, msg  # the API does not talk about the CLI
    return msg


# ---------------------------------------------------------------- images and the default layer


def test_convertible_images_dream_like_their_float_rgb(net):
    img = _img()
    want = deepdream(net, img, rng=np.random.RandomState(3), **KW)
    for other in (img.astype(np.uint8), Image.fromarray(img.astype(np.uint8)), img.tolist()):
        assert np.array_equal(deepdream(net, other, rng=np.random.RandomState(3), **KW), want)
    gray = deepdream(net, img[:, :, 0], rng=np.random.RandomState(3), **KW)
    assert gray.shape == img.shape
    rgba = np.dstack([img, np.full(img.shape[:2], 255, np.float32)])
    assert np.array_equal(deepdream(net, rgba, rng=np.random.RandomState(3), **KW), want)


@pytest.mark.parametrize("bad,fragment", [
    (np.zeros((3, 40, 48), np.float32), "channels first"),
    (_img() / 255.0, "img * 255"),
    (np.full((40, 48, 3), np.nan, np.float32), "NaN"),
    (np.zeros((1, 40, 48, 3), np.float32), "expected HxWx3"),
    ("sky.jpg", "got 'sky.jpg'"),
])
def test_unconvertible_images_are_refused_before_any_work(net, bad, fragment):
    with pytest.raises(DeepDreamError) as e:
        deepdream(net, bad, **KW)
    assert fragment in _api_error(e.value)
    with pytest.raises(DeepDreamError):
        guide_features(net, bad)


def test_end_defaults_to_the_layer_the_net_was_cut_at(tiny_model, net):
    img = _img()
    explicit = deepdream(net, img, end="a/output", rng=np.random.RandomState(1), **KW)
    assert np.array_equal(deepdream(net, img, rng=np.random.RandomState(1), **KW), explicit)
    assert guide_features(net, img).shape == guide_features(net, img, "a/output").shape
    cut = load_net(*tiny_model, end="norm1")
    with pytest.raises(DeepDreamError) as e:
        deepdream(cut, img, end="a/output", **KW)
    assert "cut after 'norm1'" in _api_error(e.value)


def test_unknown_layer_lists_the_net_without_pointing_at_the_cli(tiny_model):
    whole = load_net(*tiny_model)
    with pytest.raises(DeepDreamError) as e:
        deepdream(whole, _img(), end="zzzz", **KW)  # no close names: the list of layers instead
    assert "this net's layers: conv1" in _api_error(e.value)
    with pytest.raises(DeepDreamError) as e:
        deepdream_lbfgs(whole, _img(), end="zzzz", octave_n=1)
    _api_error(e.value)


@pytest.mark.parametrize("kw,fragment", [
    ({"step_size": float("nan")}, "step_size"), ({"step_size": float("inf")}, "step_size"),
    ({"step_size": 0}, "step_size"), ({"step_size": -1.5}, "step_size"),
    ({"octave_scale": float("nan")}, "octave_scale"), ({"octave_scale": 1.0}, "octave_scale"),
    ({"octave_scale": float("inf")}, "octave_scale"),
    ({"iter_n": -1}, "iter_n"), ({"iter_n": 2.5}, "iter_n"), ({"octave_n": 0}, "octave_n"),
    ({"jitter": -1}, "jitter"), ({"jitter": 1.5}, "jitter"), ({"octave_n": True}, "octave_n"),
    ({"octave_n": 12}, "octave_n=10 fits"),  # the smallest octave would be too small for the layer
    ({"octave_n": 10 ** 5}, "octave_n=10 fits"), ({"octave_n": 10 ** 9}, "octave_n=10 fits"),  # told from arithmetic
    ({"octave_n": 10 ** 9, "octave_scale": 1.0000001}, "at most 1 octave"),  # no octave would be smaller
])
def test_bad_parameters_are_refused_by_name(net, kw, fragment):
    args = dict(KW, **kw)
    with pytest.raises(DeepDreamError) as e:
        deepdream(net, _img(), **args)
    assert fragment in _api_error(e.value)


@pytest.mark.parametrize("guided", [False, True])
def test_two_threads_on_one_net_get_the_pixels_of_two_runs_in_turn(net, guided):
    """Issue #28, class 7: a Caffe net is one set of blobs; two threads dreaming on it take turns on it, so
    each gets what it would alone (sizes differ, so each octave reshapes the net under the other)."""
    imgs = [_img(40, 48, 1), _img(33, 45, 2)]
    guides = [guide_features(net, _img(30, 30, 3 + k)) if guided else None for k in range(2)]

    def dream(k):
        obj = objective_guide(guides[k]) if guided else None
        return deepdream(net, imgs[k], iter_n=3, octave_n=3, objective=obj, rng=np.random.RandomState(k))

    alone = [dream(k) for k in range(2)]
    together = [None, None]

    def run(k):
        together[k] = dream(k)

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as Python can: without the lock they collide
    try:
        threads = [threading.Thread(target=run, args=(k,)) for k in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
    finally:
        sys.setswitchinterval(interval)
    assert all(np.array_equal(a, b) for a, b in zip(alone, together))


def test_too_small_image_is_an_error_not_a_caffe_abort(net):
    with pytest.raises(DeepDreamError) as e:
        deepdream(net, _img(1, 1), **KW)
    assert "too small" in _api_error(e.value)


def test_load_net_refuses_a_non_finite_or_out_of_range_mean(tiny_model):
    for mean in ([float("nan"), 0, 0], [float("inf"), 1, 2], [1e38, 0, 0], [-5, 0, 0]):
        with pytest.raises(DeepDreamError) as e:
            load_net(*tiny_model, mean=mean)
        assert "mean must be 3 pixel values" in _api_error(e.value)


# ---------------------------------------------------------------- gradients that cannot make a step


def _classifier(proto, weights, force_backward):
    import caffe

    if force_backward:
        from deepdream_caffe.dream.reference import notebook_net

        return notebook_net(proto, weights)
    return caffe.Classifier(str(proto), str(weights), mean=np.float32([104.0, 116.0, 122.0]), channel_swap=(2, 1, 0))


def test_a_classifier_without_force_backward_is_told_how_to_fix_it(tiny_model):
    nb = _classifier(*tiny_model, force_backward=False)
    with pytest.raises(GradientError) as e:
        deepdream(nb, _img(), end="a/output", step_fn=make_step, **KW)
    msg = _api_error(e.value)
    assert "force_backward: true" in msg and "load_net()" in msg
    ok = _classifier(*tiny_model, force_backward=True)  # the notebook's fix works
    assert deepdream(ok, _img(), end="a/output", **KW).shape == (40, 48, 3)


def test_nan_weight_stops_the_run_with_one_line(tiny_model):
    net = load_net(*tiny_model, end="a/output", fast=True)
    net.net.params["conv1"][0].data[0, 0, 0, 0] = np.nan
    with pytest.raises(DeepDreamError) as e:
        deepdream(net, _img(), **KW)  # refused before Caffe runs (a NaN in a pooling window corrupts its heap)
    assert "weights of layer 'conv1' hold NaN" in _api_error(e.value)


@pytest.mark.parametrize("step_size", [1e30, 1e38])
@pytest.mark.filterwarnings("error")  # the one error, and no numpy warning before it
def test_a_step_that_blows_up_without_clip_stops_before_returning(net, step_size):
    with pytest.raises(DeepDreamError) as e:
        deepdream(net, _img(), clip=False, step_size=step_size, iter_n=5, octave_n=2, jitter=3)
    assert "without clipping" in _api_error(e.value)


def test_the_checks_keep_notebook_bits(tiny_model):
    """Same bits as the notebook's formula: the check reads the mean the step computes anyway."""
    from deepdream_caffe.dream.reference import nb_deepdream, notebook_net

    proto, weights = tiny_model
    img = _img(50, 60, 4)
    np.random.seed(2)
    want = nb_deepdream(notebook_net(proto, weights), img, iter_n=3, octave_n=2, end="a/output", jitter=4)
    got = deepdream(load_net(proto, weights, end="a/output", fast=True), img, iter_n=3, octave_n=2, jitter=4,
                    rng=np.random.RandomState(2))
    assert np.array_equal(got, want)


# ---------------------------------------------------------------- crafted states through the real loop


def test_a_crafted_octave_99_state_starts_over_with_the_right_size(net, tmp_path):
    img = _img(60, 70)
    kw = dict(iter_n=2, octave_n=3, jitter=4)
    want = deepdream(net, img, rng=np.random.RandomState(8), **kw)
    state = tmp_path / ".o.png.dream-state.npz"
    rng = np.random.RandomState(8)
    FileCheckpoint(state, "k", np.random.RandomState(0)).save(99, np.zeros((3, 7, 7), np.float32))
    notes = []
    got = deepdream(net, img, rng=rng, checkpoint=FileCheckpoint(state, "k", rng, note=notes.append), **kw)
    assert got.shape == img.shape and np.array_equal(got, want)
    assert len(notes) == 1 and "octave 99" in notes[0]
    assert [p.name.split(".")[-1][:4] for p in tmp_path.iterdir() if ".bad-" in p.name] == ["bad-"]


# ---------------------------------------------------------------- zoom folders


def _zoom(net, out, frames=3, note=None, inputs=(), img=None, dream=None):
    def one(frame, rng):
        return deepdream(net, frame, rng=rng, iter_n=1, octave_n=1, jitter=2)

    return zoom_frames(dream or one, _img(32, 36) if img is None else img, out, frames, np.random.RandomState(4),
                       scale=0.1, params={"p": 1}, note=note if note is not None else (lambda m: None),
                       inputs=inputs)


def _frames(d):
    return {p.name: p.read_bytes() for p in sorted(d.glob("*.jpg"))}


@pytest.fixture(scope="module")
def whole_zoom(net, tmp_path_factory):
    d = tmp_path_factory.mktemp("whole")
    _zoom(net, d)
    return _frames(d)


def test_a_finished_zoom_leaves_no_state(net, tmp_path, whole_zoom):
    assert _zoom(net, tmp_path) == 0
    assert not (tmp_path / STATE_FILE).exists() and (tmp_path / PARAMS_FILE).exists()
    assert _frames(tmp_path) == whole_zoom
    mtimes = {p: p.stat().st_mtime_ns for p in tmp_path.glob("*.jpg")}
    assert _zoom(net, tmp_path, frames=4) == 0  # extending: made again from frame 0, the old files kept
    assert all(p.stat().st_mtime_ns == t for p, t in mtimes.items()) and len(_frames(tmp_path)) == 4


class _Stop(Exception):
    pass


def _interrupted(net, d, after=2):
    calls = {"n": 0}

    def dying(frame, rng):
        if calls["n"] == after:
            raise _Stop
        calls["n"] += 1
        return deepdream(net, frame, rng=rng, iter_n=1, octave_n=1, jitter=2)

    with pytest.raises(_Stop):
        _zoom(net, d, dream=dying)
    assert (d / STATE_FILE).exists()


ZOOM_SPOILERS = {
    "empty state": lambda d: (d / STATE_FILE).write_bytes(b""),
    "truncated state": lambda d: (d / STATE_FILE).write_bytes((d / STATE_FILE).read_bytes()[:300]),
    "state index 99": lambda d: _respoil(d, step=np.int64(99)),
    "state index -3": lambda d: _respoil(d, step=np.int64(-3)),
    "state frame of another size": lambda d: _respoil(d, dream=np.zeros((10, 10, 3), np.float32)),
    "state frame float64": lambda d: _respoil(d, dream=np.zeros((32, 36, 3))),
    "state pos out of range": lambda d: _respoil(d, pos=np.int64(700)),
    "state without rng": lambda d: _respoil(d, keys=None),
    "state is a directory": lambda d: ((d / STATE_FILE).unlink(), (d / STATE_FILE).mkdir()),
}


def _respoil(d, **changes):
    p = d / STATE_FILE
    with np.load(p) as z:
        arrays = {k: z[k] for k in z.files}
    for k, v in changes.items():
        arrays.pop(k) if v is None else arrays.__setitem__(k, v)
    with open(p, "wb") as f:
        np.savez(f, **arrays)


@pytest.mark.parametrize("case", sorted(ZOOM_SPOILERS))
def test_unusable_zoom_state_is_set_aside_and_the_frames_come_out_the_same(net, tmp_path, whole_zoom, case):
    _interrupted(net, tmp_path)
    ZOOM_SPOILERS[case](tmp_path)
    kept = _frames(tmp_path)
    notes = []
    assert _zoom(net, tmp_path, note=notes.append) == 0  # started over...
    assert _frames(tmp_path) == whole_zoom  # ...to the same frames
    assert all(_frames(tmp_path)[k] == v for k, v in kept.items())
    assert len(notes) == 1 and "set aside" in notes[0] and "\n" not in notes[0]
    assert len(list(tmp_path.glob(STATE_FILE + ".bad-*"))) == 1 and not (tmp_path / STATE_FILE).exists()


@pytest.mark.parametrize("record", [b"", b"{not json", b"[]", b'{"params": 3}', b"\xff\xfe\x00", None])
def test_unusable_zoom_record(net, tmp_path, record):
    """A zoom.json this tool did not write is refused and left as it is; without one, frames on disk are refused."""
    empty, full = tmp_path / "empty", tmp_path / "full"
    for d in (empty, full):
        d.mkdir()
        if record is None:
            continue
        (d / PARAMS_FILE).write_bytes(record)
    frame_path(full, 0).write_bytes(b"someone's photo")
    if record is None:
        assert _zoom(net, empty, frames=1) == 0
        assert len(list(empty.glob("*.jpg"))) == 1
    else:
        with pytest.raises(DeepDreamError, match="not a record this tool wrote") as e:
            _zoom(net, empty, frames=1)
        _api_error(e.value)
        assert sorted(p.name for p in empty.iterdir()) == [PARAMS_FILE]
    with pytest.raises(DeepDreamError) as e:
        _zoom(net, full, frames=1)
    _api_error(e.value)
    assert frame_path(full, 0).read_bytes() == b"someone's photo"
    if record is not None:
        assert (full / PARAMS_FILE).read_bytes() == record


def test_an_own_zoom_record_that_does_not_read_is_set_aside(net, tmp_path):
    (tmp_path / PARAMS_FILE).write_text('{"tool": "deepdream-caffe", "params": 3}')
    notes = []
    assert _zoom(net, tmp_path, frames=1, note=notes.append) == 0
    assert len(notes) == 1 and "set aside" in notes[0] and len(list(tmp_path.glob(PARAMS_FILE + ".bad-*"))) == 1


@pytest.mark.parametrize("how", ["same path", "symlink", "hard link"])
def test_zoom_refuses_to_overwrite_its_input(net, tmp_path, how):
    d = tmp_path / "D"
    d.mkdir()
    src = tmp_path / "a.jpg"
    Image.fromarray(_img(32, 36).astype(np.uint8)).save(src)
    data = src.read_bytes()
    target = frame_path(d, 1)
    if how == "same path":
        os.replace(src, target)
        src = target
    elif how == "symlink":
        target.symlink_to(src)
    else:
        os.link(src, target)
    with pytest.raises(DeepDreamError) as e:
        _zoom(net, d, inputs=[src])
    assert "refusing to overwrite the input" in _api_error(e.value)
    assert src.read_bytes() == data and sorted(p.name for p in d.iterdir()) == ["0001.jpg"]
