"""Discrete diffusion (DiGress) and discrete flow matching (DeFoG) benchmark, beside the published rows.

    python benchmarks/discrete.py [--runs defog-qm9 digress-qm9 defog-planar defog-sbm] [--minutes 15]
                                  [--qm9-samples 1000] [--qm9-steps 50 500] [--graph-steps 100] [--cpu-model]
                                  [--batch B] [--root DIR] [--out benchmarks/results/discrete] [--reuse] [--append]

Each run trains its preset under a wall-clock budget (``--minutes``), then samples with the same checkpoint at
every requested step count. QM9: strict validity (no correction), uniqueness, novelty, FCD against the test split.
Planar / SBM: V.U.N. and SPECTRE-protocol MMD^2 (degree, clustering, orbit, spectral) against the 40 test graphs,
as many samples as test graphs. ``--cpu-model`` replaces the preset's network by a small one that can train at all
on two CPU cores (printed beside every row); the presets' own sizes are for a GPU.
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

# DiGress / DeFoG rows of ../shared/REFERENCE_NUMBERS.md
PAPER = {
    "qm9": {"DiGress (500 steps)": {"valid": 99.0, "unique": 96.2},
            "DeFoG (500 steps)": {"valid": 99.3, "unique": 96.3, "fcd": 0.12},
            "DeFoG (50 steps)": {"valid": 98.9, "unique": 96.2, "fcd": 0.26}},
    "planar": {"DiGress (1000 steps)": {"vun": 77.5, "degree": .0007, "clustering": .0780, "orbit": .0079,
                                        "spectral": .0098},
               "DeFoG (1000 steps)": {"vun": 99.5, "degree": .0005, "clustering": .0501, "orbit": .0006,
                                      "spectral": .0072},
               "DeFoG (50 steps)": {"vun": 95.0}},
    "sbm": {"DiGress": {"vun": 60.0, "degree": .0018, "clustering": .0485, "orbit": .0415, "spectral": .0045},
            "DeFoG": {"vun": 90.0, "degree": .0006, "clustering": .0517, "orbit": .0556, "spectral": .0054}},
}
# small networks that can train at all on two CPU cores, by model name
CPU_MODELS = {"graph_transformer": {"n_layers": 4, "hidden_x": 64, "hidden_e": 32, "hidden_y": 32, "n_heads": 4,
                                    "ff_x": 128, "ff_e": 64, "ff_y": 64},
              "ppgn_transformer": {"n_layers": 3, "hidden": 64, "n_heads": 4}}
CPU_BATCH = {"qm9": 256, "zinc250k": 64, "planar": 16, "sbm": 8}


def run_one(preset: str, args, root: Path) -> dict:
    from graphdiff.data import load_dataset
    from graphdiff.metrics.evaluate import evaluate_graphs, evaluate_molecules
    from graphdiff.pipeline import GraphDiffusionPipeline

    dataset = preset.split("-", 1)[1]
    ds = load_dataset(dataset, root=root)
    overrides = {}
    if args.cpu_model:
        from graphdiff.config import load_preset

        model = load_preset(preset)["model"]["name"]
        overrides = {"model": dict(CPU_MODELS[model]), "train": {"batch_size": CPU_BATCH.get(dataset, 64)}}
    if getattr(args, "batch", None):
        overrides.setdefault("train", {})["batch_size"] = int(args.batch)
    if getattr(args, "process_overrides", None):
        overrides.setdefault("process", {}).update(args.process_overrides)
    if getattr(args, "compile", False):
        overrides.setdefault("train", {})["compile"] = True
    if getattr(args, "checkpointing", False):
        overrides.setdefault("model", {})["gradient_checkpointing"] = True
    if getattr(args, "amp", False):
        overrides.setdefault("train", {})["amp"] = True
    t0 = time.perf_counter()
    run = Path(args.out) / preset
    if getattr(args, "reuse", False) and (run / "checkpoint" / "config.json").is_file():
        pipe = GraphDiffusionPipeline.from_pretrained(run)  # trained by an earlier call: evaluate again
        log = [json.loads(x) for x in (run / "log.jsonl").read_text().splitlines()]
        last = [x for x in log if "loss" in x][-1]
        pipe.summary = {"steps": pipe.config.get("step"), "epochs": pipe.config.get("epoch"), "loss": last["loss"]}
        train_s = last["seconds"]
    else:
        pipe = GraphDiffusionPipeline.fit(ds, preset=preset, out=run, max_minutes=args.minutes, overrides=overrides,
                                          progress=False)
        train_s = time.perf_counter() - t0
    molecule = ds.schema.kind == "molecule"
    steps_list = args.qm9_steps if molecule else args.graph_steps
    counts = list(args.qm9_samples) if molecule else [len(ds.split("test"))]
    counts += [counts[-1]] * (len(steps_list) - len(counts))
    evals = []
    for steps, n in zip(steps_list, counts):
        if hasattr(pipe.process, "reset_stats"):
            pipe.process.reset_stats()
        t1 = time.perf_counter()
        out = pipe.sample(n, steps=steps, seed=0, output="state" if molecule else "networkx", progress=False,
                          batch_size=getattr(args, "sample_batch", None))
        sample_s = time.perf_counter() - t1
        if molecule:
            from graphdiff.convert.rdkit import to_mol

            res = evaluate_molecules(to_mol(out, pipe.schema, sanitize=False), ds, subsets=0)
        else:
            res = evaluate_graphs(out, ds, protocol="spectre", bootstrap=args.bootstrap)
        calls = _calls_per_graph(pipe, steps, n)
        evals.append({"steps": steps, "num_samples": n, "sample_batch": getattr(args, "sample_batch", None),
                      "sample_seconds": round(sample_s, 1),
                      "graphs_per_second": round(n / sample_s, 2), "network_calls_per_graph": calls, "result": res,
                      **_degree_matched(pipe)})
        print(json.dumps({"preset": preset, "steps": steps, "sample_seconds": round(sample_s, 1)}), flush=True)
    s = pipe.summary
    params = sum(p.numel() for p in pipe.denoiser.parameters())
    return {"preset": preset, "dataset": dataset, "budget_minutes": args.minutes, "trained_steps": s["steps"],
            "trained_epochs": s["epochs"], "train_seconds": round(train_s, 1), "final_loss": s["loss"],
            "model_overrides": overrides, "parameters": params, "sampler": pipe.config["sample"].get("sampler"),
            "group_by_size": int(((pipe.config.get("preset") or {}).get("train") or {}).get("group_by_size") or 0),
            "evals": evals}


def previous_rows(path: Path, replacing) -> list:
    """Rows an earlier call wrote to ``path``, less the presets this call runs again (``--append``)."""
    if not path.is_file():
        return []
    old = json.loads(path.read_text())
    rows = [r for r in old["rows"] if r["preset"] not in set(replacing)]
    for r in rows:  # files written before rows carried their own command
        r.setdefault("command", old.get("command", "unknown"))
    return rows


def save_rows(path: Path, rows: list, **extra) -> None:
    """Write the rows; a row run by this call records its command line and the load average when it ended."""
    command = "python " + " ".join(sys.argv)
    for r in rows:
        if "command" not in r:
            r["command"] = command
            r["load_average_1_5_15"] = [round(x, 2) for x in os.getloadavg()]
    path.write_text(json.dumps({"cpu_count": os.cpu_count(), "rows": rows, **extra}, indent=1, default=str))


def _calls_per_graph(pipe, steps: int, n: int):
    """Denoiser calls per generated graph: counted by the process when it can (PARD), else one per step."""
    stats = getattr(pipe.process, "total_stats", None)
    if stats and stats.get("graphs"):
        return round(stats["network_calls"] / stats["graphs"], 1)
    return steps


def _degree_matched(pipe) -> dict:
    """PARD with block degree: the share of generated nodes whose edges to blocks up to their own number the block
    degree they were drawn with (``{}`` for other processes)."""
    stats = getattr(pipe.process, "total_stats", None) or {}
    if not getattr(pipe.process, "block_degree", False) or not stats.get("nodes"):
        return {}
    return {"block_degree_matched": round(stats["degree_matched"] / stats["nodes"], 4)}


def budget_text(r: dict) -> str:
    """The training budget of a row: minutes, small model or not, batch size when it was set, size grouping."""
    over = r.get("model_overrides") or {}
    parts = ["small model"] if over.get("model") else []
    bs = (over.get("train") or {}).get("batch_size")
    if bs:
        parts.append(f"batch {bs}")
    if r.get("group_by_size"):
        parts.append("batches grouped by size")
    if (over.get("train") or {}).get("compile"):
        parts.append("train.compile, compilation inside the budget")
    if (over.get("train") or {}).get("amp"):
        parts.append("train.amp: bf16 autocast")
    for key, value in (over.get("process") or {}).items():
        parts.append(f"{key}={value}")
    return f"{r['budget_minutes']} min CPU" + (f" ({', '.join(parts)})" if parts else "")


def markdown(rows, paper=None) -> str:
    paper = PAPER if paper is None else paper
    mol = ["| run | steps | valid % (strict) | valid and connected % | unique % | novel % | FCD | budget | "
           "trained steps | params |", "|---|---|---|---|---|---|---|---|---|---|"]
    gra = ["| dataset | run | steps | V.U.N. % | deg | clus | orbit | spec | budget | trained steps |",
           "|---|---|---|---|---|---|---|---|---|---|"]
    seen = set()
    for r in rows:
        budget = budget_text(r)
        for e in r["evals"]:
            res = e["result"]
            if res.get("kind") == "molecules":
                fcd = res.get("fcd")
                conn = res.get("valid_connected")  # rows evaluated before it existed lack it
                mol.append(f"| {r['preset']} | {e['steps']} | {100 * res['validity_strict']:.1f} | "
                           f"{'–' if conn is None else f'{100 * conn:.1f}'} | "
                           f"{100 * (res['uniqueness'] or 0):.1f} | {100 * (res['novelty'] or 0):.1f} | "
                           f"{'–' if fcd is None else f'{fcd:.2f}'} | {budget} | {r['trained_steps']} | "
                           f"{r['parameters']:,} |")
            else:
                st = res["mmd"]["stats"]
                v = res["vun"]["vun"]
                vals = [st.get(k, {}).get("mmd2") for k in ("degree", "clustering", "orbit", "spectral")]
                cells = " | ".join("–" if x is None else f"{x:.4f}" for x in vals)
                gra.append(f"| {r['dataset']} | {r['preset']} | {e['steps']} | "
                           f"{'–' if v is None else f'{100 * v:.1f}'} | {cells} | {budget} | {r['trained_steps']} |")
        if r["dataset"] not in seen:
            seen.add(r["dataset"])
            for name, p in paper.get(r["dataset"], {}).items():
                if r["dataset"] in ("qm9", "zinc250k"):
                    mol.append(f"| {name}, paper | – | {p.get('valid', '–')} | – | {p.get('unique', '–')} | – | "
                               f"{p.get('fcd', '–')} | GPU | – | – |")
                else:
                    cells = " | ".join(str(p.get(k, "–")) for k in ("degree", "clustering", "orbit", "spectral"))
                    gra.append(f"| {r['dataset']} | {name}, paper | – | {p.get('vun', '–')} | {cells} | GPU | – |")
    parts = [t for t in (mol, gra) if len(t) > 2]
    return "\n\n".join("\n".join(t) for t in parts) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", nargs="+", default=["defog-qm9", "digress-qm9", "defog-planar", "defog-sbm"])
    p.add_argument("--minutes", type=float, default=15.0)
    p.add_argument("--qm9-samples", type=int, nargs="+", default=[1000], help="per step count (last one repeats)")
    p.add_argument("--qm9-steps", type=int, nargs="+", default=[50, 500])
    p.add_argument("--graph-steps", type=int, nargs="+", default=[100])
    p.add_argument("--cpu-model", action="store_true", help="a small network for CPU budgets")
    p.add_argument("--batch", type=int, default=None, help="training batch size (default: the preset's, or "
                   "CPU_BATCH with --cpu-model)")
    p.add_argument("--bootstrap", type=int, default=100)
    p.add_argument("--root", default=None)
    p.add_argument("--out", default="benchmarks/results/discrete")
    p.add_argument("--reuse", action="store_true", help="evaluate a checkpoint this script already trained")
    p.add_argument("--append", action="store_true", help="keep rows of other presets already in <out>/discrete.json")
    p.add_argument("--amp", action="store_true", help="train with train.amp (bf16 autocast, CPU or CUDA)")
    args = p.parse_args(argv)
    root = Path(args.root) if args.root else Path(tempfile.mkdtemp(prefix="discrete-bench-"))
    link_raw(root, {r.split("-", 1)[1] for r in args.runs})
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = previous_rows(out / "discrete.json", args.runs) if args.append else []
    for preset in args.runs:
        print(f"== {preset}", flush=True)
        rows.append(run_one(preset, args, root))
        save_rows(out / "discrete.json", rows)
        (out / "discrete.md").write_text(markdown(rows))
    print(markdown(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
