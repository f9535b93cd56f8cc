#!/usr/bin/env python3
"""Throughput of `batch`: 8 images on a LocalCluster of 1 worker vs 2 workers, measured in one run.

    .venv/bin/python scripts/bench_batch.py              # 8 images 320x240, 2 octaves x 5 steps
    .venv/bin/python scripts/bench_batch.py --size 640x480 --iters 10 --octaves 3

The real GoogLeNet architecture with seeded random weights (same cost as
the trained net) dreams 8 crops of scikit-image's sample photo at
inception_4c/output. Each run gets a fresh cluster and a fresh output
folder; the cluster start-up is timed apart from the dreaming. Workers
split the cores (1 worker: all cores' BLAS threads; 2 workers: half each).
Printed: CPU model, OpenBLAS kernel family, cores, images/s for each, the
speed-up. Not a test; on a shared machine the figures move with the load
(the load average is printed too).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("GLOG_minloglevel", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench import cpu_model  # noqa: E402


def make_inputs(folder: Path, n: int, w: int, h: int) -> list:
    from PIL import Image
    from skimage import data

    photo = Image.fromarray(data.astronaut())
    paths = []
    for i in range(n):
        box = (i * 20, i * 10, i * 20 + 400, i * 10 + 300)  # a different crop each, so no two tasks are alike
        p = folder / f"img{i}.png"
        photo.crop(box).resize((w, h), Image.LANCZOS).save(p)
        paths.append(p)
    return paths


def make_net(folder: Path) -> tuple:
    from deepdream_caffe.net.caffe_env import googlenet_deploy_prototxt, import_caffe

    proto = googlenet_deploy_prototxt()
    if proto is None:
        sys.exit("bench_batch: no GoogLeNet deploy.prototxt in the Caffe tree (run scripts/setup.sh)")
    caffe = import_caffe()
    caffe.set_mode_cpu()
    caffe.set_random_seed(0)
    weights = folder / "googlenet_random.caffemodel"
    caffe.Net(str(proto), caffe.TEST).save(str(weights))
    return proto, weights


def one_run(workers: int, inputs: list, out: Path, net: tuple, opts: argparse.Namespace) -> dict:
    from deepdream_caffe.app.batch import plan_tasks, run_batch
    from deepdream_caffe.app.batch.cluster import start_cluster
    from deepdream_caffe.app.batch.plan import Setting
    from deepdream_caffe.app.config import DreamConfig
    from deepdream_caffe.app.netspec import NetSource
    from deepdream_caffe.dream.params import Ascent, Octaves

    cfg = DreamConfig(net=NetSource(prototxt=net[0], weights=net[1]), layer="inception_4c/output",
                      solver=Ascent(iter_n=opts.iters), octaves=Octaves(opts.octaves))
    tasks = plan_tasks(inputs, [Setting(cfg)], out, seed=0)
    t0 = time.perf_counter()
    cluster = start_cluster(workers=workers, dashboard=False)
    cluster.client.wait_for_workers(workers, timeout=120)
    t1 = time.perf_counter()
    try:
        report = run_batch(tasks, cluster.client)
    finally:
        t2 = time.perf_counter()
        cluster.close()
    if not report.ok:
        sys.exit("bench_batch: " + "; ".join(report.failure_lines()))
    return {"start": t1 - t0, "dream": t2 - t1, "threads": cluster.threads}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="320x240", help="image size WxH (320x240)")
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--octaves", type=int, default=2)
    ap.add_argument("--images", type=int, default=8)
    opts = ap.parse_args()
    w, h = (int(v) for v in opts.size.lower().split("x"))
    from deepdream_caffe.app.batch.cluster import usable_cores
    from deepdream_caffe.app.record import blas_core

    with tempfile.TemporaryDirectory(prefix="bench-batch-") as tmp:
        tmp = Path(tmp)
        (tmp / "in").mkdir()
        inputs = make_inputs(tmp / "in", opts.images, w, h)
        net = make_net(tmp)
        print(f"CPU: {cpu_model()}; OpenBLAS kernels: {blas_core()}; usable cores: {usable_cores()}; "
              f"load average before: {os.getloadavg()[0]:.1f}")
        print(f"job: {opts.images} images {w}x{h}, GoogLeNet (random weights) inception_4c/output, "
              f"{opts.octaves} octaves x {opts.iters} steps")
        rates = {}
        for workers in (1, 2):
            out = tmp / f"out{workers}"
            out.mkdir()
            r = one_run(workers, inputs, out, net, opts)
            rates[workers] = opts.images / r["dream"]
            print(f"{workers} worker(s) x {r['threads']} BLAS thread(s): {r['dream']:.1f} s for {opts.images} "
                  f"images = {rates[workers]:.3f} images/s (cluster start {r['start']:.1f} s, not counted)")
        print(f"2 workers vs 1: {rates[2] / rates[1]:.2f}x; load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":  # the workers are spawned processes: they must not rerun this
    main()
