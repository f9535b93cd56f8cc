"""Writing files so that a reader never sees half of one: temp file in the same folder, then rename."""
from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import socket
import stat
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Dict, Iterator, Optional, Set, Tuple

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
    sweep_dead_writers(parent)
    try:
        fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(path.name, suffix), suffix=f".tmp{suffix}", dir=parent)
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


def atomic_json(path: os.PathLike, record: Dict[str, Any]) -> None:
    """Write ``record`` as indented JSON to ``path`` atomically."""
    with atomic_output(path, "w") as f:
        json.dump(record, f, indent=2, sort_keys=True, default=str)
        f.write("\n")


@contextmanager
def atomic_with_record(path: os.PathLike, record: Optional[Dict[str, Any]], record_path: os.PathLike,
                       suffix: str = "") -> Iterator[Path]:
    """:func:`atomic_path` for ``path``, with ``record`` (if any) written as JSON to ``record_path``: both or neither.

    The record is written once the writer is done and before ``path`` is
    renamed into place; if that rename fails, the record goes too.
    """
    placed = False
    try:
        with atomic_path(path, suffix) as tmp:
            yield tmp
            if record is not None:
                atomic_json(record_path, record)
                placed = True
    except BaseException:
        if placed:
            _unlink_quietly(os.fspath(record_path))
        raise


# A temp file's name says who writes it: ``.NAME.<host>-<pid>-<random>.tmp[suffix]``. A writer killed
# with SIGKILL cannot remove its own; the next write into that folder removes those whose process on
# this host is gone. Files of live processes, of other hosts, of other users and without a tag are left alone.
_TAG = re.compile(r"^\..+\.(?P<host>[A-Za-z0-9_-]+)-(?P<pid>\d+)-[^.]+\.tmp[^/]*$")
_swept: Set[Tuple[str, int]] = set()  # (folder, our pid): each folder once per process
_RANDOM = "x" * 8  # the room mkstemp's random part takes
_NAME_MAX = 255  # bytes in one file name: Linux, macOS and Windows file systems alike


def fit_name(name: str, others: str) -> str:
    """``name``, cut short so that it and ``others`` (the rest of a file name made from it) fit in the
    255 bytes a file name may have; a cut name ends with a hash of the whole, so two long names stay apart.

    For the files a run makes beside the user's (temp files, state): the user's own name is never cut.
    """
    room = _NAME_MAX - len(os.fsencode(others))
    if len(os.fsencode(name)) <= room:
        return name
    tag = "~" + hashlib.sha1(os.fsencode(name)).hexdigest()[:10]
    while len(os.fsencode(name + tag)) > room and name:
        name = name[:-1]
    return name + tag


def _temp_prefix(name: str, suffix: str) -> str:
    tag = _writer_tag()
    return f".{fit_name(name, f'..{tag}-{_RANDOM}.tmp{suffix}')}.{tag}-"


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", socket.gethostname())[:64] or "host"


def _writer_tag() -> str:
    return f"{_host()}-{os.getpid()}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: it exists, under another user
        return True
    return True


def sweep_dead_writers(folder: Path) -> int:
    """Remove this user's temp files in ``folder`` left by writers on this host that no longer run; how many."""
    key = (str(Path(folder).resolve()), os.getpid())
    if key in _swept:
        return 0
    _swept.add(key)
    host, gone, me = _host(), 0, os.getuid()
    try:
        names = [e.name for e in os.scandir(folder) if e.name.startswith(".") and ".tmp" in e.name]
    except OSError:
        return 0
    names = [n for n in names if _owner(os.path.join(folder, n)) == me]
    for name in names:
        m = _TAG.match(name)
        if m and m["host"] == host and int(m["pid"]) != os.getpid() and not _alive(int(m["pid"])):
            try:
                os.unlink(os.path.join(folder, name))
                gone += 1
            except OSError:
                pass  # another sweeper got there first, or it is not ours to remove
    return gone


def _owner(p: str) -> Optional[int]:
    try:
        return os.lstat(p).st_uid
    except OSError:
        return None


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
