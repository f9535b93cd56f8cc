"""Issue 6: the layers this project's Caffe patches touch still compute the right thing.

The patches (scripts/caffe-patches/) rewrite max pooling, im2col/col2im, the
convolution bias and LRN for speed. With integer-valued data every sum here
is exact whatever its order, so max pooling and convolution are checked for
exact equality against plain numpy references: window and padding
arithmetic, argmax tie-breaking, strides 1, 2 and 3 (the SSE and scalar
paths), dilation and groups. LRN is checked against a float64 reference and
by reusing its kept scale^-beta across shapes; the vector powf behind LRN's
scale^-beta must give libm powf's bits for every kind of input. Equality of bits with stock
Caffe (summation order) is checked by scripts/compare_builds.py and
scripts/bench.py --other-caffe, which need a second build.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import math
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

from deepdream_caffe.net.caffe_env import import_caffe

caffe = import_caffe()


def _net(layer: str, shape: tuple[int, ...]) -> "caffe.Net":
    dims = " ".join(f"dim: {d}" for d in shape)
    text = f'force_backward: true\ninput: "data"\ninput_shape {{ {dims} }}\n{layer}\n'
    with tempfile.NamedTemporaryFile("w", suffix=".prototxt", delete=False) as f:
        f.write(text)
    try:
        caffe.set_mode_cpu()
        return caffe.Net(f.name, caffe.TEST)
    finally:
        os.unlink(f.name)


def _ints(rs: np.random.RandomState, shape, lo=-4, hi=5) -> np.ndarray:
    return rs.randint(lo, hi, size=shape).astype(np.float32)


# ------------------------------------------------------------------ max pooling


def _pooled(size: int, k: int, s: int, p: int) -> int:
    out = int(math.ceil((size + 2 * p - k) / s)) + 1
    if p > 0 and (out - 1) * s >= size + p:
        out -= 1
    return out


def _maxpool_ref(x: np.ndarray, top_diff: np.ndarray, k: int, s: int, p: int):
    """Caffe's max pooling: first strict maximum in row-major scan, and its backward."""
    n, c, h, w = x.shape
    ph_n, pw_n = _pooled(h, k, s, p), _pooled(w, k, s, p)
    y = np.full((n, c, ph_n, pw_n), -np.finfo(np.float32).max, np.float32)
    g = np.zeros_like(x)
    for b in range(n):
        for ch in range(c):
            for ph in range(ph_n):
                for pw in range(pw_n):
                    hs, ws = ph * s - p, pw * s - p
                    he, we = min(hs + k, h), min(ws + k, w)
                    hs, ws = max(hs, 0), max(ws, 0)
                    best, arg = y[b, ch, ph, pw], None
                    for yy in range(hs, he):
                        for xx in range(ws, we):
                            if x[b, ch, yy, xx] > best:
                                best, arg = x[b, ch, yy, xx], (yy, xx)
                    y[b, ch, ph, pw] = best
                    if arg is not None:
                        g[b, ch, arg[0], arg[1]] += top_diff[b, ch, ph, pw]
    return y, g


@pytest.mark.parametrize("k,s,p,h,w", [
    (3, 1, 1, 9, 37),    # inception pools: stride-1 SSE path plus edges
    (3, 2, 0, 15, 41),   # pool1-3: stride-2 SSE path, ceil-mode last window
    (3, 3, 1, 11, 40),   # stride 3: the scalar four-window path
    (2, 2, 0, 8, 8),
    (5, 2, 2, 13, 29),
    (3, 2, 0, 3, 3),     # too narrow for four windows
])
def test_max_pooling_values_and_argmax_are_exact(k, s, p, h, w):
    rs = np.random.RandomState(k * 100 + s * 10 + p)
    shape = (2, 3, h, w)
    x = _ints(rs, shape, -3, 4)  # many ties: the first maximum must win
    net = _net(f'layer {{ name: "p" type: "Pooling" bottom: "data" top: "p" '
               f'pooling_param {{ pool: MAX kernel_size: {k} stride: {s} pad: {p} }} }}', shape)
    net.blobs["data"].data[...] = x
    net.forward()
    top = net.blobs["p"]
    td = _ints(rs, top.data.shape, 1, 9)
    y_ref, g_ref = _maxpool_ref(x, td, k, s, p)
    assert top.data.shape == y_ref.shape
    np.testing.assert_array_equal(top.data, y_ref)
    top.diff[...] = td
    net.backward()
    np.testing.assert_array_equal(net.blobs["data"].diff, g_ref)


def test_max_pooling_mask_top_holds_the_argmax_index():
    rs = np.random.RandomState(5)
    shape = (1, 2, 10, 35)
    x = _ints(rs, shape, -2, 3)
    net = _net('layer { name: "p" type: "Pooling" bottom: "data" top: "p" top: "m" '
               'pooling_param { pool: MAX kernel_size: 3 stride: 1 pad: 1 } }', shape)
    net.blobs["data"].data[...] = x
    net.forward()
    y, m = net.blobs["p"].data, net.blobs["m"].data
    flat = x.reshape(2, -1)
    for ch in range(2):
        idx = m[0, ch].astype(np.int64)
        assert (idx >= 0).all()
        np.testing.assert_array_equal(flat[ch][idx], y[0, ch])
    y_ref, _ = _maxpool_ref(x, np.zeros_like(y), 3, 1, 1)
    np.testing.assert_array_equal(y, y_ref)


# ------------------------------------------------------------------ convolution (im2col, col2im, bias)


def _conv_ref(x, wts, bias, s, p, d, group):
    n, c, h, w = x.shape
    o, cg, kh, kw = wts.shape
    oh = (h + 2 * p - (d * (kh - 1) + 1)) // s + 1
    ow = (w + 2 * p - (d * (kw - 1) + 1)) // s + 1
    xp = np.zeros((n, c, h + 2 * p, w + 2 * p), np.float64)
    xp[:, :, p:p + h, p:p + w] = x
    y = np.zeros((n, o, oh, ow), np.float64)
    og = o // group
    for gi in range(group):
        xs = xp[:, gi * cg:(gi + 1) * cg]
        for i in range(kh):
            for j in range(kw):
                patch = xs[:, :, i * d: i * d + s * (oh - 1) + 1: s, j * d: j * d + s * (ow - 1) + 1: s]
                y[:, gi * og:(gi + 1) * og] += np.einsum("nchw,oc->nohw", patch, wts[gi * og:(gi + 1) * og, :, i, j])
    if bias is not None:
        y += bias[None, :, None, None]
    return y


def _conv_grad_ref(x, wts, top_diff, s, p, d, group):
    """Input gradient by the adjoint of _conv_ref (exact for integer data)."""
    n, c, h, w = x.shape
    o, cg, kh, kw = wts.shape
    _, _, oh, ow = top_diff.shape
    gp = np.zeros((n, c, h + 2 * p, w + 2 * p), np.float64)
    og = o // group
    for gi in range(group):
        for i in range(kh):
            for j in range(kw):
                contrib = np.einsum("nohw,oc->nchw", top_diff[:, gi * og:(gi + 1) * og], wts[gi * og:(gi + 1) * og, :, i, j])
                gp[:, gi * cg:(gi + 1) * cg, i * d: i * d + s * (oh - 1) + 1: s, j * d: j * d + s * (ow - 1) + 1: s] += contrib
    return gp[:, :, p:p + h, p:p + w]


@pytest.mark.parametrize("k,s,p,d,group,c,h,w", [
    (7, 2, 3, 1, 1, 3, 31, 45),   # conv1: three input channels
    (3, 1, 1, 1, 1, 5, 12, 70),
    (5, 1, 2, 1, 1, 4, 9, 13),
    (3, 1, 2, 2, 1, 3, 14, 19),   # dilation
    (11, 4, 0, 1, 2, 4, 40, 47),  # CaffeNet conv1 style, two groups
    (3, 3, 4, 1, 1, 2, 10, 17),   # padding wider than the kernel
    (1, 2, 0, 1, 1, 6, 9, 9),     # strided 1x1 still goes through im2col
])
@pytest.mark.parametrize("bias", [True, False])
def test_convolution_forward_and_input_gradient_are_exact(k, s, p, d, group, c, h, w, bias):
    rs = np.random.RandomState(k + 10 * s + 100 * p + 1000 * d)
    o = 4 * group
    shape = (2, c, h, w)
    net = _net(f'layer {{ name: "c" type: "Convolution" bottom: "data" top: "c" convolution_param {{ '
               f'num_output: {o} kernel_size: {k} stride: {s} pad: {p} dilation: {d} group: {group} '
               f'bias_term: {"true" if bias else "false"} }} }}', shape)
    x = _ints(rs, shape)
    wts = _ints(rs, net.params["c"][0].data.shape, -2, 3)
    b = _ints(rs, (o,), -3, 4) if bias else None
    net.params["c"][0].data[...] = wts
    if bias:
        net.params["c"][1].data[...] = b
    net.blobs["data"].data[...] = x
    net.forward()
    y_ref = _conv_ref(x, wts, b, s, p, d, group)
    assert net.blobs["c"].data.shape == y_ref.shape
    np.testing.assert_array_equal(net.blobs["c"].data, y_ref.astype(np.float32))
    td = _ints(rs, y_ref.shape, -2, 3)
    net.blobs["c"].diff[...] = td
    net.backward()
    g_ref = _conv_grad_ref(x, wts, td, s, p, d, group)
    np.testing.assert_array_equal(net.blobs["data"].diff, g_ref.astype(np.float32))


# ------------------------------------------------------------------ LRN


def _lrn_ref(x, top_diff, size, alpha, beta, k):
    x = x.astype(np.float64)
    c = x.shape[1]
    pre = (size - 1) // 2
    sq = np.pad(x * x, ((0, 0), (pre, size - 1 - pre), (0, 0), (0, 0)))
    scale = k + alpha / size * np.stack([sq[:, i:i + size].sum(1) for i in range(c)], 1)
    y = x * scale ** -beta
    # d/dx_j of sum_i td_i x_i s_i^-b = td_j s_j^-b - 2ab/n x_j sum_{i near j} td_i x_i s_i^(-b-1)
    r = top_diff * y / scale
    post = size - 1 - pre
    rp = np.pad(r, ((0, 0), (post, pre), (0, 0), (0, 0)))
    acc = np.stack([rp[:, i:i + size].sum(1) for i in range(c)], 1)
    g = top_diff * scale ** -beta - 2 * alpha * beta / size * x * acc
    return y, g


@pytest.mark.parametrize("size,alpha,beta,k,c", [(5, 1e-4, 0.75, 1.0, 16), (3, 0.3, 0.5, 2.0, 7), (5, 2.0, 0.75, 1.0, 3)])
def test_lrn_matches_float64_reference_and_reuses_its_kept_power(size, alpha, beta, k, c):
    rs = np.random.RandomState(size + c)
    net = None
    for shape in [(2, c, 9, 31), (1, c, 20, 13)]:  # the second reshapes the kept buffers
        if net is None:
            net = _net(f'layer {{ name: "l" type: "LRN" bottom: "data" top: "l" '
                       f'lrn_param {{ local_size: {size} alpha: {alpha} beta: {beta} k: {k} }} }}', shape)
        else:
            net.blobs["data"].reshape(*shape)
            net.reshape()
        x = (rs.randn(*shape) * 3).astype(np.float32)
        td = rs.randn(*shape).astype(np.float32)
        net.blobs["data"].data[...] = x
        net.forward()
        net.blobs["l"].diff[...] = td
        net.backward()
        y_ref, g_ref = _lrn_ref(x, td.astype(np.float64), size, alpha, beta, k)
        np.testing.assert_allclose(net.blobs["l"].data, y_ref, rtol=2e-5, atol=1e-6)
        np.testing.assert_allclose(net.blobs["data"].diff, g_ref, rtol=2e-4, atol=2e-5)
        first = net.blobs["data"].diff.copy()
        net.backward()  # a second backward reuses the same kept scale^-beta
        np.testing.assert_array_equal(net.blobs["data"].diff, first)


_LRN_CHILD = r"""
import sys
import numpy as np
from deepdream_caffe.net.caffe_env import import_caffe
sys.path.insert(0, sys.argv[2])
from compare_builds import _net

caffe = import_caffe()
caffe.set_mode_cpu()
out = {}
cases = [  # shape, size, alpha, beta, k
    ((1, 24, 101, 103), 5, 1e-4, 0.75, 1.0),  # 10403 per plane: saxpy splits it, with tails
    ((1, 64, 144, 256), 5, 1e-4, 0.75, 1.0),  # GoogLeNet's pool1/norm1 at 1024x575
    ((2, 11, 103, 183), 3, 0.3, 0.5, 2.0),
    ((1, 9, 13, 37), 7, 1e-2, 1.0, 1.5),      # small planes, window wider than half the channels
    ((1, 2, 3, 3), 5, 2.0, 0.75, 1.0),        # fewer channels than the window, scalar tails only
    ((1, 8, 101, 103), 5, 1.25, 0.75, 1.0),   # alpha/size = 0.25: every product exact, stock forward
]
rs = np.random.RandomState(5)
for shape, size, alpha, beta, k in cases:
    dims = " ".join(f"dim: {d}" for d in shape)
    net = _net(caffe, f'force_backward: true\ninput: "data"\ninput_shape {{ {dims} }}\n'
                      f'layer {{ name: "l" type: "LRN" bottom: "data" top: "l" '
                      f'lrn_param {{ local_size: {size} alpha: {alpha} beta: {beta} k: {k} }} }}\n')
    x = (rs.randn(*shape) * rs.choice([0.5, 30.0, 300.0], size=(1, shape[1], 1, 1))).astype(np.float32)
    x[:, 0, :1] = 0.0
    net.blobs["data"].data[...] = x
    net.forward()
    net.blobs["l"].diff[...] = rs.randn(*shape)
    net.backward()
    out[f"{shape} forward"] = net.blobs["l"].data.copy()
    out[f"{shape} input gradient"] = net.blobs["data"].diff.copy()
np.savez(sys.argv[1], **out)
"""


def test_fused_lrn_has_the_stock_codes_bits(tmp_path):
    """Patch 0005's one-pass LRN gives the bits of the stock code it replaces, in the same build.

    The stock window sums go through OpenBLAS's saxpy, whose rounding depends
    on an element's place in each thread's share (planes above 10000 values
    are shared between threads), so the large planes here test the rounding
    pattern the fused loops learn from saxpy. The fused child must also say
    that the fused form ran, or the comparison would prove nothing.
    """

    scripts = Path(__file__).resolve().parents[2] / "scripts"
    results, logs = {}, {}
    for form in ("fused", "stock"):
        env = dict(os.environ, GLOG_minloglevel="0", OMP_WAIT_POLICY="PASSIVE")
        env.pop("DEEPDREAM_CAFFE_STOCK_LRN", None)
        if form == "stock":
            env["DEEPDREAM_CAFFE_STOCK_LRN"] = "1"
        out = tmp_path / f"{form}.npz"
        r = subprocess.run([sys.executable, "-c", _LRN_CHILD, str(out), str(scripts)], capture_output=True, text=True,
                           env=env, timeout=600)
        assert r.returncode == 0, r.stderr[-2000:]
        results[form], logs[form] = np.load(out), r.stderr
    assert "LRN across channels: fused form" in logs["fused"]
    assert "LRN across channels: fused form" not in logs["stock"]
    fused, stock = results["fused"], results["stock"]
    assert sorted(fused.files) == sorted(stock.files) and len(fused.files) == 12
    for key in fused.files:
        assert fused[key].tobytes() == stock[key].tobytes(), key


def test_convolution_input_gradient_does_not_depend_on_what_ran_before():
    """Patch 0004 shares one all-zero column buffer between every convolution's backward pass.

    Each backward adds its product into that buffer and clears it again while
    turning it back into an image; a value left behind (for example in a
    column whose input row is padding) would leak into the next layer. Run
    a padded layer, then a larger one with other geometry, then the first
    again: its input gradient must be the numpy reference both times.
    """
    rs = np.random.RandomState(7)

    def conv(k, s, p, c, h, w, o):
        net = _net(f'layer {{ name: "c" type: "Convolution" bottom: "data" top: "c" convolution_param {{ '
                   f'num_output: {o} kernel_size: {k} stride: {s} pad: {p} bias_term: false }} }}', (1, c, h, w))
        x = _ints(rs, (1, c, h, w))
        wts = _ints(rs, net.params["c"][0].data.shape, -2, 3)
        net.params["c"][0].data[...] = wts
        net.blobs["data"].data[...] = x
        net.forward()
        td = _ints(rs, net.blobs["c"].data.shape, -2, 3)
        return net, wts, td

    def grad(net, td):
        net.blobs["c"].diff[...] = td
        net.backward()
        return net.blobs["data"].diff.copy()

    a, wa, ta = conv(3, 3, 4, 3, 19, 37, 5)   # pad > kernel: whole column segments are padding
    b, _, tb = conv(5, 1, 2, 6, 40, 90, 7)    # a larger buffer, other values
    ref = _conv_grad_ref(a.blobs["data"].data.copy(), wa, ta, 3, 4, 1, 1)
    first = grad(a, ta)
    np.testing.assert_array_equal(first, ref)
    grad(b, tb)
    np.testing.assert_array_equal(grad(a, ta), ref)


# ------------------------------------------------------------------ powf (LRN's scale^-beta)


_POWF_LOOP = """
#include <math.h>
#include <stddef.h>
void powf_array(const float *x, float y, float *out, size_t n) {
    for (size_t i = 0; i < n; ++i) out[i] = powf(x[i], y);
}
"""


@pytest.fixture(scope="module")
def libm_powf(tmp_path_factory):
    """libm's powf over an array: a C loop compiled here, since numpy's float32 power is not powf.

    numpy 2 has its own SIMD float32 ``power`` on AVX-512 CPUs, whose bits
    differ from libm's in about a third of these inputs, so numpy cannot be
    the reference. The C compiler is there wherever Caffe was built.
    """

    d = tmp_path_factory.mktemp("powf")
    (d / "powf_loop.c").write_text(_POWF_LOOP)
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    assert cc, "no C compiler to build libm's powf reference with"
    # -fno-builtin: the loop must call libm's powf, not a compiler's folded form.
    subprocess.run([cc, "-O2", "-fno-builtin", "-shared", "-fPIC", str(d / "powf_loop.c"), "-o",
                    str(d / "libpowfloop.so"), "-lm"], check=True)
    fn = ctypes.CDLL(str(d / "libpowfloop.so")).powf_array
    fn.restype = None
    fn.argtypes = [ctypes.c_void_p, ctypes.c_float, ctypes.c_void_p, ctypes.c_size_t]

    def powf(x: np.ndarray, y: float) -> np.ndarray:
        x = np.ascontiguousarray(x, dtype=np.float32)
        out = np.empty_like(x)
        fn(x.ctypes.data, y, out.ctypes.data, x.size)
        return out

    return powf


def _same_bits(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a.view(np.uint32) == b.view(np.uint32)) | (np.isnan(a) & np.isnan(b))


@pytest.mark.parametrize("power", [-0.75, 0.75, 2.5, -1.7, 0.3333])
def test_power_layer_gives_libm_powf_bits_for_every_kind_of_input(power, libm_powf):
    """Patch 0003 runs caffe_powx<float> (LRN, the Power layer) in a vector form of glibc's powf.

    Inputs: every 4099th float bit pattern (both signs, zeros, subnormals,
    normals, inf, NaN: the lanes the vector form hands back to powf), a
    dense run over [1, 106) where LRN's scale lives, and an odd length so
    the scalar tail runs. The Power layer raises its top in place, so the
    input and output arrays are the same memory.
    """
    strided = np.arange(0, 2**32, 4099, dtype=np.uint64).astype(np.uint32).view(np.float32)
    dense = np.float32(1) + np.arange(2**20, dtype=np.float32) * np.float32(1e-4)
    x = np.concatenate([strided, dense, np.float32([2.5, 0.1, 7.0])])
    assert x.size % 8 != 0
    net = _net(f'layer {{ name: "p" type: "Power" bottom: "data" top: "p" power_param {{ power: {power} }} }}',
               (x.size,))
    net.blobs["data"].data[...] = x
    net.forward()
    got = net.blobs["p"].data.copy()
    ref = libm_powf(x, power)
    # The reference is libm's own: spot-check the compiled loop against powf called one value at a time.
    powf = ctypes.CDLL(ctypes.util.find_library("m")).powf
    powf.restype, powf.argtypes = ctypes.c_float, [ctypes.c_float, ctypes.c_float]
    sample = np.random.RandomState(0).choice(x.size, 3000, replace=False)
    one_by_one = np.array([powf(float(x[i]), power) for i in sample], dtype=np.float32)
    assert _same_bits(ref[sample], one_by_one).all()
    bad = np.nonzero(~_same_bits(got, ref))[0]
    assert bad.size == 0, f"{bad.size} results differ from powf, first at x={x[bad[0]]!r}"


# ------------------------------------------------------------------ the maintainer's bit check


def test_compare_builds_checks_every_array_and_rejects_a_non_build(tmp_path):
    repo = Path(__file__).resolve().parents[2]
    script = repo / "scripts" / "compare_builds.py"
    env = dict(os.environ, DEEPDREAM_CAFFE_CACHE=str(tmp_path))
    pydir = Path(caffe.__file__).resolve().parent.parent
    r = subprocess.run([sys.executable, str(script), str(pydir), "--size", "160x120"],
                       capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stderr
    last = r.stdout.strip().splitlines()[-1]
    assert last == "104 of 104 arrays bit-identical"
    r = subprocess.run([sys.executable, str(script), str(tmp_path)], capture_output=True, text=True, env=env)
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "python/ folder" in r.stderr


# ------------------------------------------------------------------ ReLU backward


@pytest.mark.parametrize("slope", [0.0, 0.1, -0.5])
@pytest.mark.parametrize("in_place", [True, False])
def test_relu_backward_is_caffes_formula_exactly(slope, in_place):
    rs = np.random.RandomState(3)
    shape = (1, 3, 7, 45)  # 945 values: SSE blocks plus a scalar tail
    x = rs.randn(*shape).astype(np.float32)
    x.flat[::17] = 0.0
    x.flat[5::23] = -0.0
    x.flat[7::31] = np.nan
    top = "data" if in_place else "r"
    net = _net(f'layer {{ name: "r" type: "ReLU" bottom: "data" top: "{top}" '
               f'relu_param {{ negative_slope: {slope} }} }}', shape)
    net.blobs["data"].data[...] = x
    net.forward()
    dy = rs.randn(*shape).astype(np.float32)
    dy.flat[::13] = -0.0
    net.blobs[top].diff[...] = dy
    # In place, backward sees the forward's output as its input (Caffe's way).
    x = net.blobs["data"].data.copy()
    net.backward()
    s = np.float32(slope)
    with np.errstate(invalid="ignore"):
        f = np.where(x > 0, np.float32(1) + s * np.float32(0),
                     np.where(x <= 0, np.float32(0) + s * np.float32(1), np.float32(0) + s * np.float32(0)))
    want = (dy * f.astype(np.float32)).astype(np.float32)
    got = net.blobs["data"].diff
    # byte equality: the signs of zeros count too
    assert got.tobytes() == want.tobytes()
