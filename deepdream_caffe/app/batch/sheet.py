"""The contact sheet: a sweep's outputs in a labelled grid (rows: inputs, columns: settings).

Each output is scaled to fit a ``tile`` x ``tile`` cell (aspect kept,
centred); labels use PIL's default font. A missing output (its task
failed) leaves a grey cell marked "failed". Written atomically.
"""
from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Collection, List, Optional, Sequence, Tuple

from PIL import Image, ImageDraw, ImageFont

from ...errors import DeepDreamError
from ...io.atomic import atomic_output
from ...io.files import open_regular
from ...io.image import image_format
from ..run import RunFiles

GAP = 4
MAX_SIDE = {"JPEG": 65500, "WEBP": 16383}  # the formats' own limits on a side, in pixels
BACKGROUND = (255, 255, 255)


@dataclass(frozen=True)
class SheetLayout:
    """Where everything goes: the label margins, the cell size, the sheet's size."""

    rows: int
    cols: int
    tile: int
    left: int  # width of the row labels' column
    top: int  # height of the column labels' row

    @property
    def size(self) -> Tuple[int, int]:
        """(width, height) of the sheet."""
        return (self.left + self.cols * (self.tile + GAP) + GAP, self.top + self.rows * (self.tile + GAP) + GAP)

    def cell(self, row: int, col: int) -> Tuple[int, int, int, int]:
        """(left, top, right, bottom) of the cell of ``row``, ``col``."""
        x = self.left + GAP + col * (self.tile + GAP)
        y = self.top + GAP + row * (self.tile + GAP)
        return x, y, x + self.tile, y + self.tile


def _text_size(draw, text: str, font) -> Tuple[int, int]:
    box = draw.textbbox((0, 0), text, font=font)
    return box[2] - box[0], box[3] - box[1]


def layout(row_labels: Sequence[str], col_labels: Sequence[Sequence[str]], tile: int) -> SheetLayout:
    """The grid for these labels (a column label may have several lines) with square cells of ``tile``."""
    font = ImageFont.load_default()
    draw = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    line_h = max([_text_size(draw, "Ag", font)[1]] + [1]) + 2
    left = max([_text_size(draw, t, font)[0] for t in row_labels] + [0]) + 2 * GAP
    top = max([len(lines) for lines in col_labels] + [0]) * line_h + 2 * GAP
    return SheetLayout(len(row_labels), len(col_labels), tile, left, top)


def thumbnail(path: Path, tile: int):
    """The image at ``path`` scaled to fit ``tile`` x ``tile`` (PIL image, RGB)."""
    with open_regular(path, "image") as f, Image.open(f) as im:
        im = im.convert("RGB")
        im.thumbnail((tile, tile), Image.LANCZOS)
        return im.copy()


def make_sheet(out: Path, grid: List[List[Optional[Path]]], row_labels: Sequence[str],
               col_labels: Sequence[str], tile: int = 192, quality: int = 90) -> SheetLayout:
    """Draw ``grid[row][col]`` (image paths, None for failed) with labels into ``out``; returns the layout.

    A column label ``"layer=a octaves=3"`` is drawn one setting per line.
    """
    fmt = image_format(out)
    cols = [label.split(" ") if label else [""] for label in col_labels]
    lay = layout(row_labels, cols, tile)
    sheet = Image.new("RGB", lay.size, BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default()
    line_h = _text_size(draw, "Ag", font)[1] + 2
    for c, lines in enumerate(cols):
        x0 = lay.cell(0, c)[0]
        for i, line in enumerate(lines):
            draw.text((x0, GAP + i * line_h), line, fill=(0, 0, 0), font=font)
    for r, label in enumerate(row_labels):
        y0 = lay.cell(r, 0)[1]
        draw.text((GAP, y0 + tile // 2 - line_h // 2), label, fill=(0, 0, 0), font=font)
        for c in range(len(cols)):
            x, y, x1, y1 = lay.cell(r, c)
            path = grid[r][c]
            if path is None or not Path(path).is_file():
                draw.rectangle((x, y, x1 - 1, y1 - 1), fill=(160, 160, 160))
                draw.text((x + GAP, y + GAP), "failed", fill=(0, 0, 0), font=font)
                continue
            th = thumbnail(Path(path), tile)
            sheet.paste(th, (x + (tile - th.width) // 2, y + (tile - th.height) // 2))
    buf = io.BytesIO()
    sheet.save(buf, format=fmt, **({"quality": quality} if fmt == "JPEG" else {}))
    with atomic_output(out) as f:
        f.write(buf.getvalue())
    return lay


def check_sheet(tasks, out: Path, tile: int = 192) -> None:
    """Refuse, before the batch runs, a sheet in a missing folder, one too large to write or read back (more
    pixels than Pillow opens), or one that would replace a file the batch reads or writes."""
    out = Path(out)
    fmt = image_format(out)
    if not (out.parent if str(out.parent) else Path(".")).is_dir():
        raise DeepDreamError(f"the sheet's folder does not exist: {out.parent}")
    inputs = list(dict.fromkeys(t.input for t in tasks))
    labels = list(dict.fromkeys(t.setting.label for t in tasks))
    w, h = layout([p.name for p in inputs], [label.split(" ") for label in labels], tile).size
    side = MAX_SIDE.get(fmt, 1 << 16)
    if max(w, h) > side or w * h > Image.MAX_IMAGE_PIXELS:
        raise DeepDreamError(f"a contact sheet of {len(inputs)}x{len(labels)} cells of {tile} pixels would be "
                             f"{w}x{h}, more than a {fmt} holds or Pillow opens; give a smaller --sheet-tile")
    net = [p for t in tasks for p in (t.config.guide, t.config.net.prototxt, t.config.net.weights)]
    RunFiles([*inputs, *(t.output for t in tasks), *net], writes=[out]).check()


def sheet_of(tasks, out: Path, tile: int = 192, failed: Collection[int] = ()) -> SheetLayout:
    """The contact sheet of a batch's tasks: rows in input order, columns in setting order.

    Tasks whose index is in ``failed`` get a "failed" cell even if an older output is on disk.
    """
    check_sheet(tasks, out, tile)
    inputs: List[Path] = list(dict.fromkeys(t.input for t in tasks))
    labels: List[str] = list(dict.fromkeys(t.setting.label for t in tasks))
    grid: List[List[Optional[Path]]] = [[None] * len(labels) for _ in inputs]
    for t in tasks:
        grid[inputs.index(t.input)][labels.index(t.setting.label)] = None if t.index in failed else t.output
    return make_sheet(out, grid, [p.name for p in inputs], labels, tile)
