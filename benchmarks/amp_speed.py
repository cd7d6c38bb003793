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

import copy
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _speed import preset_for_timing, speed_main, speed_parser  # noqa: E402
from _timing import time_train_steps  # noqa: E402


def run_preset(preset: str, args, root: Path) -> dict:
    import torch

    from graphdiff.train.amp import AutocastForward, cpu_has_bf16

    pipe, ds, bs, row = preset_for_timing(preset, args, root)
    row["cpu_has_bf16"] = cpu_has_bf16()
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
    p = speed_parser(__doc__, ["pard-qm9", "pard-planar", "digress-qm9", "gdss-qm9"], "benchmarks/results/amp")
    p.add_argument("--repeats", type=int, default=2)
    return speed_main(p, argv, run_preset, markdown, "amp")


if __name__ == "__main__":
    sys.exit(main())
