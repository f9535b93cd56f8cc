"""Reading images in any common mode as float32 RGB, and saving results atomically."""
from __future__ import annotations

import io
import json
import os
import warnings
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError
from PIL.PngImagePlugin import PngInfo

from ..errors import DeepDreamError
from .atomic import atomic_with_record
from .files import MAX_IMAGE_BYTES, MAX_RECORD_BYTES, open_regular, read_text

METADATA_KEY = "deepdream-caffe"


def to_uint8(img: np.ndarray) -> np.ndarray:
    """The notebook's conversion for display and saving: clip to [0, 255], truncate."""
    return np.uint8(np.clip(img, 0, 255))


EXIF_ORIENTATION = ("apply", "ignore")
_EXIF_ORIENTATION_TAG = 0x0112


def load_image(path: os.PathLike, exif_orientation: str = "apply") -> np.ndarray:
    """HxWx3 float32 RGB in [0, 255], as the notebook's ``np.float32(PIL.Image.open(f))`` for RGB files.

    Grayscale, palette, alpha and 16-bit images are converted rather than
    refused. ``exif_orientation="apply"`` turns a photo upright as its EXIF
    orientation tag says (a phone's portrait shot); ``"ignore"`` keeps the
    pixels as stored, exactly the notebook's array. See :func:`read_image`.
    """
    return read_image(path, exif_orientation)[0]


def read_image(path: os.PathLike, exif_orientation: str = "apply") -> Tuple[np.ndarray, Dict[str, Any]]:
    """:func:`load_image` plus what was done: ``{"exif_orientation": tag or None, "rotated": bool}``.

    Only regular files are read (a FIFO, directory or device is refused
    without waiting on it); images above Pillow's pixel limit
    (``PIL.Image.MAX_IMAGE_PIXELS``, about 89 MP) are refused from their
    header, before any pixel is decoded.
    """
    if exif_orientation not in EXIF_ORIENTATION:
        raise DeepDreamError(f"exif_orientation must be one of {', '.join(EXIF_ORIENTATION)}; got {exif_orientation!r}")
    path = Path(path)
    f = open_regular(path, "image", MAX_IMAGE_BYTES)
    try:
        with warnings.catch_warnings():
            # Pillow only warns between its limit and twice it; a dream of such an image would not fit anyway.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(f) as im:
                # Decode first: asking for EXIF before can make Pillow half-load a broken file and then keep it.
                im.load()
                tag = _orientation_tag(im)
                rotated = exif_orientation == "apply" and tag in range(2, 9)
                if rotated:
                    im = ImageOps.exif_transpose(im)
                return image_to_rgb_array(im), {"exif_orientation": tag, "rotated": rotated}
    except UnidentifiedImageError:
        raise DeepDreamError(f"not an image file (or a format Pillow cannot read): {path}") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise DeepDreamError(
            f"image {path} is too large to open safely (over {Image.MAX_IMAGE_PIXELS} pixels, "
            "possibly a decompression bomb)"
        ) from None
    except MemoryError:
        raise DeepDreamError(f"image {path} is too large for the memory available") from None
    except DeepDreamError:
        raise
    except Exception as e:  # noqa: BLE001 - a crafted file can make a decoder raise almost anything
        raise DeepDreamError(f"cannot read image {path} (truncated or corrupt?): {type(e).__name__}: {e}") from None
    finally:
        f.close()


def _orientation_tag(im: Any) -> Optional[int]:
    """The EXIF orientation tag (1..8) or None; an unreadable EXIF block counts as none."""
    try:
        tag = im.getexif().get(_EXIF_ORIENTATION_TAG)
    except Exception:  # noqa: BLE001 - a broken EXIF block must not stop the image from loading
        return None
    return int(tag) if isinstance(tag, int) else None


def image_to_rgb_array(im: Any) -> np.ndarray:
    """A PIL image in any mode -> HxWx3 float32 RGB in [0, 255]."""
    if im.mode == "RGB":
        return np.float32(im)
    if im.mode.startswith("I;16") or im.mode in ("I", "F"):
        a = np.asarray(im, dtype=np.float64)
        a = np.clip(a * (255.0 / _gray_full_scale(im.mode, float(a.max(initial=0.0)))), 0, 255).astype(np.float32)
        return np.repeat(a[:, :, None], 3, axis=2)
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        # Transparent pixels over white, not the undefined colour stored under them.
        rgba = im.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return np.float32(Image.alpha_composite(white, rgba).convert("RGB"))
    return np.float32(im.convert("RGB"))


def _gray_full_scale(mode: str, top: float) -> float:
    """The value that is white in a one-channel image of ``mode`` whose largest value is ``top``.

    16-bit modes: 65535. Mode I (32-bit integers, TIFF and the like): the
    smallest of 255, 65535 and 2**32 - 1 that holds ``top``, as the file's
    bits rarely fill 32. Mode F (floats): 1 if ``top`` is at most 1 (an image
    in [0, 1]), else 255. Below 0 is black.
    """
    if mode.startswith("I;16"):
        return 65535.0
    scales = (1.0, 255.0) if mode == "F" else (255.0, 65535.0, 4294967295.0)
    return next((s for s in scales if top <= s), scales[-1])


def as_image_array(img: Any, what: str = "image") -> np.ndarray:
    """An API caller's image as an HxWx3 RGB array in [0, 255], or a one-line DeepDreamError.

    The rules (no guessing beyond them):

    * a PIL image: any mode, converted as files are (its pixels as they are; no EXIF rotation);
    * HxWx3 (RGB) numeric array: returned as it is, so the notebook's
      ``np.float32(PIL.Image.open(f))`` keeps its exact bits;
    * HxW or HxWx1 (gray): copied into three channels;
    * HxWx4 (RGBA): composited on white, the alpha on the colour's scale
      (255 is opaque; 65535 for uint16);
    * uint16 is scaled by 255/65535, as 16-bit files are;
    * refused: any other shape (3xHxW says to transpose), an empty image,
      bool/complex/object data, NaN or infinity, and a float array whose
      values all lie in [0, 1] (not all zero): that is a [0, 1] image, which
      would dream as near black; pass ``img * 255``.
    """
    if isinstance(img, Image.Image):
        return image_to_rgb_array(img)
    a = np.asarray(img) if not isinstance(img, np.ndarray) else img
    if a.dtype == bool or a.dtype.kind not in "uif":
        raise DeepDreamError(f"{what} must be a numeric HxWx3 RGB array or a PIL image; got dtype {a.dtype}")
    if a.ndim == 3 and a.shape[0] in (1, 3, 4) and a.shape[2] not in (1, 3, 4):
        raise DeepDreamError(
            f"{what} has shape {a.shape}, channels first; expected HxWx3 (channels last): pass img.transpose(1, 2, 0)"
        )
    if not (a.ndim == 2 or (a.ndim == 3 and a.shape[2] in (1, 3, 4))):
        raise DeepDreamError(f"{what} has shape {a.shape}; expected HxWx3 RGB (or HxW gray, HxWx4 RGBA)")
    if a.shape[0] < 1 or a.shape[1] < 1:
        raise DeepDreamError(f"{what} is empty (shape {a.shape})")
    if a.dtype.kind == "f":
        if not np.isfinite(a).all():
            raise DeepDreamError(f"{what} contains NaN or infinite values")
        lo, hi = float(a.min()), float(a.max())
        if lo >= 0.0 and 0.0 < hi <= 1.0:
            raise DeepDreamError(
                f"{what} has all its values in [0, 1]; deepdream wants 0..255 as the notebook's "
                "np.float32(PIL.Image.open(f)) gives: pass img * 255"
            )
    if a.dtype == np.uint16:
        a = np.float32(a * (255.0 / 65535.0))
    if a.ndim == 2:
        a = a[:, :, None]
    if a.shape[2] == 1:
        return np.repeat(a, 3, axis=2)
    if a.shape[2] == 4:
        full = 255.0
        alpha = np.float32(a[:, :, 3:4]) / full
        if not (alpha.min() >= 0.0 and alpha.max() <= 1.0):
            raise DeepDreamError(f"{what}: its alpha channel must lie in [0, 255]")
        return np.float32(a[:, :, :3]) * alpha + full * (1.0 - alpha)
    return a


def shrunk_size(h: int, w: int, max_size: Optional[int]) -> Tuple[int, int]:
    """(h, w) scaled so that the long side is ``max_size``; as they are when already within it (or None)."""
    if max_size is None or max(h, w) <= max_size:
        return h, w
    f = max_size / max(h, w)
    return (max_size, max(1, round(w * f))) if h >= w else (max(1, round(h * f)), max_size)


def shrink(img: np.ndarray, max_size: Optional[int]) -> np.ndarray:
    """``img`` (HxWx3, 0..255) with its long side brought down to ``max_size`` (Lanczos), float32; else itself."""
    h, w = shrunk_size(img.shape[0], img.shape[1], max_size)
    if (h, w) == img.shape[:2]:
        return img
    small = Image.fromarray(np.uint8(np.clip(np.rint(img), 0, 255))).resize((w, h), Image.LANCZOS)
    return np.float32(small)


def sample_image() -> np.ndarray:
    """An RGB photo that ships with scikit-image, for runs without an input file."""
    from skimage import data  # scikit-image is slow to import and only this sample needs it

    return np.float32(data.astronaut())


def encode_image(img: np.ndarray, fmt: str, metadata: Optional[Dict[str, Any]] = None, quality: int = 75) -> bytes:
    """Encode with the notebook's uint8 conversion; PNGs carry ``metadata`` in a text chunk."""
    pil = Image.fromarray(to_uint8(img))
    buf = io.BytesIO()
    if fmt == "PNG":
        info = PngInfo()
        if metadata is not None:
            info.add_text(METADATA_KEY, json.dumps(metadata, sort_keys=True))
        pil.save(buf, format="PNG", pnginfo=info)
    elif fmt in ("JPEG", "WEBP"):  # the formats with a quality
        pil.save(buf, format=fmt, quality=quality)
    else:
        pil.save(buf, format=fmt)
    return buf.getvalue()


_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".bmp": "BMP", ".tif": "TIFF", ".tiff": "TIFF", ".webp": "WEBP"}
IMAGE_SUFFIXES = frozenset(_FORMATS)


def image_format(path: os.PathLike) -> str:
    ext = Path(path).suffix.lower()
    if ext not in _FORMATS:
        raise DeepDreamError(f"cannot tell the image format from '{path}'; use one of {', '.join(sorted(_FORMATS))}")
    return _FORMATS[ext]


def save_image(path: os.PathLike, img: np.ndarray, metadata: Optional[Dict[str, Any]] = None, quality: int = 75) -> None:
    """Write ``img`` (float RGB) atomically; metadata goes in the PNG or, for other formats, ``path.json``."""
    path = Path(path)
    fmt = image_format(path)
    data = encode_image(img, fmt, metadata, quality)
    with atomic_with_record(path, metadata if fmt != "PNG" else None, sidecar_path(path)) as tmp:
        tmp.write_bytes(data)


def sidecar_path(path: os.PathLike) -> Path:
    path = Path(path)
    return path.with_name(path.name + ".json")


def read_metadata(path: os.PathLike) -> Optional[Dict[str, Any]]:
    """The parameters recorded with an output image, or None."""
    path = Path(path)
    side = sidecar_path(path)
    if side.exists():
        return json.loads(read_text(side, "record", MAX_RECORD_BYTES))
    with open_regular(path, "image") as f, Image.open(f) as im:
        text = getattr(im, "text", {}) or {}
        if METADATA_KEY in text:
            return json.loads(text[METADATA_KEY])
    return None
