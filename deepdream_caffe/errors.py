"""The one exception type the command line turns into a single stderr line."""
from __future__ import annotations

import importlib
from types import ModuleType

# The optional extras of pyproject.toml and what each brings.
EXTRAS = {"video": "PyAV and OpenCV", "batch": "Dask", "atlas": "Jinja2"}


class DeepDreamError(Exception):
    """A user-facing failure: bad input, missing model, failed download...

    The message is one line, says what went wrong and, where there is one,
    what to do about it. The CLI prints it and exits non-zero; API users can
    catch it.
    """

    exit_code = 1


class Interrupted(KeyboardInterrupt):
    """A run stopped by a signal (Ctrl-C, SIGTERM), with a message that says where and how to go on.

    Still a KeyboardInterrupt, so code that stops on Ctrl-C keeps stopping;
    the command line prints the message and exits with the shell's code
    for the signal (130 for SIGINT, 143 for SIGTERM).
    """

    def __init__(self, message: str, signum: int = 2) -> None:
        super().__init__(message)
        self.signum = int(signum)
        self.exit_code = 128 + self.signum


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so every cleanup (temp files, atomic writes) runs."""

    signum = 15


def import_extra(module: str, extra: str) -> ModuleType:
    """Import ``module`` of the optional ``extra``; if it is not installed, one line names the pip command."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise DeepDreamError(f"{extra} needs {EXTRAS[extra]}: pip install 'deepdream-caffe[{extra}]'") from None
