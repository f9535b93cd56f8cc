"""The app's pipeline: file in, file out with the API's bits; one loaded net for many images; each file hashed once."""
from __future__ import annotations

import hashlib
import json
from collections import Counter

import numpy as np
import pytest
from PIL import Image

from deepdream_caffe import deepdream, load_net
from deepdream_caffe.app import (
    DreamConfig,
    DreamSession,
    NetSource,
    Progress,
    Reporter,
    ZoomConfig,
    dream_file,
    zoom_file,
)
from deepdream_caffe.dream.params import Ascent, Octaves
from deepdream_caffe.errors import DeepDreamError
from deepdream_caffe.io.hashing import sha1_file
from deepdream_caffe.io.image import encode_image, load_image, read_metadata
from zoo_helpers import dead_url, write_manifest

KW = dict(layer="a/output", iter_n=3, octave_n=2, jitter=4)


class Recorder(Reporter):
    """Keeps every event a run reports."""

    def __init__(self) -> None:
        self.notes, self.seeds, self.bars = [], [], []

    def note(self, message):
        self.notes.append(message)

    def seed_chosen(self, seed):
        self.seeds.append(seed)

    def progress(self, sizes, iter_n, label):
        bar = Bar(sizes, iter_n, label)
        self.bars.append(bar)
        return bar


class Bar(Progress):
    def __init__(self, sizes, iter_n, label):
        self.sizes, self.iter_n, self.label, self.steps, self.closed = sizes, iter_n, label, [], False

    def update(self, octave, step, extra=None):
        self.steps.append((octave, step))

    def close(self):
        self.closed = True


def _photo(path, h=40, w=48, seed=0):
    Image.fromarray(np.random.RandomState(seed).randint(0, 256, (h, w, 3)).astype(np.uint8)).save(path)
    return path


def _config(tiny_model, **kw):
    kw = {**KW, **kw}
    ascent = Ascent(**{k: kw.pop(k) for k in ("iter_n", "jitter") if k in kw})
    return DreamConfig(net=NetSource(prototxt=tiny_model[0], weights=tiny_model[1]), solver=ascent,
                       octaves=Octaves(kw.pop("octave_n")), **kw)


def test_dream_file_writes_the_api_bits_with_their_record_and_reports_progress(tiny_model, tmp_path):
    src = _photo(tmp_path / "in.png")
    rep = Recorder()
    result = dream_file(src, tmp_path / "out.png", _config(tiny_model, seed=123), reporter=rep)

    net = load_net(*tiny_model, end="a/output", fast=True)
    want = deepdream(net, load_image(src), iter_n=3, octave_n=2, end="a/output", jitter=4,
                     rng=np.random.RandomState(123))
    assert np.array_equal(result.image, want) and result.octave_n == 2
    assert (tmp_path / "out.png").read_bytes() == encode_image(want, "PNG", read_metadata(tmp_path / "out.png"))
    meta = read_metadata(tmp_path / "out.png")
    assert meta["seed"] == 123 and meta["command"] == "dream"
    assert meta["params"]["layer"] == "a/output" and meta["params"]["octaves"] == 2
    assert meta["input_sha1"] == sha1_file(src) and meta["weights_sha1"] == sha1_file(tiny_model[1])

    (bar,) = rep.bars
    assert bar.label == "dream" and bar.iter_n == 3 and len(bar.sizes) == 2
    assert bar.steps == [(o, s) for o in range(2) for s in range(3)] and bar.closed
    assert rep.seeds == [] and rep.notes == [f"wrote {tmp_path / 'out.png'}"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.png", "out.png"]  # no state file left


def test_without_a_seed_one_is_chosen_reported_and_recorded(tiny_model, tmp_path):
    rep = Recorder()
    dream_file(_photo(tmp_path / "in.png"), tmp_path / "o.jpg", _config(tiny_model, iter_n=1), reporter=rep)
    (seed,) = rep.seeds
    assert json.loads((tmp_path / "o.jpg.json").read_text())["seed"] == seed


def test_one_session_dreams_many_images_with_one_net(tiny_model, tmp_path):
    rep = Recorder()
    session = DreamSession(_config(tiny_model, octave_n=12, iter_n=1), rep)
    net = session.net
    small = np.float32(np.random.RandomState(1).randint(0, 256, (40, 40, 3)))
    wide = np.float32(np.random.RandomState(2).randint(0, 256, (48, 64, 3)))
    outs = [session.dream(img, np.random.RandomState(i)) for i, img in enumerate([small, wide, small])]
    assert session.net is net

    fresh = load_net(*tiny_model, end="a/output", fast=True)
    for i, (img, out) in enumerate(zip([small, wide, small], outs)):
        want = deepdream(fresh, img, iter_n=1, octave_n=out.octave_n, end="a/output", jitter=4,
                         rng=np.random.RandomState(i))
        assert np.array_equal(out.image, want), i
    assert [o.octave_n for o in outs] == [outs[0].octave_n, outs[1].octave_n, outs[0].octave_n]
    assert outs[0].octave_n < 12  # too many octaves for 40x40 at a/output: fewer, and said once per size
    assert len([n for n in rep.notes if n.startswith("using")]) == 2

    # Files through the same session: the same net again.
    for name in ("a.png", "b.png"):
        dream_file(_photo(tmp_path / f"in-{name}"), tmp_path / name, session=session)
    assert session.net is net and (tmp_path / "a.png").exists() and (tmp_path / "b.png").exists()
    with pytest.raises(DeepDreamError, match="own config"):
        dream_file(tmp_path / "in-a.png", tmp_path / "c.png", _config(tiny_model), session=session)


def test_zoom_file_writes_frames_and_resumes(tiny_model, tmp_path):
    cfg = _config(tiny_model, iter_n=1, octave_n=1, jitter=2, seed=5)
    src = _photo(tmp_path / "in.png", 32, 32)
    assert zoom_file(src, tmp_path / "z", cfg, ZoomConfig(frames=2)) == 0
    first = {p.name: p.read_bytes() for p in (tmp_path / "z").glob("*.jpg")}
    assert not (tmp_path / "z" / ".zoom-state.npz").exists()  # finished: no state left (issue 12)
    # Extending a finished sequence dreams it again from frame 0 (no state), keeping the files it has.
    assert zoom_file(src, tmp_path / "z", cfg, ZoomConfig(frames=3)) == 0
    assert sorted(p.name for p in (tmp_path / "z").glob("*.jpg")) == ["0000.jpg", "0001.jpg", "0002.jpg"]
    assert all((tmp_path / "z" / name).read_bytes() == data for name, data in first.items())
    assert json.loads((tmp_path / "z" / "zoom.json").read_text())["params"]["seed"] == 5


class _Sha1Log:
    """Every sha1 the process finishes (hashlib's own, wrapped), to count how often each file is hashed."""

    def __init__(self, monkeypatch):
        self.digests = []
        real = hashlib.sha1
        log = self.digests

        class Sha1:
            def __init__(self, data=b"", **kw):
                self._h = real(data, **kw)

            def update(self, data):
                self._h.update(data)

            def hexdigest(self):
                d = self._h.hexdigest()
                log.append(d)
                return d

        monkeypatch.setattr(hashlib, "sha1", Sha1)

    def count(self, data: bytes) -> int:
        return Counter(self.digests)[hashlib.new("sha1", data).hexdigest()]


def test_input_and_weights_are_hashed_once_each(tiny_model, tmp_path, monkeypatch):
    src = _photo(tmp_path / "in.png")
    log = _Sha1Log(monkeypatch)
    dream_file(src, tmp_path / "o.png", _config(tiny_model, iter_n=1, seed=1))
    assert log.count(src.read_bytes()) == 1
    assert log.count(tiny_model[1].read_bytes()) == 1


def test_a_zoo_model_is_verified_once_and_not_hashed_again_to_load(tiny_model, zoo_env, tmp_path, monkeypatch):
    proto, weights = (p.read_bytes() for p in tiny_model)
    write_manifest(zoo_env.models, "rooted", prototxt_url=dead_url("rooted/deploy.prototxt"),
                   weights_url=dead_url("rooted/rooted.caffemodel"),
                   prototxt_sha1=hashlib.sha1(proto).hexdigest(), weights_sha1=hashlib.sha1(weights).hexdigest())
    root = zoo_env.caffe_root / "models" / "rooted"
    root.mkdir()
    (root / "deploy.prototxt").write_bytes(proto)
    (root / "rooted.caffemodel").write_bytes(weights)
    src = _photo(tmp_path / "in.png")
    cfg = DreamConfig(net=NetSource(model="rooted", models_dirs=(zoo_env.models,)), solver=Ascent(iter_n=1),
                      octaves=Octaves(1), seed=1)
    log = _Sha1Log(monkeypatch)
    dream_file(src, tmp_path / "o.png", cfg)
    assert log.count(weights) == 1 and log.count(src.read_bytes()) == 1
    meta = read_metadata(tmp_path / "o.png")
    assert meta["model"] == "rooted" and meta["params"]["layer"] == "a/output"  # the manifest's default layer
    assert meta["weights_sha1"] == hashlib.sha1(weights).hexdigest()


def test_a_too_small_image_is_refused_before_the_net_loads(tiny_model, tmp_path):
    session = DreamSession(_config(tiny_model))
    with pytest.raises(DeepDreamError, match="too small for layer 'a/output'"):
        dream_file(_photo(tmp_path / "s.png", 1, 1), tmp_path / "o.png", session=session)
    assert session._net is None and not (tmp_path / "o.png").exists()


@pytest.mark.requires_caffe
def test_load_net_takes_a_zoo_name_with_the_models_own_mean(open_nsfw_model, tmp_path):
    """`load_net("open_nsfw", end=...)` is the net the model's files and its mean and channel order give."""
    m = open_nsfw_model
    by_name = load_net("open_nsfw", end="eltwise_stage1_block3", fast=True)
    by_files = load_net(m.prototxt, m.weights, mean=m.mean, channel_swap=m.channel_swap,
                        end="eltwise_stage1_block3", fast=True)
    assert tuple(m.mean) == (104.0, 117.0, 123.0)  # not GoogLeNet's 104/116/122
    img = np.float32(np.random.RandomState(0).randint(0, 256, (96, 128, 3)))
    a = deepdream(by_name, img, iter_n=2, octave_n=2, rng=np.random.RandomState(1))
    b = deepdream(by_files, img, iter_n=2, octave_n=2, rng=np.random.RandomState(1))
    assert np.array_equal(a, b)
    wrong_mean = load_net(m.prototxt, m.weights, end="eltwise_stage1_block3", fast=True)  # your files: GoogLeNet's
    assert not np.array_equal(a, deepdream(wrong_mean, img, iter_n=2, octave_n=2, rng=np.random.RandomState(1)))
