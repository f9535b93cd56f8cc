"""The CUDA build of pycaffe on a machine without a GPU (marked ``cuda_build``).

scripts/gpu_check.sh --no-gpu runs them in the CUDA venv; anywhere the imported
pycaffe is CPU-only they are skipped. A cold CUDA build takes far longer than a
CI run, so CI never builds one.
"""
from __future__ import annotations

import ctypes.util
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cli_util import assert_one_line_error, run_cli

pytestmark = pytest.mark.cuda_build
REPO = Path(__file__).resolve().parents[2]
# What the bundle may take from the system: glibc, which the target brings.
GLIBC = re.compile(r"/(ld-linux-x86-64|libc|libm|libpthread|libdl|librt|libresolv)\.so[.\d]*$")


def _ldd(path: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "LD_LIBRARY_PATH"}
    out = subprocess.run(["ldd", str(path)], capture_output=True, text=True, env=env, check=True).stdout
    return {m[1]: m[2] for m in re.finditer(r"^\s*(\S+) => (\S+)", out, re.M)}


@pytest.fixture(scope="module")
def libcaffe() -> Path:
    """libcaffe of the CUDA pycaffe this interpreter imports (skips for a CPU-only one)."""
    spec = importlib.util.find_spec("caffe")
    if spec is None or not spec.origin:
        pytest.skip("pycaffe is not importable")
    so = Path(spec.origin).parent / "_caffe.so"
    lib = next((Path(p) for n, p in _ldd(so).items() if n.startswith("libcaffe")), None)
    if lib is None or "libcudart.so" not in " ".join(_ldd(lib)):
        pytest.skip("this pycaffe is CPU-only (scripts/gpu_check.sh --no-gpu runs these with the CUDA build)")
    return lib


@pytest.fixture(scope="module")
def no_gpu():
    smi = shutil.which("nvidia-smi")
    if smi and "GPU" in subprocess.run([smi, "-L"], capture_output=True, text=True).stdout:
        pytest.skip("a GPU is visible here: tests/net/test_gpu.py covers this machine")


def test_cublas_and_curand_come_from_nvidias_wheels_without_ld_library_path(libcaffe):
    libs = _ldd(libcaffe)
    for name in ("libcublas.so", "libcublasLt.so", "libcurand.so", "libcudart.so"):
        found = [p for n, p in libs.items() if n.startswith(name)]
        assert found and Path(found[0]).exists(), (name, libs)
    for name in ("libcublas.so", "libcurand.so"):
        real = os.path.realpath(next(p for n, p in libs.items() if n.startswith(name)))
        assert re.search(r"/site-packages/nvidia/(cu\d+|cublas|curand)/lib/", real), real
    dyn = subprocess.run(["readelf", "-d", str(libcaffe)], capture_output=True, text=True, check=True).stdout
    rpath = re.search(r"\((?:RUNPATH|RPATH)\).*\[(.*)\]", dyn)
    assert rpath and any(os.path.exists(os.path.join(d, "libcublas.so")) for d in rpath[1].split(":")), dyn
    # The import itself, in a child without LD_LIBRARY_PATH: the wheels' files are what gets mapped.
    env = {k: v for k, v in os.environ.items() if k != "LD_LIBRARY_PATH"}
    code = "import caffe; print(''.join(l for l in open('/proc/self/maps') if 'libcublas' in l or 'libcurand' in l))"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    assert re.search(r"nvidia/\S+/lib/libcublas\.so", r.stdout) and re.search(r"nvidia/\S+/lib/libcurand\.so", r.stdout)


def test_gpu_0_without_a_gpu_is_one_clear_line(libcaffe, no_gpu, tiny_model, tmp_path):
    photo = tmp_path / "in.png"
    Image.fromarray(np.random.RandomState(0).randint(0, 256, (60, 80, 3)).astype(np.uint8)).save(photo)
    r = run_cli(["dream", photo, "-o", tmp_path / "o.png", "--prototxt", tiny_model[0], "--weights", tiny_model[1],
                 "--layer", "a/output", "--iters", "2", "--octaves", "1", "--gpu", "0", "-q"])
    assert_one_line_error(r, "GPU 0 is not usable: this CUDA build of Caffe cannot use it", 'CUDA says "')
    if not ctypes.util.find_library("cuda"):
        assert "no NVIDIA driver here" in r.stderr
    assert not (tmp_path / "o.png").exists()
    # The same build dreams on the CPU.
    r = run_cli(["dream", photo, "-o", tmp_path / "o.png", "--prototxt", tiny_model[0], "--weights", tiny_model[1],
                 "--layer", "a/output", "--iters", "2", "--octaves", "1", "-q"])
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "o.png").stat().st_size > 0


def test_doctor_reports_a_cuda_build_and_no_gpu(libcaffe, no_gpu):
    r = run_cli(["doctor"])
    assert r.returncode == 0, r.stderr
    rows = dict(ln.split(":", 1) for ln in r.stdout.splitlines() if ":" in ln and not ln.startswith("warning"))
    assert rows["caffe"].strip().startswith("1.0.0, CUDA, ")
    assert rows["gpu"].strip().startswith("CUDA build, no GPU visible")


@pytest.mark.slow
def test_bundle_dreams_on_the_cpu_alone_bit_for_bit_with_the_cpu_build(libcaffe, tmp_path):
    """scripts/gpu_bundle.sh's file, unpacked into an empty folder, under env -i with a bare HOME."""
    ref_py = Path(os.environ.get("DEEPDREAM_CAFFE_CPU_PYTHON", REPO / ".venv" / "bin" / "python"))
    if not ref_py.exists():
        pytest.skip(f"no CPU build to compare with at {ref_py} (set DEEPDREAM_CAFFE_CPU_PYTHON)")
    bundle = os.environ.get("DEEPDREAM_CAFFE_BUNDLE")
    if not bundle:
        bundle = tmp_path / "bundle.tar.xz"
        subprocess.run([str(REPO / "scripts" / "gpu_bundle.sh"), str(bundle), "--python", sys.executable], check=True)
    assert os.path.getsize(bundle) <= 60 * 2**20
    cuda_libs = os.environ.get("DEEPDREAM_CAFFE_CUDA_LIBS")
    if not cuda_libs:  # stands in for the GPU machine's site-packages
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(tmp_path / "nv"),
                        "nvidia-cublas", "nvidia-curand"], check=True)
        cuda_libs = str(tmp_path / "nv" / "nvidia" / "cu13" / "lib")
    root, home = tmp_path / "unpacked", tmp_path / "home"
    root.mkdir()
    home.mkdir()
    subprocess.run(["tar", "-xJf", str(bundle), "-C", str(root)], check=True)
    inside = str(root / "bundle") + "/"

    def cpu_check(out: Path, *env: str) -> dict:
        t0 = time.perf_counter()
        r = subprocess.run(["env", "-i", f"HOME={home}", "PATH=/usr/bin:/bin", f"DEEPDREAM_CAFFE_CUDA_LIBS={cuda_libs}",
                            *env, str(root / "bundle" / "run.sh"), "cpu_check", str(out)],
                           capture_output=True, text=True, timeout=1800)
        print(f"run.sh cpu_check {' '.join(env)}: {time.perf_counter() - t0:.1f} s\n{r.stdout}")
        assert r.returncode == 0, r.stderr
        report = dict(ln.split(": ", 1) for ln in r.stdout.splitlines() if ": " in ln)
        assert report["python"].startswith(inside + "python/usr/bin/python3.11")
        for mod in ("numpy", "scipy", "PIL", "skimage", "google.protobuf", "caffe", "deepdream_caffe"):
            assert report[mod].startswith(inside), (mod, report[mod])
        return report

    report = cpu_check(tmp_path / "bundle.npy")
    outside = report["shared objects from outside the bundle"].split()
    assert all(GLIBC.search(o) or o.startswith(cuda_libs + "/") for o in outside), outside
    # For systems older than Debian 12: the bundle's own glibc, and the same bits.
    report = cpu_check(tmp_path / "bundle_glibc.npy", "DEEPDREAM_CAFFE_BUNDLE_GLIBC=1")
    assert report["python"].startswith(inside + "python/usr/bin/python3.11-glibc 3.11")
    outside = report["shared objects from outside the bundle"].split()
    assert all(o.startswith(cuda_libs + "/") for o in outside), outside
    assert np.array_equal(np.load(tmp_path / "bundle.npy"), np.load(tmp_path / "bundle_glibc.npy"))
    assert not any(os.listdir(home)), "the bundle wrote into HOME"

    # The project's CPU build: its own weights (same seed) and the same dream through bench.py's job.
    env = dict(os.environ, PYTHONPATH=str(REPO), DEEPDREAM_CAFFE_CACHE=str(tmp_path / "ref"))
    code = "import sys; sys.path.insert(0, sys.argv[1]); import bench, pathlib; print(*bench.googlenet_files(pathlib.Path(sys.argv[2])))"
    proto, weights = subprocess.run([str(ref_py), "-c", code, str(REPO / "scripts"), str(tmp_path / "ref")],
                                    capture_output=True, text=True, env=env, check=True).stdout.split()
    assert Path(weights).read_bytes() == Path(report["weights"]).read_bytes()
    subprocess.run([str(ref_py), str(REPO / "scripts" / "bench.py"), "--job", "product", "--out", str(tmp_path / "ref.npy"),
                    "--proto", proto, "--weights", weights, "--layer", "inception_4c/output", "--size", "256x144",
                    "--iters", "3", "--octaves", "2", "--seed", "0"], capture_output=True, env=env, check=True)
    got, want = np.load(tmp_path / "bundle.npy"), np.load(tmp_path / "ref.npy")
    assert got.shape == (144, 256, 3) and np.array_equal(got, want)
