"""``deepdream-caffe doctor``: what this machine and build will run on, and what to expect.

Everything that decides speed and bits in one report: the Caffe build,
the BLAS it links with its kernel family and why that family, threads,
the CPU and its SIMD flags, GPUs, and numpy's own BLAS.
"""
from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
from typing import Any, Dict, List, Optional

import numpy

from .. import __version__, blas_hook
from ..errors import DeepDreamError
from ..net.caffe_env import find_caffe_root, import_caffe
from ..net.devices import gpu_usable as _usable

# The flags that decide which kernels can run (OpenBLAS's families, Caffe's patched loops).
RELEVANT_FLAGS = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512dq", "avx512bw", "avx512vl",
                  "avx512_vnni", "avx512_bf16", "amx_tile")


def _caffe() -> Dict[str, Any]:
    try:
        caffe = import_caffe()
    except DeepDreamError as e:
        return {"importable": False, "error": str(e)}
    try:
        with open("/proc/self/maps") as f:
            cuda = any("libcudart" in ln for ln in f)
    except OSError:
        cuda = None
    root = find_caffe_root()
    return {
        "importable": True,
        "path": os.path.dirname(caffe.__file__),
        "version": getattr(caffe, "__version__", None),
        "root": str(root) if root else None,
        "cuda": cuda,
        "hook": f"caffe.{blas_hook.HOOK_MODULE}" in sys.modules,
    }


def _gpus() -> List[str]:
    """GPUs nvidia-smi lists (empty without a driver)."""
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return []
    try:
        r = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return []
    return [ln.strip() for ln in r.stdout.splitlines() if ln.strip().startswith("GPU")] if r.returncode == 0 else []


def collect() -> Dict[str, Any]:
    """The facts of the report as a JSON-able dict (pycaffe is imported, as a dream would)."""
    try:
        cpu = blas_hook.cpu_info()
    except OSError:
        cpu = {"vendor": "", "family": "", "model": "", "stepping": "", "model_name": platform.processor(),
               "flags": frozenset()}
    caffe = _caffe()
    choice = blas_hook.kernel_choice() if caffe["importable"] else None
    gpus = _gpus()
    gpu_usable = None
    if caffe.get("cuda") and gpus:
        gpu_usable = _usable(0)
    try:
        affinity: Optional[int] = len(os.sched_getaffinity(0))
    except AttributeError:
        affinity = None
    return {
        "version": __version__,
        "python": f"{platform.python_version()} ({sys.executable})",
        "caffe": caffe,
        "blas": choice,
        "threads_env": {k: os.environ[k] for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_CORETYPE")
                        if k in os.environ},
        "cpu": {k: v for k, v in cpu.items() if k != "flags"},
        "cores": {"online": os.cpu_count(), "usable": affinity},
        "flags": {f: f in cpu["flags"] for f in RELEVANT_FLAGS},
        "modern_simd": blas_hook.has_modern_simd(cpu["flags"]),
        "gpus": gpus,
        "gpu_usable": gpu_usable,
        "numpy": dict(blas_hook.numpy_openblas(), version=numpy.__version__),
    }


def warnings(facts: Dict[str, Any]) -> List[str]:
    """What in ``facts`` makes runs slower than they could be, one line each."""
    out = []
    ch = facts["blas"]
    if ch and ch.get("core") and blas_hook.is_generic(ch["core"]) and facts["modern_simd"]:
        out.append(f"Caffe's OpenBLAS runs generic {ch['core']} kernels although this CPU has AVX2/AVX-512: "
                   "expect matrix products several times slower"
                   + (" (OPENBLAS_CORETYPE is set; unset it to let deepdream-caffe choose)" if ch["reason"] == "user"
                      else ""))
    if facts["caffe"].get("importable") and not facts["caffe"].get("hook"):
        out.append("this pycaffe has no kernel-choice hook (not built by scripts/build_caffe.sh): "
                   "OpenBLAS keeps its own choice")
    if facts["gpus"] and facts["caffe"].get("cuda") is False:
        out.append("a GPU is present but this Caffe is CPU-only: scripts/setup.sh --cuda builds the CUDA one")
    return out


def format_report(facts: Dict[str, Any]) -> str:
    """The report as aligned ``name: value`` lines."""
    rows = [("deepdream-caffe", facts["version"]), ("python", facts["python"])]
    c = facts["caffe"]
    if not c["importable"]:
        rows.append(("caffe", f"NOT importable: {c['error']}"))
    else:
        kind = {True: "CUDA", False: "CPU only", None: "?"}[c["cuda"]]
        rows.append(("caffe", f"{c['version'] or '?'}, {kind}, {c['path']}"))
        if c["root"]:
            rows.append(("caffe build", c["root"]))
    ch = facts["blas"]
    if ch is not None:
        if ch["core"] is None:
            rows.append(("caffe's BLAS", "not OpenBLAS (or not loaded)"))
        else:
            rows.append(("caffe's BLAS", f"{ch['config'] or 'OpenBLAS'} ({ch['library']})"))
            rows.append(("kernel family", f"{blas_hook.describe(ch)}; reason: {ch['reason']}"))
            for fam, why in (ch.get("rejected") or {}).items():
                rows.append(("  not used", f"{fam}: {why}"))
            env = ", ".join(f"{k}={v}" for k, v in facts["threads_env"].items())
            rows.append(("threads", f"{ch['threads']}" + (f" ({env})" if env else "")))
    cpu = facts["cpu"]
    rows.append(("cpu", f"{cpu['model_name'] or '?'} ({cpu['vendor'] or '?'} family {cpu['family']} model "
                        f"{cpu['model']} stepping {cpu['stepping']}), {facts['cores']['usable']} usable cores"))
    have = [f for f, on in facts["flags"].items() if on]
    lack = [f for f, on in facts["flags"].items() if not on]
    rows.append(("cpu flags", " ".join(have) + (f" (not: {' '.join(lack)})" if lack else "")))
    if facts["gpus"]:
        use = {True: "usable by this Caffe", False: "NOT usable by this Caffe", None: "this Caffe is CPU-only"}
        rows.append(("gpu", "; ".join(facts["gpus"]) + f" ({use[facts['gpu_usable']]})"))
    elif c.get("cuda"):
        rows.append(("gpu", "CUDA build, no GPU visible (no nvidia-smi or no NVIDIA GPU): runs on the CPU"))
    else:
        rows.append(("gpu", "none found (no nvidia-smi or no NVIDIA GPU)"))
    n = facts["numpy"]
    rows.append(("numpy", f"{n['version']}, {n['config'] or 'BLAS unknown'}"
                          + (f", {n['core']} kernels" if n["core"] else "")))
    width = max(len(k) for k, _ in rows)
    lines = [f"{k + ':':<{width + 1}} {v}" for k, v in rows]
    lines += [f"warning: {w}" for w in warnings(facts)]
    return "\n".join(lines)


def run_doctor(as_json: bool = False) -> int:
    """Print the report (or its facts as JSON); exit status 1 when pycaffe cannot be imported."""
    facts = collect()
    if as_json:
        print(json.dumps(facts, indent=1, sort_keys=True, default=str))
    else:
        print(format_report(facts))
    return 0 if facts["caffe"]["importable"] else 1
