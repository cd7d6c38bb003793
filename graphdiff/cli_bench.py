"""``graphdiff bench``: one command for every benchmark suite (registered by :mod:`graphdiff.cli`).

    graphdiff bench list
    graphdiff bench run SUITE [--model DIR] [--minutes M] [--samples N] [--set k=v ...] [--only ENTRY ...]
                              [--out DIR] [--root DIR] [--raw-from DIR] [--bootstrap B]
    graphdiff bench compare DIR DIR ...
"""

from __future__ import annotations

import importlib
import os
import shlex
import sys
import textwrap
from pathlib import Path

from .errors import ConfigError

# suite kinds that run their own loop: kind -> (module of graphdiff.bench, function(suite, **run options))
OWN_LOOPS = {"timeseries": ("timeseries", "run_timeseries"), "lggm": ("lggm", "run_lggm"),
             "images": ("images", "run_images"), "guidance": ("guidance", "run_guidance"),
             "fairness": ("fairness", "run_fairness"), "minority": ("minority", "run_minority"),
             "targeting": ("targeting", "run_targeting"),
             "kernels": ("kernels", "run_kernels")}


def cmd_bench_list(args) -> int:
    from .bench.suites import SUITES

    for s in SUITES.values():
        entries = ", ".join(e.name for e in s.entries)
        print(f"{s.name:15} about {s.expected_minutes:g} min on 2 CPU cores ({s.kind}): {entries}")
        print(textwrap.fill(s.description, width=110, initial_indent=" " * 16, subsequent_indent=" " * 16))
    print("\ngraphdiff bench run SUITE [--minutes M] [--samples N] [--set KEY=VALUE] [--only ENTRY] [--out DIR]")
    return 0


def cmd_bench_run(args) -> int:
    import torch

    from .bench.runner import run_suite
    from .bench.suites import get_suite
    from .config import parse_overrides

    suite = get_suite(args.suite)
    if args.minutes is not None and args.minutes <= 0:
        raise ConfigError(f"--minutes must be > 0, got {args.minutes}")
    if args.samples is not None and args.samples < 1:
        raise ConfigError(f"--samples must be at least 1, got {args.samples}")
    if args.steps and min(args.steps) < 1:
        raise ConfigError(f"--steps must be positive integers, got {args.steps}")
    if args.bootstrap < 0:
        raise ConfigError(f"--bootstrap must be >= 0, got {args.bootstrap}")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    out = Path(args.out or f"bench/{suite.name}-{device}")
    from .checks import check_output_folder

    check_output_folder(out)
    raw_from = args.raw_from or os.environ.get("GRAPHDIFF_RAW")
    command = "graphdiff " + " ".join(shlex.quote(a) for a in getattr(args, "argv", sys.argv[1:]))
    runner = OWN_LOOPS.get(suite.kind)
    if runner is None:
        run = run_suite
    else:  # protocols with their own loop (baselines, leave-one-domain-out, guides, kernel timings)
        module, fn = runner
        fn = getattr(importlib.import_module(f".bench.{module}", __package__), fn)
        run = lambda name, **kw: fn(suite, **kw)  # noqa: E731
    res = run(suite.name, out=out, minutes=args.minutes, samples=args.samples,
                    overrides=parse_overrides(args.set), model=args.model, root=args.root, raw_from=raw_from,
                    only=args.only, bootstrap=args.bootstrap, progress=not args.quiet, command=command,
                    steps=args.steps)
    print((out / "results.md").read_text())
    print(f"{len(res['rows'])} rows in {res['wall_minutes']} min -> {out / 'results.json'}, {out / 'results.md'}")
    return 0


def cmd_bench_compare(args) -> int:
    from .bench.runner import compare

    print(compare(args.folders), end="")
    return 0


def add_bench_commands(sub) -> None:
    b = sub.add_parser("bench", help="run a benchmark suite end to end (list, run, compare)")
    bsub = b.add_subparsers(dest="action", required=True)
    bsub.add_parser("list", help="the suites, what each trains, samples and scores, and its CPU time"
                    ).set_defaults(func=cmd_bench_list)
    r = bsub.add_parser("run", help="train (or load), sample, evaluate a suite; write results.json and results.md")
    r.add_argument("suite", help="suite name (graphdiff bench list)")
    r.add_argument("--model", default=None,
                   help="evaluate this checkpoint (one entry) or folder of run folders named after the entries")
    r.add_argument("--minutes", type=float, default=None, help="training budget per entry (default: the suite's)")
    r.add_argument("--samples", type=int, default=None, help="samples per step count (default: the suite's)")
    r.add_argument("--steps", type=int, nargs="+", default=None,
                   help="sampling step counts to score at (default: each entry's)")
    r.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override a preset value in every entry, e.g. train.amp=true")
    r.add_argument("--only", nargs="+", default=None, metavar="ENTRY", help="run only these entries")
    r.add_argument("--out", default=None, help="results folder (default bench/<suite>-<device>)")
    r.add_argument("--root", default=None, help="dataset root (default <out>/data)")
    r.add_argument("--raw-from", default=None,
                   help="folder with the standard raw files, placed where the loaders look (default $GRAPHDIFF_RAW)")
    r.add_argument("--bootstrap", type=int, default=100, help="bootstrap resamples of graph MMD intervals")
    r.add_argument("--quiet", action="store_true")
    r.set_defaults(func=cmd_bench_run)
    c = bsub.add_parser("compare", help="print results folders side by side")
    c.add_argument("folders", nargs="+", help="results folders, one per run; DIR_A+DIR_B: one run split over two "
                   "folders by --only")
    c.set_defaults(func=cmd_bench_compare)
