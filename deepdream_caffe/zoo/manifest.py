"""Model manifests: ``models/<name>/model.toml`` files, found and validated.

A manifest names where a net's two files come from, how to check them, and
how to feed the net (mean, channel order, default layer). Folders of
manifests are searched in order: ``--models-dir`` folders, then
``$DEEPDREAM_CAFFE_MODELS`` (colon-separated), then the repo's ``models/``;
the first folder holding a name wins, so users can shadow a built-in model.
"""
from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Optional, Sequence
from urllib.parse import unquote, urlsplit

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - the project venv is 3.11; pyproject pulls tomli for older ones
    import tomli as tomllib


from ..errors import DeepDreamError

MODELS_ENV = "DEEPDREAM_CAFFE_MODELS"
MANIFEST_NAME = "model.toml"
ROLES = ("prototxt", "weights")

# Names become folder names in the cache and in URLs' file names: keep them tame.
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")
_SHA1_RE = re.compile(r"^[0-9a-f]{40}$")

_REQUIRED = ("description", "license", "prototxt_url", "weights_url", "mean", "channel_swap", "default_layer")
_OPTIONAL = ("prototxt_sha1", "weights_sha1", "archive_member", "approx_size_mb")


@dataclass(frozen=True)
class FileSpec:
    """One of a model's two files: where it comes from and what it must hash to."""

    role: str  # "prototxt" or "weights"
    url: str
    sha1: Optional[str]  # published hash; None means trust on first use
    member: Optional[str]  # path inside the tarball at ``url``, if it is one
    filename: str  # the local file name, in the cache and in $CAFFE_ROOT/models/<name>/

    @property
    def download_name(self) -> str:
        """The file name the URL serves (the tarball's name for archive members)."""
        return url_file_name(self.url)


@dataclass(frozen=True)
class Manifest:
    """A parsed, validated ``model.toml``."""

    name: str
    path: Path
    description: str
    license: str
    mean: tuple[float, float, float]
    channel_swap: tuple[int, int, int]
    default_layer: str
    prototxt: FileSpec
    weights: FileSpec
    approx_size_mb: Optional[float] = None

    @property
    def files(self) -> tuple[FileSpec, FileSpec]:
        return (self.prototxt, self.weights)


def builtin_models_dir() -> Path:
    """The built-in manifests, shipped inside the package (``zoo/models/``)."""
    return Path(__file__).resolve().parent / "models"


def search_dirs(models_dirs: Optional[Sequence[Path]] = None) -> list[Path]:
    """Manifest folders in search order: explicit, then the environment, then built-in."""
    dirs = [Path(d) for d in (models_dirs or [])]
    env = os.environ.get(MODELS_ENV, "")
    dirs += [Path(p) for p in env.split(os.pathsep) if p]
    dirs.append(builtin_models_dir())
    return dirs


def url_file_name(url: str) -> str:
    """Last path segment of a URL, unquoted (``.../x%20y.caffemodel`` -> ``x y.caffemodel``)."""
    return unquote(PurePosixPath(urlsplit(url).path).name)


def check_name(name: str) -> None:
    if not _NAME_RE.match(name or ""):
        raise DeepDreamError(
            f"invalid model name {name!r}: use letters, digits and '_.+-' (e.g. bvlc_googlenet)"
        )


def available_names(models_dirs: Optional[Sequence[Path]] = None) -> list[str]:
    """Every model name with a manifest in any search folder, sorted."""
    names = set()
    for d in search_dirs(models_dirs):
        if not d.is_dir():
            continue
        for sub in d.iterdir():
            if (sub / MANIFEST_NAME).is_file() and _NAME_RE.match(sub.name):
                names.add(sub.name)
    return sorted(names)


def find_manifest(name: str, models_dirs: Optional[Sequence[Path]] = None) -> Manifest:
    """Load the first manifest for ``name`` in the search folders."""
    check_name(name)
    for d in search_dirs(models_dirs):
        path = d / name / MANIFEST_NAME
        if path.is_file():
            return load_manifest(path, name)
    known = available_names(models_dirs)
    listed = ", ".join(known) if known else "none"
    raise DeepDreamError(
        f"unknown model '{name}'; known models: {listed} "
        f"(add your own as DIR/{name}/{MANIFEST_NAME} and pass --models-dir DIR)"
    )


def list_manifests(models_dirs: Optional[Sequence[Path]] = None) -> tuple[list[Manifest], list[str]]:
    """All models, first folder wins per name; also the one-line errors of broken manifests."""
    found, errors = [], []
    for name in available_names(models_dirs):
        try:
            found.append(find_manifest(name, models_dirs))
        except DeepDreamError as e:
            errors.append(str(e))
    return found, errors


def load_manifest(path: Path, name: Optional[str] = None) -> Manifest:
    """Parse and validate one manifest; any problem is a one-line DeepDreamError naming the file."""
    path = Path(path)
    name = name or path.parent.name
    check_name(name)
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except OSError as e:
        raise DeepDreamError(f"cannot read model manifest {path}: {e.strerror or e}") from None
    except tomllib.TOMLDecodeError as e:
        raise DeepDreamError(f"model manifest {path} is not valid TOML: {e}") from None

    def bad(msg: str) -> DeepDreamError:
        return DeepDreamError(f"model manifest {path}: {msg}")

    missing = [k for k in _REQUIRED if k not in data]
    if missing:
        raise bad(f"missing key{'s' if len(missing) > 1 else ''} {', '.join(missing)}")
    unknown = sorted(set(data) - set(_REQUIRED) - set(_OPTIONAL))
    if unknown:
        # A typo such as "weight_sha1" would otherwise silently turn a checked file into a TOFU one.
        raise bad(f"unknown key{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}")

    for key in ("description", "license", "default_layer"):
        if not isinstance(data[key], str) or not data[key].strip():
            raise bad(f"'{key}' must be a non-empty string")
    description = data["description"].strip()
    if "\n" in description:
        raise bad("'description' must be one line")

    mean = data["mean"]
    if (
        not isinstance(mean, list)
        or len(mean) != 3
        or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in mean)
    ):
        raise bad("'mean' must be three numbers [B, G, R]")
    swap = data["channel_swap"]
    if not isinstance(swap, list) or sorted(swap) != [0, 1, 2] or any(isinstance(v, bool) for v in swap):
        raise bad("'channel_swap' must be a permutation of [0, 1, 2], e.g. [2, 1, 0]")

    members = data.get("archive_member", {})
    if not isinstance(members, dict) or set(members) - set(ROLES):
        raise bad("'archive_member' must be a table with keys 'prototxt' and/or 'weights'")
    for role, m in members.items():
        if not isinstance(m, str) or not m.strip() or m.startswith("/"):
            raise bad(f"archive_member.{role} must be a relative path inside the archive")

    specs = {}
    for role in ROLES:
        url = data[f"{role}_url"]
        if not isinstance(url, str) or not _good_url(url):
            raise bad(f"'{role}_url' is not an http(s) URL to a file: {url!r}")
        sha1 = data.get(f"{role}_sha1")
        if sha1 is not None:
            if not isinstance(sha1, str) or not _SHA1_RE.match(sha1.lower()):
                raise bad(f"'{role}_sha1' must be 40 hex digits")
            sha1 = sha1.lower()
        member = members.get(role)
        filename = PurePosixPath(member).name if member else url_file_name(url)
        if not filename or filename.startswith(".") or any(c in filename for c in "/\\\0"):
            raise bad(f"cannot tell a local file name for the {role} from {member or url!r}")
        specs[role] = FileSpec(role, url, sha1, member, filename)

    p, w = specs["prototxt"], specs["weights"]
    if p.filename == w.filename:
        raise bad(f"the prototxt and the weights would both be stored as '{p.filename}'")
    for spec in (p, w):
        if spec.member and spec.filename == spec.download_name:
            raise bad(f"the {spec.role} member has the same name as the archive it comes from")
    if p.url == w.url and not (p.member and w.member):
        raise bad("prototxt_url and weights_url are the same URL but not both archive members")

    size = data.get("approx_size_mb")
    if size is not None and (not isinstance(size, (int, float)) or isinstance(size, bool) or size <= 0):
        raise bad("'approx_size_mb' must be a positive number")

    return Manifest(
        name=name,
        path=path,
        description=description,
        license=data["license"].strip(),
        mean=(float(mean[0]), float(mean[1]), float(mean[2])),
        channel_swap=(int(swap[0]), int(swap[1]), int(swap[2])),
        default_layer=data["default_layer"].strip(),
        prototxt=p,
        weights=w,
        approx_size_mb=float(size) if size is not None else None,
    )


def _good_url(url: str) -> bool:
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname) and bool(url_file_name(url)) and not any(
        c.isspace() for c in url
    )
