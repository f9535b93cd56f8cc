"""Helpers for the tests of the app layer."""
from __future__ import annotations

from deepdream_caffe.app import Progress, Reporter


class DiesAt(Reporter):
    """Stops the run at the first step of octave ``last``, as a kill would; keeps the notes."""

    def __init__(self, last: int) -> None:
        self.last, self.notes = last, []

    def note(self, message):
        self.notes.append(message)

    def progress(self, sizes, iter_n, label):
        reporter = self

        class Bar(Progress):
            def update(self, octave, step, extra=None):
                if octave == reporter.last:
                    raise KeyboardInterrupt

        return Bar()
