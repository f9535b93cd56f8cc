"""Caffe as its own referee: would it build, reshape and run this net? Asked of Caffe, in a child process.

Caffe ends the whole process on a failed CHECK. So before a net is built
here, Caffe builds it in a child (:mod:`referee_child`: CPU mode, no
weights, started with ``subprocess``, never forked from this process) and
reshapes it to every size the run will use; the child answers with the
blob shapes, or with glog's FATAL line and the layer Caffe was setting up,
which become one line here (``cannot build the net: layer 'pool3'
(Pooling): ...``). Answers are cached by the net's text (the prototxt cut
after the end layer) and the size.

The few rules written here guard what Caffe does not check and would then
hang on or corrupt memory with; each says which behaviour it guards.
"""
from __future__ import annotations

import atexit
import hashlib
import importlib.util
import json
import os
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Tuple

from google.protobuf import text_format

from ..errors import DeepDreamError
from ..io.atomic import atomic_output
from ..io.files import read_regular
from .prototxt import input_names, patched_copy
from .referee_child import IN_PLACE
from .surgery import reserved_name_problem

Shape = Tuple[int, ...]
Size = Tuple[int, int]

CHILD = Path(__file__).with_name("referee_child.py")
# Types whose LayerSetUp opens the files or databases their parameters name: a FIFO there blocks forever,
# HDF5Output creates its file, and none of them can feed a dream, which writes the input blob itself.
FILE_TYPES = frozenset({"Data", "ImageData", "WindowData", "HDF5Data", "HDF5Output"})
_LONG = 240  # Caffe's unknown-type message lists every known type; the line is cut there


class NetError(DeepDreamError):
    """Caffe cannot build (or run) the net, whatever the input size; ``layer``: where (None: not one layer)."""

    def __init__(self, message: str, layer: Optional[str] = None) -> None:
        super().__init__(message)
        self.layer = layer


class ShapeError(ValueError):
    """An input size that some layer cannot take; ``layer``: the first that cannot (None: the net as a whole)."""

    def __init__(self, message: str, layer: Optional[str] = None) -> None:
        super().__init__(message)
        self.layer = layer


class TooSmall(ShapeError):
    """A layer's output would be empty or of negative size."""


class FixedSize(ShapeError):
    """The layer only works at the size the net was built at (an InnerProduct, an explicit Reshape...)."""


class Mismatch(ShapeError):
    """Caffe refuses this size, but a larger one goes through (blobs that do not meet at this size)."""


class TooLarge(ShapeError):
    """A blob would exceed Caffe's 2**31-1 values, or the machine's memory."""


@dataclass(frozen=True)
class CaffeLayer:
    """One layer of the net as Caffe built it (Split layers it inserts included)."""

    name: str
    type: str
    bottoms: Tuple[str, ...]
    tops: Tuple[str, ...]
    params: Tuple[Shape, ...]  # learnable blob shapes


@dataclass
class Built:
    """The net Caffe built at the prototxt's own input size, cut after the end layer."""

    text: str  # the prototxt Caffe built
    layers: List[CaffeLayer]
    inputs: List[str]
    blobs: Dict[str, Shape]  # at the prototxt's own size
    sizes: Dict[Size, Dict[str, Any]] = field(default_factory=dict, repr=False)  # the child's answers
    run: Optional[Dict[str, Any]] = field(default=None, repr=False)

    @property
    def input_shape(self) -> Shape:
        return self.blobs[self.inputs[0]]

    @property
    def native(self) -> Size:
        """The first input's H, W (checked to be N x C x H x W when built)."""
        return self.input_shape[2], self.input_shape[3]

    def param_counts(self) -> Dict[str, int]:
        """Layer name -> number of learnable blobs Caffe gives it."""
        return {layer.name: len(layer.params) for layer in self.layers}

    def where(self, i: int) -> str:
        layer = self.layers[i]
        return f"layer '{layer.name}' ({layer.type})"

    def shapes_at(self, size: Size) -> Dict[str, Shape]:
        """Blob name -> shape at an input of ``size``, for the inputs and the layers Caffe reshaped to it
        (all of them, unless one refused the size)."""
        res = self.sizes[size]
        shapes = {name: self.blobs[name] for name in self.inputs}
        shapes[self.inputs[0]] = tuple(self.input_shape[:2]) + tuple(res["size"])
        for layer, tops in zip(self.layers, res["tops"]):
            for name, shape in zip(layer.tops, tops):
                shapes[name] = tuple(shape)
        return shapes


# ---------------------------------------------------------------- the child process


class _Child:
    """The child process: started on first use and kept for the next question."""

    def __init__(self) -> None:
        env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", CUDA_VISIBLE_DEVICES="",
                   GLOG_minloglevel="0")  # INFO on: "Creating Layer X" names the layer a FATAL line is about
        self.pid = os.getpid()
        self.proc = subprocess.Popen([sys.executable, str(CHILD)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, env=env, close_fds=True)

    def ask(self, request: Dict[str, Any]) -> Dict[str, Any]:
        try:
            self.proc.stdin.write((json.dumps(request) + "\n").encode())
            self.proc.stdin.flush()
            line = self.proc.stdout.readline()
        except OSError:
            line = b""
        if not line:
            raise DeepDreamError(f"Caffe's child process ended unexpectedly (status {self.proc.wait()}); "
                                 "is pycaffe importable?")
        return json.loads(line)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            self.proc.wait()


_CHILD: List[_Child] = []
_LOCK = threading.Lock()


def _ask(request: Dict[str, Any]) -> Dict[str, Any]:
    with _LOCK:
        if _CHILD and _CHILD[0].pid != os.getpid():  # a forked copy of this process does not share the pipes
            _CHILD.clear()
        if not _CHILD:
            _CHILD.append(_Child())
        try:
            return _CHILD[0].ask(request)
        except DeepDreamError:
            _CHILD.pop()
            raise


@atexit.register
def _close() -> None:
    if _CHILD and _CHILD[0].pid == os.getpid():
        _CHILD.pop().close()


# ---------------------------------------------------------------- asking


def caffe_message(message: str) -> str:
    """Caffe's FATAL message as one short line (glog's "Check failed: " prefix dropped)."""
    msg = " ".join(message.replace("Check failed: ", "", 1).split())
    return msg if len(msg) <= _LONG else msg[:_LONG].rsplit(" ", 1)[0] + " ..."


def _build_failure(failed: Dict[str, Any], param: Any) -> NetError:
    """The one line for a net Caffe aborted on: the layer it was setting up and its FATAL message."""
    layer, what = failed["layer"], caffe_message(failed["message"])
    if layer is None:
        return NetError(f"cannot build the net: {what}")
    types = {lp.name: lp.type for lp in param.layer}
    kind = types.get(layer, "Input" if layer == "input" and param.input else None)
    return NetError(f"cannot build the net: layer '{layer}'{f' ({kind})' if kind else ''}: {what}", layer)


def referee_text(param: Any, end: Optional[str]) -> str:
    """The prototxt the child builds: the net as the dream builds it, cut after ``end`` and before any
    Python layer (whose module the child must not import)."""
    net = patched_copy(param, force_backward=True, end=end)
    del net.layer[next((i for i, layer in enumerate(net.layer) if layer.type == "Python"), len(net.layer)):]
    return text_format.MessageToString(net)


_BUILT: Dict[Tuple[str, Optional[str]], Any] = {}  # (sha1 of the prototxt, end) -> Built, or the NetError


def build(param: Any, end: Optional[str] = None, sizes: Iterable[Size] = (), *, run: bool = False) -> Built:
    """The net Caffe builds from ``param`` cut after ``end``, with its answers for ``sizes``.

    Raises :class:`NetError` if Caffe cannot build it or if its first input
    is not N x C x H x W. ``run`` asks for the run of :func:`check_runs` too.
    """
    key = (hashlib.sha1(param.SerializeToString(deterministic=True)).hexdigest(), end)
    built = _BUILT.get(key)
    if isinstance(built, NetError):
        raise built
    wanted = [tuple(int(d) for d in s) for s in sizes]
    todo = sorted({s for s in wanted if built is None or s not in built.sizes})
    if built is not None and not todo and (built.run is not None or not run):
        return built
    if len(_BUILT) > 64:
        _BUILT.clear()
    try:
        built = _answer(param, end, built, todo, run)
    except NetError as e:
        _BUILT[key] = e
        raise
    _BUILT[key] = built
    return built


def _answer(param: Any, end: Optional[str], built: Optional[Built], todo: List[Size], run: bool) -> Built:
    """Ask the child about ``todo`` sizes (and a run), building the net there first if need be."""
    text = built.text if built is not None else referee_text(param, end)
    answer = _exchange(text, todo, run, built is None)
    if "failed" in answer:
        raise _build_failure(answer["failed"], param)
    if built is None:
        d = answer["built"]
        layers = [CaffeLayer(x["name"], x["type"], tuple(x["bottoms"]), tuple(x["tops"]),
                             tuple(tuple(p) for p in x["params"])) for x in d["layers"]]
        built = Built(text, layers, d["inputs"], {k: tuple(v) for k, v in d["blobs"].items()})
        _check_input(built)
        _not_in_place(built, d["native"])
    for s, res in zip(todo, answer["sizes"]):
        built.sizes[s] = res
        _not_in_place(built, res)
    if answer.get("run") is not None:
        built.run = answer["run"]
    return built


def _identity() -> str:
    """What the child's answers depend on besides the prototxt: its own code and the Caffe build."""
    if not _IDENTITY:
        spec = importlib.util.find_spec("caffe")
        found = sorted(Path(spec.origin).parent.glob("_caffe*.so")) if spec and spec.origin else []
        st = found[0].stat() if found else None
        caffe = f"{found[0]}:{st.st_size}:{st.st_mtime_ns}" if st else "?"
        _IDENTITY.append(hashlib.sha1(CHILD.read_bytes() + caffe.encode()).hexdigest())
    return _IDENTITY[0]


_IDENTITY: List[str] = []
MAX_KEPT = 512  # answers kept on disk (a few KB each); past that the older half goes
MAX_KEPT_BYTES = 16 << 20  # one answer: a net's blob shapes at each size asked


def _exchange(text: str, sizes: List[Size], run: bool, describe: bool) -> Dict[str, Any]:
    """The child's answer, from the answers kept on disk where they hold it (they depend only on the
    prototxt, the sizes, the child's code and the Caffe build), else asked and kept."""
    root = Path(os.environ.get("DEEPDREAM_CAFFE_CACHE") or Path.home() / ".cache" / "deepdream-caffe") / "referee"
    path = root / (hashlib.sha1((_identity() + text).encode()).hexdigest() + ".json")
    try:
        kept = json.loads(read_regular(path, "kept answer", MAX_KEPT_BYTES))
    except (DeepDreamError, ValueError):  # none, or not a file of ours: ask the child again
        kept = {"sizes": {}}
    need = [s for s in sizes if f"{s[0]}x{s[1]}" not in kept.get("sizes", {})]
    ask = {"prototxt": text, "sizes": [list(s) for s in need], "run": run and kept.get("run") is None,
           "describe": describe and "built" not in kept}
    if "failed" not in kept and (need or ask["run"] or ask["describe"]):
        answer = _ask(ask)
        kept = {"failed": answer["failed"]} if "failed" in answer else dict(
            kept, built=answer.get("built", kept.get("built")), run=answer.get("run") or kept.get("run"),
            sizes=dict(kept["sizes"], **{f"{h}x{w}": res for (h, w), res in zip(need, answer["sizes"])}))
        try:
            root.mkdir(parents=True, exist_ok=True)
            with atomic_output(path, "w") as f:
                json.dump(kept, f)
            old = sorted(root.glob("*.json"), key=lambda p: p.stat().st_mtime)
            for p in old[: len(old) // 2] if len(old) > MAX_KEPT else []:
                p.unlink(missing_ok=True)
        except (OSError, DeepDreamError):
            pass  # an unwritable cache only costs the next run the child's time
    if "failed" in kept:
        return kept
    return {"built": kept.get("built"), "run": kept.get("run") if run else None,
            "sizes": [kept["sizes"][f"{h}x{w}"] for h, w in sizes]}


def _not_in_place(built: Built, res: Dict[str, Any]) -> None:
    """The child's one refusal of its own (a layer that changes the shape of the blob it works in place
    on) is about the net, whatever the size."""
    err = res.get("error", {})
    if err.get("message", "").startswith(IN_PLACE):
        raise NetError(f"cannot build the net: {built.where(err['layer'])}: {err['message']}",
                       built.layers[err["layer"]].name)


def check_runs(param: Any, end: Optional[str] = None) -> Built:
    """Raise NetError unless Caffe runs the net once forward and backward (random input, at a size known
    to work): some layers are refused only then (a pooling method without a CPU version, a loss layer
    asked to backpropagate to its labels)."""
    built = build(param, end, run=True)
    if built.run is not None and "error" in built.run:
        (h, w), err = built.run["size"], built.run["error"]
        how = "forward" if err["pass"] == "f" else "backward"
        raise NetError(f"cannot run the net at {w}x{h}: {built.where(err['layer'])}: "
                       f"{caffe_message(err['message'])} (in its {how} pass)", built.layers[err["layer"]].name)
    return built


def _check_input(built: Built) -> None:
    if not built.inputs:
        raise NetError("the prototxt declares no input (input: or an Input layer)")
    shape = built.input_shape
    if len(shape) != 4:
        raise NetError(f"the net's first input '{built.inputs[0]}' has shape {list(shape)}; "
                       "dreaming needs N x C x H x W")


# ---------------------------------------------------------------- sizes


def _count(shape: Iterable[int]) -> int:
    n = 1
    for d in shape:
        n *= int(d)
    return n


def size_problems(param: Any, end: Optional[str], sizes: Iterable[Size]) -> Dict[Size, Optional[ShapeError]]:
    """For each ``(h, w)``: why Caffe would refuse that input up to ``end`` (None: it would not).

    One child request for all of them. Raises NetError for a net Caffe cannot build.
    """
    wanted = sorted({(int(h), int(w)) for h, w in sizes})
    built = build(param, end, wanted)
    # A size Caffe refuses for another reason than a negative or too large blob is tried at twice the size
    # too: refused again at the same layer, it is fixed-size (an InnerProduct), else a mismatch.
    probes = [_bigger(s) for s in wanted if _kind_by_message(built.sizes[s]) is None and "error" in built.sizes[s]]
    if probes:
        build(param, end, probes)
    return {s: _problem(built, s) for s in wanted}


def size_problem(param: Any, height: int, width: int, end: Optional[str]) -> Optional[ShapeError]:
    return size_problems(param, end, [(height, width)])[(int(height), int(width))]


def _bigger(size: Size) -> Size:
    return size[0] * 2, size[1] * 2


def _kind_by_message(res: Dict[str, Any]) -> Optional[type]:
    message = res.get("error", {}).get("message", "")
    if "exceeds INT_MAX" in message:  # Blob::Reshape's CHECK on the blob's count
        return TooLarge
    if "shape[i] >= 0" in message:  # Blob::Reshape's CHECK on each dimension
        return TooSmall
    return None


def _problem(built: Built, size: Size) -> Optional[ShapeError]:
    res = built.sizes[size]
    if "error" in res:
        i = res["error"]["layer"]
        where, msg = built.where(i), caffe_message(res["error"]["message"])
        kind = _kind_by_message(res)
        if kind is TooSmall:
            return TooSmall(f"{where}: its output would have a negative size ({msg})", built.layers[i].name)
        if kind is None:
            other = built.sizes[_bigger(size)]
            kind = FixedSize if "error" in other and other["error"]["layer"] == i else Mismatch
        return kind(f"{where}: {msg}", built.layers[i].name)
    shapes = built.shapes_at(size)
    for layer in built.layers:
        for top in layer.tops:
            if 0 in shapes[top]:
                dims = "x".join(str(d) for d in shapes[top])
                return TooSmall(f"layer '{layer.name}' ({layer.type}): its output '{top}' would be empty ({dims})",
                                layer.name)
    need = 4 * 2 * sum(_count(s) for s in shapes.values())  # data and diff, float32
    limit = memory_limit()
    if limit and need > limit:
        return TooLarge(f"Caffe would need about {need / 2**30:.1f} GiB for a {size[1]}x{size[0]} input; "
                        f"this machine has {limit / 2**30:.1f} GiB")
    return None


_MEMORY: List[int] = []


def memory_limit() -> int:
    """Bytes of RAM plus swap.

    Caffe allocates a blob's memory only when it is first touched, so a
    reshape the child accepts may still not fit; the run would then end in
    Caffe's CHECK on a failed allocation, or in the kernel's OOM killer.
    """
    if not _MEMORY:
        try:
            with open("/proc/meminfo") as f:
                fields = dict(line.split(":", 1) for line in f if ":" in line)
            _MEMORY.append(sum(int(fields[k].split()[0]) * 1024 for k in ("MemTotal", "SwapTotal") if k in fields))
        except (OSError, ValueError):
            _MEMORY.append(0)
    return _MEMORY[0]


def smallest_side(param: Any, end: str, aspect: float = 1.0, limit: int = 4096) -> int:
    """Smallest height (width = height * aspect) the net accepts up to ``end`` (being too small is monotone)."""

    def ok(hh: int) -> bool:
        return not isinstance(size_problem(param, hh, max(1, int(round(hh * aspect))), end), TooSmall)

    lo, hi = 1, limit
    if not ok(hi):
        return limit
    while lo < hi:
        mid = (lo + hi) // 2
        if ok(mid):
            hi = mid
        else:
            lo = mid + 1
    return lo


def layer_shapes(param: Any, height: int, width: int, upto: Optional[str] = None) -> Dict[str, Dict[str, Any]]:
    """For each layer of the prototxt (in order, up to ``upto``): its top shapes and multiply-adds at
    ``height`` x ``width``. Raises NetError, or the ShapeError kind where Caffe would refuse the size."""
    problem = size_problem(param, height, width, upto)
    if problem is not None:
        raise problem
    built = build(param, upto)
    shapes = built.shapes_at((int(height), int(width)))
    own = {layer.name for layer in param.layer} | ({"input"} if param.input else set())
    out: Dict[str, Dict[str, Any]] = {}
    for layer in built.layers:
        if layer.name in own:
            out[layer.name] = {"tops": [shapes[t] for t in layer.tops], "macs": _macs(layer, shapes)}
    return out


def _macs(layer: CaffeLayer, shapes: Dict[str, Shape]) -> int:
    """Multiply-adds of one forward pass: a weight's values each meet every output (or input) position once."""
    if not layer.params:
        return 0
    per_position = _count(layer.params[0][1:])
    if layer.type == "Convolution":
        return _count(shapes[layer.tops[0]][1:]) * per_position
    if layer.type == "Deconvolution":
        return _count(shapes[layer.bottoms[0]][1:]) * per_position
    if layer.type == "InnerProduct":
        return _count(layer.params[0])
    return 0


# ---------------------------------------------------------------- the net as a whole


def check_structure(param: Any, path: Path, *, end: Optional[str] = None, allow_python_layers: bool = False,
                    run: bool = False) -> Built:
    """Raise one line unless Caffe builds this net (cut after ``end``, if given) and we may let it.

    Caffe builds it in the child (with ``run``, also one forward and
    backward pass). Refused here first: the names this package reserves
    for its own layers, Python layers (they import and run a module named
    by the prototxt) unless ``allow_python_layers``, the layer types of
    :data:`FILE_TYPES`, and a layer writing the net's input in place
    (Caffe allows it; the dream would then step from the layer's output
    instead of the image).
    """
    problem = reserved_name_problem(param)
    if problem:
        raise DeepDreamError(f"prototxt {path}: {problem}")
    inputs = input_names(param)
    for layer in patched_copy(param, end=end).layer:
        refusal = policy_refusal(layer, allow_python_layers, inputs)
        if refusal:
            hint = " (allow them with --allow-python-layers / load_net(allow_python_layers=True) if you trust it)"
            raise NetError(f"prototxt {path}: {refusal}{hint if layer.type == 'Python' else ''}", layer.name)
    try:
        return check_runs(param, end) if run else build(param, end)
    except NetError as e:
        raise NetError(f"prototxt {path}: {e}", e.layer) from None


def policy_refusal(layer: Any, allow_python_layers: bool, inputs: Iterable[str]) -> Optional[str]:
    """Why a layer Caffe could build is not given to it (None: it may be); ``inputs``: the net's input blobs."""
    where = f"layer '{layer.name}' ({layer.type})"
    written = [t for t in layer.top if t in inputs and layer.type != "Input"]
    if written:
        return f"{where}: would overwrite the net's input '{written[0]}' in place; dreaming needs the input unchanged"
    if layer.type == "Python" and not allow_python_layers:
        return (f"{where}: is a Python layer, which would import and run code named by the prototxt; refused "
                "unless Python layers are allowed explicitly")
    if layer.type in FILE_TYPES:
        return f"{where}: opens the files its parameters name when built; a dream feeds the net through its input"
    return None
