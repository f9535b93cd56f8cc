"""Opening input files that may be anything: a FIFO, a directory, a device or a socket is refused, never waited on."""
from __future__ import annotations

import fcntl
import hashlib
import os
import stat
from pathlib import Path
from typing import BinaryIO

from ..errors import DeepDreamError

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def _kind(mode: int) -> str:
    for test, name in _KINDS:
        if test(mode):
            return name
    return "not a regular file"


def check_regular(path: os.PathLike, what: str = "file") -> None:
    """Raise a one-line DeepDreamError unless ``path`` (symlinks followed) is an existing regular file."""
    path = Path(path)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise DeepDreamError(f"{what} not found: {path}") from None
    except OSError as e:
        raise DeepDreamError(f"cannot read {what} {path}: {e.strerror or e}") from None
    if not stat.S_ISREG(st.st_mode):
        raise DeepDreamError(f"{what} {path} is {_kind(st.st_mode)}, not a regular file")


def open_regular(path: os.PathLike, what: str = "file") -> BinaryIO:
    """Open a regular file for binary reading; refuse anything else in one line, without blocking.

    The path is checked with stat first (opening some devices has side
    effects), then opened with O_NONBLOCK, so a FIFO swapped in between
    cannot make the open wait for a writer, and checked again on the open
    descriptor, which is what is read.
    """
    check_regular(path, what)
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as e:
        raise DeepDreamError(f"cannot read {what} {path}: {e.strerror or e}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise DeepDreamError(f"{what} {path} is {_kind(st.st_mode)}, not a regular file")
        # Regular files never block; clear the flag so reads behave as usual.
        fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_NONBLOCK)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_regular(path: os.PathLike, what: str = "file") -> bytes:
    """The bytes of a regular file (see :func:`open_regular`)."""
    with open_regular(path, what) as f:
        try:
            return f.read()
        except OSError as e:
            raise DeepDreamError(f"cannot read {what} {path}: {e.strerror or e}") from None


def set_aside(path: os.PathLike, label: str = "bad") -> Path:
    """Rename ``path`` to ``NAME.<label>-<sha1 prefix>`` beside it (never delete it); returns the new path.

    Named by content, so setting the same bytes aside twice keeps one copy
    and two different files never overwrite each other.
    """
    path = Path(path)
    h = hashlib.sha1()
    try:
        with open_regular(path, "file") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        tag = h.hexdigest()[:12]
    except DeepDreamError:
        tag = "%x" % os.stat(path).st_ino  # not a regular file: no content to name it by
    dest = path.with_name(f"{path.name}.{label}-{tag}")
    try:
        os.replace(path, dest)
    except OSError as e:
        raise DeepDreamError(f"cannot set aside {path}: {e.strerror or e}; move it away by hand") from None
    return dest
