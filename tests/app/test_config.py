"""The app's run configuration from plain values: checked once when made, immutable (no Caffe)."""
from __future__ import annotations

import dataclasses
import inspect
from pathlib import Path

import numpy as np
import pytest

from deepdream_caffe.app import DreamConfig, NetSource, ZoomConfig
from deepdream_caffe.dream.ascent import deepdream
from deepdream_caffe.dream.params import Ascent, Lbfgs, Octaves, SettingError, Tiling
from deepdream_caffe.dream.step import make_step
from deepdream_caffe.errors import DeepDreamError


def test_errors_name_the_field_and_can_be_worded_by_the_caller():
    with pytest.raises(SettingError, match=r"^iter_n must be at least 1, got 0$") as e:
        Ascent(iter_n=0)
    assert e.value.worded(lambda field: f"--{field}") == "--iter_n must be at least 1, got 0"
    with pytest.raises(DeepDreamError, match=r"^maxiter must be at least 1"):
        DreamConfig(solver=Lbfgs(maxiter=0))
    with pytest.raises(DeepDreamError, match="solver must be an Ascent or an Lbfgs"):
        DreamConfig(solver="adam")


@pytest.mark.parametrize("make, field, value", [
    (Ascent, "iter_n", 2.5), (Ascent, "iter_n", True), (Octaves, "octave_n", "4"), (Ascent, "jitter", 1.5),
    (DreamConfig, "seed", -1), (DreamConfig, "seed", 1.0), (Octaves, "octave_scale", float("inf")),
    (Ascent, "step_size", -1.0), (DreamConfig, "quality", 0), (Tiling, "above_mp", float("nan")),
])
def test_values_of_the_wrong_kind_or_range_are_refused(make, field, value):
    with pytest.raises(DeepDreamError, match=field):
        make(**{field: value})


def test_each_mode_takes_only_its_own_settings():
    with pytest.raises(DeepDreamError, match="gain is for objective gain"):
        DreamConfig(solver=Lbfgs(gain=3.0))
    with pytest.raises(DeepDreamError, match="tile/above_mp are for mode ascent"):
        DreamConfig(solver=Lbfgs(), tiling=Tiling(tile=512))
    assert DreamConfig(solver=Lbfgs()).mode == "lbfgs" and DreamConfig().mode == "ascent"


def test_the_defaults_are_the_notebook_api_defaults_once():
    api = {**inspect.signature(make_step).parameters, **inspect.signature(deepdream).parameters}
    for obj in (Ascent(), Octaves()):
        for key, value in dataclasses.asdict(obj).items():
            assert api[key].default == value, key


def test_a_config_is_immutable_and_compares_by_value():
    cfg = DreamConfig(layer="conv1", seed=3, net=NetSource(prototxt=Path("d.prototxt"), weights=Path("w")))
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.seed = 5  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.solver.iter_n = 5  # type: ignore[misc]
    assert cfg == DreamConfig(layer="conv1", seed=3, net=NetSource(prototxt=Path("d.prototxt"), weights=Path("w")))
    changed = dataclasses.replace(cfg, solver=Ascent(iter_n=5))  # a variant is checked like any other
    assert changed.solver.iter_n == 5 and cfg.solver.iter_n == 10
    with pytest.raises(DeepDreamError, match="seed"):
        dataclasses.replace(cfg, seed=-1)


def test_plain_values_are_taken_and_stored_hashable():
    cfg = DreamConfig(solver=Ascent(iter_n=np.int64(3)), seed=np.uint32(7),
                      octaves=Octaves(octave_scale=np.float32(1.5)), guide="g.jpg",
                      net=NetSource(prototxt="d.prototxt", weights="w", mean=[1, 2, 3], channel_swap=[0, 1, 2],
                                    models_dirs=["m"]))
    assert type(cfg.solver.iter_n) is int and cfg.solver.iter_n == 3 and type(cfg.seed) is int
    assert type(cfg.octaves.octave_scale) is float and cfg.guide == Path("g.jpg")
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
    with pytest.raises(DeepDreamError, match="scale must be between -1 and 1"):
        ZoomConfig(scale=1.0)
    with pytest.raises(DeepDreamError, match="pan must be two finite numbers"):
        ZoomConfig(pan=(1.0, float("nan")))
    assert ZoomConfig(scale=-0.5, pan=[1, 2]).pan == (1.0, 2.0)
