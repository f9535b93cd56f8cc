"""Opening input files that may be anything: a FIFO, a directory, a device or a socket is refused, never waited on."""
from __future__ import annotations

import fcntl
import hashlib
import os
import stat
from pathlib import Path
from typing import BinaryIO, Optional

from ..errors import DeepDreamError

# The most bytes each kind of file read here may hold: far above any real one, far below what would
# hurt to read whole. A larger file is refused before any of it is read.
MAX_IMAGE_BYTES = 2 << 30  # Pillow refuses more than 89 MP anyway: 0.7 GB as 16-bit RGBA TIFF
MAX_RECORD_BYTES = 1 << 20  # a run's record (NAME.json, KIND.json): parameters and hashes, a few KB
MAX_LABELS_BYTES = 4 << 20  # ImageNet's synset_words.txt is 31 KB
MAX_MANIFEST_BYTES = 64 << 10  # a model.toml is a few lines
MAX_PROTOTXT_BYTES = 16 << 20  # real deploy files are tens of KB
# Caffe reads a caffemodel with a 2 GiB protobuf limit (INT_MAX bytes): anything larger cannot load.
MAX_CAFFEMODEL_BYTES = (1 << 31) - 1
_HASHED_ASIDE_BYTES = 1 << 30

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


def check_regular(path: os.PathLike, what: str = "file", limit: Optional[int] = None) -> None:
    """Raise a one-line DeepDreamError unless ``path`` (symlinks followed) is an existing regular file
    of at most ``limit`` bytes."""
    path = Path(path)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise DeepDreamError(f"{what} not found: {path}") from None
    except OSError as e:
        raise DeepDreamError(f"cannot read {what} {path}: {e.strerror or e}") from None
    if not stat.S_ISREG(st.st_mode):
        raise DeepDreamError(f"{what} {path} is {_kind(st.st_mode)}, not a regular file")
    if limit is not None and st.st_size > limit:
        raise _too_large(path, what, limit)


def _too_large(path: Path, what: str, limit: int) -> DeepDreamError:
    return DeepDreamError(f"{what} {path} is larger than {_size(limit)}, more than a {what} holds")


def _size(n: int) -> str:
    for unit, shift in (("GB", 30), ("MB", 20), ("KB", 10)):
        if n >= 1 << shift:
            return f"{n / (1 << shift):g} {unit}"
    return f"{n} bytes"


def open_regular(path: os.PathLike, what: str = "file", limit: Optional[int] = None) -> BinaryIO:
    """Open a regular file for binary reading; refuse anything else in one line, without blocking.

    The path is checked with stat first (opening some devices has side
    effects), then opened with O_NONBLOCK, so a FIFO swapped in between
    cannot make the open wait for a writer, and checked again on the open
    descriptor, which is what is read. A file over ``limit`` bytes is
    refused before any of it is read.
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
        if limit is not None and st.st_size > limit:
            raise _too_large(path, what, limit)
        # Regular files never block; clear the flag so reads behave as usual.
        fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_NONBLOCK)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_regular(path: os.PathLike, what: str = "file", limit: Optional[int] = None) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes (see :func:`open_regular`)."""
    with open_regular(path, what, limit) as f:
        try:
            data = f.read() if limit is None else f.read(limit + 1)  # it may grow after the check
        except OSError as e:
            raise DeepDreamError(f"cannot read {what} {path}: {e.strerror or e}") from None
    if limit is not None and len(data) > limit:
        raise _too_large(Path(path), what, limit)
    return data


def read_text(path: os.PathLike, what: str, limit: int) -> str:
    """The UTF-8 text of a regular file of at most ``limit`` bytes; one line for anything else."""
    data = read_regular(path, what, limit)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise DeepDreamError(f"{what} {path} is not UTF-8 text (byte {e.start} is {data[e.start]:#04x})") from None


def set_aside(path: os.PathLike, label: str = "bad") -> Path:
    """Rename ``path`` to ``NAME.<label>-<sha1 prefix>`` beside it (never delete it); returns the new path.

    Named by content, so setting the same bytes aside twice keeps one copy
    and two different files never overwrite each other; what is not a
    regular file, or is too large to hash in a moment, is named by its inode.
    """
    path = Path(path)
    h = hashlib.sha1()
    try:
        with open_regular(path, "file", _HASHED_ASIDE_BYTES) as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        tag = h.hexdigest()[:12]
    except DeepDreamError:
        tag = "%x" % os.lstat(path).st_ino
    dest = path.with_name(f"{path.name}.{label}-{tag}")
    try:
        os.replace(path, dest)
    except OSError as e:
        raise DeepDreamError(f"cannot set aside {path}: {e.strerror or e}; move it away by hand") from None
    return dest
