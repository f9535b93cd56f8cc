"""Every Python and shell example in README.md and docs/*.md runs, as a user would paste it.

Each fenced ``python`` or ``sh`` block runs in a fresh folder holding the
files the examples name (small photos from scikit-image, a clip like the
video tests'), with this Python's venv first on PATH: a Python block in a
child process of ``sys.executable``, a shell block in ``bash -euo
pipefail``. Each block stands alone, as a reader pastes it. A block that
cannot run here is marked ``<!-- example: not run (REASON) -->`` and must be
one of ``NOT_RUN``, so a new unmarked block is run, never skipped.

The zoo is the suite's own: ``bvlc_googlenet`` is the real prototxt with
seeded random weights, served on 127.0.0.1 under a manifest in
``$DEEPDREAM_CAFFE_MODELS`` that shadows the built-in one (same mean,
channel order and default layer; the sha1s of what is served), and
``open_nsfw`` is the trained net the suite fetched, copied into a private
``$DEEPDREAM_CAFFE_CACHE``. A proxy that nobody runs stands in for every
other host, so no example reaches the network.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import pytest
from PIL import Image
from skimage import data

from httpserver import FileServer
from video_clips import moving_square, write_clip_with_audio
from zoo_helpers import REPO, dead_url, sha1

PAGES = ["README.md", *sorted(str(p.relative_to(REPO)) for p in (REPO / "docs").glob("*.md"))]
LANGS = {"python": "python", "py": "python", "sh": "sh", "bash": "sh", "shell": "sh"}
# (page, first command) of the blocks marked not run: exactly these.
NOT_RUN = {
    ("README.md", "scripts/dream.sh"),
    ("docs/install.md", "scripts/dream.sh"),
    ("docs/batch.md", "dask scheduler --host 10.0.0.5"),
    ("docs/atlas.md", "deepdream-caffe atlas --layers inception_3b/output,inception_4c/output -o atlas --scheduler tcp://10.0.0.5:8786"),
}

_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})\s*(?P<info>[^`\s]*)[^`]*$")
_MARKER = re.compile(r"^\s*<!--\s*example:\s*(?P<what>.*?)\s*-->\s*$")
_NOT_RUN = re.compile(r"^not run \((?P<why>.+)\)$")
# An indented block of commands outside a fence would escape this test: such lines must be fenced.
_INDENTED_COMMAND = re.compile(r"^(?: {4,}|\t)(?:deepdream-caffe|scripts/|\.venv/|python|dask) ")


@dataclass(frozen=True)
class Block:
    page: str  # relative to the repo
    line: int  # 1-based line of the opening fence
    lang: str  # "python" or "sh"
    code: str
    marker: Optional[str]  # what the <!-- example: ... --> just above says

    @property
    def first_command(self) -> str:
        return next((s.split("#")[0].strip() for s in self.code.splitlines() if s.strip()), "")


def read_blocks(page: str, problems: list[str]) -> list[Block]:
    """The page's fenced python and sh blocks, in order, with the marker above each."""
    lines = (REPO / page).read_text().splitlines()
    blocks, i = [], 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if not m:
            if _INDENTED_COMMAND.match(lines[i]):
                problems.append(f"{page}:{i + 1}: an indented command outside a fence; fence it as ```sh")
            i += 1
            continue
        fence, indent, start = m["fence"], len(m["indent"]), i
        i += 1
        body = []
        while i < len(lines) and not lines[i].strip().startswith(fence):
            body.append(re.sub(rf"^[ \t]{{0,{indent}}}", "", lines[i]))
            i += 1
        if i == len(lines):
            problems.append(f"{page}:{start + 1}: the fence is never closed")
        i += 1
        lang = LANGS.get(m["info"].lower())
        if lang is None:
            continue
        above = next((s for s in reversed(lines[:start]) if s.strip()), "")
        mk = _MARKER.match(above)
        blocks.append(Block(page, start + 1, lang, "\n".join(body) + "\n", mk["what"] if mk else None))
    return blocks


def all_blocks() -> tuple[list[Block], list[str]]:
    """Every page's blocks, and what is wrong with how the pages mark and fence them."""
    blocks, problems = [], []
    for page in PAGES:
        blocks += read_blocks(page, problems)
    problems += [f"{b.page}:{b.line}: unknown marker {b.marker!r}"
                 for b in blocks if b.marker is not None and not _NOT_RUN.match(b.marker)]
    return blocks, problems


BLOCKS, PROBLEMS = all_blocks()
RUN = [b for b in BLOCKS if b.marker is None]


def test_every_example_is_fenced_and_marked_well():
    assert PROBLEMS == []
    assert RUN, "no examples found"


def test_the_blocks_not_run_are_exactly_the_known_ones():
    assert {(b.page, b.first_command) for b in BLOCKS if b.marker is not None} == NOT_RUN


# -- what the examples need ------------------------------------------------------------------

def _jpeg(path: Path, rgb: np.ndarray, width: int) -> None:
    img = Image.fromarray(rgb)
    img.resize((width, round(img.height * width / img.width)), Image.LANCZOS).save(path, quality=90)


@pytest.fixture(scope="session")
def docs_inputs(tmp_path_factory) -> Path:
    """The files the examples name: photos from scikit-image, a clip with sound, its frames, labels."""
    d = tmp_path_factory.mktemp("docs-inputs")
    rocket, chelsea, coffee = data.rocket(), data.chelsea(), data.coffee()
    for name, rgb in [("photo.jpg", rocket), ("in.jpg", coffee), ("flowers.jpg", chelsea),
                      ("a.jpg", rocket), ("b.jpg", chelsea), ("c.jpg", coffee)]:
        _jpeg(d / name, rgb, 320)
    (d / "photos").mkdir()
    _jpeg(d / "photos" / "rocket.jpg", rocket, 240)
    _jpeg(d / "photos" / "coffee.jpg", coffee, 240)
    clip = moving_square(5)
    write_clip_with_audio(d / "clip.mp4", clip.frames)
    (d / "shots").mkdir()
    for t, f in enumerate(clip.frames):
        Image.fromarray(np.uint8(f)).save(d / "shots" / f"shot{t}.png")
    # Caffe's data/ilsvrc12/synset_words.txt format; only the first line is ImageNet's own.
    words = ["n01440764 tench, Tinca tinca"] + [f"n{k:08d} class {k}" for k in range(1, 1000)]
    (d / "synset_words.txt").write_text("\n".join(words) + "\n")
    return d


@pytest.fixture(scope="session")
def docs_env(googlenet_model, open_nsfw_model, tmp_path_factory):
    """os.environ for the examples: this venv first, a private zoo, no network but 127.0.0.1."""
    proto, weights = googlenet_model
    root = tmp_path_factory.mktemp("docs-zoo")
    with FileServer(lifetime=3600) as server:
        p_url = server.add("bvlc_googlenet/deploy.prototxt", proto.read_bytes())
        w_url = server.add("bvlc_googlenet/bvlc_googlenet.caffemodel", weights.read_bytes())
        fields = {"prototxt_url": p_url, "prototxt_sha1": sha1(proto.read_bytes()),
                  "weights_url": w_url, "weights_sha1": sha1(weights.read_bytes())}
        text = (REPO / "models" / "bvlc_googlenet" / "model.toml").read_text()
        for key, value in fields.items():
            text, n = re.subn(rf"(?m)^{key} = .*$", f'{key} = "{value}"', text)
            assert n == 1, key
        manifest = root / "manifests" / "bvlc_googlenet" / "model.toml"
        manifest.parent.mkdir(parents=True)
        manifest.write_text("# The suite's copy: served on 127.0.0.1, with random weights.\n" + text)

        cache = root / "cache"
        nsfw = cache / "models" / "open_nsfw"
        nsfw.mkdir(parents=True)
        for f in (open_nsfw_model.prototxt, open_nsfw_model.weights):
            shutil.copyfile(f, nsfw / f.name)

        venv_bin = str(Path(sys.executable).parent)
        proxy = dead_url("").rstrip("/")
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("DEEPDREAM_CAFFE_") and k.lower() not in ("http_proxy", "https_proxy", "no_proxy")}
        env.update(
            PATH=os.pathsep.join([venv_bin, env.get("PATH", "")]),
            PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")])),
            DEEPDREAM_CAFFE_CACHE=str(cache),
            DEEPDREAM_CAFFE_MODELS=str(manifest.parent.parent),
            http_proxy=proxy, https_proxy=proxy, HTTP_PROXY=proxy, HTTPS_PROXY=proxy,
            no_proxy="127.0.0.1,localhost", NO_PROXY="127.0.0.1,localhost",
        )
        yield env


def _sandbox(tmp_path: Path, inputs: Path) -> Path:
    box = tmp_path / "box"
    shutil.copytree(inputs, box)
    # `source .venv/bin/activate` as in a clone: the venv running these tests.
    (box / ".venv").symlink_to(Path(sys.executable).parent.parent, target_is_directory=True)
    return box


@pytest.mark.parametrize("block", RUN, ids=[f"{b.page}:{b.line}" for b in RUN])
def test_example_runs(block: Block, docs_env, docs_inputs, tmp_path):
    box = _sandbox(tmp_path, docs_inputs)
    if block.lang == "python":
        # Padded so that a traceback names the page and the line in it.
        source = tmp_path / "example.py"
        source.write_text("\n" * block.line + block.code)
        cmd = [sys.executable, str(source)]
    else:
        cmd = ["bash", "-euxo", "pipefail", "-c", block.code]
    r = subprocess.run(cmd, cwd=box, env=docs_env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, (f"the example at {block.page}:{block.line} failed (exit {r.returncode}):\n"
                               f"{r.stdout[-3000:]}\n{r.stderr[-6000:]}")
