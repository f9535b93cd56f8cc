"""``deepdream-caffe visualize`` on the tiny net: output and record, labels, resume key, bad input; and
``dream`` pointing a classifier layer at it."""
from __future__ import annotations

import numpy as np
from PIL import Image

from cli_util import assert_one_line_error, run_cli
from deepdream_caffe.io.image import load_image, read_metadata


def _net(tiny_model):
    proto, weights = tiny_model
    return ["--prototxt", str(proto), "--weights", str(weights)]


def test_visualize_writes_the_class_image_with_its_record(tiny_model, tmp_path):
    out = tmp_path / "k3.png"
    r = run_cli(["visualize", "--class", "3", "-o", str(out), *_net(tiny_model), "--iters", "5", "--seed", "1",
                 "--size", "48", "40"])
    assert r.returncode == 0, r.stderr
    img = load_image(out)
    assert img.shape == (40, 48, 3) and img.std() > 0
    meta = read_metadata(out)
    assert meta["command"] == "visualize" and meta["params"]["class"] == 3 and meta["params"]["layer"] == "fc"
    assert meta["params"]["regularizers"]["blur_sigma"] == 1.0 and meta["seed"] == 1
    assert not (tmp_path / ".k3.png.dream-state.npz").exists()
    r2 = run_cli(["visualize", "--class", "3", "-o", str(tmp_path / "again.png"), *_net(tiny_model), "--iters", "5",
                  "--seed", "1", "--size", "48", "40", "-q"])
    assert r2.returncode == 0 and np.array_equal(load_image(tmp_path / "again.png"), img)
    r3 = run_cli(["visualize", "--class", "3", "-o", str(tmp_path / "lp.png"), *_net(tiny_model), "--iters", "5",
                  "--seed", "1", "--score", "log-softmax", "-q"])
    assert r3.returncode == 0, r3.stderr
    lp = read_metadata(tmp_path / "lp.png")
    assert lp["params"]["score"] == "log-softmax" and meta["params"]["score"] == "logit"
    assert lp["visualize"]["expression"] == "class_logprob('fc', 3)"
    r4 = run_cli(["visualize", "--class", "3", "-o", str(tmp_path / "lb.png"), *_net(tiny_model), "--mode", "lbfgs",
                  "--lbfgs-iters", "4", "--seed", "1"])  # with the progress bar, which follows each iterate
    assert r4.returncode == 0, r4.stderr
    assert read_metadata(tmp_path / "lb.png")["params"]["mode"] == "lbfgs" and "score=" in r4.stderr


def test_visualize_by_label_and_bad_input_is_one_line(tiny_model, tmp_path):
    labels = tmp_path / "labels.txt"
    labels.write_text("n0001 cat, kitty\nn0002 dog\nn0003 bird\nn0004 fish\nn0005 frog\n")
    out = tmp_path / "dog.jpg"
    r = run_cli(["visualize", "--class", "Dog", "--labels", str(labels), "-o", str(out), *_net(tiny_model),
                 "--iters", "2", "--seed", "0", "-q"])
    assert r.returncode == 0, r.stderr and out.exists()
    assert_one_line_error(run_cli(["visualize", "--class", "9", "-o", str(tmp_path / "a.png"), *_net(tiny_model)]),
                          "9 is out of range")
    assert_one_line_error(run_cli(["visualize", "--class", "dog", "-o", str(tmp_path / "a.png"), *_net(tiny_model)]),
                          "no labels file")
    assert_one_line_error(run_cli(["visualize", "--class", "1", "--size", "20", "20", "-o", str(tmp_path / "a.png"),
                                   *_net(tiny_model)]), "smaller than the net's 32x32")
    assert_one_line_error(run_cli(["visualize", "--class", "1", "--decay", "2", "-o", str(tmp_path / "a.png"),
                                   *_net(tiny_model)]), "--decay")
    assert_one_line_error(run_cli(["visualize", "--class", "1", "--score", "softmax", "-o", str(tmp_path / "a.png"),
                                   *_net(tiny_model)]), "--score", "log-softmax", code=2)  # a parser error
    for flag, value in (("--momentum", "1.5"), ("--step-end", "0")):
        assert_one_line_error(run_cli(["visualize", "--class", "1", flag, value, "-o", str(tmp_path / "a.png"),
                                       *_net(tiny_model)]), flag)
    assert not (tmp_path / "a.png").exists()


def test_dream_on_a_classifier_layer_points_at_visualize(tiny_model, tmp_path):
    img = tmp_path / "in.png"
    Image.fromarray(np.full((40, 40, 3), 128, np.uint8)).save(img)
    r = run_cli(["dream", str(img), "-o", str(tmp_path / "o.png"), *_net(tiny_model), "--layer", "fc"])
    assert_one_line_error(r, "classifier layer", "visualize --class K")
