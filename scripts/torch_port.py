"""A PyTorch port of the same net and algorithm, only as a yardstick for scripts/bench.py.

It reads the Caffe prototxt and weights and runs the same layers with
torch.nn.functional (max pooling in Caffe's ceil mode, Caffe's across-channel
LRN), and it runs the same ascent loop: jitter, forward to the end layer,
L2 objective, backward to the image, normalised step, clip, octaves. It is
what a user would pick instead of Caffe, so it is timed against the
product. Bit-parity is not expected: different kernels round differently.
"""
from __future__ import annotations

from typing import Any, Dict

import numpy as np
import scipy.ndimage as nd


def build(param: Any, params: Dict[str, list], end: str):
    """A function image_tensor -> activations of ``end``, from a NetParameter and pycaffe params."""
    import torch
    import torch.nn.functional as F

    ops = []
    for layer in param.layer:
        t = layer.type
        if t == "Input":
            continue
        if t == "Convolution":
            cp = layer.convolution_param
            w = torch.from_numpy(params[layer.name][0].copy())
            b = torch.from_numpy(params[layer.name][1].copy()) if len(params[layer.name]) > 1 else None
            stride = cp.stride[0] if cp.stride else 1
            pad = cp.pad[0] if cp.pad else 0
            ops.append((layer, lambda x, w=w, b=b, s=stride, p=pad: F.conv2d(x, w, b, stride=s, padding=p)))
        elif t == "ReLU":
            ops.append((layer, F.relu))
        elif t == "Pooling":
            pp = layer.pooling_param
            assert pp.pool == 0, "max pooling only"
            ops.append((layer, lambda x, k=pp.kernel_size, s=pp.stride or 1, p=pp.pad:
                        F.max_pool2d(x, k, s, p, ceil_mode=True)))
        elif t == "LRN":
            lp = layer.lrn_param
            ops.append((layer, lambda x, n=lp.local_size, a=lp.alpha, b=lp.beta, k=lp.k:
                        F.local_response_norm(x, n, alpha=a, beta=b, k=k)))
        elif t == "Concat":
            ops.append((layer, None))
        else:
            raise ValueError(f"torch port: layer type {t} not supported")
        if layer.name == end:
            break

    def forward(x):
        blobs = {"data": x}
        for layer, f in ops:
            if f is None:
                out = torch.cat([blobs[b] for b in layer.bottom], dim=1)
            else:
                out = f(blobs[layer.bottom[0]])
            blobs[layer.top[0]] = out
        return blobs[ops[-1][0].top[0]]

    return forward


def dream(forward, img: np.ndarray, mean: np.ndarray, iter_n: int = 10, octave_n: int = 4,
          octave_scale: float = 1.4, step_size: float = 1.5, jitter: int = 32) -> np.ndarray:
    """The notebook's loop on a torch forward function (numpy's global RNG for the jitter)."""
    import torch

    base = np.float32(np.rollaxis(img, 2)[::-1]) - mean
    octaves = [base]
    for _ in range(octave_n - 1):
        octaves.append(nd.zoom(octaves[-1], (1, 1.0 / octave_scale, 1.0 / octave_scale), order=1))
    detail = np.zeros_like(octaves[-1])
    for i, ob in enumerate(octaves[::-1]):
        h, w = ob.shape[-2:]
        if i > 0:
            detail = nd.zoom(detail, (1, 1.0 * h / detail.shape[1], 1.0 * w / detail.shape[2]), order=1)
        x = ob + detail
        for _ in range(iter_n):
            ox, oy = np.random.randint(-jitter, jitter + 1, 2)
            x = np.roll(x, (oy, ox), (-2, -1))
            t = torch.from_numpy(np.ascontiguousarray(x[None])).requires_grad_(True)
            a = forward(t)
            (0.5 * (a * a).sum()).backward()
            g = t.grad[0].numpy()
            x = x + step_size / np.abs(g).mean() * g
            x = np.roll(x, (-oy, -ox), (-2, -1))
            x = np.clip(x, -mean, 255 - mean)
        detail = x - ob
    return np.dstack((x + mean)[::-1])
