"""The one check every file name goes through before the zoo touches the disk.

A manifest and a server decide much of what the zoo writes: the file names
come from URLs (%-decoded) and archive members. Each name, and each working
name made from one (``.part``, ``.sha1``, ``.bad-<sha1>``, the lock), is
checked here to be a single plain component, so that joined to its folder
it cannot point anywhere else. Opening for writing never follows a symbolic
link, and an entry that is not a plain file of our own (a link, a FIFO, a
device, a second hard link of some other file) is unlinked, never written
through; unlinking removes the entry, not what it points at.
"""
from __future__ import annotations

import errno
import os
import stat
import unicodedata
from pathlib import Path

from ..errors import DeepDreamError

# NAME_MAX is 255 bytes; the longest working name adds ".bad-" and 40 hex digits,
# the atomic writer's temp name a dot, ".sha1" and 14 more.
MAX_NAME_BYTES = 200
NAME_MAX = 255  # the file system's limit, for working names made from a checked one
PART_SUFFIX = ".part"
RECORD_SUFFIX = ".sha1"
BAD_INFIX = ".bad-"
LOCK_SUFFIX = ".lock"
# Names a manifest may not give a file: the zoo's own working names end (or are marked) so.
WORKING_SUFFIXES = (PART_SUFFIX, RECORD_SUFFIX, LOCK_SUFFIX)

# Names Windows reserves for devices, with or without an extension. Refused everywhere
# so a cache folder can be copied to any system and no name is taken for a device.
_DEVICES = {"con", "prn", "aux", "nul", "conin$", "conout$"} | {f"{p}{i}" for p in ("com", "lpt") for i in range(10)}
# Control characters, format characters (bidi overrides can disguise a name in a
# message), line and paragraph separators, lone surrogates.
_BAD_CATEGORIES = {"Cc", "Cf", "Zl", "Zp", "Cs"}


def name_problem(name: object, max_bytes: int = MAX_NAME_BYTES) -> str:
    """Why ``name`` cannot be a file name in a cache folder ("is empty", ...), or "" if it can."""
    if not isinstance(name, str):
        return "is not a string"
    if not name:
        return "is empty"
    if name in (".", ".."):
        return "is a reference to a folder"
    if "/" in name or "\\" in name:
        return "contains a path separator"
    if "\0" in name:
        return "contains a NUL byte"
    if any(unicodedata.category(c) in _BAD_CATEGORIES for c in name):
        return "contains a control character"
    if name.startswith("."):
        return "starts with a dot (hidden, and reserved for temporary files)"
    if name != name.strip() or name.endswith("."):
        return "ends with a space or a dot"
    if name.split(".", 1)[0].strip().lower() in _DEVICES:
        return "is a device name on some systems"
    try:
        size = len(name.encode("utf-8"))
    except UnicodeEncodeError:
        return "is not valid text"
    if size > max_bytes:
        return f"is longer than {max_bytes} bytes"
    return ""


def check_name(name: object, what: str, max_bytes: int = MAX_NAME_BYTES) -> str:
    """Return ``name`` if it is a safe single file name, else raise a one-line DeepDreamError."""
    problem = name_problem(name, max_bytes)
    if problem:
        raise DeepDreamError(f"refusing {what} {name!r} as a file name: it {problem}")
    return name  # type: ignore[return-value]


def inside(directory: Path, name: str, what: str = "file", max_bytes: int = MAX_NAME_BYTES) -> Path:
    """``directory / name`` after the check; the result's parent is ``directory`` itself."""
    path = Path(directory) / check_name(name, what, max_bytes)
    if path.parent != Path(directory):  # pragma: no cover - check_name already makes this impossible
        raise DeepDreamError(f"refusing {what} {name!r}: it would leave {directory}")
    return path


def sibling(path: Path, suffix: str, what: str = "working file") -> Path:
    """A working name beside ``path`` (``x`` -> ``x.part``), checked like any other."""
    return inside(path.parent, path.name + suffix, what, NAME_MAX)


def part_path(dest: Path) -> Path:
    return sibling(dest, PART_SUFFIX, "partial download")


def bad_path(path: Path, sha1: str) -> Path:
    return sibling(path, f"{BAD_INFIX}{sha1}", "set-aside file")


def is_own_file(path: Path) -> bool:
    """True if ``path`` is a plain file with one name (ours to write); False if absent."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return False
    return stat.S_ISREG(st.st_mode) and st.st_nlink == 1


def clear_foreign(path: Path) -> bool:
    """Unlink ``path`` if it is anything but a plain file of our own; True if it did.

    Used before writing or reading a working file: a symbolic link (to a file
    outside the cache, to /dev/zero), a FIFO (which would block a read) or a
    hard link to some other file is taken out of the way, never followed.
    """
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return False
    if stat.S_ISREG(st.st_mode) and st.st_nlink == 1:
        return False
    if stat.S_ISDIR(st.st_mode):
        raise DeepDreamError(f"{path} is a folder where the zoo keeps a file; remove it")
    os.unlink(path)
    return True


def open_for_write(path: Path, *, append: bool = False) -> int:
    """A descriptor for writing ``path``, never through a symbolic link or into someone else's file."""
    clear_foreign(path)
    flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    flags |= os.O_APPEND if append else os.O_TRUNC
    try:
        fd = os.open(path, flags, 0o666)
    except OSError as e:
        if e.errno == errno.ELOOP:  # a link appeared since the check: refuse rather than race
            raise DeepDreamError(f"{path} became a symbolic link while the zoo was writing it") from None
        raise
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode) or st.st_nlink != 1:  # pragma: no cover - a race with another writer
        os.close(fd)
        raise DeepDreamError(f"{path} is not a plain file of the zoo's own; remove it")
    return fd


def open_for_read(path: Path):
    """A binary file object for a working file, or None if it is absent or not a plain file of our own."""
    if clear_foreign(path):
        return None
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        return None
    except OSError as e:
        if e.errno == errno.ELOOP:
            return None
        raise
    if not stat.S_ISREG(os.fstat(fd).st_mode):  # pragma: no cover - a race with another writer
        os.close(fd)
        return None
    return os.fdopen(fd, "rb")
