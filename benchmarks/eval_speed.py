"""Speed of the evaluator on this machine.

1. Orbit counts (15 orbits, 2-4 node graphlets) for the 200 SPECTRE SBM graphs; goal <= 10 s on 2 cores.
2. All molecule metrics for 10,000 QM9 samples (a seeded train subset standing in for generated molecules)
   against the GDSS test split, novelty against the full train split; goal <= 2 minutes on 2 cores. Run twice:
   cold (reference statistics computed) and warm (reference statistics cached in the process, as in a
   training loop that evaluates repeatedly).

    python benchmarks/eval_speed.py [--root DIR] [--raw-from DIR] [--n 10000] [--workers 2] [--json out.json]

The root defaults to a temporary folder whose raw folders link to the offline copies in ``--raw-from`` (default
``../shared/datasets``). The machine's core count and load average are printed beside the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _offline import default_raw_from  # noqa: E402
from data_rows import link_raw  # noqa: E402


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


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--root", default=None)
    p.add_argument("--raw-from", default=None)
    p.add_argument("--n", type=int, default=10_000)
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    p.add_argument("--skip-molecules", action="store_true")
    p.add_argument("--json", default=None)
    a = p.parse_args(argv)
    root = Path(a.root) if a.root else Path(tempfile.mkdtemp(prefix="graphdiff-speed-"))
    link_raw(root, Path(a.raw_from) if a.raw_from else default_raw_from(), ["sbm", "qm9"])
    from graphdiff.data import load_dataset

    load_dataset("sbm", root=root)  # processing is not part of the timing
    if not a.skip_molecules:
        load_dataset("qm9", root=root)
    res = {"cores": os.cpu_count(), "load_before": os.getloadavg()[0], "orbits": orbit_speed(root)}
    print(f"orbit counts, {res['orbits']['graphs']} SBM graphs: {res['orbits']['seconds']} s (goal 10 s)")
    if not a.skip_molecules:
        res["molecules"] = molecule_speed(root, a.n, a.workers)
        m = res["molecules"]
        print(f"molecule metrics, {a.n} QM9 samples, {a.workers} workers: cold {m['cold_seconds']} s, "
              f"warm {m['warm_seconds']} s (goal 120 s)")
    res["load_after"] = os.getloadavg()[0]
    print(f"cores {res['cores']}, 1-min load {res['load_before']:.2f} before, {res['load_after']:.2f} after")
    if a.json:
        Path(a.json).write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
