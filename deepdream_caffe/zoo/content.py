"""Is what arrived what was asked for? Structural checks of a prototxt and a caffemodel.

Trust on first use records the hash of whatever a server sent, so before a
hash is recorded the bytes must at least be the kind of file asked for: a
web page served with status 200, a gzip body, a truncated file or a JSON
error must not become the truth. These checks need no Caffe (the zoo runs in
a bare venv): a prototxt must be protobuf text whose top-level fields are
NetParameter's and which defines layers with a type; a caffemodel must be a
protobuf NetParameter, read field by field to its last byte, with named
layers holding blobs whose values fill their shapes. Loading the net checks
the rest. Field names and numbers are those of Caffe's caffe.proto.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import BinaryIO, Optional

from ..errors import DeepDreamError

MAX_PROTOTXT_BYTES = 16 << 20  # real deploy files are tens of KB
# Caffe reads a caffemodel with a 2 GiB protobuf limit (INT_MAX bytes): anything larger cannot load.
MAX_CAFFEMODEL_BYTES = (1 << 31) - 1
MAX_FIELDS = 2_000_000  # a real net has tens of thousands; bounds the time a crafted file can cost
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
    with open(path, "rb") as f:
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

_VARINT, _I64, _LEN, _I32 = 0, 1, 2, 5


class _Reader:
    """Reads protobuf fields from a file, skipping payloads it does not need with seeks."""

    def __init__(self, f: BinaryIO):
        self.f, self.fields = f, 0

    def pos(self) -> int:
        return self.f.tell()

    def varint(self, end: int) -> int:
        result, shift = 0, 0
        while True:
            if self.pos() >= end:
                raise ValueError("a number runs past the end of its message (the file is cut short?)")
            b = self.f.read(1)
            if not b:
                raise ValueError("the file ends inside a number (cut short?)")
            result |= (b[0] & 0x7F) << shift
            if not b[0] & 0x80:
                return result
            shift += 7
            if shift >= 70:
                raise ValueError(f"a malformed number at byte {self.pos()}")

    def fields_until(self, end: int):
        """Yield (field number, wire type, payload end or value) for each field up to ``end``."""
        while self.pos() < end:
            self.fields += 1
            if self.fields > MAX_FIELDS:
                raise ValueError(f"more than {MAX_FIELDS} fields")
            at = self.pos()
            key = self.varint(end)
            number, wire = key >> 3, key & 7
            if number == 0:
                raise ValueError(f"field number 0 at byte {at}")
            if wire == _VARINT:
                yield number, wire, self.varint(end)
            elif wire in (_I64, _I32):
                width = 8 if wire == _I64 else 4
                if self.pos() + width > end:
                    raise ValueError(f"a value runs past its message at byte {at} (the file is cut short?)")
                yield number, wire, self.f.read(width)
            elif wire == _LEN:
                length = self.varint(end)
                stop = self.pos() + length
                if stop > end:
                    raise ValueError(f"a field at byte {at} claims {length} bytes, past its end "
                                     "(the file is cut short?)")
                yield number, wire, stop
                if self.pos() < stop:  # the consumer did not read the payload: skip it
                    self.f.seek(stop)
                elif self.pos() > stop:  # pragma: no cover - consumers stop at ``stop``
                    raise ValueError("a field was read past its end")
            else:
                raise ValueError(f"byte {at} is not the start of a protobuf field (wire type {wire})")
        if self.pos() != end:  # pragma: no cover - fields_until stops exactly at ``end``
            raise ValueError("a message overruns its length")

    def text(self, stop: int) -> str:
        """A string field, at most 256 bytes of it (the rest is skipped: a name only labels errors)."""
        return self.f.read(min(256, stop - self.pos())).decode("utf-8", "replace")


def check_caffemodel(path: Path) -> None:
    """A binary NetParameter read to its last byte, with named layers and blobs that fill their shapes."""
    path = Path(path)
    size = os.path.getsize(path)
    with open(path, "rb", buffering=1 << 16) as f:
        head = f.read(1024)
        if size > MAX_CAFFEMODEL_BYTES:
            raise _fail("caffemodel", "larger than Caffe's 2 GB limit", b"")
        f.seek(0)
        r = _Reader(f)
        try:
            layers, blobs = _walk_net(r, size)
        except (ValueError, OSError) as e:
            raise _fail("caffemodel", str(e), head) from None
    if not layers:
        raise _fail("caffemodel", "it holds no layers", head)
    if not blobs:
        raise _fail("caffemodel", "no layer holds weights", head)


# NetParameter field numbers and wire types (caffe.proto).
_NET_WIRE = {1: _LEN, 2: _LEN, 3: _LEN, 4: (_VARINT, _LEN), 5: _VARINT, 6: _LEN, 7: _VARINT, 8: _LEN, 100: _LEN}


def _walk_net(r: _Reader, size: int) -> tuple:
    layers = blobs = 0
    for number, wire, value in r.fields_until(size):
        expected = _NET_WIRE.get(number)
        if expected is None or wire not in (expected if isinstance(expected, tuple) else (expected,)):
            raise ValueError(f"field {number} (wire type {wire}) is not one of a net's")
        if number == 100:  # LayerParameter: name 1, blobs 7
            layers += 1
            blobs += _walk_layer(r, value, name_field=1, blobs_field=7, index=layers)
        elif number == 2:  # V1LayerParameter: name 4, blobs 6
            layers += 1
            blobs += _walk_layer(r, value, name_field=4, blobs_field=6, index=layers)
    return layers, blobs


def _walk_layer(r: _Reader, stop: int, *, name_field: int, blobs_field: int, index: int,
                v0: bool = False) -> int:
    """Count a layer's blobs, checking each; a V1 layer may wrap a V0 one (field 1: name 1, blobs 50)."""
    name: Optional[str] = None
    count = 0
    for number, wire, value in r.fields_until(stop):
        if number == name_field and wire == _LEN:
            name = r.text(value)
        elif number == blobs_field:
            if wire != _LEN:
                raise ValueError(f"layer {name or index} has a malformed blob")
            count += 1
            _walk_blob(r, value, f"blob {count - 1} of layer {name or index}")
        elif number == 1 and wire == _LEN and not v0 and name_field == 4:
            count += _walk_layer(r, value, name_field=1, blobs_field=50, index=index, v0=True)
            name = name or "(V0)"
        # Any other payload (strings, layer parameters) is skipped whole by fields_until.
    if count and not name:
        raise ValueError(f"layer {index} holds weights but has no name")
    return count


def _walk_blob(r: _Reader, stop: int, what: str) -> None:
    """BlobProto: num/channels/height/width 1-4, data 5, diff 6, shape 7, double_data 8, double_diff 9."""
    legacy = {}
    dims: Optional[list] = None
    floats = doubles = 0
    for number, wire, value in r.fields_until(stop):
        if number in (1, 2, 3, 4) and wire == _VARINT:
            legacy[number] = value
        elif number == 7 and wire == _LEN:
            dims = []
            for n, w, v in r.fields_until(value):  # BlobShape: repeated int64 dim = 1 [packed]
                if n != 1:
                    continue
                if w == _VARINT:
                    dims.append(v)
                elif w == _LEN:
                    while r.pos() < v:
                        dims.append(r.varint(v))
        elif number in (5, 8):
            width = 4 if number == 5 else 8
            if wire == _LEN:
                length = value - r.pos()
                if length % width:
                    raise ValueError(f"{what} has a partial value (the file is cut short?)")
                n_values = length // width
            elif wire == (_I32 if width == 4 else _I64):
                n_values = 1
            else:
                raise ValueError(f"{what} has malformed values")
            if number == 5:
                floats += n_values
            else:
                doubles += n_values
    if dims is None and legacy:  # the deprecated 4-D shape; unset dimensions are 0, as in caffe.proto
        dims = [legacy.get(k, 0) for k in (1, 2, 3, 4)]
    values = floats or doubles
    if dims is None:
        if not values:
            raise ValueError(f"{what} is empty")
        return
    count = 1
    for d in dims:
        count *= d
    if values != count:
        raise ValueError(f"{what} has {values} values for shape {dims} ({count} expected)")
