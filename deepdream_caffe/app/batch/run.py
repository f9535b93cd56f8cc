"""Running a batch's tasks on a Dask client: skip the finished, submit the rest, collect every outcome.

A task whose worker died is resubmitted by the scheduler (up to its
``distributed.scheduler.allowed-failures``); a task that raised is retried
``retries`` times; a user error (bad image...) fails at once. Failures never
stop the other tasks: each ends as one line in the report.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence

from ...errors import DeepDreamError
from .plan import BatchTask, is_finished
from .worker import TaskResult, run_task


class BatchReporter:
    """Receives a batch's news (the CLI draws a tqdm bar); this one reports nothing."""

    def started(self, total: int, skipped: int) -> None:
        """``total`` tasks, of which ``skipped`` were already finished."""

    def task_done(self, task: BatchTask, result: Optional[TaskResult], error: Optional[str]) -> None:
        """A task ended: ``result`` from its worker, or ``error`` when it failed."""

    def activity(self, busy: Dict[str, List[str]]) -> None:
        """What each worker (address) is dreaming now (task names; empty: idle)."""

    def finished(self) -> None:
        """All tasks ended."""


@dataclass
class BatchReport:
    """How a batch went: results by task index, failures as one line each, what was skipped."""

    tasks: List[BatchTask]
    skipped: List[int] = field(default_factory=list)
    results: Dict[int, TaskResult] = field(default_factory=dict)
    failures: Dict[int, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.failures

    def failure_lines(self) -> List[str]:
        return [f"failed: {self.tasks[i].name}: {msg}" for i, msg in sorted(self.failures.items())]


def _error_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    msg = text[0] if text else ""
    if type(exc).__name__ == "KilledWorker":
        return "its worker died on every try (out of memory or a crash in Caffe?)"
    return f"{type(exc).__name__}: {msg}" if msg else type(exc).__name__


def finished_report(tasks: Sequence[BatchTask]) -> Optional[BatchReport]:
    """The report of a batch whose outputs are all finished already (no cluster needed), else None."""
    if all(is_finished(t) for t in tasks):
        return BatchReport(list(tasks), skipped=[t.index for t in tasks])
    return None


def run_batch(tasks: Sequence[BatchTask], client: Any, reporter: Optional[BatchReporter] = None,
              retries: int = 1, poll: float = 0.5) -> BatchReport:
    """Dream every unfinished task on ``client``'s workers; returns the report (never raises for a task)."""
    rep = reporter or BatchReporter()
    report = BatchReport(list(tasks))
    todo: List[BatchTask] = []
    for t in tasks:
        if is_finished(t):
            report.skipped.append(t.index)
        else:
            todo.append(t)
    for folder in sorted({t.output.parent for t in todo}):  # a folder output is made as `mkdir -p` would
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise DeepDreamError(f"cannot create the output folder {folder}: {e.strerror}") from None
    rep.started(len(tasks), len(report.skipped))
    # pure=False: a task's key is its own even when two tasks look alike; retries cover raised errors,
    # the scheduler's allowed-failures cover dead workers.
    futures = {client.submit(run_task, t, key=f"dream-{t.index}-{t.key[:12]}", retries=retries, pure=False): t
               for t in todo}
    names = {f.key: t.name for f, t in futures.items()}
    pending = set(futures)
    while pending:
        done = {f for f in pending if f.done()}
        pending -= done
        for f in done:
            _collect(f, futures[f], report, rep)
        if pending and not done:
            try:
                busy = client.processing()
            except Exception:  # noqa: BLE001 - activity is a display; a hiccup must not stop the batch
                busy = {}
            rep.activity({w: [names.get(k, str(k)) for k in keys] for w, keys in busy.items()})
            time.sleep(poll)
    rep.finished()
    return report


def _collect(f: Any, task: BatchTask, report: BatchReport, rep: BatchReporter) -> None:
    """Record how the finished future ``f`` of ``task`` ended."""
    if f.status == "finished":
        res: TaskResult = f.result()
        if res.ok:
            report.results[task.index] = res
        else:
            report.failures[task.index] = res.error or "failed"
        rep.task_done(task, res, None if res.ok else report.failures[task.index])
        return
    exc = f.exception() if f.status == "error" else None
    report.failures[task.index] = _error_line(exc) if exc is not None else f"task {f.status}"
    rep.task_done(task, None, report.failures[task.index])
