"""The GDSS authors' graph checkpoints converted by graphdiff and sampled with the paper's settings.

    python benchmarks/imported_gdss.py --checkpoints GDSS/checkpoints [--datasets community_small ego_small ...]
                                       [--graphs N] [--steps S] [--mmd] [--root DIR] [--raw-from DIR] [--out DIR]

``--checkpoints`` is the ``checkpoints/`` folder of the authors' repository (github.com/harryjo97/GDSS), holding
``<dataset>/gdss_<dataset>.pth``. Each file is converted with :func:`graphdiff.convert.checkpoints.import_checkpoint`
(the command ``graphdiff import-checkpoint --format gdss``) and sampled with the sampler the conversion recorded
(the paper's), at ``--steps`` steps (default: the paper's 1000, but 100 for the 100-361-node grid graphs on a
CPU: see ``STEPS``), ``--graphs`` graphs per set (default ``GRAPHS``), seed 0.
With ``--mmd`` the sets sampled with at least 10 graphs are scored against the test split (GDSS protocol MMD^2
of degree, clustering and orbit counts); with fewer graphs than the test split these are noisy.

The QM9 checkpoint is scored by ``graphdiff bench run qm9 --only gdss-imported --model DIR`` (the molecule
metrics beside our own QM9 rows); this script covers the generic-graph checkpoints.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import _common

NAME = Path(__file__).stem
DATASETS = ("community_small", "ego_small", "enzymes", "grid")
FILES = {"community_small": "community_small/gdss_community_small.pth", "ego_small": "ego_small/gdss_ego_small.pth",
         "enzymes": "ENZYMES/gdss_enzymes.pth", "grid": "grid/gdss_grid.pth"}
STEPS = {"community_small": 1000, "ego_small": 1000, "enzymes": 1000, "grid": 100}  # the paper: 1000 everywhere
GRAPHS = {"community_small": 20, "ego_small": 40, "enzymes": 4, "grid": 1}  # the first two: their test splits


def run(name: str, args, root: Path, models: Path) -> dict:
    import torch

    from graphdiff import GraphDiffusionPipeline
    from graphdiff.convert.checkpoints import import_checkpoint
    from graphdiff.convert.networkx import to_networkx

    src = Path(args.checkpoints) / FILES[name]
    t = time.perf_counter()
    summary = import_checkpoint(src, "gdss", models / name, root=root)
    convert_s = time.perf_counter() - t
    pipe = GraphDiffusionPipeline.from_pretrained(models / name)
    steps, n = args.steps or STEPS[name], args.graphs or GRAPHS[name]
    t = time.perf_counter()
    with torch.no_grad():
        graphs = to_networkx(pipe.sample(n, steps=steps, seed=0, progress=False), pipe.schema)
    sample_s = time.perf_counter() - t
    row = {"dataset": name, "file": str(src), "tensors": summary["tensors"], "ema": summary["ema"],
           "sampler": summary["sample"], "steps": steps, "graphs": n, "convert_seconds": round(convert_s, 1),
           "sample_seconds": round(sample_s, 1), "nodes": [g.number_of_nodes() for g in graphs],
           "edges": [g.number_of_edges() for g in graphs]}
    if args.mmd and n >= 10:
        from graphdiff.data import load_dataset
        from graphdiff.metrics.evaluate import evaluate_graphs

        res = evaluate_graphs(graphs, load_dataset(name, root=root), protocol="gdss", bootstrap=0)
        row["mmd2"] = {k: v.get("mmd2") for k, v in (res.get("mmd") or {}).get("stats", {}).items()}
    print(row, flush=True)
    return row


def main() -> None:
    p = _common.parser(__doc__, NAME, overrides=False)
    p.add_argument("--checkpoints", required=True, help="the authors' checkpoints/ folder")
    p.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=DATASETS)
    p.add_argument("--graphs", type=int, default=None, help="graphs per set (default: GRAPHS)")
    p.add_argument("--steps", type=int, default=None, help="sampling steps (default: STEPS)")
    p.add_argument("--mmd", action="store_true", help="score against the test split (GDSS protocol)")
    args = p.parse_args()
    started = _common.machine()
    root = _common.data_root(args, args.datasets)
    models = root / "imported-gdss"  # the converted checkpoints (not results)
    rows = _common.each(args.datasets, lambda d: run(d, args, root, models))
    lines = ["| dataset | sampler | steps | graphs | nodes | edges | sample s | MMD^2 deg / clus / orbit |",
             "|---|---|---:|---:|---|---|---:|---|"]
    for r in rows:
        s = r["sampler"]
        knobs = ", ".join([s["sampler"]] + [f"{k} {s[k]}" for k in ("predictor", "snr", "scale_eps") if k in s])
        mmd = " / ".join(f"{r['mmd2'][k]:.4f}" for k in ("degree", "clustering", "orbit") if k in r["mmd2"]) \
            if "mmd2" in r else "-"
        lines.append(f"| {r['dataset']} | {knobs} | {r['steps']} | {r['graphs']} | {min(r['nodes'])}-{max(r['nodes'])}"
                     f" | {min(r['edges'])}-{max(r['edges'])} | {r['sample_seconds']} | {mmd} |")
    _common.write_results(args, NAME, {"rows": rows}, "\n".join(lines) + "\n", started=started)


if __name__ == "__main__":
    sys.exit(_common.run(main))
