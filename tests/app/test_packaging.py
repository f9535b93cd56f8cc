"""The wheel carries the zoo's manifests from the top-level models/; downloads land by install kind.

A clone keeps downloads in its own models/<name>/ (as in Caffe's tree, git
ignores them); an install from the wheel keeps them in the user cache.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from zoo_helpers import download_pair, serve_model

REPO = Path(__file__).resolve().parents[2]
BUILTIN = ["bvlc_googlenet", "bvlc_reference_caffenet", "googlenet_places205", "googlenet_places365", "open_nsfw",
           "vgg16"]
TRACKED = ("README.md", "model.toml", "readme.md")  # what models/ holds in git; the rest is downloads
STRAY = "bvlc_googlenet/bvlc_googlenet.caffemodel"  # a download a clone may hold when it builds the wheel


def _run(cmd, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=300, **kw)


def _downloads(folder: str, entries: list) -> list:
    return [n for n in entries if (Path(folder) / n).is_file() and n not in TRACKED]


def _clone(dest: Path) -> Path:
    """A copy of the repo's build inputs, as a clone has them, without any downloads of this one's models/."""
    dest.mkdir()
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy(REPO / name, dest / name)
    shutil.copytree(REPO / "deepdream_caffe", dest / "deepdream_caffe",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    shutil.copytree(REPO / "models", dest / "models", ignore=_downloads)
    return dest


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel, built from a clone whose models/ also holds downloaded weights."""
    root = tmp_path_factory.mktemp("wheel")
    # Built from a copy, so the build's scratch files never land in the repo.
    src = _clone(root / "src")
    (src / "models" / STRAY).write_bytes(b"weights a clone downloaded")
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    # Offline: the venv's own setuptools builds.
    r = _run([*pip, "wheel", "--no-index", "--no-deps", "--no-build-isolation", "-w", root / "dist", src])
    assert r.returncode == 0, r.stderr
    (built,) = (root / "dist").glob("deepdream_caffe-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> Path:
    """bin/ of a venv (no system site-packages, no pip) holding only the wheel (its deps are not needed to list)."""
    env_dir = tmp_path_factory.mktemp("venv")
    venv.EnvBuilder(system_site_packages=False, with_pip=False).create(env_dir)
    r = _run([sys.executable, "-m", "pip", "--disable-pip-version-check", "-q", "--python", env_dir / "bin" / "python",
              "install", "--no-index", "--no-deps", wheel])
    assert r.returncode == 0, r.stderr
    return env_dir / "bin"


def _clean_env(tmp_path: Path, **extra: str) -> dict:
    """No setting of the user's or the repo's: HOME (so the user cache) and $CAFFE_ROOT in ``tmp_path``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "DEEPDREAM_CAFFE_", "CAFFE_ROOT"))}
    (tmp_path / "caffe_root" / "models").mkdir(parents=True, exist_ok=True)
    env.update(HOME=str(tmp_path / "home"), CAFFE_ROOT=str(tmp_path / "caffe_root"), **extra)
    return env


@pytest.mark.packaging
def test_the_wheel_carries_every_manifest_and_readme_and_no_download(wheel):
    with zipfile.ZipFile(wheel) as z:
        shipped = {n: z.read(n) for n in z.namelist() if n.startswith("deepdream_caffe/models/")}
        assert not [n for n in z.namelist() if n.startswith("deepdream_caffe/zoo/models")]
    tracked = {f"deepdream_caffe/models/{p.relative_to(REPO / 'models').as_posix()}": p.read_bytes()
               for p in (REPO / "models").rglob("*") if p.name in TRACKED}
    assert {f"deepdream_caffe/models/{m}/{f}" for m in BUILTIN for f in ("model.toml", "readme.md")} <= set(tracked)
    assert shipped == tracked  # byte for byte, and the stray weights stayed out


@pytest.mark.packaging
def test_wheel_in_a_clean_venv_lists_the_builtin_models(installed, tmp_path):
    env = _clean_env(tmp_path)
    # Clean indeed: nothing of the project's venv (numpy, pycaffe) is importable there.
    r = _run([installed / "python", "-c", "import numpy"], env=env, cwd=tmp_path)
    assert r.returncode != 0 and "No module named 'numpy'" in r.stderr

    r = _run([installed / "deepdream-caffe", "models", "list"], env=env, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    rows = [line.split()[0] for line in r.stdout.splitlines()[1:]]
    assert rows == BUILTIN
    assert r.stdout.splitlines()[0].split()[:3] == ["NAME", "SIZE", "CACHED"]

    # The manifests load from the wheel's package data, not from the repo's files.
    r = _run([installed / "python", "-c", "from deepdream_caffe.zoo import find_manifest; "
              "print(find_manifest('bvlc_googlenet').path)"], env=env, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    site = Path(r.stdout.strip()).resolve()
    assert site.parts[-4:] == ("deepdream_caffe", "models", "bvlc_googlenet", "model.toml")
    assert str(site).startswith(str(installed.parent.resolve()) + os.sep)

    r = _run([installed / "deepdream-caffe", "--help"], env=env, cwd=tmp_path)
    assert r.returncode == 0 and all(c in r.stdout for c in ("dream", "zoom", "layers", "models"))


def _fetch(python: Path, env: dict, cwd: Path, *args: str) -> list[str]:
    r = _run([python, "-m", "deepdream_caffe.zoo", "models", "fetch", "localnet", "--quiet", *args], env=env, cwd=cwd)
    assert r.returncode == 0, r.stderr
    r = _run([python, "-m", "deepdream_caffe.zoo", "models", "path", "localnet", *args], env=env, cwd=cwd)
    assert r.returncode == 0, r.stderr
    return r.stdout.split()


@pytest.mark.packaging
def test_a_clones_fetch_lands_in_its_models_folder(server, tmp_path):
    clone = _clone(tmp_path / "clone")
    proto, weights = download_pair(5, 300, 6000)
    serve_model(server, clone / "models", "localnet", proto, weights)
    env = _clean_env(tmp_path, PYTHONPATH=str(clone))

    paths = _fetch(Path(sys.executable), env, tmp_path)
    here = clone / "models" / "localnet"
    assert paths == [str(here / "deploy.prototxt"), str(here / "localnet.caffemodel")]
    assert (here / "localnet.caffemodel").read_bytes() == weights
    assert sorted(p.name for p in here.iterdir()) == ["deploy.prototxt", "localnet.caffemodel", "model.toml"]
    assert not (tmp_path / "home" / ".cache" / "deepdream-caffe" / "models").exists()


@pytest.mark.packaging
def test_a_wheel_installs_fetch_lands_in_the_user_cache(installed, server, tmp_path):
    manifests = tmp_path / "manifests"
    proto, weights = download_pair(6, 300, 6000)
    serve_model(server, manifests, "localnet", proto, weights)

    paths = _fetch(installed / "python", _clean_env(tmp_path), tmp_path, "--models-dir", str(manifests))
    cached = tmp_path / "home" / ".cache" / "deepdream-caffe" / "models" / "localnet"
    assert paths == [str(cached / "deploy.prototxt"), str(cached / "localnet.caffemodel")]
    assert (cached / "localnet.caffemodel").read_bytes() == weights
    assert sorted(p.name for p in (manifests / "localnet").iterdir()) == ["model.toml"]


@pytest.mark.skipif(not (REPO / ".git").exists() or not shutil.which("git"), reason="not a git checkout")
def test_git_tracks_only_the_manifests_and_readmes_in_models():
    def ignored(rel: str) -> bool:
        r = _run(["git", "-C", REPO, "check-ignore", "--no-index", "-q", rel])
        assert r.returncode in (0, 1), r.stderr
        return r.returncode == 0

    assert ignored(f"models/{STRAY}") and ignored("models/bvlc_googlenet/bvlc_googlenet.caffemodel.sha1")
    assert ignored("models/my_own_net/deploy.prototxt")
    assert not any(ignored(f"models/{m}/{f}") for m in BUILTIN for f in ("model.toml", "readme.md"))
    assert not ignored("models/README.md")


# A child process where the extra's modules are absent, as on a machine without that extra: a finder
# first on sys.meta_path refuses them (the real import machinery, not a stand-in for what is tested).
ABSENT = """
import sys

class Absent:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in sys.argv[1].split(","):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, Absent())
from deepdream_caffe.cli import main
sys.exit(main(sys.argv[2:]))
"""


def _frames(folder: Path) -> Path:
    folder.mkdir()
    for i in range(2):
        Image.new("RGB", (32, 24), (40 * i, 90, 160)).save(folder / f"f{i}.png")
    return folder


@pytest.mark.parametrize("absent, args, extra, what", [
    ("av", ["video", "{tmp}/in.mp4", "-o", "{tmp}/done/out.mp4"], "video", "PyAV and OpenCV"),
    ("cv2", ["video", "{tmp}/frames", "-o", "{tmp}/done/out", "--flow", "farneback"], "video", "PyAV and OpenCV"),
    ("av", ["frames-to-video", "{tmp}/frames", "{tmp}/done/out.mp4"], "video", "PyAV and OpenCV"),
    ("dask,distributed", ["batch", "{tmp}/frames/f0.png", "--out-dir", "{tmp}/done"], "batch", "Dask"),
])
def test_a_missing_extra_is_one_line_naming_the_pip_command(tmp_path, absent, args, extra, what):
    (tmp_path / "in.mp4").write_bytes(b"\0" * 64)
    _frames(tmp_path / "frames")
    (tmp_path / "done").mkdir()
    argv = [a.format(tmp=tmp_path) for a in args]
    r = _run([sys.executable, "-c", ABSENT, absent, *argv], cwd=tmp_path)
    assert r.returncode == 1, r.stderr
    assert r.stderr.strip() == f"deepdream-caffe: error: {extra} needs {what}: pip install 'deepdream-caffe[{extra}]'"
    assert list((tmp_path / "done").iterdir()) == []
