"""Reading a caffemodel's layers and blobs with the protobuf library, one layer at a time, without Caffe.

The messages are caffe.proto's, as far as weights go (NetParameter's
layers, their names and blobs; BlobProto; BlobShape), declared here with
protobuf's descriptor API so that no Caffe build is needed (the zoo checks
downloads where there is none); a layer's other fields are skipped by
protobuf as unknown. Two things keep a large file cheap. The file is
walked at the top level with protobuf's own varint decoder, so one layer
is parsed at a time and a caffemodel can be read from a memory map. And
the float data, packed as every writer packs it, is declared as bytes,
which become numpy arrays without a Python float per value (a repeated
float field costs about a second per 7 million values). A blob whose
values come unpacked (or mixed) is parsed again with the exact types.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
from google.protobuf import descriptor_pb2, descriptor_pool, message, message_factory
from google.protobuf.internal.decoder import _DecodeVarint

_F = descriptor_pb2.FieldDescriptorProto
_OPT, _REP = _F.LABEL_OPTIONAL, _F.LABEL_REPEATED
_PACKAGE = "deepdream_caffe.caffemodel"
MAX_FIELDS = 2_000_000  # top-level fields; a real net has thousands: bounds the time a crafted file can cost

# caffe.proto's numbers. "floats"/"doubles": packed float/double values (declared as bytes when fast).
_MESSAGES: Dict[str, Sequence[Tuple[str, int, Any, int, Optional[str]]]] = {
    "BlobShape": [("dim", 1, _F.TYPE_INT64, _REP, None)],
    "BlobProto": [("num", 1, _F.TYPE_INT32, _OPT, None), ("channels", 2, _F.TYPE_INT32, _OPT, None),
                  ("height", 3, _F.TYPE_INT32, _OPT, None), ("width", 4, _F.TYPE_INT32, _OPT, None),
                  ("data", 5, "floats", _REP, None), ("diff", 6, "floats", _REP, None),
                  ("shape", 7, _F.TYPE_MESSAGE, _OPT, "BlobShape"),
                  ("double_data", 8, "doubles", _REP, None), ("double_diff", 9, "doubles", _REP, None)],
    "V0LayerParameter": [("name", 1, _F.TYPE_STRING, _OPT, None), ("blobs", 50, _F.TYPE_MESSAGE, _REP, "BlobProto")],
    "V1LayerParameter": [("layer", 1, _F.TYPE_MESSAGE, _OPT, "V0LayerParameter"),
                         ("name", 4, _F.TYPE_STRING, _OPT, None), ("blobs", 6, _F.TYPE_MESSAGE, _REP, "BlobProto")],
    "LayerParameter": [("name", 1, _F.TYPE_STRING, _OPT, None), ("blobs", 7, _F.TYPE_MESSAGE, _REP, "BlobProto")],
}
# NetParameter's fields and the wire types they may come in (a repeated number may also come packed).
_VARINT, _I64, _LEN, _I32 = 0, 1, 2, 5
_NET_FIELDS = {1: (_LEN,), 2: (_LEN,), 3: (_LEN,), 4: (_VARINT, _LEN), 5: (_VARINT,), 6: (_LEN,), 7: (_VARINT,),
               8: (_LEN,), 100: (_LEN,)}
_NEW_LAYER, _V1_LAYER = 100, 2


def _classes(fast: bool) -> Dict[str, Any]:
    name = f"caffemodel_{'fast' if fast else 'exact'}.proto"
    fdp = descriptor_pb2.FileDescriptorProto(name=name, package=_PACKAGE, syntax="proto2")
    for msg, fields in _MESSAGES.items():
        m = fdp.message_type.add(name=msg)
        for fname, number, ftype, label, type_name in fields:
            if ftype in ("floats", "doubles"):
                ftype = _F.TYPE_BYTES if fast else _F.TYPE_FLOAT if ftype == "floats" else _F.TYPE_DOUBLE
            f = m.field.add(name=fname, number=number, type=ftype, label=label)
            if type_name:
                f.type_name = f".{_PACKAGE}.{type_name}"
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    return {msg: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{_PACKAGE}.{msg}"))
            for msg in _MESSAGES}


_FAST, _EXACT = _classes(True), _classes(False)


class WireError(ValueError):
    """The bytes are not a well-formed caffemodel (NetParameter)."""


@dataclass
class StoredBlob:
    """One blob of a caffemodel: its declared shape and its values."""

    shape: Optional[List[int]]  # BlobShape dims, if given
    legacy: Optional[Tuple[int, int, int, int]]  # num, channels, height, width, if any is given
    data: np.ndarray  # float32 or float64, 1-D
    n_diff: int

    def dims(self) -> List[int]:
        return list(self.legacy) if self.legacy is not None else list(self.shape or [])

    def fills_shape(self) -> bool:
        """As many values as its shape holds (a blob without any shape: at least one value)."""
        dims = self.dims() if (self.shape is not None or self.legacy is not None) else None
        return self.data.size > 0 if dims is None else self.data.size == int(np.prod(dims, dtype=np.int64))


@dataclass
class StoredLayer:
    """One layer of a caffemodel: its name (None if it has none) and blobs, and its format."""

    name: Optional[str]
    blobs: List[StoredBlob]
    v1: bool  # an old-format ('layers') layer
    v0: bool  # a V1 layer wrapping a pre-2014 (V0) one


def _values(chunks: Sequence[Any], dtype: str) -> np.ndarray:
    """Packed values (the fast classes' bytes, or the exact classes' numbers) as one array."""
    if chunks and isinstance(chunks[0], bytes):
        raw = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        if len(raw) % np.dtype(dtype).itemsize:
            raise WireError("a blob ends in a partial value (the file is cut short?)")
        return np.frombuffer(raw, dtype=dtype)
    return np.asarray(chunks, dtype=dtype)


def _count(chunks: Sequence[Any], size: int) -> int:
    return sum(len(c) // size for c in chunks) if chunks and isinstance(chunks[0], bytes) else len(chunks)


def _blob(b: Any) -> StoredBlob:
    if len(b.data) and len(b.double_data):
        raise WireError("a blob with both float and double data")
    data = _values(b.double_data, "<f8") if len(b.double_data) else _values(b.data, "<f4")
    legacy = None
    if any(b.HasField(f) for f in ("num", "channels", "height", "width")):
        legacy = (b.num, b.channels, b.height, b.width)
    shape = list(b.shape.dim) if b.HasField("shape") else None
    return StoredBlob(shape, legacy, data, _count(b.diff, 4) + _count(b.double_diff, 8))


def _layer(raw: Any, v1: bool, classes: Dict[str, Any]) -> StoredLayer:
    m = classes["V1LayerParameter" if v1 else "LayerParameter"].FromString(raw)
    v0 = v1 and m.HasField("layer")
    blobs = list(m.blobs) + (list(m.layer.blobs) if v0 else [])
    name = m.name or (m.layer.name if v0 else "")
    return StoredLayer(name or None, [_blob(b) for b in blobs], v1, v0)


def read_layers(buf: Any) -> Iterator[StoredLayer]:
    """Each layer of the caffemodel in ``buf`` (bytes or an mmap), in file order; WireError if malformed.

    The other top-level fields must be NetParameter's, in their wire
    types; they are skipped. Slices of ``buf`` are copies (an mmap's
    memory is never exported, so it can always be closed).
    """
    pos, end, fields = 0, len(buf), 0
    while pos < end:
        fields += 1
        if fields > MAX_FIELDS:
            raise WireError(f"more than {MAX_FIELDS} fields")
        at = pos
        try:
            key, pos = _DecodeVarint(buf, pos)
            number, wire = key >> 3, key & 7
            if wire == _LEN:
                length, pos = _DecodeVarint(buf, pos)
            else:
                length = {_VARINT: 0, _I64: 8, _I32: 4}.get(wire, 0)
                if wire == _VARINT:
                    _, pos = _DecodeVarint(buf, pos)
        except (message.DecodeError, IndexError):
            raise WireError(f"a malformed number at byte {at} (the file is cut short?)") from None
        if wire not in _NET_FIELDS.get(number, ()):
            raise WireError(f"field {number} (wire type {wire}) is not one of a net's (at byte {at})")
        if pos + length > end:
            raise WireError(f"a field at byte {at} claims {length} bytes, past its end (the file is cut short?)")
        if number in (_NEW_LAYER, _V1_LAYER):
            raw = bytes(buf[pos : pos + length])
            v1 = number == _V1_LAYER
            try:
                layer = _layer(raw, v1, _FAST)
                if not all(b.fills_shape() for b in layer.blobs):  # unpacked values: protobuf kept them aside
                    layer = _layer(raw, v1, _EXACT)
            except (message.DecodeError, UnicodeDecodeError):
                raise WireError(f"layer field at byte {at} does not parse (the file is cut short or damaged)") from None
            yield layer
        pos += length
