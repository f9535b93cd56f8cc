#!/usr/bin/env python3
"""Speed and memory of deepdream-caffe against the plain notebook loop, measured in one run.

    .venv/bin/python scripts/bench.py                 # default job: 1024x575, 4 octaves x 10 steps
    .venv/bin/python scripts/bench.py --quick         # 512x288, 2 octaves x 3 steps (a smoke run)
    .venv/bin/python scripts/bench.py --rss 1,4,12    # peak RSS against megapixels as well
    .venv/bin/python scripts/bench.py --torch         # and a PyTorch port (pip install torch first)
    .venv/bin/python scripts/bench.py --gpu 0         # both dreams on GPU 0 (a CUDA build), and ours on the CPU

Both dreams run on the real GoogLeNet architecture with seeded random
weights (same cost as the trained net), the same image and seed, each in
its own child process (so peak RSS is per job). Printed: seconds, their
ratio, per-step forward/backward split at full size, peak RSS, the run's
FLOP count, two floors from float32 matrix-product rates measured now
(numpy with its own kernel choice, and numpy with the fastest of the
OpenBLAS kernel families that compute correctly on this CPU, each tried in
a child process with OPENBLAS_CORETYPE set), each time against both, and
whether the two outputs are bit-identical (exit 1 if not). The kernel
family of Caffe's OpenBLAS is printed with the reason it is that one.
The two dreams run in alternating rounds (``--repeat``, default 2) and
each is reported by its fastest round, as the floor is by the fastest of
the matrix products measured before, between and after them; every
round's time is printed too. ``--other-caffe DIR`` also runs the notebook loop on
another pycaffe build (a python/ folder) and checks the bits match: that
is how a Caffe patch is shown not to change results.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("GLOG_minloglevel", "2")
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


# ------------------------------------------------------------------ helpers


def googlenet_files(cache: Path):
    """(deploy.prototxt, random-weights caffemodel), made once with a fixed Caffe seed."""
    from deepdream_caffe.net.caffe_env import googlenet_deploy_prototxt, import_caffe

    caffe = import_caffe()
    proto = googlenet_deploy_prototxt()
    if proto is None:
        sys.exit("bench: GoogLeNet deploy.prototxt not found; run scripts/setup.sh")
    weights = cache / "googlenet_random_seed0.caffemodel"
    if not weights.exists():
        cache.mkdir(parents=True, exist_ok=True)
        caffe.set_mode_cpu()
        caffe.set_random_seed(0)
        net = caffe.Net(str(proto), caffe.TEST)
        tmp = weights.with_suffix(".tmp")
        net.save(str(tmp))
        os.replace(tmp, weights)
    return proto, weights


def bench_image(h: int, w: int) -> np.ndarray:
    """A real photo (scikit-image's astronaut) stretched to h x w."""
    import scipy.ndimage as nd
    from skimage import data

    a = np.float32(data.astronaut())
    return np.clip(nd.zoom(a, (h / a.shape[0], w / a.shape[1], 1), order=1), 0, 255)


def matmul_gflops(n: int = 2048, reps: int = 5) -> float:
    a = np.random.RandomState(0).rand(n, n).astype(np.float32)
    b = np.random.RandomState(1).rand(n, n).astype(np.float32)
    a @ b
    best = min(_timed(lambda: a @ b) for _ in range(reps))
    return 2.0 * n**3 / best / 1e9


# Kernel families a recent x86-64 OpenBLAS may have with AVX2 or better; each is tried for
# numpy's floor, and those this CPU cannot run (SIGILL) or the library lacks drop out.
FLOOR_FAMILIES = ("SapphireRapids", "Cooperlake", "SkylakeX", "Zen", "Haswell")

_FAMILY_CHILD = r"""
import json, sys
import numpy as np
sys.path.insert(0, sys.argv[1])
import bench
core = bench.numpy_core()
rs = np.random.RandomState(0)
a, b = rs.uniform(-1, 1, (384, 640)).astype(np.float32), rs.uniform(-1, 1, (640, 512)).astype(np.float32)
a64, b64 = a.astype(np.float64), b.astype(np.float64)
err = np.abs((a @ b) - a64 @ b64) / (2 * 642 * 2.0**-24 * (np.abs(a64) @ np.abs(b64)) + 1e-30)
print(json.dumps({"core": core, "ok": bool(np.isfinite(err).all() and err.max() <= 1), "gflops": bench.matmul_gflops()}))
"""


def family_rates(families=FLOOR_FAMILIES) -> dict:
    """numpy's float32 product rate with OPENBLAS_CORETYPE=family, one child each: {family: result}.

    A result is {"core": the family numpy's OpenBLAS reports, "ok": products
    within float32's bound of float64 ones, "gflops"}, or {"error": why}
    for a child that crashed (an instruction this CPU lacks).
    """
    out = {}
    for fam in families:
        env = dict(os.environ, OPENBLAS_CORETYPE=fam)
        r = subprocess.run([sys.executable, "-c", _FAMILY_CHILD, str(Path(__file__).parent)], capture_output=True,
                           text=True, env=env, timeout=600)
        if r.returncode != 0:
            how = signal.Signals(-r.returncode).name if r.returncode < 0 else f"exit {r.returncode}"
            out[fam] = {"error": f"crashed ({how})"}
        else:
            out[fam] = json.loads(r.stdout.strip().splitlines()[-1])
    return out


def best_family(rates: dict):
    """(family, GFLOP/s) of the fastest family that ran as itself and computed correctly, or (None, 0)."""
    good = [(v["gflops"], k) for k, v in rates.items()
            if "error" not in v and v["ok"] and (v["core"] is None or v["core"].lower() == k.lower())]
    return (max(good)[1], max(good)[0]) if good else (None, 0.0)


def numpy_core():
    """The kernel family of numpy's own OpenBLAS in this process, or None."""
    from deepdream_caffe.blas_hook import numpy_openblas

    return numpy_openblas()["core"]


def same_kernels_env(env: dict) -> dict:
    """``env`` for a child running another pycaffe build: the kernel family this build uses, forced.

    Another build has no kernel-choice hook, so on a CPU where this one
    replaced a generic fallback the two would round differently.
    """
    from deepdream_caffe.blas_hook import kernel_choice

    ch = kernel_choice()
    if "OPENBLAS_CORETYPE" not in env and ch.get("reason") == "project" and ch.get("core"):
        env = dict(env, OPENBLAS_CORETYPE=ch["core"])
    return env


def cpu_model() -> str:
    """The CPU's model name, as the kernel-choice hook reads it (blas_hook.py)."""
    from deepdream_caffe.blas_hook import cpu_info

    try:
        return cpu_info()["model_name"] or platform.processor() or "unknown CPU"
    except OSError:
        return platform.processor() or "unknown CPU"


def gpu_mib(device: int):
    """GPU memory this process holds now, in MiB (nvidia-smi); None where it cannot say.

    Caffe keeps its blobs at their largest size, so after a dream this is its peak.
    Where nvidia-smi lists no processes (a container), the device's whole use is taken.
    """
    def smi(*query: str) -> list:
        try:
            r = subprocess.run(["nvidia-smi", *query, "--format=csv,noheader,nounits"], capture_output=True,
                               text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            return []
        return [[v.strip() for v in ln.split(",")] for ln in r.stdout.splitlines() if "," in ln]

    mine = [float(m) for p, m in smi("--query-compute-apps=pid,used_memory") if p == str(os.getpid())]
    if mine:
        return mine[0]
    dev = [float(m) for i, m in smi("--query-gpu=index,memory.used") if i == str(device)]
    return dev[0] if dev else None


def _timed(f) -> float:
    t = time.perf_counter()
    f()
    return time.perf_counter() - t


def run_flops(proto: Path, end: str, h: int, w: int, octave_n: int, octave_scale: float, iters: int) -> float:
    """Forward to ``end`` plus backward to the input, over all steps and octaves (FLOP = 2 x MAC).

    Backward to the input costs one matrix product per convolution, the
    same as its forward, so a step is counted as twice the forward.
    """
    from deepdream_caffe.dream.octaves import octave_sizes
    from deepdream_caffe.net.prototxt import read_prototxt
    from deepdream_caffe.net.referee import layer_shapes

    param = read_prototxt(proto)
    total = 0
    for oh, ow in octave_sizes(h, w, octave_n, octave_scale):
        macs = sum(v["macs"] for v in layer_shapes(param, oh, ow, upto=end).values())
        total += iters * 2 * (2 * macs)
    return float(total)


# ------------------------------------------------------------------ child jobs


def job(args: argparse.Namespace) -> None:
    """Run one dream in this process and print a JSON line (time, split, RSS)."""
    from deepdream_caffe.net.caffe_env import import_caffe

    caffe = import_caffe()
    if args.gpu is not None:
        caffe.set_device(args.gpu)
        caffe.set_mode_gpu()
    else:
        caffe.set_mode_cpu()
    h, w = args.h, args.w
    img = bench_image(h, w)
    t0 = time.perf_counter()
    if args.job == "torch":
        import torch

        sys.path.insert(0, str(REPO / "scripts"))
        import torch_port
        from deepdream_caffe import load_net
        from deepdream_caffe.net.prototxt import read_prototxt

        torch.set_num_threads(os.cpu_count() or 1)
        dnet = load_net(args.proto, args.weights)
        params = {k: [b.data for b in v] for k, v in dnet.net.params.items()}
        forward = torch_port.build(read_prototxt(args.proto), params, args.layer)
        load = time.perf_counter() - t0
        np.random.seed(args.seed)
        t1 = time.perf_counter()
        out = torch_port.dream(forward, img, dnet.mean, iter_n=args.iters, octave_n=args.octaves)
        secs = time.perf_counter() - t1
        np.save(args.out, out)
        print(json.dumps({"seconds": secs, "load_seconds": load, "split": None, "torch": torch.__version__,
                          "maxrss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0}))
        return
    if args.job == "notebook":
        from deepdream_caffe.dream import reference as nb

        net = nb.notebook_net(args.proto, args.weights)
        load = time.perf_counter() - t0
        np.random.seed(args.seed)
        t1 = time.perf_counter()
        out = nb.nb_deepdream(net, img, iter_n=args.iters, octave_n=args.octaves, end=args.layer)
        secs = time.perf_counter() - t1
        cnet = net
    else:
        from deepdream_caffe import deepdream, load_net
        from deepdream_caffe.dream.tiling import TilePolicy

        dnet = load_net(args.proto, args.weights, end=args.layer, fast=True)
        load = time.perf_counter() - t0
        t1 = time.perf_counter()
        out = deepdream(dnet, img, iter_n=args.iters, octave_n=args.octaves, end=args.layer,
                        rng=np.random.RandomState(args.seed), gradient=TilePolicy())
        secs = time.perf_counter() - t1
        cnet = dnet.net
    np.save(args.out, out)
    split = step_split(cnet, args.layer, h, w) if args.split else None
    print(json.dumps({
        "seconds": secs, "load_seconds": load, "split": split,
        "maxrss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        "gpu_mib": None if args.gpu is None else gpu_mib(args.gpu),
    }))


def step_split(cnet, end: str, h: int, w: int, reps: int = 5):
    """Median forward and backward seconds of one step at full size."""
    src = cnet.blobs[cnet.inputs[0]]
    src.reshape(1, 3, h, w)
    src.data[...] = np.random.RandomState(0).uniform(-100, 100, src.data.shape)
    fw, bw = [], []
    top = cnet.blobs[cnet.top_names[end][0]]
    for _ in range(reps):
        fw.append(_timed(lambda: cnet.forward(end=end)))
        top.diff[...] = top.data
        bw.append(_timed(lambda: cnet.backward(start=end)))
    return {"forward": float(np.median(fw)), "backward": float(np.median(bw))}


def spawn(args: argparse.Namespace, which: str, out: Path, h: int, w: int, iters: int, split: bool,
          pythonpath: str | None = None, cpu: bool = False) -> dict:
    cmd = [sys.executable, __file__, "--job", which, "--out", str(out), "--proto", str(args.proto),
           "--weights", str(args.weights), "--layer", args.layer, "--size", f"{w}x{h}",
           "--iters", str(iters), "--octaves", str(args.octaves), "--seed", str(args.seed)]
    if split:
        cmd.append("--split")
    if args.gpu is not None and not cpu:
        cmd += ["--gpu", str(args.gpu)]
    env = dict(os.environ)
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
        env["PYTHONNOUSERSITE"] = "1"
        env = same_kernels_env(env)
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if r.returncode != 0:
        sys.exit(f"bench: {which} job failed:\n{r.stderr[-2000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------ main


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--size", default="1024x575", help="WxH of the image (1024x575, the notebook's sky photo)")
    p.add_argument("--iters", type=int, default=10)
    p.add_argument("--octaves", type=int, default=4)
    p.add_argument("--layer", default="inception_4c/output")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--gpu", type=int, default=None, metavar="ID", help="run both dreams on GPU ID (a CUDA build)")
    p.add_argument("--quick", action="store_true", help="512x288, 2 octaves x 3 steps")
    p.add_argument("--repeat", type=int, default=2,
                   help="rounds of (notebook loop, product); each is reported by its fastest round (default 2)")
    p.add_argument("--rss", default="", help="comma-separated megapixels for the peak-RSS table, e.g. 1,4,12")
    p.add_argument("--other-caffe", default=None, help="a pycaffe python/ folder to check bit-equality against")
    p.add_argument("--cache", type=Path, default=Path(os.environ.get("DEEPDREAM_CAFFE_CACHE",
                                                                   Path.home() / ".cache/deepdream-caffe")) / "bench")
    # child-job arguments
    p.add_argument("--torch", action="store_true",
                   help="also time a PyTorch port of the same net and algorithm (needs torch installed)")
    p.add_argument("--job", choices=("notebook", "product", "torch"), help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    p.add_argument("--proto", help=argparse.SUPPRESS)
    p.add_argument("--weights", help=argparse.SUPPRESS)
    p.add_argument("--split", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.quick:
        args.size, args.octaves, args.iters = "512x288", 2, 3
    args.w, args.h = (int(v) for v in args.size.split("x"))
    if args.repeat < 1:
        p.error("--repeat must be at least 1")
    if args.job:
        job(args)
        return 0

    proto, weights = googlenet_files(args.cache)
    args.proto, args.weights = proto, weights
    from deepdream_caffe.blas_hook import describe, kernel_choice

    device = "cpu" if args.gpu is None else f"gpu:{args.gpu}"
    print(f"machine: {cpu_model()}, {platform.machine()}, {os.cpu_count()} cores, python {platform.python_version()}, "
          f"device {device}")
    # The kernel family and thread count decide both the speed and the bits.
    ch = kernel_choice()
    if ch["core"] is None:
        print("Caffe's BLAS: not OpenBLAS")
    else:
        print(f"Caffe's OpenBLAS: {describe(ch)}, {ch['threads']} threads, {(ch['config'] or '?').split(' NO_')[0]}")
    print(f"job: GoogLeNet (random weights), {args.w}x{args.h}, {args.octaves} octaves x {args.iters} steps, "
          f"end={args.layer}, seed {args.seed}")
    gflops = matmul_gflops()
    flops = run_flops(proto, args.layer, args.h, args.w, args.octaves, 1.4, args.iters)
    floor = flops / (gflops * 1e9)
    own = numpy_core() or "?"
    print(f"float32 matrix product now (numpy's own {own} kernels): {gflops:.0f} GFLOP/s; run: {flops / 1e9:.0f} GFLOP "
          f"-> floor {floor:.2f} s")
    # The hardware's floor: numpy's product with each kernel family that runs correctly here.
    fam_rates = [family_rates()]
    print("numpy by kernel family: " + ", ".join(
        f"{k} {v['error']}" if "error" in v else
        f"{k} {v['gflops']:.0f}" + ("" if v["ok"] else " (WRONG results)") +
        ("" if v["core"] is None or v["core"].lower() == k.lower() else f" (ran as {v['core']})")
        for k, v in fam_rates[0].items()) + " GFLOP/s")
    first_gflops = gflops

    with tempfile.TemporaryDirectory() as td:
        nb_out, pr_out = Path(td) / "nb.npy", Path(td) / "pr.npy"
        # Rounds alternate the two dreams so a slow spell of the machine hits
        # both; each is reported by its fastest round, as the floor is by the
        # fastest matrix product. The split is measured in the first round.
        rates, nb_runs, pr_runs, same = [first_gflops], [], [], True
        for r in range(args.repeat):
            nb_runs.append(spawn(args, "notebook", nb_out, args.h, args.w, args.iters, r == 0))
            rates.append(matmul_gflops())
            pr_runs.append(spawn(args, "product", pr_out, args.h, args.w, args.iters, r == 0))
            same = same and np.array_equal(np.load(nb_out), np.load(pr_out))
        nb = dict(min(nb_runs, key=lambda j: j["seconds"]), split=nb_runs[0]["split"])
        pr = dict(min(pr_runs, key=lambda j: j["seconds"]), split=pr_runs[0]["split"])
        if args.repeat > 1:
            for name, runs in (("notebook loop", nb_runs), ("deepdream-caffe", pr_runs)):
                print(f"{name} rounds: " + ", ".join(f"{j['seconds']:.2f}" for j in runs) + " s")
        # The machine's speed drifts: measure the rate around each dream and
        # keep the fastest, so the floor is never flattered by a slow moment.
        gflops = max(rates + [matmul_gflops()])
        floor = flops / (gflops * 1e9)
        fam_rates.append(family_rates([k for k, v in fam_rates[0].items() if "error" not in v]))
        merged = {k: dict(v, gflops=max(r[k]["gflops"] for r in fam_rates if "gflops" in r.get(k, {})))
                  for k, v in fam_rates[0].items() if "error" not in v}
        fam, best = best_family(merged)
        if best < gflops:  # numpy's own choice is a correct family too
            fam, best = f"numpy's own ({own})", gflops
        best_floor = flops / (best * 1e9)
        print(f"float32 matrix product, best of before/between/after the dreams: {gflops:.0f} GFLOP/s "
              f"(numpy's own {own} kernels) -> floor {floor:.2f} s")
        print(f"best kernel family for numpy, before/after the dreams: {fam}, {best:.0f} GFLOP/s "
              f"-> best floor {best_floor:.2f} s")
        print()
        print(f"{'':24}{'seconds':>9}{'x floor':>9}{'x best':>8}{'fwd/step':>10}{'bwd/step':>10}{'peak RSS':>11}")
        for name, r in (("notebook loop", nb), ("deepdream-caffe", pr)):
            s = r["split"]
            print(f"{name:24}{r['seconds']:9.2f}{r['seconds'] / floor:9.2f}{r['seconds'] / best_floor:8.2f}"
                  f"{s['forward']:10.3f}{s['backward']:10.3f}{r['maxrss_mib']:8.0f} MiB")
        if args.torch:
            tr = spawn(args, "torch", Path(td) / "torch.npy", args.h, args.w, args.iters, False)
            print(f"{'PyTorch ' + tr['torch'] + ' port':24}{tr['seconds']:9.2f}{tr['seconds'] / floor:9.2f}"
                  f"{tr['seconds'] / best_floor:8.2f}{'':20}{tr['maxrss_mib']:8.0f} MiB")
            print(f"speed-up over the PyTorch port: {tr['seconds'] / pr['seconds']:.2f}x")
            d = np.abs(np.load(Path(td) / "torch.npy") - np.load(pr_out))
            print(f"PyTorch port vs ours, same algorithm: mean |difference| {d.mean():.2f} of 255 "
                  "(rounding differences grow over the steps)")
        print(f"speed-up over the notebook loop: {nb['seconds'] / pr['seconds']:.2f}x")
        if args.gpu is not None:
            print("GPU memory held after the dream: " + ", ".join(
                f"{name} {'?' if r.get('gpu_mib') is None else format(r['gpu_mib'], '.0f')} MiB"
                for name, r in (("notebook loop", nb), ("deepdream-caffe", pr))))
            # The GPU sums in another order: the same dream on the CPU shows how far apart the bits end.
            cpu_out = Path(td) / "cpu.npy"
            cp = spawn(args, "product", cpu_out, args.h, args.w, args.iters, False, cpu=True)
            d = np.abs(np.load(pr_out) - np.load(cpu_out))
            print(f"deepdream-caffe on the CPU: {cp['seconds']:.2f} s; on GPU {args.gpu}: {pr['seconds']:.2f} s "
                  f"({cp['seconds'] / pr['seconds']:.1f}x)")
            print(f"GPU vs CPU output: max |difference| {d.max():.4g}, mean {d.mean():.4g} (of 0..255)")
        print(f"outputs bit-identical: {'yes' if same else 'NO'}")
        ok = same
        if args.other_caffe:
            other_out = Path(td) / "other.npy"
            ot = spawn(args, "notebook", other_out, args.h, args.w, args.iters, False, pythonpath=args.other_caffe)
            same_other = np.array_equal(np.load(nb_out), np.load(other_out))
            print(f"notebook loop on {args.other_caffe}: {ot['seconds']:.2f} s; bits equal to this build: "
                  f"{'yes' if same_other else 'NO'}; deepdream-caffe is {ot['seconds'] / pr['seconds']:.2f}x faster")
            ok = ok and same_other

        if args.rss:
            print()
            print("peak RSS of deepdream-caffe against image size (default octaves; 1 step per octave, since")
            print("memory peaks at the largest octave whatever the step count):")
            for mp in (float(v) for v in args.rss.split(",")):
                w = int(round((mp * 1e6 * 4 / 3) ** 0.5))
                h = int(round(w * 3 / 4))
                r = spawn(args, "product", Path(td) / "rss.npy", h, w, 1, False)
                gpu = "" if r.get("gpu_mib") is None else f", GPU {r['gpu_mib']:.0f} MiB"
                print(f"  {mp:5.1f} MP ({w}x{h}): {r['maxrss_mib']:7.0f} MiB{gpu}, {r['seconds']:.1f} s")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
