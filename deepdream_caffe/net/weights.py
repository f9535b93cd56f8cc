"""Checking a caffemodel against the net and copying it in: Caffe never parses it.

Caffe's own ``copy_from`` ends the process in a CHECK failure on a
truncated file, a blob with fewer values than its shape, an extra blob or a
shape mismatch, and silently leaves a layer it finds no weights for at its
random start. So the file is read here once (see :mod:`caffemodel`) and
everything is checked (shapes as ``Blob::ShapeEquals`` compares them,
value counts, NaN/inf) before a single value is copied.
"""
from __future__ import annotations

import hashlib
import mmap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from ..errors import DeepDreamError
from ..io.files import MAX_CAFFEMODEL_BYTES, open_regular
from .caffemodel import StoredBlob, read_layers
from .surgery import RESERVED_PREFIX


@dataclass
class CaffeModel:
    """A parsed caffemodel: layer name -> its blobs, plus the file's sha1."""

    path: Path
    sha1: str
    layers: Dict[str, List[StoredBlob]] = field(default_factory=dict)


def read_caffemodel(path: Path, known_sha1: Optional[str] = None) -> CaffeModel:
    """Parse ``path`` (new or V1 format) into its layers' blobs; one-line error on a bad file.

    ``known_sha1``: the file's hash, when the caller has just verified it (the zoo does); else hashed here.
    """
    path = Path(path)
    with open_regular(path, "weights", MAX_CAFFEMODEL_BYTES) as f:  # a FIFO, device or folder is refused
        try:
            mapped = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) if f.seek(0, 2) else None
        except OSError as e:
            raise DeepDreamError(f"cannot read weights {path}: {e.strerror or e}") from None
    if mapped is None:
        raise DeepDreamError(f"weights {path} hold no weights (not a caffemodel, or an empty one)")
    with mapped:
        model = CaffeModel(path, known_sha1 or hashlib.sha1(mapped).hexdigest())
        formats = set()
        try:
            for layer in read_layers(mapped):
                if layer.v0:
                    raise DeepDreamError(f"weights {path} use the pre-2014 V0 format; upgrade them with Caffe's "
                                         "upgrade_net_proto_binary tool")
                formats.add(layer.v1)
                # Caffe copies every source layer of a name, the last one with blobs winning.
                if layer.name is not None and (layer.blobs or layer.name not in model.layers):
                    model.layers[layer.name] = layer.blobs
        except ValueError as e:
            raise DeepDreamError(f"weights {path} are not a caffemodel or are truncated/corrupt ({e})") from None
    if len(formats) > 1:
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
