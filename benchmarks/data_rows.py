"""The "data" rows: each dataset's own train split evaluated against its test split.

Papers print these rows as the floor a model can hope to reach. For generic graphs this is MMD^2 under both
protocols (gdss, spectre) plus validity for families that have a rule; for molecules it is the molecule metrics
of a seeded 10,000-molecule train subset against the test split.

    python benchmarks/data_rows.py [--graphs community_small ego_small enzymes grid planar sbm]
                                   [--molecules qm9 zinc250k] [--root DIR] [--raw-from DIR]
                                   [--bootstrap 100] [--n-molecules 10000] [--out DIR]

The root defaults to a temporary folder whose ``<name>/raw`` folders link to the offline copies (``--raw-from``,
placed by ``graphdiff.bench.offline``); generated datasets need no raw files. Results go to
``<out>/data_rows.json`` and ``.md`` (``<out>`` default ``benchmarks/results/data_rows-cpu``; ``--json FILE --md
FILE`` of the earlier version). No preset is built, so there is no ``--set``.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import _common

NAME = Path(__file__).stem


def graph_rows(names, root, bootstrap):
    from graphdiff.metrics.evaluate import evaluate_reference

    rows = {}
    for name in names:
        for protocol in ("gdss", "spectre"):
            t = time.perf_counter()
            res = evaluate_reference(name, root=root, protocol=protocol, bootstrap=bootstrap)
            res["seconds"] = round(time.perf_counter() - t, 2)
            rows[f"{name}/{protocol}"] = res
            stats = {k: v["mmd2"] for k, v in res["mmd"]["stats"].items()}
            print(f"{name:16} {protocol:8} " + " ".join(f"{k} {v:.5f}" for k, v in stats.items())
                  + (f"  valid {res['vun']['valid']:.3f}" if res["vun"]["valid"] is not None else ""), flush=True)
    return rows


def molecule_rows(names, root, bootstrap, n_molecules):
    from graphdiff.metrics.evaluate import evaluate_reference

    rows = {}
    for name in names:
        t = time.perf_counter()
        res = evaluate_reference(name, root=root, bootstrap=bootstrap, n_molecules=n_molecules)
        res["seconds"] = round(time.perf_counter() - t, 2)
        rows[name] = res
        keys = [k for k, v in res.items() if isinstance(v, float)]
        print(f"{name:10} " + " ".join(f"{k} {res[k]:.4f}" for k in keys), flush=True)
    return rows


def markdown(rows: dict) -> str:
    out = []
    graph = {k: v for k, v in rows.items() if v.get("kind") == "graphs"}
    if graph:
        out.append("| dataset | protocol | n train / test | degree | clustering | orbit | spectral | wavelet | valid |")
        out.append("|---|---|---|---|---|---|---|---|---|")
        for key, r in graph.items():
            name, proto = key.split("/")
            s = r["mmd"]["stats"]
            cells = [f"{s[k]['mmd2']:.4f}" if k in s and s[k].get("mmd2") is not None else "–"
                     for k in ("degree", "clustering", "orbit", "spectral", "wavelet")]
            v = r["vun"]["valid"]
            out.append(f"| {name} | {proto} | {r['mmd']['n_generated']} / {r['mmd']['n_reference']} | "
                       + " | ".join(cells)
                       + f" | {'–' if v is None else f'{100 * v:.1f}%'} |")
        out.append("\nMMD^2 (biased), kernels: gdss = Gaussian-EMD (degree sigma 1, clustering sigma 0.1 with 100 "
                   "bins) + RBF sigma 30 on orbits; spectre = Gaussian-TV (clustering sigma 0.1, orbit sigma 30).")
    mol = {k: v for k, v in rows.items() if v.get("kind") == "molecules"}
    for name, r in mol.items():
        out.append(f"\n**{name}** (train subset of {r['train_subset']['size']}, seed {r['train_subset']['seed']}, "
                   f"vs {r['reference_split']} split)\n")
        out.append("| metric | value |\n|---|---|")
        for k, v in r.items():
            if isinstance(v, float):
                out.append(f"| {k} | {v:.4f} |")
    return "\n".join(out) + "\n"


def main(argv=None) -> int:
    p = _common.parser(__doc__, NAME, overrides=False)
    p.add_argument("--graphs", nargs="*", default=["community_small", "ego_small", "enzymes", "grid", "planar",
                                                   "sbm"])
    p.add_argument("--molecules", nargs="*", default=["qm9", "zinc250k"])
    p.add_argument("--bootstrap", type=int, default=100)
    p.add_argument("--n-molecules", type=int, default=10_000)
    a = p.parse_args(argv)
    started = _common.machine()
    root = _common.data_root(a, a.graphs + a.molecules, NAME)
    print(f"root {root}, bootstrap {a.bootstrap}, molecules per row {a.n_molecules}, cores {os.cpu_count()}")
    rows = {**graph_rows(a.graphs, root, a.bootstrap), **molecule_rows(a.molecules, root, a.bootstrap,
                                                                          a.n_molecules)}
    _common.write_results(a, NAME, {"rows": rows}, markdown(rows), started=started)
    return 0


if __name__ == "__main__":
    sys.exit(_common.run(main))
