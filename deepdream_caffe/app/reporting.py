"""How a run tells what it is doing: a reporter object, so app code never prints.

The CLI passes one that draws progress bars and writes notes to stderr;
the default reports nothing.
"""
from __future__ import annotations

from typing import Callable, List, Optional, Tuple


class Progress:
    """One progress display over all steps of all octaves; this one shows nothing."""

    def update(self, octave: int, step: int, extra: Optional[str] = None) -> None:
        """Step ``step`` (0-based) of octave ``octave`` (0 = smallest) is done."""

    def close(self) -> None:
        """The dream ended (finished or not)."""


class FrameProgress:
    """One progress display over the frames of a video (or an encode); this one shows nothing."""

    def advance(self, amount: float) -> None:
        """Part of a frame is done (``amount`` in frames, e.g. one dream step's share)."""

    def frame_done(self, done: int, note: str = "") -> None:
        """``done`` frames are finished; ``note`` says something about the last one."""

    def close(self) -> None:
        """The run ended (finished or not)."""


class Reporter:
    """Receives a run's news. Subclass and override what you want to see.

    ``quiet`` also silences the zoo's download progress.
    """

    quiet = True

    def note(self, message: str) -> None:
        """Something worth a line: fewer octaves than asked, resumed, written."""

    def name(self, setting: str) -> str:
        """How a note calls ``setting`` (a config field), e.g. the command line's flag for it."""
        return setting

    def seed_chosen(self, seed: int) -> None:
        """No seed was given and the run picked ``seed``; reporting it lets the run be repeated."""

    def progress(self, sizes: List[Tuple[int, int]], iter_n: int, label: str) -> Progress:
        """A progress display for one dream over octaves of ``sizes`` (largest first), ``iter_n`` steps each."""
        return Progress()

    def frames(self, total: int, done: int, label: str) -> FrameProgress:
        """A progress display over ``total`` frames, ``done`` of them finished already (a resumed run)."""
        return FrameProgress()


class LbfgsProgress:
    """Turns L-BFGS's per-iterate callbacks into progress steps; an octave that stops early is filled up.

    L-BFGS-B may stop before ``maxiter`` (converged, or out of evaluations);
    its remaining steps are counted when the next octave starts, so the
    display ends at 100%. The display is made by ``make_progress`` when the
    first step is counted, so a run refused before any work shows none.
    """

    def __init__(self, make_progress: Callable[[], Progress], maxiter: int) -> None:
        self._make = make_progress
        self._progress: Optional[Progress] = None
        self.maxiter = maxiter
        self.octave = 0
        self.done = 0
        self.value: Optional[float] = None

    def __call__(self, info) -> None:
        """One accepted iterate: a :class:`~deepdream_caffe.dream.lbfgs.LbfgsStepInfo`."""
        octave, step, value = info.octave, info.step, info.value
        self._advance_to(octave)
        if step < self.maxiter:
            self.progress.update(octave, step, extra=f"f={value:.6g}")
        self.done, self.value = step + 1, value

    @property
    def progress(self) -> Progress:
        if self._progress is None:
            self._progress = self._make()
        return self._progress

    def close(self) -> None:
        if self._progress is not None:
            self._progress.close()

    def finish(self, octave_n: int) -> None:
        self._advance_to(octave_n - 1)
        self._fill()

    def _advance_to(self, octave: int) -> None:
        while octave > self.octave:
            self._fill()
            self.octave, self.done, self.value = self.octave + 1, 0, None

    def _fill(self) -> None:
        extra = "converged" if self.value is None else f"f={self.value:.6g} (stopped)"
        for step in range(self.done, self.maxiter):
            self.progress.update(self.octave, step, extra=extra)
