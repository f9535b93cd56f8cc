#!/usr/bin/env python3
"""Make the atlas of open_nsfw on the sample photo and a screenshot of its index for docs/atlas.md.

    .venv/bin/python scripts/atlas_shot.py                 # every 16th layer, a 192x192 photo (minutes)
    .venv/bin/python scripts/atlas_shot.py --site /tmp/a   # keep the site (a re-run renders nothing)

The photo is scikit-image's astronaut (the sample photo of ``dream`` and
``atlas``), scaled down so the atlas renders in a few minutes. The site is
made by the ``deepdream-caffe atlas`` command printed below; headless
Chromium (Debian's chromium and chromium-driver, through selenium) opens its
index.html from the file system and the screenshot is saved as a JPEG under
150 KB. As in scripts/gallery.py, every dream is classified by open_nsfw
itself and nothing scored class 1 is written.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import List

os.environ.setdefault("GLOG_minloglevel", "2")
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

OUT = REPO / "docs" / "atlas" / "open_nsfw.jpg"
WIDTH = 1280


def screenshot(index: Path, png: Path) -> None:
    """The whole page of ``index`` (opened as a file) in headless Chromium, as a PNG."""
    from selenium import webdriver

    opts = webdriver.ChromeOptions()
    opts.binary_location = shutil.which("chromium") or "chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--force-device-scale-factor=1",
                f"--window-size={WIDTH},800"):
        opts.add_argument(arg)
    service = webdriver.ChromeService(executable_path=shutil.which("chromedriver") or "chromedriver")
    browser = webdriver.Chrome(service=service, options=opts)
    try:
        browser.get(index.as_uri())
        for _ in range(3):  # the window's height includes the browser's own bars: grow until all of the page shows
            inner, page = browser.execute_script("return [window.innerHeight, document.documentElement.scrollHeight]")
            if inner >= page:
                break
            browser.set_window_size(WIDTH, browser.get_window_size()["height"] + page - inner)
        browser.save_screenshot(str(png))
    finally:
        browser.quit()


def main(argv: List[str] | None = None) -> int:
    from gallery import Guard, jpeg_under_limit, run

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--site", type=Path, help="folder of the atlas (default: a temporary one)")
    p.add_argument("--size", type=int, default=192, help="the photo's side in pixels (192)")
    p.add_argument("--layers", default="every:16", help="--layers of the atlas (every:16)")
    args = p.parse_args(argv)
    from skimage import data

    with tempfile.TemporaryDirectory() as tmp:
        work = args.site.absolute() if args.site else Path(tmp) / "atlas"
        work.mkdir(parents=True, exist_ok=True)
        photo = work.parent / "astronaut.png"
        Image.fromarray(data.astronaut()).resize((args.size, args.size), Image.LANCZOS).save(photo)
        run(["atlas", "--model", "open_nsfw", "--image", str(photo), "-o", str(work), "--layers", args.layers,
             "--octaves", "3", "--iters", "10"], cwd=work.parent)
        guard = Guard()
        for img in sorted((work / "images").glob("*.jpg")):
            guard.check(np.asarray(Image.open(img).convert("RGB")), img.name)
        png = Path(tmp) / "shot.png"
        screenshot(work / "index.html", png)
        OUT.parent.mkdir(exist_ok=True)
        OUT.write_bytes(jpeg_under_limit(np.asarray(Image.open(png).convert("RGB"))))
    print(f"wrote {OUT.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
