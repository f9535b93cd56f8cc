"""What runs inside a batch worker process: one dream per task, with the process's cache of nets.

Each worker process keeps the nets it loaded in a module-level dict, keyed
by model files, input conventions and end layer, so a net is read once per
process however many tasks (and settings that do not change the net) it
runs. A GPU worker uses the device in its ``DEEPDREAM_CAFFE_GPU`` variable
when set (one per worker), else the batch's ``--gpu``.
"""
from __future__ import annotations

import os
import shlex
import socket
import time
from dataclasses import dataclass, replace
from typing import Any, Dict, List, Optional, Tuple

from ...errors import DeepDreamError
from ...net.caffe_env import import_caffe
from ..pipeline import DreamSession, dream_file
from ..record import blas_threads
from ..reporting import Reporter
from .cluster import env_gpu
from .plan import METADATA_KEY, BatchTask

_NETS: Dict[Tuple[Any, ...], Any] = {}  # this process's loaded nets (see DreamSession's net_cache)
_LOADS: List[Tuple[Any, ...]] = []  # keys loaded by this process, in order: tells the client what was reused


@dataclass(frozen=True)
class TaskResult:
    """What a worker sends back about one task (the image itself is already on disk)."""

    index: int
    ok: bool
    error: Optional[str] = None
    worker: str = ""  # host:pid
    pid: int = 0
    blas_threads: Optional[int] = None
    net_loaded: bool = False  # False: the net came from this process's cache
    seconds: float = 0.0
    reproduce: Optional[str] = None


def reproduce_command(task: BatchTask, threads: Optional[int]) -> Tuple[List[str], Dict[str, str]]:
    """The plain ``dream`` command (argv, env) that makes this task's output bit for bit."""
    argv = ["deepdream-caffe", "dream", str(task.input), "-o", str(task.output), "--seed", str(task.seed),
            *task.setting.flags]
    env = {} if threads is None else {"OPENBLAS_NUM_THREADS": str(threads), "OMP_NUM_THREADS": str(threads)}
    return argv, env


def shell_line(argv: List[str], env: Dict[str, str]) -> str:
    return " ".join([f"{k}={v}" for k, v in sorted(env.items())] + [shlex.quote(a) for a in argv])


def worker_blas_threads() -> Optional[int]:
    """The thread count of Caffe's OpenBLAS in this process (after Caffe is imported), or None."""
    import_caffe()
    return blas_threads()


def run_task(task: BatchTask) -> TaskResult:
    """Dream ``task`` here and write its output atomically; a user error comes back as a failed result.

    Anything else (a crash, a dead process) is left to Dask, which retries
    the task on another worker.
    """
    start = time.perf_counter()
    me = f"{socket.gethostname()}:{os.getpid()}"
    cfg = task.config
    try:
        gpu = env_gpu()
        if gpu is not None:
            cfg = replace(cfg, gpu=gpu)
        loads = len(_LOADS)
        session = DreamSession(cfg, Reporter(), net_cache=_CountingCache())
        session.load()
        threads = blas_threads()
        argv, env = reproduce_command(task, threads)
        record = {"key": task.key, "setting": dict(task.setting.values), "worker": me,
                  "reproduce": {"argv": argv, "env": env, "command": shell_line(argv, env)}}
        dream_file(task.input, task.output, session=session, extra_metadata={METADATA_KEY: record})
    except DeepDreamError as e:
        return TaskResult(task.index, False, str(e), me, os.getpid(), seconds=time.perf_counter() - start)
    return TaskResult(task.index, True, None, me, os.getpid(), threads, len(_LOADS) > loads,
                      time.perf_counter() - start, record["reproduce"]["command"])


class _CountingCache(dict):
    """A view of the process's net cache that notes each load (so results say whether a net was reused)."""

    def get(self, key, default=None):  # type: ignore[override]
        return _NETS.get(key, default)

    def __setitem__(self, key, value) -> None:
        _NETS[key] = value
        _LOADS.append(key)
