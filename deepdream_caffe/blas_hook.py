"""OpenBLAS's kernel family for pycaffe: never a generic fallback on a CPU with AVX2 or AVX-512.

OpenBLAS picks its kernels once, when the library loads, from the CPU
models it knows. Debian 12's 0.3.21 does not know CPUs released after it
and falls back to a generic family (Prescott, SSE3 only: 22-34 GFLOP/s
where Cooperlake runs at 170-220 on an Intel Xeon with AVX-512-BF16).
``choose()`` runs before pycaffe's ``_caffe.so`` loads OpenBLAS, so every
process that imports this build's pycaffe (a plain ``import caffe`` in a
notebook too) gets the same kernels:

* ``OPENBLAS_CORETYPE`` set by the user: kept (reason "user");
* OpenBLAS's own choice is not generic, or the CPU has neither AVX2+FMA nor
  AVX-512: left alone (reason "detected");
* otherwise the best family for the CPU's flags that this OpenBLAS really
  has and that computes correctly here, found by probing each candidate
  in a child process (reason "project"). The library is then loaded with
  ``OPENBLAS_CORETYPE`` set and the variable removed again, so numpy's
  own OpenBLAS and child processes see the environment as it was.

Probing costs a few child processes once per CPU and library file; the
answer is cached in ``$DEEPDREAM_CAFFE_CACHE/openblas/`` (default
``~/.cache/deepdream-caffe``). Any failure leaves OpenBLAS's own choice.
``DEEPDREAM_CAFFE_OPENBLAS_HOOK=0`` turns the choice off.

This file must import nothing but the standard library (numpy only inside
the probe's child) and nothing from its package: scripts/build_caffe.sh
runs it (``python -I blas_hook.py --install-hook DIR``) to copy itself into the
pycaffe tree as ``caffe/_deepdream_openblas.py`` and to call ``choose()``
at the top of ``caffe/__init__.py``. deepdream_caffe reads what the copy
did through ``kernel_choice()``. As every process that imports caffe runs
it, what only probing needs is imported where it is used (a cache hit must
cost next to nothing).
"""
from __future__ import annotations

import ctypes
import errno
import json
import os
import stat
import sys
import zlib
from typing import Any, Dict, FrozenSet, List, Optional, Tuple

SONAME = "libopenblas.so.0"  # what Debian's libcaffe links (numpy's copy has another name)
HOOK_VERSION = 1  # part of the cache key: bump when the choice or the probe changes
PROBE_TIMEOUT = 30.0  # a probe takes well under a second; this only bounds a hung one
HOOK_ENV = "DEEPDREAM_CAFFE_OPENBLAS_HOOK"
_IN_PROBE_ENV = "DEEPDREAM_CAFFE_OPENBLAS_PROBE"

# Families whose kernels predate AVX2: on a CPU with AVX2+FMA or AVX-512 these
# are fallbacks, never the right choice. Names as openblas_get_corename() gives them.
GENERIC_FAMILIES = frozenset(name.lower() for name in (
    "Unknown", "Katmai", "Coppermine", "Northwood", "Prescott", "Banias", "Atom", "Core2", "Penryn",
    "Dunnington", "Nehalem", "Athlon", "Opteron", "Opteron_SSE3", "Barcelona", "Nano", "Sandybridge",
    "Bobcat", "Bulldozer", "Piledriver", "Steamroller",
))
_AVX512 = frozenset({"avx512f", "avx512bw", "avx512vl", "avx512dq"})  # what SkylakeX's kernels use
_AMD_VENDORS = ("AuthenticAMD", "HygonGenuine")

#: What ``choose()`` did in this process (read by deepdream_caffe and its doctor).
CHOICE: Dict[str, Any] = {"reason": "detected", "note": "choose() has not run"}


# ---------------------------------------------------------------- the decision (pure)


def has_modern_simd(flags: FrozenSet[str]) -> bool:
    """Whether the CPU runs kernels better than any generic family (AVX2 with FMA, or AVX-512)."""
    return {"avx2", "fma"} <= flags or _AVX512 <= flags


def is_generic(core: Optional[str]) -> bool:
    """Whether ``core`` (an openblas_get_corename() answer) is a pre-AVX2 family."""
    return core is not None and core.lower() in GENERIC_FAMILIES


def candidates(vendor: str, flags: FrozenSet[str]) -> List[str]:
    """Kernel families for these CPU flags, best first (each still has to pass the probe).

    Newer families first; OpenBLAS versions that lack one simply fail its
    probe (they report another name), so listing a family it may not have
    is safe. On AMD, Zen's kernels (Haswell's, with Zen's block sizes) come
    before Haswell's.
    """
    out: List[str] = []
    if _AVX512 <= flags:
        if "avx512_bf16" in flags and "amx_tile" in flags:
            out.append("SapphireRapids")
        if "avx512_bf16" in flags:
            out.append("Cooperlake")
        out.append("SkylakeX")
    if {"avx2", "fma"} <= flags:
        out += ["Zen", "Haswell"] if vendor in _AMD_VENDORS else ["Haswell", "Zen"]
    return out


def decide(detected: Optional[str], vendor: str, flags: FrozenSet[str]) -> List[str]:
    """Families to try instead of OpenBLAS's own ``detected`` one; empty: keep OpenBLAS's."""
    if not is_generic(detected) or not has_modern_simd(flags):
        return []
    return candidates(vendor, flags)


# ---------------------------------------------------------------- the CPU


def cpu_info(path: str = "/proc/cpuinfo") -> Dict[str, Any]:
    """Vendor, family, model, stepping, model name and flags of the first CPU (Linux).

    Reads only the first processor's block, so it stays cheap on many-core machines.
    """
    text = ""
    with open(path, "r", errors="replace") as f:
        while "\n\n" not in text:
            chunk = f.read(4096)
            if not chunk:
                break
            text += chunk
    fields: Dict[str, str] = {}
    for line in text.split("\n\n", 1)[0].splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields.setdefault(key.strip(), value.strip())
    flags = fields.get("flags") or fields.get("Features") or ""
    return {
        "vendor": fields.get("vendor_id", ""),
        "family": fields.get("cpu family", ""),
        "model": fields.get("model", ""),
        "stepping": fields.get("stepping", ""),
        "model_name": fields.get("model name", ""),
        "flags": frozenset(flags.split()),
    }


# ---------------------------------------------------------------- the library


def loaded_openblas() -> Optional[ctypes.CDLL]:
    """The OpenBLAS that Caffe links if this process has already loaded it, else None (never loads it)."""
    try:
        return ctypes.CDLL(SONAME, mode=os.RTLD_NOLOAD)
    except OSError:
        return None


def _text(lib: ctypes.CDLL, name: str) -> Optional[str]:
    """The string OpenBLAS function ``name`` returns, or None where this library has no such function."""
    try:
        f = getattr(lib, name)
    except AttributeError:
        return None
    f.restype = ctypes.c_char_p
    return f().decode("ascii", "replace").strip()


def corename(lib: ctypes.CDLL) -> Optional[str]:
    """openblas_get_corename(): the kernel family in use, e.g. "Haswell"."""
    return _text(lib, "openblas_get_corename")


def config(lib: ctypes.CDLL) -> Optional[str]:
    """openblas_get_config(): version and build options, e.g. "OpenBLAS 0.3.21 DYNAMIC_ARCH ..."."""
    return _text(lib, "openblas_get_config")


def num_threads(lib: ctypes.CDLL) -> Optional[int]:
    """openblas_get_num_threads()."""
    try:
        return int(lib.openblas_get_num_threads())
    except AttributeError:
        return None


class _LinkMap(ctypes.Structure):
    _fields_ = [("l_addr", ctypes.c_void_p), ("l_name", ctypes.c_char_p)]


def library_path(lib: ctypes.CDLL) -> Optional[str]:
    """The file the dynamic loader opened for ``lib`` (glibc's dlinfo), or None."""
    try:
        dlinfo = ctypes.CDLL(None).dlinfo
    except (OSError, AttributeError):
        return None
    lm = ctypes.POINTER(_LinkMap)()
    if dlinfo(ctypes.c_void_p(lib._handle), 2, ctypes.byref(lm)) != 0 or not lm:  # 2: RTLD_DI_LINKMAP
        return None
    name = lm.contents.l_name
    return name.decode() if name else None


def _file_identity(path: str) -> Dict[str, Any]:
    real = os.path.realpath(path)
    st = os.stat(real)
    return {"path": path, "real": real, "size": st.st_size, "mtime_ns": st.st_mtime_ns,
            "ino": st.st_ino, "dev": st.st_dev}


# ---------------------------------------------------------------- the probe (child side)


def check_kernels(lib: ctypes.CDLL) -> Tuple[bool, str]:
    """sgemm/sgemv/saxpy/sdot/sasum/sscal of ``lib`` against float64 references.

    Each result must lie within the float32 rounding bound of its
    operation (for a sum of n products: (n+2) * 2^-24 * sum of the
    magnitudes, twice that for margin); shapes cover the kernels' edge
    tiles, several blocks of the inner dimension, both transposes, beta 0
    and 1, and sizes large enough for OpenBLAS to use all its threads.
    Returns (ok, a one-line account).
    """
    import numpy as np

    fp = ctypes.POINTER(ctypes.c_float)
    f32, i32 = ctypes.c_float, ctypes.c_int
    u = 2.0 ** -24
    rs = np.random.RandomState(20261201)
    worst = [0.0, ""]

    def ptr(a):
        return a.ctypes.data_as(fp)

    def judge(name: str, got, ref, scale, n: int) -> Optional[str]:
        got = np.asarray(got, dtype=np.float64)
        if not np.all(np.isfinite(got)):
            return f"{name}: non-finite results"
        bound = 2.0 * (n + 2) * u * np.asarray(scale, dtype=np.float64) + 1e-30
        r = float(np.max(np.abs(got - ref) / bound))
        if r > worst[0]:
            worst[:] = [r, name]
        return None if r <= 1.0 else f"{name}: error {r:.3g} times the float32 bound"

    def rand(*shape):
        return rs.uniform(-1, 1, shape).astype(np.float32)

    errors: List[Optional[str]] = []
    # m, n, k, transpose A, transpose B, alpha, beta
    for m, n, k, ta, tb, alpha, beta in ((301, 257, 385, 0, 0, 1.0, 0.0), (67, 129, 600, 1, 0, 0.5, 1.0),
                                         (128, 96, 1, 0, 1, 1.0, 1.0), (17, 3, 5, 1, 1, -2.0, 0.25),
                                         (64, 3000, 147, 0, 0, 1.0, 0.0)):
        a = rand(k, m) if ta else rand(m, k)
        b = rand(n, k) if tb else rand(k, n)
        c = rand(m, n)
        oa, ob = (a.T if ta else a).astype(np.float64), (b.T if tb else b).astype(np.float64)
        alpha, beta = float(np.float32(alpha)), float(np.float32(beta))  # what the kernel gets
        ref = alpha * (oa @ ob) + beta * c.astype(np.float64)
        scale = abs(alpha) * (np.abs(oa) @ np.abs(ob)) + abs(beta) * np.abs(c)
        lib.cblas_sgemm(101, 112 if ta else 111, 112 if tb else 111, m, n, k, f32(alpha), ptr(a), a.shape[1],
                        ptr(b), b.shape[1], f32(beta), ptr(c), n)
        errors.append(judge(f"sgemm {m}x{n}x{k}{' A^T' if ta else ''}{' B^T' if tb else ''}", c, ref, scale, k))
    for m, n, trans, beta in ((513, 301, 0, 0.0), (513, 301, 1, 0.5), (3, 2000, 1, 1.0)):
        a = rand(m, n)
        x = rand(m if trans else n)
        y = rand(n if trans else m)
        oa = (a.T if trans else a).astype(np.float64)
        ref = 0.75 * (oa @ x.astype(np.float64)) + beta * y.astype(np.float64)
        scale = 0.75 * (np.abs(oa) @ np.abs(x.astype(np.float64))) + abs(beta) * np.abs(y)
        lib.cblas_sgemv(101, 112 if trans else 111, m, n, f32(0.75), ptr(a), n, ptr(x), 1, f32(beta), ptr(y), 1)
        errors.append(judge(f"sgemv {m}x{n}{' A^T' if trans else ''}", y, ref, scale, oa.shape[1]))
    lib.cblas_sdot.restype = lib.cblas_sasum.restype = f32
    for n in (100003, 7):
        x, y = rand(n), rand(n)
        a6 = float(np.float32(0.6))
        ref = a6 * x.astype(np.float64) + y.astype(np.float64)
        scale = a6 * np.abs(x.astype(np.float64)) + np.abs(y)
        lib.cblas_saxpy(i32(n), f32(0.6), ptr(x), 1, ptr(y), 1)
        errors.append(judge(f"saxpy {n}", y, ref, scale, 1))
        x, y = rand(n), rand(n)
        dot = lib.cblas_sdot(i32(n), ptr(x), 1, ptr(y), 1)
        x64, y64 = x.astype(np.float64), y.astype(np.float64)
        errors.append(judge(f"sdot {n}", dot, float(x64 @ y64), float(np.abs(x64) @ np.abs(y64)), n))
        asum = lib.cblas_sasum(i32(n), ptr(x), 1)
        errors.append(judge(f"sasum {n}", asum, float(np.abs(x64).sum()), float(np.abs(x64).sum()), n))
        ref = float(np.float32(-1.3)) * x64
        lib.cblas_sscal(i32(n), f32(-1.3), ptr(x), 1)
        errors.append(judge(f"sscal {n}", x, ref, np.abs(ref), 1))
    bad = [e for e in errors if e]
    if bad:
        return False, "; ".join(bad)
    return True, f"all results within bounds (worst {worst[0]:.2g} of the bound, {worst[1]})"


def _probe_main(argv: List[str]) -> None:
    """Child side of probe(): load OpenBLAS (with OPENBLAS_CORETYPE=argv[0] unless "-"), print a JSON line."""
    want = argv[0] if argv and argv[0] != "-" else None
    if want is not None:
        import numpy  # noqa: F401 - numpy's own OpenBLAS loads first, with the environment as given
        os.environ["OPENBLAS_CORETYPE"] = want
    lib = ctypes.CDLL(SONAME)
    core = corename(lib)
    out: Dict[str, Any] = {"core": core, "config": config(lib), "lib": library_path(lib)}
    if want is not None:
        if core is None or core.lower() != want.lower():
            out.update(ok=False, why=f"this OpenBLAS has no {want} kernels (it reports {core})")
        else:
            ok, why = check_kernels(lib)
            out.update(ok=ok, why=why)
    print(json.dumps(out))


# ---------------------------------------------------------------- the probe (parent side)

_CHILD = ("import importlib.util as u, sys; s = u.spec_from_file_location('_deepdream_openblas_probe', sys.argv[1]); "
          "m = u.module_from_spec(s); s.loader.exec_module(m); m._probe_main(sys.argv[2:])")


def probe(family: Optional[str] = None, timeout: float = PROBE_TIMEOUT) -> Dict[str, Any]:
    """Load OpenBLAS in a child process, as OpenBLAS itself would (``family`` None) or forced to ``family``.

    With a family the child also checks the kernels' results
    (check_kernels). Returns {"core", "config", "lib", "ok", "why"}; a
    child that crashes (an instruction the CPU lacks: SIGILL) or hangs
    gives ok False and says so. The parent never loads anything.
    """
    import signal
    import subprocess
    import tempfile

    if not sys.executable:
        return {"core": None, "ok": False, "why": "no Python executable to run the probe"}
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_CORETYPE"}
    env[_IN_PROBE_ENV] = "1"
    cmd = [sys.executable, "-c", _CHILD, os.path.abspath(__file__), family or "-"]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=tempfile.gettempdir())
    except subprocess.TimeoutExpired:
        return {"core": None, "ok": False, "why": f"the probe did not finish in {timeout:.0f} s"}
    except OSError as e:
        return {"core": None, "ok": False, "why": f"the probe did not start: {e}"}
    if r.returncode != 0:
        if r.returncode < 0:
            try:
                how = signal.Signals(-r.returncode).name
            except ValueError:
                how = f"signal {-r.returncode}"
        else:
            how = f"exit {r.returncode}: {(r.stderr.strip().splitlines() or [''])[-1][:200]}"
        return {"core": None, "ok": False, "why": f"the probe crashed ({how})"}
    try:
        out = json.loads(r.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        return {"core": None, "ok": False, "why": "the probe printed no result"}
    out.setdefault("ok", family is None)
    return out


# ---------------------------------------------------------------- cache


def cache_dir() -> str:
    """$DEEPDREAM_CAFFE_CACHE/openblas (default ~/.cache/deepdream-caffe/openblas)."""
    root = os.environ.get("DEEPDREAM_CAFFE_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "deepdream-caffe")
    return os.path.join(root, "openblas")


def _cache_key(cpu: Dict[str, Any]) -> str:
    # The CPU (model and flags) and how the loader finds the library decide the answer;
    # the library file itself is checked against the entry on every hit.
    return json.dumps([HOOK_VERSION, SONAME, cpu["vendor"], cpu["family"], cpu["model"], cpu["stepping"],
                       " ".join(sorted(cpu["flags"])), os.environ.get("LD_LIBRARY_PATH", "")])


_CACHE_BYTES = 64 << 10  # an entry is its key, the library's identity and the choice: well under 4 KB


def _cache_file(key: str) -> str:
    # The entry holds its whole key, so a clash of this short name only costs a probe.
    return os.path.join(cache_dir(), "%08x.json" % zlib.crc32(key.encode()))


def _read_small_file(path: str, limit: int) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes; OSError for anything else.

    Opened without blocking and checked on the descriptor, so a FIFO or a link to
    /dev/zero planted in the cache cannot hang or flood ``import caffe``. (The package's
    io.files does this for everything else; this file cannot import it.)
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size > limit:
            raise OSError(errno.EINVAL, "not a cache entry", path)
        data = f.read(limit + 1)
    if len(data) > limit:
        raise OSError(errno.EFBIG, "not a cache entry", path)
    return data


def _read_cache(path: str, key: str) -> Optional[Dict[str, Any]]:
    try:
        entry = json.loads(_read_small_file(path, _CACHE_BYTES))
        lib = entry["lib"]
        if entry.get("key") != key or _file_identity(lib["path"]) != lib:
            return None  # another OpenBLAS file now (upgrade, alternatives switched): probe again
        return entry
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _write_cache(path: str, entry: Dict[str, Any]) -> None:
    import tempfile

    tmp = None
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), suffix=".tmp")
        with os.fdopen(fd, "w") as f:
            json.dump(entry, f, indent=1, sort_keys=True)
        os.replace(tmp, path)
    except OSError:  # an unwritable cache (or a folder in the entry's place) costs a probe per import
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)


def find_choice(cpu: Dict[str, Any]) -> Dict[str, Any]:
    """Probe what OpenBLAS picks on this CPU and, if generic, the best family that works (uncached)."""
    own = probe(None)
    if not own.get("core") or not own.get("lib"):
        raise RuntimeError(f"cannot tell OpenBLAS's own choice: {own.get('why')}")
    entry: Dict[str, Any] = {"version": HOOK_VERSION, "lib": _file_identity(own["lib"]), "config": own.get("config"),
                             "detected": own["core"], "choice": None, "rejected": {},
                             "cpu": {k: cpu[k] for k in ("vendor", "family", "model", "stepping", "model_name")}}
    choice, rejected, check = first_working(decide(own["core"], cpu["vendor"], cpu["flags"]))
    entry.update(choice=choice, rejected=rejected, check=check)
    return entry


def first_working(families: List[str]) -> Tuple[Optional[str], Dict[str, str], Optional[str]]:
    """Probe ``families`` in order: (the first that passes, {family: why} for those before it, its check)."""
    rejected: Dict[str, str] = {}
    for family in families:
        r = probe(family)
        if r.get("ok"):
            return family, rejected, r.get("why")
        rejected[family] = r.get("why") or "rejected"
    return None, rejected, None


def _load_forced(family: str) -> ctypes.CDLL:
    """Load OpenBLAS with OPENBLAS_CORETYPE=family, then give the environment back as it was."""
    os.environ["OPENBLAS_CORETYPE"] = family
    try:
        return ctypes.CDLL(SONAME)
    finally:
        del os.environ["OPENBLAS_CORETYPE"]


def _choose() -> Dict[str, Any]:
    if "OPENBLAS_CORETYPE" in os.environ:  # OpenBLAS obeys it even empty (then it falls back)
        return {"reason": "user", "requested": os.environ["OPENBLAS_CORETYPE"]}
    if os.environ.get(_IN_PROBE_ENV):
        return {"reason": "detected", "note": "inside a kernel probe"}
    if os.environ.get(HOOK_ENV, "1") == "0":
        return {"reason": "detected", "note": f"{HOOK_ENV}=0"}
    if loaded_openblas() is not None:
        return {"reason": "detected", "note": "OpenBLAS was loaded before caffe; its choice stands"}
    cpu = cpu_info()
    if not has_modern_simd(cpu["flags"]):
        return {"reason": "detected", "note": "the CPU has neither AVX2+FMA nor AVX-512"}
    key = _cache_key(cpu)
    path = _cache_file(key)
    entry = _read_cache(path, key)
    if entry is None:
        entry = dict(find_choice(cpu), key=key)
        _write_cache(path, entry)
    record: Dict[str, Any] = {"detected": entry["detected"], "cache": path}
    if entry["rejected"]:
        record["rejected"] = entry["rejected"]
    if not entry["choice"]:
        if is_generic(entry["detected"]):
            record["note"] = "no better family of this OpenBLAS passed the probe"
        return dict(record, reason="detected")
    lib = _load_forced(entry["choice"])
    got = corename(lib)
    if got is None or got.lower() != entry["choice"].lower():
        return dict(record, reason="detected", core=got, note=f"asked for {entry['choice']}, OpenBLAS gave {got}")
    return dict(record, reason="project", core=got)


def choose() -> Dict[str, Any]:
    """Pick OpenBLAS's kernel family before it loads (see the module docstring); never raises.

    Returns and stores in ``CHOICE``: "reason" ("user", "detected" or
    "project"), and where known "detected" (OpenBLAS's own family),
    "core" (the family in use), "rejected" (families that failed the
    probe, and why) and "note".
    """
    global CHOICE
    try:
        CHOICE = _choose()
    except Exception as e:  # noqa: BLE001 - a failure here must never break `import caffe`
        CHOICE = {"reason": "detected", "note": f"kernel choice skipped: {type(e).__name__}: {e}"}
    return CHOICE


# ---------------------------------------------------------------- what deepdream_caffe reads


HOOK_MODULE = "_deepdream_openblas"  # the copy's name inside the caffe package


def kernel_choice() -> Dict[str, Any]:
    """The kernel family of Caffe's OpenBLAS in this process and why it is that one.

    Keys: "reason" ("detected": OpenBLAS's own choice; "user":
    OPENBLAS_CORETYPE set by the user; "project": chosen by the hook in
    caffe/__init__.py instead of a generic fallback), "core", "threads",
    "config", "library" (None until Caffe has loaded OpenBLAS), and
    from the hook where it ran: "detected", "rejected", "note".
    """
    hook = sys.modules.get(f"caffe.{HOOK_MODULE}")
    if hook is not None:
        rec = dict(getattr(hook, "CHOICE", {}))
    else:
        # No hook (another pycaffe build): the environment says all there is to say.
        rec = {"reason": "user" if "OPENBLAS_CORETYPE" in os.environ else "detected",
               "note": "this pycaffe has no kernel-choice hook (not built by scripts/build_caffe.sh)"}
    lib = loaded_openblas()
    rec.update(core=None, threads=None, config=None, library=None)
    if lib is not None:
        rec.update(core=corename(lib), threads=num_threads(lib), config=config(lib), library=library_path(lib))
    return rec


def describe(rec: Dict[str, Any]) -> str:
    """One line for people: "Cooperlake (chosen by deepdream-caffe; OpenBLAS itself picked Prescott)"."""
    core = rec.get("core") or "?"
    reason = rec.get("reason")
    if reason == "project":
        return f"{core} (chosen by deepdream-caffe; OpenBLAS itself picked {rec.get('detected')}, a generic family)"
    if reason == "user":
        return f"{core} (OPENBLAS_CORETYPE={rec.get('requested', os.environ.get('OPENBLAS_CORETYPE', ''))} set by the user)"
    why = "detected by OpenBLAS"
    if is_generic(core) and rec.get("note"):
        why += f"; {rec['note']}"
    return f"{core} ({why})"


def numpy_openblas() -> Dict[str, Any]:
    """numpy's own OpenBLAS in this process (another library than Caffe's): {"library", "core", "config"}.

    numpy's wheels carry OpenBLAS with prefixed symbols (scipy_openblas_*64_);
    values are None where numpy links something else.
    """
    out: Dict[str, Any] = {"library": None, "core": None, "config": None}
    try:
        import numpy  # noqa: F401 - loads its BLAS
        with open("/proc/self/maps") as f:
            paths = [ln.split()[-1] for ln in f if "openblas" in ln and "numpy" in ln]
    except (ImportError, OSError):
        return out
    if not paths:
        return out
    out["library"] = paths[0]
    lib = ctypes.CDLL(paths[0])
    for key, names in (("core", ("scipy_openblas_get_corename64_", "openblas_get_corename64_", "openblas_get_corename")),
                       ("config", ("scipy_openblas_get_config64_", "openblas_get_config64_", "openblas_get_config"))):
        for name in names:
            f = getattr(lib, name, None)
            if f is not None:
                f.restype = ctypes.c_char_p
                out[key] = f().decode("ascii", "replace").strip()
                break
    return out


# ---------------------------------------------------------------- installing the hook

_HOOK_BEGIN = "# >>> deepdream-caffe: OpenBLAS kernel family, chosen before _caffe loads OpenBLAS"
_HOOK_END = "# <<< deepdream-caffe"
_HOOK_BODY = f"""{_HOOK_BEGIN} (scripts/build_caffe.sh)
try:
    from . import {HOOK_MODULE} as _dd_openblas
    _dd_openblas.choose()
    del _dd_openblas
except Exception:  # never let it break `import caffe`: OpenBLAS then keeps its own choice
    pass
{_HOOK_END}
"""


def _write_if_changed(path: str, text: str) -> bool:
    import tempfile

    try:
        with open(path) as f:
            if f.read() == text:
                return False
    except FileNotFoundError:
        pass
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)  # readers see the old file or the new one, never half of one
    return True


def with_hook(init_text: str) -> str:
    """caffe/__init__.py's text with the hook block first (an older block replaced)."""
    lines = init_text.splitlines(keepends=True)
    if any(ln.startswith(_HOOK_BEGIN) for ln in lines):
        start = next(i for i, ln in enumerate(lines) if ln.startswith(_HOOK_BEGIN))
        end = next((i for i in range(start, len(lines)) if lines[i].startswith(_HOOK_END)), None)
        if end is None:
            raise ValueError("caffe/__init__.py has the start of a deepdream-caffe hook but not its end")
        lines = lines[:start] + lines[end + 1:]
    return _HOOK_BODY + "".join(lines)


def install_hook(caffe_dir: str) -> bool:
    """Put this file into the pycaffe package at ``caffe_dir`` and call it from its __init__.py.

    Idempotent and atomic file by file; returns whether anything changed.
    The module goes in first, so an __init__.py with the hook always finds it.
    """
    import py_compile

    init = os.path.join(caffe_dir, "__init__.py")
    module = os.path.join(caffe_dir, HOOK_MODULE + ".py")
    with open(os.path.abspath(__file__)) as f:
        changed = _write_if_changed(module, f.read())
    # Compiled now, so an import never has to (PYTHONDONTWRITEBYTECODE, a read-only tree).
    py_compile.compile(module, doraise=True)
    with open(init) as f:
        text = f.read()
    return _write_if_changed(init, with_hook(text)) or changed


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--install-hook":
        try:
            print("changed" if install_hook(sys.argv[2]) else "unchanged")
        except (OSError, ValueError) as e:
            sys.exit(f"cannot install the OpenBLAS hook into {sys.argv[2]}: {e}")
    else:
        sys.exit(f"usage: {sys.argv[0]} --install-hook PYCAFFE_PACKAGE_DIR")
