"""The zoo's settings from the environment, each checked to be finite and in range.

A value such as ``nan`` or ``inf`` would otherwise pass a plain ``>= 0`` test
and turn a bounded wait into an endless one (or an OverflowError deep in the
socket code), so every value is parsed strictly and one line names the
variable, the range and what was given.
"""
from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from typing import Callable, Union

from ..errors import DeepDreamError

TIMEOUT_ENV = "DEEPDREAM_CAFFE_TIMEOUT"
RETRIES_ENV = "DEEPDREAM_CAFFE_RETRIES"
RETRY_WAIT_ENV = "DEEPDREAM_CAFFE_RETRY_WAIT"
MIN_RATE_ENV = "DEEPDREAM_CAFFE_MIN_RATE"
RATE_WINDOW_ENV = "DEEPDREAM_CAFFE_RATE_WINDOW"
LOCK_TIMEOUT_ENV = "DEEPDREAM_CAFFE_LOCK_TIMEOUT"

_INT_RE = re.compile(r"^[+]?\d{1,9}$")
# Plain decimal numbers only: float() would also take "nan", "inf" and "1_0".
_FLOAT_RE = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
_DAY = 86400.0

Number = Union[int, float]


def env_number(name: str, default: Number, kind: Callable = float, *, low: Number, high: Number,
               unit: str = "") -> Number:
    """``$name`` as a finite ``kind`` in [low, high], ``default`` when unset or empty."""
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return default
    text = raw.strip()
    value = None
    if kind is int:
        value = int(text) if _INT_RE.match(text) else None
    else:
        value = float(text) if _FLOAT_RE.match(text) else None
        if value is not None and not math.isfinite(value):  # 1e999
            value = None
    if value is None or not low <= value <= high:
        what = "a whole number" if kind is int else "a number"
        unit = f" {unit}" if unit else ""
        raise DeepDreamError(f"{name} must be {what} from {low:g} to {high:g}{unit}, not {raw!r}")
    return value


@dataclass(frozen=True)
class Settings:
    """How patient a download is."""

    stall_timeout: float = 30.0  # seconds without a byte before a request is given up
    retries: int = 4  # further tries after a failure that made no progress
    retry_wait: float = 0.5  # first back-off in seconds, doubled per failure, capped at 30
    # The slowest average a whole download may have: with a grace of two stall timeouts
    # this makes the overall deadline, so a trickle cannot keep a download alive forever.
    min_rate: float = 10 * 1024.0  # bytes per second
    # The same floor on each stretch of this many seconds, so a trickle ends in two of them, whatever size
    # the server announces (the overall deadline grows with it).
    rate_window: float = 60.0

    @classmethod
    def from_env(cls) -> "Settings":
        """Defaults, overridden by DEEPDREAM_CAFFE_TIMEOUT / _RETRIES / _RETRY_WAIT / _MIN_RATE / _RATE_WINDOW."""
        return cls(
            stall_timeout=env_number(TIMEOUT_ENV, cls.stall_timeout, low=0.001, high=_DAY, unit="seconds"),
            retries=env_number(RETRIES_ENV, cls.retries, int, low=0, high=100),
            retry_wait=env_number(RETRY_WAIT_ENV, cls.retry_wait, low=0, high=3600, unit="seconds"),
            min_rate=env_number(MIN_RATE_ENV, cls.min_rate, low=1, high=1e12, unit="bytes per second"),
            rate_window=env_number(RATE_WINDOW_ENV, cls.rate_window, low=0.001, high=_DAY, unit="seconds"),
        )

    def deadline(self, expected_bytes: int) -> float:
        """Seconds a whole download of ``expected_bytes`` may take."""
        return 2 * self.stall_timeout + max(0, expected_bytes) / self.min_rate


def lock_timeout() -> float:
    """Seconds to wait for another process's lock (``DEEPDREAM_CAFFE_LOCK_TIMEOUT``, default 3600)."""
    return env_number(LOCK_TIMEOUT_ENV, 3600.0, low=0.001, high=7 * _DAY, unit="seconds")
