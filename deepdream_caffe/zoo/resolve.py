"""From a model name to two verified local files, fetching them if need be.

Each of a model's files is taken from the first place that has it with the
right hash: ``$CAFFE_ROOT/models/<name>/`` (the notebook's layout), then the
cache, then the network (``--mirror`` first, then the manifest's URL). The
right hash is the manifest's, or else the one recorded beside the cached file
at first use (trust on first use), checked on every later use.
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence
from urllib.parse import quote, urlsplit

from ..io.atomic import os_reason
from ..net.caffe_env import find_caffe_root
from ..errors import DeepDreamError
from ..io.hashing import sha1_file
from . import cache as zcache
from .archive import extract_members
from .download import DiskError, DownloadError, HashMismatch, Settings, download
from .manifest import FileSpec, Manifest, find_manifest, url_file_name

MIRROR_ENV = "DEEPDREAM_CAFFE_MIRROR"


@dataclass(frozen=True)
class ModelFiles:
    """A model ready to load: verified local files and how to feed the net."""

    name: str
    prototxt: Path  # local, verified
    weights: Path  # local, verified
    weights_sha1: str  # hex sha1 of the weights actually used
    mean: tuple[float, float, float]  # B, G, R
    channel_swap: tuple[int, int, int]  # e.g. (2, 1, 0): RGB image -> BGR net input
    default_layer: str
    description: str
    license: str


@dataclass(frozen=True)
class FileState:
    """Where one of a model's files is found and whether its hash is right."""

    spec: FileSpec
    path: Optional[Path]  # None when neither $CAFFE_ROOT nor the cache has it
    where: str  # "caffe_root", "cache" or "" when missing
    verdict: str  # "ok", "mismatch", "unrecorded" (no hash known yet) or "missing"
    actual: Optional[str] = None
    expected: Optional[str] = None
    expected_from: str = ""  # "manifest" or the record's path


def resolve_model(
    name: str,
    *,
    models_dirs: Optional[Sequence[Path]] = None,
    mirror: Optional[str] = None,
    fetch: bool = True,
    quiet: bool = False,
) -> ModelFiles:
    """Find model ``name``'s manifest and return its verified local files.

    Uses ``$CAFFE_ROOT/models/<name>/`` copies when their hashes check out,
    else the cache, else downloads (when ``fetch``). Any failure is one
    DeepDreamError line saying what went wrong and what to do.
    """
    manifest = find_manifest(name, models_dirs)
    mirror = mirror_base(mirror)
    settings = Settings.from_env()  # bad settings fail before anything is touched
    warn = _Warner(quiet)
    hashes = _HashMemo()
    cache_dir = zcache.model_dir(manifest.name)

    states = [locate(manifest, spec, hashes=hashes, warn=warn) for spec in manifest.files]
    if any(s.verdict != "ok" for s in states):
        gaps = [s for s in states if s.verdict in ("missing", "mismatch")]
        if gaps and not fetch:
            raise DeepDreamError(_not_available(manifest, gaps[0], cache_dir))
        zcache.ensure_dir(cache_dir)  # before the lock, for the clearest error when it cannot be
        with zcache.model_lock(manifest.name, quiet=quiet):
            states = _complete_locked(manifest, states, fetch, mirror, settings, quiet, warn, hashes)

    by_role = {s.spec.role: s for s in states}
    return ModelFiles(
        name=manifest.name,
        prototxt=by_role["prototxt"].path,
        weights=by_role["weights"].path,
        weights_sha1=by_role["weights"].actual,
        mean=manifest.mean,
        channel_swap=manifest.channel_swap,
        default_layer=manifest.default_layer,
        description=manifest.description,
        license=manifest.license,
    )


def _complete_locked(manifest, states, fetch, mirror, settings, quiet, warn, hashes) -> list[FileState]:
    """Record, repair or download what ``states`` lacks; the caller holds the model's lock."""
    cache_dir = zcache.model_dir(manifest.name)
    # A process that failed just before we got the lock may have removed the empty folder.
    zcache.ensure_dir(cache_dir)
    try:
        # Another process may have fetched or recorded while we waited.
        states = [
            s if s.verdict == "ok" else locate(manifest, s.spec, hashes=hashes, warn=warn, record=True)
            for s in states
        ]
        gaps = [s for s in states if s.verdict != "ok"]
        if not gaps:
            return states
        if not fetch:
            raise DeepDreamError(_not_available(manifest, gaps[0], cache_dir))
        damaged = []
        for s in gaps:
            if s.verdict == "mismatch" and s.where == "cache":
                damaged.append(
                    f"{s.path} had sha1 {s.actual}, expected {s.expected} "
                    f"({_source(s.expected_from)}), so it was removed"
                )
                warn(f"{damaged[-1]}; fetching it again")
                zcache.remove_quietly(s.path)
        try:
            fetched = _fetch(manifest, [s.spec for s in gaps], cache_dir, mirror, settings, quiet)
        except DeepDreamError as e:
            if not damaged:
                raise
            # Say why a file that was here is being fetched at all.
            raise DeepDreamError(f"{'; '.join(damaged)}; fetching it again failed: {e}") from None
        for i, s in enumerate(states):
            if s.verdict != "ok":
                path, sha1 = fetched[s.spec.role]
                states[i] = FileState(s.spec, path, "cache", "ok", sha1)
        return states
    finally:
        # A first download that failed leaves no empty folder behind (done under the lock,
        # so nobody is about to write into it).
        zcache.remove_dir_if_empty(cache_dir)


def mirror_base(mirror: Optional[str]) -> Optional[str]:
    """The mirror to try first: the argument, else $DEEPDREAM_CAFFE_MIRROR; checked to be a URL."""
    base = mirror if mirror is not None else os.environ.get(MIRROR_ENV, "")
    if not base:
        return None
    parts = urlsplit(base)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise DeepDreamError(f"mirror must be an http(s) base URL such as https://example.org/models, not {base!r}")
    return base.rstrip("/")


def caffe_root_dir(name: str) -> Optional[Path]:
    """``$CAFFE_ROOT/models/<name>/`` if there is a Caffe tree."""
    root = find_caffe_root()
    return root / "models" / name if root is not None else None


def locate(
    manifest: Manifest,
    spec: FileSpec,
    *,
    hashes: Optional["_HashMemo"] = None,
    warn: Optional[Callable[[str], None]] = None,
    record: bool = False,
) -> FileState:
    """Find ``spec``'s file in $CAFFE_ROOT or the cache and judge its hash.

    With ``record``, a file whose hash nobody knows yet has it recorded now
    (trust on first use); the caller must hold the model's lock.
    """
    hashes = hashes or _HashMemo()
    cache_dir = zcache.model_dir(manifest.name)
    places = []
    root = caffe_root_dir(manifest.name)
    if root is not None:
        places.append((root / spec.filename, "caffe_root"))
    places.append((cache_dir / spec.filename, "cache"))

    bad = None
    for path, where in places:
        if not path.is_file():
            continue
        actual = hashes(path)
        if spec.sha1:
            expected, source = spec.sha1, "manifest"
        else:
            expected = zcache.read_record(cache_dir, spec.filename)
            source = str(zcache.record_path(cache_dir, spec.filename))
        if expected is None:
            if not record:
                return FileState(spec, path, where, "unrecorded", actual)
            zcache.write_record(cache_dir, spec.filename, actual)
            return FileState(spec, path, where, "ok", actual, actual, source)
        state = FileState(spec, path, where, "ok" if actual == expected else "mismatch", actual, expected, source)
        if state.verdict == "ok":
            return state
        if where == "caffe_root" and warn is not None:
            warn(f"ignoring {path}: sha1 {actual}, expected {expected} ({_source(source)})")
        bad = state if where == "cache" else bad
    return bad or FileState(spec, None, "", "missing")


def _fetch(
    manifest: Manifest,
    specs: list[FileSpec],
    cache_dir: Path,
    mirror: Optional[str],
    settings: Settings,
    quiet: bool,
) -> dict[str, tuple[Path, str]]:
    """Download ``specs`` into the cache; role -> (path, sha1). Caller holds the lock."""
    done: dict[str, tuple[Path, str]] = {}
    by_url: dict[str, list[FileSpec]] = {}
    for spec in specs:
        by_url.setdefault(spec.url, []).append(spec)
    for url, group in by_url.items():
        if group[0].member:
            done.update(_fetch_archive(manifest, url, group, cache_dir, mirror, settings, quiet))
        else:
            spec = group[0]
            done[spec.role] = _fetch_file(manifest, spec, cache_dir, mirror, settings, quiet)
    return done


def _candidates(url: str, mirror: Optional[str]) -> list[str]:
    urls = [f"{mirror}/{quote(url_file_name(url))}"] if mirror else []
    return urls + [url]


def _fetch_file(manifest, spec, cache_dir, mirror, settings, quiet) -> tuple[Path, str]:
    dest = cache_dir / spec.filename
    expected = spec.sha1 or zcache.read_record(cache_dir, spec.filename)
    source = "manifest" if spec.sha1 else str(zcache.record_path(cache_dir, spec.filename))
    errors, mismatches = [], []
    urls = _candidates(spec.url, mirror)
    for url in urls:
        try:
            sha1 = download(
                url, dest, expected_sha1=expected, label=f"{manifest.name} {spec.filename}",
                quiet=quiet, settings=settings,
            )
        except DiskError as e:
            raise DeepDreamError(f"{e}; free some space or set {zcache.CACHE_ENV} to another disk") from None
        except HashMismatch as e:
            mismatches.append(f"{e} ({_source(source)})")
            continue
        except DownloadError as e:
            errors.append(f"{e.url}: {e.reason}")
            if url != urls[-1]:
                # The next URL starts clean so its bytes are judged on their own; the
                # last one's partial file stays to be resumed by the next try.
                zcache.remove_quietly(dest.with_name(dest.name + ".part"))
            continue
        if expected is None:
            zcache.write_record(cache_dir, spec.filename, sha1)
        return dest, sha1
    raise DeepDreamError(_fetch_failed(manifest, spec, dest, errors, mismatches))


def _fetch_archive(manifest, url, specs, cache_dir, mirror, settings, quiet) -> dict[str, tuple[Path, str]]:
    tarball = cache_dir / url_file_name(url)
    errors, mismatches = [], []
    for cand in _candidates(url, mirror):
        dests = {s.member: cache_dir / s.filename for s in specs}
        try:
            download(cand, tarball, label=f"{manifest.name} {tarball.name}", quiet=quiet, settings=settings)
            sums = extract_members(tarball, dests)
            expected = {s.member: s.sha1 or zcache.read_record(cache_dir, s.filename) for s in specs}
            for s in specs:
                if expected[s.member] and sums[s.member] != expected[s.member]:
                    source = "manifest" if s.sha1 else str(zcache.record_path(cache_dir, s.filename))
                    raise HashMismatch(cand, sums[s.member], expected[s.member], f"member {s.member}, "
                                       f"{_source(source)}")
            out = {}
            for s in specs:
                if expected[s.member] is None:
                    zcache.write_record(cache_dir, s.filename, sums[s.member])
                try:
                    os.replace(dests[s.member].with_name(dests[s.member].name + ".part"), dests[s.member])
                except OSError as e:
                    raise DiskError(f"cannot move {dests[s.member]} into place: {os_reason(e)}") from None
                out[s.role] = (dests[s.member], sums[s.member])
            return out
        except DiskError as e:
            raise DeepDreamError(f"{e}; free some space or set {zcache.CACHE_ENV} to another disk") from None
        except HashMismatch as e:
            mismatches.append(str(e))
        except DownloadError as e:
            errors.append(f"{e.url}: {e.reason}")
        except DeepDreamError as e:  # a broken tarball or a missing member
            errors.append(f"{cand}: {e}")
        finally:
            # The tarball is only a vehicle: never keep it, and never keep a half-extracted member.
            zcache.remove_quietly(tarball)
            zcache.remove_quietly(tarball.with_name(tarball.name + ".part"))
            for d in dests.values():
                zcache.remove_quietly(d.with_name(d.name + ".part"))
    raise DeepDreamError(_fetch_failed(manifest, specs[0], cache_dir / specs[0].filename, errors, mismatches,
                                       members=specs))


def _fetch_failed(manifest, spec, dest, errors, mismatches, members=None) -> str:
    what = f"{manifest.name} {spec.role if not members else 'files'}"
    if mismatches and not errors:
        return f"{what}: {'; '.join(mismatches)}; nothing was kept"
    problems = "; ".join(mismatches + errors)
    if members:
        by_hand = (
            f"download {spec.url} by hand and extract "
            + ", ".join(f"{s.member} to {dest.parent / s.filename}" for s in members)
        )
    else:
        by_hand = f"download {spec.url} by hand to {dest}"
    return (
        f"cannot fetch {what}: {problems}. Without network, {by_hand} "
        f"(or into $CAFFE_ROOT/models/{manifest.name}/), or use --mirror BASE_URL"
    )


def _not_available(manifest: Manifest, state: FileState, cache_dir: Path) -> str:
    if state.verdict == "mismatch":
        return (
            f"{state.path} has sha1 {state.actual}, expected {state.expected} ({_source(state.expected_from)}); "
            f"run 'deepdream-caffe models fetch {manifest.name}' to fetch it again"
        )
    return (
        f"model '{manifest.name}' is not downloaded ({state.spec.filename} missing); run "
        f"'deepdream-caffe models fetch {manifest.name}' or place its files in {cache_dir}"
    )


def _source(expected_from: str) -> str:
    if expected_from == "manifest":
        return "published hash in the manifest"
    return f"hash recorded at first download in {expected_from}"


class _Warner:
    """Print each warning once on stderr, unless quiet."""

    def __init__(self, quiet: bool):
        self.quiet, self.seen = quiet, set()

    def __call__(self, message: str) -> None:
        if not self.quiet and message not in self.seen:
            self.seen.add(message)
            print(f"deepdream-caffe: warning: {message}", file=sys.stderr)


class _HashMemo:
    """sha1 of a file, computed once per call even when a file is looked at twice."""

    def __init__(self):
        self.known: dict[tuple, str] = {}

    def __call__(self, path: Path) -> str:
        st = path.stat()
        key = (str(path), st.st_size, st.st_mtime_ns, st.st_ino)
        if key not in self.known:
            self.known[key] = sha1_file(path)
        return self.known[key]
