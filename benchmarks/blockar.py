"""PARD benchmark: block-autoregressive diffusion on QM9 / ZINC250k / planar / SBM, the three process families on
QM9 side by side, and training throughput on MOSES.

    python benchmarks/blockar.py [--runs pard-qm9 pard-zinc250k pard-planar pard-sbm] [--minutes 12]
                                 [--qm9-samples 1000] [--steps 25] [--cpu-model] [--batch B] [--root DIR]
                                 [--families OTHER_RESULT.json ...]
                                 [--moses-root DIR --moses-steps 20 --moses-batch 32 128 --moses-checkpointing]
                                 [--moses-amp]
                                 [--throughput-preset pard-sbm] [--append] [--reuse] [--no-block-degree]
                                 [--checkpointing] [--sample-batch N] [--compile] [--amp]
                                 [--out benchmarks/results/blockar]

Quality runs reuse ``benchmarks/discrete.py`` (same training, sampling and evaluation code), adding the total
number of network calls per graph that the PARD sampler counts. ``--families`` reads the QM9 rows other benchmark
runs wrote and prints one table of all three families with their budgets. ``--moses-root`` times training steps
on MOSES read from the prepared memory-mapped store (molecules/s, RSS after setup, peak RSS per batch size).
``--append`` keeps the rows of presets this call does not run.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import discrete  # noqa: E402
from _offline import link_raw  # noqa: E402

PAPER = {"qm9": {"PARD (explicit H, README ablation)": {"valid": 97.1, "unique": 96.5}},
         "zinc250k": {"PARD": {"valid": 95.23}}}


def _rss_mb() -> tuple[float, float]:
    """(current RSS, lifetime peak RSS) of this process in MB."""
    from _timing import rss_mb

    return round(rss_mb(), 1), round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def moses_throughput(root: Path, steps: int, cpu_model: bool, batch_sizes=None, checkpointing: bool = False,
                     preset: str = "pard-moses", amp: bool = False) -> dict:
    """Training molecules/s on MOSES from the prepared store, and where the memory goes: RSS after loading the
    store and the block statistics, then the peak after timing each batch size (ascending, so each peak is that
    batch size's own: the peak only grows). ``amp``: the forward pass under bf16 autocast, as ``train.amp``."""
    from _timing import time_train_steps

    from graphdiff.pipeline import GraphDiffusionPipeline
    from graphdiff.train import TrainConfig
    from graphdiff.train.amp import AutocastForward

    over = {"model": dict(discrete.CPU_MODELS["ppgn_transformer"])} if cpu_model else {}
    if checkpointing:
        over.setdefault("model", {})["gradient_checkpointing"] = True
    t0 = time.perf_counter()
    pipe = GraphDiffusionPipeline.from_preset(preset, root=root, overrides=over)
    setup = time.perf_counter() - t0
    rss_setup, peak_setup = _rss_mb()
    ds = pipe._dataset.split("train")
    preset_bs = TrainConfig.from_dict(pipe.config["preset"]["train"]).batch_size
    per_batch = []
    for bs in sorted(batch_sizes or [preset_bs]):
        module = AutocastForward(pipe.denoiser, "cpu") if amp else None
        timing = time_train_steps(pipe, ds, bs, steps, lr=2e-4, module=module)
        per_batch.append({**timing, "molecules_per_s": timing["graphs_per_s"], "peak_rss_mb": _rss_mb()[1]})
        print(json.dumps(per_batch[-1]), flush=True)
    main = next((r for r in per_batch if r["batch_size"] == preset_bs), per_batch[-1])
    return {"preset": preset, "train_molecules": len(ds), "amp": amp, **main, "per_batch_size": per_batch,
            "setup_seconds_incl_block_statistics": round(setup, 1),
            "rss_after_setup_mb": rss_setup, "peak_rss_during_setup_mb": peak_setup,
            "model": ("cpu model " if cpu_model else "preset + ") + json.dumps(over.get("model")) if over else "preset"}


def families_table(paths) -> str:
    lines = ["| family | run | steps | valid % (strict) | valid and connected % | unique % | novel % | FCD | budget | "
             "trained steps | graphs/s | network calls/graph |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for p in paths:
        p = Path(p)
        if not p.is_file():
            continue
        for r in json.loads(p.read_text())["rows"]:
            if r.get("dataset") != "qm9":
                continue
            evals = r.get("evals") or [{"steps": r["sample_steps"], "result": r["result"],
                                        "graphs_per_second": r["graphs_per_second"],
                                        "network_calls_per_graph": 2 * r["sample_steps"]}]
            name = r.get("preset", f"gdss-{r['dataset']}")
            family = {"gdss": "continuous (GDSS)", "defog": "discrete flow (DeFoG)", "digress": "discrete (DiGress)",
                      "pard": "block-autoregressive (PARD)"}[name.split("-")[0]]
            for e in evals:
                res = e["result"]
                fcd = res.get("fcd")
                budget = discrete.budget_text(r) if "model_overrides" in r else f"{r['budget_minutes']} min CPU"
                conn = res.get("valid_connected")
                lines.append(f"| {family} | {name} | {e['steps']} | {100 * res['validity_strict']:.1f} | "
                             f"{'–' if conn is None else f'{100 * conn:.1f}'} | "
                             f"{100 * (res['uniqueness'] or 0):.1f} | {100 * (res['novelty'] or 0):.1f} | "
                             f"{'–' if fcd is None else f'{fcd:.2f}'} | {budget} | {r['trained_steps']} | "
                             f"{e['graphs_per_second']} | {e.get('network_calls_per_graph', '–')} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", nargs="*", default=["pard-qm9", "pard-zinc250k", "pard-planar", "pard-sbm"])
    p.add_argument("--minutes", type=float, default=12.0)
    p.add_argument("--qm9-samples", type=int, default=1000)
    p.add_argument("--steps", type=int, default=25, help="diffusion steps per block")
    p.add_argument("--cpu-model", action="store_true")
    p.add_argument("--batch", type=int, default=None, help="training batch size (default as in discrete.py)")
    p.add_argument("--bootstrap", type=int, default=100)
    p.add_argument("--families", nargs="*", default=[])
    p.add_argument("--moses-root", default=None)
    p.add_argument("--moses-steps", type=int, default=20)
    p.add_argument("--moses-batch", type=int, nargs="*", default=None,
                   help="batch sizes to time on MOSES (default: the preset's)")
    p.add_argument("--moses-checkpointing", action="store_true", help="time MOSES with gradient checkpointing")
    p.add_argument("--moses-amp", action="store_true", help="time MOSES with bf16 autocast (train.amp)")
    p.add_argument("--throughput-preset", default="pard-moses",
                   help="time this preset instead of pard-moses (its dataset under --moses-root)")
    p.add_argument("--root", default=None)
    p.add_argument("--out", default="benchmarks/results/blockar")
    p.add_argument("--append", action="store_true", help="keep rows of other presets already in <out>/blockar.json")
    p.add_argument("--reuse", action="store_true", help="evaluate a checkpoint this script already trained")
    p.add_argument("--no-block-degree", action="store_true", help="train PARD without its block degree")
    p.add_argument("--checkpointing", action="store_true",
                   help="train with model.gradient_checkpointing (less memory, about a third more compute)")
    p.add_argument("--sample-batch", type=int, default=None, help="graphs per sampling batch (default: all at once)")
    p.add_argument("--compile", action="store_true",
                   help="train through torch.compile (train.compile; the compilation counts against --minutes)")
    p.add_argument("--amp", action="store_true", help="train with train.amp (bf16 autocast, CPU or CUDA)")
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    root = Path(args.root) if args.root else Path(tempfile.mkdtemp(prefix="pard-bench-"))
    link_raw(root, {r.split("-", 1)[1] for r in args.runs})
    dargs = argparse.Namespace(minutes=args.minutes, qm9_samples=[args.qm9_samples], qm9_steps=[args.steps],
                               graph_steps=[args.steps], cpu_model=args.cpu_model, batch=args.batch,
                               bootstrap=args.bootstrap, out=str(out), reuse=args.reuse, compile=args.compile,
                               checkpointing=args.checkpointing, sample_batch=args.sample_batch, amp=args.amp,
                               process_overrides={"block_degree": False} if args.no_block_degree else None)
    old = out / "blockar.json"
    res = {"rows": discrete.previous_rows(old, args.runs) if args.append else []}
    name = "moses" if args.throughput_preset == "pard-moses" else args.throughput_preset.split("-", 1)[1]
    key = f"{name}_training" + ("_checkpointing" if args.moses_checkpointing else "") + \
        ("_amp" if args.moses_amp else "")
    if args.append and old.is_file():  # MOSES figures of earlier calls that this call does not measure again
        res.update({k: v for k, v in json.loads(old.read_text()).items()
                    if k.endswith(("_training", "_checkpointing", "_amp")) and not (args.moses_root and k == key)})
    for preset in args.runs:
        print(f"== {preset}", flush=True)
        res["rows"].append(discrete.run_one(preset, dargs, root))
        discrete.save_rows(old, res["rows"], **{k: v for k, v in res.items() if k != "rows"})
    if args.moses_root:
        print(f"== {args.throughput_preset} training throughput", flush=True)
        res[key] = moses_throughput(Path(args.moses_root), args.moses_steps, args.cpu_model, args.moses_batch,
                                    args.moses_checkpointing, args.throughput_preset, args.moses_amp)
        res[key]["command"] = "python " + " ".join(sys.argv)
        print(json.dumps(res[key]), flush=True)
    md = discrete.markdown(res["rows"], PAPER) if res["rows"] else ""
    if args.families:
        md += "\n" + families_table([*args.families, out / "blockar.json"])
    discrete.save_rows(old, res["rows"], **{k: v for k, v in res.items() if k != "rows"})
    (out / "blockar.md").write_text(md)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
