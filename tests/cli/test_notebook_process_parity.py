"""Issue 13: the product's command line gives the bits of the 2015 notebook run in a plain Python process.

The notebook's own cells (net loading with force_backward, preprocess,
deprocess, objective_L2, make_step, deepdream, showarray's uint8
conversion) run in a child that imports caffe, numpy, scipy and PIL and
nothing of this project; the CLI runs in another. Neither gets an
OPENBLAS_* variable, so each gets whatever kernel family a plain
`import caffe` gets in this environment.
"""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
from PIL import Image

from cli_util import BIN

# google/deepdream dream.ipynb, Python 3 (range for xrange, no display), otherwise as written.
NOTEBOOK = r'''
import sys
import numpy as np
import scipy.ndimage as nd
import PIL.Image
from google.protobuf import text_format

import caffe

net_fn, param_fn, img_fn, out_fn, seed, iter_n, octave_n = sys.argv[1:8]

# Patching model to be able to compute gradients.
model = caffe.io.caffe_pb2.NetParameter()
text_format.Merge(open(net_fn).read(), model)
model.force_backward = True
open('tmp.prototxt', 'w').write(str(model))

net = caffe.Classifier('tmp.prototxt', param_fn,
                       mean = np.float32([104.0, 116.0, 122.0]), # ImageNet mean, training set dependent
                       channel_swap = (2,1,0)) # the reference model has channels in BGR order instead of RGB

# a couple of utility functions for converting to and from Caffe's input image layout
def preprocess(net, img):
    return np.float32(np.rollaxis(img, 2)[::-1]) - net.transformer.mean['data']
def deprocess(net, img):
    return np.dstack((img + net.transformer.mean['data'])[::-1])

def objective_L2(dst):
    dst.diff[:] = dst.data

def make_step(net, step_size=1.5, end='inception_4c/output',
              jitter=32, clip=True, objective=objective_L2):
    """Basic gradient ascent step."""

    src = net.blobs['data'] # input image is stored in Net's 'data' blob
    dst = net.blobs[end]

    ox, oy = np.random.randint(-jitter, jitter+1, 2)
    src.data[0] = np.roll(np.roll(src.data[0], ox, -1), oy, -2) # apply jitter shift

    net.forward(end=end)
    objective(dst)  # specify the optimization objective
    net.backward(start=end)
    g = src.diff[0]
    # apply normalized ascent step to the input image
    src.data[:] += step_size/np.abs(g).mean() * g

    src.data[0] = np.roll(np.roll(src.data[0], -ox, -1), -oy, -2) # unshift image

    if clip:
        bias = net.transformer.mean['data']
        src.data[:] = np.clip(src.data, -bias, 255-bias)

def deepdream(net, base_img, iter_n=10, octave_n=4, octave_scale=1.4,
              end='inception_4c/output', clip=True, **step_params):
    # prepare base images for all octaves
    octaves = [preprocess(net, base_img)]
    for i in range(octave_n-1):
        octaves.append(nd.zoom(octaves[-1], (1, 1.0/octave_scale,1.0/octave_scale), order=1))

    src = net.blobs['data']
    detail = np.zeros_like(octaves[-1]) # allocate image for network-produced details
    for octave, octave_base in enumerate(octaves[::-1]):
        h, w = octave_base.shape[-2:]
        if octave > 0:
            # upscale details from the previous octave
            h1, w1 = detail.shape[-2:]
            detail = nd.zoom(detail, (1, 1.0*h/h1,1.0*w/w1), order=1)

        src.reshape(1,3,h,w) # resize the network input image size
        src.data[0] = octave_base+detail
        for i in range(iter_n):
            make_step(net, end=end, clip=clip, **step_params)

        # extract details produced on the current octave
        detail = src.data[0]-octave_base
    # returning the resulting image
    return deprocess(net, src.data[0])

img = np.float32(PIL.Image.open(img_fn))
np.random.seed(int(seed))
a = deepdream(net, img, iter_n=int(iter_n), octave_n=int(octave_n))
PIL.Image.fromarray(np.uint8(np.clip(a, 0, 255))).save(out_fn)  # showarray's conversion
'''


def test_cli_gives_the_bits_of_the_notebook_run_in_a_plain_process(googlenet_model, tmp_path):
    proto, weights = googlenet_model
    photo = tmp_path / "in.png"
    Image.fromarray(np.random.RandomState(4).randint(0, 256, (150, 200, 3)).astype(np.uint8)).save(photo)
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENBLAS_") and k != "PYTHONPATH"}
    env.pop("GLOG_minloglevel", None)
    nb_out, cli_out = tmp_path / "notebook.png", tmp_path / "cli.png"
    r = subprocess.run([sys.executable, "-c", NOTEBOOK, str(proto), str(weights), str(photo), str(nb_out), "7", "3",
                        "2"], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    cmd = [str(BIN)] if BIN.exists() else [sys.executable, "-m", "deepdream_caffe.cli"]
    r = subprocess.run(cmd + ["dream", str(photo), "-o", str(cli_out), "--prototxt", str(proto), "--weights",
                              str(weights), "--seed", "7", "--iters", "3", "--octaves", "2", "-q"],
                       capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stderr
    want, got = np.asarray(Image.open(nb_out)), np.asarray(Image.open(cli_out))
    assert got.shape == want.shape == (150, 200, 3)
    assert np.array_equal(got, want)
    assert np.abs(got.astype(int) - np.asarray(Image.open(photo)).astype(int)).mean() > 1  # it did dream
