"""Run many cases, each in its own process, without paying Python's and Caffe's start-up for each.

``python tests/forkrun.py`` reads a JSON list of cases on stdin, imports the
package and pycaffe once, then forks one child per case and prints one JSON
line per case: its exit code (negative: the signal that killed it, as
``subprocess`` reports it), stdout, stderr and what it left in its own temp
folder. A child that Caffe aborts (SIGABRT, exit 134 from a shell) is just a
result here. Every child has a deadline; BLAS and OpenMP run one thread so
that forking is safe and the machine is shared fairly.

A case is one stage or ``{"id": ..., "stages": [stage, ...]}``: stages run one after the
other in the same child (each with its own stdout, stderr and TMPDIR); if the
child dies, the signal is the result of the stage it died in. Stage kinds:
  {"kind": "cli", "argv": [...]}                  deepdream_caffe.cli.main(argv), as the console script runs it
  {"kind": "api", "prototxt": P, "end": L, "size": [h, w], "allow_python": bool}
                                                  load_net(P, end=L, fast=True) (random weights) and one dream step
  {"kind": "caffe", "prototxt": P, "sizes": [[h, w], ...]}
                                                  plain caffe.Net(P) reshaped to each size (no checks: to see
                                                  what Caffe itself does); prints JSON lines: the learnable
                                                  blob shapes, then each size's blob shapes
"""
from __future__ import annotations

import importlib
import json
import os
import pkgutil
import re
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any, Dict, List

import numpy as np
from PIL import Image

import deepdream_caffe
from deepdream_caffe import deepdream, load_net
from deepdream_caffe.cli.main import main
from deepdream_caffe.errors import DeepDreamError
from deepdream_caffe.net.caffe_env import import_caffe

HERE = Path(__file__).resolve().parent


def _run_case(case: Dict[str, Any]) -> int:
    kind = case["kind"]
    if kind == "cli":
        try:
            return int(main([str(a) for a in case["argv"]]))
        except SystemExit as e:  # argparse usage errors
            return int(e.code or 0)
    if kind == "api":
        try:
            net = load_net(case["prototxt"], None, end=case["end"], fast=True,
                           allow_python_layers=case.get("allow_python", False))
            h, w = case["size"]
            img = np.random.RandomState(0).uniform(0, 255, (h, w, 3)).astype(np.float32)
            deepdream(net, img, iter_n=1, octave_n=1, end=case["end"], rng=np.random.RandomState(0))
        except DeepDreamError as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
        return 0
    if kind == "caffe":
        caffe = import_caffe()
        net = caffe.Net(case["prototxt"], caffe.TEST)
        params = {name: [list(b.data.shape) for b in blobs] for name, blobs in net.params.items()}
        print(json.dumps({"params": params}), flush=True)
        for h, w in case["sizes"]:
            src = net.blobs[net.inputs[0]]
            src.reshape(1, src.shape[1], h, w)
            net.reshape()
            print(json.dumps({"size": [h, w], "blobs": {name: list(b.shape) for name, b in net.blobs.items()}}),
                  flush=True)
        return 0
    raise ValueError(f"unknown case kind {kind}")


def _child(stages: List[Dict[str, Any]], cdir: Path) -> None:
    """Runs in the forked child: each stage in turn, its outcome appended to ``cdir/done``; never returns."""
    rc = 0
    try:
        tempfile.tempdir = None
        for i, case in enumerate(stages):
            tmp = cdir / f"tmp{i}"
            os.environ["TMPDIR"] = str(tmp)
            tempfile.tempdir = None
            for fd, name in ((1, f"stdout{i}"), (2, f"stderr{i}")):
                f = os.open(cdir / name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
                os.dup2(f, fd)
                os.close(f)
            sys.stdout = open(1, "w", closefd=False, buffering=1)
            sys.stderr = open(2, "w", closefd=False, buffering=1)
            saved = dict(os.environ)
            os.environ.update(case.get("env", {}))
            sys.path[:0] = case.get("sys_path", [])
            try:
                rc = _run_case(case)
            except BaseException:  # noqa: BLE001 - reported as a failing case
                traceback.print_exc()
                rc = 98
            finally:
                del sys.path[: len(case.get("sys_path", []))]
                os.environ.clear()
                os.environ.update(saved)
                sys.stdout.flush()
                sys.stderr.flush()
            with open(cdir / "done", "a") as f:
                f.write(f"{rc}\n")
    finally:
        os._exit(0)


def serve(cases: List[Dict[str, Any]], workdir: Path, deadline_s: float) -> None:
    # Everything the package imports lazily is imported once, here, before forking.
    import_caffe()
    for mod in pkgutil.walk_packages(deepdream_caffe.__path__, "deepdream_caffe."):
        if not mod.name.endswith("__main__"):
            importlib.import_module(mod.name)
    importlib.import_module("deepdream_caffe.cli.main").build_parser()
    Image.init()
    for n, case in enumerate(cases):
        stages = case.get("stages", [case])
        cdir = workdir / f"case{n}"
        for i in range(len(stages)):
            (cdir / f"tmp{i}").mkdir(parents=True)
        sys.stdout.flush()
        sys.stderr.flush()
        t0 = time.monotonic()
        pid = os.fork()
        if pid == 0:
            _child(stages, cdir)
        t_end = t0 + deadline_s * len(stages)
        # A case may end early, as "stopped", once its first stage's stderr shows what it waits for.
        until = re.compile(case["until"]) if case.get("until") else None
        status = None
        polls = 0
        while status is None:
            done, st = os.waitpid(pid, os.WNOHANG)
            polls += 1
            seen = until is not None and polls % 50 == 0 and (cdir / "stderr0").exists() \
                and until.search((cdir / "stderr0").read_text(errors="replace"))
            if done:
                status = -os.WTERMSIG(st) if os.WIFSIGNALED(st) else os.WEXITSTATUS(st)
            elif seen or time.monotonic() > t_end:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                status = "stopped" if seen else "timeout"
            else:
                time.sleep(0.002)
        done_file = cdir / "done"
        codes = [int(x) for x in done_file.read_text().split()] if done_file.exists() else []
        seconds = round(time.monotonic() - t0, 3)
        for i, stage in enumerate(stages):
            if i < len(codes):
                rc: Any = codes[i]
            elif i == len(codes):
                rc = status if status != 0 else "vanished"  # the stage the process died in
            else:
                rc = "not run"
            out, err = cdir / f"stdout{i}", cdir / f"stderr{i}"
            result = {
                "id": stage.get("id", f"{n}.{i}"), "rc": rc,
                "stdout": out.read_text(errors="replace") if out.exists() else "",
                "stderr": err.read_text(errors="replace") if err.exists() else "",
                "tmp": sorted(p.name for p in (cdir / f"tmp{i}").iterdir()), "seconds": seconds,
            }
            print(json.dumps(result), flush=True)


def run_cases(cases: List[Dict[str, Any]], workdir: Path, deadline_s: float = 120, timeout: float = 1800) -> Dict[Any, Dict[str, Any]]:
    """Run ``cases`` in one fork server (a child process of the caller); results by case id."""
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", GLOG_minloglevel="2",
               PYTHONPATH=os.pathsep.join([str(HERE.parent), os.environ.get("PYTHONPATH", "")]))
    r = subprocess.run([sys.executable, str(Path(__file__).resolve()), str(workdir), str(deadline_s)],
                       input=json.dumps(cases), capture_output=True, text=True, env=env, timeout=timeout)
    if r.returncode != 0:
        raise RuntimeError(f"fork server failed ({r.returncode}): {r.stderr[-3000:]}")
    results = [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]
    return {res["id"]: res for res in results}


if __name__ == "__main__":
    serve(json.loads(sys.stdin.read()), Path(sys.argv[1]), float(sys.argv[2]))
