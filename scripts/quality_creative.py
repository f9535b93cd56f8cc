#!/usr/bin/env python3
"""The measures of --preserve-colors and --lap-levels on the trained net (open_nsfw), against the plain dream.

    .venv/bin/python scripts/quality_creative.py                 # both tables (about 15 min on 2 quiet cores)
    .venv/bin/python scripts/quality_creative.py --only colors --save /tmp/c   # and PNGs to look at

Every dream has the notebook's defaults (10 steps x 4 octaves = 40 passes)
and seed 0; each option is compared with the plain dream of the same image,
layer, seed and passes.

* preserve-colors, on each photo at its own size and open_nsfw's default
  layer: the output's chroma difference from the input (mean absolute Cb
  and Cr difference of scikit-image's BT.601 YCbCr, on the uint8 output as
  saved, in grey levels) and the layer-energy gain; the bar is a chroma
  difference under 1 with the gain within 20% of the plain dream's.
* lap-levels, on rocket brought to a long side of 1024 px (Lanczos): the
  high-frequency ratio and the layer-energy gain of each (see
  deepdream_caffe.dream.measures), and their ratios to the plain dream's.

Images are scikit-image's sample photos by name or paths. Never pass images of open_nsfw's class 1.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import List

os.environ.setdefault("GLOG_minloglevel", "2")
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from deepdream_caffe.dream.ascent import deepdream  # noqa: E402
from deepdream_caffe.dream.measures import measure_dream  # noqa: E402
from deepdream_caffe.io.image import to_uint8  # noqa: E402
from deepdream_caffe.net.loading import load_net  # noqa: E402
from quality import load_photo, open_nsfw, save_png  # noqa: E402

DEFAULT_LAYER = "eltwise_stage1_block3"
LAP_LAYERS = ["eltwise_stage1_block3", "relu_stage2_block2"]
PASSES = 10 * 4


def chroma_difference(before: np.ndarray, after: np.ndarray) -> float:
    """Mean |Cb, Cr difference| (scikit-image's YCbCr, grey levels) of two images as saved (uint8)."""
    from skimage.color import rgb2ycbcr

    def cbcr(img: np.ndarray) -> np.ndarray:
        return rgb2ycbcr(to_uint8(img))[..., 1:]

    return float(np.mean(np.abs(cbcr(after) - cbcr(before))))


def at_long_side(img: np.ndarray, size: int) -> np.ndarray:
    """``img`` resized (Lanczos) to a long side of ``size``, up or down."""
    h, w = img.shape[:2]
    f = size / max(h, w)
    im = Image.fromarray(to_uint8(img)).resize((round(w * f), round(h * f)), Image.LANCZOS)
    return np.float32(im)


def dream(net, img, end, **options):
    return deepdream(net, img, end=end, rng=np.random.RandomState(0), **options)


def colors(files, images: List[str], save: Path | None) -> int:
    net = load_net(*files[:2], mean=files[2], channel_swap=files[3], end=DEFAULT_LAYER, fast=True)
    print(f"preserve-colors at {DEFAULT_LAYER}, {PASSES} passes, seed 0")
    print(f"{'image':<10} {'size':>9} {'mode':<16} {'chroma':>7} {'gain':>7} {'gain/plain':>10}  bar")
    missed = 0
    for name in images:
        img = load_photo(name)
        outs = {"plain": dream(net, img, DEFAULT_LAYER), "preserve-colors": dream(net, img, DEFAULT_LAYER,
                                                                                   preserve_colors=True)}
        gains = {k: measure_dream(net, DEFAULT_LAYER, img, out, PASSES).energy_gain for k, out in outs.items()}
        for k, out in outs.items():
            chroma, ratio = chroma_difference(img, out), gains[k] / gains["plain"]
            bar = ""
            if k != "plain":
                ok = chroma < 1 and abs(ratio - 1) <= 0.2
                missed += not ok
                bar = "ok" if ok else "MISS"
            print(f"{Path(name).stem:<10} {img.shape[1]:>4}x{img.shape[0]:<4} {k:<16} {chroma:>7.3f} {gains[k]:>7.3f} "
                  f"{ratio:>10.3f}  {bar}", flush=True)
            if save:
                save_png(save / f"colors_{Path(name).stem}_{k}.png", out)
    return missed


def lap(files, images: List[str], size: int, levels: List[int], save: Path | None) -> None:
    print(f"\nlap-levels at {size} px (long side), {PASSES} passes, seed 0")
    print(f"{'image':<10} {'layer':<22} {'mode':<14} {'hf':>6} {'gain':>8} {'hf/plain':>9} {'gain/plain':>10} {'dpix':>6}")
    for end in LAP_LAYERS:
        net = load_net(*files[:2], mean=files[2], channel_swap=files[3], end=end, fast=True)
        for name in images:
            img = at_long_side(load_photo(name), size)
            runs = {"plain": dream(net, img, end)}
            runs.update({f"lap-levels {n}": dream(net, img, end, lap_levels=n) for n in levels})
            m = {k: measure_dream(net, end, img, out, PASSES) for k, out in runs.items()}
            for k, d in m.items():
                print(f"{Path(name).stem:<10} {end:<22} {k:<14} {d.high_frequency:>6.3f} {d.energy_gain:>8.3f} "
                      f"{d.high_frequency / m['plain'].high_frequency:>9.3f} "
                      f"{d.energy_gain / m['plain'].energy_gain:>10.3f} {d.pixel_change:>6.2f}", flush=True)
                if save:
                    save_png(save / f"lap_{Path(name).stem}_{end}_{k.replace(' ', '')}.png", runs[k])


def main(argv: List[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", choices=("colors", "lap"))
    ap.add_argument("--images", nargs="+", default=["rocket", "coffee", "chelsea"], help="for preserve-colors")
    ap.add_argument("--lap-images", nargs="+", default=["rocket"])
    ap.add_argument("--size", type=int, default=1024, help="long side for lap-levels (1024)")
    ap.add_argument("--levels", type=int, nargs="+", default=[4])
    ap.add_argument("--save", type=Path, help="write every dream as a PNG here")
    args = ap.parse_args(argv)
    files = open_nsfw()
    missed = 0
    if args.only in (None, "colors"):
        missed = colors(files, args.images, args.save)
    if args.only in (None, "lap"):
        lap(files, args.lap_images, args.size, args.levels, args.save)
    if args.only in (None, "colors"):
        print(f"{missed} preserve-colors row(s) miss the bar" if missed else "every preserve-colors row meets the bar")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
