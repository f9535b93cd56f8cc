"""What a run reports, on stderr: notes, the chosen seed, a progress bar weighted by pixels.

tqdm is imported when a bar is made: this module is part of every command line, ``--help`` too.
"""
from __future__ import annotations

import sys
from typing import TYPE_CHECKING, List, Optional, Tuple

from ..app.reporting import FrameProgress, Progress, Reporter
from ..errors import one_line
from .fields import flag

if TYPE_CHECKING:
    from ..dream.ascent import StepInfo

PROG = "deepdream-caffe"


class DreamProgress(Progress):
    """Callback for :func:`deepdream`: one tqdm bar over all steps of all octaves.

    Each step counts in proportion to its octave's pixel count, so the time
    left is honest even though the last octave costs about half the run.
    """

    def __init__(self, sizes: List[Tuple[int, int]], iter_n: int, quiet: bool = False, label: str = "dream") -> None:
        self.sizes = sizes[::-1]  # smallest first, as the dream visits them
        self.iter_n = iter_n
        self.weights = [h * w for h, w in self.sizes]
        total = float(sum(self.weights) * iter_n)
        self.bar = None
        if not quiet:
            from tqdm import tqdm

            self.bar = tqdm(
                total=total, file=sys.stderr, desc=label, unit="px",
                bar_format="{desc} {percentage:3.0f}%|{bar}| {elapsed}<{remaining}{postfix}",
                leave=True, dynamic_ncols=True,
            )

    def __call__(self, info: "StepInfo") -> None:
        self.update(info.octave, info.step)

    def update(self, octave: int, step: int, extra: Optional[str] = None) -> None:
        if self.bar is None:
            return
        h, w = self.sizes[octave]
        post = f"octave {octave + 1}/{len(self.sizes)} {w}x{h} step {step + 1}/{self.iter_n}"
        if extra:
            post += " " + extra
        self.bar.set_postfix_str(post, refresh=False)
        self.bar.update(self.weights[octave])

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class FrameBar(FrameProgress):
    """A tqdm bar over frames that also moves within a frame, so the time left is right from the first one."""

    def __init__(self, total: int, done: int, label: str) -> None:
        from tqdm import tqdm

        self.bar = tqdm(
            total=total, initial=done, file=sys.stderr, desc=label, unit="frame", dynamic_ncols=True, leave=True,
            bar_format="{desc} {percentage:3.0f}%|{bar}| frame {n:.0f}/{total_fmt} {elapsed}<{remaining}{postfix}",
        )

    def advance(self, amount: float) -> None:
        self.bar.update(amount)

    def frame_done(self, done: int, note: str = "") -> None:
        if note:
            self.bar.set_postfix_str(note, refresh=False)
        self.bar.update(done - self.bar.n)  # whole frames, whatever the steps' fractions added up to

    def close(self) -> None:
        self.bar.close()


class StderrReporter(Reporter):
    """The CLI's reporter: a line per note, a progress bar per dream; nothing with ``quiet``."""

    def __init__(self, quiet: bool = False) -> None:
        self.quiet = quiet

    def note(self, message: str) -> None:
        if not self.quiet:
            print(f"{PROG}: {one_line(message)}", file=sys.stderr)

    def name(self, setting: str) -> str:
        return flag(setting)

    def seed_chosen(self, seed: int) -> None:
        self.note(f"seed {seed} (repeat this run with --seed {seed})")

    def progress(self, sizes: List[Tuple[int, int]], iter_n: int, label: str) -> Progress:
        return DreamProgress(sizes, iter_n, quiet=self.quiet, label=label)

    def frames(self, total: int, done: int, label: str) -> FrameProgress:
        return FrameProgress() if self.quiet else FrameBar(total, done, label)
