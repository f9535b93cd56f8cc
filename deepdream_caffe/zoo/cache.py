"""The download cache: where models live, their recorded hashes, and the per-model lock.

Layout under ``$DEEPDREAM_CAFFE_CACHE`` (default ``~/.cache/deepdream-caffe``; a clone
without that setting keeps ``models/<name>/`` in its own top-level ``models/``)::

    models/<name>/<file>          verified files, renamed into place whole
    models/<name>/<file>.part     a download in progress (resumed next time)
    models/<name>/<file>.sha1     hash recorded at first download when the
                                  publisher gives none (sha1sum -c format)
    models/<name>/<file>.bad-<sha1>  a file whose hash was wrong, moved aside
                                  (never deleted: it may be the only copy)
    locks/model-<name>.lock       held while a process writes models/<name>/

The lock lives outside the model's folder so a failed first download can
remove that folder entirely. Every name here goes through :mod:`.names`.
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import stat
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator, Optional

from ..errors import DeepDreamError
from ..io.atomic import atomic_output, os_reason
from . import names
from .settings import LOCK_TIMEOUT_ENV, lock_timeout

CACHE_ENV = "DEEPDREAM_CAFFE_CACHE"
_RECORD_MAX = 4096  # a record is one line: sha1, two spaces, the file name


def cache_root() -> Path:
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "deepdream-caffe"


def clone_models_dir() -> Optional[Path]:
    """The clone's top-level ``models/`` when the package runs from a clone, else None (a wheel install)."""
    top = Path(__file__).resolve().parents[2]
    return top / "models" if (top / "models").is_dir() and (top / "pyproject.toml").is_file() else None


def models_root() -> Path:
    """The folder that holds each downloaded model's ``<name>/``.

    ``$DEEPDREAM_CAFFE_CACHE/models`` when that is set; else a clone's own
    ``models/``, beside the manifests as in Caffe's tree; else
    ``~/.cache/deepdream-caffe/models`` (an install from a wheel).
    """
    if os.environ.get(CACHE_ENV):
        return cache_root() / "models"
    return clone_models_dir() or cache_root() / "models"


def model_dir(name: str) -> Path:
    """Where the cached files of model ``name`` live (not created here)."""
    return names.inside(models_root(), name, "model name")


def ensure_dir(path: Path) -> Path:
    """``mkdir -p`` with a one-line error that says how to pick another place.

    The folder itself must be a real folder, not a symbolic link: the zoo
    writes and renames inside it and must stay in the cache.
    """
    if path.is_symlink():
        raise DeepDreamError(
            f"cache folder {path} is a symbolic link (to {os.readlink(path)}); the zoo writes only into real "
            f"folders: remove the link, or set {CACHE_ENV} to the place you want"
        )
    try:
        path.mkdir(parents=True, exist_ok=True)
        # mkdir succeeds on an existing read-only folder: prove we can write.
        with tempfile.NamedTemporaryFile(dir=path, prefix=".probe-"):
            pass
    except OSError as e:
        raise DeepDreamError(
            f"cache directory {path} is not writable ({os_reason(e)}); "
            f"set {CACHE_ENV} to a writable folder"
        ) from None
    return path


def record_path(directory: Path, filename: str) -> Path:
    return names.inside(directory, filename + names.RECORD_SUFFIX, "hash record", names.NAME_MAX)


def read_record(directory: Path, filename: str) -> Optional[str]:
    """The hash recorded for ``filename`` at its first download, if any."""
    path = record_path(directory, filename)
    try:
        f = names.open_for_read(path)
    except OSError as e:
        raise DeepDreamError(f"cannot read {path}: {os_reason(e)}") from None
    if f is None:
        return None
    with f:
        try:
            raw = f.read(_RECORD_MAX)
        except OSError as e:
            raise DeepDreamError(f"cannot read {path}: {os_reason(e)}") from None
    fields = raw.split()
    sha1 = fields[0].decode("ascii", "replace").lower() if fields else ""
    if len(sha1) != 40 or any(c not in "0123456789abcdef" for c in sha1):
        raise DeepDreamError(f"{path} is damaged; delete it and the file beside it, then fetch again")
    return sha1


def write_record(directory: Path, filename: str, sha1: str) -> None:
    """Record ``sha1`` for ``filename``, atomically (readers never see half a record)."""
    with atomic_output(record_path(directory, filename), "w") as f:
        f.write(f"{sha1}  {filename}\n")


def remove_record(directory: Path, filename: str) -> None:
    remove_quietly(record_path(directory, filename))


def set_aside(path: Path, sha1: str) -> Path:
    """Move a file with a wrong hash to ``<file>.bad-<sha1>`` beside it; return the new path.

    Renaming moves the entry (a symbolic link stays a link): nothing it may
    point at is touched, and nothing is deleted.
    """
    target = names.bad_path(path, sha1)
    try:
        os.replace(path, target)
    except OSError as e:
        raise DeepDreamError(f"cannot move {path} aside to {target.name}: {os_reason(e)}") from None
    return target


def remove_quietly(path: Path) -> None:
    """Unlink a working file; a symbolic link is removed itself, never what it points at."""
    with contextlib.suppress(FileNotFoundError, IsADirectoryError, PermissionError, NotADirectoryError):
        os.unlink(path)


def remove_dir_if_empty(path: Path) -> None:
    with contextlib.suppress(OSError):
        if not path.is_symlink():
            path.rmdir()


def _open_lock(path: Path) -> int:
    """The lock file's descriptor, never through a symbolic link or a FIFO left in its place."""
    for _ in range(2):
        names.clear_foreign(path)
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK, 0o644)
        except OSError as e:
            if e.errno == errno.ELOOP:
                continue
            raise
        if stat.S_ISREG(os.fstat(fd).st_mode):
            return fd
        os.close(fd)  # pragma: no cover - replaced between the check and the open
    raise DeepDreamError(f"lock file {path} keeps being replaced by something that is not a file")


@contextlib.contextmanager
def model_lock(name: str, *, quiet: bool = False, timeout: Optional[float] = None) -> Iterator[None]:
    """Hold the exclusive lock for writing model ``name``'s cache folder.

    An flock is dropped by the kernel when its holder dies, so a killed
    download never leaves the model locked for good.
    """
    timeout = lock_timeout() if timeout is None else timeout
    lock_dir = ensure_dir(cache_root() / "locks")
    path = names.inside(lock_dir, f"model-{name}{names.LOCK_SUFFIX}", "lock file", names.NAME_MAX)
    try:
        fd = _open_lock(path)
    except OSError as e:
        raise DeepDreamError(f"cannot create lock file {path}: {os_reason(e)}") from None
    try:
        deadline = time.monotonic() + timeout
        told = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                pass
            if not told and not quiet:
                print(f"deepdream-caffe: waiting for another process fetching '{name}'...", file=sys.stderr)
                told = True
            if time.monotonic() >= deadline:
                raise DeepDreamError(
                    f"gave up after {timeout:g} s waiting for another process fetching '{name}' "
                    f"(lock {path}); set {LOCK_TIMEOUT_ENV} to wait longer"
                )
            time.sleep(0.1)
        yield
    finally:
        # Closing the descriptor releases the lock; the file stays for the next user.
        os.close(fd)
