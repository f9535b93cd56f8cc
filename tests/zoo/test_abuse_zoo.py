"""The zoo attacked as a hostile manifest author, server and cache neighbour would attack it.

Each family below is a generator of crafted inputs: manifests, URLs, server
behaviours, tarballs, planted cache entries and environment values. Every
case runs against a real loopback server (bounded: it stops by itself, and
every client loop is bounded in requests and time), the command-line cases in
real subprocesses, a few at a time, each in a folder of its own with a canary
file beside its cache. Every case asserts the same promise:

* refused cases: exit != 0 and exactly one line on stderr saying why;
* survived cases (a planted link, a file that changed on the server, a
  redirect): exit 0 and the right bytes under the manifest's names;
* always: nothing outside the cache touched (the canary and the listing of
  the case's folder are unchanged), no partial or wrong file left under a
  model's name, no record of a wrong hash.

The total is written in docs/reliability.md ("N hostile zoo cases"); the last test
keeps that number honest.
"""
from __future__ import annotations

import gzip
import io
import os
import re
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional
from urllib.parse import quote

import pytest

from deepdream_caffe.errors import DeepDreamError
from deepdream_caffe.zoo import find_manifest, resolve_model
from httpserver import FileServer
from zoo_helpers import (
    REPO,
    ZooEnv,
    case_env,
    case_os_env,
    crafted_caffemodel,
    run_zoo_many,
    sha1,
    snapshot,
    write_manifest,
)

CANARY = b"the user's own notes: must never change\n"
HTML = b"<!DOCTYPE html><html><head><title>404</title></head><body>Not found, but 200 OK</body></html>\n"
SOLVER = b'net: "train_val.prototxt"\nbase_lr: 0.01\nmax_iter: 100\nsolver_mode: CPU\n'
OTHER_WEIGHTS = crafted_caffemodel([("conv1", [([8, 3, 3, 3], 216), ([8], 8)])])
COUNTS: dict[str, int] = {}  # family -> number of cases, for the docs/reliability.md check


@pytest.fixture(scope="module")
def srv():
    with FileServer(lifetime=600, max_requests=5000) as s:
        yield s


@dataclass
class Case:
    id: str
    z: ZooEnv
    args: list
    env: dict
    refused: Optional[str]  # a piece of the one error line; None: the command must succeed
    files: dict  # the right bytes of each file the model may have in its cache
    allow_part: bool = False  # a .part (a prefix of the right file) may stay, to be resumed
    ignore: tuple = ()  # cache entries the case planted itself and the zoo must leave alone
    before: dict = field(default_factory=dict)
    extra: Optional[Callable] = None  # further checks: extra(case, result)


def _new_case(tmp: Path, cid: str) -> ZooEnv:
    z = case_env(tmp / re.sub(r"[^\w.-]", "_", cid))
    (z.root / "notes.txt").write_bytes(CANARY)  # the victim the attacks aim at
    (z.root / "victim_dir").mkdir()
    (z.root / "victim_dir" / "deploy.prototxt").write_bytes(CANARY)
    return z


def _prepare(case: Case) -> Case:
    case.before = snapshot(case.z.root, case.z.cache)
    return case


def _check(case: Case, r) -> list[str]:
    """Everything the promise says, for one case; returns the broken parts."""
    out = []
    if case.refused is not None:
        if r.returncode == 0:
            out.append("exit 0, expected a refusal")
        lines = [line for line in r.stderr.splitlines() if line.strip()]
        if len(lines) != 1:
            out.append(f"{len(lines)} lines on stderr: {r.stderr[-600:]!r}")
        elif "error:" not in lines[0] or case.refused not in lines[0]:
            out.append(f"error line lacks {case.refused!r}: {lines[0]!r}")
    else:
        if r.returncode != 0 or r.stderr.strip():
            out.append(f"exit {r.returncode}, stderr {r.stderr[-600:]!r}")
    if "Traceback" in r.stderr:
        out.append("traceback")
    after = snapshot(case.z.root, case.z.cache)
    if after != case.before:
        changed = sorted(set(after.items()) ^ set(case.before.items()))
        out.append(f"outside the cache changed: {changed[:4]}")
    if (case.z.root / "notes.txt").read_bytes() != CANARY:  # pragma: no cover - the snapshot says it first
        out.append("canary changed")
    out += _check_cache(case, r.returncode == 0)
    if case.extra is not None:
        out += case.extra(case, r) or []
    return out


def _check_cache(case: Case, succeeded: bool) -> list[str]:
    out = []
    cache = case.z.cache
    if not cache.exists():
        return ["the model's files are missing"] if succeeded and case.files else []
    entries = [Path(d) / n for d, dirs, files in os.walk(cache) for n in dirs + files]
    for p in entries:
        rel = p.relative_to(cache).parts
        if "/".join(rel) in case.ignore:
            continue
        if rel[0] == "locks":
            if len(rel) == 2 and not re.fullmatch(r"model-[\w.+-]+\.lock", rel[1]):
                out.append(f"odd lock entry {p.name}")
            continue
        if rel[0] != "models" or len(rel) > 3:
            out.append(f"unexpected entry {'/'.join(rel)}")
            continue
        if len(rel) < 3:
            continue
        name = rel[2]
        if ".bad-" in name:
            continue  # a wrong file moved aside, as promised (never deleted)
        if name.endswith(".part"):
            base = case.files.get(name[:-5])
            if not case.allow_part or base is None or not base.startswith(p.read_bytes()):
                out.append(f"partial file left: {name}")
        elif name.endswith(".sha1"):
            base = case.files.get(name[:-5])
            if base is None or p.read_text().split()[0] != sha1(base):
                out.append(f"wrong record {name}")
        elif p.is_symlink() or not p.is_file():
            out.append(f"{name} is not a plain file")
        elif name not in case.files or p.read_bytes() != case.files[name]:
            out.append(f"wrong file under a model's name: {name}")
    if succeeded:
        d = cache / "models" / "m"
        missing = [n for n in case.files if not (d / n).is_file()]
        if missing and not (case.z.caffe_root / "models" / "m").is_dir():
            out.append(f"missing after success: {missing}")
    return out


def _run_family(family: str, cases: list[Case]) -> None:
    COUNTS[family] = len(cases)
    results = run_zoo_many([(c.args, c.env) for c in cases])
    if os.environ.get("ZOO_ABUSE_TIMES"):
        print(family, sorted(((round(r.seconds, 1), c.id) for c, r in zip(cases, results)), reverse=True)[:8])
    failures = {c.id: problems for c, r in zip(cases, results) if (problems := _check(c, r))}
    assert not failures, f"{len(failures)} of {len(cases)} {family} cases broke the promise: {failures}"


def _fetch_args(z: ZooEnv, *more: str) -> list[str]:
    return ["fetch", "m", "--quiet", "--models-dir", str(z.models), *more]


# -- 1. names that would leave the cache ------------------------------------------------------------

def _url_segments(root: Path) -> dict[str, str]:
    """Last URL path segments that %-decode to a name outside the cache or unsafe on disk."""
    victim = str(root / "notes.txt")
    return {
        "absolute": quote(victim, safe=""),
        "absolute-upper": quote(victim, safe="").replace("%2F", "%2f"),
        "climb": "..%2F..%2F..%2Fnotes.txt",
        "climb-backslash": "..%5C..%5Cnotes.txt",
        "dotdot-encoded": "%2e%2e",
        "dot-encoded": "%2E",
        "nul": "deploy%00.prototxt",
        "newline": "deploy%0A.prototxt",
        "bidi": "evil%E2%80%AEtxt.prototxt",
        "hidden": ".bashrc",
        "device": "con.prototxt",
        "device-bare": "NUL",
        "trailing-space": "deploy.prototxt%20",
        "too-long": "x" * 240 + ".prototxt",
        "part-name": "w.caffemodel.part",
        "record-name": "deploy.prototxt.sha1",
        "lock-name": "model-m.lock",
        "bad-name": f"deploy.prototxt.bad-{'0' * 40}",
    }


def _member_names() -> dict[str, str]:
    """archive_member values whose base name is unsafe or climbs out."""
    return {
        "climb": "pkg/../../../notes.txt",
        "climb-only": "../notes.txt",
        "absolute": "/etc/passwd",
        "dot": "pkg/.",
        "hidden": "pkg/.profile",
        "nul": "pkg/w\0.caffemodel",
        "device": "pkg/aux.caffemodel",
        "control": "pkg/w\x1b[2J.caffemodel",
        "too-long": "pkg/" + "w" * 230,
        "part-name": "pkg/deploy.prototxt.part",
        "record-name": "pkg/deploy.prototxt.sha1",
    }


def _name_manifests(z: ZooEnv, base: str) -> list[tuple[str, dict]]:
    out = []
    for label, seg in _url_segments(z.root).items():
        url = f"{base}/pub/{seg}"
        out.append((f"prototxt-url-{label}", dict(prototxt_url=url, weights_url=f"{base}/pub/w.caffemodel")))
        out.append((f"weights-url-{label}", dict(prototxt_url=f"{base}/pub/deploy.prototxt", weights_url=url)))
        out.append((f"tarball-url-{label}", dict(prototxt_url=url, weights_url=url, archive_member={
            "prototxt": "pkg/deploy.prototxt", "weights": "pkg/w.caffemodel"})))
    tgz = f"{base}/pub/pkg.tar.gz"
    for label, member in _member_names().items():
        out.append((f"member-{label}", dict(prototxt_url=tgz, weights_url=tgz, archive_member={
            "prototxt": "pkg/deploy.prototxt", "weights": member})))
    return out


def test_names_that_would_leave_the_cache_are_refused_at_load(tmp_path, srv, monkeypatch):
    """Each hostile name, in each place a name comes from, is refused before anything is touched."""
    base = srv.url("names").rstrip("/")
    z = _new_case(tmp_path, "names")
    monkeypatch.setenv("DEEPDREAM_CAFFE_CACHE", str(z.cache))
    monkeypatch.setenv("CAFFE_ROOT", str(z.caffe_root))
    before = snapshot(z.root, z.cache)
    cases = _name_manifests(z, base)
    COUNTS["names"] = len(cases)
    bad = {}
    for label, fields in cases:
        write_manifest(z.models, "m", **fields)
        try:
            resolve_model("m", models_dirs=[z.models], quiet=True)
            bad[label] = "accepted"
        except DeepDreamError as e:
            msg = str(e)
            if "\n" in msg or "model manifest" not in msg:
                bad[label] = msg
    assert not bad, bad
    after = {k: v for k, v in snapshot(z.root, z.cache).items() if not k.startswith("manifests")}
    assert after == {k: v for k, v in before.items() if not k.startswith("manifests")}
    assert not z.cache.exists() and srv.requests_for("names") == []


def test_the_issue_attack_through_the_command_line(tmp_path, srv, tiny_bytes):
    """Issue #12, item 1: a tarball URL naming the victim, absolute or climbing; and one of each place."""
    proto, weights = tiny_bytes
    cases = []
    for label in ("absolute", "climb"):
        for place in ("tarball-url", "prototxt-url", "weights-url"):
            cid = f"{place}-{label}"
            z = _new_case(tmp_path, cid)
            seg = _url_segments(z.root)[label]
            # The server would gladly serve a real tarball there: the zoo must not even ask.
            srv.add(f"{cid}/pub/{seg}", _tarball({"pkg/deploy.prototxt": proto, "pkg/w.caffemodel": weights}))
            fields = dict(_name_manifests(z, srv.url(cid).rstrip("/")))[cid]
            write_manifest(z.models, "m", **fields)
            cases.append(_prepare(Case(cid, z, _fetch_args(z), case_os_env(z), "model manifest", {})))
    _run_family("issue-attack", cases)
    assert all(srv.requests_for(c.id) == [] for c in cases)


# -- 2. crafted manifests ------------------------------------------------------------------------

_GOOD = dict(prototxt_url="http://127.0.0.1:9/x/deploy.prototxt", weights_url="http://127.0.0.1:9/x/w.caffemodel")
_WRONG_VALUES = [5, True, 1.5, float("nan"), ["a"], "", "   ", {"a": 1}]


def _manifest_cases() -> list[tuple[str, dict, tuple]]:
    """(label, fields, dropped keys): wrong types for every key, and each value class that is out of range."""
    out = []
    for key in ("description", "license", "default_layer", "prototxt_url", "weights_url", "prototxt_sha1",
                "weights_sha1", "mean", "channel_swap", "approx_size_mb", "archive_member"):
        for i, v in enumerate(_WRONG_VALUES):
            if isinstance(v, str) and key in ("description", "license", "default_layer") and v.strip():
                continue
            if key == "approx_size_mb" and v in (5, 1.5):
                continue  # fine sizes
            out.append((f"{key}-wrong-{i}", {key: v}, ()))
    for i, mean in enumerate([[float("nan"), 0, 0], [float("inf"), 116, 122], [104, -float("inf"), 122],
                              ["104", 116, 122], [104, 116], [104, 116, 122, 0], [True, 116, 122], [1e400, 0, 0],
                              [300, 116, 122], [-1, 116, 122], [[104], 116, 122]]):
        out.append((f"mean-{i}", {"mean": mean}, ()))
    for i, swap in enumerate([[0, "a", 2], [0, 1], [0, 0, 1], [0, 1, 2, 3], [0.0, 1, 2], [True, False, 2],
                              [2, 1, "0"], [3, 1, 0], [-1, 0, 1], [[0], 1, 2]]):
        out.append((f"channel_swap-{i}", {"channel_swap": swap}, ()))
    for i, size in enumerate([float("nan"), float("inf"), -1, 0, 1e9]):
        out.append((f"size-{i}", {"approx_size_mb": size}, ()))
    for i, text in enumerate(["two\nlines", "esc \x1b[2J clear", "bidi \u202e txt", "x" * 400, "nul\0"]):
        out.append((f"text-{i}", {"description": text}, ()))
        out.append((f"layer-text-{i}", {"default_layer": text}, ()))
    for i, url in enumerate(["ftp://h/x.prototxt", "file:///etc/passwd", "http://", "http://h:99999/x.prototxt",
                             "http://h/dir/", "http://h/a b.prototxt", "javascript:alert(1)",
                             "http://h/" + "x" * 3000, "http://[::1/x.prototxt", "//h/x.prototxt",
                             "http://h/\x01.prototxt"]):
        out.append((f"url-{i}", {"prototxt_url": url}, ()))
    collisions = {
        "same-file": dict(weights_url="http://127.0.0.1:9/y/deploy.prototxt"),
        "case-only": dict(weights_url="http://127.0.0.1:9/y/Deploy.Prototxt"),
        "weights-is-prototxt-part": dict(weights_url="http://127.0.0.1:9/y/deploy.prototxt.part"),
        "weights-is-prototxt-record": dict(weights_url="http://127.0.0.1:9/y/deploy.prototxt.sha1"),
        "weights-is-a-lock": dict(weights_url="http://127.0.0.1:9/y/w.lock"),
        "weights-is-set-aside": dict(weights_url=f"http://127.0.0.1:9/y/deploy.prototxt.bad-{'a' * 40}"),
        "tarball-is-prototxt": dict(weights_url="http://127.0.0.1:9/y/deploy.prototxt",
                                    archive_member={"weights": "pkg/w.caffemodel"}),
        "member-is-tarball": dict(prototxt_url="http://127.0.0.1:9/y/pkg.tar", weights_url="http://127.0.0.1:9/y/pkg.tar",
                                  archive_member={"prototxt": "a/pkg.tar", "weights": "a/w.caffemodel"}),
        "same-url-not-members": dict(weights_url=_GOOD["prototxt_url"].replace("deploy.prototxt", "x.tgz"),
                                     prototxt_url=_GOOD["prototxt_url"].replace("deploy.prototxt", "x.tgz"),
                                     archive_member={"weights": "w.caffemodel"}),
        "archive-table-unknown-key": dict(archive_member={"mean": "x"}),
        "member-empty": dict(archive_member={"weights": ""}),
    }
    out += [(f"collision-{k}", v, ()) for k, v in collisions.items()]
    out += [("missing-all", {}, ("description", "license", "mean", "channel_swap")),
            ("unknown-key", {"weights_sha": "0" * 40}, ()),
            ("unknown-key-control", {"k\x1bey": 1}, ())]
    return out


_RAW_MANIFESTS = {
    "not-utf8": b'description = "caf\xe9"\n',
    "utf16": '\ufeffdescription = "x"\n'.encode("utf-16"),
    "binary": bytes(range(256)),
    "empty": b"",
    "deep-nesting": b"mean = " + b"[" * 5000 + b"]" * 5000 + b"\n",
    "too-big": b"# " + b"x" * (70 << 10) + b"\n",
    "not-toml": b"<html>this is a web page</html>\n",
    "duplicate-key": b'description = "a"\ndescription = "b"\n',
}


def test_crafted_manifests_are_one_line_each_and_list_survives_them(tmp_path, srv):
    """Each crafted manifest fails alone with one line naming it; `models list` shows the others."""
    z = _new_case(tmp_path, "manifests")
    cases = _manifest_cases()
    COUNTS["manifests"] = len(cases) + len(_RAW_MANIFESTS) + 1
    names = []
    bad = {}

    def refused(label, name, path):
        """The manifest at ``path`` must be refused in one line that names it."""
        names.append(name)
        try:
            find_manifest(name, [z.models])
            bad[label] = "accepted"
        except DeepDreamError as e:
            if "\n" in str(e) or str(path) not in str(e):
                bad[label] = str(e)

    for i, (label, fields, drop) in enumerate(cases):
        refused(label, f"bad{i:03d}", write_manifest(z.models, f"bad{i:03d}", drop=drop, **{**_GOOD, **fields}))
    for label, raw in _RAW_MANIFESTS.items():
        path = z.models / f"raw-{label}" / "model.toml"
        path.parent.mkdir()
        path.write_bytes(raw)
        refused(label, f"raw-{label}", path)
    assert not bad, bad

    # One `models list` over all of them and a good one (the command-line case).
    write_manifest(z.models, "zz_good", **_GOOD)
    (r,) = run_zoo_many([(["list", "--models-dir", str(z.models)], case_os_env(z))])
    assert r.returncode == 1 and "Traceback" not in r.stderr
    rows = {line.split()[0]: line for line in r.stdout.splitlines()[1:]}
    assert "BROKEN" not in rows["zz_good"] and "bvlc_googlenet" in rows
    assert all("BROKEN" in rows[n] for n in names), [n for n in names if "BROKEN" not in rows.get(n, "BROKEN")]
    errors = r.stderr.splitlines()
    assert len(errors) == len(names) and all(e.startswith("deepdream-caffe: error: ") for e in errors)
    assert not z.cache.exists()


# -- 3. servers that send something other than what was asked for -----------------------------------

def _gz(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


def _server_behaviours(proto: bytes, weights: bytes) -> list[tuple]:
    """(label, which file misbehaves, published sha1?, served bytes, server behaviour, refused-with or None,
    environment, allow .part)."""
    half = len(weights) // 2
    P, W = "prototxt", "weights"
    return [
        ("html-typed", P, False, HTML, dict(content_type="text/html; charset=utf-8"), "web page", {}, False),
        ("html-typed-hashed", W, True, HTML, dict(content_type="text/html"), "web page", {}, False),
        ("html-as-octets-prototxt", P, False, HTML, {}, "what arrived is not a prototxt (it is an HTML page)", {},
         False),
        ("html-as-octets-weights", W, False, HTML, {}, "what arrived is not a caffemodel (it is an HTML page)", {},
         False),
        ("xhtml", W, False, HTML, dict(content_type="application/xhtml+xml"), "web page", {}, False),
        ("gzip-encoded-prototxt", P, False, _gz(proto), dict(headers={"Content-Encoding": "gzip"}),
         "gzip-encoded body", {}, False),
        ("gzip-encoded-hashed", W, True, _gz(weights), dict(headers={"Content-Encoding": "gzip"}),
         "gzip-encoded body", {}, False),
        ("br-encoded", W, False, weights, dict(headers={"Content-Encoding": "br"}), "br-encoded body", {}, False),
        ("gzip-body-unlabelled", W, False, _gz(weights), {}, "gzip-compressed data", {}, False),
        ("gzip-prototxt-unlabelled", P, False, _gz(proto), {}, "gzip-compressed data", {}, False),
        ("json-error", P, False, b'{"error": "rate limited"}', {}, "JSON", {}, False),
        ("empty", W, False, b"", {}, "is empty", {}, False),
        ("solver-for-prototxt", P, False, SOLVER, {}, "not a field of a net definition", {}, False),
        ("caffemodel-for-prototxt", P, False, weights, {}, "is not a prototxt", {}, False),
        ("prototxt-for-caffemodel", W, False, proto, {}, "is not a caffemodel", {}, False),
        ("random-bytes", W, False, bytes((i * 151 + 7) % 256 for i in range(4000)), {}, "not a caffemodel",
         {}, False),
        ("blob-short-of-its-shape", W, False, crafted_caffemodel([("conv1", [([8, 3, 3, 3], 200)])]),
         {}, "has 200 values for shape [8, 3, 3, 3]", {}, False),
        ("weights-without-blobs", W, False, crafted_caffemodel([("conv1", [])]), {}, "no layer holds weights",
         {}, False),
        ("cut-no-length", W, False, weights[:half], dict(length=-1), "cut short", {}, False),
        ("cut-prototxt-no-length", P, False, proto[:proto.index(b"}")], dict(length=-1), "is not a prototxt",
         {}, False),
        ("length-lies-longer", W, False, weights, dict(length=len(weights) + 100), "gave up after", {}, False),
        ("length-lies-longer-hashed", W, True, weights, dict(length=len(weights) + 100), "gave up after",
         {"DEEPDREAM_CAFFE_MIN_RATE": "1"}, True),
        ("huge-length-prototxt", P, False, proto, dict(length=10 ** 15), "announces 1000000000000000 bytes",
         {}, False),
        ("huge-length-weights", W, True, weights, dict(length=1 << 40), "more than the 2147483647", {}, False),
        ("endless-prototxt", P, False, b"#" * ((16 << 20) + 4096), dict(length=-1), "sends more than", {}, False),
        ("trickle", W, False, weights, dict(rate=50), "too slow",
         {"DEEPDREAM_CAFFE_MIN_RATE": "4000", "DEEPDREAM_CAFFE_TIMEOUT": "0.5"}, False),
        ("trickle-hashed", W, True, weights, dict(rate=50), "too slow",
         {"DEEPDREAM_CAFFE_MIN_RATE": "4000", "DEEPDREAM_CAFFE_TIMEOUT": "0.5"}, True),
        ("stall-then-nothing", W, False, weights, dict(stall_after=10), "server stalled",
         {"DEEPDREAM_CAFFE_TIMEOUT": "0.3", "DEEPDREAM_CAFFE_RETRIES": "1"}, False),
        # Progress on every request, so only the request cap ends it (the deadline is made long here).
        ("cut-every-time", W, True, weights, dict(drop_after=5, drops=10 ** 6), "gave up after 40 requests",
         {"DEEPDREAM_CAFFE_MIN_RATE": "1"}, True),
        ("redirect-ftp", W, False, b"", dict(redirect="ftp://127.0.0.1/w.caffemodel"), "redirects to a ftp",
         {}, False),
        ("redirect-file", P, False, b"", dict(redirect="file:///etc/passwd"), "'file:///etc/passwd' is not allowed",
         {}, False),
        ("status-500", W, False, weights, dict(status=500), "HTTP 500", {}, False),
        ("changed-hashed-no-validator", W, True, weights, dict(drop_after=half, then=OTHER_WEIGHTS),
         "gave sha1", {}, False),
    ]


def _survived_behaviours(weights: bytes, base: str, cid: str) -> list[tuple]:
    """(label, served behaviour, the bytes that must end up stored) for cases the zoo must come through."""
    half = len(weights) // 2
    return [
        # A file that changed on the server between a cut and the resume: one whole version, never a splice.
        ("changed-etag", dict(drop_after=half, then=OTHER_WEIGHTS, etag=True), OTHER_WEIGHTS),
        ("changed-last-modified", dict(drop_after=half, then=OTHER_WEIGHTS,
                                       last_modified="Mon, 01 Jan 2024 00:00:00 GMT"), OTHER_WEIGHTS),
        ("changed-etag-if-range-ignored", dict(drop_after=half, then=OTHER_WEIGHTS, etag=True,
                                               honour_if_range=False), OTHER_WEIGHTS),
        ("changed-no-validator", dict(drop_after=half, then=OTHER_WEIGHTS), OTHER_WEIGHTS),
        ("unchanged-etag-resumes", dict(drop_after=half, etag=True), weights),
        # Redirected elsewhere, even to a name that climbs: stored under the manifest's name only.
        ("redirect-to-climbing-name", dict(redirect=f"{base}/{cid}/real/..%2F..%2Fnotes.txt"), weights),
    ]


def test_hostile_servers(tmp_path, srv, tiny_bytes):
    proto, weights = tiny_bytes
    cases = []
    for label, role, hashed, body, behaviour, refused, env, allow_part in _server_behaviours(proto, weights):
        z = _new_case(tmp_path, f"server-{label}")
        good = {"prototxt": proto, "weights": weights}
        urls = {}
        for r in ("prototxt", "weights"):
            name = "deploy.prototxt" if r == "prototxt" else "w.caffemodel"
            urls[r] = srv.add(f"server-{label}/{name}", body if r == role else good[r],
                              **(behaviour if r == role else {}))
        write_manifest(z.models, "m", prototxt_url=urls["prototxt"], weights_url=urls["weights"],
                       prototxt_sha1=sha1(proto) if hashed else None, weights_sha1=sha1(weights) if hashed else None)
        cases.append(_prepare(Case(f"server-{label}", z, _fetch_args(z), case_os_env(z, **env), refused,
                                   {"deploy.prototxt": proto, "w.caffemodel": weights}, allow_part)))
    base = srv.url("").rstrip("/")
    for label, behaviour, stored in _survived_behaviours(weights, base, "survive-redirect-to-climbing-name"):
        cid = f"survive-{label}"
        z = _new_case(tmp_path, cid)
        srv.add(f"{cid}/real/..%2F..%2Fnotes.txt", weights)
        p = srv.add(f"{cid}/deploy.prototxt", proto)
        w = srv.add(f"{cid}/w.caffemodel", weights, **behaviour)
        write_manifest(z.models, "m", prototxt_url=p, weights_url=w)  # trust on first use: the hard case
        cases.append(_prepare(Case(cid, z, _fetch_args(z), case_os_env(z), None,
                                   {"deploy.prototxt": proto, "w.caffemodel": stored})))
    _run_family("server", cases)
    # The client asked for the file as it is, and resumed only with a validator.
    for r in srv.requests_for("survive-changed-etag/w.caffemodel"):
        assert r.accept_encoding == "identity"
    assert [r.if_range for r in srv.requests_for("survive-changed-etag/w.caffemodel")][1].startswith('"')


# -- 4. tarballs -------------------------------------------------------------------------------

def _tarball(entries, *, compress: bool = True) -> bytes:
    """A tarball of ``name -> bytes`` (a file) or ``name -> TarInfo`` (anything else, no data).

    ``entries`` is a dict or a list of pairs (a list may repeat a name).
    """
    buf = io.BytesIO()
    pairs = entries.items() if isinstance(entries, dict) else entries
    with tarfile.open(fileobj=buf, mode="w:gz" if compress else "w", format=tarfile.GNU_FORMAT) as tar:
        for name, data in pairs:
            if isinstance(data, tarfile.TarInfo):
                tar.addfile(data)
            else:
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _info(name: str, kind: bytes, linkname: str = "", size: int = 0) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, linkname
    info.size = size
    return info


def _header_only(name: str, size: int, before: tuple = ()) -> bytes:
    """Files ``before`` (name, bytes), then a header that claims ``size`` bytes and has none (a bomb, cheaply)."""
    out = b""
    for n, data in before:
        info = tarfile.TarInfo(n)
        info.size = len(data)
        out += info.tobuf(format=tarfile.GNU_FORMAT) + data + b"\0" * (-len(data) % 512)
    info = tarfile.TarInfo(name)
    info.size = size
    return gzip.compress(out + info.tobuf(format=tarfile.GNU_FORMAT), mtime=0)


def test_hostile_tarballs(tmp_path, srv, tiny_bytes):
    proto, weights = tiny_bytes
    W, P = "pkg/w.caffemodel", "pkg/deploy.prototxt"
    victim = str(tmp_path)  # any absolute path: links are never created, whatever they point at
    families = {
        "traversal-names-only": (_tarball({"../../notes.txt": weights, "/abs/pkg/w.caffemodel": weights,
                                           P: proto}), "has no member 'pkg/w.caffemodel'"),
        "traversal-same-base-name": (_tarball({"../../../pkg/w.caffemodel": weights, P: proto}), "has no member"),
        "symlink-member": (_tarball({P: proto, W: _info(W, tarfile.SYMTYPE, victim + "/notes.txt")}),
                           "is a symbolic link"),
        "hardlink-member": (_tarball({P: proto, W: _info(W, tarfile.LNKTYPE, "pkg/deploy.prototxt")}),
                            "is a hard link"),
        "device-member": (_tarball({P: proto, W: _info(W, tarfile.CHRTYPE)}), "is a device"),
        "fifo-member": (_tarball({P: proto, W: _info(W, tarfile.FIFOTYPE)}), "is a FIFO"),
        "folder-member": (_tarball({P: proto, W: _info(W, tarfile.DIRTYPE)}), "is a folder"),
        "later-duplicate-is-a-link": (_tarball([(P, proto), (W, weights), (W, _info(W, tarfile.SYMTYPE, P))]),
                                      "is a symbolic link"),
        "huge-prototxt-member": (_header_only(P, 100 << 20, before=((W, weights),)), "more than the 16777216"),
        "bomb-header": (_header_only(W, 20 << 30), "holds more than"),
        "not-a-tarball": (HTML, "is not a readable tarball"),
        # Cut in the middle of the weights' data (headers are 512 bytes, data padded to 512).
        "cut-short": (_tarball({P: proto, W: weights}, compress=False)[:1024 + -(-len(proto) // 512) * 512
                                                                         + len(weights) // 2],
                      "is not a readable tarball"),
        "wrong-kind-of-member": (_tarball({P: weights, W: weights}), "member pkg/deploy.prototxt is not a prototxt"),
        "no-such-member": (_tarball({"other/readme.txt": b"hi"}), "has no member"),
    }
    cases = []
    for label, (tgz, refused) in families.items():
        cid = f"tar-{label}"
        z = _new_case(tmp_path, cid)
        url = srv.add(f"{cid}/pkg.tar.gz", tgz)
        write_manifest(z.models, "m", prototxt_url=url, weights_url=url, archive_member={"prototxt": P, "weights": W})
        cases.append(_prepare(Case(cid, z, _fetch_args(z), case_os_env(z), refused,
                                   {"deploy.prototxt": proto, "w.caffemodel": weights})))
    # A server that labels the .tar.gz as gzip-encoded sends the same bytes: read as they come.
    z = _new_case(tmp_path, "tar-gzip-encoded-survives")
    url = srv.add("tar-gzip-encoded-survives/pkg.tar.gz", _tarball({P: proto, W: weights}),
                  headers={"Content-Encoding": "gzip"}, content_type="application/x-tar")
    write_manifest(z.models, "m", prototxt_url=url, weights_url=url, archive_member={"prototxt": P, "weights": W})
    cases.append(_prepare(Case("tar-gzip-encoded-survives", z, _fetch_args(z), case_os_env(z), None,
                               {"deploy.prototxt": proto, "w.caffemodel": weights})))
    _run_family("tarball", cases)


# -- 5. what may already lie in the cache ------------------------------------------------------------

def _plant(kind: str, path: Path, target: Optional[Path] = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "symlink":
        path.symlink_to(target)
    elif kind == "hardlink":
        os.link(target, path)
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "dir":
        path.mkdir()
    else:
        path.write_bytes(kind.encode())


def test_hostile_cache_entries(tmp_path, srv, tiny_bytes):
    """Links, FIFOs, hard links and folders where the zoo keeps its files: never followed, never written through."""
    proto, weights = tiny_bytes
    tofu = ("record",)  # cases that need a model without published hashes
    plans = {
        # label: (what to plant, relative path under the cache, target, refused-with, needs TOFU)
        "part-symlink": ("symlink", "models/m/w.caffemodel.part", "notes", None, ()),
        "part-hardlink": ("hardlink", "models/m/w.caffemodel.part", "notes", None, ()),
        "part-fifo": ("fifo", "models/m/w.caffemodel.part", None, None, ()),
        "part-folder": ("dir", "models/m/w.caffemodel.part", None, "is a folder where the zoo keeps a file", ()),
        "record-symlink": ("symlink", "models/m/w.caffemodel.sha1", "notes", None, tofu),
        "record-fifo": ("fifo", "models/m/w.caffemodel.sha1", None, None, tofu),
        "record-to-dev-zero": ("symlink", "models/m/w.caffemodel.sha1", "/dev/zero", None, tofu),
        "lock-symlink": ("symlink", "locks/model-m.lock", "notes", None, ()),
        "lock-fifo": ("fifo", "locks/model-m.lock", None, None, ()),
        "file-symlink-wrong-hash": ("symlink", "models/m/w.caffemodel", "notes", None, ()),
        "file-fifo": ("fifo", "models/m/w.caffemodel", None, None, ()),
        "file-to-dev-zero": ("symlink", "models/m/w.caffemodel", "/dev/zero", None, ()),
        "set-aside-name-is-a-link": ("symlink", f"models/m/w.caffemodel.bad-{sha1(CANARY)}", "notes", None, ()),
        "model-folder-symlink": ("symlink", "models/m", "victim_dir", "is a symbolic link", ()),
    }
    cases = []
    for label, (kind, rel, target, refused, needs) in plans.items():
        cid = f"cache-{label}"
        z = _new_case(tmp_path, cid)
        p = srv.add(f"{cid}/deploy.prototxt", proto)
        w = srv.add(f"{cid}/w.caffemodel", weights)
        hashed = "record" not in needs
        write_manifest(z.models, "m", prototxt_url=p, weights_url=w, prototxt_sha1=sha1(proto) if hashed else None,
                       weights_sha1=sha1(weights) if hashed else None)
        tgt = {"notes": z.root / "notes.txt", "victim_dir": z.root / "victim_dir"}.get(target, target)
        _plant(kind, z.cache / rel, Path(tgt) if tgt else None)
        if label == "set-aside-name-is-a-link":
            (z.cache / "models/m/w.caffemodel").write_bytes(CANARY)  # a wrong file, to be moved onto that name
        cases.append(_prepare(Case(cid, z, _fetch_args(z), case_os_env(z), refused,
                                   {"deploy.prototxt": proto, "w.caffemodel": weights},
                                   ignore=(rel,) if kind == "dir" or refused else ())))

    # A record an older version made of a web page: used offline it says which files to remove...
    for label, args, refused in (("stale-record-offline", ["path", "m"], "remove"),
                                 ("stale-record-fetch", ["fetch", "m", "--quiet"], None)):
        cid = f"cache-{label}"
        z = _new_case(tmp_path, cid)
        p = srv.add(f"{cid}/deploy.prototxt", proto)
        w = srv.add(f"{cid}/w.caffemodel", weights)
        write_manifest(z.models, "m", prototxt_url=p, weights_url=w)
        d = z.cache / "models" / "m"
        d.mkdir(parents=True)
        (d / "w.caffemodel").write_bytes(HTML)
        (d / "w.caffemodel.sha1").write_text(f"{sha1(HTML)}  w.caffemodel\n")
        (d / "deploy.prototxt").write_bytes(proto)
        (d / "deploy.prototxt.sha1").write_text(f"{sha1(proto)}  deploy.prototxt\n")

        def says_where(case, r, d=d):
            if case.refused and (str(d / "w.caffemodel") not in r.stderr or "w.caffemodel.sha1" not in r.stderr):
                return [f"the error does not name both files: {r.stderr!r}"]
            if not case.refused and (d / f"w.caffemodel.bad-{sha1(HTML)}").read_bytes() != HTML:
                return ["the stale file was not moved aside"]
            return []

        files = {"deploy.prototxt": proto, "w.caffemodel": weights}
        if refused:
            files = {"deploy.prototxt": proto, "w.caffemodel": HTML}  # left exactly as it was
        cases.append(_prepare(Case(cid, z, [*args, "--models-dir", str(z.models)], case_os_env(z), refused, files,
                                   extra=says_where)))
    _run_family("cache", cases)
    assert (tmp_path / "cache-model-folder-symlink" / "victim_dir").is_dir()


# -- 6. the environment -------------------------------------------------------------------------

_ENV_VALUES = {
    "DEEPDREAM_CAFFE_TIMEOUT": ["nan", "inf", "-inf", "0", "-1", "abc", "1e999", "1e6"],
    "DEEPDREAM_CAFFE_RETRIES": ["nan", "-1", "1.5", "abc", "1e9", "inf", "101"],
    "DEEPDREAM_CAFFE_RETRY_WAIT": ["nan", "inf", "-1", "abc", "1e5"],
    "DEEPDREAM_CAFFE_MIN_RATE": ["nan", "inf", "0", "-5", "abc"],
    "DEEPDREAM_CAFFE_RATE_WINDOW": ["nan", "inf", "0", "-1", "abc", "1e6"],
    "DEEPDREAM_CAFFE_LOCK_TIMEOUT": ["nan", "inf", "-1", "abc", "0", "1e9"],
}


def test_environment_values(tmp_path, srv, tiny_bytes, monkeypatch):
    """Every setting is finite and in range, or one line names the variable before anything is fetched.

    Every value through the API; the first of each variable (nan, the issue's hang) also on the command line.
    """
    proto, weights = tiny_bytes
    z = _new_case(tmp_path, "env-api")
    p = srv.add("env-api/deploy.prototxt", proto)
    w = srv.add("env-api/w.caffemodel", weights)
    write_manifest(z.models, "m", prototxt_url=p, weights_url=w)
    monkeypatch.setenv("DEEPDREAM_CAFFE_CACHE", str(z.cache))
    bad = {}
    for var, values in _ENV_VALUES.items():
        for value in values:
            with monkeypatch.context() as m:
                m.setenv(var, value)
                try:
                    resolve_model("m", models_dirs=[z.models], quiet=True)
                    bad[f"{var}={value}"] = "accepted"
                except DeepDreamError as e:
                    if not str(e).startswith(f"{var} must be") or "\n" in str(e):
                        bad[f"{var}={value}"] = str(e)
    assert not bad, bad
    assert srv.requests_for("env-api/w.caffemodel") == [] and not z.cache.exists()

    cases = []
    for var, values in _ENV_VALUES.items():
        cid = f"env-{var[17:].lower()}"
        z = _new_case(tmp_path, cid)
        p = srv.add(f"{cid}/deploy.prototxt", proto)
        w = srv.add(f"{cid}/w.caffemodel", weights)
        write_manifest(z.models, "m", prototxt_url=p, weights_url=w)
        cases.append(_prepare(Case(cid, z, _fetch_args(z), case_os_env(z, **{var: values[0]}), f"{var} must be", {})))
    _run_family("environment", cases)
    COUNTS["environment"] = sum(len(v) for v in _ENV_VALUES.values()) + len(cases)
    assert all(srv.requests_for(f"{c.id}/w.caffemodel") == [] and not c.z.cache.exists() for c in cases)


# -- the count in docs/reliability.md --------------------------------------------------------------------

def test_readme_counts_these_cases():
    """Runs last: the number in docs/reliability.md is the number of cases above (all families must have run)."""
    families = {"names", "issue-attack", "manifests", "server", "tarball", "cache", "environment"}
    if set(COUNTS) != families:
        pytest.skip("counts only when the whole file runs")
    total = sum(COUNTS.values())
    text = (REPO / "docs" / "reliability.md").read_text()
    m = re.search(r"(\d+) hostile zoo cases", text)
    assert m, "docs/reliability.md has no 'N hostile zoo cases' line"
    assert int(m.group(1)) == total, f"docs/reliability.md says {m.group(1)}, the suite has {total}: {COUNTS}"
