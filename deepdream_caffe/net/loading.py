"""Loading a net for dreaming: validated prototxt, checked weights, mean and channel order."""
from __future__ import annotations

import contextlib
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, FrozenSet, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np
from google.protobuf import text_format

from ..errors import DeepDreamError
from .access import check_layer
from .caffe_env import import_caffe
from .devices import select_device
from .prototxt import deepest_layer, input_names, layer_index, loss_layers, patched_copy, read_prototxt
from .referee import build, check_structure
from .surgery import GATE_LAYER, SINK_PREFIX, dream_surgery
from .weights import check_model, copy_into, read_caffemodel

GOOGLENET_MEAN = (104.0, 116.0, 122.0)


@dataclass
class DreamNet:
    """A pycaffe net plus what dreaming needs to know about its input.

    Pass it wherever the notebook passed its ``caffe.Classifier``.
    """

    net: Any
    mean: np.ndarray  # float32 (C, 1, 1), in the net's channel order
    channel_swap: Tuple[int, ...]
    prototxt: Path
    weights: Optional[Path] = None
    weights_sha1: Optional[str] = None
    end: Optional[str] = None  # the net was cut after this layer (the deepest of ``layers``)
    fast: bool = False  # built by dream_surgery rather than force_backward
    param: Any = field(default=None, repr=False)  # the user's NetParameter, unmodified
    layers: Tuple[str, ...] = ()  # the layers it was loaded for (``end=``), in the net's order
    # Layers Caffe runs backward for (fast nets only; None: all, as force_backward does).
    backward_layers: Optional[FrozenSet[str]] = field(default=None, repr=False)

    @property
    def blobs(self) -> Any:
        return self.net.blobs

    def layer_names(self) -> List[str]:
        return [n for n in self.net._layer_names if n != GATE_LAYER and not n.startswith(SINK_PREFIX)]


@contextlib.contextmanager
def _prototxt_path(text: str) -> Iterator[str]:
    """A path Caffe can open that holds ``text``, gone afterwards whatever happens.

    On Linux the text lives in an anonymous in-memory file (memfd), so not
    even a fatal error inside Caffe can leave a file behind; elsewhere it is
    a temp file removed in ``finally``.
    """
    data = text.encode()
    fd = _memfd_with(data)
    if fd is not None:
        try:
            yield f"/proc/self/fd/{fd}"
        finally:
            os.close(fd)
        return
    try:
        fd, tmp = tempfile.mkstemp(suffix=".prototxt", prefix="deepdream-")
    except OSError as e:
        raise DeepDreamError(f"cannot create a temporary prototxt in {tempfile.gettempdir()}: {e.strerror}") from None
    try:
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
        except OSError as e:
            raise DeepDreamError(f"cannot write a temporary prototxt in {tempfile.gettempdir()}: {e.strerror}") from None
        yield tmp
    finally:
        try:
            os.unlink(tmp)
        except OSError:
            pass


def _memfd_with(data: bytes) -> Optional[int]:
    """An anonymous in-memory file holding ``data`` (None where there is none)."""
    memfd = getattr(os, "memfd_create", None)
    if memfd is None or not os.path.isdir("/proc/self/fd"):
        return None
    try:
        fd = memfd("deepdream-prototxt", getattr(os, "MFD_CLOEXEC", 0))
    except OSError:
        return None
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        return fd
    except OSError:
        os.close(fd)
        return None


def _build(param: Any) -> Any:
    """caffe.Net from an in-memory NetParameter (checked by the caller: Caffe must not abort on it)."""
    caffe = import_caffe()
    with _prototxt_path(text_format.MessageToString(param)) as path:
        return caffe.Net(path, caffe.TEST)


def load_net(
    prototxt: os.PathLike,
    weights: Optional[os.PathLike] = None,
    *,
    mean: Sequence[float] = GOOGLENET_MEAN,
    channel_swap: Sequence[int] = (2, 1, 0),
    end: Union[None, str, Sequence[str]] = None,
    fast: bool = False,
    gpu: Optional[int] = None,
    select: bool = False,
    weights_sha1: Optional[str] = None,
    allow_python_layers: bool = False,
) -> DreamNet:
    """Load ``prototxt`` (+ ``weights``) ready for dreaming, as the notebook's first cells did.

    The prototxt is patched in memory (batch 1, ``force_backward: true``);
    the file on disk is never changed. With ``end`` (a layer name, or
    several for an objective on several layers) the net is cut after the
    deepest; with ``fast`` (needs ``end``) it is rebuilt so backward skips
    weight gradients (same input gradient bits, see :mod:`surgery`), and
    then only the layers named in ``end`` and those below them get one.
    With ``gpu`` (a device id) or ``select=True`` the CPU/GPU mode is set
    here (see :func:`deepdream_caffe.devices.select_device`); otherwise
    Caffe's current mode is kept. ``weights_sha1``, the hash of ``weights``
    the caller has just verified (the zoo does), is recorded instead of
    hashing the file again.

    Caffe builds and runs the net once in a child process first, so what
    it would abort on becomes one line (see :mod:`referee`); the weights
    are checked before they are copied (see :mod:`weights`). A ``type: "Python"`` layer
    imports and runs a module the prototxt names, so it is refused unless
    ``allow_python_layers=True``.
    """
    if gpu is not None or select:
        select_device(gpu)
    prototxt = Path(prototxt)
    param = read_prototxt(prototxt)
    ends: Tuple[str, ...] = () if end is None else ((end,) if isinstance(end, str) else tuple(end))
    if end is not None and not ends:
        raise DeepDreamError("end= names no layer")
    for name in ends:
        if layer_index(param, name) is None:
            check_layer(_NamesOnly(param), name)
    deepest = deepest_layer(param, ends) if ends else None
    checked = check_structure(param, prototxt, end=deepest, allow_python_layers=allow_python_layers, run=True)
    if fast and end is None:
        raise DeepDreamError("fast=True needs the end layer (the net is cut after it)")
    mean_arr = np.asarray(mean, dtype=np.float32).reshape(-1)
    if mean_arr.size != 3 or sorted(int(c) for c in channel_swap) != [0, 1, 2]:
        raise DeepDreamError(f"mean needs 3 values and channel_swap a permutation of 0,1,2; got {list(mean)}, {list(channel_swap)}")
    if not (np.isfinite(mean_arr).all() and (mean_arr >= 0).all() and (mean_arr <= 255).all()):
        raise DeepDreamError(f"mean must be 3 pixel values in [0, 255], got {list(mean)}")
    channels = checked.input_shape[1]
    if channels != 3:
        raise DeepDreamError(f"prototxt {prototxt}: the net's input has {channels} channels; dreaming needs 3 (RGB)")
    model = read_caffemodel(Path(weights), weights_sha1) if weights is not None else None

    built = dream_surgery(param, ends, checked.param_counts()) if fast else patched_copy(param, end=deepest)
    if fast:  # the surgery's layers go to Caffe too: the child builds them first (a build costs milliseconds)
        build(built)
    net = _build(built)

    sha1 = None
    if model is not None:
        weights = Path(weights)
        ours = [n for n in net._layer_names if n == GATE_LAYER or n.startswith(SINK_PREFIX)]
        expected: Dict[str, List[List[int]]] = {
            name: [list(b.data.shape) for b in blobs]
            for name, blobs in net.params.items()
            if name not in ours and len(blobs)
        }
        check_model(model, expected, [n for n in net._layer_names if n not in ours])
        copy_into(net, model, skip=ours)
        sha1 = model.sha1
    return DreamNet(
        net=net,
        mean=mean_arr[:, None, None],
        channel_swap=tuple(int(c) for c in channel_swap),
        prototxt=prototxt,
        weights=weights,
        weights_sha1=sha1,
        end=deepest,
        fast=fast,
        param=param,
        layers=tuple(sorted(ends, key=lambda n: layer_index(param, n))),
        backward_layers=frozenset(loss_layers(built)) if fast else None,
    )


class _NamesOnly:
    """Just enough of a pycaffe Net's surface for access.check_layer on a NetParameter."""

    def __init__(self, param: Any) -> None:
        self._layer_names = [layer.name for layer in param.layer]
        self.top_names = {layer.name: list(layer.top) for layer in param.layer}
        self.inputs = input_names(param)
