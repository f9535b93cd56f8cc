#!/usr/bin/env python3
"""What temporal coherence costs: a video frame's optical flow against the frame's dream, measured in one run.

    .venv/bin/python scripts/bench_video.py                # 640x360, notebook defaults (4 octaves x 10 steps)
    .venv/bin/python scripts/bench_video.py --quick        # 320x180, 2 octaves x 3 steps (a smoke run)
    .venv/bin/python scripts/bench_video.py --size 1280x720 --frames 6

The clip is scikit-image's astronaut photo panned a few pixels a frame
(real texture, known motion). For each flow method the carry is timed
frame by frame (flow both ways, occlusion mask, warp, blend: everything
``--flow`` adds), then one frame is dreamed on the real GoogLeNet
architecture with seeded random weights (the trained net's cost). Printed:
the CPU, Caffe's OpenBLAS kernel family and threads, OpenCV's threads,
each method's median time per frame and its share of a frame's dream.
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("GLOG_minloglevel", "2")
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

from bench import bench_image, cpu_model, googlenet_files  # noqa: E402


def panned_clip(w: int, h: int, n: int, step: int = 3) -> list:
    """``n`` frames of a photo seen through a window moving ``step`` px right and down per frame."""
    pad = step * n
    big = bench_image(h + pad, w + pad)
    return [np.ascontiguousarray(big[i * step:i * step + h, i * step:i * step + w]) for i in range(n)]


def time_carry(method: str, frames: list, blend: float) -> list:
    from deepdream_caffe.dream.flow import FrameCarry

    carry = FrameCarry(method, blend, "detail")
    dreamed = [np.clip(f + 20.0 * np.sin(f / 17.0), 0, 255) for f in frames]  # a stand-in "dream"
    times = []
    for t in range(1, len(frames)):
        t0 = time.perf_counter()
        carry(frames[t], frames[t - 1], dreamed[t - 1])
        times.append(time.perf_counter() - t0)
    return times


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--size", default="640x360", help="WxH of the frames (640x360)")
    p.add_argument("--frames", type=int, default=8, help="frames whose carry is timed (8)")
    p.add_argument("--iters", type=int, default=10)
    p.add_argument("--octaves", type=int, default=4)
    p.add_argument("--layer", default="inception_4c/output")
    p.add_argument("--blend", type=float, default=0.5)
    p.add_argument("--quick", action="store_true", help="320x180, 2 octaves x 3 steps")
    p.add_argument("--cache", type=Path, default=Path(os.environ.get("DEEPDREAM_CAFFE_CACHE",
                                                                   Path.home() / ".cache/deepdream-caffe")) / "bench")
    args = p.parse_args()
    if args.quick:
        args.size, args.octaves, args.iters = "320x180", 2, 3
    w, h = (int(v) for v in args.size.split("x"))
    if args.frames < 2:
        p.error("--frames must be at least 2")

    import cv2

    from deepdream_caffe.app.record import blas_core, blas_threads
    from deepdream_caffe.dream.ascent import deepdream
    from deepdream_caffe.net.loading import load_net

    proto, weights = googlenet_files(args.cache)
    net = load_net(proto, weights, end=args.layer)
    print(f"machine: {cpu_model()}, {platform.machine()}, {os.cpu_count()} cores, python {platform.python_version()}")
    print(f"Caffe's OpenBLAS: {blas_core() or 'not OpenBLAS'} kernels, {blas_threads()} threads; "
          f"OpenCV {cv2.__version__}, {cv2.getNumThreads()} threads")
    print(f"job: {w}x{h} frames; carry = flow both ways + occlusion mask + warp + blend {args.blend}; "
          f"dream = GoogLeNet (random weights), {args.octaves} octaves x {args.iters} steps, end={args.layer}")
    frames = panned_clip(w, h, args.frames)
    carry = {m: time_carry(m, frames, args.blend) for m in ("none", "farneback", "dis")}
    rng = np.random.RandomState(0)
    deepdream(net, frames[0], iter_n=1, octave_n=1, end=args.layer, rng=rng)  # warm-up: first-use allocations
    t0 = time.perf_counter()
    deepdream(net, frames[0], iter_n=args.iters, octave_n=args.octaves, end=args.layer, rng=rng)
    dream_s = time.perf_counter() - t0
    print(f"dream of one frame: {dream_s:.2f} s")
    for method, times in carry.items():
        med = statistics.median(times)
        print(f"carry --flow {method:<9}: median {med * 1000:7.1f} ms per frame "
              f"(min {min(times) * 1000:.1f}, max {max(times) * 1000:.1f}; {len(times)} frames) = "
              f"{100 * med / dream_s:.2f}% of the frame's dream")
    return 0


if __name__ == "__main__":
    sys.exit(main())
