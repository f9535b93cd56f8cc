"""Where a batch runs: a LocalCluster of worker processes, or an existing Dask scheduler.

CPU workers split the cores: ``workers x BLAS threads <= cores``. The
thread count is put in each worker's environment (OPENBLAS_NUM_THREADS,
OMP_NUM_THREADS) by its nanny before the worker process starts, so it is in
place when Caffe's OpenBLAS loads there. Each worker runs one task at a
time (a Caffe net is not shared between threads).
"""
from __future__ import annotations

import importlib.util
import ipaddress
import logging
import os
import re
from dataclasses import dataclass
from typing import Any, Dict, Optional
from urllib.parse import urlsplit

from ...errors import DeepDreamError
from ...net.referee import memory_limit

GPU_ENV = "DEEPDREAM_CAFFE_GPU"  # a worker's GPU, one per worker where each is given its own
THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def usable_cores() -> int:
    """The cores this process may run on (its affinity mask, not the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def blas_split(workers: int, cores: Optional[int] = None) -> int:
    """BLAS threads per worker so that ``workers x threads <= cores`` (at least 1)."""
    cores = usable_cores() if cores is None else cores
    return max(1, cores // max(1, workers))


def worker_env(threads: int, gpus: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    """The environment a worker process starts with: its BLAS thread count (and quiet Caffe logs)."""
    env = {v: str(threads) for v in THREAD_VARS}
    env["GLOG_minloglevel"] = os.environ.get("GLOG_minloglevel", "2")
    env.update(gpus or {})
    return env


@dataclass
class Cluster:
    """A connected Dask client, the cluster it started (None for an external scheduler), and facts."""

    client: Any
    local: Any
    threads: Optional[int]  # BLAS threads per worker when this process chose them
    dashboard: Optional[str]

    def close(self) -> None:
        self.client.close()
        if self.local is not None:
            self.local.close()


def _has_bokeh() -> bool:
    return importlib.util.find_spec("bokeh") is not None


def dashboard_link(client: Any) -> Optional[str]:
    """The dashboard's address when the scheduler runs one, else None.

    The scheduler's web server runs without bokeh too, but then its pages
    only ask for bokeh: that counts as no dashboard.
    """
    try:
        info = client.scheduler_info()
        if "dashboard" not in info.get("services", {}) or not client.run_on_scheduler(_has_bokeh):
            return None
    except Exception:  # noqa: BLE001 - a dashboard is a nicety; never fail for it
        return None
    try:
        return client.dashboard_link
    except Exception:  # noqa: BLE001
        return None


WORKER_MEMORY = 256 << 20  # bytes: a worker process with pycaffe and a small net, at the least


def check_where(workers: Optional[int] = None, scheduler: Optional[str] = None) -> None:
    """Refuse, before any work, a worker count below 1, past what memory holds, or given with a scheduler,
    a scheduler address Dask cannot connect to, or a worker GPU that is not a number (one line)."""
    if scheduler is not None and workers is not None:
        raise DeepDreamError("--workers is for a local cluster; an existing scheduler has its own workers")
    if workers is not None and workers < 1:
        raise DeepDreamError(f"--workers must be at least 1, got {workers}")
    most = max(1, memory_limit() // WORKER_MEMORY)
    if workers is not None and workers > most:
        raise DeepDreamError(f"--workers {workers}: each local worker needs about {WORKER_MEMORY >> 20} MiB; "
                             f"this machine's memory holds at most {most}")
    if scheduler is not None:
        check_scheduler(scheduler)
    env_gpu()


def check_scheduler(address: str) -> None:
    """A Dask scheduler's address: ``tcp://HOST:PORT`` or ``tls://HOST:PORT`` (a bare ``HOST:PORT`` is tcp)."""
    scheme, sep, rest = address.partition("://")
    if not address.isprintable() or " " in address:
        scheme = ""  # urlsplit drops tabs and newlines without a word
    elif not sep:
        scheme, rest = "tcp", address
    try:
        parts = urlsplit(f"{scheme}://{rest}")
        host, port = parts.hostname, parts.port
        if host and "[" in parts.netloc:
            ipaddress.IPv6Address(host)
    except ValueError:
        host = port = None
    if (scheme not in ("tcp", "tls") or not host or not port or parts.path not in ("", "/") or parts.query
            or parts.fragment or "@" in parts.netloc or not re.fullmatch(r"[A-Za-z0-9.:_-]+", host)):
        raise DeepDreamError(f"--scheduler must be a Dask scheduler's address, tcp://HOST:PORT (or tls://), "
                             f"got {address!r}")


def env_gpu() -> Optional[int]:
    """The GPU named by ``$DEEPDREAM_CAFFE_GPU`` for this worker (unset or blank: None); checked."""
    text = os.environ.get(GPU_ENV, "").strip()
    if not text:
        return None
    if not text.isdigit() or not text.isascii():
        raise DeepDreamError(f"{GPU_ENV} must be a GPU number such as 0, got {text!r}")
    return int(text)


def start_cluster(workers: Optional[int] = None, scheduler: Optional[str] = None, dashboard: bool = True,
                  timeout: float = 60.0) -> Cluster:
    """Connect to ``scheduler`` (``tcp://HOST:PORT``), or start ``workers`` local worker processes.

    Local workers default to one per core, one BLAS thread each. The
    LocalCluster listens on 127.0.0.1 only (its web server on a free port);
    ``dashboard=False`` only stops reporting a dashboard, the scheduler's or the local one's.
    """
    import dask  # the batch extra, checked (one line if missing) by app.batch before any work
    from distributed import Client, LocalCluster

    logging.getLogger("distributed").setLevel(logging.ERROR)
    # One task per worker at a time, the rest queued at the scheduler: a dying worker takes only its own
    # task with it, and an idle worker gets the next one (the default sends ahead to busy workers).
    dask.config.set({"distributed.scheduler.worker-saturation": 1.0})
    check_where(workers, scheduler)
    if scheduler is not None:
        try:
            client = Client(scheduler, timeout=timeout)
        except (OSError, TimeoutError) as e:
            raise DeepDreamError(f"cannot reach the Dask scheduler at {scheduler}: {e}") from None
        return Cluster(client, None, None, dashboard_link(client) if dashboard else None)
    n = usable_cores() if workers is None else workers
    threads = blas_split(n)
    local = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, host="127.0.0.1",
                         dashboard_address="127.0.0.1:0", env=worker_env(threads),
                         silence_logs=logging.ERROR)
    client = Client(local, timeout=timeout)
    return Cluster(client, local, threads, dashboard_link(client) if dashboard else None)
