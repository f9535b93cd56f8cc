"""Issue 2: pycaffe is importable and partial forward/backward gives true gradients."""
from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

import numpy as np
import pytest

from deepdream_caffe.net.caffe_env import import_caffe

caffe = import_caffe()

REPO = Path(__file__).resolve().parents[2]


def test_caffe_imports_without_pythonpath():
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    r = subprocess.run([sys.executable, "-c", "import caffe, caffe.proto.caffe_pb2; print(caffe.__file__)"],
                       capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().endswith("__init__.py")


def _netspec_net() -> "caffe.Net":
    from caffe import layers as L
    from caffe import params as P

    n = caffe.NetSpec()
    n.data = L.Input(shape=dict(dim=[1, 3, 12, 12]))
    n.conv = L.Convolution(n.data, num_output=4, kernel_size=3, pad=1,
                           weight_filler=dict(type="gaussian", std=0.3), bias_filler=dict(type="constant", value=0.1))
    n.relu = L.ReLU(n.conv, in_place=True)
    n.pool = L.Pooling(n.relu, pool=P.Pooling.MAX, kernel_size=2, stride=2)
    n.out = L.Convolution(n.pool, num_output=3, kernel_size=3, weight_filler=dict(type="gaussian", std=0.3))
    proto = n.to_proto()
    proto.force_backward = True
    with tempfile.NamedTemporaryFile("w", suffix=".prototxt", delete=False) as f:
        f.write(str(proto))
    try:
        caffe.set_mode_cpu()
        caffe.set_random_seed(7)
        return caffe.Net(f.name, caffe.TEST)
    finally:
        os.unlink(f.name)


def test_partial_backward_matches_central_differences():
    net = _netspec_net()
    x = np.random.RandomState(0).uniform(-1, 1, (1, 3, 12, 12)).astype(np.float32)

    def f(v):
        net.blobs["data"].data[...] = v
        net.forward(end="pool")
        a = net.blobs["pool"].data.astype(np.float64)
        return 0.5 * float((a * a).sum())

    f(x)
    net.blobs["pool"].diff[...] = net.blobs["pool"].data
    net.backward(start="pool")
    g = net.blobs["data"].diff.astype(np.float64).copy()
    assert np.abs(g).sum() > 0

    eps = 1e-3  # small enough to cross no ReLU/max kink, large for float32 noise
    rs = np.random.RandomState(1)
    for _ in range(5):  # directional derivatives along random directions
        d = rs.randn(*x.shape).astype(np.float32)
        fd = (f(x + eps * d) - f(x - eps * d)) / (2 * eps)
        an = float((g * d).sum())
        assert abs(fd - an) <= 1e-3 * max(1.0, abs(an)), (fd, an)
    # and element-wise at a few pixels
    for idx in [(0, 0, 3, 4), (0, 1, 7, 7), (0, 2, 10, 1)]:
        e = np.zeros_like(x)
        e[idx] = 1
        fd = (f(x + eps * e) - f(x - eps * e)) / (2 * eps)
        assert abs(fd - g[idx]) <= 1e-3 * max(1.0, abs(g[idx])), (idx, fd, g[idx])


def test_googlenet_prototxt_from_the_build_loads(googlenet_prototxt):
    caffe.set_mode_cpu()
    caffe.set_random_seed(0)
    net = caffe.Net(str(googlenet_prototxt), caffe.TEST)
    assert "inception_4c/output" in net.blobs
    assert "inception_3b/5x5_reduce" in net.blobs
    assert net.blobs["inception_4c/output"].data.shape[1] == 512
    w = net.params["conv1/7x7_s2"][0].data
    assert w.shape == (64, 3, 7, 7) and np.abs(w).sum() > 0  # xavier filler ran


def test_build_script_second_run_is_a_no_op():
    r = subprocess.run(["bash", str(REPO / "scripts" / "build_caffe.sh"), "--python", sys.executable],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "up to date" in r.stderr or "using" in r.stderr or "ready" in r.stderr


def test_build_script_rejects_unknown_option():
    r = subprocess.run(["bash", str(REPO / "scripts" / "build_caffe.sh"), "--frobnicate"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and "unknown option" in r.stderr


def _bare_python(tmp_path: Path) -> Path:
    """A venv whose Python sees numpy but no caffe, so build_caffe.sh really has to build."""

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    py = venv / "bin" / "python"
    site = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    # A path added by a .pth has its own .pth files ignored: numpy yes, our pycaffe .pth no.
    Path(site, "numpy_only.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    r = subprocess.run([str(py), "-c", "import numpy; import caffe"], capture_output=True, text=True)
    assert "No module named 'caffe'" in r.stderr
    return py


def _script_copy(tmp_path: Path, patch_text: str) -> Path:
    d = tmp_path / "scripts"
    (d / "caffe-patches").mkdir(parents=True)
    shutil.copy(REPO / "scripts" / "build_caffe.sh", d / "build_caffe.sh")
    (d / "caffe-patches" / "0001-broken.patch").write_text(patch_text)
    return d / "build_caffe.sh"


def test_build_failure_names_the_step_and_its_log(tmp_path):
    script = _script_copy(tmp_path, "--- a/no/such/file.cpp\n+++ b/no/such/file.cpp\n@@ -1 +1 @@\n-x\n+y\n")
    env = dict(os.environ, DEEPDREAM_CAFFE_CACHE=str(tmp_path / "cache"))
    r = subprocess.run(["bash", str(script), "--python", str(_bare_python(tmp_path))],
                       capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 1, r.stderr
    last = r.stderr.strip().splitlines()[-1]
    assert "step 'project patch 0001-broken.patch' failed" in last and "logs/source.log" in last
    assert not list((tmp_path / "cache").glob("caffe/*/.complete"))


def test_unreachable_source_says_so_and_names_alternatives(tmp_path):
    script = _script_copy(tmp_path, "")
    env = dict(os.environ, DEEPDREAM_CAFFE_CACHE=str(tmp_path / "cache"),
               DEEPDREAM_CAFFE_DEBIAN_MIRROR="http://127.0.0.1:9/debian")
    r = subprocess.run(["bash", str(script), "--python", str(_bare_python(tmp_path))],
                       capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 1
    last = r.stderr.strip().splitlines()[-1]
    assert "cannot fetch Debian source package caffe" in last
    assert "environment.yml" in last and "CAFFE_ROOT" in last


# ---------------------------------------------------------------- offline and GPU machines (issue 13)

_BROKEN = "--- a/no/such/file.cpp\n+++ b/no/such/file.cpp\n@@ -1 +1 @@\n-x\n+y\n"
_UNREACHABLE = "http://127.0.0.1:9/debian"


def _debian_source_files() -> Path:
    """A folder with Debian's caffe source files, as an earlier build of this machine fetched them."""
    root = Path(os.environ.get("DEEPDREAM_CAFFE_CACHE", Path.home() / ".cache" / "deepdream-caffe")) / "caffe"
    for dl in sorted(root.glob("*/dl")):
        if list(dl.glob("caffe_*.orig.tar.gz")) and list(dl.glob("caffe_*.debian.tar.xz")):
            return dl
    pytest.skip("no fetched Debian caffe source on this machine (pycaffe came from elsewhere)")


def test_local_debian_source_builds_without_network_or_apt(tmp_path):
    """Debian's source files in a folder: no download (the mirror is unreachable), no apt (all installed)."""
    src = _debian_source_files()
    script = _script_copy(tmp_path, _BROKEN)
    env = dict(os.environ, DEEPDREAM_CAFFE_CACHE=str(tmp_path / "cache"), DEEPDREAM_CAFFE_DEBIAN_MIRROR=_UNREACHABLE,
               DEEPDREAM_CAFFE_SOURCE=str(src))
    r = subprocess.run(["bash", str(script), "--python", str(_bare_python(tmp_path))],
                       capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 1, r.stderr
    assert f"source: caffe 1.0.0+git20180821.99bd997-8 from {src}" in r.stderr
    assert "installing build dependencies" not in r.stderr  # every apt package is there already
    # It went on past the source: Debian's patches applied, then the (broken) project patch.
    last = r.stderr.strip().splitlines()[-1]
    assert "step 'project patch 0001-broken.patch' failed" in last, r.stderr


def test_a_caffe_source_tarball_gets_its_own_build_key(tmp_path):
    orig = next(_debian_source_files().glob("caffe_*.orig.tar.gz"))
    tarball = tmp_path / "caffe-src.tar.gz"
    shutil.copy(orig, tarball)  # alone: no Debian patches beside it
    script = _script_copy(tmp_path, _BROKEN)
    env = dict(os.environ, DEEPDREAM_CAFFE_CACHE=str(tmp_path / "cache"), DEEPDREAM_CAFFE_DEBIAN_MIRROR=_UNREACHABLE)
    r = subprocess.run(["bash", str(script), "--python", str(_bare_python(tmp_path)), "--caffe-source", str(tarball)],
                       capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 1, r.stderr
    assert f"source: {tarball}" in r.stderr
    assert "step 'project patch 0001-broken.patch' failed" in r.stderr.strip().splitlines()[-1]
    (build,) = [d for d in (tmp_path / "cache" / "caffe").glob("caffe-*-src*-p*") if d.is_dir()]
    assert (build / "src" / "CMakeLists.txt").is_file() and not (build / "src" / "debian").exists()


@pytest.mark.parametrize("source, says", [
    ("/no/such/caffe", "no such file or folder"),
    ("/etc", "neither Debian's caffe"),
    ("/etc/hostname", "not a tarball"),
])
def test_a_bad_caffe_source_is_one_line(tmp_path, source, says):
    r = subprocess.run(["bash", str(REPO / "scripts" / "build_caffe.sh"), "--python", sys.executable,
                        "--caffe-source", source, "--force"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and says in r.stderr, r.stderr


def _complete_cuda_toolkit() -> bool:
    return bool(glob.glob("/usr/local/cuda*/lib64/libcublas.so*") or glob.glob("/usr/lib/x86_64-linux-gnu/libcublas.so*"))


@pytest.mark.skipif(_complete_cuda_toolkit(), reason="a CUDA toolkit with cuBLAS is here: --cuda would build")
def test_cuda_build_without_the_toolkit_says_what_is_missing_in_one_line(tmp_path):
    # Here: either no nvcc at all, or (this machine) CUDA 13's nvcc without cuBLAS and cuRAND;
    # NVIDIA's wheels would fill the gap, but pip is offline (an empty wheel folder).
    (tmp_path / "wheels").mkdir()
    r = subprocess.run(["bash", str(REPO / "scripts" / "build_caffe.sh"), "--python", str(_bare_python(tmp_path)),
                        "--cuda"], capture_output=True, text=True, timeout=120,
                       env=dict(os.environ, DEEPDREAM_CAFFE_CACHE=str(tmp_path / "cache"), PIP_NO_INDEX="1",
                                PIP_FIND_LINKS=str(tmp_path / "wheels")))
    assert r.returncode == 1 and r.stderr.count("\n") == 1, r.stderr
    assert r.stderr.startswith("build_caffe: --cuda") and "pip could not install" in r.stderr
    assert "no CUDA toolkit" in r.stderr or ("lacks libcublas libcurand" in r.stderr and "nvidia-cublas" in r.stderr)
    assert not (tmp_path / "cache").exists()  # stopped before anything was fetched or built


def _has_gpu() -> bool:
    smi = shutil.which("nvidia-smi")
    return smi is not None and "GPU" in subprocess.run([smi, "-L"], capture_output=True, text=True).stdout


@pytest.mark.skipif(_has_gpu(), reason="this machine has a GPU: gpu_check.sh would run the whole check")
def test_gpu_check_without_a_gpu_is_one_line():
    r = subprocess.run(["bash", str(REPO / "scripts" / "gpu_check.sh")], capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr.count("\n") == 1 and "no NVIDIA GPU" in r.stderr
