"""The 2015 notebook's algorithm written out plainly: the yardstick for bit-parity and speed.

Deliberately independent of the rest of the package: its own net loading
(a caffe.Classifier on a force_backward copy of the prototxt, batch as
declared), numpy's global generator, the notebook's arithmetic. The tests
assert the product gives these bits; scripts/bench.py times both.
"""
from __future__ import annotations

import os
import tempfile

import numpy as np
import scipy.ndimage as nd
from google.protobuf import text_format

from ..net.caffe_env import import_caffe

caffe = import_caffe()


def notebook_net(prototxt, weights, mean=(104.0, 116.0, 122.0)):
    model = caffe.io.caffe_pb2.NetParameter()
    text_format.Merge(open(prototxt).read(), model)
    model.force_backward = True
    fd, tmp = tempfile.mkstemp(suffix=".prototxt")
    with os.fdopen(fd, "w") as f:
        f.write(str(model))
    try:
        return caffe.Classifier(tmp, str(weights), mean=np.float32(mean), channel_swap=(2, 1, 0))
    finally:
        os.unlink(tmp)


def nb_preprocess(net, img):
    return np.float32(np.rollaxis(img, 2)[::-1]) - net.transformer.mean["data"]


def nb_deprocess(net, img):
    return np.dstack((img + net.transformer.mean["data"])[::-1])


def nb_objective_L2(dst):
    dst.diff[:] = dst.data


def nb_make_step(net, step_size=1.5, end="inception_4c/output", jitter=32, clip=True, objective=nb_objective_L2):
    src = net.blobs["data"]
    dst = net.blobs[end]
    ox, oy = np.random.randint(-jitter, jitter + 1, 2)
    src.data[0] = np.roll(np.roll(src.data[0], ox, -1), oy, -2)
    net.forward(end=end)
    objective(dst)
    net.backward(start=end)
    g = src.diff[0]
    src.data[:] += step_size / np.abs(g).mean() * g
    src.data[0] = np.roll(np.roll(src.data[0], -ox, -1), -oy, -2)
    if clip:
        bias = net.transformer.mean["data"]
        src.data[:] = np.clip(src.data, -bias, 255 - bias)


def nb_deepdream(net, base_img, iter_n=10, octave_n=4, octave_scale=1.4, end="inception_4c/output", clip=True,
                 **step_params):
    octaves = [nb_preprocess(net, base_img)]
    for _ in range(octave_n - 1):
        octaves.append(nd.zoom(octaves[-1], (1, 1.0 / octave_scale, 1.0 / octave_scale), order=1))
    src = net.blobs["data"]
    detail = np.zeros_like(octaves[-1])
    for octave, octave_base in enumerate(octaves[::-1]):
        h, w = octave_base.shape[-2:]
        if octave > 0:
            h1, w1 = detail.shape[-2:]
            detail = nd.zoom(detail, (1, 1.0 * h / h1, 1.0 * w / w1), order=1)
        src.reshape(1, 3, h, w)
        src.data[0] = octave_base + detail
        for _ in range(iter_n):
            nb_make_step(net, end=end, clip=clip, **step_params)
        detail = src.data[0] - octave_base
    return nb_deprocess(net, src.data[0])


def nb_guide_objective(guide_features):
    def objective_guide(dst):
        x = dst.data[0].copy()
        y = guide_features
        ch = x.shape[0]
        x = x.reshape(ch, -1)
        y = y.reshape(ch, -1)
        A = x.T.dot(y)
        dst.diff[0].reshape(ch, -1)[:] = y[:, A.argmax(1)]
    return objective_guide


def nb_guide_features(net, guide, end):
    h, w = guide.shape[:2]
    src, dst = net.blobs["data"], net.blobs[end]
    src.reshape(1, 3, h, w)
    src.data[0] = nb_preprocess(net, guide)
    net.forward(end=end)
    return dst.data[0].copy()
