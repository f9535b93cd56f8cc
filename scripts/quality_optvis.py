#!/usr/bin/env python3
"""Feature visualisation from noise on open_nsfw: lucid's parameterisations against the pixel one, equal passes.

    .venv/bin/python scripts/quality_optvis.py                     # docs/creative.md's table and picture
    .venv/bin/python scripts/quality_optvis.py --units eltwise_stage2_block2:10 --iters 128 --save /tmp/ov

For each unit (LAYER:C, a channel) and each budget of ``--iters`` four runs
of ``render_vis`` with the same seed and the same number of steps (one
forward+backward pass each):
``pixel`` (one parameter per pixel, RGB, no transforms), ``fft`` (lucid's
Fourier image with 1/f scaling), ``fft+decorrelated`` (and lucid's
decorrelated colour) and ``+transforms`` (and lucid's standard transforms
each step: the lucid default). Printed per run: the channel's mean
activation on the image reached (untransformed; and on the photo rocket at
the same size, for scale), the mean |Laplacian| of the image and its
high-frequency ratio against the pixel run's image (dream/measures.py), and
the same ratio of |Laplacian| per unit of contrast (over the image's
standard deviation), which a higher-contrast image does not inflate.
``--figure`` writes the runs of the last budget side by side (a row per unit, the four
settings left to right) as a JPEG under 150 KB, each panel and the picture
first checked by open_nsfw itself to be class 0 (scripts/gallery.py's guard).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import List

os.environ.setdefault("GLOG_minloglevel", "2")
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from deepdream_caffe.dream.measures import channel_activation, laplacian_energy  # noqa: E402
from deepdream_caffe.dream.objectives import channel  # noqa: E402
from deepdream_caffe.dream.optvis import render_vis  # noqa: E402
from deepdream_caffe.dream.params import Optvis  # noqa: E402
from deepdream_caffe.net.loading import load_net  # noqa: E402
from gallery import Guard, compose, jpeg_under_limit  # noqa: E402

DEFAULT_UNITS = ["eltwise_stage1_block3:10", "eltwise_stage2_block2:10", "eltwise_stage2_block5:50"]
SETTINGS = {
    "pixel": Optvis(param="pixel", decorrelate=False, transforms="none"),
    "fft": Optvis(param="fft", decorrelate=False, transforms="none"),
    "fft+decorrelated": Optvis(param="fft", decorrelate=True, transforms="none"),
    "+transforms": Optvis(),
}


def main(argv: List[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--units", nargs="+", default=DEFAULT_UNITS, metavar="LAYER:C")
    ap.add_argument("--iters", type=int, nargs="+", default=[32, 256], help="steps (passes) per run (32 256)")
    ap.add_argument("--size", type=int, default=224, help="canvas side in pixels (224, the net's input)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--save", type=Path, help="write every image as PNG here")
    ap.add_argument("--figure", type=Path, help="write the side-by-side JPEG here (docs/gallery/optvis.jpg)")
    args = ap.parse_args(argv)

    from skimage import data

    from deepdream_caffe.zoo import resolve_model

    m = resolve_model("open_nsfw", quiet=True)
    photo = np.float32(Image.fromarray(data.rocket()).resize((args.size, args.size), Image.LANCZOS))
    guard = Guard() if args.figure else None
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = args.save or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        print(f"{args.size}x{args.size}, seed {args.seed}")
        print(f"{'unit':28} {'passes':>6} {'setting':17} {'activation':>10} {'on photo':>9} {'|lap|':>7} {'hf vs pixel':>11} "
              f"{'per contrast':>12}")
        for unit in args.units:
            layer, c = unit.rsplit(":", 1)
            net = load_net(m.prototxt, m.weights, mean=m.mean, channel_swap=m.channel_swap, end=layer, fast=True)
            on_photo = channel_activation(net, layer, int(c), photo)
            for iters in args.iters:
                panels, base, base_sd = [], None, None
                for name, settings in SETTINGS.items():
                    img, _ = render_vis(net, channel(layer, int(c)), size=(args.size, args.size), iter_n=iters,
                                        settings=settings, rng=np.random.RandomState(args.seed))
                    act = channel_activation(net, layer, int(c), img)
                    lap, sd = laplacian_energy(img), float(np.clip(img, 0, 255).std())
                    base, base_sd = (lap, sd) if base is None else (base, base_sd)
                    print(f"{unit:28} {iters:6} {name:17} {act:10.2f} {on_photo:9.2f} {lap:7.2f} {lap / base:11.2f} "
                          f"{(lap / sd) / (base / base_sd):12.2f}", flush=True)
                    path = work / f"{unit.replace('/', '_').replace(':', '_')}_{iters}_{name.replace('+', '')}.png"
                    Image.fromarray(np.uint8(np.clip(img, 0, 255))).save(path)
                    if guard is not None:
                        guard.check(np.asarray(Image.open(path)), path.name)
                    panels.append(path)
            rows.append(compose(panels, 0))
        if args.figure is not None:
            gap = np.full((4, rows[0].shape[1], 3), 255, np.uint8)
            grid = np.concatenate(sum(([r, gap] for r in rows), [])[:-1])
            guard.check(grid, args.figure.name)  # type: ignore[union-attr]
            blob = jpeg_under_limit(grid)
            args.figure.write_bytes(blob)
            print(f"wrote {args.figure} ({len(blob) // 1024} KB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
