#!/usr/bin/env python
"""L-BFGS-B against the notebook's normalised ascent step on the same objective.

For each net: one octave, the L-BFGS mode's objective fixed at the starting
image (gain target + beta-TV), L-BFGS-B for --iters iterations, which costs
E evaluations of f and its gradient; then plain ascent steps from the same
start, E - 1 of them so that they also cost E evaluations (the last one only
measures the value). Prints both final values and their ratio, for a few
ascent step sizes (1.5 is the notebook's).

    .venv/bin/python scripts/bench_lbfgs.py             # tiny test net
    .venv/bin/python scripts/bench_lbfgs.py --googlenet # + GoogLeNet, random weights
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import List, Tuple

os.environ.setdefault("GLOG_minloglevel", "2")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from skimage import data as skdata  # noqa: E402
from skimage import transform as sktransform  # noqa: E402

from deepdream_caffe.dream.lbfgs import DEFAULT_TV_WEIGHT, minimize_octave, octave_objective, pixel_bounds, plain_ascent  # noqa: E402
from deepdream_caffe.dream.transform import preprocess  # noqa: E402
from deepdream_caffe.net.caffe_env import googlenet_deploy_prototxt, import_caffe  # noqa: E402
from deepdream_caffe.net.loading import load_net  # noqa: E402


def random_weights(prototxt: Path, out: Path, seed: int) -> Path:
    caffe = import_caffe()
    caffe.set_mode_cpu()
    caffe.set_random_seed(seed)
    caffe.Net(str(prototxt), caffe.TEST).save(str(out))
    return out


def tiny_prototxt(d: Path) -> Path:
    # The test suite's tiny net, so the benchmark measures the same thing the test asserts.
    sys.path.insert(0, str(ROOT / "tests"))
    from conftest import TINY_PROTOTXT

    p = d / "tiny.prototxt"
    p.write_text(TINY_PROTOTXT)
    return p


def bench(label: str, net, end: str, size: int, iters: int, gain: float, tv_weight: float,
          step_sizes: List[float]) -> None:
    img = np.float32(sktransform.resize(skdata.astronaut(), (size, size), anti_aliasing=True) * 255)
    x0 = preprocess(net, img).astype(np.float64)
    lo, hi = pixel_bounds(net, x0.shape)
    fobj = octave_objective(net, end, x0, gain=gain, tv_weight=tv_weight)
    t = time.perf_counter()
    _, rec = minimize_octave(fobj, x0, lo, hi, maxiter=iters)
    t_lbfgs = time.perf_counter() - t
    evals = rec["nfev"]
    f0, f_lbfgs = rec["initial"]["total"], rec["final"]["total"]
    print(f"{label}: layer {end}, {size}x{size}, gain {gain:g}, tv_weight {tv_weight:g}, f(X0) = {f0:.6g}")
    print(f"  L-BFGS-B  {rec['nit']:3d} iterations, {evals:3d} evaluations: f = {f_lbfgs:.6g}  ({t_lbfgs:.2f} s)")
    results: List[Tuple[float, float]] = []
    for step in step_sizes:
        t = time.perf_counter()
        _, values = plain_ascent(fobj, x0, lo, hi, steps=evals - 1, step_size=step)
        dt = time.perf_counter() - t
        results.append((step, values[-1]))
        print(f"  ascent    step {step:<4g} {evals - 1:3d} steps,     {len(values):3d} evaluations: "
              f"f = {values[-1]:.6g}  ({dt:.2f} s)  L-BFGS/ascent = {f_lbfgs / values[-1]:.3f}")
    best_step, best = min(results, key=lambda r: r[1])
    verdict = "lower" if f_lbfgs < best else "NOT lower"
    print(f"  L-BFGS is {verdict} than the best ascent (step {best_step:g}): ratio {f_lbfgs / best:.3f}")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--iters", type=int, default=10, help="L-BFGS iterations (10)")
    p.add_argument("--gain", type=float, default=2.0)
    p.add_argument("--tv-weight", type=float, default=DEFAULT_TV_WEIGHT)
    p.add_argument("--step-sizes", type=float, nargs="+", default=[0.5, 1.5, 4.0])
    p.add_argument("--googlenet", action="store_true", help="also GoogLeNet (random weights) at --size")
    p.add_argument("--size", type=int, default=96, help="GoogLeNet image side (96)")
    p.add_argument("--layer", default="inception_4c/output", help="GoogLeNet layer")
    args = p.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-lbfgs-") as tmp:
        d = Path(tmp)
        proto = tiny_prototxt(d)
        net = load_net(proto, random_weights(proto, d / "tiny.caffemodel", seed=1), end="a/output", fast=True)
        bench("tiny net", net, "a/output", 32, args.iters, args.gain, args.tv_weight, args.step_sizes)
        if args.googlenet:
            gproto = googlenet_deploy_prototxt()
            if gproto is None:
                print("GoogLeNet deploy.prototxt not found (run scripts/setup.sh)", file=sys.stderr)
                return 1
            gnet = load_net(gproto, random_weights(gproto, d / "googlenet.caffemodel", seed=0), end=args.layer,
                            fast=True)
            bench("GoogLeNet (random weights)", gnet, args.layer, args.size, args.iters, args.gain,
                  args.tv_weight, args.step_sizes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
