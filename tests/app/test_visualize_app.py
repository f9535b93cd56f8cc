"""``visualize_file``: the start images it takes, and a run cut short that resumes to the same pixels."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from deepdream_caffe.app import NetSource, Progress, Reporter
from deepdream_caffe.app.run import state_path
from deepdream_caffe.app.visualize import VisualizeConfig, visualize_file
from deepdream_caffe.dream.params import Optvis
from deepdream_caffe.errors import DeepDreamError
from deepdream_caffe.io.image import load_image, read_metadata


class Notes(Reporter):
    def __init__(self, stop_at=None):
        self.notes, self.stop_at = [], stop_at

    def note(self, message):
        self.notes.append(message)

    def progress(self, sizes, iter_n, label):
        return StopAt(self.stop_at)


class StopAt(Progress):
    """A progress display that interrupts the run at (octave, step), as Ctrl-C would."""

    def __init__(self, at):
        self.at = at

    def update(self, octave, step, extra=None):
        if (octave, step) == self.at:
            raise KeyboardInterrupt


def _config(tiny_model, **kw):
    proto, weights = tiny_model
    base = dict(klass=3, net=NetSource(prototxt=proto, weights=weights), size=(64, 48), iter_n=3, seed=1)
    return VisualizeConfig(**{**base, **kw})


def test_a_run_cut_short_resumes_after_its_last_octave_to_the_same_pixels(tiny_model, tmp_path):
    whole = tmp_path / "whole.png"
    info = visualize_file(whole, _config(tiny_model))
    assert info["octave_n"] == 2  # 48/1.4 still holds the 32x32 input: two octaves, upward
    cut = tmp_path / "cut.png"
    with pytest.raises(KeyboardInterrupt):
        visualize_file(cut, _config(tiny_model), reporter=Notes(stop_at=(1, 1)))
    assert not cut.exists() and state_path(cut).exists()
    rep = Notes()
    again = visualize_file(cut, _config(tiny_model), reporter=rep)
    assert again["resumed_after_octave"] == 1 and any("resumed after octave 1" in n for n in rep.notes)
    assert np.array_equal(load_image(cut), load_image(whole)) and not state_path(cut).exists()
    # Another setting is another run: it starts afresh rather than taking the saved octave.
    with pytest.raises(KeyboardInterrupt):
        visualize_file(cut.with_name("c2.png"), _config(tiny_model), reporter=Notes(stop_at=(1, 0)))
    other = visualize_file(cut.with_name("c2.png"), _config(tiny_model, score="log-softmax"))
    assert "resumed_after_octave" not in other


def test_noise_and_an_image_as_the_start(tiny_model, tmp_path):
    zero = visualize_file(tmp_path / "zero.png", _config(tiny_model, iter_n=1))
    noise = visualize_file(tmp_path / "noise.png", _config(tiny_model, iter_n=1, init="noise"))
    photo = tmp_path / "start.png"
    rs = np.random.RandomState(2)
    Image.fromarray(rs.randint(0, 256, (30, 50, 3)).astype(np.uint8)).save(photo)  # another size: resized
    image = visualize_file(tmp_path / "image.png", _config(tiny_model, iter_n=1, init=photo))
    outs = [load_image(tmp_path / f"{n}.png") for n in ("zero", "noise", "image")]
    assert all(o.shape == (48, 64, 3) for o in outs)
    assert not np.array_equal(outs[0], outs[1]) and not np.array_equal(outs[0], outs[2])
    assert len({i["scores"][0][0] for i in (zero, noise, image)}) == 3  # three different starts
    meta = read_metadata(tmp_path / "image.png")
    assert meta["params"]["init"] == str(photo) and meta["input_sha1"]
    assert read_metadata(tmp_path / "noise.png")["params"]["init"] == "noise"


def test_a_unit_takes_lucids_settings_and_refuses_simonyans_in_one_line():
    cfg = VisualizeConfig(channel="a/output:5")
    assert (cfg.klass, cfg.optvis, cfg.mode, cfg.unit()) == (None, Optvis(), "optvis", ("channel", "a/output:5"))
    assert VisualizeConfig(klass=3, optvis=Optvis(param="pixel")).mode == "optvis"
    assert VisualizeConfig(klass=3).mode == "ascent"
    for kw, words in ((dict(channel="a/output:5", step_size=2.0), "step_size is for"),
                      (dict(klass=3, optvis=Optvis(), init="noise"), "init is for"),
                      (dict(klass=3, optvis=Optvis(), octave_n=2), "octave_n is for"),
                      (dict(channel="a/output:5", neuron="a/output:5"), "not both"),
                      (dict(neuron="a/output"), "neuron must be LAYER:C"),
                      (dict(channel="a/output:5", layer="fc"), "layer is for a class")):
        with pytest.raises(DeepDreamError, match=words):
            VisualizeConfig(**kw)
    with pytest.raises(DeepDreamError, match="param must be"):
        Optvis(param="wavelet")


def test_a_unit_cut_short_resumes_after_its_last_block_of_steps_to_the_same_pixels(tiny_model, tmp_path):
    cfg = _config(tiny_model, klass=None, channel="a/output:5", size=None, iter_n=120)
    whole = tmp_path / "whole.png"
    first = visualize_file(whole, cfg)
    assert first["resumed_after_step"] is None
    cut = tmp_path / "cut.png"
    with pytest.raises(KeyboardInterrupt):
        visualize_file(cut, cfg, reporter=Notes(stop_at=(0, 75)))  # blocks of 50 steps: 50 kept
    assert not cut.exists() and state_path(cut).exists()
    rep = Notes()
    again = visualize_file(cut, cfg, reporter=rep)
    assert again["final_score"] == first["final_score"]  # the same run to the last bit, not only in 8-bit pixels
    assert again["resumed_after_step"] == 50 and any("resumed after step 50" in n for n in rep.notes), rep.notes
    assert not any("octave" in n for n in rep.notes)
    assert np.array_equal(load_image(cut), load_image(whole)) and not state_path(cut).exists()
    assert read_metadata(cut)["visualize"]["scores"][0]["steps"] == 70
