"""Is what arrived what was asked for: the structural prototxt and caffemodel checks, on real and crafted files."""
from __future__ import annotations

import gzip
import struct

import pytest

from deepdream_caffe.zoo.content import ContentError, check_caffemodel, check_prototxt
from zoo_helpers import crafted_caffemodel, pb_field, varint


def test_every_net_in_the_caffe_tree_passes_and_every_solver_fails(googlenet_prototxt):
    root = googlenet_prototxt.parents[2]  # <root>/models/bvlc_googlenet/deploy.prototxt
    files = sorted(root.rglob("*.prototxt")) if (root / "examples").is_dir() else []
    if not files:
        pytest.skip("GoogLeNet's prototxt was fetched alone: no Caffe source tree here")
    nets, solvers = [], []
    for f in files:
        try:
            check_prototxt(f)
            nets.append(f)
        except ContentError as e:
            solvers.append((f, str(e)))
    assert len(nets) >= 20
    # What fails is exactly the solvers (SolverParameter files, not nets).
    assert all("solver" in f.name for f, _ in solvers), [s for s in solvers if "solver" not in s[0].name]


def test_real_caffemodels_pass_and_every_cut_fails(tmp_path, tiny_model_bytes, googlenet_model_bytes):
    proto, weights = tiny_model_bytes
    for data in (weights, googlenet_model_bytes[1]):
        (tmp_path / "w").write_bytes(data)
        check_caffemodel(tmp_path / "w")
    # A truncated caffemodel is never taken for one, wherever it is cut.
    for cut in sorted({1, 2, 7, 100, len(weights) // 3, len(weights) // 2, len(weights) - 100, len(weights) - 1}
                      | set(range(0, len(weights), 97))):
        (tmp_path / "cut").write_bytes(weights[:cut])
        with pytest.raises(ContentError):
            check_caffemodel(tmp_path / "cut")
    (tmp_path / "p").write_bytes(proto)
    check_prototxt(tmp_path / "p")


def test_a_prototxt_cut_inside_a_layer_fails(tmp_path, tiny_model_bytes):
    proto = tiny_model_bytes[0]
    depth, cuts = 0, []
    for i, c in enumerate(proto):
        depth += {ord("{"): 1, ord("}"): -1}.get(c, 0)
        if depth > 0 and i % 7 == 0:
            cuts.append(i)
    assert len(cuts) > 50
    for cut in cuts:
        (tmp_path / "p").write_bytes(proto[:cut])
        with pytest.raises(ContentError):
            check_prototxt(tmp_path / "p")


@pytest.mark.parametrize("data, says", [
    (b"<!DOCTYPE html><html><body>gone</body></html>", "it is an HTML page"),
    (gzip.compress(b'name: "x"\nlayer { name: "a" type: "ReLU" }\n'), "it is gzip-compressed data"),
    (b'{"message": "Not Found"}', "it is JSON"),
    (b"", "it is empty"),
    (b'name: "x"\n', "defines no layers"),
    (b'layer { name: "a" bottom: "data" }', "layer 1 has no type"),
    (b'net: "train_val.prototxt"\nbase_lr: 0.01\n', "'net' on line 1 is not a field of a net definition"),
    (b'layer { name: "a" type: "ReLU" ', "missing at the end"),
    (b"layer { name: \xff }", "not UTF-8"),
    (b"layer " + b"{ a " * 100 + b"}" * 100, "nested more than 64"),
])
def test_what_is_not_a_prototxt(tmp_path, data, says):
    (tmp_path / "p").write_bytes(data)
    with pytest.raises(ContentError) as e:
        check_prototxt(tmp_path / "p")
    assert says in str(e.value) and str(e.value).startswith("not a prototxt (")


def _v1_net(v0: bool = False) -> bytes:
    """An old-format (V1, 'layers') net, optionally with its blobs inside a V0 layer, legacy 4-D shapes."""
    blob = pb_field(1, 2, wire=0) + pb_field(2, 1, wire=0) + pb_field(3, 1, wire=0) + pb_field(4, 1, wire=0)
    blob += pb_field(5, struct.pack("<2f", 1, 2))
    if v0:
        layer = pb_field(1, pb_field(1, b"old") + pb_field(50, blob))
    else:
        layer = pb_field(4, b"conv") + pb_field(5, 4, wire=0) + pb_field(6, blob)
    return pb_field(1, b"v1") + pb_field(2, layer)


@pytest.mark.parametrize("data", [crafted_caffemodel([("c", [([2, 3], 6), ([2], 2)])]), _v1_net(), _v1_net(v0=True)])
def test_old_and_crafted_formats_that_caffe_reads_pass(tmp_path, data):
    (tmp_path / "w").write_bytes(data)
    check_caffemodel(tmp_path / "w")


@pytest.mark.parametrize("data, says", [
    (crafted_caffemodel([("c", [([2, 3], 5)])]), "has 5 values for shape [2, 3] (6 expected)"),
    (crafted_caffemodel([("c", [])]), "no layer holds weights"),
    (pb_field(1, b"net only"), "it holds no layers"),
    (pb_field(100, pb_field(7, pb_field(5, struct.pack("<f", 1)))), "holds weights but has no name"),
    (pb_field(100, pb_field(1, b"c") + pb_field(7, pb_field(5, b"\0\0\0"))), "partial value"),
    (pb_field(9, b"x"), "field 9 (wire type 2) is not one of a net's"),
    (varint(100 << 3 | 2) + varint(1 << 40), "past its end"),
    (b"\x08" + b"\xff" * 11, "malformed number"),
    (b"<html>", "it is an HTML page"),
])
def test_what_is_not_a_caffemodel(tmp_path, data, says):
    (tmp_path / "w").write_bytes(data)
    with pytest.raises(ContentError) as e:
        check_caffemodel(tmp_path / "w")
    assert says in str(e.value) and str(e.value).startswith("not a caffemodel (")


def test_the_download_tests_stand_ins_are_what_they_stand_for(tmp_path, tiny_bytes):
    """The Caffe-free files the download tests serve pass the same checks real ones do."""
    proto, weights = tiny_bytes
    (tmp_path / "p").write_bytes(proto)
    (tmp_path / "w").write_bytes(weights)
    check_prototxt(tmp_path / "p")
    check_caffemodel(tmp_path / "w")
