"""The batch's display on stderr: one tqdm bar over all tasks (done/total, ETA) and what each worker does."""
from __future__ import annotations

import sys
from typing import Dict, List, Optional

from tqdm import tqdm

from ..app.batch.run import BatchReporter
from ..errors import one_line
from .progress import PROG


def say(quiet: bool, message: str) -> None:
    if not quiet:
        print(f"{PROG}: {one_line(message)}", file=sys.stderr)


class BatchBar(BatchReporter):
    """A tqdm bar counting finished tasks; its postfix names each worker's current task."""

    def __init__(self, quiet: bool = False) -> None:
        self.quiet = quiet
        self.bar = None
        self.failed = 0

    def started(self, total: int, skipped: int) -> None:
        if skipped:
            say(self.quiet, f"{skipped} of {total} outputs already finished (same parameters): skipped")
        if self.quiet:
            return
        self.bar = tqdm(total=total - skipped, desc="batch", unit="img", file=sys.stderr, dynamic_ncols=True,
                        bar_format="{desc} {n_fmt}/{total_fmt} |{bar}| {elapsed}<{remaining}{postfix}")

    def task_done(self, task, result, error: Optional[str]) -> None:
        if error is not None:
            self.failed += 1
        if self.bar is not None:  # failures are listed once, at the end
            self.bar.update(1)
            if self.failed:
                self.bar.set_description(f"batch ({self.failed} failed)", refresh=False)

    def activity(self, busy: Dict[str, List[str]]) -> None:
        if self.bar is None:
            return
        parts = [f"{addr.rsplit(':', 1)[-1]}: {', '.join(names) or 'idle'}" for addr, names in sorted(busy.items())]
        self.bar.set_postfix_str(one_line(" | ".join(parts)), refresh=True)  # task names are file names

    def finished(self) -> None:
        if self.bar is not None:
            self.bar.close()
