"""Issue 3: zoom sequences resume exactly; issue 6: big images dream in tiles."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from cli_util import assert_one_line_error, run_cli
from deepdream_caffe import deepdream, load_net
from deepdream_caffe.app.run import FileCheckpoint
from deepdream_caffe.app.zoom import frame_path, zoom_frames
from deepdream_caffe.dream.flow import zoom_in
from deepdream_caffe.dream.gradient import objective_gradient
from deepdream_caffe.dream.objectives import L2
from deepdream_caffe.dream.tiling import TilePolicy, tile_gradient
from deepdream_caffe.errors import DeepDreamError
from deepdream_caffe.net.access import input_blob, reserve_input


def _dreamer(net, **kw):
    def dream(frame, rng):
        return deepdream(net, frame, end="a/output", rng=rng, **kw)
    return dream


class _Stop(Exception):
    pass


def test_zoom_in_keeps_size_and_magnifies_centre():
    img = np.zeros((40, 60, 3), np.float32)
    img[18:22, 28:32] = 255
    out = zoom_in(img, 0.5)
    assert out.shape == img.shape
    assert (out > 128).sum() > (img > 128).sum() * 3  # the centre square grew


def test_interrupted_zoom_resumes_to_the_same_frames(tiny_model, tmp_path):
    net = load_net(*tiny_model, end="a/output", fast=True)
    img = np.float32(np.random.RandomState(0).randint(0, 256, (40, 48, 3)))
    dream = _dreamer(net, iter_n=2, octave_n=2, jitter=3)

    whole = tmp_path / "whole"
    zoom_frames(dream, img, whole, 5, np.random.RandomState(4), scale=0.1, params={"p": 1})

    cut = tmp_path / "cut"
    calls = {"n": 0}

    def dying(frame, rng):
        if calls["n"] == 3:
            raise _Stop
        calls["n"] += 1
        return dream(frame, rng)

    with pytest.raises(_Stop):
        zoom_frames(dying, img, cut, 5, np.random.RandomState(4), scale=0.1, params={"p": 1})
    done = sorted(p.name for p in cut.glob("*.jpg"))
    assert done == ["0000.jpg", "0001.jpg", "0002.jpg"]
    first_bytes = frame_path(cut, 0).read_bytes()
    mtimes = {p: p.stat().st_mtime_ns for p in cut.glob("*.jpg")}

    start = zoom_frames(dream, img, cut, 5, np.random.RandomState(999), scale=0.1, params={"p": 1})
    assert start == 3
    for i in range(5):
        assert frame_path(cut, i).read_bytes() == frame_path(whole, i).read_bytes(), i
    assert frame_path(cut, 0).read_bytes() == first_bytes
    assert all(p.stat().st_mtime_ns == t for p, t in mtimes.items())  # finished frames not rewritten


def test_zoom_refuses_a_folder_made_with_other_parameters(tiny_model, tmp_path):
    net = load_net(*tiny_model, end="a/output", fast=True)
    img = np.float32(np.random.RandomState(0).randint(0, 256, (32, 32, 3)))
    dream = _dreamer(net, iter_n=1, octave_n=1, jitter=2)
    zoom_frames(dream, img, tmp_path / "z", 1, np.random.RandomState(1), params={"layer": "a/output"})
    with pytest.raises(DeepDreamError, match=r"another run \(other layer\)"):
        zoom_frames(dream, img, tmp_path / "z", 2, np.random.RandomState(1), params={"layer": "norm1"})


def test_zoom_cli_resumes_and_names_frames(tiny_model, tmp_path):
    src = tmp_path / "in.png"
    Image.fromarray(np.random.RandomState(0).randint(0, 256, (40, 40, 3)).astype(np.uint8)).save(src)
    args = ["zoom", src, "--out-dir", tmp_path / "frames", "--prototxt", tiny_model[0], "--weights", tiny_model[1],
            "--layer", "a/output", "--iters", "1", "--octaves", "1", "--jitter", "2", "--seed", "5", "-q"]
    r = run_cli(args + ["--frames", "2"])
    assert r.returncode == 0, r.stderr
    r = run_cli(args + ["--frames", "3"])
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in (tmp_path / "frames").glob("*.jpg")) == ["0000.jpg", "0001.jpg", "0002.jpg"]
    r = run_cli([a if a != "5" else "6" for a in args] + ["--frames", "4"])
    assert_one_line_error(r, "another run")


def test_tiled_dream_of_a_large_image(tiny_model):
    net = load_net(*tiny_model, end="a/output", fast=True)
    h, w, tile = 150, 220, 64
    img = np.float32(np.random.RandomState(0).randint(0, 256, (h, w, 3)))
    policy = TilePolicy(tile=tile, above_mp=0.01, margin=8)  # 0.01 MP: this image tiles
    assert policy.active(h, w)
    out = deepdream(net, img, iter_n=2, octave_n=2, end="a/output", jitter=4, rng=np.random.RandomState(0),
                    gradient=policy)
    assert out.shape == img.shape and out.dtype == np.float32
    assert out.min() >= 0 and out.max() <= 255
    changed = np.abs(out - img).sum(axis=2) > 0
    for y in range(0, h, tile):
        for x in range(0, w, tile):
            assert changed[y:y + tile, x:x + tile].mean() > 0.5, (y, x)


def test_tiled_gradient_equals_whole_gradient_with_enough_margin(tiny_model):
    """With margins wider than the receptive field, tiles give the whole image's gradient."""
    net = load_net(*tiny_model, end="norm1", fast=True)
    x = np.random.RandomState(1).uniform(-50, 50, (3, 70, 90)).astype(np.float32)
    src = input_blob(net.net)
    src.reshape(1, 3, 70, 90)
    src.data[0] = x
    whole = objective_gradient(net, L2("norm1")).copy()
    tiled = tile_gradient(net.net, x, L2("norm1"), tile=32, margin=8, origin=(5, 11))
    np.testing.assert_allclose(tiled, whole, rtol=1e-5, atol=1e-4)


def test_small_images_never_tile_and_keep_parity(tiny_model):
    net = load_net(*tiny_model, end="a/output", fast=True)
    img = np.float32(np.random.RandomState(0).randint(0, 256, (50, 60, 3)))
    policy = TilePolicy()  # default limit: far above 50x60
    a = deepdream(net, img, iter_n=2, octave_n=2, end="a/output", jitter=4, rng=np.random.RandomState(3),
                  gradient=policy)
    b = deepdream(net, img, iter_n=2, octave_n=2, end="a/output", jitter=4, rng=np.random.RandomState(3))
    assert np.array_equal(a, b)


def test_interrupted_dream_resumes_after_the_last_octave(tiny_model, tmp_path):
    """A long dream killed mid-way continues from its last octave and ends with the same bits."""
    net = load_net(*tiny_model, end="a/output", fast=True)
    img = np.float32(np.random.RandomState(0).randint(0, 256, (60, 70, 3)))
    kw = dict(iter_n=3, octave_n=3, end="a/output", jitter=4)
    want = deepdream(net, img, rng=np.random.RandomState(8), **kw)

    state = tmp_path / "state.npz"
    rng = np.random.RandomState(8)

    def die_in_last_octave(info):
        if info.octave == 2 and info.step == 1:
            raise _Stop

    with pytest.raises(_Stop):
        deepdream(net, img, rng=rng, callback=die_in_last_octave, checkpoint=FileCheckpoint(state, "k", rng), **kw)
    assert state.exists()

    rng2 = np.random.RandomState(12345)  # state comes from the checkpoint
    cp = FileCheckpoint(state, "k", rng2)
    got = deepdream(net, img, rng=rng2, checkpoint=cp, **kw)
    assert cp.resumed_from == 1
    assert np.array_equal(got, want)
    # another key (other settings) is ignored: a fresh run
    cp_other = FileCheckpoint(state, "other", np.random.RandomState(8))
    assert cp_other.load() is None


def test_cli_dream_leaves_no_state_file(tiny_model, tmp_path):
    r = run_cli(["dream", "-o", tmp_path / "o.png", "--prototxt", tiny_model[0], "--weights", tiny_model[1],
                 "--layer", "a/output", "--iters", "1", "--octaves", "2", "--seed", "1", "-q"])
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.png"]


def _norm1_address_small_then_big(cnet, reserve: bool) -> tuple[int, int]:
    if reserve:
        reserve_input(cnet, 120, 160)
    addrs = []
    for h, w in [(60, 80), (120, 160)]:  # octaves run smallest first
        input_blob(cnet).reshape(1, 3, h, w)
        cnet.forward(end="norm1")
        addrs.append(cnet.blobs["norm1"].data.ctypes.data)
    return addrs[0], addrs[1]


def test_whole_image_dreams_size_the_net_once_for_the_largest_octave(tiny_model):
    small, big = _norm1_address_small_then_big(load_net(*tiny_model, end="a/output", fast=True).net, reserve=False)
    assert small != big  # without it, growing to the next octave allocates again
    small, big = _norm1_address_small_then_big(load_net(*tiny_model, end="a/output", fast=True).net, reserve=True)
    assert small == big
    policy = TilePolicy(tile=64, above_mp=0.01)
    assert policy.runs_whole(50, 60) and not policy.runs_whole(150, 220)  # tiled runs are never sized up front
