"""Shared pieces of the model-zoo tests: an isolated zoo environment, a live server, manifests."""
from __future__ import annotations

import hashlib
import os
import socket
import struct
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import pytest

from httpserver import FileServer

REPO = Path(__file__).resolve().parent.parent


def sha1(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()


@dataclass
class ZooEnv:
    root: Path  # the test's scratch folder
    cache: Path  # $DEEPDREAM_CAFFE_CACHE
    models: Path  # a --models-dir of manifests written by the test
    caffe_root: Path  # $CAFFE_ROOT, empty unless a test fills models/<name>/

    def model_dir(self, name: str) -> Path:
        return self.cache / "models" / name

    def cached(self, name: str) -> list[str]:
        """File names in the model's cache folder ([] when the folder is absent)."""
        d = self.model_dir(name)
        return sorted(p.name for p in d.iterdir()) if d.is_dir() else []

    def env(self, **extra: str) -> dict[str, str]:
        """os.environ for a subprocess: this zoo, and the repo importable."""
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
        env.update(extra)
        return env


@pytest.fixture
def zoo_env(tmp_path, monkeypatch) -> ZooEnv:
    """A private cache, manifests folder and Caffe root; short timeouts so failures are quick."""
    z = ZooEnv(tmp_path, tmp_path / "cache", tmp_path / "manifests", tmp_path / "caffe_root")
    z.models.mkdir()
    (z.caffe_root / "models").mkdir(parents=True)
    monkeypatch.setenv("DEEPDREAM_CAFFE_CACHE", str(z.cache))
    monkeypatch.setenv("CAFFE_ROOT", str(z.caffe_root))
    monkeypatch.setenv("DEEPDREAM_CAFFE_TIMEOUT", "1")
    monkeypatch.setenv("DEEPDREAM_CAFFE_RETRIES", "2")
    monkeypatch.setenv("DEEPDREAM_CAFFE_RETRY_WAIT", "0.01")
    monkeypatch.setenv("DEEPDREAM_CAFFE_LOCK_TIMEOUT", "60")
    monkeypatch.delenv("DEEPDREAM_CAFFE_MODELS", raising=False)
    monkeypatch.delenv("DEEPDREAM_CAFFE_MIRROR", raising=False)
    return z


@pytest.fixture
def server():
    """A live HTTP server on 127.0.0.1, stopped after the test."""
    with FileServer() as s:
        yield s


def dead_url(path: str = "file.bin") -> str:
    """A loopback URL nobody listens on: connection refused, as with no network."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/{path}"


def _toml(value) -> str:
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return repr(value)


def write_manifest(models_dir: Path, name: str, *, drop: tuple[str, ...] = (), **fields) -> Path:
    """Write ``models_dir/name/model.toml`` with test defaults; ``drop`` leaves keys out."""
    values = {
        "description": "a test net",
        "license": "test only",
        "mean": [104.0, 116.0, 122.0],
        "channel_swap": [2, 1, 0],
        "default_layer": "a/output",
    }
    values.update({k: v for k, v in fields.items() if v is not None})
    tables = {k: values.pop(k) for k in list(values) if isinstance(values[k], dict)}
    lines = [f"{k} = {_toml(v)}" for k, v in values.items() if k not in drop]
    for table, entries in tables.items():
        lines.append(f"[{table}]")
        lines += [f"{k} = {_toml(v)}" for k, v in entries.items()]
    path = models_dir / name / "model.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def serve_model(server: FileServer, models_dir: Path, name: str, prototxt: bytes, weights: bytes, *,
                publish_sha1: bool = True, proto_name: str = "deploy.prototxt",
                weights_name: Optional[str] = None, **weights_behaviour) -> Path:
    """Serve a model's two files and write its manifest pointing at them."""
    weights_name = weights_name or f"{name}.caffemodel"
    server.add(f"{name}/{proto_name}", prototxt)
    server.add(f"{name}/{weights_name}", weights, **weights_behaviour)
    return write_manifest(
        models_dir, name,
        prototxt_url=server.url(f"{name}/{proto_name}"),
        weights_url=server.url(f"{name}/{weights_name}"),
        prototxt_sha1=sha1(prototxt) if publish_sha1 else None,
        weights_sha1=sha1(weights) if publish_sha1 else None,
    )


def run_zoo(zoo: ZooEnv, *args: str, timeout: float = 60, **popen) -> subprocess.CompletedProcess:
    """``python -m deepdream_caffe.zoo models ARGS`` in a real subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "deepdream_caffe.zoo", "models", *args],
        env=zoo.env(), capture_output=True, text=True, timeout=timeout, **popen,
    )


def one_line(stderr: str) -> str:
    """The single error line a failing command printed (asserts it is one line)."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line on stderr, got: {stderr!r}"
    return lines[0]


def payload(seed: int, size: int) -> bytes:
    """``size`` bytes that stand in for a model file the test only downloads, hashes and compares."""
    return np.random.RandomState(seed).bytes(size)


def download_pair(seed: int, proto_size: int, weights_size: int) -> tuple[bytes, bytes]:
    """A prototxt and a caffemodel of about these sizes with random content, made without Caffe.

    The zoo checks that what arrives is what was asked for before it trusts a
    file on first use, so these are structurally real (protobuf text with a
    typed layer; a NetParameter whose blob holds as many float32 values as
    its shape says); the values are random so a misplaced byte always shows.
    """
    head = b'name: "download-test"\nlayer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1" }\n'
    pad = payload(seed, max(1, (proto_size - len(head)) // 2)).hex().encode()
    proto = head + b"# " + pad + b"\n"
    n = max(1, (weights_size - 40) // 4)
    blob = pb_field(7, pb_field(1, varint(n))) + pb_field(5, payload(seed + 1, 4 * n))
    layer = pb_field(1, b"conv1") + pb_field(2, b"Convolution") + pb_field(7, blob)
    weights = pb_field(1, b"download-test") + pb_field(100, layer)
    return proto, weights


# The download tests never load what they fetch, so their files need no Caffe to make:
# a small pair, and a big pair (several MB) for the tests that cut, throttle or limit a transfer.
@pytest.fixture(scope="module")
def tiny_bytes() -> tuple[bytes, bytes]:
    return download_pair(1, 300, 6000)


@pytest.fixture(scope="module")
def googlenet_bytes() -> tuple[bytes, bytes]:
    return download_pair(3, 30000, 8 << 20)


# For the tests that load or dream with what they fetched: real nets (these need Caffe).
@pytest.fixture(scope="module")
def tiny_model_bytes(tiny_model) -> tuple[bytes, bytes]:
    proto, weights = tiny_model
    return proto.read_bytes(), weights.read_bytes()


@pytest.fixture(scope="module")
def googlenet_model_bytes(googlenet_model) -> tuple[bytes, bytes]:
    proto, weights = googlenet_model
    return proto.read_bytes(), weights.read_bytes()


# -- isolated environments for hostile cases run side by side ---------------------------------

ZOO_TEST_SETTINGS = {
    "DEEPDREAM_CAFFE_TIMEOUT": "1",
    "DEEPDREAM_CAFFE_RETRIES": "2",
    "DEEPDREAM_CAFFE_RETRY_WAIT": "0.01",
    "DEEPDREAM_CAFFE_LOCK_TIMEOUT": "60",
}


def case_env(root: Path) -> ZooEnv:
    """A ZooEnv of its own under ``root`` (no monkeypatching), for cases that run concurrently."""
    z = ZooEnv(root, root / "cache", root / "manifests", root / "caffe_root")
    z.models.mkdir(parents=True)
    (z.caffe_root / "models").mkdir(parents=True)
    return z


def case_os_env(z: ZooEnv, **extra: str) -> dict[str, str]:
    """os.environ for a subprocess of ``z``: its cache and Caffe root, short patience, no user settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEEPDREAM_CAFFE_") and k != "CAFFE_ROOT"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    env.update(ZOO_TEST_SETTINGS, DEEPDREAM_CAFFE_CACHE=str(z.cache), CAFFE_ROOT=str(z.caffe_root))
    env.update(extra)
    return env


def run_zoo_many(jobs: list[tuple[list[str], dict[str, str]]], *, parallel: int = 4,
                 timeout: float = 60) -> list[subprocess.CompletedProcess]:
    """Run ``models ARGS`` for each (args, env) in real subprocesses, a few at a time; results in order."""
    def one(job):
        args, env = job
        t0 = time.monotonic()
        r = subprocess.run([sys.executable, "-m", "deepdream_caffe.zoo", "models", *args], env=env,
                           capture_output=True, text=True, timeout=timeout)
        r.seconds = time.monotonic() - t0  # for finding slow cases, never asserted
        return r

    with ThreadPoolExecutor(max_workers=parallel) as pool:
        return list(pool.map(one, jobs))


def snapshot(root: Path, skip: Path) -> dict[str, tuple]:
    """Every entry under ``root`` except ``skip``: kind and, for files, content hash (links not followed)."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        d = Path(dirpath)
        if d == skip or skip in d.parents:
            dirnames[:] = []
            continue
        for n in dirnames + filenames:
            p = d / n
            if p == skip:
                continue
            if p.is_symlink():
                out[str(p.relative_to(root))] = ("link", os.readlink(p))
            elif p.is_file():
                out[str(p.relative_to(root))] = ("file", sha1(p.read_bytes()))
            else:
                out[str(p.relative_to(root))] = ("other",)
    return out


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def pb_field(number: int, payload, wire: int = 2) -> bytes:
    """One protobuf field: a length-delimited payload (bytes) or a varint (int, wire 0)."""
    if wire == 0:
        return varint(number << 3) + varint(payload)
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def crafted_caffemodel(layers: list[tuple[str, list[tuple[list[int], int]]]]) -> bytes:
    """A NetParameter with ``(name, [(shape, number of float values), ...])`` layers, built by hand."""
    net = pb_field(1, b"crafted")
    for name, blobs in layers:
        layer = pb_field(1, name.encode()) + pb_field(2, b"Convolution")
        for shape, n in blobs:
            dims = b"".join(varint(d) for d in shape)
            blob = pb_field(7, pb_field(1, dims)) + pb_field(5, struct.pack(f"<{n}f", *([0.5] * n)))
            layer += pb_field(7, blob)
        net += pb_field(100, layer)
    return net
