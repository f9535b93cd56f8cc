"""`atlas`: a tile per dreamable layer, links that resolve, commands that remake each image, resuming, bad input.

The atlas is made by the real console script on a LocalCluster of one
worker (the tiny net, a 48x40 image, 1 octave, 2 steps). The browser test
opens it in headless Chromium (Debian's chromium and chromium-driver).
"""
from __future__ import annotations

import functools
import os
import shutil
import threading
from html.parser import HTMLParser
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cli_util import assert_one_line_error, run_cli
from deepdream_caffe.app.layers import layer_table
from deepdream_caffe.app.netspec import NetSource
from deepdream_caffe.dream.transform import preprocess
from deepdream_caffe.io.image import read_metadata, sample_image
from deepdream_caffe.net.loading import load_net

FAST = ["--octaves", "1", "--iters", "2", "--workers", "1"]
CHANNEL_LAYERS = ("conv1", "norm1")  # channels 0 and 1 of these are alive on the test image


class Links(HTMLParser):
    """Every href and src of a page, and its tiles' commands."""

    def __init__(self) -> None:
        super().__init__()
        self.links, self.commands, self.tiles, self._code = [], [], 0, False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.links += [a[k] for k in ("href", "src") if k in a]
        self.tiles += tag == "figure"
        self._code = tag == "code"

    def handle_data(self, data):
        if self._code and data.startswith("OMP_NUM_THREADS"):
            self.commands.append(data)

    def handle_endtag(self, tag):
        self._code = False


def parse(page: Path) -> Links:
    p = Links()
    p.feed(page.read_text())
    return p


def tiny_net_args(model):
    proto, weights = model
    return ["--prototxt", str(proto), "--weights", str(weights)]


@pytest.fixture(scope="module")
def atlas(tiny_model, tmp_path_factory):
    d = tmp_path_factory.mktemp("atlas")
    image = d / "photo.png"
    Image.fromarray(np.random.RandomState(0).randint(0, 256, (40, 48, 3), dtype=np.uint8)).save(image)
    site = d / "site"
    r = run_cli(["atlas", *tiny_net_args(tiny_model), "--image", image, "-o", site, *FAST], timeout=300)
    assert r.returncode == 0, r.stderr
    layered = d / "layered"
    r = run_cli(["atlas", *tiny_net_args(tiny_model), "--image", image, "-o", layered, *FAST,
                 "--layers", ",".join(reversed(CHANNEL_LAYERS)), "--channels", "2"], timeout=300)
    assert r.returncode == 0, r.stderr
    return image, site, layered


def test_every_dreamable_layer_has_a_tile_in_net_order_and_every_link_resolves(atlas, tiny_model):
    image, site, layered = atlas
    rows, _ = layer_table(NetSource(prototxt=tiny_model[0], weights=tiny_model[1]), 40, 48)
    dreamable = [r for r in rows if r.dream == "yes"]
    html = (site / "index.html").read_text()
    names = [line.split('"name">')[1].split("<")[0] for line in html.splitlines() if 'class="name"' in line]
    assert names == [r.name for r in dreamable]
    for r in dreamable:  # its output shape, C x H x W at the image's size
        assert f'{r.name}</span> <span class="shape">{"×".join(map(str, r.shapes[0]))}</span>' in html
    pages = [site / "index.html", layered / "index.html", *layered.glob("layers/*.html")]
    assert sorted(p.name for p in layered.glob("layers/*.html")) == sorted(f"{n}.html" for n in CHANNEL_LAYERS)
    for page in pages:
        links = parse(page).links
        assert links
        for link in links:
            assert (page.parent / link).is_file(), (page, link)
    for thumb in site.glob("thumbs/*.jpg"):
        assert thumb.stat().st_size < 64_000
    # A layer page shows its first --channels channels, each with its command.
    page = parse(layered / "layers" / "conv1.html")
    assert page.tiles == 2 and [c.split()[-1] for c in page.commands] == ["conv1:0", "conv1:1"]


def test_strongest_channels_are_those_of_largest_mean_activation_on_the_image(atlas, tiny_model, tmp_path):
    image = atlas[0]
    layers = ["a/relu_1x1", "a/output"]  # channel 1 of a/relu_1x1 is zero on this image: the first 2 would fail
    r = run_cli(["atlas", *tiny_net_args(tiny_model), "--image", image, "-o", tmp_path / "site", *FAST,
                 "--layers", ",".join(layers), "--channels", "2", "--strongest"], timeout=300)
    assert r.returncode == 0, r.stderr
    # pycaffe's own forward pass to each layer, on the image as the dream preprocesses it.
    dnet = load_net(*tiny_model, end=layers)
    img = np.float32(Image.open(image))
    dnet.net.blobs["data"].reshape(1, 3, *img.shape[:2])
    dnet.net.blobs["data"].data[0] = preprocess(dnet, img)
    for layer, top in zip(layers, ["a/1x1", "a/output"]):
        dnet.net.forward(end=layer)
        means = dnet.net.blobs[top].data[0].mean(axis=(1, 2))
        shown = parse(tmp_path / "site" / "layers" / f"{layer.replace('/', '_')}.html").commands
        chosen = [int(c.rsplit(":", 1)[1]) for c in shown]
        assert len(chosen) == 2 and min(means[chosen]) >= max(np.delete(means, chosen)), (layer, means, chosen)


def test_each_shown_command_remakes_its_image_bit_for_bit(atlas, tmp_path):
    _, site, layered = atlas
    shown = parse(site / "index.html").commands + parse(layered / "layers" / "norm1.html").commands
    checked = 0
    for out in [site / "images" / "photo.layer-a_output.jpg", layered / "images" / "photo.channel-norm1_1.jpg"]:
        rec = read_metadata(out)["batch"]["reproduce"]
        assert rec["command"] in shown
        argv = list(rec["argv"])
        argv[argv.index("-o") + 1] = str(tmp_path / out.name)
        r = run_cli(argv[1:], env=rec["env"], timeout=120)
        assert r.returncode == 0, r.stderr
        assert (tmp_path / out.name).read_bytes() == out.read_bytes(), out.name
        checked += 1
    assert checked == 2


def test_a_rerun_dreams_nothing_and_touches_nothing(atlas, tiny_model):
    image, site, _ = atlas
    before = {p: p.stat().st_mtime_ns for p in site.rglob("*")}
    r = run_cli(["atlas", *tiny_net_args(tiny_model), "--image", image, "-o", site, *FAST], timeout=300)
    assert r.returncode == 0, r.stderr
    assert "nothing to dream" in r.stderr and "0 made" in r.stderr
    assert {p: p.stat().st_mtime_ns for p in site.rglob("*")} == before


def test_bad_input_is_one_line_and_writes_nothing(tiny_model, tmp_path):
    image = tmp_path / "photo.png"
    Image.fromarray(np.full((40, 48, 3), 128, np.uint8)).save(image)
    a_file = tmp_path / "file"
    a_file.write_text("not a folder\n")
    r = run_cli(["atlas", *tiny_net_args(tiny_model), "--image", image, "-o", a_file, *FAST])
    assert_one_line_error(r, "is not a folder")
    assert a_file.read_text() == "not a folder\n"

    r = run_cli(["atlas", *tiny_net_args(tiny_model), "--image", image, "-o", tmp_path / "a", *FAST,
                 "--layers", "conv1,a/outptu,pool3"])
    assert_one_line_error(r, "no layer named a/outptu, pool3", "close: ", "a/output", "pool1")

    # Every layer after an InnerProduct: only the net's own 32x32 input, not this 48x40 image.
    proto = tmp_path / "classifier.prototxt"
    proto.write_text('name: "c" input: "data" input_shape { dim: 1 dim: 3 dim: 32 dim: 32 }\n'
                     'layer { name: "fc" type: "InnerProduct" bottom: "data" top: "fc"\n'
                     '  inner_product_param { num_output: 4 } }\n')
    r = run_cli(["atlas", "--prototxt", proto, "--weights", tiny_model[1], "--image", image, "-o", tmp_path / "b",
                 *FAST])
    assert_one_line_error(r, "no layer of this net can be dreamed at 48x40 (fixed-size)")
    # Two layers whose names make the same file name.
    clash = tmp_path / "clash.prototxt"
    clash.write_text('name: "c" input: "data" input_shape { dim: 1 dim: 3 dim: 32 dim: 32 }\n' + "".join(
        f'layer {{ name: "{n}" type: "Convolution" bottom: "{b}" top: "{n}" '
        'convolution_param { num_output: 2 kernel_size: 3 } }\n' for n, b in (("x/y", "data"), ("x_y", "x/y"))))
    r = run_cli(["atlas", "--prototxt", clash, "--weights", tiny_model[1], "--image", image, "-o", tmp_path / "d",
                 *FAST])
    assert_one_line_error(r, "two layers of this net would write the same file name")
    for flags, line in ((["--layer", "conv1"], "pick them with --layers"), (["--guide", image], "unguided"),
                        (["--layers", "every:0"], "K >= 1")):
        r = run_cli(["atlas", *tiny_net_args(tiny_model), "--image", image, "-o", tmp_path / "c", *FAST, *flags])
        assert_one_line_error(r, line)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clash.prototxt", "classifier.prototxt", "file",
                                                               "photo.png"]


def test_without_an_image_the_sample_photo_is_written_and_named_by_the_commands(tiny_model, tmp_path):
    r = run_cli(["atlas", *tiny_net_args(tiny_model), "-o", tmp_path / "site", "--layers", "conv1", *FAST])
    assert r.returncode == 0, r.stderr
    sample = tmp_path / "site" / "sample.png"
    assert np.array_equal(np.float32(Image.open(sample)), sample_image())
    argv = read_metadata(tmp_path / "site" / "images" / "sample.layer-conv1.jpg")["batch"]["reproduce"]["argv"]
    assert argv[2] == str(sample)


@pytest.mark.requires_caffe
def test_open_nsfw_atlas_of_three_layers(open_nsfw_model, tmp_path):
    image = tmp_path / "photo.png"
    Image.fromarray(np.random.RandomState(1).randint(0, 256, (64, 80, 3), dtype=np.uint8)).save(image)
    layers = ["conv_1", "eltwise_stage1_block0", "relu_stage3_block2"]
    r = run_cli(["atlas", "--model", "open_nsfw", "--image", image, "-o", tmp_path / "site", *FAST,
                 "--layers", ",".join(layers)], timeout=600)
    assert r.returncode == 0, r.stderr
    page = parse(tmp_path / "site" / "index.html")
    assert page.tiles == 3 and all((tmp_path / "site" / link).is_file() for link in page.links)
    out = tmp_path / "site" / "images" / "photo.layer-eltwise_stage1_block0.jpg"
    rec = read_metadata(out)["batch"]["reproduce"]
    assert rec["command"] in page.commands
    argv = list(rec["argv"])
    argv[argv.index("-o") + 1] = str(tmp_path / "again.jpg")
    r = run_cli(argv[1:], env=rec["env"], timeout=300)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "again.jpg").read_bytes() == out.read_bytes()


def _chromium():
    webdriver = pytest.importorskip("selenium.webdriver")
    binary, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (binary and driver):
        if os.environ.get("CI"):
            pytest.fail("chromium and chromium-driver are missing (scripts/setup.sh installs them)")
        pytest.skip("chromium and chromium-driver are not installed (scripts/setup.sh installs them)")
    opts = webdriver.ChromeOptions()
    opts.binary_location = binary
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--force-device-scale-factor=1",
                "--window-size=1280,2400", "--allow-file-access-from-files"):
        opts.add_argument(arg)
    return webdriver.Chrome(service=webdriver.ChromeService(executable_path=driver), options=opts)


def test_the_index_renders_in_a_real_browser_with_every_tile_drawn(atlas, tmp_path):
    _, site, layered = atlas
    tiles = parse(site / "index.html").tiles
    browser = _chromium()
    try:
        browser.get((site / "index.html").as_uri())
        assert len(browser.find_elements("css selector", "figure.tile")) == tiles == 10
        widths = browser.execute_script(
            "return Array.from(document.images).map(i => i.complete ? i.naturalWidth : 0)")
        assert len(widths) == tiles and all(w > 0 for w in widths), widths
        boxes = browser.execute_script(
            "return Array.from(document.images).map(i => {const r = i.getBoundingClientRect();"
            " return [r.left, r.top, r.right, r.bottom]})")
        shot = tmp_path / "atlas.png"
        assert browser.save_screenshot(str(shot))
        # The same site through `python -m http.server`'s handler: a layer page and its way back.
        handler = functools.partial(SimpleHTTPRequestHandler, directory=str(layered))
        with ThreadingHTTPServer(("127.0.0.1", 0), handler) as server:
            threading.Thread(target=server.serve_forever, daemon=True).start()
            try:
                browser.get(f"http://127.0.0.1:{server.server_port}/layers/norm1.html")
                widths = browser.execute_script("return Array.from(document.images).map(i => i.naturalWidth)")
                assert len(widths) == 2 and all(w > 0 for w in widths), widths
                browser.find_element("link text", "deploy.prototxt").click()
                assert browser.current_url.endswith("/index.html")
                assert len(browser.find_elements("css selector", "figure.tile")) == len(CHANNEL_LAYERS)
            finally:
                server.shutdown()
    finally:
        browser.quit()
    pixels = np.asarray(Image.open(shot).convert("RGB"), dtype=np.float64)
    for left, top, right, bottom in boxes:
        assert right - left > 100 and bottom <= pixels.shape[0], (left, top, right, bottom)
        box = pixels[int(top) + 2:int(bottom) - 2, int(left) + 2:int(right) - 2]
        assert box.std() > 5, (left, top)  # a dream, not a blank box
