"""Reading images in any common mode as float32 RGB, and saving results atomically."""
from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any, Dict, Optional

import numpy as np

from .atomic import atomic_output
from ..errors import DeepDreamError

METADATA_KEY = "deepdream-caffe"


def to_uint8(img: np.ndarray) -> np.ndarray:
    """The notebook's conversion for display and saving: clip to [0, 255], truncate."""
    return np.uint8(np.clip(img, 0, 255))


def load_image(path: os.PathLike) -> np.ndarray:
    """HxWx3 float32 RGB in [0, 255], as the notebook's ``np.float32(PIL.Image.open(f))`` for RGB files.

    Grayscale, palette, alpha and 16-bit images are converted rather than refused.
    """
    from PIL import Image, UnidentifiedImageError  # noqa: PLC0415

    path = Path(path)
    try:
        with Image.open(path) as im:
            im.load()
            return image_to_rgb_array(im)
    except FileNotFoundError:
        raise DeepDreamError(f"image not found: {path}") from None
    except IsADirectoryError:
        raise DeepDreamError(f"image path is a directory: {path}") from None
    except UnidentifiedImageError:
        raise DeepDreamError(f"not an image file (or a format Pillow cannot read): {path}") from None
    except Image.DecompressionBombError as e:
        raise DeepDreamError(f"image {path} is too large to open safely: {e}") from None
    except (OSError, SyntaxError, ValueError) as e:
        raise DeepDreamError(f"cannot read image {path} (truncated or corrupt?): {e}") from None


def image_to_rgb_array(im: Any) -> np.ndarray:
    """A PIL image in any mode -> HxWx3 float32 RGB in [0, 255]."""
    if im.mode == "RGB":
        return np.float32(im)
    if im.mode.startswith("I;16") or im.mode in ("I", "F"):
        a = np.asarray(im, dtype=np.float64)
        if im.mode != "F":
            # 16-bit data fills 0..65535; scale to 8-bit range.
            a = a * (255.0 / 65535.0)
        a = np.clip(a, 0, 255).astype(np.float32)
        return np.repeat(a[:, :, None], 3, axis=2)
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        # Transparent pixels over white, not the undefined colour stored under them.
        rgba = im.convert("RGBA")
        from PIL import Image  # noqa: PLC0415

        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return np.float32(Image.alpha_composite(white, rgba).convert("RGB"))
    return np.float32(im.convert("RGB"))


def sample_image() -> np.ndarray:
    """An RGB photo that ships with scikit-image, for runs without an input file."""
    from skimage import data  # noqa: PLC0415

    return np.float32(data.astronaut())


def encode_image(img: np.ndarray, fmt: str, metadata: Optional[Dict[str, Any]] = None, quality: int = 75) -> bytes:
    """Encode with the notebook's uint8 conversion; PNGs carry ``metadata`` in a text chunk."""
    from PIL import Image  # noqa: PLC0415
    from PIL.PngImagePlugin import PngInfo  # noqa: PLC0415

    pil = Image.fromarray(to_uint8(img))
    buf = io.BytesIO()
    if fmt == "PNG":
        info = PngInfo()
        if metadata is not None:
            info.add_text(METADATA_KEY, json.dumps(metadata, sort_keys=True))
        pil.save(buf, format="PNG", pnginfo=info)
    elif fmt == "JPEG":
        pil.save(buf, format="JPEG", quality=quality)
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
    with atomic_output(path) as f:
        f.write(data)
    if metadata is not None and fmt != "PNG":
        with atomic_output(sidecar_path(path), "w") as f:
            json.dump(metadata, f, indent=2, sort_keys=True)
            f.write("\n")


def sidecar_path(path: os.PathLike) -> Path:
    path = Path(path)
    return path.with_name(path.name + ".json")


def read_metadata(path: os.PathLike) -> Optional[Dict[str, Any]]:
    """The parameters recorded with an output image, or None."""
    from PIL import Image  # noqa: PLC0415

    path = Path(path)
    side = sidecar_path(path)
    if side.exists():
        return json.loads(side.read_text())
    with Image.open(path) as im:
        text = getattr(im, "text", {}) or {}
        if METADATA_KEY in text:
            return json.loads(text[METADATA_KEY])
    return None
