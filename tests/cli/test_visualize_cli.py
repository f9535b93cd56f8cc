"""``deepdream-caffe visualize`` on the tiny net: output and record, labels, resume key, bad input; and
``dream`` pointing a classifier layer at it."""
from __future__ import annotations

import numpy as np
from PIL import Image

from cli_util import assert_one_line_error, run_cli
from deepdream_caffe.cli.main import main
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


def test_visualize_a_channel_a_neuron_and_a_class_from_noise_with_lucids_options(tiny_model, tmp_path):
    out = tmp_path / "ch.png"
    args = ["visualize", "--channel", "a/output:5", "-o", str(out), *_net(tiny_model), "--iters", "8", "--seed", "2"]
    r = run_cli(args)
    assert r.returncode == 0, r.stderr
    img = load_image(out)
    assert img.shape == (32, 32, 3) and img.std() > 0
    meta = read_metadata(out)
    p = meta["params"]
    assert (p["mode"], p["unit"], p["layer"], p["channel"], p["class"]) == ("optvis", "channel", "a/output", 5, None)
    assert (p["optvis"]["param"], p["optvis"]["decorrelate"], p["optvis"]["transforms"]) == ("fft", True, "standard")
    assert [t["name"] for t in p["optvis"]["transform_list"]] == ["Pad", "Jitter", "RandomScale", "RandomRotate",
                                                                  "Jitter"]
    assert len(p["optvis"]["color_matrix"]) == 3 and meta["seed"] == 2
    assert meta["visualize"]["scores"][0]["last"] > meta["visualize"]["scores"][0]["first"]
    again = tmp_path / "again.png"
    assert main([*args[:4], str(again), *args[5:], "-q"]) == 0  # the rest in-process
    assert np.array_equal(load_image(again), img)
    assert main(["visualize", "--neuron", "a/output:5", "-o", str(tmp_path / "n.png"), *_net(tiny_model), "--iters",
                 "4", "--param", "pixel", "--no-decorrelate", "--transforms", "none", "--size", "40", "36", "-q"]) == 0
    p = read_metadata(tmp_path / "n.png")["params"]
    assert (p["unit"], p["size"], p["optvis"]["param"], p["optvis"]["decorrelate"], p["optvis"]["transform_list"]) == \
        ("neuron", [40, 36], "pixel", False, [])
    assert load_image(tmp_path / "n.png").shape == (36, 40, 3)
    assert main(["visualize", "--class", "3", "-o", str(tmp_path / "k.png"), *_net(tiny_model), "--iters", "4",
                 "--param", "fft", "-q"]) == 0
    meta = read_metadata(tmp_path / "k.png")
    assert (meta["params"]["mode"], meta["params"]["class"], meta["params"]["unit"]) == ("optvis", 3, "class")
    assert meta["visualize"]["expression"] == "class_score('fc', 3)"


def test_bad_units_and_optvis_settings_are_one_line_before_any_work(tiny_model, tmp_path, capfd):
    out = str(tmp_path / "a.png")
    assert_one_line_error(run_cli(["visualize", "--channel", "a/output:99", "-o", out, *_net(tiny_model)]),
                          "99 is out of range", "12 channels")  # the console script itself; the rest in-process
    for extra, fragments, code in ((["--channel", "nope:1"], ("nope",), 1),
                                   (["--neuron", "a/output:12"], ("12 is out of range",), 1),
                                   (["--channel", "a/output"], ("--channel must be LAYER:C",), 1),
                                   (["--channel", "a/output:1", "--size", "1", "1"], ("too small for layer",), 1),
                                   (["--channel", "a/output:1", "--step-size", "2"], ("--step-size", "Simonyan"), 1),
                                   (["--class", "1", "--param", "fft", "--init", "noise"], ("--init",), 1),
                                   (["--channel", "a/output:1", "--layer", "fc"], ("--layer",), 1),
                                   (["--channel", "a/output:1", "--learning-rate", "-1"], ("--learning-rate",), 1),
                                   (["--class", "1", "--param", "wavelet"], ("--param",), 2),
                                   (["--class", "1", "--channel", "a/output:1"], ("--channel",), 2)):
        try:
            rc = main(["visualize", *extra, "-o", out, *_net(tiny_model)])
        except SystemExit as e:  # argparse's own refusals
            rc = e.code
        err = capfd.readouterr().err
        lines = [ln for ln in err.splitlines() if ln.strip()]
        assert rc == code and len(lines) == 1 and "Traceback" not in err, (extra, err)
        assert all(f in lines[0] for f in fragments), (extra, lines[0])
    assert not (tmp_path / "a.png").exists()
