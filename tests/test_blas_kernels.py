"""Issue 13: OpenBLAS never runs a generic kernel family on a CPU with AVX2 or AVX-512.

The hook that build_caffe.sh puts into the build's caffe/__init__.py runs in
every process that imports this pycaffe; these tests run it the way users
do, in fresh interpreters of the project's environment.
"""
from __future__ import annotations

import ctypes
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from deepdream_caffe import blas_hook

CPU = blas_hook.cpu_info()
AVX2 = {"avx2", "fma"} <= CPU["flags"]
needs_avx2 = pytest.mark.skipif(not AVX2, reason="this CPU has no AVX2+FMA: OpenBLAS's generic families are its best")

# What a fresh `import caffe` reports about OpenBLAS, measured in that process.
_QUERY = """
import ctypes, json, os, sys
import caffe
lib = ctypes.CDLL("libopenblas.so.0", mode=os.RTLD_NOLOAD)  # the one _caffe.so loaded; never loads another
lib.openblas_get_corename.restype = ctypes.c_char_p
hook = sys.modules.get("caffe._deepdream_openblas")
print(json.dumps({"core": lib.openblas_get_corename().decode(), "choice": hook.CHOICE if hook else None,
                  "env": os.environ.get("OPENBLAS_CORETYPE")}))
"""


def _clean_env(**extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENBLAS_")}
    env.update(extra)
    return env


def _import_caffe(env: dict) -> dict:
    r = subprocess.run([sys.executable, "-c", _QUERY], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------- a plain `import caffe`


@needs_avx2
def test_plain_import_caffe_never_runs_a_generic_family(tmp_path):
    # An empty cache: the probe runs for real in this import, as on a user's first one.
    got = _import_caffe(_clean_env(DEEPDREAM_CAFFE_CACHE=str(tmp_path)))
    assert got["choice"] is not None, "the build's caffe/__init__.py has no kernel-choice hook"
    assert not blas_hook.is_generic(got["core"]), got
    assert got["choice"]["reason"] in ("detected", "project")
    entry = json.loads(next((tmp_path / "openblas").glob("*.json")).read_text())
    assert entry["detected"] == got["choice"]["detected"]
    assert got["env"] is None  # the environment is left as it was


def test_user_set_coretype_is_kept():
    family = "Haswell" if AVX2 else "Nehalem"
    got = _import_caffe(_clean_env(OPENBLAS_CORETYPE=family))
    assert got["core"] == family and got["env"] == family
    assert got["choice"]["reason"] == "user"


@needs_avx2
def test_a_generic_fallback_is_replaced_and_the_environment_given_back(tmp_path):
    """The "project" path for real: OpenBLAS picks a fine family on this CPU, so the cache says it did not.

    The cache entry is the hook's own, written by a first import; only its
    record of OpenBLAS's own choice is changed to Prescott, as on the Intel
    Xeon (family 6, model 207) where Debian's 0.3.21 falls back to it.
    """
    env = _clean_env(DEEPDREAM_CAFFE_CACHE=str(tmp_path))
    _import_caffe(env)
    path = next((tmp_path / "openblas").glob("*.json"))
    entry = json.loads(path.read_text())
    family = "Zen" if CPU["vendor"] == "AuthenticAMD" else "Haswell"
    entry.update(detected="Prescott", choice=family)
    path.write_text(json.dumps(entry))
    got = _import_caffe(env)
    assert got["core"] == family
    assert got["choice"]["reason"] == "project" and got["choice"]["detected"] == "Prescott"
    assert got["env"] is None  # numpy's OpenBLAS and child processes see the environment as the user left it
    # A user's choice still wins over the project's.
    got = _import_caffe(dict(env, OPENBLAS_CORETYPE="Sandybridge"))
    assert got["core"] == "Sandybridge" and got["choice"]["reason"] == "user"


# ---------------------------------------------------------------- the decision, for CPUs not here

_SSE = {"sse", "sse2", "ssse3", "sse4_1", "sse4_2", "avx"}
_AVX512 = {"avx512f", "avx512dq", "avx512bw", "avx512vl", "avx512cd"}
INTEL_AVX512_BF16 = frozenset(_SSE | _AVX512 | {"avx2", "fma", "avx512_bf16", "avx512_vnni"})


@pytest.mark.parametrize("vendor, flags, detected, want", [
    # The Intel Xeon (family 6 model 207): Prescott -> Cooperlake first.
    ("GenuineIntel", INTEL_AVX512_BF16, "Prescott", ["Cooperlake", "SkylakeX", "Haswell", "Zen"]),
    ("GenuineIntel", INTEL_AVX512_BF16 | {"amx_tile"}, "Prescott",
     ["SapphireRapids", "Cooperlake", "SkylakeX", "Haswell", "Zen"]),
    ("GenuineIntel", frozenset(_SSE | _AVX512 | {"avx2", "fma"}), "Nehalem", ["SkylakeX", "Haswell", "Zen"]),
    ("GenuineIntel", frozenset(_SSE | {"avx2", "fma"}), "Core2", ["Haswell", "Zen"]),
    ("GenuineIntel", frozenset(_SSE | {"avx2", "fma"}), "Sandybridge", ["Haswell", "Zen"]),
    # AMD: Zen's kernels before Haswell's; a Zen 5 with AVX-512 and BF16 that 0.3.21 calls Barcelona.
    ("AuthenticAMD", frozenset(_SSE | {"avx2", "fma"}), "Barcelona", ["Zen", "Haswell"]),
    ("AuthenticAMD", INTEL_AVX512_BF16, "Barcelona", ["Cooperlake", "SkylakeX", "Zen", "Haswell"]),
    ("HygonGenuine", frozenset(_SSE | {"avx2", "fma"}), "Prescott", ["Zen", "Haswell"]),
    # Nothing to do: OpenBLAS knows the CPU, or the CPU has nothing better than the generic kernels.
    ("GenuineIntel", INTEL_AVX512_BF16, "Cooperlake", []),
    ("GenuineIntel", INTEL_AVX512_BF16, "SkylakeX", []),
    ("AuthenticAMD", frozenset(_SSE | {"avx2", "fma"}), "Zen", []),
    ("AuthenticAMD", frozenset(_SSE | {"avx2", "fma"}), "Haswell", []),
    ("GenuineIntel", frozenset(_SSE), "Nehalem", []),
    ("GenuineIntel", frozenset(_SSE | {"avx2"}), "Sandybridge", []),  # AVX2 without FMA: no Haswell kernels
    ("GenuineIntel", INTEL_AVX512_BF16, "Zen5", []),  # a family newer than this table: OpenBLAS knows best
    ("GenuineIntel", INTEL_AVX512_BF16, None, []),
])
def test_decision_table(vendor, flags, detected, want):
    assert blas_hook.decide(detected, vendor, flags) == want


def test_cpuinfo_first_block_is_parsed(tmp_path):
    block = ("processor\t: {n}\nvendor_id\t: GenuineIntel\ncpu family\t: 6\nmodel\t\t: 207\n"
             "model name\t: Intel(R) Xeon(R) Platinum 8581C CPU @ 2.10GHz\nstepping\t: 2\n"
             "flags\t\t: fpu sse2 avx2 fma avx512f avx512dq avx512bw avx512vl avx512_bf16\n\n")
    p = tmp_path / "cpuinfo"
    p.write_text("".join(block.format(n=i) for i in range(64)))
    info = blas_hook.cpu_info(str(p))
    assert (info["vendor"], info["family"], info["model"], info["stepping"]) == ("GenuineIntel", "6", "207", "2")
    assert info["model_name"].startswith("Intel(R) Xeon(R) Platinum")
    assert {"avx512_bf16", "avx2", "fma"} <= info["flags"] and "processor" not in info["flags"]
    assert blas_hook.decide("Prescott", info["vendor"], info["flags"])[0] == "Cooperlake"


# ---------------------------------------------------------------- the probe


@needs_avx2
@pytest.mark.skipif("avx512f" in CPU["flags"], reason="this CPU runs AVX-512 kernels")
def test_families_are_probed_in_order_and_the_first_that_works_is_taken():
    """On this AVX2 CPU: SkylakeX kills its probe (SIGILL) but not the caller, unknown names are refused."""
    choice, rejected, check = blas_hook.first_working(["SapphireRapids", "SkylakeX", "NoSuchFamily", "Haswell", "Zen"])
    assert choice == "Haswell" and "within bounds" in check
    assert list(rejected) == ["SapphireRapids", "SkylakeX", "NoSuchFamily"]  # Zen, after Haswell, never probed
    assert "SIGILL" in rejected["SkylakeX"]
    assert "has no NoSuchFamily kernels" in rejected["NoSuchFamily"]
    # 0.3.21 has no SapphireRapids kernels; a newer OpenBLAS has them but not this CPU's AMX.
    assert "has no SapphireRapids kernels" in rejected["SapphireRapids"] or "SIGILL" in rejected["SapphireRapids"]


def test_probe_refuses_a_family_this_openblas_does_not_have():
    r = blas_hook.probe("NoSuchFamily")
    assert not r["ok"] and "has no NoSuchFamily kernels" in r["why"], r


_NAIVE_BLAS = r"""
/* A plain row-major single-precision BLAS: sums in another order than OpenBLAS's. */
int k_drop = 0;  /* terms of sgemm's inner sum left out: the bug */
void cblas_sgemm(int o, int ta, int tb, int m, int n, int k, float al, const float *a, int lda,
                 const float *b, int ldb, float be, float *c, int ldc) {
  for (int i = 0; i < m; i++) for (int j = 0; j < n; j++) {
    float s = 0.f;
    for (int p = 0; p < k - (k > 1 ? k_drop : 0); p++)
      s += (ta == 112 ? a[p * lda + i] : a[i * lda + p]) * (tb == 112 ? b[j * ldb + p] : b[p * ldb + j]);
    c[i * ldc + j] = al * s + (be == 0.f ? 0.f : be * c[i * ldc + j]);
  }
}
void cblas_sgemv(int o, int t, int m, int n, float al, const float *a, int lda, const float *x, int incx,
                 float be, float *y, int incy) {
  int rows = t == 112 ? n : m, len = t == 112 ? m : n;
  for (int i = 0; i < rows; i++) {
    float s = 0.f;
    for (int p = 0; p < len; p++) s += (t == 112 ? a[p * lda + i] : a[i * lda + p]) * x[p * incx];
    y[i * incy] = al * s + (be == 0.f ? 0.f : be * y[i * incy]);
  }
}
void cblas_saxpy(int n, float al, const float *x, int incx, float *y, int incy) {
  for (int i = 0; i < n; i++) y[i * incy] += al * x[i * incx];
}
float cblas_sdot(int n, const float *x, int incx, const float *y, int incy) {
  float s = 0.f; for (int i = 0; i < n; i++) s += x[i * incx] * y[i * incy]; return s;
}
float cblas_sasum(int n, const float *x, int incx) {
  float s = 0.f; for (int i = 0; i < n; i++) s += x[i * incx] < 0 ? -x[i * incx] : x[i * incx]; return s;
}
void cblas_sscal(int n, float al, float *x, int incx) { for (int i = 0; i < n; i++) x[i * incx] *= al; }
"""


def test_the_kernel_check_passes_a_correct_blas_and_rejects_a_wrong_sgemm(tmp_path):
    """check_kernels' bounds hold for any summation order, yet one missing term of a sum fails them."""
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    assert cc, "no C compiler (it is there wherever Caffe was built)"
    (tmp_path / "naive.c").write_text(_NAIVE_BLAS)
    # -ffp-contract=off: products and sums rounded one by one, unlike OpenBLAS's fused kernels.
    subprocess.run([cc, "-O1", "-ffp-contract=off", "-shared", "-fPIC", str(tmp_path / "naive.c"), "-o",
                    str(tmp_path / "libnaive.so")], check=True)
    lib = ctypes.CDLL(str(tmp_path / "libnaive.so"))
    ok, why = blas_hook.check_kernels(lib)
    assert ok, why
    ctypes.c_int.in_dll(lib, "k_drop").value = 1
    ok, why = blas_hook.check_kernels(lib)
    assert not ok and why.startswith("sgemm") and "times the float32 bound" in why, why


def test_the_kernels_caffe_runs_here_compute_correctly():
    """The same result check, on the OpenBLAS this process's Caffe loaded with the family it uses."""
    import caffe  # noqa: F401

    lib = blas_hook.loaded_openblas()
    assert lib is not None
    ok, why = blas_hook.check_kernels(lib)
    assert ok, f"{blas_hook.corename(lib)}: {why}"


# ---------------------------------------------------------------- the hook's installation


def test_hook_installation_is_idempotent_and_replaces_an_older_hook():
    stock = "from .pycaffe import Net\nfrom . import io\n"
    once = blas_hook.with_hook(stock)
    assert once.endswith(stock) and once.startswith("# >>> deepdream-caffe")
    assert blas_hook.with_hook(once) == once
    older = once.replace("_dd_openblas.choose()", "_dd_openblas.choose()  # version 0")
    assert blas_hook.with_hook(older) == once
    compile(once, "__init__.py", "exec")
    with pytest.raises(ValueError, match="not its end"):
        blas_hook.with_hook(once.replace("# <<< deepdream-caffe\n", ""))


def test_the_build_has_the_hook_and_this_version_of_it():
    import caffe  # noqa: F401 - the hook module is imported by caffe/__init__.py

    hook = sys.modules.get(f"caffe.{blas_hook.HOOK_MODULE}")
    assert hook is not None, "run scripts/setup.sh: the build has no kernel-choice hook"
    assert Path(hook.__file__).parent == Path(caffe.__file__).parent
    assert hook.HOOK_VERSION == blas_hook.HOOK_VERSION, "run scripts/setup.sh to bring the build's hook up to date"
    assert hook.CHOICE["reason"] in ("detected", "project", "user") and "has not run" not in hook.CHOICE.get("note", "")
