"""Training through ``torch.compile`` (``train.compile: true``) against eager PyTorch: steps/s and compile cost.

    python benchmarks/compile_speed.py [--presets pard-qm9 pard-planar defog-qm9 gdss-qm9] [--steps 10]
                                       [--fresh-cache] [--set KEY=VALUE ...] [--root DIR] [--raw-from DIR]
                                       [--out DIR]

The two settings compared are ``A`` (the preset as built: eager) and ``B`` (``train.compile: true``: the loss
through ``torch.compile(model, dynamic=True)``, what the trainer does). For each preset, in one process: ``--steps``
timed training steps under A, then the same steps under B, both from the same initial weights on the same batches
(a seeded random order). The first two steps of each are untimed warm-up; for B they hold the compilation, reported
as ``warm-up s``. ``--fresh-cache`` compiles into an empty cache directory (otherwise inductor's on-disk cache of
an earlier run may shorten the warm-up). The ratio is B / A training graphs per second. Each preset is built with
the small CPU network and batch of ``graphdiff.bench.suites`` (GDSS keeps its network), then ``--set``.

The committed figures (``benchmarks/results/history/compile/``) are reproduced by
``python benchmarks/compile_speed.py --presets pard-planar pard-qm9 defog-planar gdss-qm9 --fresh-cache``
(then: ``compile_speed.py ... --steps 10 --cpu-model --fresh-cache``).
"""

from __future__ import annotations

import copy
import json
import os
import sys
import tempfile
from pathlib import Path

import _common

A = {}
B = {"train": {"compile": True}}
NAME = Path(__file__).stem


def run_preset(preset: str, args, root: Path) -> dict:
    import torch

    from graphdiff.bench.timing import time_train_steps

    pipe, ds, bs, row = _common.timing_pipeline(preset, args, root)
    start = copy.deepcopy(pipe.denoiser.state_dict())
    for name, variant in (("eager", A), ("compiled", B)):
        pipe.denoiser.load_state_dict(start)
        torch.manual_seed(0)
        row[name] = time_train_steps(pipe, ds, bs, args.steps, module=_common.loss_module(pipe, variant), warmup=2)
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
    p = _common.parser(__doc__, NAME, presets=["pard-qm9", "pard-planar", "defog-qm9", "gdss-qm9"])
    p.add_argument("--steps", type=int, default=10, help="timed training steps per setting")
    p.add_argument("--fresh-cache", action="store_true", help="compile into an empty inductor cache")
    args = p.parse_args(argv)
    if args.fresh_cache:
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = tempfile.mkdtemp(prefix="inductor-")
    started = _common.machine()
    root = _common.data_root(args, {x.split("-", 1)[1] for x in args.presets}, NAME)
    rows = _common.each(args.presets, lambda preset: run_preset(preset, args, root))
    _common.write_results(args, NAME, {"A": A, "B": B, "fresh_cache": args.fresh_cache, "rows": rows},
                          markdown(rows), started=started)
    return 0


if __name__ == "__main__":
    sys.exit(_common.run(main))
