"""The app's run configuration from plain values: checked once when made, immutable (no Caffe)."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from deepdream_caffe.app import DreamConfig, LbfgsOptions, NetSource, ZoomConfig
from deepdream_caffe.errors import DeepDreamError


def test_errors_use_the_field_names_unless_told_other_names():
    with pytest.raises(DeepDreamError, match=r"^iters must be at least 1, got 0$"):
        DreamConfig(iters=0)
    with pytest.raises(DeepDreamError, match=r"^--steps must be at least 1, got 0$"):
        DreamConfig(iters=0, names={"iters": "--steps"})
    with pytest.raises(DeepDreamError, match=r"^maxiter must be at least 1"):
        DreamConfig(mode="lbfgs", lbfgs=LbfgsOptions(maxiter=0))
    with pytest.raises(DeepDreamError, match="mode must be one of ascent, lbfgs"):
        DreamConfig(mode="adam")


@pytest.mark.parametrize("field, value", [
    ("iters", 2.5), ("iters", True), ("octaves", "4"), ("jitter", 1.5), ("seed", -1), ("seed", 1.0),
    ("octave_scale", float("inf")), ("step_size", -1.0), ("quality", 0), ("tile_above", float("nan")),
])
def test_values_of_the_wrong_kind_or_range_are_refused(field, value):
    with pytest.raises(DeepDreamError, match=field):
        DreamConfig(**{field: value})


def test_a_config_is_immutable_and_compares_by_value():
    cfg = DreamConfig(layer="conv1", seed=3, net=NetSource(prototxt=Path("d.prototxt"), weights=Path("w")))
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.iters = 5  # type: ignore[misc]
    assert cfg == DreamConfig(layer="conv1", seed=3, net=NetSource(prototxt=Path("d.prototxt"), weights=Path("w")),
                              names={"iters": "--iters"})  # how errors are worded is not part of the value
    changed = dataclasses.replace(cfg, iters=5)  # a variant is checked like any other
    assert changed.iters == 5 and cfg.iters == 10
    with pytest.raises(DeepDreamError, match="iters"):
        dataclasses.replace(cfg, iters=0)


def test_plain_values_are_taken_and_stored_hashable():
    import numpy as np

    cfg = DreamConfig(iters=np.int64(3), seed=np.uint32(7), octave_scale=np.float32(1.5), guide="g.jpg",
                      net=NetSource(prototxt="d.prototxt", weights="w", mean=[1, 2, 3], channel_swap=[0, 1, 2],
                                    models_dirs=["m"]))
    assert type(cfg.iters) is int and cfg.iters == 3 and type(cfg.seed) is int and cfg.guide == Path("g.jpg")
    assert cfg.net.prototxt == Path("d.prototxt") and cfg.net.mean == (1.0, 2.0, 3.0)
    assert cfg.net.models_dirs == (Path("m"),)
    assert hash(cfg) == hash(dataclasses.replace(cfg))


def test_net_source_refuses_contradictions():
    with pytest.raises(DeepDreamError, match="not both"):
        NetSource(model="bvlc_googlenet", prototxt=Path("p"))
    with pytest.raises(DeepDreamError, match="permutation"):
        NetSource(channel_swap=(0, 0, 1))


def test_zoom_config():
    assert (ZoomConfig().frames, ZoomConfig().scale) == (100, 0.05)
    with pytest.raises(DeepDreamError, match="frames must be at least 1"):
        ZoomConfig(frames=0)
    with pytest.raises(DeepDreamError, match="--scale must be between 0 and 1"):
        ZoomConfig(scale=1.0, names={"scale": "--scale"})
