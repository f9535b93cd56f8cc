"""sha1 of files, the one hash the project checks and records."""
from __future__ import annotations

import hashlib
import os
from typing import Optional

from .files import open_regular

_CHUNK = 1 << 20


def sha1_file(path: os.PathLike) -> str:
    """Hex sha1 of a regular file, read in 1 MiB chunks.

    Anything else (a FIFO, which would block forever, a device such as
    /dev/zero, which never ends) is refused in one line instead of being read.
    """
    h = hashlib.sha1()
    with open_regular(path) as f:
        for block in iter(lambda: f.read(_CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def file_sha1(path: Optional[os.PathLike]) -> Optional[str]:
    """:func:`sha1_file`, or None for no file."""
    return None if path is None else sha1_file(path)
