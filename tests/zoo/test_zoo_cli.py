"""The zoo's command line in real processes: models list/fetch/path/verify, concurrency, limits, dream offline."""
from __future__ import annotations

import re
import resource
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from deepdream_caffe.zoo import resolve_model
from zoo_helpers import one_line, run_zoo, serve_model, sha1, write_manifest


def _columns(line: str) -> list[str]:
    return re.split(r"\s{2,}", line.strip())


def test_list_fetch_path_verify(zoo_env, server, tiny_bytes):
    proto, weights = tiny_bytes
    serve_model(server, zoo_env.models, "clinet", proto, weights)
    md = ["--models-dir", str(zoo_env.models)]

    r = run_zoo(zoo_env, "list", *md)
    assert r.returncode == 0, r.stderr
    header, *rows = [_columns(line) for line in r.stdout.splitlines()]
    assert header == ["NAME", "SIZE", "CACHED", "DEFAULT LAYER", "LICENSE", "DESCRIPTION"]
    assert ["clinet", "?", "no", "a/output", "test only", "a test net"] in rows
    assert ["open_nsfw", "eltwise_stage1_block3"] == [row[i] for row in rows if row[0] == "open_nsfw" for i in (0, 3)]
    assert any(row[:2] == ["bvlc_googlenet", "~51 MB"] for row in rows)

    r = run_zoo(zoo_env, "fetch", "clinet", *md)
    assert r.returncode == 0, r.stderr
    assert "clinet: ready" in r.stdout
    assert "clinet.caffemodel" in r.stderr  # the progress bar, on stderr

    r = run_zoo(zoo_env, "list", *md)
    assert [f"{len(weights) / 1024:.1f} KB", "yes"] in [_columns(line)[1:3] for line in r.stdout.splitlines()]

    r = run_zoo(zoo_env, "path", "clinet", *md)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [str(zoo_env.model_dir("clinet") / "deploy.prototxt"),
                                     str(zoo_env.model_dir("clinet") / "clinet.caffemodel")]

    r = run_zoo(zoo_env, "verify", "clinet", *md)
    assert r.returncode == 0, r.stderr
    assert [line.split()[2] for line in r.stdout.splitlines()] == ["ok", "ok"]

    (zoo_env.model_dir("clinet") / "clinet.caffemodel").write_bytes(weights[::-1])
    r = run_zoo(zoo_env, "verify", "clinet", *md)
    assert r.returncode == 1
    assert f"MISMATCH  {zoo_env.model_dir('clinet') / 'clinet.caffemodel'}: sha1 {sha1(weights[::-1])}" in r.stdout


def test_fetch_unknown_model_and_path_of_a_missing_one(zoo_env, server, tiny_bytes):
    r = run_zoo(zoo_env, "fetch", "nope", "--quiet")
    assert r.returncode == 1 and r.stdout == ""
    line = one_line(r.stderr)
    assert line.startswith("deepdream-caffe: error: unknown model 'nope'; known models: ")
    assert "bvlc_googlenet" in line and "vgg16" in line

    proto, weights = tiny_bytes
    serve_model(server, zoo_env.models, "notyet", proto, weights)
    r = run_zoo(zoo_env, "path", "notyet", "--models-dir", str(zoo_env.models))
    assert r.returncode == 1 and "is not downloaded" in one_line(r.stderr)
    assert server.log == []  # `path` does not fetch unless asked

    # Several names: each failure is its own line and the others are still fetched.
    r = run_zoo(zoo_env, "fetch", "nope", "notyet", "--quiet", "--models-dir", str(zoo_env.models))
    assert r.returncode == 1
    assert "unknown model 'nope'" in one_line(r.stderr)
    assert zoo_env.cached("notyet") == ["deploy.prototxt", "notyet.caffemodel"]


def test_two_processes_fetching_at_once_make_one_good_file(zoo_env, server, googlenet_bytes):
    proto, weights = googlenet_bytes
    # Slow enough (about 2 s) that the second process arrives while the first downloads.
    serve_model(server, zoo_env.models, "race", proto, weights, rate=len(weights) / 2.0)
    cmd = [sys.executable, "-m", "deepdream_caffe.zoo", "models", "fetch", "race", "--models-dir", str(zoo_env.models)]
    procs = [subprocess.Popen(cmd, env=zoo_env.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outs = []
    try:
        for p in procs:
            outs.append(p.communicate(timeout=60))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    assert [p.returncode for p in procs] == [0, 0], outs
    assert (zoo_env.model_dir("race") / "race.caffemodel").read_bytes() == weights
    assert zoo_env.cached("race") == ["deploy.prototxt", "race.caffemodel"]
    assert len(server.requests_for("race/race.caffemodel")) == 1  # the second one waited, then used it
    assert any("waiting for another process fetching 'race'" in err for _, err in outs)


def _limit_file_size():
    # Ignore SIGXFSZ so an oversized write fails with EFBIG instead of killing the process.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))


def test_disk_limit_during_download_is_one_line_and_keeps_nothing(zoo_env, server, googlenet_bytes):
    """RLIMIT_FSIZE makes writes past 1 MB fail for real, like a disk filling up mid-download."""
    proto, weights = googlenet_bytes
    serve_model(server, zoo_env.models, "big", proto, weights)
    r = run_zoo(zoo_env, "fetch", "big", "--quiet", "--models-dir", str(zoo_env.models),
                preexec_fn=_limit_file_size)
    assert r.returncode == 1
    line = one_line(r.stderr)
    assert "cannot write" in line and "big.caffemodel.part" in line and "file too large" in line
    assert zoo_env.cached("big") == ["deploy.prototxt"]  # no partial weights kept


def test_unwritable_cache_from_the_command_line(zoo_env, server, tiny_bytes):
    proto, weights = tiny_bytes
    serve_model(server, zoo_env.models, "ro", proto, weights)
    blocker = zoo_env.root / "plain_file"
    blocker.write_text("x")
    env = zoo_env.env(DEEPDREAM_CAFFE_CACHE=str(blocker / "cache"))
    r = subprocess.run([sys.executable, "-m", "deepdream_caffe.zoo", "models", "fetch", "ro", "--quiet",
                        "--models-dir", str(zoo_env.models)], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 1
    assert "is not writable (Not a directory); set DEEPDREAM_CAFFE_CACHE" in one_line(r.stderr)


def _dream_command() -> list[str]:
    script = Path(sys.executable).parent / "deepdream-caffe"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "import sys; from deepdream_caffe.cli import main; sys.exit(main())"]


def test_dream_with_a_zoo_model_works_offline_once_cached(zoo_env, server, tiny_model_bytes):
    proto, weights = tiny_model_bytes
    serve_model(server, zoo_env.models, "dreamnet", proto, weights, publish_sha1=False)
    r = run_zoo(zoo_env, "fetch", "dreamnet", "--quiet", "--models-dir", str(zoo_env.models))
    assert r.returncode == 0, r.stderr
    server.stop()  # from here on, no network

    src = zoo_env.root / "in.png"
    Image.fromarray(np.random.RandomState(0).randint(0, 256, (64, 80, 3), dtype=np.uint8)).save(src)
    out = zoo_env.root / "out.png"
    cmd = _dream_command() + ["dream", str(src), "-o", str(out), "--model", "dreamnet",
                              "--models-dir", str(zoo_env.models), "--iters", "2", "--octaves", "1",
                              "--layer", "a/output", "--seed", "3", "--quiet"]
    r = subprocess.run(cmd, env=zoo_env.env(), capture_output=True, text=True, timeout=120, cwd=zoo_env.root)
    assert r.returncode == 0, r.stderr
    # force_backward was patched elsewhere, never in the cached prototxt.
    assert (zoo_env.model_dir("dreamnet") / "deploy.prototxt").read_bytes() == proto
    dreamed = np.asarray(Image.open(out))
    assert dreamed.shape == (64, 80, 3)
    assert not np.array_equal(dreamed, np.asarray(Image.open(src)))

    # The recorded (TOFU) hash is enforced by dream too: tampered weights are refused, offline.
    cached = zoo_env.model_dir("dreamnet") / "dreamnet.caffemodel"
    cached.write_bytes(cached.read_bytes()[:-8] + b"tampered")
    r = subprocess.run(cmd, env=zoo_env.env(), capture_output=True, text=True, timeout=120, cwd=zoo_env.root)
    assert r.returncode == 1
    assert "expected" in one_line(r.stderr) and "recorded at first download" in r.stderr


def test_models_subcommand_is_wired_into_the_main_cli(zoo_env, server, tiny_bytes):
    proto, weights = tiny_bytes
    serve_model(server, zoo_env.models, "viamain", proto, weights)
    r = subprocess.run(_dream_command() + ["models", "fetch", "viamain", "--quiet", "--models-dir",
                                           str(zoo_env.models), "--mirror", server.url("nothing-here")],
                       env=zoo_env.env(), capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert [q.path for q in server.log] == ["nothing-here/deploy.prototxt", "viamain/deploy.prototxt",
                                           "nothing-here/viamain.caffemodel", "viamain/viamain.caffemodel"]


def test_verify_fails_on_any_gap_and_reports_wrong_caffe_root_copies(zoo_env, server, tiny_bytes):
    """Issue #12, item 12: the sweep exits 1 like `verify NAME`; a wrong $CAFFE_ROOT file is reported, and
    no message tells the user to put a file where a wrong one already is."""
    proto, weights = tiny_bytes
    serve_model(server, zoo_env.models, "v", proto, weights)
    md = ["--models-dir", str(zoo_env.models)]
    r = run_zoo(zoo_env, "verify", *md)  # nothing downloaded: nothing wrong
    assert r.returncode == 0 and r.stderr == "" and r.stdout == "no model files downloaded yet: nothing to check\n"
    r = run_zoo(zoo_env, "verify", "v", *md)  # a model named must be all here
    assert r.returncode == 1
    assert ["v", "deploy.prototxt", "missing"] == _columns([x for x in r.stdout.splitlines() if x.startswith("v ")][0])[:3]

    root = zoo_env.caffe_root / "models" / "v"
    root.mkdir()
    (root / "v.caffemodel").write_bytes(weights[::-1])
    (root / "deploy.prototxt").write_bytes(proto)
    r = run_zoo(zoo_env, "path", "v", *md)  # not fetched: says what is wrong with the copy that is there
    line = one_line(r.stderr)
    assert r.returncode == 1 and f"{root / 'v.caffemodel'} has sha1 {sha1(weights[::-1])}" in line
    assert "replace that file with the right one" in line and "place its files in" not in line
    server.stop()
    r = run_zoo(zoo_env, "fetch", "v", "--quiet", *md)
    line = one_line(r.stderr)
    assert r.returncode == 1 and "replace it with the right file" in line and "(or into $CAFFE_ROOT" not in line

    with type(server)() as again:
        serve_model(again, zoo_env.models, "v", proto, weights)
        assert run_zoo(zoo_env, "fetch", "v", "--quiet", *md).returncode == 0
    r = run_zoo(zoo_env, "verify", "v", *md)
    rows = [_columns(x) for x in r.stdout.splitlines()]
    assert r.returncode == 1  # the cache is fine, but a wrong file lies in $CAFFE_ROOT
    assert ["v", "deploy.prototxt", "ok", str(root / "deploy.prototxt")] == rows[0]
    assert ["v", "v.caffemodel", "MISMATCH"] == rows[1][:3] and rows[1][3].endswith("(not used)")
    assert ["v", "v.caffemodel", "ok", str(zoo_env.model_dir("v") / "v.caffemodel")] == rows[2]
    assert run_zoo(zoo_env, "verify", *md).returncode == 1  # also when no model is named
    (root / "v.caffemodel").unlink()
    assert run_zoo(zoo_env, "verify", "v", *md).returncode == 0


def test_list_says_prototxt_only_and_verify_checks_what_is_downloaded(zoo_env, server, tiny_bytes):
    """`layers` fetches a model's prototxt alone: list says so, and verify with no name finds it sound."""
    proto, weights = tiny_bytes
    serve_model(server, zoo_env.models, "half", proto, weights)
    md = ["--models-dir", str(zoo_env.models)]
    resolve_model("half", models_dirs=[zoo_env.models], quiet=True, roles=("prototxt",))
    rows = {_columns(x)[0]: _columns(x) for x in run_zoo(zoo_env, "list", *md).stdout.splitlines()}
    assert rows["half"][2] == "prototxt only"
    r = run_zoo(zoo_env, "verify", *md)
    assert r.returncode == 0, r.stdout
    assert [x for x in r.stdout.splitlines() if x.startswith("half ")] == [
        f"half  deploy.prototxt  ok  {zoo_env.model_dir('half') / 'deploy.prototxt'}"]
    assert run_zoo(zoo_env, "verify", "half", *md).returncode == 1  # named, its weights must be here
    (zoo_env.model_dir("half") / "deploy.prototxt").write_bytes(proto[::-1])
    r = run_zoo(zoo_env, "verify", *md)
    assert r.returncode == 1 and "MISMATCH" in r.stdout


def test_list_and_verify_take_no_mirror(zoo_env):
    """They download nothing: --mirror is not shown, and refused as argparse refuses any unknown option."""
    for cmd in ("list", "verify"):
        assert "--mirror" not in run_zoo(zoo_env, cmd, "--help").stdout
        assert run_zoo(zoo_env, cmd, "--mirror", "http://127.0.0.1:9").returncode == 2
    assert "--mirror" in run_zoo(zoo_env, "fetch", "--help").stdout
    assert "-q" not in run_zoo(zoo_env, "list", "--help").stdout  # it prints no progress to quiet


def test_one_bad_manifest_does_not_break_list_for_the_others(zoo_env):
    """Issue #12, item 11: channel_swap = [0, "a", 2] and a non-UTF-8 model.toml each make one BROKEN row."""
    urls = dict(prototxt_url="http://127.0.0.1:9/a/deploy.prototxt", weights_url="http://127.0.0.1:9/a/w.caffemodel")
    write_manifest(zoo_env.models, "typed", channel_swap=[0, "a", 2], **urls)
    (zoo_env.models / "latin1").mkdir()
    (zoo_env.models / "latin1" / "model.toml").write_bytes(b'description = "caf\xe9"\n')
    write_manifest(zoo_env.models, "fine", **urls)
    r = run_zoo(zoo_env, "list", "--models-dir", str(zoo_env.models))
    assert r.returncode == 1
    rows = {x.split()[0]: x for x in r.stdout.splitlines()[1:]}
    assert "BROKEN" in rows["typed"] and "BROKEN" in rows["latin1"] and "BROKEN" not in rows["fine"]
    assert "bvlc_googlenet" in rows
    errors = r.stderr.splitlines()
    assert len(errors) == 2
    assert "'channel_swap' must be a permutation of [0, 1, 2], e.g. [2, 1, 0], not [0, 'a', 2]" in errors[1]
    assert "not UTF-8 text (byte 18 is 0xe9)" in errors[0]
