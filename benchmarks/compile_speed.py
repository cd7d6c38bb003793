"""Training through ``torch.compile`` (``train.compile: true``) against eager PyTorch: steps/s and compile cost.

    python benchmarks/compile_speed.py [--presets pard-qm9 pard-planar defog-qm9 gdss-qm9] [--steps 10]
                                       [--cpu-model] [--root DIR] [--out benchmarks/results/compile]

For each preset, in one process: ``--steps`` timed training steps in eager mode, then the same steps through
``torch.compile(model, dynamic=True)`` (what the trainer does with ``train.compile``), both from the same initial
weights on the same batches (a seeded random order, the preset's batch size or ``discrete.CPU_BATCH``). The first
two steps of each are untimed warm-up; for the compiled run they hold the compilation, reported as
``warm-up s``. ``--fresh-cache`` compiles into an empty cache directory (otherwise inductor's on-disk cache of an
earlier run may shorten the warm-up). The ratio is compiled / eager training graphs per second.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import discrete  # noqa: E402
from _offline import link_raw  # noqa: E402
from _timing import run_and_write, time_train_steps  # noqa: E402


def run_preset(preset: str, args, root: Path) -> dict:
    import torch

    from graphdiff.pipeline import GraphDiffusionPipeline
    from graphdiff.train import TrainConfig
    from graphdiff.train.compile import compile_module

    over = {}
    if args.cpu_model:
        name = {"pard": "ppgn_transformer", "gdss": None}.get(preset.split("-")[0], "graph_transformer")
        if name:
            over["model"] = dict(discrete.CPU_MODELS[name])
    pipe = GraphDiffusionPipeline.from_preset(preset, root=root, overrides=over)
    ds = pipe._dataset.split("train")
    if hasattr(pipe.process, "prepare_dataset"):
        pipe.process.prepare_dataset(ds)
    dataset = preset.split("-", 1)[1]
    bs = args.batch or (discrete.CPU_BATCH.get(dataset, 64) if args.cpu_model
                        else TrainConfig.from_dict(pipe.config["preset"]["train"]).batch_size)
    row = {"preset": preset, "batch_size": bs, "train_graphs": len(ds),
           "model": "cpu model " + json.dumps(over["model"]) if over.get("model") else "preset"}
    start = copy.deepcopy(pipe.denoiser.state_dict())
    for name in ("eager", "compiled"):
        pipe.denoiser.load_state_dict(start)
        torch.manual_seed(0)
        module = compile_module(pipe.denoiser) if name == "compiled" else None
        row[name] = time_train_steps(pipe, ds, bs, args.steps, module=module, warmup=2)
        print(json.dumps({preset: {name: row[name]}}), flush=True)
    # same batches and batch size: the ratio of graphs/s is that of steps/s (taken unrounded from the step times)
    row["ratio_graphs_per_s"] = round(row["compiled"]["steps_per_s"] / row["eager"]["steps_per_s"], 2)
    extra = row["compiled"]["warmup_seconds"] - row["eager"]["warmup_seconds"]
    per_step = 1 / row["eager"]["steps_per_s"] - 1 / row["compiled"]["steps_per_s"]
    row["break_even_steps"] = round(extra / per_step) if per_step > 0 else None
    torch._dynamo.reset()
    return row


def markdown(rows) -> str:
    lines = ["| preset | batch | mean padded nodes | graphs/s eager | graphs/s compiled | ratio | warm-up s (2 steps) "
             "eager / compiled | break-even steps | timed steps |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        a, b = r["eager"], r["compiled"]
        lines.append(f"| {r['preset']} | {r['batch_size']} | {a['mean_padded_nodes']} | {a['graphs_per_s']} | "
                     f"{b['graphs_per_s']} | **{r['ratio_graphs_per_s']}x** | {a['warmup_seconds']} / "
                     f"{b['warmup_seconds']} | {r['break_even_steps']} | {a['timed_steps']} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--presets", nargs="*", default=["pard-qm9", "pard-planar", "defog-qm9", "gdss-qm9"])
    p.add_argument("--batch", type=int, default=None,
                   help="default: discrete.CPU_BATCH per dataset with --cpu-model, else the preset's")
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--cpu-model", action="store_true")
    p.add_argument("--fresh-cache", action="store_true", help="compile into an empty inductor cache")
    p.add_argument("--root", default=None)
    p.add_argument("--out", default="benchmarks/results/compile")
    args = p.parse_args(argv)
    if args.fresh_cache:
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = tempfile.mkdtemp(prefix="inductor-")
    root = Path(args.root) if args.root else Path(tempfile.mkdtemp(prefix="compile-bench-"))
    link_raw(root, {x.split("-", 1)[1] for x in args.presets})
    run_and_write(args.presets, run_preset, args, root, args.out, "compile", markdown, fresh_cache=args.fresh_cache)
    return 0


if __name__ == "__main__":
    sys.exit(main())
