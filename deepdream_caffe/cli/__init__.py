"""The ``deepdream-caffe`` command: argument parsing and one error handler; the work is in ``app``."""
from .main import build_parser, main

__all__ = ["build_parser", "main"]
