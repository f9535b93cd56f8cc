"""`batch` on a real Dask LocalCluster of 2 worker processes: plain `dream` bits, a killed worker, resuming, the sheet.

The tiny net (seeded random weights) keeps every dream short; the cluster
listens on 127.0.0.1 only. Every wait is bounded.
"""
from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cli_util import run_cli
from deepdream_caffe.app.batch import image_seed, plan_tasks, run_batch
from deepdream_caffe.app.batch.cluster import blas_split, start_cluster
from deepdream_caffe.app.batch.plan import is_finished
from deepdream_caffe.app.batch.sheet import layout, sheet_of, thumbnail
from deepdream_caffe.app.batch.worker import worker_blas_threads
from deepdream_caffe.cli.commands.batch import settings
from deepdream_caffe.cli.main import build_parser, main
from deepdream_caffe.errors import DeepDreamError
from deepdream_caffe.io.image import read_metadata


def write_inputs(folder: Path, n: int, size=(40, 48), seed: int = 0) -> list:
    folder.mkdir(parents=True, exist_ok=True)
    rs = np.random.RandomState(seed)
    paths = []
    for i in range(n):
        p = folder / f"photo{i}.png"
        Image.fromarray(rs.randint(0, 256, size + (3,), dtype=np.uint8)).save(p)
        paths.append(p)
    return paths


def batch_tasks(model, inputs, out_dir, *flags):
    """The tasks the `batch` command line would plan (its own parser and sweep code)."""
    proto, weights = model
    args = build_parser().parse_args(["batch", *map(str, inputs), "--out-dir", str(out_dir), "--prototxt",
                                      str(proto), "--weights", str(weights), *flags])
    return plan_tasks(args.inputs, settings(args), args.out_dir, args.seed, args.ext)


@pytest.fixture(scope="module")
def cluster():
    c = start_cluster(workers=2, dashboard=False)
    c.client.wait_for_workers(2, timeout=60)
    yield c
    c.close()


def test_image_seed_is_a_stable_hash_of_the_seed_and_file_name():
    # Documented: the first 4 bytes, big-endian, of SHA-256("<seed>:<file name>").
    assert image_seed(7, "im0.png") == int.from_bytes(hashlib.sha256(b"7:im0.png").digest()[:4], "big")
    assert image_seed(7, "im0.png") == 1996092045
    assert image_seed(8, "im0.png") != image_seed(7, "im0.png") != image_seed(7, "im1.png")
    assert blas_split(2, 2) == 1 and blas_split(1, 2) == 2 and blas_split(3, 2) == 1 and blas_split(2, 8) == 4


def test_batch_matches_plain_dream_commands_and_reruns_do_nothing(cluster, tiny_model, tmp_path):
    inputs = write_inputs(tmp_path / "in", 4)
    out = tmp_path / "out"
    out.mkdir()
    tasks = batch_tasks(tiny_model, inputs, out, "--layer", "a/output", "--iters", "3", "--octaves", "2",
                        "--seed", "11")
    # Each worker got its share of the cores, set before Caffe's OpenBLAS loaded there.
    assert cluster.threads == blas_split(2)
    assert set(cluster.client.run(worker_blas_threads).values()) == {cluster.threads}

    report = run_batch(tasks, cluster.client)
    assert report.ok, report.failure_lines()
    assert sorted(report.results) == [0, 1, 2, 3] and not report.skipped
    # Each worker process loaded the net once and reused it for its other tasks.
    loads = Counter(r.pid for r in report.results.values() if r.net_loaded)
    assert set(loads.values()) == {1}
    assert set(loads) == {r.pid for r in report.results.values()}

    commands = []
    for t in tasks:
        meta = read_metadata(t.output)
        assert meta["seed"] == t.seed == image_seed(11, t.input.name)
        assert meta["blas_threads"] == cluster.threads
        rec = meta["batch"]["reproduce"]
        assert rec["env"] == {"OPENBLAS_NUM_THREADS": str(cluster.threads), "OMP_NUM_THREADS": str(cluster.threads)}
        assert f"--seed {t.seed}" in rec["command"] and rec["command"] == report.results[t.index].reproduce
        argv = list(rec["argv"])
        assert argv[:2] == ["deepdream-caffe", "dream"] and argv[argv.index("-o") + 1] == str(t.output)
        argv[argv.index("-o") + 1] = str(tmp_path / f"again-{t.output.name}")
        commands.append(argv[1:])
    # The first recorded command as the console script, the others through the same main() in one process
    # (one Caffe start-up instead of three), each with the recorded environment.
    r = run_cli(commands[0], env=rec["env"], timeout=120)
    assert r.returncode == 0, r.stderr
    script = ("import json, sys\nfrom deepdream_caffe.cli.main import main\n"
              "sys.exit(max(main(a) for a in json.loads(sys.argv[1])))")
    r = subprocess.run([sys.executable, "-c", script, json.dumps(commands[1:])], capture_output=True, text=True,
                       env={**os.environ, **rec["env"]}, timeout=120)
    assert r.returncode == 0, r.stderr
    for t in tasks:  # bit for bit: the same JPEG bytes
        assert (tmp_path / f"again-{t.output.name}").read_bytes() == t.output.read_bytes(), t.name

    # Idempotent: the same batch again submits nothing; another seed is other work.
    before = {t.output: t.output.stat().st_mtime_ns for t in tasks}
    again = run_batch(tasks, cluster.client)
    assert again.ok and sorted(again.skipped) == [0, 1, 2, 3] and not again.results
    assert {t.output: t.output.stat().st_mtime_ns for t in tasks} == before
    other = batch_tasks(tiny_model, inputs, out, "--layer", "a/output", "--iters", "3", "--octaves", "2",
                        "--seed", "12")
    assert not any(is_finished(t) for t in other)  # same files, other recorded parameters


def test_a_missing_output_folder_is_made_and_a_file_in_its_place_refused(cluster, tiny_model, tmp_path):
    inputs = write_inputs(tmp_path / "in", 1)
    out = tmp_path / "made" / "by" / "batch"
    tasks = batch_tasks(tiny_model, inputs, out, "--layer", "a/output", "--iters", "1", "--octaves", "1")
    assert not out.exists()  # planning writes nothing
    report = run_batch(tasks, cluster.client)
    assert report.ok and [p.name for p in out.glob("*.jpg")] == ["photo0.jpg"]
    (tmp_path / "file").write_text("not a folder\n")
    with pytest.raises(DeepDreamError, match="is not a folder"):
        batch_tasks(tiny_model, inputs, tmp_path / "file", "--iters", "1")


def test_a_killed_worker_does_not_lose_images(cluster, tiny_model, tmp_path):
    inputs = write_inputs(tmp_path / "in", 4, size=(224, 224), seed=3)
    out = tmp_path / "out"
    out.mkdir()
    tasks = batch_tasks(tiny_model, inputs, out, "--layer", "a/output", "--iters", "10", "--octaves", "3",
                        "--seed", "5")
    client = cluster.client
    box = {}
    runner = threading.Thread(target=lambda: box.update(report=run_batch(tasks, client, poll=0.1)), daemon=True)
    runner.start()
    victim = None
    deadline = time.monotonic() + 60
    while victim is None and time.monotonic() < deadline and runner.is_alive():
        busy = [w for w, keys in client.processing().items() if keys]
        if busy:
            time.sleep(0.3)  # mid-dream
            pid = client.run(os.getpid, workers=[busy[0]])[busy[0]]
            # Frozen, the worker finishes nothing more; a result it sent just before has time to land,
            # so what the scheduler still lists as its work is provably unfinished when it is killed.
            os.kill(pid, signal.SIGSTOP)
            time.sleep(0.5)
            killed = [int(str(k).split("-")[1]) for k in client.processing().get(busy[0], ())]
            if killed:
                victim = pid
            else:
                os.kill(pid, signal.SIGCONT)
        else:
            time.sleep(0.05)
    assert victim is not None, "no worker ever ran a task"
    os.kill(victim, signal.SIGKILL)
    runner.join(timeout=180)
    assert not runner.is_alive(), "the batch did not finish"
    report = box["report"]
    assert report.ok, report.failure_lines()
    assert sorted(report.results) == [0, 1, 2, 3]
    assert all(is_finished(t) for t in tasks)
    assert all(report.results[i].pid != victim for i in killed)  # its unfinished tasks were redone elsewhere
    client.wait_for_workers(2, timeout=60)  # the nanny brought the worker back
    assert victim not in client.run(os.getpid).values()
    # The killed tasks, finished elsewhere (from the state their worker left, if it saved one), have the
    # pixels of an uninterrupted plain `dream`: their recorded command, run in its own process.
    for i in killed:
        t = tasks[i]
        argv = list(read_metadata(t.output)["batch"]["reproduce"]["argv"])
        again = tmp_path / f"again-{t.output.name}"
        argv[argv.index("-o") + 1] = str(again)
        r = run_cli(argv[1:], env=read_metadata(t.output)["batch"]["reproduce"]["env"], timeout=120)
        assert r.returncode == 0, r.stderr
        assert again.read_bytes() == t.output.read_bytes(), t.name


def test_sweep_writes_each_setting_and_a_contact_sheet(cluster, tiny_model, tmp_path):
    inputs = write_inputs(tmp_path / "in", 2, size=(48, 64), seed=9)
    out = tmp_path / "out"
    out.mkdir()
    tasks = batch_tasks(tiny_model, inputs, out, "--iters", "2", "--sweep", "layer=conv1,a/output",
                        "--sweep", "octaves=1,2")
    report = run_batch(tasks, cluster.client)
    assert report.ok and len(report.results) == 8, report.failure_lines()
    names = sorted(p.name for p in out.glob("*.jpg"))
    cols = ["layer=conv1 octaves=1", "layer=conv1 octaves=2", "layer=a/output octaves=1", "layer=a/output octaves=2"]
    slugs = ["layer-conv1.octaves-1", "layer-conv1.octaves-2", "layer-a_output.octaves-1", "layer-a_output.octaves-2"]
    assert names == sorted(f"photo{i}.{s}.jpg" for i in range(2) for s in slugs)
    assert [t.setting.label for t in tasks[:4]] == cols
    for i in range(2):
        for label, slug in zip(cols, slugs):
            meta = read_metadata(out / f"photo{i}.{slug}.jpg")
            layer, octaves = label.split()[0][6:], int(label[-1])
            assert meta["batch"]["setting"] == {"layer": layer, "octaves": octaves}
            assert meta["params"]["layer"] == layer and meta["params"]["octaves"] == octaves
            assert f"--layer {layer}" in meta["batch"]["reproduce"]["command"]

    # The grid: rows are inputs, columns settings; each cell holds its own output's thumbnail.
    sheet = tmp_path / "sheet.png"
    lay = sheet_of(tasks, sheet, tile=64)
    assert lay == layout([p.name for p in inputs], [c.split(" ") for c in cols], 64)
    img = np.asarray(Image.open(sheet).convert("RGB"), dtype=np.float64)
    assert (img.shape[1], img.shape[0]) == lay.size and (lay.rows, lay.cols) == (2, 4)
    thumbs = {(i, c): np.asarray(thumbnail(out / f"photo{i}.{s}.jpg", 64), dtype=np.float64)
              for i in range(2) for c, s in enumerate(slugs)}
    for (i, c), th in thumbs.items():
        x, y, _, _ = lay.cell(i, c)
        ox, oy = x + (64 - th.shape[1]) // 2, y + (64 - th.shape[0]) // 2
        cell = img[oy:oy + th.shape[0], ox:ox + th.shape[1]]
        errs = {k: np.abs(cell - t).mean() for k, t in thumbs.items() if t.shape == th.shape}
        assert errs[(i, c)] == 0.0 and min(v for k, v in errs.items() if k != (i, c)) > 1.0  # PNG sheet: exact
    # Labels were drawn: the header row and the label column are not blank.
    assert (img[:lay.top, lay.left:] < 128).any() and (img[lay.top:, :lay.left] < 128).any()
    # A failed task gets a grey cell, not a stale picture.
    lay2 = sheet_of(tasks, sheet, tile=64, failed={0})
    x, y, x1, y1 = lay2.cell(0, 0)
    grey = np.asarray(Image.open(sheet).convert("RGB"))[y + 20:y1 - 2, x + 2:x1 - 2]
    assert (grey == 160).all()


def test_failures_are_one_line_each_and_the_others_finish(cluster, tiny_model, tmp_path):
    """The command line against a running scheduler (the shared cluster), as with a real cluster."""
    inputs = write_inputs(tmp_path / "in", 2, size=(40, 40))
    bad = tmp_path / "in" / "broken.png"
    bad.write_bytes(b"not an image")
    out = tmp_path / "out"
    out.mkdir()
    proto, weights = tiny_model
    args = ["batch", *inputs, bad, "--out-dir", out, "--prototxt", proto, "--weights", weights,
            "--layer", "a/output", "--iters", "2", "--octaves", "1", "--scheduler", cluster.client.scheduler.address]
    r = run_cli(args + ["-q"], timeout=180)
    assert r.returncode == 1, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("deepdream-caffe: failed: broken.png: "), r.stderr
    assert "Traceback" not in r.stderr
    assert sorted(p.name for p in out.glob("*.jpg")) == ["photo0.jpg", "photo1.jpg"]


def test_a_bad_layer_is_refused_before_any_cluster_starts(tiny_model, tmp_path, capsys):
    proto, weights = tiny_model
    img = write_inputs(tmp_path / "in", 1)[0]
    code = main(["batch", str(img), "--out-dir", str(tmp_path), "--prototxt", str(proto), "--weights", str(weights),
                 "--sweep", "layer=a/output,nope"])
    err = capsys.readouterr().err
    assert code == 1 and "unknown layer 'nope'" in err and len(err.strip().splitlines()) == 1, err
    assert not list(tmp_path.glob("*.jpg"))


def test_bad_sweeps_are_one_line(tmp_path, capsys):
    img = write_inputs(tmp_path, 1)[0]
    for sweep, frag in (("nope=1,2", "not a dream option"), ("octaves=3,x", "bad value"), ("layer", "OPTION=V1"),
                        ("seed=1,2", "not a dream option")):
        code = main(["batch", str(img), "--out-dir", str(tmp_path), "--sweep", sweep])
        err = capsys.readouterr().err
        assert code == 1 and frag in err and len(err.strip().splitlines()) == 1, (sweep, err)
