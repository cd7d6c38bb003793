"""Speed of the evaluator on this machine.

1. Orbit counts (15 orbits, 2-4 node graphlets) for the 200 SPECTRE SBM graphs; goal <= 10 s on 2 cores.
2. All molecule metrics for 10,000 QM9 samples (a seeded train subset standing in for generated molecules)
   against the GDSS test split, novelty against the full train split; goal <= 2 minutes on 2 cores. Run twice:
   cold (reference statistics computed) and warm (reference statistics cached in the process, as in a
   training loop that evaluates repeatedly).
3. ``--moses``: ``graphdiff evaluate --dataset moses`` of 10,000 molecules (a seeded draw from the MOSES
   scaffold-test rows of the molsets wheel, or from the train split without it), as a user runs it: a new process
   with the reference statistics cache deleted (cold), then again (warm, statistics from the disk cache). The
   processed dataset is built first and not timed. Goal: cold <= 5 minutes on 2 quiet cores.

    python benchmarks/eval_speed.py [--root DIR] [--raw-from DIR] [--n 10000] [--workers 2] [--skip-molecules]
                                    [--moses] [--out DIR]

The root defaults to a temporary folder whose raw folders link to the offline copies in ``--raw-from``
(``graphdiff.bench.offline``). The machine's core count and load average are printed beside the figures. Results
go to ``<out>/eval_speed.json`` and ``.md`` (``<out>`` default ``benchmarks/results/eval_speed-cpu``; ``--json
FILE`` of the earlier version). No preset is built, so there is no ``--set``.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import _common

NAME = Path(__file__).stem


def orbit_speed(root) -> dict:
    from graphdiff.data import load_dataset
    from graphdiff.metrics.orbits import orbit_counts

    graphs = load_dataset("sbm", root=root).to_networkx()
    t = time.perf_counter()
    for g in graphs:
        orbit_counts(g)
    dt = time.perf_counter() - t
    return {"graphs": len(graphs), "nodes_max": max(g.number_of_nodes() for g in graphs),
            "edges_max": max(g.number_of_edges() for g in graphs), "seconds": round(dt, 3), "goal_s": 10}


def molecule_speed(root, n: int, workers: int) -> dict:
    import numpy as np

    from graphdiff.data import load_dataset
    from graphdiff.metrics.evaluate import dataset_smiles
    from graphdiff.metrics.molecules import clear_caches, molecule_metrics

    ds = load_dataset("qm9", root=root)
    train, test = dataset_smiles(ds.split("train")), dataset_smiles(ds.split("test"))
    pick = np.random.default_rng(0).choice(len(train), n, replace=False)
    gen = [train[i] for i in pick]
    out = {"samples": n, "reference": len(test), "train": len(train), "workers": workers}
    clear_caches()
    for run in ("cold", "warm"):
        t = time.perf_counter()
        res = molecule_metrics(gen, test, train, n_jobs=workers)
        out[f"{run}_seconds"] = round(time.perf_counter() - t, 2)
        out[f"{run}_timings"] = res.get("timings_s")
    out["goal_s"] = 120
    return out


def moses_speed(root, n: int, out_dir: Path) -> dict:
    import shutil
    import subprocess

    import numpy as np

    from graphdiff.data import load_dataset
    from graphdiff.metrics.moses_stats import wheel_rows

    ds = load_dataset("moses", root=root)
    rows = wheel_rows("test_scaffolds")
    source = "molsets wheel test_scaffolds rows"
    if rows is None:
        from graphdiff.metrics.evaluate import dataset_smiles

        rows, source = dataset_smiles(ds.split("train")), "MOSES train split"
    pick = np.sort(np.random.default_rng(0).choice(len(rows), n, replace=False))
    import tempfile

    samples = Path(tempfile.mkdtemp(prefix="moses-eval-")) / "moses_samples.smi"  # regenerated from the seed
    out_dir.mkdir(parents=True, exist_ok=True)
    samples.write_text("\n".join(rows[i] for i in pick) + "\n")
    shutil.rmtree(ds.processed_dir / "metrics", ignore_errors=True)
    out = {"samples": n, "samples_from": f"{source}, seed 0", "goal_s": 300}
    for run in ("cold", "warm"):
        cmd = [sys.executable, "-m", "graphdiff.cli", "evaluate", "--dataset", "moses", "--samples", str(samples),
               "--root", str(root), "--json", str(out_dir / f"moses_{run}.json")]
        t = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        out[f"{run}_seconds"] = round(time.perf_counter() - t, 1)
        if proc.returncode:
            raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr[-2000:]}")
        res = json.loads((out_dir / f"moses_{run}.json").read_text())
        out[f"{run}_timings"] = res.get("timings_s")
        out[f"{run}_sources"] = res["settings"].get("reference_statistics")
        out[f"{run}_figures"] = {k: res.get(k) for k in ("validity", "uniqueness", "novelty", "fcd", "snn", "frag",
                                                         "scaf", "intdiv", "filters")}
    out["command"] = "graphdiff evaluate --dataset moses --samples moses_samples.smi"
    return out


def main(argv=None) -> int:
    p = _common.parser(__doc__, NAME, overrides=False)
    p.add_argument("--n", type=int, default=10_000, help="QM9 molecules scored")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    p.add_argument("--skip-molecules", action="store_true")
    p.add_argument("--moses", action="store_true", help="also time a cold and a warm MOSES evaluation")
    a = p.parse_args(argv)
    started = _common.machine()
    root = _common.data_root(a, ["sbm", "qm9"] + (["moses"] if a.moses else []), NAME)
    from graphdiff.data import load_dataset

    load_dataset("sbm", root=root)  # processing is not part of the timing
    if not a.skip_molecules:
        load_dataset("qm9", root=root)
    res = {"cores": os.cpu_count(), "load_before": os.getloadavg()[0], "orbits": orbit_speed(root)}
    lines = [f"orbit counts, {res['orbits']['graphs']} SBM graphs: {res['orbits']['seconds']} s (goal 10 s)"]
    print(lines[-1], flush=True)
    if not a.skip_molecules:
        res["molecules"] = molecule_speed(root, a.n, a.workers)
        m = res["molecules"]
        lines.append(f"molecule metrics, {a.n} QM9 samples, {a.workers} workers: cold {m['cold_seconds']} s, "
                     f"warm {m['warm_seconds']} s (goal 120 s)")
    if a.moses:
        load_dataset("moses", root=root)
        res["moses"] = m = moses_speed(root, a.n, Path(_common.out_dir(a, NAME)))
        lines.append(f"graphdiff evaluate --dataset moses, {a.n} samples: cold {m['cold_seconds']} s, "
                     f"warm {m['warm_seconds']} s (goal 300 s cold)")
        print(lines[-1], flush=True)
    res["load_after"] = os.getloadavg()[0]
    lines.append(f"cores {res['cores']}, 1-min load {res['load_before']:.2f} before, {res['load_after']:.2f} after")
    _common.write_results(a, NAME, res, "\n".join(f"- {x}" for x in lines) + "\n", started=started)
    return 0


if __name__ == "__main__":
    sys.exit(_common.run(main))
