"""The ``deepdream-caffe`` command: the parser of every command, and the one error handler.

Every failure the user can cause ends as one line on stderr and exit 1
(2 for a malformed command line); tracebacks are for ``--verbose``.
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
import warnings
from pathlib import Path
from typing import List, Optional

from .. import __version__
from ..errors import DeepDreamError, Interrupted, Terminated, one_line
from ..io.atomic import describe_os_error
from .commands import add_all
from .fields import worded
from .progress import PROG


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line too."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"{self.prog}: error: {one_line(message)} (see --help)\n")
        sys.exit(2)


def build_parser() -> argparse.ArgumentParser:
    """The whole command line: every module of :mod:`deepdream_caffe.cli.commands` adds its command."""
    parser = _Parser(prog=PROG, description="Google's 2015 DeepDream, faithfully, on Caffe.")
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    add_all(sub)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    """Parse ``argv`` (default: the process's), run the command, turn any failure into one line."""
    argv = list(sys.argv[1:] if argv is None else argv)
    verbose = "-v" in argv or "--verbose" in argv
    if not verbose:
        os.environ.setdefault("GLOG_minloglevel", "2")
    parser = build_parser()
    args = parser.parse_args(argv)
    if not verbose:
        # numpy's overflow/invalid warnings: every non-finite value is caught and told in one line anyway.
        warnings.filterwarnings("ignore", category=RuntimeWarning, module=r"deepdream_caffe\.")
    previous = _terminate_as_interrupt()
    try:
        return int(args.func(args) or 0)
    except DeepDreamError as e:
        _say(f"error: {worded(e)}")
        return e.exit_code
    except KeyboardInterrupt as e:  # an Interrupted says where the run stopped and how to go on
        _say(str(e) if isinstance(e, Interrupted) else "interrupted")
        return 128 + getattr(e, "signum", signal.SIGINT)
    except BrokenPipeError:
        # `deepdream-caffe layers | head`: the reader left; not an error.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except MemoryError:
        _say("error: out of memory (try a smaller image or --tile-above)")
        return 1
    except OSError as e:
        if verbose:
            raise
        _say(f"error: {describe_os_error(e, Path(e.filename or '?'))}")
        return 1
    except Exception as e:  # noqa: BLE001 - last line of defence: no traceback for users
        if verbose:
            raise
        _say(f"error: unexpected {type(e).__name__}: {e} (run with --verbose for details)")
        return 1
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _say(line: str) -> None:
    print(f"{PROG}: {one_line(line)}", file=sys.stderr)


def _raise_terminated(signum: int, frame: object) -> None:
    raise Terminated()


def _terminate_as_interrupt() -> object:
    """SIGTERM raises like Ctrl-C while a command runs, so temp files go and state files stay.

    Returns the handler it replaced (None where signals cannot be set: not the main thread).
    """
    try:
        return signal.signal(signal.SIGTERM, _raise_terminated)
    except ValueError:
        return None


if __name__ == "__main__":
    sys.exit(main())
