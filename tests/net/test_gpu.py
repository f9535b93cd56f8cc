"""GPU runs (marked ``gpu``; scripts/gpu_check.sh runs them on a CUDA machine, skipped elsewhere)."""
from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image

from cli_util import run_cli
from deepdream_caffe import deepdream, load_net
from deepdream_caffe.dream.reference import nb_deepdream, notebook_net
from deepdream_caffe.io.image import read_metadata
from deepdream_caffe.net.devices import gpu_usable

pytestmark = pytest.mark.gpu


@pytest.fixture(scope="module")
def gpu():
    """GPU 0, when nvidia-smi lists one and this pycaffe can use it (tried in a child process)."""
    smi = shutil.which("nvidia-smi")
    if smi is None or "GPU" not in subprocess.run([smi, "-L"], capture_output=True, text=True).stdout:
        pytest.skip("no NVIDIA GPU here")

    if not gpu_usable(0):
        pytest.skip("this pycaffe is CPU-only (scripts/setup.sh --cuda builds the CUDA one)")
    return 0


def test_gpu_dream_is_bit_identical_to_the_notebook_loop_on_the_gpu(gpu, googlenet_model):
    proto, weights = googlenet_model
    img = np.float32(np.random.RandomState(0).randint(0, 256, (150, 200, 3)))
    ours = load_net(proto, weights, end="inception_4c/output", fast=True, gpu=gpu)
    got = deepdream(ours, img, iter_n=3, octave_n=2, rng=np.random.RandomState(7))
    nb = notebook_net(proto, weights)  # Caffe stays in GPU mode
    np.random.seed(7)
    want = nb_deepdream(nb, img, iter_n=3, octave_n=2)
    assert np.array_equal(got, want)
    assert np.abs(got - img).mean() > 1


def test_cli_dreams_on_the_gpu(gpu, googlenet_model, tmp_path):
    proto, weights = googlenet_model
    photo = tmp_path / "in.png"
    Image.fromarray(np.random.RandomState(1).randint(0, 256, (120, 160, 3)).astype(np.uint8)).save(photo)
    r = run_cli(["dream", photo, "-o", tmp_path / "out.png", "--prototxt", proto, "--weights", weights,
                 "--gpu", str(gpu), "--seed", "1", "--iters", "2", "--octaves", "2", "-q"])
    assert r.returncode == 0, r.stderr

    assert read_metadata(tmp_path / "out.png")["device"] == f"gpu:{gpu}"
