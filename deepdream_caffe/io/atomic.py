"""Writing files so that a reader never sees half of one: temp file in the same folder, then rename."""
from __future__ import annotations

import errno
import os
import stat
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Iterator

from ..errors import DeepDreamError


def os_reason(e: OSError) -> str:
    """A short reason for an OSError, naming a full disk plainly."""
    if e.errno == errno.ENOSPC:
        return "no space left on device"
    if e.errno == errno.EDQUOT:
        return "disk quota exceeded"
    if e.errno == errno.EFBIG:
        return "file too large for this file system or process limit"
    if e.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return "permission denied"
    return e.strerror or str(e)


def describe_os_error(e: OSError, path: Path) -> str:
    """One line for a failed write of ``path``."""
    if e.errno == errno.ENOSPC:
        return f"disk full while writing {path}"
    return f"cannot write {path}: {os_reason(e)}"


@contextmanager
def atomic_output(path: os.PathLike, mode: str = "wb") -> Iterator[IO]:
    """Yield a file object; on success it becomes ``path``, on any failure nothing is left behind."""
    with atomic_path(path) as tmp:
        with open(tmp, mode) as f:
            yield f


@contextmanager
def atomic_path(path: os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``path`` for a writer that wants a file name (an encoder);
    on success it becomes ``path``, on any failure it is removed.

    ``suffix`` ends the temporary name (some writers pick their format from it).
    """
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise DeepDreamError(f"output directory does not exist: {parent}")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{suffix}", dir=parent)
    except OSError as e:
        raise DeepDreamError(describe_os_error(e, path)) from None
    try:
        os.fchmod(fd, _new_file_mode(path))
        os.close(fd)
        yield Path(tmp)
        _fsync_file(tmp)  # the writer closed it; make its bytes durable before the rename
        os.replace(tmp, path)
    except OSError as e:
        _unlink_quietly(tmp)
        raise DeepDreamError(describe_os_error(e, path)) from None
    except BaseException:
        _unlink_quietly(tmp)
        raise


def _new_file_mode(path: Path) -> int:
    """The permission bits ``path`` would get from open(): its own if it exists, else 0o666 less the umask."""
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def _fsync_file(p: str) -> None:
    fd = os.open(p, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _unlink_quietly(p: str) -> None:
    try:
        os.unlink(p)
    except OSError:
        pass
