"""A run's key, its state file and the record written with every output."""
from __future__ import annotations

import numpy as np

from deepdream_caffe.app.netspec import NetSpec
from deepdream_caffe.app.record import output_metadata
from deepdream_caffe.app.run import FileCheckpoint, run_key, state_path
from deepdream_caffe.io.hashing import sha1_file


def test_output_metadata_uses_a_known_input_hash_and_hashes_otherwise(tmp_path):
    src = tmp_path / "in.png"
    src.write_bytes(b"not really a png")
    proto = tmp_path / "deploy.prototxt"
    proto.write_text("name: 'x'\n")
    spec = NetSpec(prototxt=proto, weights=None, weights_sha1=None, mean=(0.0, 0.0, 0.0), channel_swap=(2, 1, 0),
                   default_layer="a", model=None)
    args = ("dream", {}, 1, spec, "cpu")
    assert output_metadata(*args, src)["input_sha1"] == sha1_file(src)
    assert output_metadata(*args, src, "0" * 40)["input_sha1"] == "0" * 40
    meta = output_metadata(*args, None)
    assert meta["input"] == "skimage.data.astronaut" and meta["input_sha1"] is None
    assert meta["prototxt_sha1"] == sha1_file(proto) and meta["seed"] == 1 and meta["command"] == "dream"


def test_checkpoint_restores_data_and_generator_and_ignores_other_keys(tmp_path):
    path = state_path(tmp_path / "out.png")
    assert path.name == ".out.png.dream-state.npz"
    rng = np.random.RandomState(5)
    rng.randint(0, 10, 7)
    data = np.arange(6, dtype=np.float32).reshape(2, 3)
    FileCheckpoint(path, "k1", rng).save(2, data)
    want = rng.randint(0, 1000, 5)

    fresh = np.random.RandomState(0)
    cp = FileCheckpoint(path, "k1", fresh)
    octave, got = cp.load()
    assert (octave, cp.resumed_from) == (2, 2) and np.array_equal(got, data)
    assert np.array_equal(fresh.randint(0, 1000, 5), want)  # the generator continues where it was
    assert FileCheckpoint(path, "k2", np.random.RandomState(0)).load() is None
    path.write_bytes(b"garbage")
    assert FileCheckpoint(path, "k1", np.random.RandomState(0)).load() is None
    cp.remove()
    cp.remove()  # twice is fine
    assert not path.exists()
    assert run_key({"a": 1, "b": 2}, 1, "i") == run_key({"b": 2, "a": 1}, 1, "i") != run_key({"a": 1, "b": 3}, 1, "i")
    assert run_key({"a": 1}, 1, "i") != run_key({"a": 1}, 2, "i") != run_key({"a": 1}, 2, "j")
