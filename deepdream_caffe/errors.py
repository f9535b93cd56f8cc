"""The one exception type the command line turns into a single stderr line."""
from __future__ import annotations

import importlib
import re
from types import ModuleType
from typing import Callable

# The optional extras of pyproject.toml and what each brings.
EXTRAS = {"video": "PyAV and OpenCV", "batch": "Dask", "atlas": "Jinja2"}


class DeepDreamError(Exception):
    """A user-facing failure: bad input, missing model, failed download...

    The message is one line, says what went wrong and, where there is one,
    what to do about it. The CLI prints it and exits non-zero; API users can
    catch it.
    """

    exit_code = 1


class SettingError(DeepDreamError):
    """A setting out of range. The template names settings as ``{field}``, or ``{field=VALUE}`` with
    a value: the message shows the field names (``field=VALUE``, as a keyword argument);
    :meth:`worded` shows the caller's own names for them (the command line's flags: ``--field VALUE``)."""

    def __init__(self, template: str) -> None:
        self.template = template
        super().__init__(self.worded(str, "="))

    def worded(self, name: Callable[[str], str], sep: str = " ") -> str:
        return re.sub(r"\{(\w+)(?:=([^{}]*))?\}", lambda m: name(m[1]) + (sep + m[2] if m[2] else ""),
                      self.template)


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


def one_line(text: str) -> str:
    """``text`` with every character that is not printable escaped as Python writes it (``\\n``,
    ``\\t``, ``\\x1b``, ``\\udcff`` for a byte of a name that is not UTF-8): what the tool says
    stays one line, and drives no terminal, whatever a file name holds."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def import_extra(module: str, extra: str) -> ModuleType:
    """Import ``module`` of the optional ``extra``; if it is not installed, one line names the pip command."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise DeepDreamError(f"{extra} needs {EXTRAS[extra]}: pip install 'deepdream-caffe[{extra}]'") from None
