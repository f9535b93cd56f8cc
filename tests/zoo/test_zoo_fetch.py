"""Fetching models from a real HTTP server on 127.0.0.1: success, resume, failures, TOFU, tarballs."""
from __future__ import annotations

import gzip
import io
import os
import re
import tarfile
import time

import pytest

from deepdream_caffe.errors import DeepDreamError
from deepdream_caffe.zoo import resolve_model
from deepdream_caffe.zoo.cache import model_lock
from zoo_helpers import crafted_caffemodel, dead_url, serve_model, sha1, write_manifest


def test_fetch_checks_hashes_and_then_stays_offline(zoo_env, server, googlenet_model_bytes):
    import caffe

    proto, weights = googlenet_model_bytes
    serve_model(server, zoo_env.models, "gnet", proto, weights)
    files = resolve_model("gnet", models_dirs=[zoo_env.models], quiet=True)

    assert files.prototxt == zoo_env.model_dir("gnet") / "deploy.prototxt"
    assert files.weights == zoo_env.model_dir("gnet") / "gnet.caffemodel"
    assert files.prototxt.read_bytes() == proto and files.weights.read_bytes() == weights
    assert files.weights_sha1 == sha1(weights)
    assert files.mean == (104.0, 116.0, 122.0) and files.channel_swap == (2, 1, 0)
    assert files.default_layer == "a/output" and files.license == "test only"
    assert zoo_env.cached("gnet") == ["deploy.prototxt", "gnet.caffemodel"]  # published hashes: no records
    net = caffe.Net(str(files.prototxt), str(files.weights), caffe.TEST)
    assert "inception_4c/output" in net.blobs

    server.stop()
    again = resolve_model("gnet", models_dirs=[zoo_env.models], fetch=False, quiet=True)
    assert again == files
    assert len(server.log) == 2  # one GET per file, none on the second use


def test_wrong_hash_is_rejected_and_nothing_is_kept(zoo_env, server, tiny_bytes):
    proto, weights = tiny_bytes
    serve_model(server, zoo_env.models, "liar", proto, weights)
    wrong = weights[:-1] + bytes([weights[-1] ^ 1])  # same size, one bit off
    server.add("liar/liar.caffemodel", wrong)

    with pytest.raises(DeepDreamError) as e:
        resolve_model("liar", models_dirs=[zoo_env.models], quiet=True)
    msg = str(e.value)
    assert f"{server.url('liar/liar.caffemodel')} gave sha1 {sha1(wrong)}, expected {sha1(weights)}" in msg
    assert "\n" not in msg
    # The prototxt was right and stays; no weights, partial or whole.
    assert zoo_env.cached("liar") == ["deploy.prototxt"]


def test_dropped_connection_resumes_byte_identical(zoo_env, server, googlenet_bytes):
    proto, weights = googlenet_bytes
    third = len(weights) // 3
    serve_model(server, zoo_env.models, "flaky", proto, weights, drop_after=third, drops=2)

    files = resolve_model("flaky", models_dirs=[zoo_env.models], quiet=True)
    assert files.weights.read_bytes() == weights
    ranges = [r.range for r in server.requests_for("flaky/flaky.caffemodel")]
    # Cut a third of the way, resumed from there and cut again, then the rest.
    assert ranges == [None, f"bytes={third}-", f"bytes={2 * third}-"]
    assert zoo_env.cached("flaky") == ["deploy.prototxt", "flaky.caffemodel"]


def test_server_ignoring_range_restarts_cleanly(zoo_env, server, tiny_bytes):
    proto, weights = tiny_bytes
    serve_model(server, zoo_env.models, "norange", proto, weights, drop_after=len(weights) // 3,
                ignore_range=True)
    files = resolve_model("norange", models_dirs=[zoo_env.models], quiet=True)
    assert files.weights.read_bytes() == weights


def test_partial_file_from_an_earlier_run_is_resumed(zoo_env, server, tiny_bytes):
    proto, weights = tiny_bytes
    serve_model(server, zoo_env.models, "leftover", proto, weights)
    d = zoo_env.model_dir("leftover")
    d.mkdir(parents=True)
    (d / "leftover.caffemodel.part").write_bytes(weights[:100])

    files = resolve_model("leftover", models_dirs=[zoo_env.models], quiet=True)
    assert files.weights.read_bytes() == weights
    assert [r.range for r in server.requests_for("leftover/leftover.caffemodel")] == ["bytes=100-"]


def test_complete_partial_file_is_just_renamed(zoo_env, server, tiny_bytes):
    """A run killed between the last byte and the rename left a whole .part: the server's 416 says so."""
    proto, weights = tiny_bytes
    serve_model(server, zoo_env.models, "whole", proto, weights)
    d = zoo_env.model_dir("whole")
    d.mkdir(parents=True)
    (d / "whole.caffemodel.part").write_bytes(weights)

    files = resolve_model("whole", models_dirs=[zoo_env.models], quiet=True)
    assert files.weights.read_bytes() == weights
    assert [r.range for r in server.requests_for("whole/whole.caffemodel")] == [f"bytes={len(weights)}-"]


def test_garbage_partial_file_is_thrown_away(zoo_env, server, tiny_bytes):
    """Bytes of unknown origin in the .part make the hash fail once; one clean download follows."""
    proto, weights = tiny_bytes
    serve_model(server, zoo_env.models, "garbage", proto, weights)
    d = zoo_env.model_dir("garbage")
    d.mkdir(parents=True)
    (d / "garbage.caffemodel.part").write_bytes(b"x" * 100)

    files = resolve_model("garbage", models_dirs=[zoo_env.models], quiet=True)
    assert files.weights.read_bytes() == weights
    assert [r.range for r in server.requests_for("garbage/garbage.caffemodel")] == ["bytes=100-", None]


def test_partial_file_is_not_trusted_without_a_hash(zoo_env, server, tiny_bytes):
    """With nothing to check against, old bytes must not become the recorded hash."""
    proto, weights = tiny_bytes
    serve_model(server, zoo_env.models, "fresh", proto, weights, publish_sha1=False)
    d = zoo_env.model_dir("fresh")
    d.mkdir(parents=True)
    (d / "fresh.caffemodel.part").write_bytes(b"stale bytes from who knows where")

    files = resolve_model("fresh", models_dirs=[zoo_env.models], quiet=True)
    assert files.weights.read_bytes() == weights and files.weights_sha1 == sha1(weights)
    assert [r.range for r in server.requests_for("fresh/fresh.caffemodel")] == [None]


def test_404_says_which_url_and_keeps_nothing(zoo_env, server, tiny_bytes):
    proto, weights = tiny_bytes
    serve_model(server, zoo_env.models, "gone", proto, weights, status=404)
    with pytest.raises(DeepDreamError) as e:
        resolve_model("gone", models_dirs=[zoo_env.models], quiet=True)
    msg = str(e.value)
    assert f"{server.url('gone/gone.caffemodel')}: HTTP 404" in msg and "\n" not in msg
    assert len(server.requests_for("gone/gone.caffemodel")) == 1  # a 404 is not retried
    assert "gone.caffemodel" not in " ".join(zoo_env.cached("gone"))


def test_stalled_server_times_out(zoo_env, server, tiny_bytes, monkeypatch):
    monkeypatch.setenv("DEEPDREAM_CAFFE_TIMEOUT", "0.3")
    monkeypatch.setenv("DEEPDREAM_CAFFE_RETRIES", "1")
    proto, weights = tiny_bytes
    serve_model(server, zoo_env.models, "stuck", proto, weights, stall_after=len(weights) // 2)

    t0 = time.monotonic()
    with pytest.raises(DeepDreamError) as e:
        resolve_model("stuck", models_dirs=[zoo_env.models], quiet=True)
    elapsed = time.monotonic() - t0
    assert "no data for 0.3 s (server stalled)" in str(e.value)
    assert server.url("stuck/stuck.caffemodel") in str(e.value)
    assert elapsed < 5
    assert "stuck.caffemodel" not in zoo_env.cached("stuck")  # at most a .part, to resume later


def test_no_network_names_url_error_and_how_to_place_files(zoo_env, tiny_bytes):
    url = dead_url("deploy.prototxt")
    write_manifest(zoo_env.models, "offline", prototxt_url=url, weights_url=dead_url("offline.caffemodel"))
    with pytest.raises(DeepDreamError) as e:
        resolve_model("offline", models_dirs=[zoo_env.models], quiet=True)
    msg = str(e.value)
    assert f"{url}: Connection refused" in msg
    assert "by hand to" in msg and str(zoo_env.model_dir("offline")) in msg
    assert msg.endswith(", or use mirror=BASE_URL") and "--" not in msg  # the API's parameter, not the flag
    assert "\n" not in msg
    assert not zoo_env.model_dir("offline").exists()


def test_fetch_false_reports_missing_model(zoo_env, tiny_bytes):
    write_manifest(zoo_env.models, "later", prototxt_url=dead_url("deploy.prototxt"), weights_url=dead_url("w.bin"))
    with pytest.raises(DeepDreamError, match="not downloaded.*models fetch later"):
        resolve_model("later", models_dirs=[zoo_env.models], fetch=False)


def test_mirror_is_tried_first_then_the_origin(zoo_env, server, tiny_bytes, monkeypatch):
    proto, weights = tiny_bytes
    write_manifest(zoo_env.models, "mirrored", prototxt_url=dead_url("deploy.prototxt"),
                   weights_url=server.url("origin/mirrored.caffemodel"), prototxt_sha1=sha1(proto),
                   weights_sha1=sha1(weights))
    server.add("mirror/deploy.prototxt", proto)
    server.add("mirror/mirrored.caffemodel", weights[::-1])  # the mirror's copy is wrong...
    server.add("origin/mirrored.caffemodel", weights)  # ...so the origin is used

    monkeypatch.setenv("DEEPDREAM_CAFFE_MIRROR", server.url("mirror") + "/")
    files = resolve_model("mirrored", models_dirs=[zoo_env.models], quiet=True)
    assert files.prototxt.read_bytes() == proto and files.weights.read_bytes() == weights
    assert [r.path for r in server.log] == ["mirror/deploy.prototxt", "mirror/mirrored.caffemodel",
                                           "origin/mirrored.caffemodel"]
    with pytest.raises(DeepDreamError, match="mirror must be an http"):
        resolve_model("mirrored", models_dirs=[zoo_env.models], mirror="ftp://nope")


def test_trust_on_first_use_records_then_enforces(zoo_env, server, tiny_bytes):
    proto, weights = tiny_bytes
    serve_model(server, zoo_env.models, "tofu", proto, weights, publish_sha1=False)

    files = resolve_model("tofu", models_dirs=[zoo_env.models], quiet=True)
    assert zoo_env.cached("tofu") == ["deploy.prototxt", "deploy.prototxt.sha1", "tofu.caffemodel",
                                      "tofu.caffemodel.sha1"]
    record = (zoo_env.model_dir("tofu") / "tofu.caffemodel.sha1").read_text()
    assert record == f"{sha1(weights)}  tofu.caffemodel\n"  # sha1sum -c format
    assert files.weights_sha1 == sha1(weights)

    # Tampered with: refused without network...
    tampered = weights[:-4] + b"evil"
    files.weights.write_bytes(tampered)
    with pytest.raises(DeepDreamError) as e:
        resolve_model("tofu", models_dirs=[zoo_env.models], fetch=False, quiet=True)
    assert f"has sha1 {sha1(tampered)}, expected {sha1(weights)}" in str(e.value)
    assert "recorded at first download" in str(e.value)

    # ...refused when the server now serves the tampered bytes too, and not kept...
    server.add("tofu/tofu.caffemodel", tampered)
    with pytest.raises(DeepDreamError) as e:
        resolve_model("tofu", models_dirs=[zoo_env.models], quiet=True)
    assert f"{server.url('tofu/tofu.caffemodel')} gave sha1 {sha1(tampered)}, expected {sha1(weights)}" in str(e.value)
    assert "tofu.caffemodel" not in zoo_env.cached("tofu")

    # ...and repaired from a server with the original bytes.
    server.add("tofu/tofu.caffemodel", weights)
    assert resolve_model("tofu", models_dirs=[zoo_env.models], quiet=True).weights.read_bytes() == weights


def test_caffe_root_copy_is_used_after_the_hash_check(zoo_env, server, tiny_bytes, capsys):
    proto, weights = tiny_bytes
    serve_model(server, zoo_env.models, "rooted", proto, weights)
    root = zoo_env.caffe_root / "models" / "rooted"
    root.mkdir()
    (root / "deploy.prototxt").write_bytes(proto)
    (root / "rooted.caffemodel").write_bytes(weights)

    files = resolve_model("rooted", models_dirs=[zoo_env.models])
    assert files.prototxt == root / "deploy.prototxt" and files.weights == root / "rooted.caffemodel"
    assert server.log == [] and not zoo_env.model_dir("rooted").exists()

    # A wrong file there is not used: a warning, and the right one is fetched.
    (root / "rooted.caffemodel").write_bytes(weights[:-1])
    files = resolve_model("rooted", models_dirs=[zoo_env.models])
    assert files.prototxt == root / "deploy.prototxt"
    assert files.weights == zoo_env.model_dir("rooted") / "rooted.caffemodel"
    assert f"warning: ignoring {root / 'rooted.caffemodel'}" in capsys.readouterr().err


def _tarball(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in entries.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_tarball_members_are_extracted_and_verified(zoo_env, server, tiny_bytes):
    proto, weights = tiny_bytes
    tgz = _tarball({"pkg/README": b"hi", "pkg/deploy_x.protxt": proto, "pkg/x_iter_1.caffemodel": weights})
    url = server.add("dl/pkg.tar.gz", tgz)
    write_manifest(zoo_env.models, "packed", prototxt_url=url, weights_url=url,
                   archive_member={"prototxt": "pkg/deploy_x.protxt", "weights": "pkg/x_iter_1.caffemodel"})

    files = resolve_model("packed", models_dirs=[zoo_env.models], quiet=True)
    assert files.prototxt.name == "deploy_x.protxt" and files.prototxt.read_bytes() == proto
    assert files.weights.name == "x_iter_1.caffemodel" and files.weights.read_bytes() == weights
    assert len(server.log) == 1  # one tarball for both files
    # The tarball is gone; hashes of the members were recorded (no published ones).
    assert zoo_env.cached("packed") == ["deploy_x.protxt", "deploy_x.protxt.sha1", "x_iter_1.caffemodel",
                                        "x_iter_1.caffemodel.sha1"]

    # A re-published tarball whose member differs from the recorded hash is refused.
    os.remove(files.weights)
    server.add("dl/pkg.tar.gz", _tarball({"pkg/deploy_x.protxt": proto, "pkg/x_iter_1.caffemodel": b"other"}))
    with pytest.raises(DeepDreamError, match=r"member pkg/x_iter_1.caffemodel.*gave sha1"):
        resolve_model("packed", models_dirs=[zoo_env.models], quiet=True)
    assert "x_iter_1.caffemodel" not in zoo_env.cached("packed") and "pkg.tar.gz" not in zoo_env.cached("packed")


def test_tarball_without_the_member_or_not_a_tarball(zoo_env, server, tiny_bytes):
    proto, weights = tiny_bytes
    url = server.add("dl/other.tar.gz", _tarball({"elsewhere/deploy.prototxt": proto}))
    write_manifest(zoo_env.models, "nomember", prototxt_url=url, weights_url=url,
                   archive_member={"prototxt": "pkg/deploy.prototxt", "weights": "pkg/w.caffemodel"})
    with pytest.raises(DeepDreamError, match=r"has no member 'pkg/w.caffemodel' \(it holds: elsewhere/deploy"):
        resolve_model("nomember", models_dirs=[zoo_env.models], quiet=True)
    assert not zoo_env.model_dir("nomember").exists()

    url = server.add("dl/junk.tar.gz", b"this is not gzip")
    write_manifest(zoo_env.models, "junk", prototxt_url=url, weights_url=url,
                   archive_member={"prototxt": "a.prototxt", "weights": "b.caffemodel"})
    with pytest.raises(DeepDreamError, match="junk.tar.gz is not a readable tarball"):
        resolve_model("junk", models_dirs=[zoo_env.models], quiet=True)
    assert not zoo_env.model_dir("junk").exists()


def test_unwritable_cache_is_one_clear_line(zoo_env, server, tiny_bytes, monkeypatch):
    proto, weights = tiny_bytes
    serve_model(server, zoo_env.models, "nowhere", proto, weights)
    blocker = zoo_env.root / "a_file"
    blocker.write_text("not a folder")
    # Tests run as root, where chmod does not stop writes: a cache below a regular file does.
    monkeypatch.setenv("DEEPDREAM_CAFFE_CACHE", str(blocker / "cache"))
    with pytest.raises(DeepDreamError) as e:
        resolve_model("nowhere", models_dirs=[zoo_env.models], quiet=True)
    assert f"cache directory {blocker / 'cache'}/models/nowhere is not writable (Not a directory)" in str(e.value)
    assert "DEEPDREAM_CAFFE_CACHE" in str(e.value) and server.log == []


def test_a_link_in_place_of_the_partial_file_is_never_written_through(zoo_env, server, tiny_bytes):
    """A .part that is a symbolic link (to /dev/full, to a file outside the cache) is removed, not followed."""
    proto, weights = tiny_bytes
    serve_model(server, zoo_env.models, "linked", proto, weights)
    d = zoo_env.model_dir("linked")
    d.mkdir(parents=True)
    victim = zoo_env.root / "victim.txt"
    victim.write_bytes(b"keep me")
    (d / "linked.caffemodel.part").symlink_to(victim)
    if os.path.exists("/dev/full"):
        (d / "deploy.prototxt.part").symlink_to("/dev/full")

    files = resolve_model("linked", models_dirs=[zoo_env.models], quiet=True)
    assert files.weights.read_bytes() == weights and files.prototxt.read_bytes() == proto
    assert victim.read_bytes() == b"keep me"
    assert zoo_env.cached("linked") == ["deploy.prototxt", "linked.caffemodel"]
    assert not files.weights.is_symlink()


def test_waiting_for_another_fetch_is_bounded(zoo_env, server, tiny_bytes, monkeypatch, capsys):
    proto, weights = tiny_bytes
    serve_model(server, zoo_env.models, "busy", proto, weights)
    monkeypatch.setenv("DEEPDREAM_CAFFE_LOCK_TIMEOUT", "0.3")
    with model_lock("busy", quiet=True):  # as if another process were downloading it
        with pytest.raises(DeepDreamError, match=r"gave up after 0.3 s waiting for another process fetching 'busy'"):
            resolve_model("busy", models_dirs=[zoo_env.models])
    assert "waiting for another process fetching 'busy'" in capsys.readouterr().err
    assert server.log == []
    assert resolve_model("busy", models_dirs=[zoo_env.models], quiet=True).weights.read_bytes() == weights


def test_a_wrong_cached_file_is_moved_aside_never_deleted(zoo_env, server, tiny_bytes, capsys):
    """Issue #12, item 3: a tampered trust-on-first-use file is kept as NAME.bad-<sha1>, and said so."""
    proto, weights = tiny_bytes
    serve_model(server, zoo_env.models, "kept", proto, weights, publish_sha1=False)
    files = resolve_model("kept", models_dirs=[zoo_env.models], quiet=True)
    edited = weights[:-4] + b"mine"
    files.weights.write_bytes(edited)

    # Offline: refused, and the file is left exactly where and as it is.
    with pytest.raises(DeepDreamError, match=rf"to move it aside \(to kept.caffemodel.bad-{sha1(edited)}\)"):
        resolve_model("kept", models_dirs=[zoo_env.models], fetch=False, quiet=True)
    assert files.weights.read_bytes() == edited

    # Fetching: moved aside (not deleted), the right file fetched, the move reported.
    assert resolve_model("kept", models_dirs=[zoo_env.models]).weights.read_bytes() == weights
    aside = zoo_env.model_dir("kept") / f"kept.caffemodel.bad-{sha1(edited)}"
    assert aside.read_bytes() == edited
    assert f"so it was moved to {aside.name}; fetching it again" in capsys.readouterr().err

    # A wrong copy under $CAFFE_ROOT is never touched, only passed over.
    root = zoo_env.caffe_root / "models" / "kept"
    root.mkdir()
    (root / "kept.caffemodel").write_bytes(edited)
    assert resolve_model("kept", models_dirs=[zoo_env.models], quiet=True).weights == files.weights
    assert (root / "kept.caffemodel").read_bytes() == edited


def test_trust_on_first_use_records_only_a_real_file(zoo_env, server, tiny_bytes):
    """Issue #12, item 4: an HTML page with status 200 or a gzip body is refused before any hash is recorded."""
    proto, weights = tiny_bytes
    serve_model(server, zoo_env.models, "tofu2", proto, weights, publish_sha1=False)
    server.add("tofu2/tofu2.caffemodel", b"<html><body>Please log in</body></html>")
    with pytest.raises(DeepDreamError, match=r"tofu2.caffemodel: what arrived is not a caffemodel \(it is an HTML"):
        resolve_model("tofu2", models_dirs=[zoo_env.models], quiet=True)
    server.add("tofu2/tofu2.caffemodel", gzip.compress(weights), headers={"Content-Encoding": "gzip"})
    with pytest.raises(DeepDreamError, match="gzip-encoded body although the file was asked for as it is"):
        resolve_model("tofu2", models_dirs=[zoo_env.models], quiet=True)
    assert [r.accept_encoding for r in server.requests_for("tofu2/tofu2.caffemodel")] == ["identity"] * 2
    assert zoo_env.cached("tofu2") == ["deploy.prototxt", "deploy.prototxt.sha1"]  # no weights, no record

    server.add("tofu2/tofu2.caffemodel", weights)
    assert resolve_model("tofu2", models_dirs=[zoo_env.models], quiet=True).weights_sha1 == sha1(weights)


@pytest.mark.parametrize("validator", [dict(etag=True), dict(last_modified="Mon, 01 Jan 2024 00:00:00 GMT")])
def test_a_file_that_changed_between_cut_and_resume_is_never_spliced(zoo_env, server, tiny_bytes, validator):
    """The resume carries If-Range; the server's 200 (the file changed) means starting over."""
    proto, weights = tiny_bytes
    newer = crafted_caffemodel([("conv1", [([8, 3, 3, 3], 216)])])
    half = len(weights) // 2
    serve_model(server, zoo_env.models, "moving", proto, weights, publish_sha1=False, drop_after=half,
                then=newer, **validator)
    files = resolve_model("moving", models_dirs=[zoo_env.models], quiet=True)
    assert files.weights.read_bytes() == newer and files.weights_sha1 == sha1(newer)
    first, resumed, *rest = server.requests_for("moving/moving.caffemodel")
    assert first.range is None and resumed.range == f"bytes={half}-" and rest == []
    expected = validator.get("last_modified") or f'"{sha1(weights)[:16]}"'
    assert resumed.if_range == expected


def test_a_trickle_ends_at_the_overall_deadline(zoo_env, server, tiny_bytes, monkeypatch):
    """Issue #12, item 9: one byte now and then never trips the stall timeout, so the whole download has a deadline."""
    proto, weights = tiny_bytes
    monkeypatch.setenv("DEEPDREAM_CAFFE_TIMEOUT", "0.5")
    monkeypatch.setenv("DEEPDREAM_CAFFE_MIN_RATE", str(len(weights)))  # the deadline is 1 s + 1 s
    serve_model(server, zoo_env.models, "slow", proto, weights, rate=40)
    with pytest.raises(DeepDreamError) as e:
        resolve_model("slow", models_dirs=[zoo_env.models], quiet=True)
    assert "bytes/s (set DEEPDREAM_CAFFE_MIN_RATE to allow slower downloads)" in str(e.value)
    assert re.search(rf"too slow: \d+ of {len(weights)} bytes after", str(e.value))
    assert len(server.requests_for("slow/slow.caffemodel")) == 1  # given up, not retried
    assert "slow.caffemodel.part" in zoo_env.cached("slow")  # a prefix, kept to resume (the hash will judge)


def test_a_trickle_ends_within_a_rate_window_whatever_size_is_announced(zoo_env, server, tiny_bytes, monkeypatch):
    """Issue #28, class 5: a byte every 2 s under a Content-Length near the cap (an overall deadline of
    years here) ends after the first rate window that averaged under the floor."""
    proto, weights = tiny_bytes
    monkeypatch.setenv("DEEPDREAM_CAFFE_TIMEOUT", "5")  # longer than the gaps: the stall timeout never trips
    monkeypatch.setenv("DEEPDREAM_CAFFE_MIN_RATE", "4")
    monkeypatch.setenv("DEEPDREAM_CAFFE_RATE_WINDOW", "1")
    serve_model(server, zoo_env.models, "drip", proto, weights, rate=0.5, length=2_000_000_000)
    with pytest.raises(DeepDreamError) as e:
        resolve_model("drip", models_dirs=[zoo_env.models], quiet=True)
    assert re.search(r"too slow: (\d) bytes in the last \d s \(\1 of 2000000000 bytes so far\), under 4 bytes/s",
                     str(e.value)), str(e.value)
    assert len(server.requests_for("drip/drip.caffemodel")) == 1  # given up, not retried
