"""Issues 12 and 23: Caffe checks the net itself (in a child process), and what that protects holds.

The referee's answers (net/referee.py) are measured against a plain
caffe.Net reshaped to each size: same output shapes and learnable blob
shapes, and a refusal wherever Caffe aborts (run in forked children, see
forkrun.py). A layer type Caffe builds is not refused for want of a rule.
Classifier layers are refused with the size that works, Python layers only
run when allowed, weights are copied exactly as Caffe's copy_from would,
``layers`` works from a cached prototxt without weights or network, and
no temp file is left behind.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from google.protobuf import text_format
from PIL import Image

from abuse_nets import TINYRES_PROTOTXT
from cli_util import assert_one_line_error, run_cli
from conftest import make_weights
from deepdream_caffe import deepdream, load_net
from deepdream_caffe.app import NetSource, layer_table
from deepdream_caffe.dream.sizing import fit_octaves
from deepdream_caffe.errors import DeepDreamError
from deepdream_caffe.net import loading
from deepdream_caffe.net.caffe_env import import_caffe
from deepdream_caffe.net.prototxt import caffe_pb2, patched_copy, read_prototxt
from deepdream_caffe.net.referee import TooSmall, build, size_problems
from forkrun import run_cases
from zoo_helpers import dead_url, serve_model, server, sha1, write_manifest, zoo_env  # noqa: F401 - fixtures

SIZES = [(1, 1), (5, 5), (9, 9), (13, 13), (15, 15), (17, 17), (23, 23), (31, 31), (7, 30), (30, 7), (64, 48)]


def read_prototxt_text(text: str):
    return text_format.Parse(text, caffe_pb2().NetParameter())


def _cut(proto: Path, end, out: Path) -> Path:
    out.write_text(text_format.MessageToString(patched_copy(read_prototxt(proto), end=end)))
    return out


@pytest.fixture(scope="module")
def tinyres(tmp_path_factory):
    d = tmp_path_factory.mktemp("tinyres")
    p = d / "tinyres.prototxt"
    p.write_text(TINYRES_PROTOTXT)
    return p, make_weights(p, d / "tinyres.caffemodel", seed=2)


def test_the_referee_answers_with_caffes_own_shapes_and_refusals(tiny_model, tinyres, googlenet_prototxt, tmp_path):
    """Same shapes where both accept; a refusal wherever Caffe aborts; refusals Caffe lets pass leave it an empty blob."""

    valid = tmp_path / "valid.prototxt"  # an unpadded 5x5 kernel: negative sizes below 5 px, which Caffe dies on
    valid.write_text(tiny_model[0].read_text().replace("kernel_size: 3 pad: 1 stride: 1", "kernel_size: 5 stride: 1"))
    nets = {
        "tiny": (_cut(tiny_model[0], None, tmp_path / "tiny.prototxt"), SIZES[::2]),
        "tiny-valid": (_cut(valid, "a/output", tmp_path / "valid-cut.prototxt"), [(1, 1), (3, 3), (3, 9), (5, 5)]),
        "tinyres-conv": (_cut(tinyres[0], "power", tmp_path / "tinyres.prototxt"), SIZES[::2]),
        "googlenet-5b": (_cut(googlenet_prototxt, "inception_5b/output", tmp_path / "g5b.prototxt"), SIZES),
        "googlenet": (_cut(googlenet_prototxt, None, tmp_path / "g.prototxt"), [(224, 224), (225, 224), (64, 48)]),
    }
    cases = [{"id": f"{name}@{h}x{w}", "kind": "caffe", "prototxt": str(p), "sizes": [[h, w]]}
             for name, (p, sizes) in nets.items() for h, w in sizes]
    results = run_cases(cases, tmp_path / "runs")
    checked = aborted = 0
    for name, (p, sizes) in nets.items():
        param = read_prototxt(p)
        built, problems = build(param), size_problems(param, None, sizes)
        for h, w in sizes:
            res = results[f"{name}@{h}x{w}"]
            problem = problems[(h, w)]
            lines = [json.loads(ln) for ln in res["stdout"].splitlines() if ln.startswith("{")]
            ours = {layer.name: [list(s) for s in layer.params] for layer in built.layers if layer.params}
            assert ours == lines[0]["params"], name
            if res["rc"] != 0:
                assert res["rc"] < 0 and problem is not None, (name, h, w, res["rc"], res["stderr"][-300:])
                aborted += 1
                continue
            blobs = lines[1]["blobs"]
            if problem is not None:
                # stricter than Caffe only where Caffe would carry on with an empty blob
                assert isinstance(problem, TooSmall) and any(0 in s for s in blobs.values()), (name, h, w, problem)
                continue
            assert {k: list(v) for k, v in built.shapes_at((h, w)).items()} == blobs, (name, h, w)
            checked += 1
    assert checked >= 10 and aborted >= 3  # both sides of the line were really visited


TILE_NET = """name: "tile"
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 3 dim: 24 dim: 24 } } }
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
  convolution_param { num_output: 4 kernel_size: 3 pad: 1 weight_filler { type: "gaussian" std: 0.1 } } }
layer { name: "tile" type: "Tile" bottom: "conv1" top: "tile" tile_param { axis: 1 tiles: 2 } }
layer { name: "conv2" type: "Convolution" bottom: "tile" top: "conv2"
  convolution_param { num_output: 6 kernel_size: 3 pad: 1 weight_filler { type: "gaussian" std: 0.1 } } }
layer { name: "relu2" type: "ReLU" bottom: "conv2" top: "conv2" }
"""


def test_a_layer_type_caffe_builds_is_not_refused_for_want_of_a_rule(tmp_path):
    """Issue 23: Input -> Convolution -> Tile -> Convolution -> ReLU was refused ("type 'Tile' has no check")."""
    proto = tmp_path / "tile.prototxt"
    proto.write_text(TILE_NET)
    weights = make_weights(proto, tmp_path / "tile.caffemodel")
    r = run_cli(["layers", "--prototxt", proto, "--size", "40x30"])
    assert r.returncode == 0 and not r.stderr.strip(), r.stderr
    rows = {ln.split()[0]: ln.split()[1:] for ln in r.stdout.splitlines()[1:]}
    assert rows["tile"] == ["Tile", "yes", "8x30x40"] and rows["relu2"] == ["ReLU", "yes", "6x30x40"]
    img = tmp_path / "in.png"
    Image.fromarray(np.random.RandomState(0).randint(0, 256, (30, 40, 3)).astype(np.uint8)).save(img)
    r = run_cli(["dream", img, "-o", tmp_path / "o.png", "--prototxt", proto, "--weights", weights,
                 "--layer", "relu2", "--iters", "2", "--octaves", "2", "--seed", "0", "-q"])
    assert r.returncode == 0 and not r.stderr.strip(), r.stderr
    out = np.asarray(Image.open(tmp_path / "o.png"))
    assert out.shape == (30, 40, 3) and not np.array_equal(out, np.asarray(Image.open(img)))


def test_classifier_layers_are_refused_with_the_size_that_works(googlenet_prototxt, tiny_model):
    g = read_prototxt(googlenet_prototxt)
    for layer in ("loss3/classifier", "prob"):
        with pytest.raises(DeepDreamError) as e:
            fit_octaves(g, layer, 575, 1024, 4, 1.4)
        msg = str(e.value)
        assert "classifier layer (fixed-size)" in msg and "224x224" in msg and "deepdream-caffe visualize" in msg, msg
        assert "\n" not in msg
        # at the net's own size it works, with the one octave that has that size
        n, note = fit_octaves(g, layer, 224, 224, 4, 1.4)
        assert n == 1 and "using 1 octave " in note
    assert fit_octaves(g, "pool5/drop_7x7_s1", 575, 1024, 4, 1.4)[0] == 3  # 7x7 pooling: not the 4th octave
    # Caffe's own check makes a layer fixed-size too: an explicit Reshape holds one count only
    res = read_prototxt_text(TINYRES_PROTOTXT.replace("dim: 0 dim: 5 dim: -1 dim: 1", "dim: 1 dim: 5 dim: 144 dim: 1"))
    with pytest.raises(DeepDreamError, match=r"'resh' is a classifier layer \(fixed-size\).*24x24 input, not 32x32"):
        fit_octaves(res, "resh", 32, 32, 1, 1.4)
    assert fit_octaves(res, "resh", 24, 24, 1, 1.4) == (1, None)


def test_layers_marks_what_can_be_dreamed_at_the_size(googlenet_prototxt):
    r = run_cli(["layers", "--prototxt", googlenet_prototxt])
    assert r.returncode == 0 and not r.stderr.strip(), r.stderr
    rows = {ln.split()[0]: ln.split() for ln in r.stdout.splitlines()[1:] if not ln.startswith("fixed-size:")}
    assert rows["inception_4c/output"][2:] == ["yes", "512x36x64", "(default", "--layer)"]
    assert rows["pool5/drop_7x7_s1"][2] == "yes"
    assert rows["loss3/classifier"][2:] == ["fixed-size", "?"] and rows["prob"][2] == "fixed-size"
    assert rows["data"][2] == "input"
    note = r.stdout.splitlines()[-1]
    assert note.startswith("fixed-size: 'loss3/classifier'") and "224x224" in note and "visualize" in note
    rows, notes = layer_table(NetSource(prototxt=googlenet_prototxt), 224, 224)
    assert {r.dream for r in rows} == {"yes", "input"} and not notes
    assert rows[-1].shapes == ((1000,),)


def test_the_dream_refuses_a_classifier_layer_in_one_line(googlenet_model, tmp_path):
    img = tmp_path / "in.png"
    Image.fromarray(np.zeros((575 // 4, 1024 // 4, 3), np.uint8)).save(img)
    r = run_cli(["dream", img, "-o", tmp_path / "o.png", "--prototxt", googlenet_model[0], "--weights",
                 googlenet_model[1], "--layer", "loss3/classifier"])
    assert_one_line_error(r, "classifier layer (fixed-size)", "224x224", "deepdream-caffe visualize")
    assert not (tmp_path / "o.png").exists()


PYLAYER = '''
import os, pathlib
pathlib.Path(os.environ["PYLAYER_MARKER"]).write_text("imported")
import caffe

class Pass(caffe.Layer):
    def setup(self, bottom, top):
        pass
    def reshape(self, bottom, top):
        top[0].reshape(*bottom[0].data.shape)
    def forward(self, bottom, top):
        top[0].data[...] = bottom[0].data
    def backward(self, top, propagate_down, bottom):
        bottom[0].diff[...] = top[0].diff
'''


def test_python_layers_run_only_when_allowed(tiny_model, tmp_path, monkeypatch):
    (tmp_path / "pylayer_marker.py").write_text(PYLAYER)
    proto = tmp_path / "py.prototxt"
    proto.write_text(tiny_model[0].read_text().replace(
        'layer { name: "pool1" type: "Pooling" bottom: "norm1"',
        'layer { name: "py" type: "Python" bottom: "norm1" top: "pynorm" '
        'python_param { module: "pylayer_marker" layer: "Pass" } }\n'
        'layer { name: "pool1" type: "Pooling" bottom: "pynorm"'))
    marker = tmp_path / "marker"
    img = tmp_path / "in.png"
    Image.fromarray(np.random.RandomState(0).randint(0, 256, (32, 32, 3)).astype(np.uint8)).save(img)
    env = {"PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]),
           "PYLAYER_MARKER": str(marker)}
    monkeypatch.setenv("PYLAYER_MARKER", str(marker))
    monkeypatch.syspath_prepend(str(tmp_path))  # where the module could be imported from, here too
    args = ["dream", img, "-o", tmp_path / "o.png", "--prototxt", proto, "--weights", tiny_model[1],
            "--iters", "1", "--octaves", "1", "--seed", "0", "-q", "--layer", "a/output"]
    assert_one_line_error(run_cli(args, env=env), "'py'", "Python layer", "--allow-python-layers")
    with pytest.raises(DeepDreamError, match="Python layer.*allow_python_layers=True"):
        load_net(proto, tiny_model[1], end="a/output", fast=True)
    assert not marker.exists() and not (tmp_path / "o.png").exists()
    # a Python layer after the dream layer is never built, so nothing runs and nothing is refused
    load_net(proto, tiny_model[1], end="norm1", fast=True)
    assert not marker.exists()
    # `layers` reads the prototxt only: it lists the layer and what needs the flag
    rows, notes = layer_table(NetSource(prototxt=proto), 32, 32)
    assert [r.dream for r in rows if r.name in ("norm1", "py", "a/output")] == ["yes", "broken", "broken"]
    assert notes[0].layer == "py" and not marker.exists()
    rows, _ = layer_table(NetSource(prototxt=proto, allow_python_layers=True), 32, 32)
    assert [r.dream for r in rows if r.name in ("norm1", "py", "a/output")] == ["yes", "unchecked", "unchecked"]
    r = run_cli(args + ["--allow-python-layers"], env=env)
    assert r.returncode == 0, r.stderr
    assert marker.read_text() == "imported" and (tmp_path / "o.png").exists()


def test_weights_are_copied_exactly_as_caffes_copy_from(tiny_model, googlenet_model, tinyres):
    caffe = import_caffe()
    for proto, weights in (tiny_model, googlenet_model, tinyres):
        ours = load_net(proto, weights).net
        theirs = caffe.Net(str(proto), str(weights), caffe.TEST)
        assert list(ours.params) == list(theirs.params)
        for name in theirs.params:
            for a, b in zip(ours.params[name], theirs.params[name]):
                assert a.data.tobytes() == b.data.tobytes(), name


def test_a_two_input_scale_gets_the_param_specs_caffe_expects(tmp_path):
    """The fast net's surgery counts a layer's learnable blobs as Caffe does (one too many aborts)."""

    text = """name: "scale2"
input: "data"
input_shape { dim: 1 dim: 3 dim: 16 dim: 16 }
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
  convolution_param { num_output: 4 kernel_size: 3 weight_filler { type: "gaussian" std: 0.1 } } }
layer { name: "gain" type: "Convolution" bottom: "data" top: "gain"
  convolution_param { num_output: 4 kernel_size: 3 weight_filler { type: "gaussian" std: 0.1 } } }
layer { name: "scale1" type: "Scale" bottom: "conv1" bottom: "gain" top: "scaled" scale_param { axis: 0 bias_term: true } }
"""
    proto = tmp_path / "scale2.prototxt"
    proto.write_text(text)
    net = load_net(proto, make_weights(proto, tmp_path / "w.caffemodel"), end="scale1", fast=True)
    assert len(net.net.params["scale1"]) == 1  # the bias only: the scale comes from the second input
    out = deepdream(net, np.random.RandomState(1).uniform(0, 255, (16, 16, 3)).astype(np.float32), iter_n=1,
                    octave_n=1, end="scale1", rng=np.random.RandomState(0))
    assert out.shape == (16, 16, 3) and np.isfinite(out).all()


def test_layers_needs_only_a_cached_prototxt(zoo_env, tiny_model):  # noqa: F811 - the fixture
    data = tiny_model[0].read_bytes()
    write_manifest(zoo_env.models, "offline_net", prototxt_url=dead_url("deploy.prototxt"),
                   weights_url=dead_url("offline.caffemodel"), prototxt_sha1=sha1(data), weights_sha1="0" * 40)
    cached = zoo_env.model_dir("offline_net")
    cached.mkdir(parents=True)
    (cached / "deploy.prototxt").write_bytes(data)
    r = run_cli(["layers", "--model", "offline_net", "--models-dir", zoo_env.models, "--size", "32x32"])
    assert r.returncode == 0, r.stderr
    assert any(ln.startswith("a/output ") and ln.split()[2] == "yes" for ln in r.stdout.splitlines())
    assert zoo_env.cached("offline_net") == ["deploy.prototxt"]  # no weights fetched, nothing else written


def test_layers_fetches_the_prototxt_alone_when_nothing_is_cached(zoo_env, server, tiny_model):  # noqa: F811
    proto, weights = (p.read_bytes() for p in tiny_model)
    serve_model(server, zoo_env.models, "fresh_net", proto, weights)
    r = run_cli(["layers", "--model", "fresh_net", "--models-dir", zoo_env.models, "--size", "32x32"])
    assert r.returncode == 0, r.stderr
    assert any(ln.startswith("a/output ") and ln.split()[2] == "yes" for ln in r.stdout.splitlines())
    assert zoo_env.cached("fresh_net") == ["deploy.prototxt"]
    assert [r.path for r in server.log] == ["fresh_net/deploy.prototxt"]  # the weights were never asked for


def test_the_prototxt_never_lands_in_the_temp_folder(tiny_model, tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(loading.tempfile, "tempdir", None)
    with loading._prototxt_path("name: 'x'") as p:
        assert p.startswith("/proc/self/fd/") and Path(p).read_text() == "name: 'x'"
        assert list(tmp_path.iterdir()) == []  # in memory: even a Caffe abort could leave nothing
    loading.load_net(*tiny_model)
    assert list(tmp_path.iterdir()) == []
    # where there is no memfd, a temp file that is gone afterwards, however the block ends
    monkeypatch.delattr(loading.os, "memfd_create")
    with loading._prototxt_path("name: 'y'") as p:
        assert Path(p).parent == tmp_path and Path(p).name.startswith("deepdream-")
    with pytest.raises(RuntimeError):
        with loading._prototxt_path("name: 'z'"):
            raise RuntimeError("Caffe refused it")
    assert list(tmp_path.iterdir()) == []


def test_a_nan_pooling_window_stops_before_the_backward_pass(tiny_model, tmp_path):
    """An LRN with a negative alpha makes NaN from a clean image; Caffe's max pooling backward would
    then add to element -1 of its buffer (heap corruption). The dream stops with one line instead."""
    proto = tmp_path / "nan.prototxt"
    proto.write_text(tiny_model[0].read_text().replace("alpha: 0.0001", "alpha: -1"))
    img = tmp_path / "in.png"
    Image.fromarray(np.random.RandomState(0).randint(0, 256, (32, 32, 3)).astype(np.uint8)).save(img)
    r = run_cli(["dream", img, "-o", tmp_path / "o.png", "--prototxt", proto, "--weights", tiny_model[1],
                 "--layer", "a/output", "--iters", "1", "--octaves", "1", "--seed", "0", "-q"])
    assert_one_line_error(r, "'pool1'", "NaN", "backward")
    assert not (tmp_path / "o.png").exists()
