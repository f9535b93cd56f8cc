"""A layer atlas: what every layer of a net dreams on one image, as a static site.

``plan_atlas`` picks the dreamable layers from the prototxt (net order, with
their output shapes at the image's size) and turns each into batch tasks:
the base setting with ``--layer L``, and with ``--channel L:C`` for its first
channels (or its strongest: the largest mean activation on the image, from
one forward pass here). The batch renders them (resumable; each output records the plain
``dream`` command that remakes it bit for bit); ``write_site`` makes the
thumbnails and writes ``index.html``, a page per layer and the style sheet
from Jinja2 templates.
"""
from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..dream.guide import guide_features_at
from ..errors import DeepDreamError, import_extra
from ..io.atomic import atomic_output
from ..io.image import read_metadata, save_image
from .batch.plan import BatchTask, Setting, check_settings, plan_tasks
from .batch.sheet import thumbnail
from .layers import LayerRow, layer_table
from .picks import strongest as strongest_of
from .pipeline import DreamSession, net_files, read_input
from .run import RunFiles

SAMPLE = "sample.png"  # the sample photo, written into the atlas when no --image is given
THUMB = 256  # a thumbnail's longer side in pixels
THUMB_QUALITY = 85


@dataclass(frozen=True)
class Tile:
    """One layer of the atlas: its output shape (C, H, W) at the image's size, its dream, its channels'."""

    layer: str
    shape: Tuple[int, ...]
    task: BatchTask
    channels: Tuple[BatchTask, ...] = ()

    @property
    def page(self) -> str:
        """The layer's page, relative to the atlas folder."""
        return f"layers/{re.sub(r'[^A-Za-z0-9_+-]+', '_', self.layer)}.html"


@dataclass(frozen=True)
class Atlas:
    """What an atlas shows: the net, the image, the folder and the tiles in net order."""

    out_dir: Path
    image: Path
    net: str
    tiles: Tuple[Tile, ...]

    @property
    def tasks(self) -> List[BatchTask]:
        return [t for tile in self.tiles for t in (tile.task, *tile.channels)]


def pick_layers(rows: Sequence[LayerRow], spec: str, size: str) -> List[LayerRow]:
    """The rows ``--layers`` names: ``all`` dreamable ones, ``every:K`` (every K-th), or ``L1,L2`` (net order)."""
    dreamable = [r for r in rows if r.dream == "yes"]
    if not dreamable:
        why = sorted({r.dream for r in rows if r.dream not in ("input", "no-output")})
        raise DeepDreamError(f"no layer of this net can be dreamed at {size} ({', '.join(why) or 'none'}); "
                             "see `deepdream-caffe layers`")
    if spec == "all":
        return dreamable
    if spec.startswith("every:"):
        k = spec[len("every:"):]
        if not k.isdigit() or int(k) < 1:
            raise DeepDreamError(f"--layers every:K wants a whole number K >= 1, got '{spec}'")
        return dreamable[::int(k)]
    names = [n.strip() for n in spec.split(",") if n.strip()]
    by_name = {r.name: r for r in rows}
    unknown = [n for n in names if n not in by_name]
    if unknown:
        close = sorted({c for n in unknown for c in difflib.get_close_matches(n, list(by_name), n=3)})
        hint = f" (close: {', '.join(close)})" if close else ""
        raise DeepDreamError(f"--layers: no layer named {', '.join(unknown)} in this net{hint}")
    bad = [f"{n} ({by_name[n].dream})" for n in names if by_name[n].dream != "yes"]
    if bad:
        raise DeepDreamError(f"--layers: cannot be dreamed at {size}: {', '.join(bad)}")
    wanted = set(names)
    return [r for r in dreamable if r.name in wanted]


def _layer_setting(base: Setting, layer: str) -> Setting:
    return Setting(replace(base.config, layer=layer, layers=(), channels=()), (("layer", layer),),
                   (*base.flags, "--layer", layer))


def _channel_setting(base: Setting, layer: str, c: int) -> Setting:
    return Setting(replace(base.config, layer=None, layers=(), channels=((layer, c, 1.0),)),
                   (("channel", f"{layer}:{c}"),), (*base.flags, "--channel", f"{layer}:{c}"))


def strongest_channels(base: Setting, pixels: np.ndarray, layers: Sequence[str], n: int) -> Dict[str, List[int]]:
    """Each layer's ``n`` channels with the largest mean activation on ``pixels`` (one forward pass, ties by index)."""
    session = DreamSession(replace(base.config, layer=None, layers=tuple((name, 1.0) for name in layers), channels=()))
    acts = guide_features_at(session.net, pixels, layers)
    return {name: list(strongest_of(a.reshape(len(a), -1).mean(axis=1), n)) for name, a in acts.items()}


def plan_atlas(base: Setting, out_dir: Path, image: Optional[Path] = None, layers: str = "all",
               channels: int = 0, seed: int = 0, strongest: bool = False) -> Atlas:
    """The atlas of ``base``'s net on ``image`` (None: the sample photo) into ``out_dir``; refuses bad input.

    ``base`` holds the dream options shared by every tile (no layer or
    channel of its own). ``channels`` per layer are its first, or with
    ``strongest`` its strongest on the image. Only after every check passes
    is anything written: the folder, and the sample photo when no image is
    given.
    """
    out_dir = Path(out_dir).absolute()
    if out_dir.exists() and not out_dir.is_dir():
        raise DeepDreamError(f"the output folder {out_dir} is not a folder")
    if channels < 0:
        raise DeepDreamError(f"--channels must be at least 0, got {channels}")
    RunFiles([image, *net_files(base.config)], writes=[out_dir / "index.html", out_dir / "style.css"],
             folders=[out_dir, *(out_dir / d for d in ("images", "thumbs", "layers"))]).check()
    pixels = read_input(image, base.config.exif_orientation, base.config.max_size)[0]  # as each tile dreams it
    h, w = pixels.shape[:2]
    rows, _ = layer_table(base.config.net, h, w)
    chosen = pick_layers(rows, layers, f"{w}x{h}")
    settings = [_layer_setting(base, r.name) for r in chosen]
    check_settings(settings[:1])  # the net, weights and options; the layers are known good at this size
    picks = {r.name: list(range(min(channels, r.shapes[0][0] if r.shapes else 0))) for r in chosen}
    if strongest and channels:
        picks = strongest_channels(base, pixels, [r.name for r in chosen], channels)
    groups = [[s, *(_channel_setting(base, r.name, c) for c in picks[r.name])] for r, s in zip(chosen, settings)]
    slugs = [s.slug for g in groups for s in g]  # the output names, but for the image's stem
    if len(set(slugs)) != len(slugs):
        raise DeepDreamError("two layers of this net would write the same file name; pick them with --layers")
    out_dir.mkdir(parents=True, exist_ok=True)
    if image is None:
        image = out_dir / SAMPLE
        if not image.is_file():
            save_image(image, pixels)
    # One plan for all: task indices are unique across the atlas, as the batch needs.
    tasks = iter(plan_tasks([image], [s for g in groups for s in g], out_dir / "images", seed))
    tiles = []
    for r, g in zip(chosen, groups):
        main, *chans = [next(tasks) for _ in g]
        tiles.append(Tile(r.name, r.shapes[0] if r.shapes else (), main, tuple(chans)))
    net = base.config.net
    label = net.model or (net.prototxt.name if net.prototxt else "net")
    return Atlas(out_dir, Path(image).absolute(), label, tuple(tiles))


def _write_if_changed(path: Path, data: bytes) -> None:
    """Atomically, and only when the content differs: a finished atlas run again touches nothing."""
    if path.is_file() and path.stat().st_size == len(data) and path.read_bytes() == data:  # never read more
        return
    with atomic_output(path) as f:
        f.write(data)


def _thumb(atlas: Atlas, task: BatchTask) -> Optional[str]:
    """The thumbnail of ``task``'s output (made when missing or older), relative to the atlas; None if none."""
    if not task.output.is_file():
        return None
    thumb = atlas.out_dir / "thumbs" / task.output.name
    if not thumb.is_file() or thumb.stat().st_mtime_ns < task.output.stat().st_mtime_ns:
        thumb.parent.mkdir(exist_ok=True)
        with atomic_output(thumb) as f:
            thumbnail(task.output, THUMB).save(f, format="JPEG", quality=THUMB_QUALITY)
    return thumb.relative_to(atlas.out_dir).as_posix()


def _card(atlas: Atlas, task: BatchTask, title: str, failures: Dict[int, str]) -> Dict[str, object]:
    """What a template shows of one output: title, paths (relative to the atlas), the command, or the failure."""
    thumb = _thumb(atlas, task)
    card: Dict[str, object] = {"title": title, "thumb": thumb, "error": failures.get(task.index)}
    if thumb is not None:
        meta = read_metadata(task.output) or {}
        card["image"] = task.output.relative_to(atlas.out_dir).as_posix()
        card["command"] = (meta.get("batch") or {}).get("reproduce", {}).get("command")
    elif card["error"] is None:
        card["error"] = "not rendered"
    return card


def write_site(atlas: Atlas, failures: Optional[Dict[int, str]] = None) -> Path:
    """Write the thumbnails, ``index.html``, a page per layer with channels, and ``style.css``; returns index.html.

    ``failures`` (task index -> one line) are shown in place of their tiles.
    """
    jinja2 = import_extra("jinja2", "atlas")
    env = jinja2.Environment(loader=jinja2.PackageLoader("deepdream_caffe.app", "templates/atlas"),
                             autoescape=True, trim_blocks=True, lstrip_blocks=True)
    failures = failures or {}
    image = atlas.image.name if atlas.image.parent == atlas.out_dir else str(atlas.image)
    common = {"net": atlas.net, "image": image}
    tiles = []
    for tile in atlas.tiles:
        shape = "\u00d7".join(str(d) for d in tile.shape)
        card = {**_card(atlas, tile.task, tile.layer, failures), "shape": shape,
                "page": tile.page if tile.channels else None}
        tiles.append(card)
        if tile.channels:
            cards = [_card(atlas, t, f"channel {t.setting.values[0][1].rsplit(':', 1)[1]}", failures)
                     for t in tile.channels]
            html = env.get_template("layer.html").render(root="../", layer=tile.layer, shape=shape, cards=cards,
                                                         **common)
            (atlas.out_dir / "layers").mkdir(exist_ok=True)
            _write_if_changed(atlas.out_dir / tile.page, html.encode("utf-8"))
    _write_if_changed(atlas.out_dir / "style.css", env.loader.get_source(env, "style.css")[0].encode("utf-8"))
    index = atlas.out_dir / "index.html"
    _write_if_changed(index, env.get_template("index.html").render(root="", cards=tiles, **common).encode("utf-8"))
    return index

