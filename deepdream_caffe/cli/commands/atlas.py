"""``deepdream-caffe atlas``: what every layer of a net dreams on one image, as a static site."""
from __future__ import annotations

import argparse
from pathlib import Path

from ...errors import DeepDreamError
from .batch import MAX_RETRIES, _run_on_cluster, add_cluster_args, settings

ORDER = 36


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    a = subparsers.add_parser(
        "atlas", help="dream each layer of a net on one image: a static site of tiles with their commands",
        description="One dream per dreamable layer (and per channel with --channels), rendered as a batch on a "
                    "Dask cluster, shown in DIR/index.html with the command that remakes each image. "
                    "Re-running renders only what is missing or was made with other settings.")
    a.add_argument("-o", "--out-dir", type=Path, required=True, help="folder of the site (made if missing)")
    a.add_argument("--image", type=Path, help="the image to dream on (default: the sample photo)")
    a.add_argument("--layers", default="all", metavar="all|every:K|L1,L2",
                   help="the dreamable layers (all), every K-th of them, or those named (default all)")
    a.add_argument("--channels", type=int, default=0, metavar="N",
                   help="also dream each layer's first N channels, on a page per layer (default 0)")
    a.add_argument("--strongest", action="store_true",
                   help="with --channels: each layer's N channels of largest mean activation on the image")
    add_cluster_args(a, "the atlas's seed; the image's is derived from it and the file name (default 0)")
    for action in a._actions:  # the atlas picks each tile's layer or channel, unguided; given, they are refused
        if action.dest in ("layer", "channel", "guide"):
            action.help = argparse.SUPPRESS
    a.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ...app.atlas import plan_atlas, write_site
    from ...app.batch.cluster import check_where
    from ...app.batch.run import finished_report
    from ..batch_progress import say

    check_where(args.workers, args.scheduler)  # the site's folder is made before the cluster starts
    if not 0 <= args.retries <= MAX_RETRIES:
        raise DeepDreamError(f"--retries must be from 0 to {MAX_RETRIES}, got {args.retries}")
    if args.layer or args.channel:
        raise DeepDreamError("atlas dreams each layer on its own: pick them with --layers and --channels, "
                             "not --layer or --channel")
    if args.strongest and not args.channels:
        raise DeepDreamError("--strongest picks the channels of --channels N; give --channels too")
    if args.guide is not None:
        raise DeepDreamError("atlas dreams each layer unguided; --guide is for dream and batch")
    base = settings(argparse.Namespace(**vars(args), sweep=[]))[0]
    atlas = plan_atlas(base, args.out_dir, args.image, args.layers, args.channels, args.seed,
                       args.strongest)
    tasks = atlas.tasks
    report = finished_report(tasks)
    if report is None:
        report = _run_on_cluster(args, tasks)
    else:
        say(args.quiet, f"all {len(tasks)} images already rendered (same parameters): nothing to dream")
    for line in report.failure_lines():
        say(False, line)
    index = write_site(atlas, report.failures)
    made, skipped, failed = len(report.results), len(report.skipped), len(report.failures)
    say(args.quiet, f"{made} made, {skipped} already finished, {failed} failed; open {index}")
    return 0 if report.ok else 1
