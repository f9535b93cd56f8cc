"""sha1 of files, the one hash the project checks and records."""
from __future__ import annotations

import errno
import hashlib
import os
import stat
from typing import Optional

_CHUNK = 1 << 20


def sha1_file(path: os.PathLike) -> str:
    """Hex sha1 of a plain file, read in 1 MiB chunks.

    Anything else (a FIFO, which would block forever, a device such as
    /dev/zero, which never ends) raises OSError instead of being read.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a plain file", str(path))
        h = hashlib.sha1()
        for block in iter(lambda: f.read(_CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def file_sha1(path: Optional[os.PathLike]) -> Optional[str]:
    """:func:`sha1_file`, or None for no file."""
    return None if path is None else sha1_file(path)
