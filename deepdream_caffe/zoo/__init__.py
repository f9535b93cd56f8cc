"""The model zoo: the nets DeepDream users reach for, fetched on demand, verified, cached.

Public API:

- :func:`resolve_model` turns a model name into a :class:`ModelFiles` with
  verified local paths, downloading when needed;
- :func:`add_models_parser` adds ``models list|fetch|path|verify`` to a CLI.

Settings from the environment: ``DEEPDREAM_CAFFE_MODELS`` (extra manifest
folders), ``DEEPDREAM_CAFFE_CACHE``, ``DEEPDREAM_CAFFE_MIRROR``, and the
download's patience: ``DEEPDREAM_CAFFE_TIMEOUT`` (stall seconds),
``DEEPDREAM_CAFFE_RETRIES``, ``DEEPDREAM_CAFFE_RETRY_WAIT`` (first back-off
seconds), ``DEEPDREAM_CAFFE_MIN_RATE`` (bytes per second, the overall
deadline and the floor of each ``DEEPDREAM_CAFFE_RATE_WINDOW`` seconds) and ``DEEPDREAM_CAFFE_LOCK_TIMEOUT`` (see :mod:`.settings`).
"""
from __future__ import annotations

from .cli import add_models_parser
from .manifest import Manifest, builtin_models_dir, find_manifest, list_manifests, load_manifest
from .resolve import ModelFiles, resolve_model

__all__ = [
    "ModelFiles",
    "resolve_model",
    "add_models_parser",
    "Manifest",
    "find_manifest",
    "list_manifests",
    "load_manifest",
    "builtin_models_dir",
]
