"""--max-size, --lap-levels, --preserve-colors and channel picks through the app: what they do, recorded, resumed."""
from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
from PIL import Image

from app_util import DiesAt
from deepdream_caffe import load_net
from deepdream_caffe.app import DreamConfig, DreamSession, NetSource, ZoomConfig, dream_file, zoom_file
from deepdream_caffe.app.video import VideoConfig, video_file
from deepdream_caffe.dream.keyframes import Keyframes
from deepdream_caffe.dream.params import Ascent, Lbfgs, Octaves
from deepdream_caffe.dream.transform import preprocess
from deepdream_caffe.errors import DeepDreamError, SettingError
from deepdream_caffe.io.image import load_image, read_metadata
from deepdream_caffe.net.access import input_blob

END = "a/output"  # 12 channels


def _photo(path, h=40, w=56, seed=0):
    Image.fromarray(np.random.RandomState(seed).randint(0, 256, (h, w, 3)).astype(np.uint8)).save(path)
    return path


def _config(tiny_model, **kw):
    ascent = Ascent(iter_n=2, jitter=4, **{k: kw.pop(k) for k in ("lap_levels", "preserve_colors") if k in kw})
    kw.setdefault("layer", None if "picks" in kw or "channels" in kw else END)
    return DreamConfig(net=NetSource(prototxt=tiny_model[0], weights=tiny_model[1]), solver=ascent,
                       octaves=Octaves(2), **kw)




# ---------------------------------------------------------------- max size


def test_max_size_brings_the_long_side_down_for_dream_zoom_and_video(tiny_model, tmp_path):
    src = _photo(tmp_path / "in.png", 40, 56)
    cfg = _config(tiny_model, seed=1, max_size=42)
    out = dream_file(src, tmp_path / "o.png", cfg)
    assert out.image.shape == (30, 42, 3) and Image.open(tmp_path / "o.png").size == (42, 30)
    assert read_metadata(tmp_path / "o.png")["params"]["max_size"] == 42
    # An image within the size is dreamed as it is, bit for bit as without the option.
    same = dream_file(src, tmp_path / "same.png", replace(cfg, max_size=56)).image
    assert np.array_equal(same, dream_file(src, tmp_path / "plain.png", replace(cfg, max_size=None)).image)
    assert "max_size" not in read_metadata(tmp_path / "plain.png")["params"]  # off: the record as before

    zoom_file(src, tmp_path / "z", replace(cfg, solver=Ascent(iter_n=1), octaves=Octaves(1)), ZoomConfig(frames=2))
    assert Image.open(tmp_path / "z" / "0001.jpg").size == (42, 30)
    assert json.loads((tmp_path / "z" / "zoom.json").read_text())["params"]["max_size"] == 42

    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(2):
        _photo(frames / f"{i}.png", 40, 56, seed=i)
    video_file(frames, tmp_path / "v", replace(cfg, solver=Ascent(iter_n=1), octaves=Octaves(1)),
               VideoConfig(flow="none"))
    assert sorted(Image.open(p).size for p in (tmp_path / "v").glob("*.png")) == [(42, 30)] * 2
    assert json.loads((tmp_path / "v" / "video.json").read_text())["params"]["size"] == [42, 30]


# ---------------------------------------------------------------- lap levels and preserve colors


@pytest.mark.parametrize("option", [dict(lap_levels=3), dict(preserve_colors=True), dict(max_size=48)])
def test_each_option_is_recorded_keys_the_resume_and_resumes_to_the_same_pixels(tiny_model, tmp_path, option):
    src = _photo(tmp_path / "in.png", 48, 56)
    cfg = replace(_config(tiny_model, seed=3, **option), octaves=Octaves(3))
    whole = dream_file(src, tmp_path / "whole.png", cfg)
    (key, value), = option.items()
    assert read_metadata(tmp_path / "whole.png")["params"][key] == value
    plain = dream_file(src, tmp_path / "plain.png", replace(cfg, solver=Ascent(iter_n=2, jitter=4), max_size=None))
    assert not np.array_equal(whole.image[:plain.image.shape[0], :plain.image.shape[1]], plain.image)

    with pytest.raises(KeyboardInterrupt):
        dream_file(src, tmp_path / "cut.png", cfg, reporter=DiesAt(last=2))
    rep = DiesAt(last=99)
    again = dream_file(src, tmp_path / "cut.png", cfg, reporter=rep)
    assert any("resumed after octave 2" in n for n in rep.notes)
    assert np.array_equal(again.image, whole.image)
    # A state left by a run without the option is not picked up by one with it.
    with pytest.raises(KeyboardInterrupt):
        dream_file(src, tmp_path / "other.png", replace(cfg, solver=Ascent(iter_n=2, jitter=4), max_size=None),
                   reporter=DiesAt(last=2))
    rep = DiesAt(last=99)
    dream_file(src, tmp_path / "other.png", cfg, reporter=rep)
    assert not any("resumed" in n for n in rep.notes)


# ---------------------------------------------------------------- channel picks


def _channel_means(tiny_model, img):
    """Each channel's mean activation at END, computed here with pycaffe directly."""
    net = load_net(*tiny_model, end=END, fast=True)
    x = preprocess(net, img)
    input_blob(net.net).reshape(1, *x.shape)
    input_blob(net.net).data[0] = x
    net.net.forward(end=END)
    return net.net.blobs[END].data[0].mean(axis=(1, 2))


def test_strongest_picks_the_channels_most_active_on_the_input_and_records_them(tiny_model, tmp_path):
    src = _photo(tmp_path / "in.png", 40, 48)
    means = _channel_means(tiny_model, load_image(src))
    want = sorted(range(len(means)), key=lambda c: -means[c])[:3]
    dream_file(src, tmp_path / "o.png", _config(tiny_model, seed=1, picks=((END, "strongest", 3),)))
    params = read_metadata(tmp_path / "o.png")["params"]
    assert params["picks"] == [{"layer": END, "how": "strongest", "k": 3, "channels": want}]
    assert params["objective"] == " + ".join(f"channel('{END}', {c})" for c in want)
    # The same channels given by hand dream the same pixels.
    by_hand = _config(tiny_model, seed=1, channels=tuple((END, c) for c in want))
    a = load_image(tmp_path / "o.png")
    dream_file(src, tmp_path / "hand.png", by_hand)
    assert np.array_equal(a, load_image(tmp_path / "hand.png"))


def test_random_picks_draw_with_the_seed_and_resume_with_it(tiny_model, tmp_path):
    src = _photo(tmp_path / "in.png", 40, 48)
    cfg = _config(tiny_model, picks=((END, "random", 4),), layer=END)
    chosen = {}
    for seed in (1, 2):
        dream_file(src, tmp_path / f"{seed}.png", replace(cfg, seed=seed))
        chosen[seed] = read_metadata(tmp_path / f"{seed}.png")["params"]["picks"][0]["channels"]
        assert chosen[seed] == [int(c) for c in np.random.RandomState(seed).choice(12, 4, replace=False)]
    assert chosen[1] != chosen[2]
    # Without a seed, the unfinished run's seed is taken up again, and with it its channels.
    with pytest.raises(KeyboardInterrupt):
        dream_file(src, tmp_path / "cut.png", replace(cfg, octaves=Octaves(3)), reporter=DiesAt(last=2))
    rep = DiesAt(last=99)
    dream_file(src, tmp_path / "cut.png", replace(cfg, octaves=Octaves(3)), reporter=rep)
    meta = read_metadata(tmp_path / "cut.png")
    assert any("resumed after octave 2" in n for n in rep.notes)
    assert meta["params"]["picks"][0]["channels"] == \
        [int(c) for c in np.random.RandomState(meta["seed"]).choice(12, 4, replace=False)]


def test_a_zoom_keeps_the_channels_chosen_on_its_input(tiny_model, tmp_path):
    src = _photo(tmp_path / "in.png", 32, 32)
    cfg = replace(_config(tiny_model, seed=2, picks=((END, "strongest", 2),)), solver=Ascent(iter_n=1),
                  octaves=Octaves(1))
    zoom_file(src, tmp_path / "z", cfg, ZoomConfig(frames=2))
    means = _channel_means(tiny_model, load_image(src))
    picks = json.loads((tmp_path / "z" / "zoom.json").read_text())["params"]["picks"]
    assert picks[0]["channels"] == sorted(range(12), key=lambda c: -means[c])[:2]


@pytest.mark.parametrize("kw, fragment", [
    (dict(picks=((END, "strongest", 0),)), "picks a/output:strongest: the number of channels must be at least 1"),
    (dict(picks=((END, "loudest", 2),)), "choose channels by one of strongest, random"),
    (dict(max_size=0), "max_size must be at least 1"),
    (dict(picks=((END, "random", 2),), solver=Lbfgs()), "random draws with the seed, which L-BFGS has none of"),
])
def test_bad_settings_are_refused_when_made(tiny_model, kw, fragment):
    with pytest.raises(SettingError, match=fragment):
        DreamConfig(net=NetSource(prototxt=tiny_model[0], weights=tiny_model[1]), **kw)


def test_more_channels_than_the_layer_has_is_refused_when_the_net_loads(tiny_model, tmp_path):
    cfg = _config(tiny_model, seed=1, picks=((END, "strongest", 13),))
    with pytest.raises(SettingError, match="a/output:strongest=13: a/output has only 12 channels"):
        DreamSession(cfg).load()
    with pytest.raises(DeepDreamError, match="not chosen yet"):
        DreamSession(_config(tiny_model, picks=((END, "strongest", 2),))).dream(np.zeros((32, 32, 3), np.float32))


def test_lbfgs_dreams_the_strongest_channel_beside_its_layer(tiny_model, tmp_path):
    src = _photo(tmp_path / "in.png", 40, 48)
    cfg = DreamConfig(net=NetSource(prototxt=tiny_model[0], weights=tiny_model[1]), layer=END,
                      picks=((END, "strongest", 1),), solver=Lbfgs(maxiter=2), octaves=Octaves(1))
    dream_file(src, tmp_path / "o.png", cfg)
    (c,) = read_metadata(tmp_path / "o.png")["params"]["picks"][0]["channels"]
    assert read_metadata(tmp_path / "o.png")["params"]["objective"].endswith(f" + channel('{END}', {c})")
    dream_file(src, tmp_path / "hand.png", replace(cfg, picks=(), channels=((END, c),)))
    assert np.array_equal(load_image(tmp_path / "o.png"), load_image(tmp_path / "hand.png"))


def test_a_keyframed_layer_keeps_the_channels_picked_on_the_input(tiny_model, tmp_path):
    src = _photo(tmp_path / "in.png", 32, 32)
    cfg = replace(_config(tiny_model, seed=2, layer=END, picks=((END, "strongest", 2),)), solver=Ascent(iter_n=1),
                  octaves=Octaves(1))
    keys = Keyframes.from_dicts([{"frame": 1, "layer": "conv1"}])
    zoom_file(src, tmp_path / "z", cfg, ZoomConfig(frames=2, keyframes=keys))
    by_hand = replace(cfg, picks=(), channels=tuple((END, c) for c in sorted(
        range(12), key=lambda c: -_channel_means(tiny_model, load_image(src))[c])[:2]))
    zoom_file(src, tmp_path / "hand", by_hand, ZoomConfig(frames=2, keyframes=keys))
    assert [p.read_bytes() for p in sorted((tmp_path / "z").glob("*.jpg"))] == \
        [p.read_bytes() for p in sorted((tmp_path / "hand").glob("*.jpg"))]
