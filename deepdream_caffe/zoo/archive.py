"""Taking a model's files out of the tarball it is published in.

Member names in the archive are only ever matched, never used as paths, so
a hostile tarball cannot write outside the cache (entries whose names are
absolute or climb with ``..`` are not even matched): a member is copied to the
local name the manifest gives (checked by :mod:`.names`), and only a plain
file is taken (a link, device or folder under the wanted name is refused).
The walk is bounded in members and bytes, and each member in size, so a
tarball bomb ends with one line instead of a full disk. Each member is
streamed to ``<dest>.part``, hashed on the way, and left for the caller to
check and rename.
"""
from __future__ import annotations

import hashlib
import lzma
import os
import tarfile
import zlib
from pathlib import Path, PurePosixPath
from typing import Mapping, Optional

from ..errors import DeepDreamError
from ..io.atomic import os_reason
from . import names
from .cache import remove_quietly
from .download import DiskError

_CHUNK = 1 << 20
MAX_MEMBERS = 100_000  # entries walked before giving up
MAX_WALK_BYTES = 8 << 30  # sum of the sizes of the entries walked


def extract_members(archive: Path, wanted: Mapping[str, Path],
                    limits: Optional[Mapping[str, int]] = None) -> dict[str, str]:
    """Copy each ``member -> dest`` out of ``archive`` into ``dest.part``; return member -> sha1.

    A member is found by its exact name (the last entry of that name, as
    tar itself would leave it), else by a unique file of the same
    base name anywhere in the archive (publishers re-pack with another top
    folder now and then). ``limits`` bounds each member's size in bytes.
    Raises DeepDreamError naming what is missing or refused.
    """
    limits = limits or {}
    parts = {m: names.part_path(d) for m, d in wanted.items()}
    try:
        try:
            with tarfile.open(archive, "r:*") as tar:
                chosen = _choose(tar, wanted, archive, limits)
                sums = {}
                for member, info in chosen.items():
                    _check_size(archive, info, limits.get(member))
                    src = tar.extractfile(info)
                    if src is None:  # pragma: no cover - regular members always extract
                        raise DeepDreamError(f"{archive.name}: cannot read member {info.name}")
                    sums[member] = _copy(src, parts[member], info.size)
                return sums
        except (tarfile.TarError, EOFError, zlib.error, lzma.LZMAError, OSError, ValueError) as e:
            raise DeepDreamError(f"{archive.name} is not a readable tarball ({_reason(e)})") from None
    except BaseException:
        for p in parts.values():
            remove_quietly(p)
        raise


def _reason(e: BaseException) -> str:
    return " ".join((str(e) or type(e).__name__).split())


def _check_size(archive: Path, info: tarfile.TarInfo, limit: Optional[int]) -> None:
    if limit is not None and info.size > limit:
        raise DeepDreamError(
            f"{archive.name}: member {info.name} is {info.size} bytes, more than the {limit} this file can be; "
            "refused"
        )


def _choose(tar: tarfile.TarFile, wanted: Mapping[str, Path], archive: Path,
            limits: Mapping[str, int]) -> dict[str, tarfile.TarInfo]:
    """Walk the archive once (bounded) and pick each wanted member."""
    want = {m: PurePosixPath(m) for m in wanted}
    bases = {p.name for p in want.values()}
    exact: dict[str, tarfile.TarInfo] = {}
    by_base: dict[str, list] = {}
    sample: list[str] = []
    count = walked = 0
    for info in tar:
        # Keep no list of every header (a bomb of tiny entries): only the ones that may be wanted.
        tar.members = []
        count += 1
        walked += max(0, info.size)
        if count > MAX_MEMBERS or walked > MAX_WALK_BYTES:
            raise DeepDreamError(
                f"{archive.name} holds more than {MAX_MEMBERS} entries or {MAX_WALK_BYTES >> 30} GB; refused"
            )
        path = PurePosixPath(info.name)
        if path.is_absolute() or ".." in path.parts:
            continue  # a name that climbs out is never what a manifest means, whatever its base name
        if len(sample) < 8 and info.isreg():
            sample.append(info.name)
        for member, p in want.items():
            if path == p:
                # Refused on sight: walking past a member that size would only waste time.
                _check_size(archive, info, limits.get(member))
                exact[member] = info
        if path.name in bases:
            by_base.setdefault(path.name, []).append(info)
    chosen = {}
    for member, p in want.items():
        info = exact.get(member)
        if info is None:
            files = [i for i in by_base.get(p.name, []) if i.isreg()]
            if len(files) == 1:
                info = files[0]
            elif files:
                raise DeepDreamError(
                    f"{archive.name} has no member '{member}' and {len(files)} files named {p.name} "
                    f"({', '.join(sorted(i.name for i in files)[:4])})"
                )
            else:
                others = by_base.get(p.name, [])
                if others:
                    info = others[0]
        if info is None:
            held = ", ".join(sorted(sample)) or "no files"
            raise DeepDreamError(f"{archive.name} has no member '{member}' (it holds: {held})")
        if not info.isreg():
            raise DeepDreamError(f"{archive.name}: member {info.name} is {_kind(info)}, not a file; refused")
        chosen[member] = info
    return chosen


def _kind(info: tarfile.TarInfo) -> str:
    if info.issym():
        return f"a symbolic link (to {info.linkname})"
    if info.islnk():
        return f"a hard link (to {info.linkname})"
    if info.isdir():
        return "a folder"
    if info.ischr() or info.isblk():
        return "a device"
    if info.isfifo():
        return "a FIFO"
    return "not a plain file"


def _copy(src, part: Path, size: int) -> str:
    """Stream one member (``size`` bytes) to ``part``; read errors (a corrupt archive) pass through."""
    h = hashlib.sha1()
    try:
        out = os.fdopen(names.open_for_write(part), "wb")
    except OSError as e:
        raise DiskError(f"cannot write {part}: {os_reason(e)}") from None
    got = 0
    try:
        while got < size:
            chunk = src.read(min(_CHUNK, size - got))
            if not chunk:
                raise EOFError(f"member ends after {got} of {size} bytes")
            try:
                out.write(chunk)
            except OSError as e:
                raise DiskError(f"cannot write {part}: {os_reason(e)}") from None
            h.update(chunk)
            got += len(chunk)
    finally:
        try:
            out.close()
        except OSError as e:
            raise DiskError(f"cannot write {part}: {os_reason(e)}") from None
    return h.hexdigest()
