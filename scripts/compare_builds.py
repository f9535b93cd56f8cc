#!/usr/bin/env python3
"""Do two pycaffe builds compute the same bits, layer by layer?

    .venv/bin/python scripts/compare_builds.py STOCK_PYCAFFE_DIR

STOCK_PYCAFFE_DIR is another build's python/ folder (for example a build of
scripts/build_caffe.sh with scripts/caffe-patches emptied). Each build runs
in its own child process: single-layer nets (convolution with strides,
padding, dilation, groups, with and without bias; max pooling with strides
1-5, padding, ceil-mode edges and a mask top; LRN of several sizes, on planes
small and large enough for OpenBLAS to split its saxpy between threads;
Power; Deconvolution; ReLU)
forward and backward on random data, and GoogLeNet (seeded random weights)
forward to four layers and back to the input at 1024x575. Every output and
input gradient is compared byte for byte; exit 1 if any differs.

Both children get the same thread settings and OpenBLAS kernel family:
OpenBLAS's matrix products round differently with a different thread count
or family, in stock Caffe as well.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent

CONV_CASES = [  # kernel, stride, pad, dilation, group, channels, height, width, outputs
    (3, 1, 1, 1, 1, 8, 40, 300, 16), (7, 2, 3, 1, 1, 3, 100, 130, 8), (11, 4, 0, 1, 2, 6, 60, 70, 8),
    (3, 2, 0, 1, 1, 4, 33, 500, 8), (5, 1, 2, 1, 1, 5, 17, 23, 6), (3, 1, 2, 2, 1, 4, 30, 41, 4),
    (3, 3, 4, 1, 1, 3, 19, 37, 5), (1, 2, 0, 1, 1, 16, 20, 20, 8), (4, 3, 1, 1, 1, 2, 64, 1000, 4),
    (2, 1, 0, 1, 1, 3, 300, 9, 3),
]
POOL_CASES = [(3, 2, 0, 57, 113), (3, 1, 1, 36, 64), (2, 2, 0, 40, 41), (3, 2, 1, 31, 300),
              (5, 3, 2, 50, 77), (3, 1, 0, 9, 9), (7, 1, 3, 20, 600), (3, 2, 0, 4, 4)]
LRN_CASES = [  # size, alpha, beta, k, input shape
    (5, 1e-4, 0.75, 1, (2, 64, 37, 129)), (3, 0.3, 0.5, 2, (2, 7, 37, 129)), (5, 2.0, 0.75, 1, (2, 3, 37, 129)),
    (7, 1e-2, 1.0, 1.5, (2, 20, 37, 129)),
    # planes above 10000 values: OpenBLAS's saxpy splits them between threads
    (5, 1e-4, 0.75, 1, (1, 24, 101, 103)), (5, 1e-4, 0.75, 1, (1, 9, 144, 256)),
]
POWER_CASES = [(-0.75, 1.0, 2.0), (2.5, 1.0, 0.0), (0.3333, 0.5, 1.0)]  # power, scale, shift
GOOGLENET_ENDS = ["conv1/7x7_s2", "conv2/norm2", "inception_3b/output", "inception_4c/output"]


def _net(caffe, text: str):
    with tempfile.NamedTemporaryFile("w", suffix=".prototxt", delete=False) as f:
        f.write(text)
    try:
        return caffe.Net(f.name, caffe.TEST)
    finally:
        os.unlink(f.name)


def _layer(caffe, rs, out: dict, name: str, layer: str, shape) -> None:
    dims = " ".join(f"dim: {d}" for d in shape)
    net = _net(caffe, f'force_backward: true\ninput: "data"\ninput_shape {{ {dims} }}\n{layer}\n')
    for blobs in net.params.values():
        for b in blobs:
            b.data[...] = rs.randn(*b.data.shape)
    net.blobs["data"].data[...] = rs.randn(*shape) * 3
    net.forward()
    top = net.blobs[net.outputs[0]]
    top.diff[...] = rs.randn(*top.data.shape)
    net.backward()
    out[name + " forward"] = top.data.copy()
    out[name + " input gradient"] = net.blobs["data"].diff.copy()


def child(out_path: str, weights: str, size: tuple[int, int]) -> None:
    """Run the suite in this process's pycaffe and save every array."""
    os.environ.setdefault("GLOG_minloglevel", "2")
    import caffe

    sys.path.insert(0, str(REPO))
    from deepdream_caffe.net.caffe_env import googlenet_deploy_prototxt

    caffe.set_mode_cpu()
    rs = np.random.RandomState(123)
    out: dict = {}
    for i, (k, s, p, d, g, c, h, w, o) in enumerate(CONV_CASES):
        for bias in ("true", "false"):
            _layer(caffe, rs, out, f"conv{i} k{k} s{s} p{p} d{d} g{g} bias={bias}",
                   f'layer {{ name: "c" type: "Convolution" bottom: "data" top: "c" convolution_param {{ '
                   f"num_output: {o} kernel_size: {k} stride: {s} pad: {p} dilation: {d} group: {g} "
                   f"bias_term: {bias} }} }}", (2, c, h, w))
    for i, (k, s, p, h, w) in enumerate(POOL_CASES):
        params = f"pooling_param {{ pool: MAX kernel_size: {k} stride: {s} pad: {p} }}"
        _layer(caffe, rs, out, f"maxpool{i} k{k} s{s} p{p}",
               f'layer {{ name: "p" type: "Pooling" bottom: "data" top: "p" {params} }}', (2, 5, h, w))
        _layer(caffe, rs, out, f"maxpool{i} k{k} s{s} p{p} mask-top",
               f'layer {{ name: "p" type: "Pooling" bottom: "data" top: "p" top: "m" {params} }}', (1, 3, h, w))
    for i, (n, a, b, k, shape) in enumerate(LRN_CASES):
        _layer(caffe, rs, out, f"lrn{i} size{n} {shape[2]}x{shape[3]}",
               f'layer {{ name: "l" type: "LRN" bottom: "data" top: "l" '
               f"lrn_param {{ local_size: {n} alpha: {a} beta: {b} k: {k} }} }}", shape)
    # Deconvolution runs the convolution's backward product forward, and its
    # backward reuses the im2col of its weight gradient.
    _layer(caffe, rs, out, "deconvolution k4 s2 p1",
           'layer { name: "d" type: "Deconvolution" bottom: "data" top: "d" convolution_param { '
           'num_output: 6 kernel_size: 4 stride: 2 pad: 1 } }', (2, 5, 23, 41))
    for power, scale, shift in POWER_CASES:
        _layer(caffe, rs, out, f"power {power} scale {scale} shift {shift}",
               f'layer {{ name: "q" type: "Power" bottom: "data" top: "q" '
               f"power_param {{ power: {power} scale: {scale} shift: {shift} }} }}", (2, 7, 50, 333))
    _layer(caffe, rs, out, "relu", 'layer { name: "r" type: "ReLU" bottom: "data" top: "r" }', (2, 7, 50, 333))
    _layer(caffe, rs, out, "leaky relu in place",
           'layer { name: "r" type: "ReLU" bottom: "data" top: "data" relu_param { negative_slope: 0.1 } }',
           (2, 7, 50, 333))

    proto = Path(tempfile.mkdtemp()) / "deploy.prototxt"
    proto.write_text("force_backward: true\n" + Path(googlenet_deploy_prototxt()).read_text())
    net = caffe.Net(str(proto), weights, caffe.TEST)
    h, w = size
    net.blobs["data"].reshape(1, 3, h, w)
    net.blobs["data"].data[...] = np.random.RandomState(0).uniform(-100, 100, (1, 3, h, w))
    for end in GOOGLENET_ENDS:
        net.forward(end=end)
        net.blobs[end].diff[...] = net.blobs[end].data
        net.backward(start=end)
        out[f"googlenet {end} forward"] = net.blobs[end].data.copy()
        out[f"googlenet {end} input gradient"] = net.blobs["data"].diff.copy()
    np.savez(out_path, **{k.replace("/", "|"): v for k, v in out.items()})


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("other", nargs="?", help="the other build's pycaffe python/ folder")
    p.add_argument("--size", default="1024x575", help="WxH for the GoogLeNet part")
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--weights", help=argparse.SUPPRESS)
    a = p.parse_args()
    w, h = (int(v) for v in a.size.split("x"))
    if a.child:
        child(a.child, a.weights, (h, w))
        return 0
    if not a.other or not (Path(a.other) / "caffe" / "__init__.py").exists():
        sys.exit("compare_builds: give another build's pycaffe python/ folder (with caffe/__init__.py in it)")
    sys.path.insert(0, str(REPO / "scripts"))
    import bench

    cache = Path(os.environ.get("DEEPDREAM_CAFFE_CACHE", Path.home() / ".cache" / "deepdream-caffe")) / "bench"
    _, weights = bench.googlenet_files(cache)
    tmp = Path(tempfile.mkdtemp())
    results = {}
    for label, pythonpath in (("this build", None), ("other build", a.other)):
        env = dict(os.environ, GLOG_minloglevel="2", OMP_WAIT_POLICY="PASSIVE", OPENBLAS_THREAD_TIMEOUT="4")
        if pythonpath:
            env["PYTHONPATH"] = pythonpath
            env["PYTHONNOUSERSITE"] = "1"
            env = bench.same_kernels_env(env)  # the other build has no kernel-choice hook
        out = tmp / f"{label.split()[0]}.npz"
        r = subprocess.run([sys.executable, __file__, "--child", str(out), "--weights", str(weights),
                            "--size", a.size], env=env, capture_output=True, text=True)
        if r.returncode != 0:
            sys.exit(f"compare_builds: {label} failed:\n{r.stderr[-2000:]}")
        results[label] = np.load(out)
    mine, other = results["this build"], results["other build"]
    differ = [k for k in mine.files if mine[k].tobytes() != other[k].tobytes()]
    for k in mine.files:
        status = "DIFFERS" if k in differ else "identical"
        print(f"{k.replace('|', '/'):60s} {status}")
    print(f"{len(mine.files) - len(differ)} of {len(mine.files)} arrays bit-identical")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
