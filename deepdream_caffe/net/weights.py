"""Reading a caffemodel, checking it against the net, and copying it in: Caffe never parses it.

Caffe's own ``copy_from`` ends the process in a CHECK failure on a
truncated file, a blob with fewer values than its shape, an extra blob or a
shape mismatch, and silently leaves a layer it finds no weights for at its
random start. So the file is read here once: its protobuf wire format is
walked just far enough to find each layer's name and blobs, whose packed
float data become numpy views of the file's bytes (no copy, no per-value
Python objects: the protobuf library's containers take about a second per
7 million floats). Everything is checked (shapes as ``Blob::ShapeEquals``
compares them, value counts, NaN/inf) before a single value is copied.
"""
from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from ..errors import DeepDreamError
from ..io.files import read_regular


class WireError(ValueError):
    """The bytes are not a well-formed protobuf message."""


# Field numbers from caffe.proto.
_NET_LAYER, _NET_V1_LAYERS = 100, 2
_LAYER_NAME, _LAYER_BLOBS = 1, 7
_V1_NAME, _V1_BLOBS, _V1_V0_LAYER = 4, 6, 1
_BLOB_NUM, _BLOB_CHANNELS, _BLOB_HEIGHT, _BLOB_WIDTH = 1, 2, 3, 4
_BLOB_DATA, _BLOB_DIFF, _BLOB_SHAPE, _BLOB_DOUBLE_DATA, _BLOB_DOUBLE_DIFF = 5, 6, 7, 8, 9
_SHAPE_DIM = 1


def _varint(buf: memoryview, i: int, end: int) -> Tuple[int, int]:
    shift = value = 0
    while True:
        if i >= end or shift > 63:
            raise WireError("truncated or overlong varint")
        b = buf[i]
        i += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, i
        shift += 7


def _fields(buf: memoryview, start: int, end: int) -> Iterator[Tuple[int, int, Any]]:
    """(field number, wire type, value) of a message in ``buf[start:end]``.

    Length-delimited values come as (start, end) offsets; varints as ints;
    fixed32/fixed64 as their offsets.
    """
    i = start
    while i < end:
        key, i = _varint(buf, i, end)
        num, wt = key >> 3, key & 7
        if num == 0:
            raise WireError("field number 0")
        if wt == 0:
            v, i = _varint(buf, i, end)
            yield num, wt, v
        elif wt == 2:
            n, i = _varint(buf, i, end)
            if n > end - i:
                raise WireError("a field runs past the end of the file")
            yield num, wt, (i, i + n)
            i += n
        elif wt == 5:
            if i + 4 > end:
                raise WireError("truncated fixed32")
            yield num, wt, i
            i += 4
        elif wt == 1:
            if i + 8 > end:
                raise WireError("truncated fixed64")
            yield num, wt, i
            i += 8
        else:
            raise WireError(f"unsupported wire type {wt}")


def _signed(v: int) -> int:
    v &= (1 << 64) - 1
    return v - (1 << 64) if v >= 1 << 63 else v


@dataclass
class StoredBlob:
    """One blob of a caffemodel: its declared shape and its values (views of the file's bytes)."""

    shape: Optional[List[int]]  # BlobShape dims, if given
    legacy: Optional[Tuple[int, int, int, int]]  # num, channels, height, width, if any is given
    data: np.ndarray  # float32 or float64, 1-D
    n_diff: int

    def dims(self) -> List[int]:
        return list(self.legacy) if self.legacy is not None else list(self.shape or [])


def _values(buf: memoryview, chunks: List[Tuple[int, Any]], dtype: str) -> np.ndarray:
    """Concatenate packed (offsets) and unpacked (single value offsets) encodings of a repeated float/double."""
    size = np.dtype(dtype).itemsize
    parts = []
    for wt, v in chunks:
        if wt == 2:
            a, b = v
            if (b - a) % size:
                raise WireError("packed values of a partial size")
            parts.append(np.frombuffer(buf, dtype=dtype, count=(b - a) // size, offset=a))
        else:
            parts.append(np.frombuffer(buf, dtype=dtype, count=1, offset=v))
    if not parts:
        return np.empty(0, dtype=dtype)
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


def _blob(buf: memoryview, start: int, end: int) -> StoredBlob:
    data: List[Tuple[int, Any]] = []
    ddata: List[Tuple[int, Any]] = []
    n_diff = 0
    shape: Optional[List[int]] = None
    legacy = [0, 0, 0, 0]
    has_legacy = False
    for num, wt, v in _fields(buf, start, end):
        if num == _BLOB_DATA and wt in (2, 5):
            data.append((wt, v))
        elif num == _BLOB_DOUBLE_DATA and wt in (2, 1):
            ddata.append((wt, v))
        elif num in (_BLOB_DIFF, _BLOB_DOUBLE_DIFF) and wt == 2:
            n_diff += (v[1] - v[0]) // (4 if num == _BLOB_DIFF else 8)
        elif num in (_BLOB_DIFF, _BLOB_DOUBLE_DIFF):
            n_diff += 1
        elif num == _BLOB_SHAPE and wt == 2:
            shape = [] if shape is None else shape  # repeated sub-messages merge
            for n2, wt2, v2 in _fields(buf, *v):
                if n2 == _SHAPE_DIM and wt2 == 2:
                    i, e = v2
                    while i < e:
                        d, i = _varint(buf, i, e)
                        shape.append(_signed(d))
                elif n2 == _SHAPE_DIM and wt2 == 0:
                    shape.append(_signed(v2))
        elif num in (_BLOB_NUM, _BLOB_CHANNELS, _BLOB_HEIGHT, _BLOB_WIDTH) and wt == 0:
            legacy[num - 1] = _signed(v)
            has_legacy = True
    if data and ddata:
        raise WireError("a blob with both float and double data")
    values = _values(buf, ddata, "<f8") if ddata else _values(buf, data, "<f4")
    return StoredBlob(shape, tuple(legacy) if has_legacy else None, values, n_diff)  # type: ignore[arg-type]


@dataclass
class CaffeModel:
    """A parsed caffemodel: layer name -> its blobs, plus the file's sha1."""

    path: Path
    sha1: str
    layers: Dict[str, List[StoredBlob]] = field(default_factory=dict)
    _bytes: Any = field(default=None, repr=False)  # keeps the views' memory alive


def read_caffemodel(path: Path, known_sha1: Optional[str] = None) -> CaffeModel:
    """Parse ``path`` (new or V1 format) into its layers' blobs; one-line error on a bad file.

    ``known_sha1``: the file's hash, when the caller has just verified it (the zoo does); else hashed here.
    """
    path = Path(path)
    raw = read_regular(path, "weights")  # a FIFO, device or folder is refused, not waited on
    model = CaffeModel(path, known_sha1 or hashlib.sha1(raw).hexdigest(), _bytes=raw)
    buf = memoryview(raw)
    seen_new = seen_v1 = False
    try:
        for num, wt, v in _fields(buf, 0, len(buf)):
            if wt != 2 or num not in (_NET_LAYER, _NET_V1_LAYERS):
                continue
            v1 = num == _NET_V1_LAYERS
            seen_v1 |= v1
            seen_new |= not v1
            name, blobs = None, []
            for n2, wt2, v2 in _fields(buf, *v):
                if wt2 != 2:
                    continue
                if n2 == (_V1_NAME if v1 else _LAYER_NAME):
                    name = bytes(buf[v2[0] : v2[1]]).decode("utf-8")
                elif n2 == (_V1_BLOBS if v1 else _LAYER_BLOBS):
                    blobs.append(_blob(buf, *v2))
                elif v1 and n2 == _V1_V0_LAYER:
                    raise DeepDreamError(
                        f"weights {path} use the pre-2014 V0 format; upgrade them with Caffe's "
                        "upgrade_net_proto_binary tool"
                    )
            if name is None:
                continue
            if name in model.layers and blobs:
                # Caffe copies every source layer of that name, the last one winning.
                model.layers[name] = blobs
            elif name not in model.layers:
                model.layers[name] = blobs
    except (WireError, UnicodeDecodeError, struct.error, ValueError) as e:
        raise DeepDreamError(f"weights {path} are not a caffemodel or are truncated/corrupt ({e})") from None
    if seen_new and seen_v1:
        raise DeepDreamError(f"weights {path} mix the 'layer' and old 'layers' formats; Caffe refuses such files")
    if not any(model.layers.values()):
        raise DeepDreamError(f"weights {path} hold no weights (not a caffemodel, or an empty one)")
    return model


def _shape_equals(target: Sequence[int], blob: StoredBlob) -> bool:
    """Blob::ShapeEquals: legacy 4-D dims compare against the shape padded with 1s in front."""
    if blob.legacy is not None:
        if len(target) > 4:
            return False
        padded = [1] * (4 - len(target)) + list(target)
        return padded == list(blob.legacy)
    return list(target) == list(blob.shape or [])


def check_model(model: CaffeModel, expected: Dict[str, Sequence[Sequence[int]]], net_layers: Sequence[str]) -> None:
    """Every check Caffe's copy makes (and those it skips), before anything is copied.

    ``expected``: layer name -> shapes of its learnable blobs, for each layer
    of the net that has some; ``net_layers``: all of the net's layer names
    (a stored layer of that name is copied, so it must fit even if the net's
    layer has no blobs).
    """
    path = model.path
    from .surgery import RESERVED_PREFIX  # noqa: PLC0415

    for name in model.layers:
        if name.startswith(RESERVED_PREFIX):
            raise DeepDreamError(
                f"weights {path} hold a layer named '{name}': names starting with '{RESERVED_PREFIX}' are "
                "reserved for the layers this tool inserts"
            )
    for name in net_layers:
        stored = model.layers.get(name)
        if not stored:
            continue
        want = list(expected.get(name, []))
        if len(stored) != len(want):
            raise DeepDreamError(
                f"weights {path} do not match the prototxt: layer '{name}' has {len(want)} learnable blobs, "
                f"the file has {len(stored)}"
            )
        for j, (shape, blob) in enumerate(zip(want, stored)):
            if not _shape_equals(shape, blob):
                raise DeepDreamError(
                    f"weights {path} do not match the prototxt: layer '{name}' wants {tuple(shape)}, "
                    f"the file has {tuple(blob.dims())}"
                )
            n = int(np.prod(shape, dtype=np.int64))
            if blob.data.size != n:
                raise DeepDreamError(
                    f"weights {path} are truncated or corrupt: blob {j} of layer '{name}' has {blob.data.size} "
                    f"values for its shape {tuple(shape)} ({n})"
                )
            if blob.n_diff not in (0, n):
                raise DeepDreamError(
                    f"weights {path} are corrupt: blob {j} of layer '{name}' has {blob.n_diff} gradient values for {n}"
                )
            with np.errstate(over="ignore"):  # doubles past float32's range become inf, as Caffe's cast makes them
                values = blob.data.astype(np.float32, copy=False)
            if not np.isfinite(values).all():
                bad = int(np.count_nonzero(~np.isfinite(values)))
                raise DeepDreamError(
                    f"weights {path}: layer '{name}' holds {bad} NaN/inf value(s) (blob {j}); the file is damaged"
                )
    missing = [name for name in expected if not model.layers.get(name)]
    if missing:
        if len(missing) == len(expected):
            raise DeepDreamError(
                f"weights {path} share no layer names with the prototxt (wrong caffemodel for this net?)"
            )
        shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
        raise DeepDreamError(
            f"weights {path} lack {len(missing)} layer(s) of the prototxt ({shown}); Caffe would leave them random"
        )


def copy_into(net: Any, model: CaffeModel, skip: Sequence[str] = ()) -> None:
    """Copy the checked ``model`` into pycaffe ``net``'s parameter blobs, as Caffe's copy_from would."""
    for name, blobs in net.params.items():
        if name in skip:
            continue
        stored = model.layers.get(name)
        if not stored:
            continue
        for target, blob in zip(blobs, stored):
            with np.errstate(over="ignore"):
                target.data[...] = blob.data.reshape(target.data.shape)


def check_weights(path: Path, expected: Dict[str, Sequence[Sequence[int]]],
                  known_sha1: Optional[str] = None) -> str:
    """Verify ``path`` holds, for every layer in ``expected``, blobs of those shapes; returns its sha1."""
    model = read_caffemodel(path, known_sha1)
    check_model(model, expected, list(expected))
    return model.sha1
