"""sha1 of files, the one hash the project checks and records."""
from __future__ import annotations

import hashlib
import os

_CHUNK = 1 << 20


def sha1_file(path: os.PathLike) -> str:
    """Hex sha1 of a file, read in 1 MiB chunks."""
    h = hashlib.sha1()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_CHUNK), b""):
            h.update(block)
    return h.hexdigest()
