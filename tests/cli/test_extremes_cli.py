"""Issue 28, class 4: every numeric option at its extremes ends, or starts its work, within a bound.

The options are read from the parser (as in ``test_abuse_cli``), so one
added later is attacked too. Each case is the console's ``main()`` in a
forked child with a deadline (``forkrun.py``): a value too large for what
it sizes (octaves, frames, a canvas, workers) must be refused in one
line or the run must finish (a batch's failed tasks each get their line); a count of work asked for (``WORK``) may run past
the deadline, but only once its progress shows it has begun dreaming, not
while it is still building something as large as the number. The deadline
is a guard against hangs, never a measure of speed.

By default a fixed sample runs; DEEPDREAM_CAFFE_ABUSE_ALL=1 runs every case.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))

from test_abuse_cli import attack_argv, numeric_options  # noqa: E402

from abuse_nets import stable_sample  # noqa: E402
from forkrun import run_cases  # noqa: E402

RUN_ALL = os.environ.get("DEEPDREAM_CAFFE_ABUSE_ALL") == "1"
SAMPLE = {"sizes": 10, "work": 2}  # cases run by default, of each kind
DEADLINE = {"sizes": 90.0, "work": 20.0}  # seconds per case: generous on a shared machine; it catches hangs

HUGE = {int: ["1000000000", "1000000000000000000000"], float: ["1e300", "1e-300"]}
# Counts of work: a huge one is a long run the user asked for; it must begin (show a step or a frame).
WORK = {"--iters", "--lbfgs-iters", "--frames", "--max-frames", "--step-end"}
# Signs of the work under way: a dream's step, a frame loop's bar, a batch worker on its task.
STARTED = re.compile(r"step \d|frame \d|\d+: in\.png")


def extreme_cases():
    """(id, command, argv flag values, lbfgs) for every numeric option of every command at its extremes."""
    for cmd, flag, kind, nargs in numeric_options():
        for v in HUGE[kind]:
            yield f"{cmd} {flag} {v}", cmd, flag, nargs, v


def _photo(d: Path) -> Path:
    p = d / "in.png"
    Image.fromarray(np.random.RandomState(0).randint(0, 256, (40, 48, 3)).astype(np.uint8)).save(p)
    return p


def _argv(cmd, flag, nargs, value, d: Path, tiny_model):
    argv = attack_argv(cmd, flag, nargs, value, d, _photo(d), tiny_model)
    if flag in WORK and "-q" in argv:
        argv.remove("-q")  # its progress is the proof that it began
    return [str(a) for a in argv]


def test_the_documented_count_holds():
    """docs/reliability.md cites the count; a new numeric option changes it there too."""
    n = len(list(extreme_cases()))
    docs = " ".join((Path(__file__).resolve().parents[2] / "docs" / "reliability.md").read_text().split())
    assert f"read from the parser ({n} of them:" in docs


@pytest.mark.parametrize("kind", ["sizes", "work"])
def test_every_numeric_option_at_its_extremes_ends_or_begins_within_the_guard(kind, tiny_model, tmp_path):
    mine = [c for c in extreme_cases() if (c[2] in WORK) == (kind == "work")]
    chosen = stable_sample(mine, None if RUN_ALL else SAMPLE[kind], key=lambda c: c[0])
    cases = []
    for n, (cid, cmd, flag, nargs, value) in enumerate(chosen):
        d = tmp_path / f"c{n}"
        d.mkdir()
        cases.append({"id": cid, "kind": "cli", "argv": _argv(cmd, flag, nargs, value, d, tiny_model),
                      "until": STARTED.pattern if flag in WORK else None})  # begun is enough: stop it there
    deadline = DEADLINE[kind]
    results = run_cases(cases, tmp_path / "fork", deadline_s=deadline, timeout=deadline * len(cases) + 300)
    bad = []
    for cid, cmd, flag, nargs, value in chosen:
        r = results[cid]
        lines = [ln for ln in r["stderr"].replace("\r", "\n").splitlines() if ln.strip()]
        if "Traceback" in r["stderr"] or "unexpected" in r["stderr"]:
            bad.append(f"{cid}: a raw exception: {lines[-3:]}")
        elif r["rc"] in ("timeout", "stopped"):
            if not (flag in WORK and STARTED.search(r["stderr"])):
                bad.append(f"{cid}: still running after {deadline:g} s, no step begun: {lines[-1:]}")
        elif r["rc"] not in (0, 1, 2):
            bad.append(f"{cid}: rc {r['rc']}: {lines[-3:]}")
        elif r["rc"] != 0:
            errors = [ln for ln in lines if ": error: " in ln]
            failed = [ln for ln in lines if ": failed: " in ln]  # a batch's tasks, each told on its line
            if len(errors) + bool(failed) != 1:
                bad.append(f"{cid}: refusal is not one line: {lines}")
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("octave_n", [10 ** 5, 10 ** 9])
def test_the_api_refuses_an_octave_count_from_arithmetic(tiny_model, tmp_path, octave_n):
    """``deepdream(net, img, octave_n=10**9)``: one DeepDreamError, in a subprocess with a deadline."""
    proto, weights = tiny_model
    script = (
        "import numpy as np\n"
        "from deepdream_caffe import deepdream, load_net\n"
        "from deepdream_caffe.errors import DeepDreamError\n"
        f"net = load_net({str(proto)!r}, {str(weights)!r}, end='a/output')\n"
        "img = np.zeros((40, 48, 3), np.float32)\n"
        "try:\n"
        f"    deepdream(net, img, octave_n={octave_n}, end='a/output')\n"
        "except DeepDreamError as e:\n"
        "    print(e)\n"
    )
    root = Path(__file__).resolve().parents[2]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")]))
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env,
                       timeout=DEADLINE["sizes"])
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == (f"with octave_n={octave_n} octave 11 is 1x1, too small for layer 'a/output'; "
                                   "octave_n=10 fits this 48x40 image")
