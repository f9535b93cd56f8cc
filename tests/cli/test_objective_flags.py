"""--layer NAME[=WEIGHT] and --channel LAYER:INDEX[=WEIGHT]: parsed into the config, bad ones named (no Caffe)."""
from __future__ import annotations

import pytest

from deepdream_caffe.app.config import DreamConfig
from deepdream_caffe.cli import build_parser
from deepdream_caffe.cli.fields import worded
from deepdream_caffe.cli.options import dream_config
from deepdream_caffe.errors import DeepDreamError


def _config(*argv: str) -> DreamConfig:
    return dream_config(build_parser().parse_args(["dream", "-o", "o.png", *argv]))


def test_repeated_layers_and_channels_reach_the_config():
    cfg = _config("--layer", "inception_4c/output", "--layer", "inception_3b/output=0.5",
                  "--channel", "inception_4c/output:42=2", "--channel", "conv2/3x3:7")
    assert cfg.layer is None
    assert cfg.layers == (("inception_4c/output", 1.0), ("inception_3b/output", 0.5))
    assert cfg.channels == (("inception_4c/output", 42, 2.0), ("conv2/3x3", 7, 1.0))
    assert cfg.objective_layers("default") == cfg.layers


def test_one_plain_layer_is_the_config_it_always_was():
    assert _config("--layer", "conv2/3x3") == DreamConfig(layer="conv2/3x3")
    assert _config("--layer", "conv2/3x3=-1.5").layers == (("conv2/3x3", -1.5),)  # negative: minimised
    assert _config().objective_layers("the/default") == (("the/default", 1.0),)
    assert _config("--channel", "a:3").objective_layers("the/default") == ()  # a channel alone is dreamed alone


@pytest.mark.parametrize("argv, fragment", [
    (["--layer", "a=b"], "the weight in 'a=b' is not a number"),
    (["--layer", "=2"], "'=2' names no layer"),
    (["--layer", "a=0"], "must be a finite number other than 0"),
    (["--layer", "a=inf"], "must be a finite number other than 0"),
    (["--channel", "a"], "'a' is not LAYER:INDEX"),
    (["--channel", "a:x=2"], "'a:x=2' is not LAYER:INDEX"),
    (["--channel", "a:-1"], "'a:-1' is not LAYER:INDEX"),
    (["--channel", ":3"], "':3' is not LAYER:INDEX"),
    (["--channel", "a:3=nan"], "must be a finite number other than 0"),
])
def test_malformed_terms_are_one_line_usage_errors(argv, fragment, capsys):
    with pytest.raises(SystemExit) as e:
        build_parser().parse_args(["dream", "-o", "o.png", *argv])
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and len(err.splitlines()) == 1 and fragment in err, err


@pytest.mark.parametrize("kw, fragment", [
    (dict(layers=(("a", float("nan")),)), "--layer a: the weight must be a finite number other than 0"),
    (dict(layers=(("", 1.0),)), "--layer: a layer is named by a non-empty string"),
    (dict(layers=(("a", 1.0, 2.0),)), "--layer: give a layer name or (name, weight)"),
    (dict(channels=(("a", -1, 1.0),)), "--channel a: the channel must be a whole number >= 0"),
    (dict(channels=(("a", 1.5),)), "--channel a: the channel must be a whole number >= 0"),
    (dict(channels=(("a", 3, 0),)), "--channel a:3: the weight must be a finite number other than 0"),
    (dict(channels=("a",)), "--channel: give (layer, channel)"),
    (dict(channels=(("a", 3),), guide="g.png"), "--guide guides the --layer terms; give a --layer too"),
])
def test_the_config_checks_terms_given_through_the_api(kw, fragment):
    with pytest.raises(DeepDreamError) as e:
        DreamConfig(**kw)
    assert fragment in worded(e.value) and "\n" not in worded(e.value)  # as the command line words it
    with pytest.raises(DeepDreamError, match="^give layer or layers, not both$"):  # the API's own words
        DreamConfig(layer="a", layers=(("b", 1.0),))
    assert DreamConfig(layers=("a", ("b", 2)), channels=(("a", 3),)).layers == (("a", 1.0), ("b", 2.0))
