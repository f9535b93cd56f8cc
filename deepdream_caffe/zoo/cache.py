"""The download cache: where models live, their recorded hashes, and the per-model lock.

Layout under ``$DEEPDREAM_CAFFE_CACHE`` (default ``~/.cache/deepdream-caffe``)::

    models/<name>/<file>          verified files, renamed into place whole
    models/<name>/<file>.part     a download in progress (resumed next time)
    models/<name>/<file>.sha1     hash recorded at first download when the
                                  publisher gives none (sha1sum -c format)
    locks/model-<name>.lock       held while a process writes models/<name>/

The lock lives outside the model's folder so a failed first download can
remove that folder entirely.
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator, Optional

from ..io.atomic import atomic_output, os_reason
from ..errors import DeepDreamError

CACHE_ENV = "DEEPDREAM_CAFFE_CACHE"
LOCK_TIMEOUT_ENV = "DEEPDREAM_CAFFE_LOCK_TIMEOUT"


def cache_root() -> Path:
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "deepdream-caffe"


def model_dir(name: str) -> Path:
    """Where the cached files of model ``name`` live (not created here)."""
    return cache_root() / "models" / name


def ensure_dir(path: Path) -> Path:
    """``mkdir -p`` with a one-line error that says how to pick another place."""
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
    return directory / f"{filename}.sha1"


def read_record(directory: Path, filename: str) -> Optional[str]:
    """The hash recorded for ``filename`` at its first download, if any."""
    try:
        text = record_path(directory, filename).read_text(encoding="utf-8")
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as e:
        raise DeepDreamError(f"cannot read {record_path(directory, filename)}: {os_reason(e)}") from None
    fields = text.split()
    if not fields or len(fields[0]) != 40:
        raise DeepDreamError(
            f"{record_path(directory, filename)} is damaged; delete it and the file beside it, then fetch again"
        )
    return fields[0].lower()


def write_record(directory: Path, filename: str, sha1: str) -> None:
    """Record ``sha1`` for ``filename``, atomically (readers never see half a record)."""
    with atomic_output(record_path(directory, filename), "w") as f:
        f.write(f"{sha1}  {filename}\n")


def remove_quietly(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError, IsADirectoryError, PermissionError):
        path.unlink()


def remove_dir_if_empty(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.rmdir()


def lock_timeout() -> float:
    raw = os.environ.get(LOCK_TIMEOUT_ENV, "3600")
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if value <= 0:
        raise DeepDreamError(f"{LOCK_TIMEOUT_ENV} must be a positive number of seconds, not {raw!r}")
    return value


@contextlib.contextmanager
def model_lock(name: str, *, quiet: bool = False, timeout: Optional[float] = None) -> Iterator[None]:
    """Hold the exclusive lock for writing model ``name``'s cache folder.

    An flock is dropped by the kernel when its holder dies, so a killed
    download never leaves the model locked for good.
    """
    timeout = lock_timeout() if timeout is None else timeout
    lock_dir = ensure_dir(cache_root() / "locks")
    path = lock_dir / f"model-{name}.lock"
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
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
