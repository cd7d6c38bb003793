"""Speed of the evaluator on this machine.

1. Orbit counts (15 orbits, 2-4 node graphlets) for the 200 SPECTRE SBM graphs; goal <= 10 s on 2 cores.
2. All molecule metrics for 10,000 QM9 samples (a seeded train subset standing in for generated molecules)
   against the GDSS test split, novelty against the full train split; goal <= 2 minutes on 2 cores. Run twice:
   cold (reference statistics computed) and warm (reference statistics cached in the process, as in a
   training loop that evaluates repeatedly).

    python benchmarks/eval_speed.py [--root DIR] [--raw-from DIR] [--n 10000] [--workers 2] [--skip-molecules]
                                    [--out DIR]

The root defaults to a temporary folder whose raw folders link to the offline copies in ``--raw-from``
(``graphdiff.bench.offline``). The machine's core count and load average are printed beside the figures. Results
go to ``<out>/eval_speed.json`` and ``.md`` (``<out>`` default ``benchmarks/results/eval_speed-cpu``; ``--json
FILE`` of the earlier version). No preset is built, so there is no ``--set``.
"""

from __future__ import annotations

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


def main(argv=None) -> int:
    p = _common.parser(__doc__, NAME, overrides=False)
    p.add_argument("--n", type=int, default=10_000, help="QM9 molecules scored")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    p.add_argument("--skip-molecules", action="store_true")
    a = p.parse_args(argv)
    started = _common.machine()
    root = _common.data_root(a, ["sbm", "qm9"], NAME)
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
    res["load_after"] = os.getloadavg()[0]
    lines.append(f"cores {res['cores']}, 1-min load {res['load_before']:.2f} before, {res['load_after']:.2f} after")
    _common.write_results(a, NAME, res, "\n".join(f"- {x}" for x in lines) + "\n", started=started)
    return 0


if __name__ == "__main__":
    sys.exit(main())
