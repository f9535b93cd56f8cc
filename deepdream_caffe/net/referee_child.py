"""The referee's child process: Caffe builds, reshapes and runs nets here, where its aborts cannot hurt.

Started by :mod:`deepdream_caffe.net.referee` as a plain script (``python
referee_child.py``), never imported by the package, and never forked from a
process whose BLAS or GPU threads run: the parent sets one BLAS and one
OpenMP thread and hides the GPUs before libcaffe loads, so this process
stays single-threaded and may itself fork. It reads one JSON request per
line on stdin and answers one JSON line on stdout:

    request:  {"prototxt": text, "sizes": [[h, w], ...], "run": bool, "describe": bool}
    answer:   {"sizes": [...], "run": ..., "built": {...}}  or  {"failed": {"layer": name, "message": m}}

The net is built (``Net::Init``: every layer's LayerSetUp and Reshape at
the prototxt's own input size) in a forked copy of this process first,
then here; when Caffe aborts, only the copy ends, and glog's lines (INFO
on) tell the layer it was setting up and the FATAL message. Each size is
then tried in a forked copy of the built net, layer by layer as
``Net::Reshape`` does it; the layer it died in and glog's FATAL line come
back. With ``run``,
one forward and backward pass (random input) runs the same way once per
net, at its smallest size known to work, which finds the layers Caffe only
refuses when they run (a CPU pooling method it lacks, a loss layer asked
to backpropagate to its labels).
"""
import glob
import importlib.machinery
import importlib.util
import json
import os
import re
import sys
import tempfile

import numpy as np  # Caffe's extension module needs it anyway

TEST = 1  # caffe.TEST
FLT_MAX = 3.4028234663852886e38
IN_PLACE = "works in place on"  # the start of the one refusal this file adds to Caffe's (see Built.reshape)
_FATAL = re.compile(r"^F\d{4}(?:\d{4})? [\d:.]+ +\d+ ([^\]:]*)[^\]]*\] (.*)$")


def load_caffe():
    """Caffe's extension module alone: the ``caffe`` package's own ``__init__`` imports scikit-image (0.5 s)."""
    spec = importlib.util.find_spec("caffe")
    if spec is None or not spec.origin:
        raise ImportError("pycaffe is not importable")
    found = sorted(glob.glob(os.path.join(os.path.dirname(spec.origin), "_caffe*.so")))
    if not found:
        raise ImportError(f"no _caffe extension beside {spec.origin}")
    loader = importlib.machinery.ExtensionFileLoader("caffe._caffe", found[0])
    module = importlib.util.module_from_spec(importlib.util.spec_from_loader("caffe._caffe", loader))
    loader.exec_module(module)
    module.set_mode_cpu()
    return module


def fatal_line(text):
    """glog's (first) FATAL message and the Caffe source file it comes from, or None."""
    for line in text.splitlines():
        m = _FATAL.match(line)
        if m:
            return f"{m.group(2).strip()} [{m.group(1)}]"
    return None


def died(status):
    """How a forked copy ended, in words (None: it exited normally)."""
    if os.WIFSIGNALED(status):
        return f"Caffe crashed (signal {os.WTERMSIG(status)})"
    return None if os.WEXITSTATUS(status) == 0 else f"Caffe exited with status {os.WEXITSTATUS(status)}"


def in_fork(task):
    """Run ``task(emit)`` in a forked copy; returns the JSON values it emitted, glog's FATAL line or the
    crash (None if it ended well), and its other lines of output."""
    r, w = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the forked copy ends in os._exit
        os.close(r)
        os.dup2(w, 1)
        os.dup2(w, 2)

        def emit(value):
            data = (json.dumps(value) + "\n").encode()
            while data:
                data = data[os.write(1, data):]

        try:
            task(emit)
        except BaseException as e:  # noqa: BLE001 - a Python error of pycaffe's is a refusal too
            emit({"exception": str(e) if isinstance(e, ValueError) else f"{type(e).__name__}: {e}"})
            os._exit(3)
        os._exit(0)
    os.close(w)
    chunks = []
    while True:
        chunk = os.read(r, 1 << 16)
        if not chunk:
            break
        chunks.append(chunk)
    os.close(r)
    _, status = os.waitpid(pid, 0)
    values, rest = [], []
    for line in b"".join(chunks).decode("utf-8", "replace").splitlines():
        if line.startswith(("[", "{")):
            values.append(json.loads(line))
        else:
            rest.append(line)
    failure = next((v["exception"] for v in values if isinstance(v, dict) and "exception" in v), None)
    failure = failure or fatal_line("\n".join(rest)) or died(status)
    return [v for v in values if not isinstance(v, dict)], failure, rest


def last_created(log):
    """The layer Net::Init was setting up last, named by glog's INFO lines "Creating layer NAME" (the layer
    factory's, before the type is looked up) and "Creating Layer NAME" (Net::Init's, after)."""
    layer = None
    for line in log:
        m = re.match(r"I.*\] Creating [Ll]ayer (.*)$", line)
        if m:
            layer = m.group(1).strip()
    return layer


class Built:
    """A net as Caffe built it, and what this process learnt about it."""

    def __init__(self, caffe, net):
        self.caffe, self.net = caffe, net
        self.n = len(net.layers)
        self.ok_sizes = []
        self.ran = None
        shape = list(net._blobs[net._inputs[0]].shape) if len(net._inputs) else []
        self.native = tuple(shape[2:]) if len(shape) == 4 else None
        # The prototxt's own size (for the in-place check), and smaller ones for the run check to pick from.
        ladder = [(max(1, self.native[0] // k), max(1, self.native[1] // k)) for k in (8, 4)] if self.native else []
        self.native_answer = self.try_sizes([self.native] + ladder)[0] if self.native else None

    def describe(self):
        """Layers, inputs and blob shapes as built; and the first layer that works in place on a blob whose
        shape it changes (Net::Init does not check that), as the answer for the prototxt's own size."""
        net = self.net
        blobs, names = net._blobs, list(net._blob_names)
        layers = []
        for i, name in enumerate(net._layer_names):
            layers.append({"name": name, "type": net.layers[i].type,
                           "bottoms": [names[j] for j in net._bottom_ids(i)],
                           "tops": [names[j] for j in net._top_ids(i)],
                           "params": [list(b.shape) for b in net.layers[i].blobs]})
        return {"layers": layers, "inputs": [names[j] for j in net._inputs],
                "blobs": {name: list(blobs[j].shape) for j, name in enumerate(names)}, "native": self.native_answer}

    def reshape(self, size, emit):
        """Net::Reshape at ``size`` (the first input's H, W), one layer at a time, emitting each layer's top shapes."""
        net, caffe = self.net, self.caffe
        blobs = net._blobs
        src = blobs[net._inputs[0]]
        src.reshape(*(list(src.shape[:2]) + list(size)))
        names = net._blob_names
        for i, layer in enumerate(net.layers):
            bottom, top = caffe.RawBlobVec(), caffe.RawBlobVec()
            before = {j: list(blobs[j].shape) for j in net._bottom_ids(i)}
            for j in net._bottom_ids(i):
                bottom.append(blobs[j])
            for j in net._top_ids(i):
                top.append(blobs[j])
            layer.reshape(bottom, top)
            for j in net._top_ids(i):
                # Caffe lets any layer work in place; one whose output has another shape than its input then
                # reads and writes the shared buffer past what either side holds (heap corruption).
                if j in before and list(blobs[j].shape) != before[j]:
                    raise ValueError(f"{IN_PLACE} '{names[j]}' but makes it {list(blobs[j].shape)} from "
                                     f"{before[j]}; Caffe would read and write past its data (give the output a "
                                     "name of its own)")
            emit([i, [list(blobs[j].shape) for j in net._top_ids(i)]])

    def try_sizes(self, sizes):
        """Each size's answer: the sizes are tried one after the other in one forked copy, and in a new
        copy after one that Caffe aborted."""
        answers, rest = [], [tuple(s) for s in sizes]
        while rest:
            def task(emit):
                for size in rest:
                    emit(["size"])
                    self.reshape(size, emit)

            values, failure, _ = in_fork(task)
            per = []
            for v in values:
                if v == ["size"]:
                    per.append([])
                else:
                    per[-1].append(v[1])
            done = len(per) - (failure is not None)
            for k, tops in enumerate(per):
                out = {"size": list(rest[k]), "tops": tops}
                if k == done:
                    out["error"] = {"layer": len(tops), "message": failure}
                elif all(0 not in shape for top in tops for shape in top):
                    self.ok_sizes.append(rest[k])
                answers.append(out)
            rest = rest[len(per):]
        return answers

    def run(self, size, emit):
        """Forward and backward once at ``size``, emitting ("f"|"b", layer) before each layer runs."""
        net = self.net
        self.reshape(size, lambda _: None)
        src = net._blobs[net._inputs[0]]
        src.data[...] = np.random.RandomState(0).uniform(-120, 120, src.data.shape)
        for i in range(self.n):
            emit(["f", i])
            net._forward(i, i)
        # Max pooling over a window of only NaN/-inf makes Caffe's backward write outside its buffer; the
        # parent's runs check for that window themselves (access.check_pool_windows), so stop here.
        for i, layer in enumerate(net.layers):
            if layer.type == "Pooling":
                for j in net._top_ids(i):
                    data = net._blobs[j].data
                    if data.size and float(data.min()) == -FLT_MAX:
                        return
        for i in reversed(range(self.n)):
            emit(["b", i])
            net._backward(i, i)

    def run_once(self):
        """The forward/backward check, at the smallest size known to work: which layers Caffe refuses to
        run does not depend on the size, and a small one runs in a fraction of the time."""
        if self.ran is None and self.native is not None:
            size = min(self.ok_sizes + [self.native], key=lambda s: s[0] * s[1])
            steps, failure, _ = in_fork(lambda emit: self.run(size, emit))
            self.ran = {"size": list(size)}
            if failure is not None:
                self.ran["error"] = {"layer": steps[-1][1] if steps else 0, "message": failure,
                                     "pass": steps[-1][0] if steps else "f"}
        return self.ran


def main():
    caffe = load_caffe()
    nets = {}  # prototxt text -> Built; the last two (a run asks about one net, or a net and its cut)
    memfd = getattr(os, "memfd_create", None)
    for line in sys.stdin:
        req = json.loads(line)
        text = req["prototxt"]
        built = nets.pop(text, None)
        if built is None:
            if memfd is not None:
                fd = memfd("deepdream-referee")
                path = f"/proc/self/fd/{fd}"
            else:  # removed below: builds abort only in forked copies, so this process always gets there
                fd, path = tempfile.mkstemp(suffix=".prototxt", prefix="deepdream-referee-")
            os.write(fd, text.encode())
            try:
                # Built once in a forked copy first: where Caffe aborts, only the copy ends, and its glog
                # lines say in which layer; then here, where it is known to build.
                _, failure, log = in_fork(lambda emit: caffe.Net(path, TEST))
                if failure is not None:
                    print(json.dumps({"failed": {"layer": last_created(log), "message": failure}}), flush=True)
                    continue
                built = Built(caffe, caffe.Net(path, TEST))
            finally:
                os.close(fd)
                if memfd is None:
                    os.unlink(path)
        nets[text] = built
        while len(nets) > 2:
            nets.pop(next(iter(nets)))
        answer = {"sizes": built.try_sizes(req.get("sizes", []))}
        if req.get("describe"):
            answer["built"] = built.describe()
        if req.get("run"):
            answer["run"] = built.run_once()
        print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    main()
