"""Training with bf16 autocast (``train.amp: true``) against float32: steps/s on this machine, and the loss.

    python benchmarks/amp_speed.py [--presets pard-qm9 pard-planar digress-qm9 gdss-qm9] [--steps 10]
                                   [--repeats 2] [--set KEY=VALUE ...] [--root DIR] [--raw-from DIR] [--out DIR]

The two settings compared are ``A`` (the preset as built) and ``B`` (the same with ``train.amp: true``, i.e. the
denoiser's forward pass under bf16 autocast, the trainer's :class:`graphdiff.train.amp.AutocastForward`). For each
preset, in one process and from the same initial weights on the same batches: ``--steps`` timed training steps
under A, then under B, alternately ``--repeats`` times, so drifts of the machine's speed fall on both. The first two
steps of each run are untimed warm-up. The ratio is B / A graphs per second, from the summed step times of all
repeats; ``final loss`` is the last step's loss (same batches and noise). Each preset is built with the small CPU
network and batch of ``graphdiff.bench.suites`` (GDSS keeps its network), then ``--set`` on both sides.

The committed figures (``benchmarks/results/history/amp/``) are reproduced by
``python benchmarks/amp_speed.py --steps 8`` (then: ``amp_speed.py --presets ... --steps 8 --repeats 2
--cpu-model``).
"""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path

import _common

A = {}
B = {"train": {"amp": True}}
NAME = Path(__file__).stem


def run_preset(preset: str, args, root: Path) -> dict:
    import torch

    from graphdiff.bench.timing import time_train_steps
    from graphdiff.train.amp import cpu_has_bf16

    pipe, ds, bs, row = _common.timing_pipeline(preset, args, root)
    row["cpu_has_bf16"] = cpu_has_bf16()
    start = copy.deepcopy(pipe.denoiser.state_dict())
    runs = {"float32": [], "bf16": []}
    for rep in range(args.repeats):
        for name, variant in (("float32", A), ("bf16", B)):
            pipe.denoiser.load_state_dict(start)
            torch.manual_seed(0)
            r = time_train_steps(pipe, ds, bs, args.steps, module=_common.loss_module(pipe, variant), warmup=2)
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
    p = _common.parser(__doc__, NAME, presets=["pard-qm9", "pard-planar", "digress-qm9", "gdss-qm9"])
    p.add_argument("--steps", type=int, default=10, help="timed training steps per run")
    p.add_argument("--repeats", type=int, default=2, help="A/B alternations")
    args = p.parse_args(argv)
    started = _common.machine()
    root = _common.data_root(args, {x.split("-", 1)[1] for x in args.presets}, NAME)
    rows = _common.each(args.presets, lambda preset: run_preset(preset, args, root))
    _common.write_results(args, NAME, {"A": A, "B": B, "rows": rows}, markdown(rows), started=started)
    return 0


if __name__ == "__main__":
    sys.exit(_common.run(main))
