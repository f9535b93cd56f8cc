"""A real HTTP file server on 127.0.0.1 for download tests, with ways to misbehave.

Built on the standard library's ``http.server`` running in a thread. Each
served path can be told to drop the connection part-way, stall, answer 404,
ignore Range requests, trickle slowly, lie about its type, encoding or
length, redirect, or change between requests (with ETag/Last-Modified and
If-Range handled as a real server does); every request is logged so tests
can check what a client actually asked for. All waits are bounded, the
server stops by itself after ``lifetime`` seconds or ``max_requests``
requests, and it only ever binds the loopback address.
"""
from __future__ import annotations

import hashlib
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Optional

_RANGE_RE = re.compile(r"^bytes=(\d+)-(\d*)$")
_MAX_STALL = 15.0  # a stalled handler never outlives this, even if nobody stops the server


@dataclass
class Served:
    data: bytes
    status: Optional[int] = None  # answer this status instead of the file (e.g. 404)
    drop_after: Optional[int] = None  # close the connection after this many body bytes...
    drops: int = 1  # ...for this many requests
    stall_after: Optional[int] = None  # send the file up to this byte, then go silent
    ignore_range: bool = False  # always answer 200 with the whole file
    rate: Optional[float] = None  # bytes per second, to make downloads overlap
    content_type: str = "application/octet-stream"
    headers: dict = field(default_factory=dict)  # extra reply headers (Content-Encoding, ...)
    etag: bool = False  # send a strong ETag made from the data (so it changes with ``then``)
    last_modified: Optional[str] = None  # send Last-Modified (and honour If-Range by it)
    then: Optional[bytes] = None  # the data from the second request on: the file changed
    honour_if_range: bool = True  # False: resume from the changed file anyway, as a broken server would
    length: Optional[int] = None  # announce this Content-Length instead of the real one (-1: none)
    redirect: Optional[str] = None  # answer 302 to this location
    requests: list = field(default_factory=list)  # Range header of each request (None if absent)

    def current(self) -> bytes:
        return self.then if self.changed() else self.data

    def changed(self) -> bool:
        return self.then is not None and len(self.requests) > 1

    def tag(self, data: bytes) -> Optional[str]:
        return f'"{hashlib.sha1(data).hexdigest()[:16]}"' if self.etag else None

    def modified(self) -> Optional[str]:
        """Last-Modified of the version being served: a changed file has a later date."""
        if self.last_modified is None:
            return None
        return "Fri, 01 Jan 2038 00:00:00 GMT" if self.changed() else self.last_modified


@dataclass(frozen=True)
class Request:
    path: str
    range: Optional[str]
    if_range: Optional[str] = None
    accept_encoding: Optional[str] = None


class FileServer:
    """Serve in-memory files at ``http://127.0.0.1:<port>/<path>``; use as a context manager."""

    def __init__(self, lifetime: float = 300.0, max_requests: int = 2000) -> None:
        self.lifetime, self.max_requests = lifetime, max_requests
        self._timer: Optional[threading.Timer] = None
        self._stop_lock = threading.Lock()
        self._closed = False
        self.files: dict[str, Served] = {}
        self.log: list[Request] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._httpd: Optional[ThreadingHTTPServer] = None
        self._thread: Optional[threading.Thread] = None

    # -- set-up ---------------------------------------------------------------
    def add(self, path: str, data: bytes, **behaviour) -> str:
        """Serve ``data`` at ``/path`` with optional misbehaviour; returns its URL."""
        self.files[path.lstrip("/")] = Served(data, **behaviour)
        return self.url(path)

    def url(self, path: str = "") -> str:
        return f"http://127.0.0.1:{self.port}/{path.lstrip('/')}"

    @property
    def port(self) -> int:
        assert self._httpd is not None, "server not started"
        return self._httpd.server_address[1]

    def requests_for(self, path: str) -> list[Request]:
        with self._lock:
            return [r for r in self.log if r.path == path.lstrip("/")]

    # -- life cycle -------------------------------------------------------------
    def start(self) -> "FileServer":
        server = self

        class Handler(_Handler):
            owner = server

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()
        # Stop by itself even if a test never does (killed, hung): nothing outlives its lifetime.
        self._timer = threading.Timer(self.lifetime, self.stop)
        self._timer.daemon = True
        self._timer.start()
        return self

    def stop(self) -> None:
        """Stop serving (idempotent; also called by the lifetime timer)."""
        self._stop.set()  # wakes stalled and trickling handlers
        with self._stop_lock:
            httpd = self._httpd
            if self._timer is not None and threading.current_thread() is not self._timer:
                self._timer.cancel()
            if httpd is not None and self._closed is False:
                self._closed = True
                httpd.shutdown()
                httpd.server_close()
        if self._thread is not None and threading.current_thread() is not self._thread:
            self._thread.join(timeout=5)

    def __enter__(self) -> "FileServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class _Handler(BaseHTTPRequestHandler):
    owner: FileServer
    protocol_version = "HTTP/1.0"  # one request per connection: simple, like many model hosts

    def log_message(self, format, *args):  # keep pytest output clean
        pass

    def do_GET(self) -> None:
        owner = self.owner
        path = self.path.split("?", 1)[0].lstrip("/")
        range_header = self.headers.get("Range")
        if_range = self.headers.get("If-Range")
        with owner._lock:
            owner.log.append(Request(path, range_header, if_range, self.headers.get("Accept-Encoding")))
            too_many = len(owner.log) > owner.max_requests
            served = owner.files.get(path)
            if served is not None:
                served.requests.append(range_header)
                data = served.current()
        if too_many:
            self.send_error(503, "request limit of the test server reached")
            return
        if served is None:
            self.send_error(404, "Not Found")
            return
        if served.status is not None:
            self.send_error(served.status)
            return
        if served.redirect is not None:
            self.send_response(302)
            self.send_header("Location", served.redirect)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return

        start, status = 0, 200
        etag = served.tag(data)
        m = _RANGE_RE.match(range_header or "")
        if m and if_range is not None and served.honour_if_range:
            # RFC 9110: the range is sent only if the validator still matches, else the whole file.
            current = etag if if_range.startswith('"') else served.modified()
            if if_range != current:
                m = None
        if m and not served.ignore_range:
            start = int(m.group(1))
            end = int(m.group(2)) if m.group(2) else len(data) - 1
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            end = min(end, len(data) - 1)
            body, status = data[start:end + 1], 206
        else:
            body = data

        self.send_response(status)
        self.send_header("Content-Type", served.content_type)
        if served.length != -1:  # -1: no Content-Length, the body ends when the connection closes
            self.send_header("Content-Length", str(served.length if served.length is not None else len(body)))
        self.send_header("Accept-Ranges", "bytes")
        if etag:
            self.send_header("ETag", etag)
        if served.modified():
            self.send_header("Last-Modified", served.modified())
        for name, value in served.headers.items():
            self.send_header(name, value)
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{start + len(body) - 1}/{len(data)}")
        self.end_headers()

        with owner._lock:
            drop = served.drop_after is not None and served.drops > 0
            if drop:
                served.drops -= 1
        if drop:
            self._write(body[:served.drop_after], served.rate)
            self._hang_up()
            return
        if served.stall_after is not None:
            # Stall at an absolute byte of the file, so a resumed request gets no further.
            self._write(body[:max(0, served.stall_after - start)], served.rate)
            owner._stop.wait(_MAX_STALL)
            self._hang_up()
            return
        self._write(body, served.rate)

    def _write(self, body: bytes, rate: Optional[float]) -> None:
        try:
            if rate is None:
                self.wfile.write(body)
            else:
                step = max(1, int(rate / 20))  # twenty slices a second
                for i in range(0, len(body), step):
                    if self.owner._stop.is_set():
                        return
                    self.wfile.write(body[i:i + step])
                    self.wfile.flush()
                    time.sleep(step / rate)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _hang_up(self) -> None:
        self.close_connection = True
        try:
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
