"""Taking a model's files out of the tarball it is published in.

Member names in the archive are only ever matched, never used as paths, so
a hostile tarball cannot write outside the cache. Each member is streamed to
``<dest>.part``, hashed on the way, and left for the caller to check and
rename.
"""
from __future__ import annotations

import hashlib
import tarfile
import zlib
from pathlib import Path, PurePosixPath
from typing import Mapping

from ..errors import DeepDreamError
from ..io.atomic import os_reason
from .cache import remove_quietly
from .download import DiskError

_CHUNK = 1 << 20


def extract_members(archive: Path, wanted: Mapping[str, Path]) -> dict[str, str]:
    """Copy each ``member -> dest`` out of ``archive`` into ``dest.part``; return member -> sha1.

    A member is found by its exact name, else by a unique file of the same
    base name anywhere in the archive (publishers re-pack with another top
    folder now and then). Raises DeepDreamError naming what is missing.
    """
    parts = {m: d.with_name(d.name + ".part") for m, d in wanted.items()}
    try:
        try:
            with tarfile.open(archive, "r:*") as tar:
                files = [i for i in tar.getmembers() if i.isfile()]
                chosen = {m: _find(files, m, archive) for m in wanted}
                sums = {}
                for member, info in chosen.items():
                    src = tar.extractfile(info)
                    if src is None:  # pragma: no cover - isfile() members always extract
                        raise DeepDreamError(f"{archive.name}: cannot read member {info.name}")
                    sums[member] = _copy(src, parts[member])
                return sums
        except (tarfile.TarError, EOFError, zlib.error, OSError) as e:
            raise DeepDreamError(f"{archive.name} is not a readable tarball ({e})") from None
    except BaseException:
        for p in parts.values():
            remove_quietly(p)
        raise


def _find(files: list[tarfile.TarInfo], member: str, archive: Path) -> tarfile.TarInfo:
    want = PurePosixPath(member)
    for info in files:
        if PurePosixPath(info.name) == want:
            return info
    same_base = [i for i in files if PurePosixPath(i.name).name == want.name]
    if len(same_base) == 1:
        return same_base[0]
    names = ", ".join(sorted(i.name for i in files)[:8]) or "no files"
    raise DeepDreamError(f"{archive.name} has no member '{member}' (it holds: {names})")


def _copy(src, part: Path) -> str:
    """Stream one member to ``part``; read errors (a corrupt archive) pass through as they are."""
    h = hashlib.sha1()
    try:
        out = open(part, "wb")
    except OSError as e:
        raise DiskError(f"cannot write {part}: {os_reason(e)}") from None
    try:
        while True:
            chunk = src.read(_CHUNK)
            if not chunk:
                break
            try:
                out.write(chunk)
            except OSError as e:
                raise DiskError(f"cannot write {part}: {os_reason(e)}") from None
            h.update(chunk)
    finally:
        try:
            out.close()
        except OSError as e:
            raise DiskError(f"cannot write {part}: {os_reason(e)}") from None
    return h.hexdigest()
