"""Fetching one URL to one file: streamed, resumable, hash-checked, renamed into place whole.

Only the standard library speaks HTTP here (urllib), so the zoo works in a
bare venv. A download goes to ``<dest>.part``; a cut connection is resumed
with an HTTP Range request after a short back-off, a silent server is given
up on after the stall timeout, a slow one after the overall deadline, and
the finished file is renamed over ``<dest>`` only once its sha1 (or, with no
hash to check, its content) is right. Callers hold the model's lock.

What a server sends is checked for what was asked for: the body as it is
(``Accept-Encoding: identity``; a compressed body is refused), not a web page,
not larger than the file can be. A resumed request carries ``If-Range`` with
the first reply's ETag or Last-Modified, so a file that changed on the
server between a cut and a resume is fetched again whole, never spliced.
"""
from __future__ import annotations

import errno
import hashlib
import http.client
import os
import re
import shutil
import socket
import ssl
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Tuple

from ..errors import DeepDreamError
from ..io.atomic import os_reason
from . import names
from .cache import remove_quietly
from .settings import MIN_RATE_ENV, Settings

_CHUNK = 64 * 1024
_USER_AGENT = "deepdream-caffe (+model zoo)"
_CONTENT_RANGE_RE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")
_UNSATISFIED_RANGE_RE = re.compile(r"bytes\s+\*/(\d+)")
_WEB_PAGE_TYPES = ("text/html", "application/xhtml+xml")


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
    """Not worth another try: 404, unknown host, bad certificate, a web page instead of the file."""


class _Complete(Exception):
    """The .part already holds the whole file (the server says so)."""


@dataclass
class _Transfer:
    """What one download has learnt about the file on the server, across its requests."""

    started: float
    may_resume: bool  # resuming is safe: a validator to send, or a hash to check at the end
    validator: Optional[str] = None  # strong ETag or Last-Modified of the first reply
    etag: bool = False  # the validator is an ETag (compared on each 206 reply)
    total: Optional[int] = None  # the file's size, if the server told
    received: int = 0  # bytes received by all requests
    window: Tuple[float, int] = (0.0, 0)  # (time, received) when the current rate window began


def download(
    url: str,
    dest: Path,
    *,
    expected_sha1: Optional[str] = None,
    label: str = "",
    quiet: bool = False,
    settings: Optional[Settings] = None,
    max_bytes: Optional[int] = None,
    check: Optional[Callable[[Path], None]] = None,
    encoded_ok: bool = False,
) -> str:
    """Fetch ``url`` into ``dest`` and return the sha1 of what was stored.

    Resumes a ``dest.part`` left by an earlier try when ``expected_sha1`` can
    judge the result. When the bytes differ from ``expected_sha1`` the
    partial file is deleted and HashMismatch says which URL gave what. With
    no hash, ``check(part)`` (raising DeepDreamError) must accept the bytes
    before they become ``dest``. ``max_bytes`` bounds the size; a compressed
    body is refused unless ``encoded_ok`` (a tarball is read as it comes).
    Raises DownloadError or DiskError otherwise; ``dest`` is only ever
    replaced by a complete, checked file.
    """
    settings = settings or Settings.from_env()
    part = names.part_path(dest)
    try:
        names.clear_foreign(part)  # a link or FIFO in its place is removed, never followed
    except OSError as e:
        raise DiskError(f"cannot clear {part}: {os_reason(e)}") from None
    # Bytes already in the .part came from another run or another URL: if the
    # result is wrong they may be to blame, so a mismatch then earns one clean retry.
    inherited = part.exists() and part.stat().st_size > 0
    if inherited and expected_sha1 is None:
        # With no hash to check against, stale bytes would become the recorded truth.
        remove_quietly(part)
        inherited = False
    while True:
        try:
            sha1 = _fetch_to_part(url, part, label or dest.name, quiet, settings, expected_sha1 is not None,
                                  max_bytes, encoded_ok)
        except DiskError:
            remove_quietly(part)
            raise
        except DownloadError:
            if expected_sha1 is None:
                remove_quietly(part)  # cannot be resumed safely by a later run: do not keep it
            raise
        if expected_sha1 is None or sha1 == expected_sha1:
            break
        remove_quietly(part)
        if inherited:
            inherited = False
            continue
        raise HashMismatch(url, sha1, expected_sha1)
    if check is not None and expected_sha1 is None:
        try:
            check(part)
        except DeepDreamError as e:
            remove_quietly(part)
            raise DownloadError(url, f"what arrived is {e}; nothing was kept") from None
        except OSError as e:
            remove_quietly(part)
            raise DiskError(f"cannot read {part}: {os_reason(e)}") from None
    try:
        os.replace(part, dest)
    except OSError as e:
        remove_quietly(part)
        raise DiskError(f"cannot move the download into place at {dest}: {os_reason(e)}") from None
    return sha1


def _fetch_to_part(url: str, part: Path, label: str, quiet: bool, settings: Settings, hashed_result: bool,
                   max_bytes: Optional[int], encoded_ok: bool) -> str:
    bar = _Progress(label, quiet)
    hasher, hashed = None, -1
    failures = 0
    started = time.monotonic()
    xfer = _Transfer(started=started, may_resume=hashed_result, window=(started, 0))
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
                hasher = _request_into(url, part, offset, hasher, bar, settings, xfer, max_bytes, encoded_ok)
                return hasher.hexdigest()
            except _Complete:
                return hasher.hexdigest()
            except _Permanent as e:
                raise DownloadError(url, str(e)) from None
            except _Transient as e:
                now = part.stat().st_size if part.exists() else 0
                failures = 0 if now > offset else failures + 1
                if failures > settings.retries:
                    tries = "1 try" if settings.retries == 0 else f"{settings.retries + 1} tries"
                    raise DownloadError(url, f"{e} (gave up after {tries} without progress)") from None
                if requests_left <= 0:
                    raise DownloadError(url, f"{e} (gave up after {10 * (settings.retries + 1) + 10} requests)") from None
                wait = min(settings.retry_wait * 2 ** (failures - 1), 30.0) if failures else 0.0
                try:
                    _check_deadline(xfer, now, settings, extra=wait)
                except _Permanent as slow:
                    raise DownloadError(url, f"{e}, then {slow}") from None
                if wait:
                    time.sleep(wait)
                hashed = -1  # re-read what reached the disk rather than trust the buffer
    finally:
        bar.close()


def _check_deadline(xfer: _Transfer, have: int, settings: Settings, extra: float = 0.0) -> None:
    """Give up when the whole download has taken longer than its size allows at the minimum rate, or
    when the last rate window averaged less than that rate (the size is only what the server says)."""
    expected = xfer.total if xfer.total is not None else have
    allowed = settings.deadline(expected)
    now = time.monotonic() + extra
    elapsed = now - xfer.started
    size = f"{have} of {xfer.total}" if xfer.total is not None else f"{have}"
    hint = f"{settings.min_rate:g} bytes/s (set {MIN_RATE_ENV} to allow slower downloads)"
    if elapsed > allowed:
        raise _Permanent(f"too slow: {size} bytes after {elapsed:.0f} s, over the {allowed:.0f} s allowed at {hint}")
    since, before = xfer.window
    if now - since >= settings.rate_window:
        got = xfer.received - before
        if got < settings.min_rate * (now - since):
            raise _Permanent(f"too slow: {got} bytes in the last {now - since:.0f} s ({size} bytes so far), "
                             f"under {hint}")
        xfer.window = (now, xfer.received)


class _SafeRedirect(urllib.request.HTTPRedirectHandler):
    """Follow redirects only to http(s): never to ftp:// or file://."""

    max_redirections = 10

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        scheme = urllib.parse.urlsplit(newurl).scheme.lower()
        if scheme not in ("http", "https"):
            raise _Permanent(f"the server redirects to a {scheme or 'relative'}: URL, refused ({newurl})")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


_OPENER = urllib.request.build_opener(_SafeRedirect)


def _request_into(url: str, part: Path, offset: int, hasher, bar, settings: Settings, xfer: _Transfer,
                  max_bytes: Optional[int], encoded_ok: bool):
    """One HTTP request appending to ``part`` from ``offset``.

    ``hasher`` covers the first ``offset`` bytes of ``part``; the hasher
    returned covers the whole file once the request completes.
    """
    if offset and not (xfer.may_resume or xfer.validator):
        # Nothing could tell a spliced file from a whole one: start over.
        _truncate(part)
        offset, hasher = 0, hashlib.sha1()
    headers = {"User-Agent": _USER_AGENT, "Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
        if xfer.validator:
            headers["If-Range"] = xfer.validator
    try:
        resp = _OPENER.open(urllib.request.Request(url, headers=headers), timeout=settings.stall_timeout)
    except urllib.error.HTTPError as e:
        with e:
            if e.code == 416 and offset:
                m = _UNSATISFIED_RANGE_RE.search(e.headers.get("Content-Range", "") or "")
                if m and int(m.group(1)) == offset and (xfer.total is None or xfer.total == offset):
                    raise _Complete() from None
                _truncate(part)
                raise _Transient("the server would not resume the partial download; starting over") from None
            if str(e.reason).startswith(_SafeRedirect.inf_msg):  # urllib's own words take three lines
                raise _Permanent(f"the server redirects in a loop or more than {_SafeRedirect.max_redirections} "
                                 f"times (HTTP {e.code})") from None
            reason = f"HTTP {e.code} {_describe(e.reason)}".rstrip()
            if e.code in (408, 425, 429) or e.code >= 500:
                raise _Transient(reason) from None
            raise _Permanent(reason) from None
    except urllib.error.URLError as e:
        raise _classify(e.reason) from None
    except (OSError, http.client.HTTPException, ValueError) as e:
        raise _classify(e) from None

    with resp:
        _check_reply(resp, encoded_ok)
        length = _int_header(resp, "Content-Length")
        if offset and resp.status == 206:
            m = _CONTENT_RANGE_RE.search(resp.headers.get("Content-Range", "") or "")
            if not m or int(m.group(1)) != offset:
                _truncate(part)
                raise _Transient("the server resumed at the wrong place; starting over")
            total = int(m.group(3)) if m.group(3) != "*" else None
            etag = resp.headers.get("ETag")
            if (total is not None and xfer.total is not None and total != xfer.total) or (
                    xfer.etag and etag is not None and etag != xfer.validator):
                _truncate(part)
                raise _Transient("the file changed on the server since the download began; starting over")
        elif resp.status == 200:
            if offset:
                # The server ignored Range, or If-Range said the file changed: it sends the whole file.
                offset = 0
                hasher = hashlib.sha1()
            total = length
            _learn_validator(resp, xfer)
        else:
            raise _Permanent(f"unexpected HTTP status {resp.status}")
        if total is not None:
            xfer.total = total
            if max_bytes is not None and total > max_bytes:
                raise _Permanent(f"the server announces {total} bytes, more than the {max_bytes} this file can be")
            _check_space(part, total - offset)
        bar.start(total, offset)

        got = 0
        try:
            fd = names.open_for_write(part, append=bool(offset))
            f = os.fdopen(fd, "ab" if offset else "wb")
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
                if max_bytes is not None and offset + got + len(chunk) > max_bytes:
                    raise _Permanent(f"the server sends more than the {max_bytes} bytes this file can be")
                try:
                    f.write(chunk)
                except OSError as e:
                    raise DiskError(f"cannot write {part}: {os_reason(e)}") from None
                hasher.update(chunk)
                got += len(chunk)
                xfer.received += len(chunk)
                bar.update(len(chunk))
                _check_deadline(xfer, offset + got, settings)
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


def _check_reply(resp, encoded_ok: bool) -> None:
    """Refuse a reply that is not the file as it is: a compressed body or a web page."""
    encoding = (resp.headers.get("Content-Encoding") or "identity").strip().lower()
    if encoding not in ("identity", "") and not encoded_ok:
        raise _Permanent(f"the server sent a {encoding}-encoded body although the file was asked for as it is")
    ctype = (resp.headers.get("Content-Type") or "").split(";", 1)[0].strip().lower()
    if ctype in _WEB_PAGE_TYPES:
        raise _Permanent(f"the server sent a web page (Content-Type: {ctype}), not the file")


def _learn_validator(resp, xfer: _Transfer) -> None:
    """Keep what If-Range can use: a strong ETag (a weak one is not allowed there), else Last-Modified."""
    etag = (resp.headers.get("ETag") or "").strip()
    modified = (resp.headers.get("Last-Modified") or "").strip()
    if etag and not etag.startswith("W/"):
        xfer.validator, xfer.etag = etag, True
    elif modified:
        xfer.validator, xfer.etag = modified, False
    else:
        xfer.validator, xfer.etag = None, False


def _check_space(part: Path, needed: int) -> None:
    try:
        free = shutil.disk_usage(part.parent).free
    except OSError:
        return
    if needed > free:
        raise DiskError(f"not enough space for {part.name}: {needed} more bytes needed, {free} free")


def _hash_prefix(part: Path, size: int):
    h = hashlib.sha1()
    if size:
        f = names.open_for_read(part)
        if f is None:
            raise DiskError(f"{part} is not a plain file; remove it")
        with f:
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
        os.close(names.open_for_write(part))
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
