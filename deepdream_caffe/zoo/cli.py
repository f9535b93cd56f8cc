"""``deepdream-caffe models list|fetch|path|verify``: the zoo on the command line."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional, Sequence

from ..errors import DeepDreamError, SettingError, one_line
from . import cache as zcache
from .manifest import Broken, Manifest, find_manifest, scan_manifests
from .resolve import caffe_root_dir, locate, resolve_model


def add_models_parser(subparsers) -> None:
    """Add the ``models`` command (list/fetch/path/verify) to an argparse subparsers object.

    Every leaf sets ``func(args) -> int`` and takes ``--models-dir`` (repeatable); those that
    download (fetch, path) take ``--mirror``, those that print progress or rows ``--quiet``.
    """
    dirs = argparse.ArgumentParser(add_help=False)
    dirs.add_argument(
        "--models-dir", action="append", type=Path, metavar="DIR", default=None,
        help="extra folder of <name>/model.toml manifests, searched first (repeatable; "
        "also $DEEPDREAM_CAFFE_MODELS, colon-separated)",
    )
    quiet = argparse.ArgumentParser(add_help=False)
    quiet.add_argument("-q", "--quiet", action="store_true", help="no progress bars or chatter")
    # Only the commands that download take a mirror.
    mirror = argparse.ArgumentParser(add_help=False)
    mirror.add_argument(
        "--mirror", metavar="BASE_URL", default=None,
        help="fetch each file from BASE_URL/<file name> first (also $DEEPDREAM_CAFFE_MIRROR)",
    )

    models = subparsers.add_parser(
        "models", help="list, fetch and check the nets DeepDream uses",
        description="The model zoo: manifests in models/<name>/model.toml, files cached in "
        "$DEEPDREAM_CAFFE_CACHE (default ~/.cache/deepdream-caffe), checked by sha1.",
    )
    sub = models.add_subparsers(dest="models_command", metavar="COMMAND")
    models.set_defaults(func=lambda args: _usage(models))

    p = sub.add_parser("list", parents=[dirs],
                       help="known models: size, cached or not, default --layer, license")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("fetch", parents=[dirs, mirror, quiet], help="download and verify models now")
    p.add_argument("names", nargs="+", metavar="NAME")
    p.set_defaults(func=cmd_fetch)

    p = sub.add_parser("path", parents=[dirs, mirror, quiet], help="print a model's local prototxt and weights paths")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--fetch", action="store_true", help="download the model if it is not here yet")
    p.set_defaults(func=cmd_path)

    p = sub.add_parser("verify", parents=[dirs, quiet], help="re-hash local model files against their sha1")
    p.add_argument("names", nargs="*", metavar="NAME",
                   help="models to check, each file present (default: every file downloaded so far)")
    p.set_defaults(func=cmd_verify)


def cmd_list(args: argparse.Namespace) -> int:
    """The table of models; a broken manifest is a row saying so, and one line on stderr."""
    rows = [("NAME", "SIZE", "CACHED", "DEFAULT LAYER", "LICENSE", "DESCRIPTION")]
    broken = []
    for m in scan_manifests(args.models_dir):
        if isinstance(m, Broken):
            rows.append((m.name, "-", "-", "-", "-", "BROKEN manifest (see the error below)"))
            broken.append(m.reason)
        else:
            rows.append((m.name, _size(m), _presence(m), m.default_layer, m.license,
                         m.description + _source_note(m)))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r[:5], widths)) + "  " + r[5])
    for message in broken:
        _error(message)
    return 1 if broken else 0


def cmd_fetch(args: argparse.Namespace) -> int:
    failed = 0
    for name in args.names:
        try:
            files = resolve_model(name, models_dirs=args.models_dir, mirror=args.mirror, fetch=True, quiet=args.quiet)
        except DeepDreamError as e:
            if len(args.names) == 1:
                raise
            # Carry on with the other models; each failure is its own line.
            _error(_line(e))
            failed += 1
            continue
        if not args.quiet:
            print(f"{name}: ready ({files.prototxt.parent})")
    return 1 if failed else 0


def cmd_path(args: argparse.Namespace) -> int:
    files = resolve_model(args.name, models_dirs=args.models_dir, mirror=args.mirror, fetch=args.fetch,
                          quiet=args.quiet)
    print(files.prototxt)
    print(files.weights)
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    """Re-hash every local copy; exit 1 if any file is wrong or broken, or missing from a model named.

    With no names, what is downloaded is checked: a model not fetched (or only its prototxt, as
    ``layers`` fetches it) is not an error.
    """
    bad = 0
    manifests = []
    if args.names:
        for name in args.names:
            try:
                manifests.append(find_manifest(name, args.models_dir))
            except DeepDreamError as e:
                _error(str(e))
                bad += 1
    else:
        for m in scan_manifests(args.models_dir):
            if isinstance(m, Broken):
                _error(m.reason)
                bad += 1
            else:
                manifests.append(m)
    rows = []
    for m in manifests:
        for spec in m.files:
            state = locate(m, spec)
            if state.verdict == "missing" and not state.rejected and not args.names:
                continue
            # A wrong copy under $CAFFE_ROOT is reported, even when the cache has a good one.
            for r in state.rejected:
                rows.append((m.name, spec.filename, _STATUS[r.verdict], _detail(r) + " (not used)"))
                bad += 1
            rows.append((m.name, spec.filename, _STATUS[state.verdict], _detail(state)))
            bad += state.verdict in ("mismatch", "invalid", "missing")
    if args.quiet:
        rows = [r for r in rows if r[2] not in ("ok", "unchecked")]
    if rows:
        widths = [max(len(r[i]) for r in rows) for i in range(3)]
        for r in rows:
            print("  ".join(c.ljust(w) for c, w in zip(r[:3], widths)) + "  " + r[3])
    elif not args.quiet and not bad:
        print("no model files downloaded yet: nothing to check")
    return 1 if bad else 0


_STATUS = {"ok": "ok", "mismatch": "MISMATCH", "invalid": "INVALID", "unrecorded": "unchecked",
           "missing": "missing"}


def _detail(state) -> str:
    if state.verdict == "ok":
        return str(state.path)
    if state.verdict == "mismatch":
        return f"{state.path}: sha1 {state.actual}, expected {state.expected}"
    if state.verdict == "invalid":
        return f"{state.path}: {state.reason}"
    if state.verdict == "unrecorded":
        return f"{state.path}: no hash published or recorded yet"
    return "not downloaded"


def _line(e: DeepDreamError) -> str:
    """The error's line, a setting named by its flag (the zoo's settings are their flags' names)."""
    return e.worded(lambda field: "--" + field) if isinstance(e, SettingError) else str(e)


def _error(message: str) -> None:
    print(f"deepdream-caffe: error: {one_line(message)}", file=sys.stderr)


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_usage(sys.stderr)
    print("deepdream-caffe models: choose a command: list, fetch, path or verify", file=sys.stderr)
    return 2


def _source_note(m: Manifest) -> str:
    """Where the files come from, for the models that do not name plain URLs."""
    return f" (files from the sdist of {m.pypi} on the Python package index, via pip)" if m.pypi else ""


def _local_copies(m: Manifest) -> list[Optional[Path]]:
    """Where each file is present (unverified: listing must not hash gigabytes)."""
    root = caffe_root_dir(m.name)
    found = []
    for spec in m.files:
        places = ([root / spec.filename] if root is not None else []) + [zcache.model_dir(m.name) / spec.filename]
        found.append(next((p for p in places if p.is_file()), None))
    return found


def _presence(m: Manifest) -> str:
    prototxt, weights = (p is not None for p in _local_copies(m))
    return "yes" if prototxt and weights else "prototxt only" if prototxt else "weights only" if weights else "no"


def _size(m: Manifest) -> str:
    weights = _local_copies(m)[1]
    if weights is not None:
        return _human(weights.stat().st_size)
    if m.approx_size_mb is not None:
        return f"~{m.approx_size_mb:g} MB"
    return "?"


def _human(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"  # pragma: no cover


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the ``models`` command on its own (``python -m deepdream_caffe.zoo models ...``)."""
    parser = argparse.ArgumentParser(prog="deepdream-caffe")
    add_models_parser(parser.add_subparsers(dest="command", metavar="COMMAND", required=True))
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except DeepDreamError as e:
        _error(_line(e))
        return e.exit_code
    except KeyboardInterrupt:
        print("deepdream-caffe: interrupted", file=sys.stderr)
        return 130
