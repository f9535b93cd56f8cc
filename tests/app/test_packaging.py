"""A wheel built from the repo, installed alone into a clean venv, carries the zoo: `models list` works."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BUILTIN = ["bvlc_googlenet", "bvlc_reference_caffenet", "googlenet_places205", "googlenet_places365", "open_nsfw",
           "vgg16"]


def _run(cmd, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=300, **kw)


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """bin/ of a venv (no system site-packages, no pip) holding only the freshly built wheel."""
    root = tmp_path_factory.mktemp("wheel")
    src = root / "src"
    # Build from a copy, so the build's scratch files never land in the repo.
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    shutil.copytree(REPO / "deepdream_caffe", src / "deepdream_caffe",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    # Offline: the venv's own setuptools builds, and the wheel installs alone (its deps are not needed to list models).
    r = _run([*pip, "wheel", "--no-index", "--no-deps", "--no-build-isolation", "-w", root / "dist", src])
    assert r.returncode == 0, r.stderr
    (wheel,) = (root / "dist").glob("deepdream_caffe-*.whl")

    env_dir = root / "venv"
    venv.EnvBuilder(system_site_packages=False, with_pip=False).create(env_dir)
    py = env_dir / "bin" / "python"
    r = _run([*pip, "--python", py, "install", "--no-index", "--no-deps", wheel])
    assert r.returncode == 0, r.stderr
    return env_dir / "bin"


def _clean_env(tmp_path: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "DEEPDREAM_CAFFE_", "CAFFE_ROOT"))}
    env["DEEPDREAM_CAFFE_CACHE"] = str(tmp_path / "cache")
    return env


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

    # The manifests are the wheel's package data, not the repo's files.
    r = _run([installed / "python", "-c",
              "from deepdream_caffe.zoo import builtin_models_dir; print(builtin_models_dir())"], env=env, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert str(Path(r.stdout.strip()).resolve()).startswith(str(installed.parent.resolve()) + os.sep)

    r = _run([installed / "deepdream-caffe", "--help"], env=env, cwd=tmp_path)
    assert r.returncode == 0 and all(c in r.stdout for c in ("dream", "zoom", "layers", "models"))
