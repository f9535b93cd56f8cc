"""The tasks of a batch: one per (input, setting), each with its seed, output path and finished-key.

Seeds: each image's seed is derived from the batch's one ``--seed`` and the
input's file name (not its folder), by :func:`image_seed`: the first 4 bytes
(big-endian) of SHA-256 of ``"<seed>:<file name>"``. It is stable across
machines, Python versions and runs, and recorded with the output. All
settings of a sweep use the same seed for an image, so they differ only by
the setting.
"""
from __future__ import annotations

import dataclasses
import hashlib
import os
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from ...errors import DeepDreamError
from ...io.files import MAX_IMAGE_BYTES, check_regular
from ...io.hashing import sha1_file
from ...io.image import image_format, read_metadata
from ..config import DreamConfig
from ..pipeline import DreamSession, net_files, output_files
from ..run import TOOL, run_key

METADATA_KEY = "batch"  # where a batch's own record sits in an output's metadata


def image_seed(seed: int, name: str) -> int:
    """The seed of the image called ``name`` (a file name) in a batch run with ``seed``: a stable hash."""
    digest = hashlib.sha256(f"{int(seed)}:{name}".encode("utf-8")).digest()
    return int.from_bytes(digest[:4], "big")


@dataclass(frozen=True)
class Setting:
    """One column of a sweep: the config for it, its label, and the ``dream`` flags that repeat it.

    ``values`` are the swept options (``{"layer": "inception_3b/output"}``);
    empty for a batch without a sweep. ``flags`` are the dream options
    without ``--seed`` and ``-o`` (the batch adds those per image).
    """

    config: DreamConfig
    values: Tuple[Tuple[str, Any], ...] = ()
    flags: Tuple[str, ...] = ()

    @property
    def label(self) -> str:
        """``layer=inception_3b/output octaves=3``, or ``""`` without a sweep."""
        return " ".join(f"{k}={v}" for k, v in self.values)

    @property
    def slug(self) -> str:
        """The label as part of a file name: ``layer-inception_3b_output.octaves-3``."""
        return ".".join(f"{k}-{re.sub(r'[^A-Za-z0-9_+-]+', '_', str(v))}" for k, v in self.values)


@dataclass(frozen=True)
class BatchTask:
    """One dream of a batch: ``input`` with ``setting`` (config seeded for this image) into ``output``."""

    index: int
    input: Path
    output: Path
    setting: Setting
    seed: int
    key: str  # the hash of all that decides the output; an output recording it is finished

    @property
    def config(self) -> DreamConfig:
        return self.setting.config

    @property
    def name(self) -> str:
        """How the task is named in progress and failure lines."""
        return f"{self.input.name} [{self.setting.label}]" if self.setting.label else self.input.name


def config_record(config: DreamConfig) -> Dict[str, Any]:
    """The config's fields that decide the pixels (not the device or the log level)."""
    rec = dataclasses.asdict(config)
    for k in ("verbose", "gpu"):
        rec.pop(k, None)
    return rec


def output_name(inp: Path, setting: Setting, ext: str) -> str:
    """``photo.jpg`` for a plain batch, ``photo.layer-x.octaves-3.jpg`` in a sweep."""
    return f"{inp.stem}.{setting.slug}{ext}" if setting.values else f"{inp.stem}{ext}"


def plan_tasks(inputs: Sequence[Path], settings: Sequence[Setting], out_dir: Path, seed: int,
               ext: str = ".jpg") -> List[BatchTask]:
    """Every (input, setting) pair as a task, inputs outer; refuses clashing names or a missing input."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise DeepDreamError(f"the output folder {out_dir} is not a folder")
    if not ext.startswith("."):
        ext = "." + ext
    if not re.fullmatch(r"\.[A-Za-z0-9]+", ext):
        raise DeepDreamError(f"--ext wants an image extension such as .jpg or .png, got {ext!r}")
    image_format(Path("x" + ext))
    # Absolute paths: a worker may run in another folder (or on another machine sharing the paths).
    out_dir = out_dir.absolute()
    inputs = [Path(p).absolute() for p in inputs]
    if not inputs:
        raise DeepDreamError("no input images given")
    stems: Dict[str, Path] = {}
    for p in inputs:
        check_regular(p, "input", MAX_IMAGE_BYTES)  # before it is hashed
        if p.stem in stems and stems[p.stem] != p:
            raise DeepDreamError(f"two inputs would write the same output name: {stems[p.stem]} and {p}")
        stems[p.stem] = p
    reads = [*inputs, *(p for s in settings for p in (s.config.guide, *net_files(s.config)))]
    tasks: List[BatchTask] = []
    hashes: Dict[Path, str] = {}
    for p in dict.fromkeys(inputs):
        s = image_seed(seed, p.name)
        sha1 = hashes.setdefault(p, sha1_file(p))
        for setting in settings:
            cfg = replace(setting.config, seed=s)
            out = out_dir / output_name(p, setting, ext)
            output_files(out, reads).check()
            if os.path.lexists(out) and not made_here(out):
                raise DeepDreamError(f"{out} is there and was not made by this tool; refusing to replace it "
                                     "(choose another --out-dir)")
            key = run_key(config_record(cfg), s, sha1)
            tasks.append(BatchTask(len(tasks), p, out, replace(setting, config=cfg), s, key))
    return tasks


def check_settings(settings: Sequence[Setting]) -> None:
    """Refuse, before any cluster starts, a setting whose net, layer or guide is wrong (one line).

    Runs the session's cheap checks here (the net is not loaded); a model
    from the zoo is fetched here once, so workers sharing this disk find it.
    """
    for s in settings:
        DreamSession(s.config)


def made_here(output: Path) -> bool:
    """Whether ``output`` is an image whose record (its PNG text or ``OUT.json``) says this tool made it."""
    try:
        meta = read_metadata(output) if output.is_file() and not output.is_symlink() else None
    except (OSError, ValueError):
        return False
    return isinstance(meta, dict) and meta.get("tool") == TOOL


def recorded_key(output: Path) -> Optional[str]:
    """The finished-key recorded with ``output``, or None (missing, unreadable, or not from a batch)."""
    try:
        if not output.is_file():
            return None
        meta = read_metadata(output)
    except (OSError, ValueError, DeepDreamError):
        return None
    rec = (meta or {}).get(METADATA_KEY)
    return rec.get("key") if isinstance(rec, dict) else None


def is_finished(task: BatchTask) -> bool:
    """True when the output exists and records exactly this task's parameters."""
    return recorded_key(task.output) == task.key
