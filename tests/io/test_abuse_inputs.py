"""Issue 12: hostile files at the io layer -- odd file types, odd images, EXIF, API arrays, corrupt state files.

Every case is generated from a list, so a new kind of bad input is one line.
Each asserts a single-line DeepDreamError (or a state set aside, never
deleted and never trusted), and that the input is left as it was.
"""
from __future__ import annotations

import io
import os
import socket
import struct
import threading
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import deepdream_caffe.io.files as files
from deepdream_caffe.app.run import FileCheckpoint
from deepdream_caffe.errors import DeepDreamError
from deepdream_caffe.io.files import open_regular, read_regular, set_aside
from deepdream_caffe.io.image import as_image_array, load_image, read_image

# ---------------------------------------------------------------- file types


def _fifo(d: Path) -> Path:
    p = d / "pipe.jpg"
    os.mkfifo(p)
    return p


def _dir(d: Path) -> Path:
    p = d / "folder.jpg"
    p.mkdir()
    return p


def _socket(d: Path) -> Path:
    p = d / "s.jpg"
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(p))
    s.close()
    return p


def _symlink_to_fifo(d: Path) -> Path:
    p = d / "link.jpg"
    p.symlink_to(_fifo(d))
    return p


NOT_FILES = {
    "fifo": (_fifo, "FIFO"),
    "directory": (_dir, "directory"),
    "socket": (_socket, "socket"),
    "char device": (lambda d: Path("/dev/zero"), "character device"),
    "symlink to fifo": (_symlink_to_fifo, "FIFO"),
    "missing": (lambda d: d / "none.jpg", "not found"),
    "dangling symlink": (lambda d: (d / "dl.jpg").symlink_to(d / "gone") or d / "dl.jpg", "not found"),
}


def _one_line(e: BaseException) -> str:
    msg = str(e)
    assert "\n" not in msg and msg, msg
    return msg


def _bounded(fn, *a):
    """Run ``fn`` in a thread and fail (instead of hanging the suite) if it blocks."""
    out = {}

    def run():
        try:
            out["value"] = fn(*a)
        except BaseException as e:  # noqa: BLE001
            out["error"] = e

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(20)
    assert not t.is_alive(), f"{fn.__name__} blocked"
    return out


@pytest.mark.parametrize("kind", sorted(NOT_FILES))
@pytest.mark.parametrize("reader", ["load_image", "read_regular"])
def test_inputs_that_are_not_regular_files_are_refused_without_blocking(tmp_path, kind, reader):
    make, fragment = NOT_FILES[kind]
    p = make(tmp_path)
    fn = load_image if reader == "load_image" else read_regular
    out = _bounded(fn, p)
    assert isinstance(out.get("error"), DeepDreamError), out
    assert fragment in _one_line(out["error"])


def test_a_fifo_swapped_in_after_the_check_is_still_refused(tmp_path, monkeypatch):
    """The descriptor is checked again after an O_NONBLOCK open: the race window cannot make it block."""
    p = _fifo(tmp_path)
    monkeypatch.setattr(files, "check_regular", lambda *a, **k: None)  # as if the stat had seen a file
    out = _bounded(open_regular, p, "image")
    assert "FIFO" in _one_line(out["error"])


# ---------------------------------------------------------------- odd image files


def _png_bytes(w: int, h: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.random.RandomState(0).randint(0, 256, (h, w, 3)).astype(np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def _png_header_claiming(w: int, h: int) -> bytes:
    """A PNG whose IHDR claims w x h: a few hundred bytes that would decode to gigabytes."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 1000)) + chunk(b"IEND", b"")


GOOD = _png_bytes(40, 30)
ODD_IMAGES = {
    "empty": (b"", "not an image"),
    "text with an image name": (b"hello, not a picture\n", "not an image"),
    "truncated at 8 bytes": (GOOD[:8], "not an image"),
    "truncated at half": (GOOD[: len(GOOD) // 2], "truncated or corrupt"),
    "truncated 40 bytes short": (GOOD[:-40], "truncated or corrupt"),
    "bomb 100000x100000": (_png_header_claiming(100000, 100000), "too large"),
    "bomb over the warning limit": (_png_header_claiming(10000, 9500), "too large"),
    "zero width": (_png_header_claiming(0, 10), "not an image"),
    "flipped bytes": (GOOD[:60] + bytes(b ^ 0xFF for b in GOOD[60:90]) + GOOD[90:], "corrupt"),
}


@pytest.mark.parametrize("case", sorted(ODD_IMAGES))
def test_odd_image_files_are_one_line_errors_and_untouched(tmp_path, case):
    data, fragment = ODD_IMAGES[case]
    p = tmp_path / "in.jpg"
    p.write_bytes(data)
    with pytest.raises(DeepDreamError) as e:
        load_image(p)
    assert fragment in _one_line(e.value)
    assert p.read_bytes() == data


def test_wrong_extension_is_read_by_content(tmp_path):
    p = tmp_path / "really-a-png.jpg"
    p.write_bytes(GOOD)
    assert np.array_equal(load_image(p), np.float32(Image.open(io.BytesIO(GOOD))))


# ---------------------------------------------------------------- EXIF orientation


def _exif_jpeg(path: Path, orientation: int) -> np.ndarray:
    """A 30x20 JPEG (stored pixels returned) tagged with ``orientation``; a red corner marks the stored top-left."""
    a = np.zeros((20, 30, 3), np.uint8)
    a[:6, :6] = (255, 0, 0)
    im = Image.fromarray(a)
    exif = Image.Exif()
    exif[0x0112] = orientation
    im.save(path, "JPEG", exif=exif.tobytes(), quality=95)
    return np.float32(Image.open(path))


@pytest.mark.parametrize("orientation,shape,corner", [
    (1, (20, 30), (0, 0)), (3, (20, 30), (19, 29)), (6, (30, 20), (0, 19)), (8, (30, 20), (29, 0)),
])
def test_exif_orientation_is_applied_by_default_and_recorded(tmp_path, orientation, shape, corner):
    p = tmp_path / "phone.jpg"
    stored = _exif_jpeg(p, orientation)
    img, info = read_image(p)
    assert img.shape[:2] == shape and img.dtype == np.float32
    assert img[corner][0] > 200 and img[corner][1] < 60  # the red corner went where the tag says
    assert info == {"exif_orientation": orientation, "rotated": orientation != 1}
    # ignore: exactly the notebook's np.float32(PIL.Image.open(f))
    raw, info = read_image(p, exif_orientation="ignore")
    assert np.array_equal(raw, stored) and raw.dtype == stored.dtype
    assert info == {"exif_orientation": orientation, "rotated": False}


def test_exif_option_is_checked(tmp_path):
    p = tmp_path / "a.png"
    p.write_bytes(GOOD)
    with pytest.raises(DeepDreamError, match="exif_orientation must be one of apply, ignore"):
        load_image(p, exif_orientation="sideways")


# ---------------------------------------------------------------- API arrays

RGB = np.float32(np.random.RandomState(1).randint(0, 256, (12, 16, 3)))
ACCEPTED = {
    "float32 rgb (same object)": (RGB, lambda out: out is RGB),
    "uint8 rgb": (RGB.astype(np.uint8), lambda out: np.array_equal(np.float32(out), RGB)),
    "gray 2-D": (RGB[:, :, 0], lambda out: out.shape == (12, 16, 3) and np.array_equal(out[:, :, 2], RGB[:, :, 0])),
    "gray HxWx1": (RGB[:, :, :1], lambda out: out.shape == (12, 16, 3)),
    "rgba opaque": (np.dstack([RGB, np.full((12, 16), 255, np.float32)]), lambda out: np.allclose(out, RGB)),
    "rgba transparent is white": (np.dstack([RGB, np.zeros((12, 16), np.float32)]), lambda out: np.allclose(out, 255)),
    "uint16 scaled": (np.full((12, 16, 3), 65535, np.uint16), lambda out: np.allclose(out, 255)),
    "pil rgb": (Image.fromarray(RGB.astype(np.uint8)), lambda out: np.array_equal(out, RGB)),
    "pil gray": (Image.fromarray(RGB[:, :, 0].astype(np.uint8)), lambda out: out.shape == (12, 16, 3)),
    "nested lists": (RGB.astype(int).tolist(), lambda out: np.array_equal(np.float32(out), RGB)),
    "all black float": (np.zeros((12, 16, 3), np.float32), lambda out: not out.any()),
}
REFUSED = {
    "channels first": (np.zeros((3, 12, 16), np.float32), "channels first"),
    "batch axis": (np.zeros((1, 12, 16, 3), np.float32), "expected HxWx3"),
    "1-D": (np.zeros(12, np.float32), "expected HxWx3"),
    "two channels": (np.zeros((12, 16, 2), np.float32), "expected HxWx3"),
    "empty": (np.zeros((0, 16, 3), np.float32), "empty"),
    "float in [0, 1]": (RGB / 255.0, "img * 255"),
    "nan pixel": (np.where(RGB > 250, np.nan, RGB), "NaN"),
    "inf pixel": (np.where(RGB > 250, np.inf, RGB), "NaN or infinite"),
    "bool": (RGB > 100, "dtype bool"),
    "complex": (RGB.astype(np.complex64), "dtype complex64"),
    "strings": (np.full((4, 4, 3), "a"), "dtype <U1"),
    "rgba alpha out of range": (np.dstack([RGB, np.full((12, 16), 999, np.float32)]), "alpha"),
}


@pytest.mark.parametrize("case", sorted(ACCEPTED))
def test_api_images_that_can_be_converted_are(case):
    value, ok = ACCEPTED[case]
    out = as_image_array(value)
    assert ok(out), case
    assert out.shape[2] == 3


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_api_images_that_cannot_be_converted_are_refused(case):
    value, fragment = REFUSED[case]
    with pytest.raises(DeepDreamError) as e:
        as_image_array(value, "base_img")
    msg = _one_line(e.value)
    assert fragment in msg and msg.startswith("base_img") and "--" not in msg


# ---------------------------------------------------------------- corrupt dream state


def _valid_state(path: Path, octave: int = 1, shape=(3, 10, 12), seed: int = 7) -> None:
    rng = np.random.RandomState(seed)
    rng.randint(0, 10, 5)  # a position other than 0
    FileCheckpoint(path, "thekey", rng, seed=seed).save(octave, np.ones(shape, np.float32))


def _rewrite(path: Path, **changes) -> None:
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    for k, v in changes.items():
        if v is None:
            arrays.pop(k)
        else:
            arrays[k] = v
    with open(path, "wb") as f:
        np.savez(f, **arrays)


SHAPES = [(3, 5, 6), (3, 10, 12)]  # this run's octaves, smallest first


def _state_cases():
    """name -> function that spoils a valid state file in place."""
    cases = {
        "empty": lambda p: p.write_bytes(b""),
        "not a zip": lambda p: p.write_bytes(b"PK\x03\x04 but nothing else"),
        "bit flips (bad CRC)": lambda p: p.write_bytes(_flip(p.read_bytes())),
        "octave 99": lambda p: _rewrite(p, step=np.int64(99)),
        "octave -1": lambda p: _rewrite(p, step=np.int64(-1)),
        "octave as string": lambda p: _rewrite(p, step=np.array("1")),
        "octave as array": lambda p: _rewrite(p, step=np.arange(3)),
        "data of another octave's shape": lambda p: _rewrite(p, data=np.ones((3, 5, 6), np.float32)),
        "data 2-D": lambda p: _rewrite(p, data=np.ones((10, 12), np.float32)),
        "data float64": lambda p: _rewrite(p, data=np.ones((3, 10, 12))),
        "data with NaN": lambda p: _rewrite(p, data=np.full((3, 10, 12), np.nan, np.float32)),
        "data far too large": lambda p: _rewrite(p, data=np.ones((3, 100, 120), np.float32)),
        "no data": lambda p: _rewrite(p, data=None),
        "no key": lambda p: _rewrite(p, key=None),
        "key not a string": lambda p: _rewrite(p, key=np.int64(3)),
        "other key (settings changed)": lambda p: _rewrite(p, key=np.array("another run")),
        "generator pos beyond its state": lambda p: _rewrite(p, pos=np.int64(100000)),
        "generator pos negative": lambda p: _rewrite(p, pos=np.int64(-5)),
        "generator keys short": lambda p: _rewrite(p, keys=np.arange(10, dtype=np.uint32)),
        "generator keys negative": lambda p: _rewrite(p, keys=np.full(624, -1, np.int64)),
        "has_gauss 5": lambda p: _rewrite(p, has_gauss=np.int64(5)),
        "cached nan": lambda p: _rewrite(p, cached=np.float64(np.nan)),
        "pickled object": lambda p: _rewrite(p, data=np.array([{"a": 1}], dtype=object)),
        "a directory": lambda p: (p.unlink(), p.mkdir()),
        "a fifo": lambda p: (p.unlink(), os.mkfifo(p)),
    }
    def truncate_at(frac):
        def spoil(p):
            data = p.read_bytes()
            p.write_bytes(data[: int(len(data) * frac)])
        return spoil

    for frac in (0.01, 0.1, 0.3, 0.5, 0.7, 0.9, 0.99):
        cases[f"truncated at {frac:.0%}"] = truncate_at(frac)
    return cases


def _flip(data: bytes) -> bytes:
    b = bytearray(data)
    mid = len(b) // 2
    b[mid:mid + 16] = bytes(x ^ 0x5A for x in b[mid:mid + 16])
    return bytes(b)


STATE_CASES = _state_cases()


@pytest.mark.parametrize("case", sorted(STATE_CASES))
def test_unusable_dream_state_is_set_aside_and_never_trusted(tmp_path, case):
    p = tmp_path / ".out.jpg.dream-state.npz"
    _valid_state(p)
    STATE_CASES[case](p)
    before = p.read_bytes() if p.is_file() else None
    rng = np.random.RandomState(123)
    want_rng = np.random.RandomState(123).get_state()
    notes = []
    cp = FileCheckpoint(p, "thekey", rng, note=notes.append)
    assert _bounded(cp.load, SHAPES).get("value", "raised") is None
    assert cp.resumed_from is None
    got = rng.get_state()
    assert np.array_equal(got[1], want_rng[1]) and got[2:] == want_rng[2:]  # the generator untouched
    assert not os.path.lexists(p)  # out of the way of the new run...
    aside = [q for q in tmp_path.iterdir() if q.name.startswith(p.name + ".")]
    assert len(aside) == 1 and (aside[0].name.split(".")[-1].split("-")[0] in ("bad", "old"))
    if before is not None:
        assert aside[0].read_bytes() == before  # ...but not deleted
    assert len(notes) == 1 and "\n" not in notes[0] and aside[0].name in notes[0]


def test_a_valid_state_resumes_with_its_generator_and_seed(tmp_path):
    p = tmp_path / "s.npz"
    _valid_state(p)
    want = np.random.RandomState(7)
    want.randint(0, 10, 5)
    rng = np.random.RandomState(0)
    cp = FileCheckpoint(p, "thekey", rng)
    assert cp.saved_seed() == 7
    octave, data = cp.load(SHAPES)
    assert octave == 1 and data.shape == (3, 10, 12) and cp.resumed_from == 1
    assert rng.randint(0, 2**31) == want.randint(0, 2**31)


def test_saved_seed_of_a_bad_state_is_none_and_leaves_it(tmp_path):
    p = tmp_path / "s.npz"
    p.write_bytes(b"garbage")
    assert FileCheckpoint(p, "k", np.random.RandomState(0)).saved_seed() is None
    assert p.read_bytes() == b"garbage"


def test_set_aside_is_named_by_content_and_never_overwrites_another(tmp_path):
    a = tmp_path / "state"
    a.write_bytes(b"one")
    first = set_aside(a)
    a.write_bytes(b"two")
    second = set_aside(a)
    assert first != second and first.read_bytes() == b"one" and second.read_bytes() == b"two"
    a.write_bytes(b"one")
    assert set_aside(a) == first and first.read_bytes() == b"one"
