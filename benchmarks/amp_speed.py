"""Training with bf16 autocast (``train.amp: true``) against float32: steps/s on this machine, and the loss.

    python benchmarks/amp_speed.py [--presets pard-qm9 pard-planar digress-qm9 gdss-qm9] [--steps 10] [--repeats 2]
                                   [--cpu-model] [--batch B] [--root DIR] [--out benchmarks/results/amp]

For each preset, in one process and from the same initial weights on the same batches: ``--steps`` timed training
steps in float32, then the same steps with the denoiser's forward pass under bf16 autocast (the trainer's
:class:`graphdiff.train.amp.AutocastForward`), alternately ``--repeats`` times, so drifts of the machine's speed
fall on both. The first two steps of each run are untimed warm-up. The ratio is bf16 / float32 graphs per second,
from the summed step times of all repeats; ``final loss`` is the last step's loss (same batches and noise).
"""

from __future__ import annotations

import argparse
import copy
import json
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
    from graphdiff.train.amp import AutocastForward, cpu_has_bf16

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
    row = {"preset": preset, "batch_size": bs, "train_graphs": len(ds), "cpu_has_bf16": cpu_has_bf16(),
           "model": "cpu model " + json.dumps(over["model"]) if over.get("model") else "preset"}
    start = copy.deepcopy(pipe.denoiser.state_dict())
    runs = {"float32": [], "bf16": []}
    for rep in range(args.repeats):
        for name in runs:
            pipe.denoiser.load_state_dict(start)
            torch.manual_seed(0)
            module = AutocastForward(pipe.denoiser, "cpu") if name == "bf16" else None
            r = time_train_steps(pipe, ds, bs, args.steps, module=module, warmup=2)
            runs[name].append(r)
            print(json.dumps({preset: {name: r, "repeat": rep}}), flush=True)
    for name, rs in runs.items():
        seconds = sum(r["timed_steps"] / r["steps_per_s"] for r in rs)
        steps = sum(r["timed_steps"] for r in rs)
        row[name] = {"steps_per_s": round(steps / seconds, 3), "graphs_per_s": round(steps * bs / seconds, 1),
                     "per_repeat_steps_per_s": [r["steps_per_s"] for r in rs], "final_loss": rs[-1]["final_loss"],
                     "mean_padded_nodes": rs[-1]["mean_padded_nodes"], "timed_steps": steps}
    row["ratio_graphs_per_s"] = round(row["bf16"]["steps_per_s"] / row["float32"]["steps_per_s"], 2)
    return row


def markdown(rows) -> str:
    lines = ["| preset | batch | mean padded nodes | graphs/s float32 | graphs/s bf16 autocast | ratio | "
             "steps/s per repeat float32 / bf16 | final loss float32 / bf16 | timed steps |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        a, b = r["float32"], r["bf16"]
        lines.append(f"| {r['preset']} | {r['batch_size']} | {a['mean_padded_nodes']} | {a['graphs_per_s']} | "
                     f"{b['graphs_per_s']} | **{r['ratio_graphs_per_s']}x** | {a['per_repeat_steps_per_s']} / "
                     f"{b['per_repeat_steps_per_s']} | {a['final_loss']} / {b['final_loss']} | {a['timed_steps']} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--presets", nargs="*", default=["pard-qm9", "pard-planar", "digress-qm9", "gdss-qm9"])
    p.add_argument("--batch", type=int, default=None,
                   help="default: discrete.CPU_BATCH per dataset with --cpu-model, else the preset's")
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--cpu-model", action="store_true")
    p.add_argument("--root", default=None)
    p.add_argument("--out", default="benchmarks/results/amp")
    args = p.parse_args(argv)
    root = Path(args.root) if args.root else Path(tempfile.mkdtemp(prefix="amp-bench-"))
    link_raw(root, {x.split("-", 1)[1] for x in args.presets})
    run_and_write(args.presets, run_preset, args, root, args.out, "amp", markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
