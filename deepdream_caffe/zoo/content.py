"""Is what arrived what was asked for? Structural checks of a prototxt and a caffemodel.

Trust on first use records the hash of whatever a server sent, so before a
hash is recorded the bytes must at least be the kind of file asked for: a
web page served with status 200, a gzip body, a truncated file or a JSON
error must not become the truth. These checks need no Caffe (the zoo runs in
a bare venv): a prototxt must be protobuf text whose top-level fields are
NetParameter's and which defines layers with a type; a caffemodel must be a
protobuf NetParameter, read layer by layer to its last byte by the reader
the weight loader uses (:mod:`deepdream_caffe.net.caffemodel`), with named
layers holding blobs whose values fill their shapes. Loading the net checks
the rest. Field names and numbers are those of Caffe's caffe.proto.
"""
from __future__ import annotations

import math
import mmap
import os
import re
from pathlib import Path

from ..errors import DeepDreamError
from ..io.files import MAX_CAFFEMODEL_BYTES, MAX_PROTOTXT_BYTES, open_regular

MAX_DEPTH = 64

# NetParameter's fields in caffe.proto: name 1, layers (V1) 2, input 3, input_dim 4,
# force_backward 5, state 6, debug_info 7, input_shape 8, layer 100.
_NET_FIELDS = {"name", "layers", "input", "input_dim", "force_backward", "state", "debug_info", "input_shape",
               "layer"}
_LAYER_FIELDS = ("layer", "layers")


class ContentError(DeepDreamError):
    """The bytes are not the kind of file that was asked for."""


def describe_start(head: bytes) -> str:
    """A guess at what a wrong file is, from its first bytes (for the error line)."""
    text = head.lstrip()[:64].lower()
    if head[:2] == b"\x1f\x8b":
        return "gzip-compressed data"
    if text.startswith(b"<") and b"html" in head.lower():
        return "an HTML page"
    if text.startswith(b"<"):
        return "XML or HTML"
    if text.startswith((b"{", b"[")):
        return "JSON or similar"
    if not head:
        return "empty"
    return ""


def check_file(role: str, path: Path) -> None:
    """Raise ContentError unless ``path`` looks like a ``role`` ("prototxt" or "weights") file.

    The message reads after "is" ("not a prototxt (it is an HTML page)").
    """
    (check_prototxt if role == "prototxt" else check_caffemodel)(path)


def _fail(kind: str, reason: str, head: bytes) -> ContentError:
    """"not a caffemodel (it is an HTML page)": callers say which file or URL it is about."""
    seen = describe_start(head)
    # A recognised kind of file says more than where the parser gave up.
    return ContentError(f"not a {kind} ({f'it is {seen}' if seen else reason})")


# -- prototxt: protobuf text format ----------------------------------------------------------

_TOKEN_RE = re.compile(
    r"""
    (?P<skip>[ \t\r\n\f\v]+|\#[^\n]*)
  | (?P<str>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')
  | (?P<num>[-+]?(?:\d|\.\d)[\w.+-]*)
  | (?P<ident>-?[A-Za-z_][\w]*)
  | (?P<punct>[{}<>\[\]:,;])
    """,
    re.VERBOSE,
)
_CLOSE = {"{": "}", "<": ">"}


def check_prototxt(path: Path) -> None:
    """Protobuf text with NetParameter's top-level fields and at least one layer with a type."""
    path = Path(path)
    with open_regular(path, "prototxt") as f:
        data = f.read(MAX_PROTOTXT_BYTES + 1)
    head = data[:1024]
    if len(data) > MAX_PROTOTXT_BYTES:
        raise _fail("prototxt", f"larger than {MAX_PROTOTXT_BYTES >> 20} MB", b"")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise _fail("prototxt", "not UTF-8 text", head) from None
    try:
        layers = _walk_text(text)
    except ValueError as e:
        raise _fail("prototxt", str(e), head) from None
    if not layers:
        raise _fail("prototxt", "it defines no layers", head)
    untyped = [i for i, typed in enumerate(layers) if not typed]
    if untyped:
        raise _fail("prototxt", f"layer {untyped[0] + 1} has no type", head)


def _tokens(text: str):
    pos, line = 0, 1
    while pos < len(text):
        m = _TOKEN_RE.match(text, pos)
        if m is None:
            raise ValueError(f"unexpected {text[pos]!r} on line {line}")
        kind = m.lastgroup
        if kind != "skip":
            yield kind, m.group(), line
        line += m.group().count("\n")
        pos = m.end()


class _Tokens:
    """The tokens of a text, read one ahead (never all at once: a crafted file may hold millions)."""

    def __init__(self, text: str):
        self._gen = _tokens(text)
        self._ahead = None
        self._line = 1

    def peek(self) -> tuple:
        if self._ahead is None:
            self._ahead = next(self._gen, None) or ("end", "", self._line)
        return self._ahead

    def take(self) -> tuple:
        tok = self.peek()
        self._ahead, self._line = None, tok[2]
        return tok

    def skip_separator(self) -> None:
        kind, tok, _ = self.peek()
        if kind == "punct" and tok in ",;":
            self.take()


def _walk_text(text: str) -> list:
    """Parse the text format's structure; return, per top-level layer, whether it has a ``type``."""
    t = _Tokens(text)
    stack: list = []  # closers of the open messages
    layers: list = []
    top_layer = -1  # index in ``layers`` of the open top-level layer, if any
    while True:
        kind, tok, line = t.peek()
        if kind == "end":
            if stack:
                raise ValueError(f"'{stack[-1]}' missing at the end (the file is cut short?)")
            return layers
        if kind == "punct" and stack and tok == stack[-1]:
            t.take()
            stack.pop()
            if not stack:
                top_layer = -1
            t.skip_separator()
            continue
        if kind != "ident" or tok.startswith("-"):
            raise ValueError(f"expected a field name on line {line}, found {tok!r}")
        name = tok
        if not stack and name not in _NET_FIELDS:
            raise ValueError(f"'{name}' on line {line} is not a field of a net definition")
        if len(stack) == 1 and top_layer >= 0 and name == "type":
            layers[top_layer] = True
        t.take()
        kind, tok, line = t.peek()
        colon = kind == "punct" and tok == ":"
        if colon:
            t.take()
            kind, tok, line = t.peek()
        if kind == "punct" and tok in _CLOSE:
            if len(stack) >= MAX_DEPTH:
                raise ValueError(f"nested more than {MAX_DEPTH} deep on line {line}")
            if not stack and name in _LAYER_FIELDS:
                layers.append(False)
                top_layer = len(layers) - 1
            stack.append(_CLOSE[tok])
            t.take()
            continue
        if not colon:
            raise ValueError(f"expected ':' or '{{' after '{name}' on line {line}")
        if kind == "punct" and tok == "[":
            t.take()
            _skip_list(t, line)
        else:
            _skip_value(t, name)
        t.skip_separator()


def _skip_value(t: _Tokens, name: str) -> None:
    kind, tok, line = t.peek()
    if kind == "end":
        raise ValueError(f"'{name}' has no value (the file is cut short?)")
    if kind == "str":
        while t.peek()[0] == "str":  # adjacent strings concatenate
            t.take()
        return
    if kind in ("num", "ident"):
        t.take()
        return
    raise ValueError(f"'{name}' on line {line} has no value, found {tok!r}")


def _skip_list(t: _Tokens, line: int) -> None:
    """Skip ``[v, v, ...]`` of scalars (a list of messages is not used by Caffe's files)."""
    while True:
        kind, tok, _ = t.peek()
        if kind == "end":
            raise ValueError(f"list opened on line {line} is not closed")
        if kind == "punct" and tok == "]":
            t.take()
            return
        if kind == "punct" and tok == ",":
            t.take()
            continue
        _skip_value(t, "a list")


# -- caffemodel: protobuf wire format ---------------------------------------------------------


def check_caffemodel(path: Path) -> None:
    """A binary NetParameter read to its last byte, with named layers and blobs that fill their shapes."""
    # Here, not at the top: the reader needs numpy and protobuf, which the command line's parsing
    # (that imports the zoo for its model names) must not load.
    from ..net.caffemodel import read_layers  # noqa: PLC0415

    path = Path(path)
    with open_regular(path, "weights") as f:
        size = os.fstat(f.fileno()).st_size
        head = f.read(1024)
        if size > MAX_CAFFEMODEL_BYTES:
            raise _fail("caffemodel", "larger than Caffe's 2 GB limit", b"")
        if not size:
            raise _fail("caffemodel", "it is empty", head)
        layers = blobs = 0
        try:
            with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
                for layer in read_layers(mapped):  # one layer at a time, each checked and let go
                    layers += 1
                    what = f"layer {layer.name or layers}"
                    if layer.blobs and layer.name is None:
                        raise ValueError(f"layer {layers} holds weights but has no name")
                    for j, blob in enumerate(layer.blobs):
                        if not blob.fills_shape():
                            raise ValueError(f"blob {j} of {what} has {blob.data.size} values for shape "
                                             f"{blob.dims()} ({math.prod(blob.dims())} expected)")
                    blobs += len(layer.blobs)
        except (ValueError, OSError) as e:
            raise _fail("caffemodel", str(e), head) from None
    if not layers:
        raise _fail("caffemodel", "it holds no layers", head)
    if not blobs:
        raise _fail("caffemodel", "no layer holds weights", head)
