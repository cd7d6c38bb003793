"""Time and memory of ``graphdiff datasets prepare`` for the molecule datasets (QM9, ZINC250k, MOSES).

Each dataset is processed from scratch in a child process: ``graphdiff datasets prepare NAME --root ROOT --force``
when the ``graphdiff`` command works, else ``python -c`` constructing the dataset with ``force_reload=True``.
ROOT defaults to a temporary folder whose ``<name>/raw`` folders hold symlinks to the offline copies in
``--raw-from`` (placed by ``graphdiff.bench.offline``) and, for MOSES, to the copies shipped in the ``molsets``
wheel (so that no run times copying them).

Reported per dataset: wall time; CPU time (user + sys) of the child and all its worker processes; peak memory
three ways, because featurisation runs in several processes:

* ``max_rss_single_mb``: ``getrusage(RUSAGE_CHILDREN).ru_maxrss`` of a wrapper process that only runs the
  command, i.e. the peak RSS of the *largest single* process (main or one worker), not their sum;
* ``peak_rss_sum_mb``: the largest sum of RSS over the process tree seen by polling (psutil, every 0.1 s); it
  counts pages shared between the forked workers and the main process once per process, so it overstates;
* ``peak_pss_sum_mb``: the same with PSS (shared pages split between sharers), polled every 0.5 s: the best
  estimate of the real total.

Also recorded: cores, workers, explicit_h, the 1-minute load average before and after (other jobs on the machine
slow the wall time; the CPU time is less sensitive to them), molecules and invalid rows from the cache's meta.

    python benchmarks/data_prepare.py [--datasets qm9 zinc250k moses] [--workers N] [--explicit-h]
                                      [--root DIR] [--raw-from DIR] [--out DIR]

Results go to ``<out>/data_prepare.json`` and ``.md`` (``<out>`` default ``benchmarks/results/data_prepare-cpu``).
No preset is built, so there is no ``--set``. The figures in ``datasets/moses.yaml`` (2 cores, 2 workers) were
measured with this script; ``--json FILE`` of its earlier version is ``--out DIR`` now.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _common

MOSES_FILES = ["train.csv.gz", "test.csv.gz", "test_scaffolds.csv.gz"]
CLASSES = {"qm9": "QM9", "zinc250k": "ZINC250k", "moses": "MOSES"}
NAME = Path(__file__).stem


def place_raw(root: Path, name: str, raw_from) -> list[str]:
    """Link the raw files of ``name`` into ``<root>/<name>/raw`` (MOSES: those of the molsets wheel); returns the
    names of the raw files in place."""
    from graphdiff.bench.offline import link_raw as link_offline
    from graphdiff.data.molecules import _molsets_copy

    raw = root / name / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    if name == "moses":
        for f in MOSES_FILES:
            src, dest = _molsets_copy(f), raw / f
            if src is not None and not dest.exists():
                dest.symlink_to(src)
    else:
        link_offline(root, [name], raw_from)
    return sorted(p.name for p in raw.iterdir() if p.exists())


def cli_works() -> bool:
    exe = shutil.which("graphdiff")
    if exe is None:
        return False
    try:
        r = subprocess.run([exe, "datasets", "prepare", "--help"], capture_output=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return r.returncode == 0


def command(name: str, root: Path, workers: int | None, explicit_h: bool, use_cli: bool) -> list[str]:
    if use_cli:
        cmd = [shutil.which("graphdiff"), "datasets", "prepare", name, "--root", str(root), "--force"]
        if workers:
            cmd += ["--workers", str(workers)]
        if explicit_h:
            cmd += ["--explicit-h"]
        return cmd
    code = (f"from graphdiff.data.molecules import {CLASSES[name]} as D; "
            f"ds = D(root={str(root)!r}, force_reload=True, workers={workers!r}, explicit_h={explicit_h!r}); "
            f"print(ds.name, len(ds), 'graphs', ds.info['invalid']['count'], 'invalid')")
    return [sys.executable, "-c", code]


def measure_child(cmd: list[str]) -> None:
    """Run by the wrapper process: run ``cmd``, print its rusage (max RSS of the largest descendant) as JSON."""
    rc = subprocess.call(cmd)
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    print(json.dumps({"rc": rc, "max_rss_kb": r.ru_maxrss, "cpu_s": r.ru_utime + r.ru_stime}), file=sys.stderr)


def run_one(cmd: list[str]) -> dict:
    try:
        import psutil
    except ImportError:  # polling is optional
        psutil = None
    wrapper = [sys.executable, __file__, "--_measure", "--", *cmd]
    t0 = time.perf_counter()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(_common.REPO), os.environ.get("PYTHONPATH")]))}
    p = subprocess.Popen(wrapper, stderr=subprocess.PIPE, text=True, env=env)  # the checkout's graphdiff
    peak_rss = peak_pss = 0
    last_pss = 0.0
    while p.poll() is None:
        if psutil is not None:
            try:
                procs = [psutil.Process(p.pid)]
                procs += procs[0].children(recursive=True)
                rss, pss, want_pss = 0, 0, time.perf_counter() - last_pss > 0.5
                for q in procs:
                    try:
                        rss += q.memory_info().rss
                        if want_pss:
                            pss += q.memory_full_info().pss
                    except (psutil.NoSuchProcess, psutil.AccessDenied):
                        pass
                peak_rss = max(peak_rss, rss)
                if want_pss:
                    peak_pss, last_pss = max(peak_pss, pss), time.perf_counter()
            except psutil.NoSuchProcess:
                pass
        time.sleep(0.1)
    wall = time.perf_counter() - t0
    err = p.stderr.read()
    stats = {}
    for line in reversed(err.strip().splitlines()):
        if line.startswith("{") and '"max_rss_kb"' in line:
            stats = json.loads(line)
            break
    else:
        sys.stderr.write(err)
    return {"wall_s": round(wall, 2), "cpu_s": round(stats.get("cpu_s", float("nan")), 1), "rc": stats.get("rc"),
            "max_rss_single_mb": round(stats.get("max_rss_kb", 0) / 1024, 1),
            "peak_rss_sum_mb": round(peak_rss / 2**20, 1) if psutil else None,
            "peak_pss_sum_mb": round(peak_pss / 2**20, 1) if psutil else None}


def cache_info(root: Path, name: str) -> dict:
    metas = sorted((root / name / "processed").glob("*/meta.json"), key=lambda f: f.stat().st_mtime)
    if not metas:
        return {}
    info = json.loads(metas[-1].read_text())["info"]
    return {"molecules": info.get("molecules"), "splits": info.get("splits"),
            "invalid": info.get("invalid", {}).get("count")}


def main(argv=None) -> int:
    if argv is None and len(sys.argv) > 2 and sys.argv[1] == "--_measure":
        measure_child(sys.argv[3:])
        return 0
    ap = _common.parser(__doc__, NAME, overrides=False)
    ap.add_argument("--datasets", nargs="+", default=list(CLASSES), choices=list(CLASSES))
    ap.add_argument("--workers", type=int, default=None, help="featurisation processes (default: os.cpu_count())")
    ap.add_argument("--explicit-h", action="store_true")
    ap.add_argument("--no-cli", action="store_true", help="always use the python -c fallback")
    args = ap.parse_args(argv)
    started = _common.machine()
    tmp = None if args.root else tempfile.mkdtemp(prefix="graphdiff-bench-")
    root = Path(args.root or tmp)
    use_cli = not args.no_cli and cli_works()
    settings = {"cores": os.cpu_count(), "workers": args.workers or os.cpu_count(), "explicit_h": args.explicit_h,
                "runner": "graphdiff CLI" if use_cli else "python -c fallback", "raw_from": args.raw_from,
                "python": sys.version.split()[0]}
    results = []
    try:
        for name in args.datasets:
            linked = place_raw(root, name, args.raw_from)
            shutil.rmtree(root / name / "processed", ignore_errors=True)
            cmd = command(name, root, args.workers, args.explicit_h, use_cli)
            load0 = os.getloadavg()[0]
            r = run_one(cmd)
            r.update(name=name, raw_files=linked, load_before=round(load0, 2),
                     load_after=round(os.getloadavg()[0], 2), command=" ".join(cmd), **cache_info(root, name))
            results.append(r)
            print(f"{name}: {r['wall_s']} s, rc {r['rc']}", file=sys.stderr)
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    md = [f"settings: {json.dumps(settings)}", "",
          "| dataset | molecules | invalid | wall s | CPU s | max RSS 1 proc MB | peak RSS sum MB | peak PSS sum MB "
          "| load before/after |", "|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    md += [f"| {r['name']} | {r.get('molecules')} | {r.get('invalid')} | {r['wall_s']} | {r['cpu_s']} | "
           f"{r['max_rss_single_mb']} | {r['peak_rss_sum_mb']} | {r['peak_pss_sum_mb']} | "
           f"{r['load_before']}/{r['load_after']} |" for r in results]
    _common.write_results(args, NAME, {"settings": settings, "results": results}, "\n".join(md) + "\n",
                          started=started)
    return 0 if all(r["rc"] == 0 for r in results) else 1


if __name__ == "__main__":
    sys.exit(_common.run(main))
