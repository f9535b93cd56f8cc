"""Fetching one URL to one file: streamed, resumable, hash-checked, renamed into place whole.

Only the standard library speaks HTTP here (urllib), so the zoo works in a
bare venv. A download goes to ``<dest>.part``; a cut connection is resumed
with an HTTP Range request after a short back-off, a silent server is given
up on after the stall timeout, and the finished file is renamed over
``<dest>`` only once its sha1 is right. Callers hold the model's lock.
"""
from __future__ import annotations

import errno
import hashlib
import http.client
import os
import re
import socket
import ssl
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from ..errors import DeepDreamError
from ..io.atomic import os_reason
from .cache import remove_quietly

TIMEOUT_ENV = "DEEPDREAM_CAFFE_TIMEOUT"
RETRIES_ENV = "DEEPDREAM_CAFFE_RETRIES"
RETRY_WAIT_ENV = "DEEPDREAM_CAFFE_RETRY_WAIT"

_CHUNK = 64 * 1024
_USER_AGENT = "deepdream-caffe (+model zoo)"
_CONTENT_RANGE_RE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")
_UNSATISFIED_RANGE_RE = re.compile(r"bytes\s+\*/(\d+)")


@dataclass(frozen=True)
class Settings:
    """How patient a download is."""

    stall_timeout: float = 30.0  # seconds without a byte before a request is given up
    retries: int = 4  # further tries after a failure that made no progress
    retry_wait: float = 0.5  # first back-off in seconds, doubled per failure, capped at 30

    @classmethod
    def from_env(cls) -> "Settings":
        """Defaults, overridden by DEEPDREAM_CAFFE_TIMEOUT / _RETRIES / _RETRY_WAIT."""
        return cls(
            stall_timeout=_env_number(TIMEOUT_ENV, cls.stall_timeout, float, minimum=0.001),
            retries=_env_number(RETRIES_ENV, cls.retries, int, minimum=0),
            retry_wait=_env_number(RETRY_WAIT_ENV, cls.retry_wait, float, minimum=0.0),
        )


class DownloadError(DeepDreamError):
    """A URL could not be fetched: network trouble or an HTTP error status."""

    def __init__(self, url: str, reason: str):
        super().__init__(f"cannot download {url}: {reason}")
        self.url, self.reason = url, reason


class HashMismatch(DeepDreamError):
    """A URL served bytes whose sha1 is not the expected one."""

    def __init__(self, url: str, actual: str, expected: str, what: str = ""):
        where = f"{url} ({what})" if what else url
        super().__init__(f"{where} gave sha1 {actual}, expected {expected}")
        self.url, self.actual, self.expected = url, actual, expected


class DiskError(DeepDreamError):
    """Writing the download failed (full disk, file size limit, permissions...)."""


class _Transient(Exception):
    """Worth another try: connection refused or cut, stall, 5xx."""


class _Permanent(Exception):
    """Not worth another try: 404, unknown host, bad certificate."""


class _Complete(Exception):
    """The .part already holds the whole file (the server says so)."""


def download(
    url: str,
    dest: Path,
    *,
    expected_sha1: Optional[str] = None,
    label: str = "",
    quiet: bool = False,
    settings: Optional[Settings] = None,
) -> str:
    """Fetch ``url`` into ``dest`` and return the sha1 of what was stored.

    Resumes a ``dest.part`` left by an earlier try. When ``expected_sha1`` is
    given and the bytes differ, the partial file is deleted and HashMismatch
    says which URL gave what. Raises DownloadError or DiskError otherwise;
    ``dest`` is only ever replaced by a complete, checked file.
    """
    settings = settings or Settings.from_env()
    part = dest.with_name(dest.name + ".part")
    # Bytes already in the .part came from another run or another URL: if the
    # result is wrong they may be to blame, so a mismatch then earns one clean retry.
    inherited = part.exists() and part.stat().st_size > 0
    if inherited and expected_sha1 is None:
        # With no hash to check against, stale bytes would become the recorded truth.
        remove_quietly(part)
        inherited = False
    while True:
        try:
            sha1 = _fetch_to_part(url, part, label or dest.name, quiet, settings)
        except DiskError:
            remove_quietly(part)
            raise
        if expected_sha1 is None or sha1 == expected_sha1:
            break
        remove_quietly(part)
        if inherited:
            inherited = False
            continue
        raise HashMismatch(url, sha1, expected_sha1)
    try:
        os.replace(part, dest)
    except OSError as e:
        remove_quietly(part)
        raise DiskError(f"cannot move the download into place at {dest}: {os_reason(e)}") from None
    return sha1


def _fetch_to_part(url: str, part: Path, label: str, quiet: bool, settings: Settings) -> str:
    bar = _Progress(label, quiet)
    hasher, hashed = None, -1
    failures = 0
    # A server that sends a few bytes per connection would otherwise reset the
    # failure count forever; this caps the total number of requests.
    requests_left = 10 * (settings.retries + 1) + 10
    try:
        while True:
            offset = part.stat().st_size if part.exists() else 0
            if hashed != offset:
                try:
                    hasher, hashed = _hash_prefix(part, offset), offset
                except OSError as e:
                    raise DiskError(f"cannot read {part}: {os_reason(e)}") from None
            requests_left -= 1
            try:
                hasher = _request_into(url, part, offset, hasher, bar, settings)
                return hasher.hexdigest()
            except _Complete:
                return hasher.hexdigest()
            except _Permanent as e:
                raise DownloadError(url, str(e)) from None
            except _Transient as e:
                now = part.stat().st_size if part.exists() else 0
                failures = 0 if now > offset else failures + 1
                if failures > settings.retries or requests_left <= 0:
                    tries = "1 try" if settings.retries == 0 else f"{settings.retries + 1} tries"
                    raise DownloadError(url, f"{e} (gave up after {tries} without progress)") from None
                if failures:
                    time.sleep(min(settings.retry_wait * 2 ** (failures - 1), 30.0))
                hashed = -1  # re-read what reached the disk rather than trust the buffer
    finally:
        bar.close()


def _request_into(url: str, part: Path, offset: int, hasher, bar, settings: Settings):
    """One HTTP request appending to ``part`` from ``offset``.

    ``hasher`` covers the first ``offset`` bytes of ``part``; the hasher
    returned covers the whole file once the request completes.
    """
    headers = {"User-Agent": _USER_AGENT, "Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    try:
        resp = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=settings.stall_timeout)
    except urllib.error.HTTPError as e:
        with e:
            if e.code == 416 and offset:
                m = _UNSATISFIED_RANGE_RE.search(e.headers.get("Content-Range", "") or "")
                if m and int(m.group(1)) == offset:
                    raise _Complete() from None
                _truncate(part)
                raise _Transient("the server would not resume the partial download; starting over") from None
            reason = f"HTTP {e.code} {e.reason}".rstrip()
            if e.code in (408, 425, 429) or e.code >= 500:
                raise _Transient(reason) from None
            raise _Permanent(reason) from None
    except urllib.error.URLError as e:
        raise _classify(e.reason) from None
    except (OSError, http.client.HTTPException) as e:
        raise _classify(e) from None

    with resp:
        length = _int_header(resp, "Content-Length")
        total = None
        if offset and resp.status == 206:
            m = _CONTENT_RANGE_RE.search(resp.headers.get("Content-Range", "") or "")
            if not m or int(m.group(1)) != offset:
                _truncate(part)
                raise _Transient("the server resumed at the wrong place; starting over")
            total = int(m.group(3)) if m.group(3) != "*" else None
        elif resp.status == 200:
            if offset:
                # The server ignored Range and sends the whole file again.
                offset = 0
                hasher = hashlib.sha1()
            total = length
        else:
            raise _Permanent(f"unexpected HTTP status {resp.status}")
        bar.start(total, offset)

        got = 0
        try:
            f = open(part, "ab" if offset else "wb")
        except OSError as e:
            raise DiskError(f"cannot write {part}: {os_reason(e)}") from None
        try:
            while True:
                try:
                    # read1 hands over whatever has arrived, so bytes before a stall are kept.
                    chunk = resp.read1(_CHUNK)
                except (TimeoutError, socket.timeout):
                    raise _Transient(f"no data for {settings.stall_timeout:g} s (server stalled)") from None
                except (OSError, http.client.HTTPException) as e:
                    raise _Transient(f"connection lost ({_describe(e)})") from None
                if not chunk:
                    break
                try:
                    f.write(chunk)
                except OSError as e:
                    raise DiskError(f"cannot write {part}: {os_reason(e)}") from None
                hasher.update(chunk)
                got += len(chunk)
                bar.update(len(chunk))
            try:
                f.flush()
                # Surface a full disk now, not at some later writeback.
                os.fsync(f.fileno())
            except OSError as e:
                raise DiskError(f"cannot write {part}: {os_reason(e)}") from None
        finally:
            try:
                f.close()
            except OSError as e:
                raise DiskError(f"cannot write {part}: {os_reason(e)}") from None
        if length is not None and got < length:
            raise _Transient(f"connection closed after {offset + got} of {offset + length} bytes")
        return hasher


def _hash_prefix(part: Path, size: int):
    h = hashlib.sha1()
    if size:
        with open(part, "rb") as f:
            left = size
            while left:
                chunk = f.read(min(left, 1 << 20))
                if not chunk:
                    break
                h.update(chunk)
                left -= len(chunk)
    return h


def _truncate(part: Path) -> None:
    try:
        with open(part, "wb"):
            pass
    except OSError as e:
        raise DiskError(f"cannot write {part}: {os_reason(e)}") from None


def _classify(reason) -> Exception:
    """Sort a connection-level failure into try-again or give-up."""
    if isinstance(reason, socket.gaierror):
        # No DNS usually means no network at all: retrying only delays the message.
        return _Permanent(f"cannot resolve the host name ({reason.strerror or reason})")
    if isinstance(reason, ssl.SSLCertVerificationError):
        return _Permanent(f"TLS certificate rejected ({reason.verify_message or reason})")
    if isinstance(reason, OSError) and reason.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH):
        return _Permanent(_describe(reason))
    if isinstance(reason, (TimeoutError, socket.timeout)):
        return _Transient("timed out while connecting")
    return _Transient(_describe(reason))


def _describe(e) -> str:
    if isinstance(e, OSError) and e.strerror:
        return e.strerror
    text = str(e) or type(e).__name__
    return " ".join(text.split())


def _int_header(resp, name: str) -> Optional[int]:
    value = resp.headers.get(name)
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


class _Progress:
    """A tqdm bar on stderr (bytes, rate, time left), shown from the first response on."""

    def __init__(self, label: str, quiet: bool):
        self.label, self.quiet, self.bar = label, quiet, None

    def start(self, total: Optional[int], offset: int) -> None:
        if self.quiet:
            return
        if self.bar is None:
            try:
                from tqdm import tqdm
            except ImportError:  # a bare venv still downloads, just silently
                self.quiet = True
                return
            self.bar = tqdm(
                desc=self.label, total=total, initial=offset, unit="B", unit_scale=True,
                unit_divisor=1024, file=sys.stderr, dynamic_ncols=True, leave=True,
            )
        else:
            # A resumed request: the bytes already here count as done but not as speed.
            self.bar.reset(total=total)
            self.bar.initial = self.bar.n = offset
            self.bar.refresh()

    def update(self, n: int) -> None:
        if self.bar is not None:
            self.bar.update(n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _env_number(name: str, default, kind, *, minimum):
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = kind(raw)
    except ValueError:
        value = None
    if value is None or value < minimum:
        raise DeepDreamError(f"{name} must be a number >= {minimum:g}, not {raw!r}")
    return value
