"""The zoo's environment settings: parsed strictly, finite, in range, defaults when unset."""
from __future__ import annotations

import pytest

from deepdream_caffe.errors import DeepDreamError
from deepdream_caffe.zoo.settings import Settings, env_number, lock_timeout


def test_defaults_and_good_values(monkeypatch):
    for var in ("TIMEOUT", "RETRIES", "RETRY_WAIT", "MIN_RATE", "RATE_WINDOW", "LOCK_TIMEOUT"):
        monkeypatch.delenv(f"DEEPDREAM_CAFFE_{var}", raising=False)
    assert Settings.from_env() == Settings(30.0, 4, 0.5, 10240.0)
    assert lock_timeout() == 3600.0
    monkeypatch.setenv("DEEPDREAM_CAFFE_TIMEOUT", " 2.5 ")
    monkeypatch.setenv("DEEPDREAM_CAFFE_RETRIES", "+7")
    monkeypatch.setenv("DEEPDREAM_CAFFE_RETRY_WAIT", "0")
    monkeypatch.setenv("DEEPDREAM_CAFFE_MIN_RATE", "1e3")
    monkeypatch.setenv("DEEPDREAM_CAFFE_RATE_WINDOW", "7")
    monkeypatch.setenv("DEEPDREAM_CAFFE_LOCK_TIMEOUT", "")  # empty means unset
    assert Settings.from_env() == Settings(2.5, 7, 0.0, 1000.0, 7.0)
    assert lock_timeout() == 3600.0
    # The overall deadline: two stall timeouts, plus the size at the minimum rate.
    assert Settings(2.5, 7, 0.0, 1000.0).deadline(4000) == 9.0


@pytest.mark.parametrize("value", ["nan", "NaN", "inf", "-inf", "1e999", "abc", "-1", "0x10", "1e6", "1_0"])
def test_bad_values_name_the_variable(monkeypatch, value):
    monkeypatch.setenv("X_TEST", value)
    with pytest.raises(DeepDreamError) as e:
        env_number("X_TEST", 1.0, low=0.001, high=86400, unit="seconds")
    assert str(e.value) == f"X_TEST must be a number from 0.001 to 86400 seconds, not {value!r}"


@pytest.mark.parametrize("value", ["1.5", "nan", "-1", "101", "1e2", "", " "])
def test_whole_numbers(monkeypatch, value):
    monkeypatch.setenv("X_TEST", value)
    if not value.strip():
        assert env_number("X_TEST", 4, int, low=0, high=100) == 4
        return
    with pytest.raises(DeepDreamError, match="X_TEST must be a whole number from 0 to 100"):
        env_number("X_TEST", 4, int, low=0, high=100)
