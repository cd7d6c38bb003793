"""The "data" rows: each dataset's own train split evaluated against its test split.

Papers print these rows as the floor a model can hope to reach. For generic graphs this is MMD^2 under both
protocols (gdss, spectre) plus validity for families that have a rule; for molecules it is the molecule metrics
of a seeded 10,000-molecule train subset against the test split.

    python benchmarks/data_rows.py [--graphs community_small ego_small enzymes grid planar sbm]
                                   [--molecules qm9 zinc250k moses] [--root DIR] [--raw-from DIR]
                                   [--bootstrap 100] [--n-molecules 10000] [--json out.json] [--md out.md]

The root defaults to a temporary folder whose ``<name>/raw`` folders link to the offline copies (``--raw-from``,
default ``../shared/datasets``); generated datasets need no raw files.
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
from _offline import RAW, default_raw_from  # noqa: E402

def link_raw(root: Path, raw_from: Path, names) -> None:
    for name in names:
        for rel in RAW.get(name, []):
            src, dst = raw_from / rel, root / name / "raw" / Path(rel).name
            if src.is_file() and not dst.exists():
                dst.parent.mkdir(parents=True, exist_ok=True)
                dst.symlink_to(src.resolve())


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
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--graphs", nargs="*", default=["community_small", "ego_small", "enzymes", "grid", "planar",
                                                   "sbm"])
    p.add_argument("--molecules", nargs="*", default=["qm9", "zinc250k"])
    p.add_argument("--root", default=None)
    p.add_argument("--raw-from", default=None)
    p.add_argument("--bootstrap", type=int, default=100)
    p.add_argument("--n-molecules", type=int, default=10_000)
    p.add_argument("--json", default=None)
    p.add_argument("--md", default=None)
    a = p.parse_args(argv)
    root = Path(a.root) if a.root else Path(tempfile.mkdtemp(prefix="graphdiff-rows-"))
    link_raw(root, Path(a.raw_from) if a.raw_from else default_raw_from(), a.graphs + a.molecules)
    print(f"root {root}, bootstrap {a.bootstrap}, molecules per row {a.n_molecules}, cores {os.cpu_count()}")
    rows = {**graph_rows(a.graphs, root, a.bootstrap), **molecule_rows(a.molecules, root, a.bootstrap,
                                                                          a.n_molecules)}
    md = markdown(rows)
    print(md)
    if a.json:
        Path(a.json).write_text(json.dumps({"command": " ".join(sys.argv), "rows": rows}, indent=1, default=str))
    if a.md:
        Path(a.md).write_text(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
