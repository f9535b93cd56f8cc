"""From a model name to two verified local files, fetching them if need be.

Each of a model's files is taken from the first place that has it with the
right hash: ``$CAFFE_ROOT/models/<name>/`` (the notebook's layout), then the
cache, then the network (``--mirror`` first, then the manifest's URL). The
right hash is the manifest's, or else the one recorded beside the cached file
at first use (trust on first use), checked on every later use. A file whose
hash nobody publishes must also be the kind of file asked for (a prototxt, a
caffemodel) before its hash is recorded, and on every use after.

Nothing that may be the only copy is deleted: a cached file with the wrong
hash is moved aside to ``<file>.bad-<sha1>``, and files under
``$CAFFE_ROOT`` are never touched, only reported.
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Sequence
from urllib.parse import quote, urlsplit

from ..errors import DeepDreamError, SettingError, one_line
from ..io.atomic import os_reason
from ..io.hashing import sha1_file
from ..net.caffe_env import find_caffe_root
from . import cache as zcache
from . import names
from .archive import extract_members
from .content import MAX_CAFFEMODEL_BYTES, MAX_PROTOTXT_BYTES, check_file
from .download import DiskError, DownloadError, HashMismatch, download
from .manifest import FileSpec, Manifest, find_manifest, url_file_name
from .pypi import fetch_from_pypi
from .settings import Settings, lock_timeout

MIRROR_ENV = "DEEPDREAM_CAFFE_MIRROR"
# A tarball holds both files and the publisher's extras; more than this is not a model.
MAX_ARCHIVE_BYTES = 4 << 30
_LIMITS = {"prototxt": MAX_PROTOTXT_BYTES, "weights": MAX_CAFFEMODEL_BYTES}


@dataclass(frozen=True)
class ModelFiles:
    """A model ready to load: verified local files and how to feed the net."""

    name: str
    prototxt: Path  # local, verified
    weights: Optional[Path]  # local, verified (None when only the prototxt was asked for)
    weights_sha1: Optional[str]  # hex sha1 of the weights actually used
    mean: tuple[float, float, float]  # B, G, R
    channel_swap: tuple[int, int, int]  # e.g. (2, 1, 0): RGB image -> BGR net input
    default_layer: str
    description: str
    license: str
    labels: Optional[Path] = None  # the manifest's class names file, if it names one


@dataclass(frozen=True)
class FileState:
    """Where one of a model's files is found and whether it is right."""

    spec: FileSpec
    path: Optional[Path]  # None when neither $CAFFE_ROOT nor the cache has it
    where: str  # "caffe_root", "cache" or "" when missing
    # "ok", "mismatch" (wrong hash), "invalid" (not the kind of file asked for),
    # "unrecorded" (no hash known yet) or "missing"
    verdict: str
    actual: Optional[str] = None
    expected: Optional[str] = None
    expected_from: str = ""  # "manifest" or the record's path
    reason: str = ""  # why an "invalid" file is not what was asked for
    rejected: tuple = field(default=())  # bad copies seen elsewhere ($CAFFE_ROOT), as FileStates

    def problem(self) -> str:
        """One phrase on what is wrong with this copy."""
        if self.verdict == "mismatch":
            return f"{self.path} has sha1 {self.actual}, expected {self.expected} ({_source(self.expected_from)})"
        if self.verdict == "invalid":
            return f"{self.path} is {self.reason}"
        return f"{self.spec.filename} is {self.verdict}"


def resolve_model(
    name: str,
    *,
    models_dirs: Optional[Sequence[Path]] = None,
    mirror: Optional[str] = None,
    fetch: bool = True,
    quiet: bool = False,
    roles: Sequence[str] = ("prototxt", "weights"),
) -> ModelFiles:
    """Find model ``name``'s manifest and return its verified local files.

    Uses ``$CAFFE_ROOT/models/<name>/`` copies when their hashes check out,
    else the cache, else downloads (when ``fetch``). Only the files of
    ``roles`` are looked for (``("prototxt",)``: shapes need no weights).
    Any failure is one DeepDreamError line saying what went wrong and what to do.
    """
    manifest = find_manifest(name, models_dirs)
    mirror = mirror_base(mirror)
    settings = Settings.from_env()  # bad settings fail before anything is touched
    lock_timeout()
    warn = _Warner(quiet)
    hashes = _HashMemo()
    cache_dir = zcache.model_dir(manifest.name)

    states = [locate(manifest, spec, hashes=hashes, warn=warn) for spec in manifest.files if spec.role in roles]
    if any(s.verdict != "ok" for s in states):
        gaps = [s for s in states if s.verdict != "unrecorded"]
        if gaps and not fetch:
            raise DeepDreamError(_not_available(manifest, gaps, cache_dir))
        zcache.ensure_dir(cache_dir)  # before the lock, for the clearest error when it cannot be
        with zcache.model_lock(manifest.name, quiet=quiet):
            states = _complete_locked(manifest, states, fetch, mirror, settings, quiet, warn, hashes)

    warn.flush()
    by_role = {s.spec.role: s for s in states}
    weights = by_role.get("weights")
    return ModelFiles(
        name=manifest.name,
        prototxt=by_role["prototxt"].path,
        weights=weights.path if weights else None,
        weights_sha1=weights.actual if weights else None,
        mean=manifest.mean,
        channel_swap=manifest.channel_swap,
        default_layer=manifest.default_layer,
        description=manifest.description,
        license=manifest.license,
        labels=manifest.labels,
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
            raise DeepDreamError(_not_available(manifest, gaps, cache_dir))
        moved = []
        for s in gaps:
            if s.where == "cache" and s.verdict in ("mismatch", "invalid"):
                aside = zcache.set_aside(s.path, s.actual)
                if s.verdict == "invalid" and s.expected_from not in ("", "manifest"):
                    # The record holds this bad file's hash (now in its new name): it is no truth.
                    zcache.remove_record(cache_dir, s.spec.filename)
                moved.append(f"{s.problem()}, so it was moved to {aside.name}")
                warn(f"{moved[-1]}; fetching it again")
        try:
            fetched = _fetch(manifest, gaps, cache_dir, mirror, settings, quiet)
        except DeepDreamError as e:
            if not moved:
                raise
            # Say why a file that was here is being fetched at all.
            raise DeepDreamError(f"{'; '.join(moved)}; fetching it again failed: {e}") from None
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
    """Find ``spec``'s file in $CAFFE_ROOT or the cache and judge it.

    With ``record``, a file whose hash nobody knows yet has it recorded now
    (trust on first use) if its content is the kind asked for; the caller
    must hold the model's lock. Bad copies under $CAFFE_ROOT are reported
    through ``warn`` and in ``rejected``, never touched.
    """
    hashes = hashes or _HashMemo()
    cache_dir = zcache.model_dir(manifest.name)
    places = []
    root = caffe_root_dir(manifest.name)
    if root is not None:
        places.append((root / spec.filename, "caffe_root"))
    places.append((names.inside(cache_dir, spec.filename), "cache"))

    rejected: list[FileState] = []
    in_cache = None
    for path, where in places:
        if not path.is_file():
            continue
        state = _judge(spec, path, where, cache_dir, hashes, record)
        if state.verdict in ("ok", "unrecorded"):
            return _with(state, rejected)
        if where == "caffe_root":
            rejected.append(state)
            if warn is not None:
                warn(f"ignoring {state.problem()}")
        else:
            in_cache = state
    return _with(in_cache or FileState(spec, None, "", "missing"), rejected)


def _with(state: FileState, rejected: list) -> FileState:
    if not rejected:
        return state
    return FileState(state.spec, state.path, state.where, state.verdict, state.actual, state.expected,
                     state.expected_from, state.reason, tuple(rejected))


def _judge(spec: FileSpec, path: Path, where: str, cache_dir: Path, hashes: "_HashMemo", record: bool) -> FileState:
    try:
        actual = hashes(path)
    except OSError as e:
        raise DeepDreamError(f"cannot read {path}: {os_reason(e)}") from None
    if spec.sha1:
        expected, source = spec.sha1, "manifest"
    else:
        expected = zcache.read_record(cache_dir, spec.filename)
        source = str(zcache.record_path(cache_dir, spec.filename))
    if expected is not None and actual != expected:
        return FileState(spec, path, where, "mismatch", actual, expected, source)
    if not spec.sha1:
        # No published hash: the bytes must be a prototxt or a caffemodel before their hash
        # means anything (a record made by an older version may hold a web page's).
        reason = hashes.content_problem(spec.role, path)
        if reason:
            return FileState(spec, path, where, "invalid", actual, expected, source if expected else "", reason)
    if expected is None:
        if not record:
            return FileState(spec, path, where, "unrecorded", actual)
        zcache.write_record(cache_dir, spec.filename, actual)
        return FileState(spec, path, where, "ok", actual, actual, source)
    return FileState(spec, path, where, "ok", actual, expected, source)


def _fetch(
    manifest: Manifest,
    gaps: list[FileState],
    cache_dir: Path,
    mirror: Optional[str],
    settings: Settings,
    quiet: bool,
) -> dict[str, tuple[Path, str]]:
    """Download the files of ``gaps`` into the cache; role -> (path, sha1). Caller holds the lock."""
    if manifest.pypi:
        return fetch_from_pypi(manifest, [s.spec for s in gaps], cache_dir, settings, quiet)
    done: dict[str, tuple[Path, str]] = {}
    by_url: dict[str, list[FileState]] = {}
    for s in gaps:
        by_url.setdefault(s.spec.url, []).append(s)
    for url, group in by_url.items():
        if group[0].spec.member:
            done.update(_fetch_archive(manifest, url, group, cache_dir, mirror, settings, quiet))
        else:
            done[group[0].spec.role] = _fetch_file(manifest, group[0], cache_dir, mirror, settings, quiet)
    return done


def _candidates(url: str, mirror: Optional[str]) -> list[str]:
    urls = [f"{mirror}/{quote(url_file_name(url))}"] if mirror else []
    return urls + [url]


def within_reach(name: str, models_dirs: Optional[Sequence[Path]] = None) -> Optional[str]:
    """How model ``name`` can be had without a mirror: "cached", "fetchable with pip" (its files come from
    the Python package index; whether pip reaches it is not tried), or None."""
    try:
        manifest = find_manifest(name, models_dirs)
    except DeepDreamError:
        return None
    if all(locate(manifest, spec).verdict in ("ok", "unrecorded") for spec in manifest.files):
        return "cached"
    return "fetchable with pip" if manifest.pypi else None


def _fetch_file(manifest, state, cache_dir, mirror, settings, quiet) -> tuple[Path, str]:
    spec = state.spec
    dest = names.inside(cache_dir, spec.filename)
    expected = spec.sha1 or zcache.read_record(cache_dir, spec.filename)
    source = "manifest" if spec.sha1 else str(zcache.record_path(cache_dir, spec.filename))
    errors, mismatches = [], []
    urls = _candidates(spec.url, mirror)
    for url in urls:
        try:
            sha1 = download(
                url, dest, expected_sha1=expected, label=f"{manifest.name} {spec.filename}",
                quiet=quiet, settings=settings, max_bytes=_LIMITS[spec.role],
                check=lambda part, role=spec.role: check_file(role, part),
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
                zcache.remove_quietly(names.part_path(dest))
            continue
        if expected is None:
            zcache.write_record(cache_dir, spec.filename, sha1)
        return dest, sha1
    raise SettingError(_fetch_failed(manifest, [state], cache_dir, errors, mismatches))


def _fetch_archive(manifest, url, group, cache_dir, mirror, settings, quiet) -> dict[str, tuple[Path, str]]:
    specs = [s.spec for s in group]
    tarball = names.inside(cache_dir, url_file_name(url), "archive")
    dests = {s.member: names.inside(cache_dir, s.filename) for s in specs}
    limits = {s.member: _LIMITS[s.role] for s in specs}
    errors, mismatches = [], []
    for cand in _candidates(url, mirror):
        try:
            # A tarball is read as it comes: a server that labels a .tar.gz as gzip-encoded
            # sends the same bytes, and tarfile opens either.
            download(cand, tarball, label=f"{manifest.name} {tarball.name}", quiet=quiet, settings=settings,
                     max_bytes=MAX_ARCHIVE_BYTES, encoded_ok=True)
            sums = extract_members(tarball, dests, limits)
            expected = {s.member: s.sha1 or zcache.read_record(cache_dir, s.filename) for s in specs}
            for s in specs:
                part = names.part_path(dests[s.member])
                if expected[s.member] and sums[s.member] != expected[s.member]:
                    source = "manifest" if s.sha1 else str(zcache.record_path(cache_dir, s.filename))
                    raise HashMismatch(cand, sums[s.member], expected[s.member], f"member {s.member}, "
                                       f"{_source(source)}")
                if expected[s.member] is None:
                    try:
                        check_file(s.role, part)
                    except OSError as e:
                        raise DiskError(f"cannot read {part}: {os_reason(e)}") from None
                    except DeepDreamError as e:
                        raise DeepDreamError(f"{tarball.name}: member {s.member} is {e}") from None
            out = {}
            for s in specs:
                if expected[s.member] is None:
                    zcache.write_record(cache_dir, s.filename, sums[s.member])
                try:
                    os.replace(names.part_path(dests[s.member]), dests[s.member])
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
        except DeepDreamError as e:  # a broken tarball, a missing or refused member, a member of the wrong kind
            errors.append(f"{cand}: {e}")
        finally:
            # The tarball is only a vehicle: never keep it, and never keep a half-extracted member.
            zcache.remove_quietly(tarball)
            zcache.remove_quietly(names.part_path(tarball))
            for d in dests.values():
                zcache.remove_quietly(names.part_path(d))
    raise SettingError(_fetch_failed(manifest, group, cache_dir, errors, mismatches, archive=True))


def _fetch_failed(manifest, group, cache_dir, errors, mismatches, archive=False) -> str:
    spec = group[0].spec
    what = f"{manifest.name} {'files' if archive else spec.role}"
    if mismatches and not errors:
        return f"{what}: {'; '.join(mismatches)}; nothing was kept"
    problems = "; ".join(mismatches + errors)
    if archive:
        by_hand = (
            f"download {spec.url} by hand and extract "
            + ", ".join(f"{s.spec.member} to {cache_dir / s.spec.filename}" for s in group)
        )
    else:
        by_hand = f"download {spec.url} by hand to {cache_dir / spec.filename}"
    rejected = [r for s in group for r in s.rejected]
    if rejected:
        # Never tell the user to put a file where a wrong one already is.
        elsewhere = f" ({'; '.join(r.problem() for r in rejected)}: replace it with the right file)"
    else:
        elsewhere = f" (or into $CAFFE_ROOT/models/{manifest.name}/)"
    # A template ({mirror}): the API's line names its parameter, the command line's its flag.
    return f"cannot fetch {what}: {problems}. Without network, {by_hand}{elsewhere}, or use {{mirror=BASE_URL}}"


def _not_available(manifest: Manifest, gaps: list, cache_dir: Path) -> str:
    """Why the model cannot be used without fetching: every file's problem, wrong ones first, one line."""
    fetch = f"'deepdream-caffe models fetch {manifest.name}'"
    parts, missing = [], []
    for state in sorted(gaps, key=lambda s: s.verdict != "invalid"):
        if state.verdict == "mismatch":
            parts.append(f"{state.problem()}; run {fetch} to move it aside "
                         f"(to {names.bad_path(state.path, state.actual).name}) and fetch it again")
        elif state.verdict == "invalid":
            remove = str(state.path)
            if state.expected_from:
                remove += f" and its record {state.expected_from}"
            parts.append(f"{state.problem()}; run {fetch} to move it aside and fetch it again, or remove {remove}")
        elif state.rejected:
            # Never tell the user to put a file where a wrong one already is.
            bad = "; ".join(r.problem() for r in state.rejected)
            parts.append(f"model '{manifest.name}' has no usable {state.spec.filename}: {bad}; replace that file "
                         f"with the right one, or run {fetch} to download it into {cache_dir}")
        elif state.verdict == "missing":
            missing.append(state.spec.filename)
    if missing:
        parts.append(f"model '{manifest.name}' is not downloaded ({', '.join(missing)} missing); run "
                     f"{fetch} or place its files in {cache_dir}")
    return "; ".join(parts)


def _source(expected_from: str) -> str:
    if expected_from == "manifest":
        return "published hash in the manifest"
    return f"hash recorded at first download in {expected_from}"


class _Warner:
    """Warnings, each once, printed on stderr only when the model resolves (unless quiet).

    When resolving fails, the one error line already says what the warnings would.
    """

    def __init__(self, quiet: bool):
        self.quiet, self.seen = quiet, []

    def __call__(self, message: str) -> None:
        if message not in self.seen:
            self.seen.append(message)

    def flush(self) -> None:
        if not self.quiet:
            for message in self.seen:
                print(f"deepdream-caffe: warning: {one_line(message)}", file=sys.stderr)
        self.seen = []


class _HashMemo:
    """sha1 and content verdict of a file, computed once per call even when a file is looked at twice."""

    def __init__(self):
        self.known: dict[tuple, str] = {}
        self.content: dict[tuple, str] = {}

    @staticmethod
    def _key(path: Path) -> tuple:
        st = path.stat()
        return (str(path), st.st_size, st.st_mtime_ns, st.st_ino)

    def __call__(self, path: Path) -> str:
        key = self._key(path)
        if key not in self.known:
            self.known[key] = sha1_file(path)
        return self.known[key]

    def content_problem(self, role: str, path: Path) -> str:
        """Why ``path`` is not a ``role`` file, or ""."""
        key = (role,) + self._key(path)
        if key not in self.content:
            try:
                check_file(role, path)
                self.content[key] = ""
            except DeepDreamError as e:
                self.content[key] = str(e)
            except OSError as e:
                self.content[key] = f"cannot read it ({os_reason(e)})"
        return self.content[key]
