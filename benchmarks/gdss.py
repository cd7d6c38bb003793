"""GDSS benchmark: train each preset under a wall-clock budget, sample, evaluate, print beside the paper.

    python benchmarks/gdss.py [--datasets community_small ego_small grid enzymes qm9] [--minutes 10]
                              [--steps 1000] [--qm9-samples 10000] [--root DIR] [--out benchmarks/results/gdss]

Generic graphs: as many samples as the test split, GDSS protocol MMD^2 (degree, clustering, orbit) against the
test split. QM9: ``--qm9-samples`` molecules (the paper uses 10,000), strict validity (no valence correction),
uniqueness, novelty, FCD and NSPDK against the test split. Every row prints the training budget, the number of
steps actually trained, the sampler and its number of steps. Results go to ``<out>/gdss.json`` and ``gdss.md``.
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
from _offline import link_raw  # noqa: E402

# GDSS rows of ../shared/REFERENCE_NUMBERS.md (Jo et al. 2022, Tables 1-3): MMD^2 degree / clustering / orbit,
# and for QM9 validity w/o correction %, uniqueness %, FCD, NSPDK.
PAPER = {
    "community_small": {"degree": 0.045, "clustering": 0.086, "orbit": 0.007},
    "ego_small": {"degree": 0.021, "clustering": 0.024, "orbit": 0.007},
    "enzymes": {"degree": 0.026, "clustering": 0.061, "orbit": 0.009},
    "grid": {"degree": 0.111, "clustering": 0.005, "orbit": 0.070},
    "qm9": {"validity_strict": 95.7, "uniqueness": 98.5, "fcd": 2.9, "nspdk": 0.003},
}
# sampling steps where the paper's 1000 would take hours on two CPU cores (one call costs seconds at 125-361 nodes)
DEFAULT_STEPS = {"grid": 100, "enzymes": 500}


def run_one(name: str, args, root: Path) -> dict:
    from graphdiff.data import load_dataset
    from graphdiff.metrics.evaluate import evaluate_graphs, evaluate_molecules
    from graphdiff.pipeline import GraphDiffusionPipeline

    ds = load_dataset(name, root=root)
    out = Path(args.out) / name
    t0 = time.perf_counter()
    minutes = args.qm9_minutes if (name == "qm9" and args.qm9_minutes) else args.minutes
    if args.reuse and (out / "checkpoint" / "config.json").is_file():  # a finished run of this script: sample again
        pipe = GraphDiffusionPipeline.from_pretrained(out)
        log = [json.loads(x) for x in (out / "log.jsonl").read_text().splitlines()]
        steps_logged = [x for x in log if "step" in x and "loss" in x]
        pipe.summary = {"steps": pipe.config.get("step"), "epochs": pipe.config.get("epoch"),
                        "stopped_by": "max_minutes (reused checkpoint)",
                        "loss": steps_logged[-1]["loss"] if steps_logged else None}
        train_s = steps_logged[-1]["seconds"] if steps_logged else None
    else:
        pipe = GraphDiffusionPipeline.fit(ds, preset=f"gdss-{name}", out=out, max_minutes=minutes, progress=False)
        train_s = time.perf_counter() - t0
    steps = args.steps or DEFAULT_STEPS.get(name) or int(pipe.config["sample"].get("steps", 1000))
    molecule = ds.schema.kind == "molecule"
    n = args.qm9_samples if molecule else len(ds.split("test"))
    t1 = time.perf_counter()
    bs = None if molecule else args.sample_batch  # size-sorted small batches pad less on mixed-size graphs
    samples = pipe.sample(n, steps=steps, seed=0, output="state" if molecule else "networkx", progress=False,
                          batch_size=bs)
    sample_s = time.perf_counter() - t1
    if molecule:
        from graphdiff.convert.rdkit import mol_to_smiles, to_mol

        # unsanitized molecules, so that strict and GDSS-corrected validity are both reported
        mols = to_mol(samples, pipe.schema, sanitize=False)
        res = evaluate_molecules(mols, ds, subsets=0)
        strict = to_mol(samples, pipe.schema)
        (out / "samples.smi").write_text("".join(f"{mol_to_smiles(m) or ''}\n" for m in strict))
    else:
        res = evaluate_graphs(samples, ds, protocol="gdss", bootstrap=args.bootstrap)
    s = pipe.summary
    return {"dataset": name, "preset": f"gdss-{name}", "budget_minutes": minutes, "trained_steps": s["steps"],
            "trained_epochs": s["epochs"], "stopped_by": s["stopped_by"], "final_loss": s["loss"],
            "sampler": pipe.config["sample"].get("sampler"), "sample_steps": steps, "num_samples": n,
            "seconds": {"train": None if train_s is None else round(train_s, 1), "sample": round(sample_s, 1)},
            "sample_batch_size": bs or 1000,
            "graphs_per_second": round(n / sample_s, 3), "result": res, "paper": PAPER.get(name)}


def _fmt(v, digits=4):
    return "–" if v is None else (f"{v:.{digits}f}" if isinstance(v, float) else str(v))


def markdown(rows) -> str:
    lines = ["| dataset | run | degree | clustering | orbit | budget | trained steps | sampler |",
             "|---|---|---|---|---|---|---|---|"]
    mol = ["| dataset | run | valid % (strict) | valid % (corrected) | unique % | novel % | FCD | NSPDK | budget | "
           "trained steps | sampler |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        budget, tr, smp = f"{r['budget_minutes']} min CPU", r["trained_steps"], f"{r['sampler']} x {r['sample_steps']}"
        res, paper = r["result"], r["paper"] or {}
        if res.get("kind") == "molecules":
            pct = [100 * (res.get(k) or 0) for k in ("validity_strict", "validity_corrected", "uniqueness", "novelty")]
            mol.append(f"| {r['dataset']} | graphdiff | " + " | ".join(f"{v:.1f}" for v in pct)
                       + f" | {_fmt(res.get('fcd'), 3)} | {_fmt(res.get('nspdk'), 4)} | {budget} | {tr} | {smp} |")
            mol.append(f"| {r['dataset']} | GDSS paper | {paper.get('validity_strict')} | – | "
                       f"{paper.get('uniqueness')} | – | {paper.get('fcd')} | {paper.get('nspdk')} | GPU, 300 epochs "
                       "| – | pc x 1000 |")
        else:
            st = res["mmd"]["stats"]
            lines.append(f"| {r['dataset']} | graphdiff | {_fmt(st['degree']['mmd2'])} | "
                         f"{_fmt(st['clustering']['mmd2'])} | {_fmt(st['orbit']['mmd2'])} | {budget} | {tr} | {smp} |")
            lines.append(f"| {r['dataset']} | GDSS paper | {paper.get('degree')} | {paper.get('clustering')} | "
                         f"{paper.get('orbit')} | GPU, 5000 epochs | – | preset sampler x 1000 |")
    out = "\n".join(lines)
    if len(mol) > 2:
        out += "\n\n" + "\n".join(mol)
    return out + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--datasets", nargs="+", default=["community_small", "ego_small", "grid", "enzymes", "qm9"])
    p.add_argument("--minutes", type=float, default=10.0, help="training budget per dataset (wall clock)")
    p.add_argument("--steps", type=int, default=None, help="sampling steps (default: the preset's; grid 200)")
    p.add_argument("--qm9-samples", type=int, default=10_000)
    p.add_argument("--qm9-minutes", type=float, default=None, help="training budget for QM9 (default --minutes)")
    p.add_argument("--bootstrap", type=int, default=100)
    p.add_argument("--root", default=None, help="dataset root (default: a temp folder linked to offline copies)")
    p.add_argument("--out", default="benchmarks/results/gdss")
    p.add_argument("--sample-batch", type=int, default=16, help="graphs per sampling batch (generic graphs)")
    p.add_argument("--reuse", action="store_true", help="sample from a checkpoint this script already trained")
    p.add_argument("--append", action="store_true", help="keep rows of other datasets already in <out>/gdss.json")
    args = p.parse_args(argv)
    root = Path(args.root) if args.root else Path(tempfile.mkdtemp(prefix="gdss-bench-"))
    link_raw(root, args.datasets)
    Path(args.out).mkdir(parents=True, exist_ok=True)
    rows = []
    old = Path(args.out) / "gdss.json"
    if args.append and old.is_file():
        rows = [r for r in json.loads(old.read_text())["rows"] if r["dataset"] not in args.datasets]
    for name in args.datasets:
        print(f"== {name}", flush=True)
        rows.append(run_one(name, args, root))
        r = rows[-1]
        r["command"] = "python " + " ".join(sys.argv)
        print(json.dumps({k: r[k] for k in ("dataset", "trained_steps", "sample_steps", "seconds")}), flush=True)
        (Path(args.out) / "gdss.json").write_text(json.dumps(
            {"command": "python " + " ".join(sys.argv), "cpu_count": os.cpu_count(), "rows": rows}, indent=1,
            default=str))
        (Path(args.out) / "gdss.md").write_text(markdown(rows))
    print(markdown(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
