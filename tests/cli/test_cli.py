"""Issue 3: the command line gives the API's bits, records its parameters, and fails cleanly."""
from __future__ import annotations

import errno
import json
import os
import resource
import shutil
import signal
import stat
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cli_util import assert_one_line_error, run_cli
from deepdream_caffe import deepdream, load_net
from deepdream_caffe.io.atomic import atomic_output, describe_os_error
from deepdream_caffe.io.hashing import sha1_file
from deepdream_caffe.io.image import encode_image, load_image, read_metadata

TINY_ARGS = ["--layer", "a/output", "--iters", "3", "--octaves", "2", "--jitter", "4"]


@pytest.fixture
def photo(tmp_path):
    p = tmp_path / "in.png"
    Image.fromarray(np.random.RandomState(0).randint(0, 256, (60, 80, 3)).astype(np.uint8)).save(p)
    return p


def _net_args(model):
    proto, weights = model
    return ["--prototxt", proto, "--weights", weights]


def test_cli_output_equals_api_output_byte_for_byte(tiny_model, photo, tmp_path):
    out = tmp_path / "out.jpg"
    r = run_cli(["dream", photo, "-o", out, "--seed", "123", "-q", *_net_args(tiny_model), *TINY_ARGS])
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""  # --quiet, and Caffe's log hidden

    net = load_net(*tiny_model, end="a/output", fast=True)
    img = deepdream(net, load_image(photo), iter_n=3, octave_n=2, end="a/output", jitter=4,
                    rng=np.random.RandomState(123))
    assert out.read_bytes() == encode_image(img, "JPEG")

    meta = json.loads((tmp_path / "out.jpg.json").read_text())
    assert meta["seed"] == 123 and meta["params"]["layer"] == "a/output" and meta["params"]["iters"] == 3
    assert meta["weights_sha1"] == sha1_file(tiny_model[1])
    assert meta["input_sha1"] == sha1_file(photo)


def test_same_seed_same_pixels_and_png_metadata(tiny_model, photo, tmp_path):
    outs = []
    for name in ("a.png", "b.png"):
        r = run_cli(["dream", photo, "-o", tmp_path / name, "--seed", "9", "-q", *_net_args(tiny_model), *TINY_ARGS])
        assert r.returncode == 0, r.stderr
        outs.append(np.asarray(Image.open(tmp_path / name)))
    assert np.array_equal(outs[0], outs[1])
    meta = read_metadata(tmp_path / "a.png")
    assert meta["seed"] == 9 and meta["tool"] == "deepdream-caffe"
    assert isinstance(meta["blas_threads"], int) and meta["blas_threads"] >= 1
    assert not (tmp_path / "a.png.json").exists()


def test_metadata_records_the_blas_thread_count_and_kernel_that_decide_the_bits(tiny_model, photo, tmp_path):
    r = run_cli(["dream", photo, "-o", tmp_path / "one.png", "--seed", "9", "-q", *_net_args(tiny_model), *TINY_ARGS],
                env={"OPENBLAS_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stderr
    meta = read_metadata(tmp_path / "one.png")
    assert meta["blas_threads"] == 1
    assert isinstance(meta["blas_core"], str) and meta["blas_core"]
    assert meta["blas_core_reason"] in ("detected", "project") or "OPENBLAS_CORETYPE" in os.environ
    # Debian's OpenBLAS picks its kernels per CPU at load time; forcing a family must show in the
    # record, and why; --verbose says it too.
    r = run_cli(["dream", photo, "-o", tmp_path / "two.png", "--seed", "9", "-v", *_net_args(tiny_model), *TINY_ARGS],
                env={"OPENBLAS_CORETYPE": "Nehalem"})
    assert r.returncode == 0, r.stderr
    meta = read_metadata(tmp_path / "two.png")
    assert meta["blas_core"] == "Nehalem" and meta["blas_core_reason"] == "user"
    assert "OpenBLAS kernels: Nehalem (OPENBLAS_CORETYPE=Nehalem set by the user), " in r.stderr


def test_without_seed_a_seed_is_chosen_reported_and_recorded(tiny_model, photo, tmp_path):
    r = run_cli(["dream", photo, "-o", tmp_path / "o.png", *_net_args(tiny_model), *TINY_ARGS])
    assert r.returncode == 0, r.stderr
    seed = read_metadata(tmp_path / "o.png")["seed"]
    assert f"--seed {seed}" in r.stderr
    r2 = run_cli(["dream", photo, "-o", tmp_path / "p.png", "--seed", seed, "-q", *_net_args(tiny_model), *TINY_ARGS])
    assert r2.returncode == 0
    assert np.array_equal(np.asarray(Image.open(tmp_path / "o.png")), np.asarray(Image.open(tmp_path / "p.png")))


def test_progress_bar_names_octave_and_step(tiny_model, photo, tmp_path):
    r = run_cli(["dream", photo, "-o", tmp_path / "o.png", "--seed", "1", *_net_args(tiny_model), *TINY_ARGS])
    assert r.returncode == 0
    assert "octave 2/2" in r.stderr and "step 3/3" in r.stderr and "100%" in r.stderr


def test_layers_lists_names_and_shapes(googlenet_model):
    r = run_cli(["layers", "--prototxt", googlenet_model[0], "--size", "224x224"])
    assert r.returncode == 0, r.stderr
    line = next(ln for ln in r.stdout.splitlines() if ln.startswith("inception_4c/output "))
    assert line.split()[3:] == ["512x14x14", "(default", "--layer)"]
    assert sum("(default --layer)" in ln for ln in r.stdout.splitlines()) == 1
    assert any(ln.startswith("inception_3b/5x5_reduce ") for ln in r.stdout.splitlines())


@pytest.mark.parametrize("mode", ["L", "RGBA", "I;16", "P", "LA"])
def test_unusual_image_modes_are_converted(tiny_model, tmp_path, mode):
    arr = np.random.RandomState(0).randint(0, 256, (40, 50, 4)).astype(np.uint8)
    im = Image.fromarray(arr, "RGBA")
    if mode == "I;16":
        im = Image.fromarray(arr[..., 0].astype(np.uint16) * 257)
    elif mode != "RGBA":
        im = im.convert(mode)
    src = tmp_path / f"in_{mode.replace(';', '')}.png"
    im.save(src)
    x = load_image(src)
    assert x.shape == (40, 50, 3) and x.dtype == np.float32 and 0 <= x.min() and x.max() <= 255
    if mode == "I;16":
        assert np.allclose(x[..., 0], arr[..., 0], atol=0.01)
    r = run_cli(["dream", src, "-o", tmp_path / "o.png", "--seed", "1", "-q", *_net_args(tiny_model), *TINY_ARGS])
    assert r.returncode == 0, r.stderr


# ---------------------------------------------------------------- bad input


def _bad(tmp_path, tiny_model, photo, *extra, out="o.png", net=True):
    args = ["dream", photo, "-o", tmp_path / out, "--seed", "1", "-q"]
    if net:
        args += _net_args(tiny_model)
    return run_cli(args + list(extra))


def test_missing_image(tiny_model, tmp_path):
    r = _bad(tmp_path, tiny_model, tmp_path / "nope.jpg", *TINY_ARGS)
    assert_one_line_error(r, "image not found")
    assert not (tmp_path / "o.png").exists()


def test_non_image_and_truncated_image(tiny_model, photo, tmp_path):
    txt = tmp_path / "notes.jpg"
    txt.write_text("hello")
    assert_one_line_error(_bad(tmp_path, tiny_model, txt, *TINY_ARGS), "not an image")
    cut = tmp_path / "cut.png"
    cut.write_bytes(photo.read_bytes()[:200])
    assert_one_line_error(_bad(tmp_path, tiny_model, cut, *TINY_ARGS), "cut.png")
    assert not (tmp_path / "o.png").exists()


def test_unknown_layer_lists_close_names(tiny_model, photo, tmp_path):
    r = _bad(tmp_path, tiny_model, photo, "--layer", "a/outptu")
    assert_one_line_error(r, "unknown layer 'a/outptu'", "a/output")


def test_blob_name_that_is_not_a_layer(tiny_model, photo, tmp_path):
    # 'conv1' is both a layer and a blob; 'a/1x1' too; use the input layer itself
    r = _bad(tmp_path, tiny_model, photo, "--layer", "data")
    assert_one_line_error(r, "data")


def test_prototxt_that_does_not_parse(tiny_model, photo, tmp_path):
    bad = tmp_path / "bad.prototxt"
    bad.write_text('name: "x"\nlayer { name: "c" type: "Convolution" bottom: "data" \n')
    r = run_cli(["dream", photo, "-o", tmp_path / "o.png", "--prototxt", bad, "--weights", tiny_model[1]])
    assert_one_line_error(r, "does not parse")


def test_prototxt_with_unknown_type_or_missing_bottom(tiny_model, photo, tmp_path):
    text = tiny_model[0].read_text()
    t1 = tmp_path / "t1.prototxt"
    t1.write_text(text.replace('type: "LRN"', 'type: "Frobnicate"'))
    assert_one_line_error(run_cli(["dream", photo, "-o", tmp_path / "o.png", "--prototxt", t1, "--weights",
                                   tiny_model[1]]), "Frobnicate")
    t2 = tmp_path / "t2.prototxt"
    t2.write_text(text.replace('bottom: "norm1" top: "pool1"', 'bottom: "norm9" top: "pool1"'))
    assert_one_line_error(run_cli(["dream", photo, "-o", tmp_path / "o.png", "--prototxt", t2, "--weights",
                                   tiny_model[1]]), "norm9")


def test_weights_that_do_not_match(tiny_model, googlenet_model, photo, tmp_path):
    r = run_cli(["dream", photo, "-o", tmp_path / "o.png", "--prototxt", tiny_model[0], "--weights",
                 googlenet_model[1], *TINY_ARGS])
    assert_one_line_error(r, "share no layer names")
    # same names, other shapes
    other = tmp_path / "other.prototxt"
    other.write_text(tiny_model[0].read_text().replace("num_output: 8", "num_output: 9"))
    r = run_cli(["dream", photo, "-o", tmp_path / "o.png", "--prototxt", other, "--weights", tiny_model[1], *TINY_ARGS])
    assert_one_line_error(r, "do not match", "conv1")
    # a layer the file lacks (Caffe would leave it random and exit 0)
    extra = tmp_path / "extra.prototxt"
    extra.write_text(tiny_model[0].read_text().replace('name: "conv1"', 'name: "conv1_new"'))
    r = run_cli(["dream", photo, "-o", tmp_path / "o.png", "--prototxt", extra, "--weights", tiny_model[1], *TINY_ARGS])
    assert_one_line_error(r, "lack 1 layer", "conv1_new")
    assert not (tmp_path / "o.png").exists()


def test_truncated_caffemodel(tiny_model, photo, tmp_path):
    cut = tmp_path / "cut.caffemodel"
    cut.write_bytes(tiny_model[1].read_bytes()[:1000])
    r = run_cli(["dream", photo, "-o", tmp_path / "o.png", "--prototxt", tiny_model[0], "--weights", cut, *TINY_ARGS])
    assert_one_line_error(r, "cut.caffemodel")
    assert r.returncode != 134


def test_gpu_on_cpu_only_caffe(tiny_model, photo, tmp_path):
    r = _bad(tmp_path, tiny_model, photo, "--gpu", *TINY_ARGS)
    assert_one_line_error(r, "GPU 0 is not usable")


def test_output_in_missing_directory_and_unknown_format(tiny_model, photo, tmp_path):
    assert_one_line_error(_bad(tmp_path, tiny_model, photo, *TINY_ARGS, out="no/such/dir/o.png"),
                          "output directory does not exist")
    assert_one_line_error(_bad(tmp_path, tiny_model, photo, *TINY_ARGS, out="o.xyz"), "image format")


def test_input_is_never_overwritten(tiny_model, photo, tmp_path):
    before = photo.read_bytes()
    r = run_cli(["dream", photo, "-o", photo, "--seed", "1", *_net_args(tiny_model), *TINY_ARGS])
    assert_one_line_error(r, "refusing to overwrite the input")
    assert photo.read_bytes() == before


def test_bad_numbers_and_usage(tiny_model, photo, tmp_path):
    assert_one_line_error(_bad(tmp_path, tiny_model, photo, "--iters", "0"), "--iters")
    assert_one_line_error(_bad(tmp_path, tiny_model, photo, "--octave-scale", "0.5"), "--octave-scale")
    assert_one_line_error(run_cli(["dream", photo]), "required", code=2)
    assert_one_line_error(run_cli(["dream", photo, "-o", tmp_path / "o.png", "--prototxt", tiny_model[0]]),
                          "--weights")


def test_too_small_image_for_layer(googlenet_model, tmp_path):
    small = tmp_path / "s.png"
    Image.fromarray(np.zeros((10, 10, 3), np.uint8)).save(small)
    r = run_cli(["dream", small, "-o", tmp_path / "o.png", *_net_args(googlenet_model)])
    assert_one_line_error(r, "too small for layer 'inception_4c/output'", "15x15")  # not Caffe's abort (134)


def test_full_disk_leaves_no_partial_output(tiny_model, photo, tmp_path):
    """A write that fails half-way (file size limit, as a full disk would) leaves nothing behind."""
    def limit():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (8000, 8000))  # the PNG is ~14 kB

    r = run_cli(["dream", photo, "-o", tmp_path / "o.png", "--seed", "1", "-q", *_net_args(tiny_model), *TINY_ARGS],
                preexec_fn=limit)
    assert_one_line_error(r, "cannot write", "o.png")
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith((".o.png", "o.png"))] == []


def test_disk_full_message():
    try:
        with open("/dev/full", "wb") as f:
            f.write(b"x" * 10)
            f.flush()
    except OSError as e:
        assert e.errno == errno.ENOSPC
        assert describe_os_error(e, Path("x.png")) == "disk full while writing x.png"
    else:
        pytest.fail("/dev/full accepted a write")


def test_sample_image_when_no_input(tiny_model, tmp_path):
    r = run_cli(["dream", "-o", tmp_path / "o.jpg", "--seed", "2", "-q", *_net_args(tiny_model), *TINY_ARGS])
    assert r.returncode == 0, r.stderr
    assert Image.open(tmp_path / "o.jpg").size == (512, 512)
    assert json.loads((tmp_path / "o.jpg.json").read_text())["input"] == "skimage.data.astronaut"


def test_prototxt_on_disk_is_never_modified(tiny_model, photo, tmp_path):
    proto = tmp_path / "deploy.prototxt"
    shutil.copy(tiny_model[0], proto)
    before = proto.read_bytes()
    r = run_cli(["dream", photo, "-o", tmp_path / "o.png", "--seed", "1", "-q", "--prototxt", proto, "--weights",
                 tiny_model[1], *TINY_ARGS])
    assert r.returncode == 0, r.stderr
    assert proto.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["deploy.prototxt", "in.png", "o.png"])


def test_outputs_get_the_permissions_a_plain_write_would_give(tmp_path):
    """Atomic writes go through mkstemp, which makes files owner-only; the result must not stay so."""
    old = os.umask(0o022)
    try:
        with atomic_output(tmp_path / "new.jpg") as f:
            f.write(b"x")
        assert stat.S_IMODE((tmp_path / "new.jpg").stat().st_mode) == 0o644
        os.umask(0o077)
        with atomic_output(tmp_path / "private.jpg") as f:
            f.write(b"x")
        assert stat.S_IMODE((tmp_path / "private.jpg").stat().st_mode) == 0o600
    finally:
        os.umask(old)
    # Rewriting a file keeps the mode its owner gave it.
    os.chmod(tmp_path / "new.jpg", 0o640)
    with atomic_output(tmp_path / "new.jpg") as f:
        f.write(b"y")
    assert stat.S_IMODE((tmp_path / "new.jpg").stat().st_mode) == 0o640
    assert (tmp_path / "new.jpg").read_bytes() == b"y"
