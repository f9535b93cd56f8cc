#!/usr/bin/env python3
"""Render the gallery (docs/gallery.md and the README's first picture) from the trained net (open_nsfw) into docs/gallery/.

    .venv/bin/python scripts/gallery.py            # all pictures (about 10 min on 2 quiet cores)
    .venv/bin/python scripts/gallery.py --only zoom zoom-keyframes

Every picture is made by the ``deepdream-caffe`` command printed next to it
(and in docs/gallery.md), run on two photos that ship with scikit-image:
``rocket`` (a launch pad under an evening sky, standing in for the notebook's
sky1024px.jpg) and ``chelsea`` (a cat, the guide, standing in for its
flowers.jpg). The PNGs they write are then put side by side where a picture
compares, and saved as JPEGs under 150 KB.

open_nsfw's class 1 is "not safe for work". Its class 0 photos and dreams of
its layers are what this gallery shows; as a guard, every input and every
picture is classified by the net itself and nothing scored class 1 (p >= 0.5)
is written: the script stops instead.
"""
from __future__ import annotations

import argparse
import io
import os
import shlex
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Sequence

os.environ.setdefault("GLOG_minloglevel", "2")
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

OUT = REPO / "docs" / "gallery"
MAX_BYTES = 150 * 1024
PHOTOS = ("rocket", "chelsea")
NET = ["--model", "open_nsfw"]


@dataclass
class Picture:
    """One JPEG of the gallery: the commands that make its panels, and how they are laid out."""

    name: str
    caption: str
    commands: List[List[str]]  # deepdream-caffe arguments; each writes the panel named by its -o / --out-dir
    panels: List[str] = field(default_factory=list)  # files (in the work folder) shown left to right
    width: int = 0  # 0: the panels' own size
    files: Dict[str, str] = field(default_factory=dict)  # written into the work folder first (keyframes)


# A zoom that turns, drifts and zooms out, and changes layer and strength on the way (docs/creative.md).
MOTION_KEYS = """\
[[key]]
frame = 0
scale = 0.05
rotate = 0
pan = [0, 0]
layer = "eltwise_stage1_block3"
step_size = 1.5

[[key]]
frame = 6
layer = "relu_stage2_block2"
step_size = 2.5

[[key]]
frame = 11
scale = -0.03
rotate = 4
pan = [6, 0]
"""


def pictures() -> List[Picture]:
    def dream(out: str, photo: str, *extra: str) -> List[str]:
        return ["dream", f"{photo}.png", "-o", out, *NET, "--seed", "0", *extra]

    return [
        Picture("photos", "the two photos: rocket (dreamed on) and chelsea (the guide)", [],
                ["rocket.png", "chelsea.png"], width=960),
        Picture("before-after", "rocket, and its dream at open_nsfw's default layer (the README's first picture)",
                [dream("middle.png", "rocket")], ["rocket.png", "middle.png"], width=1000),
        Picture("low", "low layer, eltwise_stage0_block2: fine strokes and textures",
                [dream("low.png", "rocket", "--layer", "eltwise_stage0_block2")], ["low.png"]),
        Picture("middle", "middle layer, eltwise_stage1_block3 (open_nsfw's default): eyes and rings",
                [dream("middle.png", "rocket")], ["middle.png"]),
        Picture("high", "high layer, relu_stage2_block2: creature-like shapes",
                [dream("high.png", "rocket", "--layer", "relu_stage2_block2")], ["high.png"]),
        Picture("guided", "guided by the cat, relu_stage2_block2: the cat's features, not the layer's favourites",
                [dream("guided.png", "rocket", "--layer", "relu_stage2_block2", "--guide", "chelsea.png")],
                ["guided.png"]),
        Picture("ascent-vs-lbfgs", "eltwise_stage1_block3 on the cat: ascent (left, 40 passes) and "
                "--mode lbfgs with its defaults (right, 44 passes)",
                [dream("ascent.png", "chelsea"),
                 ["dream", "chelsea.png", "-o", "lbfgs.png", *NET, "--mode", "lbfgs"]],
                ["ascent.png", "lbfgs.png"], width=1000),
        Picture("zoom", "zoom: frames 0, 4, 8 and 11 of a 12-frame sequence (5% per frame)",
                [["zoom", "rocket.png", "--out-dir", "frames", *NET, "--frames", "12", "--seed", "0"]],
                ["frames/0000.jpg", "frames/0004.jpg", "frames/0008.jpg", "frames/0011.jpg"], width=1200),
        Picture("zoom-keyframes", "a keyframed zoom: frames 0, 4, 8 and 11 of 12; it turns, drifts, zooms out and "
                "changes layer and step size (motion.toml in docs/creative.md)",
                [["zoom", "rocket.png", "--out-dir", "motion", *NET, "--frames", "12", "--seed", "0",
                  "--keyframes", "motion.toml"]],
                ["motion/0000.jpg", "motion/0004.jpg", "motion/0008.jpg", "motion/0011.jpg"], width=1200,
                files={"motion.toml": MOTION_KEYS}),
        Picture("preserve-colors", "the cat, its dream, and its dream with --preserve-colors (the cat's own colours)",
                [dream("cat-dream.png", "chelsea"), dream("cat-kept.png", "chelsea", "--preserve-colors")],
                ["chelsea.png", "cat-dream.png", "cat-kept.png"], width=1200),
        Picture("lap-levels", "rocket at 1024 px, relu_stage2_block2: the plain step (left) and --lap-levels 4 (right)",
                [dream("lap-plain.png", "rocket-1024", "--layer", "relu_stage2_block2"),
                 dream("lap-4.png", "rocket-1024", "--layer", "relu_stage2_block2", "--lap-levels", "4")],
                ["lap-plain.png", "lap-4.png"], width=1200),
        Picture("strongest", "the 3 channels of eltwise_stage1_block3 most active on rocket, dreamed at 480 px",
                [dream("strongest.png", "rocket", "--channel", "eltwise_stage1_block3:strongest=3", "--max-size", "480")],
                ["strongest.png"]),
    ]


def cli() -> List[str]:
    exe = Path(sys.executable).with_name("deepdream-caffe")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "deepdream_caffe.cli"]


def run(args: Sequence[str], cwd: Path) -> None:
    print("  $ deepdream-caffe " + " ".join(shlex.quote(a) for a in args), flush=True)
    r = subprocess.run(cli() + list(args), cwd=cwd)
    if r.returncode != 0:
        sys.exit(f"gallery: the command above failed ({r.returncode})")


class Guard:
    """open_nsfw's own verdict on an image: p(class 1), from its 224x224 classifier input."""

    def __init__(self) -> None:
        from deepdream_caffe.net.loading import load_net
        from deepdream_caffe.zoo import resolve_model

        m = resolve_model("open_nsfw", quiet=True)
        self.net = load_net(m.prototxt, m.weights, mean=m.mean, channel_swap=m.channel_swap)

    def p_class1(self, img: np.ndarray) -> float:
        from deepdream_caffe.dream.transform import preprocess

        # open_nsfw's classify_nsfw.py resizes to 256x256 and takes the central 224x224 crop.
        im = Image.fromarray(np.uint8(np.clip(img, 0, 255))).resize((256, 256), Image.BILINEAR)
        x = preprocess(self.net, np.float32(im)[16:240, 16:240])
        cnet = self.net.net
        cnet.blobs["data"].reshape(1, *x.shape)
        cnet.blobs["data"].data[0] = x
        return float(cnet.forward()["prob"][0, 1])

    def check(self, img: np.ndarray, what: str) -> None:
        p = self.p_class1(img)
        print(f"  open_nsfw p(class 1) = {p:.3f} for {what}")
        if p >= 0.5:
            sys.exit(f"gallery: {what} scores as open_nsfw class 1 (p = {p:.2f}); nothing written for it")


def compose(paths: List[Path], width: int) -> np.ndarray:
    """Panels side by side at one height, with a 4-pixel white gap, scaled to ``width`` if given."""
    ims = [Image.open(p).convert("RGB") for p in paths]
    h = min(im.height for im in ims)
    ims = [im.resize((round(im.width * h / im.height), h), Image.LANCZOS) if im.height != h else im for im in ims]
    gap = 4 if len(ims) > 1 else 0
    canvas = Image.new("RGB", (sum(im.width for im in ims) + gap * (len(ims) - 1), h), "white")
    x = 0
    for im in ims:
        canvas.paste(im, (x, 0))
        x += im.width + gap
    if width and canvas.width > width:
        canvas = canvas.resize((width, round(canvas.height * width / canvas.width)), Image.LANCZOS)
    return np.asarray(canvas)


def jpeg_under_limit(img: np.ndarray) -> bytes:
    """The best JPEG quality (90 down to 60) that fits MAX_BYTES, shrinking the picture if even 60 does not."""
    im = Image.fromarray(img)
    while True:
        for q in range(90, 59, -5):
            buf = io.BytesIO()
            im.save(buf, "JPEG", quality=q, optimize=True, progressive=True)
            if buf.tell() <= MAX_BYTES:
                return buf.getvalue()
        im = im.resize((round(im.width * 0.9), round(im.height * 0.9)), Image.LANCZOS)


def main(argv: List[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="+", help="names of the pictures to make (default: all)")
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--work", type=Path, help="keep the full-size PNGs here (default: a temporary folder)")
    args = ap.parse_args(argv)

    from skimage import data

    guard = Guard()
    chosen = [p for p in pictures() if not args.only or p.name in args.only]
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        for name in PHOTOS:
            photo = np.asarray(getattr(data, name)())
            guard.check(photo, f"the photo {name}")
            Image.fromarray(photo).save(work / f"{name}.png")
        rocket = Image.open(work / "rocket.png")  # the notebook's sky1024px size, for --lap-levels
        rocket.resize((1024, round(rocket.height * 1024 / rocket.width)), Image.LANCZOS).save(work / "rocket-1024.png")
        args.out.mkdir(parents=True, exist_ok=True)
        sizes: Dict[str, int] = {}
        for pic in chosen:
            print(f"{pic.name}: {pic.caption}", flush=True)
            for name, text in pic.files.items():
                (work / name).write_text(text)
            for cmd in pic.commands:
                run(cmd, work)
            img = compose([work / p for p in pic.panels], pic.width)
            for p in pic.panels:
                guard.check(np.asarray(Image.open(work / p).convert("RGB")), p)
            guard.check(img, f"{pic.name}.jpg")
            blob = jpeg_under_limit(img)
            (args.out / f"{pic.name}.jpg").write_bytes(blob)
            sizes[pic.name] = len(blob)
            print(f"  wrote {args.out / pic.name}.jpg ({len(blob) // 1024} KB)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
