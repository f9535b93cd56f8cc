"""Checking a caffemodel against a net before Caffe loads it.

Caffe copies weights by layer name and silently leaves a layer it finds no
weights for at its random start, and a truncated file or a shape mismatch
ends the process in a CHECK failure. So the file is parsed here first and
every layer with parameters must find blobs of the right shape in it.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np

from ..errors import DeepDreamError
from ..io.files import read_regular
from .prototxt import caffe_pb2, param_shapes_from_weights


def check_weights(path: Path, expected: Dict[str, Sequence[Sequence[int]]],
                  known_sha1: Optional[str] = None) -> str:
    """Verify ``path`` holds, for every layer in ``expected``, blobs of those shapes.

    ``expected`` maps layer name -> its parameter blob shapes (from the net
    built without weights). Returns the file's sha1: ``known_sha1`` when the
    caller has just verified it, else hashed here.
    """
    path = Path(path)
    data = read_regular(path, "weights")  # a FIFO or device is refused, not waited on
    from google.protobuf.message import DecodeError  # noqa: PLC0415

    param = caffe_pb2().NetParameter()
    try:
        param.ParseFromString(data)
    except (DecodeError, RuntimeError, ValueError) as e:
        raise DeepDreamError(f"weights {path} are not a caffemodel or are truncated/corrupt ({e})") from None
    stored = param_shapes_from_weights(param)
    missing: List[str] = []
    for name, shapes in expected.items():
        got = stored.get(name)
        if got is None or len(got) < len(shapes):
            missing.append(name)
            continue
        for want, have in zip(shapes, got):
            if int(np.prod(want)) != int(np.prod(have)) or (len(have) == len(want) and list(have) != list(want)):
                raise DeepDreamError(
                    f"weights {path} do not match the prototxt: layer '{name}' wants {tuple(want)}, "
                    f"the file has {tuple(have)}"
                )
    if missing:
        if len(missing) == len(expected):
            raise DeepDreamError(
                f"weights {path} share no layer names with the prototxt (wrong caffemodel for this net?)"
            )
        shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
        raise DeepDreamError(
            f"weights {path} lack {len(missing)} layer(s) of the prototxt ({shown}); Caffe would leave them random"
        )
    return known_sha1 or hashlib.sha1(data).hexdigest()
