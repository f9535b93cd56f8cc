"""Model manifests: the built-in ones, user folders and their order, and bad manifests."""
from __future__ import annotations

import pytest

from deepdream_caffe.errors import DeepDreamError
from deepdream_caffe.io.hashing import sha1_file
from deepdream_caffe.zoo import builtin_models_dir, find_manifest, list_manifests, load_manifest, resolve_model
from zoo_helpers import write_manifest

GOOD = dict(prototxt_url="http://127.0.0.1:9/x/deploy.prototxt", weights_url="http://127.0.0.1:9/x/net.caffemodel")


def test_builtin_manifests_hold_the_published_facts():
    ms = {m.name: m for m in list_manifests([])[0] if m.path.parent.parent == builtin_models_dir()}
    assert {"bvlc_googlenet", "googlenet_places205", "googlenet_places365", "bvlc_reference_caffenet",
            "vgg16"} <= set(ms)

    g = ms["bvlc_googlenet"]
    assert g.weights.url == "http://dl.caffe.berkeleyvision.org/bvlc_googlenet.caffemodel"
    assert g.weights.sha1 == "405fc5acd08a3bb12de8ee5e23a96bec22f08204"
    assert "/BVLC/caffe/99bd99795dcdf0b1d3086a8d67ab1782a8a08383/" in g.prototxt.url  # pinned commit
    assert g.prototxt.filename == "deploy.prototxt" and g.weights.filename == "bvlc_googlenet.caffemodel"
    assert g.mean == (104.0, 116.0, 122.0) and g.channel_swap == (2, 1, 0)
    assert g.default_layer == "inception_4c/output"

    p205 = ms["googlenet_places205"]
    assert p205.prototxt.url == p205.weights.url == "http://places.csail.mit.edu/model/googlenet_places205.tar.gz"
    assert p205.prototxt.filename == "deploy_places205.protxt"  # misspelt as published
    assert p205.weights.filename == "googlelet_places205_train_iter_2400000.caffemodel"
    assert p205.mean == (105.417, 113.753, 116.047)
    assert p205.weights.sha1 is None  # trusted on first use

    p365 = ms["googlenet_places365"]
    assert p365.weights.url == "http://places2.csail.mit.edu/models_places365/googlenet_places365.caffemodel"
    assert p365.prototxt.filename == "deploy_googlenet_places365.prototxt"
    assert p365.mean == (104.051, 112.514, 116.676)

    assert ms["bvlc_reference_caffenet"].weights.sha1 == "4c8d77deb20ea792f84eb5e6d0a11ca0a8660a46"
    for m in ms.values():
        assert m.description and "\n" not in m.description and m.license
        # Each model folder's readme says what the manifest does about the net's default layer.
        assert f"**Default layer:** `{m.default_layer}`" in (m.path.parent / "readme.md").read_text()


def test_builtin_googlenet_prototxt_sha1_matches_the_caffe_tree(googlenet_prototxt):
    """The pinned deploy.prototxt hash is the one of the same commit's file in the Caffe source tree."""
    assert sha1_file(googlenet_prototxt) == find_manifest("bvlc_googlenet").prototxt.sha1


def test_extra_folders_come_first_and_in_order(zoo_env, tmp_path, monkeypatch):
    env_dir, env_dir2 = tmp_path / "env1", tmp_path / "env2"
    write_manifest(zoo_env.models, "shadow", description="from --models-dir", **GOOD)
    write_manifest(env_dir, "shadow", description="from the environment", **GOOD)
    write_manifest(env_dir2, "only_env", description="second env folder", **GOOD)
    write_manifest(env_dir, "bvlc_googlenet", description="my own googlenet", **GOOD)
    monkeypatch.setenv("DEEPDREAM_CAFFE_MODELS", f"{env_dir}:{env_dir2}")

    assert find_manifest("shadow", [zoo_env.models]).description == "from --models-dir"
    assert find_manifest("shadow").description == "from the environment"
    assert find_manifest("only_env").description == "second env folder"
    assert find_manifest("bvlc_googlenet").description == "my own googlenet"  # users can shadow built-ins
    names = [m.name for m in list_manifests([zoo_env.models])[0]]
    assert {"shadow", "only_env", "bvlc_googlenet", "vgg16"} <= set(names)


def test_unknown_model_lists_the_known_ones(zoo_env):
    write_manifest(zoo_env.models, "mine", **GOOD)
    with pytest.raises(DeepDreamError) as e:
        resolve_model("no_such_net", models_dirs=[zoo_env.models])
    msg = str(e.value)
    assert "unknown model 'no_such_net'" in msg and "bvlc_googlenet" in msg and "mine" in msg
    assert "\n" not in msg


@pytest.mark.parametrize(
    "fields, drop, expected",
    [
        ({}, ("weights_url",), "missing key weights_url"),
        ({}, ("mean", "default_layer"), "missing keys mean, default_layer"),
        ({"weights_url": "not a url"}, (), "'weights_url' is not an http(s) URL"),
        ({"prototxt_url": "ftp://example.org/deploy.prototxt"}, (), "'prototxt_url' is not an http(s) URL"),
        ({"weights_url": "http://example.org/"}, (), "'weights_url' is not an http(s) URL"),
        ({"weights_sha1": "abc"}, (), "'weights_sha1' must be 40 hex digits"),
        ({"mean": [1, 2]}, (), "'mean' must be three finite numbers"),
        ({"channel_swap": [0, 0, 1]}, (), "'channel_swap' must be a permutation"),
        ({"weight_sha1": "0" * 40}, (), "unknown key weight_sha1"),
        ({"default_layer": ""}, (), "'default_layer' must be a non-empty string"),
        ({"weights_url": GOOD["prototxt_url"]}, (), "the prototxt and the weights would both be stored"),
        ({"archive_member": {"weights": "../../etc/passwd", "prototxt": "/abs"}}, (), "archive_member.prototxt"),
    ],
)
def test_bad_manifests_are_one_clear_line(zoo_env, fields, drop, expected):
    path = write_manifest(zoo_env.models, "broken", drop=drop, **{**GOOD, **fields})
    with pytest.raises(DeepDreamError) as e:
        resolve_model("broken", models_dirs=[zoo_env.models])
    msg = str(e.value)
    assert expected in msg and str(path) in msg and "\n" not in msg
    assert not zoo_env.cache.exists()  # nothing touched


def test_not_toml_and_bad_names(zoo_env):
    path = zoo_env.models / "garbled" / "model.toml"
    path.parent.mkdir()
    path.write_text("description = 'unterminated\n")
    with pytest.raises(DeepDreamError, match="not valid TOML"):
        load_manifest(path)
    with pytest.raises(DeepDreamError, match="invalid model name"):
        resolve_model("../etc", models_dirs=[zoo_env.models])
