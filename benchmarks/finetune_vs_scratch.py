"""Fine-tuning a bundled model on a new molecule domain against training the same preset from scratch.

The base model (default ``qm9-defog``) is fine-tuned with ``graphdiff finetune`` on a seeded subset of ZINC250k's
train split (default 5,000 molecules, atoms QM9 lacks: S, Cl, Br, P, I), and the base's own preset and network
(its ``config.json``: same process, same network sizes) is trained from scratch with ``graphdiff train`` on the
same subset, for the same wall-clock budget and the same torch threads. The two runs go side by side (one torch
thread each) unless ``--sequential``; ``--lora RANK`` adds a third arm, LoRA adapters
of that rank. Each then samples ``--samples`` molecules at ``--steps`` steps
(``graphdiff sample``), scored by ``graphdiff evaluate --dataset zinc250k`` (ZINC250k test split, novelty against
its train split); the table adds the share of valid molecules with an atom QM9 lacks.

    python benchmarks/finetune_vs_scratch.py [--base qm9-defog] [--subset 5000] [--minutes 10] [--samples 1000]
        [--steps 50] [--batch 64] [--lora RANK] [--sequential] [--root DIR] [--raw-from DIR] [--out DIR]
        [--set KEY=VALUE]
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import _common

NAME = Path(__file__).stem
NEW_ATOMS = ("S", "Cl", "Br", "P", "I")


def _graphdiff(*args) -> list[str]:
    return [sys.executable, "-m", "graphdiff.cli", *map(str, args)]


def _base_overrides(base_cfg: dict) -> list[str]:
    """``--set`` values that rebuild the base's network and training settings from its preset."""
    model = {k: v for k, v in base_cfg["model"].items()
             if k not in ("name", "node_dim", "edge_dim", "node_out", "edge_out", "cond_dim", "max_nodes")}
    out = [f"model.{k}={json.dumps(v)}" for k, v in model.items()]
    out += [f"process.{k}={json.dumps(v)}" for k, v in base_cfg["process"].items()
            if k in ("limit", "lambda_edge", "train_distortion")]
    out.append(f"train.ema_decay={json.dumps(base_cfg['train'].get('ema_decay'))}")
    return out


def _has_new_atom(smiles: str) -> bool:
    from rdkit import Chem

    mol = Chem.MolFromSmiles(smiles)
    return mol is not None and any(a.GetSymbol() in NEW_ATOMS for a in mol.GetAtoms())


def main(argv=None) -> int:
    p = _common.parser(__doc__, NAME)
    p.add_argument("--base", default="qm9-defog")
    p.add_argument("--subset", type=int, default=5000)
    p.add_argument("--minutes", type=float, default=10.0)
    p.add_argument("--samples", type=int, default=1000)
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--lora", type=int, default=None)
    p.add_argument("--sequential", action="store_true")
    a = p.parse_args(argv)
    started = _common.machine()
    out = _common.out_dir(a, NAME)
    out.mkdir(parents=True, exist_ok=True)
    root = _common.data_root(a, ["zinc250k"], NAME)

    import numpy as np

    from graphdiff.data import load_dataset
    from graphdiff.hub import resolve_model
    from graphdiff.metrics.dataset_smiles import dataset_smiles
    from graphdiff.train.checkpoint import resolve_checkpoint

    zinc = load_dataset("zinc250k", root=root)
    train = dataset_smiles(zinc.split("train"))
    pick = np.sort(np.random.default_rng(0).choice(len(train), a.subset, replace=False))
    work = Path(root) / f"{NAME}-runs"
    work.mkdir(parents=True, exist_ok=True)
    subset = work / f"zinc250k_train_{a.subset}.smi"
    subset.write_text("\n".join(train[i] for i in pick) + "\n")
    base_cfg = json.loads((resolve_checkpoint(resolve_model(a.base)) / "config.json").read_text())
    common = ["--root", root, "--quiet", "--set", f"train.batch_size={a.batch}", "--set", "train.threads=1",
              *[x for s in a.set for x in ("--set", s)]]
    folders = {"fine-tuned": work / "finetune", "from scratch": work / "scratch"}
    runs = {
        "fine-tuned": _graphdiff("finetune", "--from", a.base, "--dataset", subset, "--out", folders["fine-tuned"],
                                 "--max-minutes", a.minutes, *common),
        "from scratch": _graphdiff("train", "--preset", base_cfg["name"] or "defog-qm9", "--dataset", subset,
                                   "--out", folders["from scratch"], "--max-minutes", a.minutes, *common,
                                   *[x for s in _base_overrides(base_cfg) for x in ("--set", s)]),
    }
    if a.lora:  # a third arm: LoRA adapters of this rank instead of every weight
        name = f"fine-tuned, LoRA rank {a.lora}"
        folders[name] = work / f"lora{a.lora}"
        runs[name] = _graphdiff("finetune", "--from", a.base, "--dataset", subset, "--out", folders[name],
                                "--max-minutes", a.minutes, "--lora", a.lora, *common)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    t0 = time.perf_counter()
    procs = {}
    for name, cmd in runs.items():
        procs[name] = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        if a.sequential:
            procs[name].wait()
    logs = {name: pr.communicate()[0] for name, pr in procs.items()}
    for name, pr in procs.items():
        if pr.returncode:
            raise SystemExit(f"{name} failed:\n{logs[name][-3000:]}")
    train_s = time.perf_counter() - t0
    rows = []
    for name, folder in folders.items():
        tag = "".join(c if c.isalnum() else "_" for c in name)
        smi = work / f"{tag}.smi"
        subprocess.run(_graphdiff("sample", "--model", folder, "-n", a.samples, "--steps", a.steps, "--seed", 0,
                                  "--out", smi, "--quiet"), check=True, env=env)
        js = work / f"{tag}.json"
        subprocess.run(_graphdiff("evaluate", "--dataset", "zinc250k", "--samples", smi, "--root", root,
                                  "--metrics", "validity,uniqueness,novelty,fcd", "--subsets", "0", "--json", js),
                       check=True, stdout=subprocess.DEVNULL)
        res = json.loads(js.read_text())
        valid = [s for s in smi.read_text().split("\n") if s]
        ck = json.loads((resolve_checkpoint(folder) / "config.json").read_text())
        lineage = (ck.get("finetune") or {}).get("lineage") or [{}]
        rows.append({"model": name, "trained_steps": ck.get("step"),
                     "trainable_parameters": lineage[-1].get("trainable_parameters"),
                     "validity_strict": res["validity_strict"],
                     "uniqueness": res["uniqueness"], "novelty": res["novelty"], "fcd": res["fcd"],
                     "new_atom_share": sum(map(_has_new_atom, valid)) / max(len(valid), 1),
                     "log_tail": logs[name].strip().splitlines()[-2:]})
    payload = {"base": a.base, "subset": a.subset, "minutes": a.minutes, "samples": a.samples, "steps": a.steps,
               "batch": a.batch, "lora": a.lora, "parallel": not a.sequential, "train_wall_s": round(train_s, 1),
               "commands": {k: " ".join(map(str, v[3:])) for k, v in runs.items()}, "rows": rows}
    md = ["| model | trained steps | trained parameters | valid % | unique % | novel % | FCD | "
          "valid with S/Cl/Br/P/I % |", "|---|---:|---:|---:|---:|---:|---:|---:|"]

    def pct(v):
        return "-" if v is None else f"{100 * v:.1f}"

    for r in rows:
        fcd = "-" if r["fcd"] is None else f"{r['fcd']:.3f}"
        tp = "all" if r["trainable_parameters"] is None else f"{r['trainable_parameters']:,}"
        md.append(f"| {r['model']} | {r['trained_steps']} | {tp} | {pct(r['validity_strict'])} | "
                  f"{pct(r['uniqueness'])} | {pct(r['novelty'])} | {fcd} | {pct(r['new_atom_share'])} |")
    md.append("")
    md.append(f"{a.subset:,} ZINC250k training molecules (seed 0), {a.minutes} min each "
              f"({f'{len(runs)} side by side' if not a.sequential else 'one after the other'}, 1 torch thread each), "
              f"batch {a.batch}; {a.samples:,} samples at {a.steps} steps scored against the ZINC250k test split.")
    _common.write_results(a, NAME, payload, "\n".join(md) + "\n", started=started)
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(_common.run(main))
