"""``deepdream-caffe batch``: many images (and a sweep of settings) dreamed on a Dask cluster."""
from __future__ import annotations

import argparse
import copy
import itertools
import math
from pathlib import Path
from typing import Any, Dict, List, Sequence, Tuple

from ...errors import DeepDreamError
from ..options import add_common_args, add_dream_args, add_net_args, dream_config, term_text

SHEET_TILE = 192
MAX_RETRIES = 100  # as the zoo's downloads: past that a failing task is not going to pass
MAX_SETTINGS = 10_000  # combinations of --sweep values in one batch: each is a config held in memory

ORDER = 35
# Batch-only options and those the batch sets per image: never passed on to the reproducing `dream`.
NOT_DREAM = {"inputs", "out_dir", "sweep", "workers", "scheduler", "sheet", "ext", "sheet_tile", "retries",
             "seed", "quiet", "verbose", "func", "command", "no_dashboard"}


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    b = subparsers.add_parser(
        "batch", help="dream many images and sweeps of settings on a Dask cluster",
        description="Every (input, setting) pair is one task on a Dask cluster (a local one by default). "
                    "Each image's seed comes from --seed and its file name; re-running skips finished outputs.")
    b.add_argument("inputs", nargs="+", type=Path, help="input images")
    b.add_argument("--out-dir", type=Path, required=True, help="folder for the outputs (must exist)")
    b.add_argument("--ext", default=".jpg", help="output format by extension (.jpg: metadata in NAME.jpg.json)")
    b.add_argument("--sweep", action="append", default=[], metavar="OPTION=V1,V2",
                   help="try each value of a dream option (repeatable: all combinations), e.g. "
                        "--sweep layer=inception_3b/output,inception_4c/output --sweep octaves=3,4")
    b.add_argument("--sheet", type=Path, help="write a contact sheet of the results (rows inputs, columns settings)")
    b.add_argument("--sheet-tile", type=int, default=SHEET_TILE,
                   help=f"cell size of the contact sheet in pixels ({SHEET_TILE})")
    add_cluster_args(b, "the batch's seed; each image's is derived from it and the file name (default 0)")
    b.set_defaults(func=run)


def add_cluster_args(b: argparse.ArgumentParser, seed_help: str) -> None:
    """Where the tasks run and how they are retried, then the net, dream and common options (a batch's seed)."""
    b.add_argument("--workers", type=int, help="local worker processes (default: one per core)")
    b.add_argument("--scheduler", help="address of a running Dask scheduler, e.g. tcp://10.0.0.5:8786")
    b.add_argument("--retries", type=int, default=1, help="retries of a task that raised an error (1)")
    b.add_argument("--no-dashboard", action="store_true", help="do not start the local cluster's dashboard")
    add_net_args(b)
    add_dream_args(b)
    add_common_args(b)
    for a in b._actions:
        if a.dest == "seed":
            a.help = seed_help
    b.set_defaults(seed=0)


def _dream_actions(parser_args: argparse.Namespace) -> Dict[str, argparse.Action]:
    """The dream and net options, by dest, as ``dream`` defines them."""
    p = argparse.ArgumentParser(add_help=False)
    add_net_args(p)
    add_dream_args(p)
    return {a.dest: a for a in p._actions if a.dest not in NOT_DREAM}


def dream_flags(args: argparse.Namespace, actions: Dict[str, argparse.Action]) -> List[str]:
    """The ``dream`` options that repeat ``args`` (those not at their default), as argv tokens."""
    out: List[str] = []
    for dest, a in actions.items():
        v = getattr(args, dest, None)
        if v == a.default or v is None:
            continue
        flag = max(a.option_strings, key=len)
        if a.nargs == 0:  # store_true
            out.append(flag)
        elif isinstance(v, list) and a.nargs in (None, "?") and isinstance(a, argparse._AppendAction):
            for item in v:
                out += [flag, term_text(item) if isinstance(item, tuple) else str(item)]
        elif isinstance(v, (list, tuple)):
            out += [flag, *(str(x) for x in v)]
        else:
            out += [flag, str(v)]
    return out


def parse_sweeps(specs: Sequence[str], actions: Dict[str, argparse.Action]) -> List[Tuple[str, List[Any]]]:
    """``["layer=a,b", "octaves=3,4"]`` -> ``[("layer", ["a", "b"]), ("octaves", [3, 4])]``, values typed."""
    out: List[Tuple[str, List[Any]]] = []
    for spec in specs:
        name, sep, values = spec.partition("=")
        dest = name.strip().lstrip("-").replace("-", "_")
        a = actions.get(dest)
        if not sep or not values.strip():
            raise DeepDreamError(f"--sweep {spec!r}: write OPTION=V1,V2,...")
        if a is None or a.nargs not in (None, "?"):
            raise DeepDreamError(f"--sweep {spec!r}: {name} is not a dream option with one value")
        if any(d == dest for d, _ in out):
            raise DeepDreamError(f"--sweep {name} given twice")
        typed = []
        for raw in values.split(","):
            try:
                v = a.type(raw.strip()) if a.type else raw.strip()
                if isinstance(a, argparse._AppendAction):  # --layer: each value is the whole list, kept as typed
                    v = raw.strip()
            except (TypeError, ValueError, argparse.ArgumentTypeError):
                raise DeepDreamError(f"--sweep {name}: bad value {raw!r}") from None
            if a.choices and v not in a.choices:
                raise DeepDreamError(f"--sweep {name}: {v!r} is not one of {', '.join(map(str, a.choices))}")
            typed.append(v)
        out.append((dest, list(dict.fromkeys(typed))))
    return out


def settings(args: argparse.Namespace) -> List[Any]:
    """One :class:`~deepdream_caffe.app.batch.Setting` per combination of the sweeps (one without)."""
    from ...app.batch.plan import Setting

    actions = _dream_actions(args)
    sweeps = parse_sweeps(args.sweep, actions)
    combos = math.prod(len(vals) for _, vals in sweeps)
    if combos > MAX_SETTINGS:  # counted before any is made
        raise DeepDreamError(f"--sweep: {combos} combinations of settings; at most {MAX_SETTINGS} in one batch")
    args = copy.copy(args)
    args.models_dir = [p.absolute() for p in args.models_dir or []]
    out = []
    for combo in itertools.product(*[vals for _, vals in sweeps]) if sweeps else [()]:
        a = copy.copy(args)
        values = tuple((dest, v) for (dest, _), v in zip(sweeps, combo))
        for dest, v in values:
            action = actions[dest]
            setattr(a, dest, [action.type(v)] if isinstance(action, argparse._AppendAction) else v)
        # Absolute paths, swept or not: a worker elsewhere (same shared paths, another working folder)
        # finds the same files.
        for dest in ("prototxt", "weights", "guide"):
            if getattr(a, dest, None) is not None:
                setattr(a, dest, getattr(a, dest).absolute())
        if a.mode == "lbfgs":
            # --seed is the batch's (each image's seed derives from it), not a dream's jitter seed,
            # which --mode lbfgs refuses; its dreams draw nothing at random.
            a.seed = None
        out.append(Setting(dream_config(a), values, tuple(dream_flags(a, actions))))
    return out


def _run_on_cluster(args: argparse.Namespace, tasks: List[Any]) -> Any:
    """Start or reach the cluster, say where the batch runs, run it, close the cluster."""
    from ...app.batch import run_batch
    from ...app.batch.cluster import start_cluster
    from ..batch_progress import BatchBar, say

    cluster = start_cluster(args.workers, args.scheduler, dashboard=not args.no_dashboard)
    try:
        where = args.scheduler or f"a local cluster of {len(cluster.client.scheduler_info()['workers'])} workers"
        threads = f", {cluster.threads} BLAS thread(s) each" if cluster.threads else ""
        say(args.quiet, f"running on {where}{threads}")
        if cluster.dashboard:
            say(args.quiet, f"dashboard: {cluster.dashboard}")
        elif not args.no_dashboard:  # asked for none: no word on how to get one
            say(args.quiet, "no dashboard (install bokeh>=3.1 for one)")
        return run_batch(tasks, cluster.client, BatchBar(args.quiet), retries=args.retries)
    finally:
        cluster.close()


def run(args: argparse.Namespace) -> int:
    from ...app.batch import plan_tasks
    from ...app.batch.cluster import check_where
    from ...app.batch.plan import check_settings
    from ...app.batch.run import finished_report
    from ...app.batch.sheet import check_sheet, sheet_of
    from ..batch_progress import say

    check_where(args.workers, args.scheduler)
    if not 0 <= args.retries <= MAX_RETRIES:
        raise DeepDreamError(f"--retries must be from 0 to {MAX_RETRIES}, got {args.retries}")
    if args.sheet is None and args.sheet_tile != SHEET_TILE:
        raise DeepDreamError("--sheet-tile is for --sheet (no contact sheet is made without it)")
    if args.sheet is not None:
        from ...io.image import image_format

        image_format(args.sheet)
        if args.sheet_tile < 16:
            raise DeepDreamError(f"--sheet-tile must be at least 16 pixels, got {args.sheet_tile}")
    sets = settings(args)
    tasks = plan_tasks(args.inputs, sets, args.out_dir, args.seed, args.ext)
    if args.sheet is not None:
        check_sheet(tasks, args.sheet, args.sheet_tile)
    report = finished_report(tasks)
    if report is None:
        check_settings(sets)
        report = _run_on_cluster(args, tasks)
    else:
        say(args.quiet, f"all {len(tasks)} outputs already finished (same parameters): nothing to do")
    for line in report.failure_lines():
        say(False, line)
    if args.sheet is not None:
        sheet_of(tasks, args.sheet, args.sheet_tile, failed=report.failures)
        say(args.quiet, f"wrote {args.sheet}")
    if report.results:
        first = report.results[min(report.results)]
        say(args.quiet, f"each output's record holds the plain command that remakes it bit for bit "
                        f"(batch.reproduce), e.g. {first.reproduce}")
    made, skipped, failed = len(report.results), len(report.skipped), len(report.failures)
    say(args.quiet, f"{made} made, {skipped} already finished, {failed} failed")
    return 0 if report.ok else 1
