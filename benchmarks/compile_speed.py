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

import json
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _speed import preset_for_timing, speed_main, speed_parser  # noqa: E402
from _timing import time_train_steps  # noqa: E402


def run_preset(preset: str, args, root: Path) -> dict:
    import copy

    import torch

    from graphdiff.train.compile import compile_module

    pipe, ds, bs, row = preset_for_timing(preset, args, root)
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
    p = speed_parser(__doc__, ["pard-qm9", "pard-planar", "defog-qm9", "gdss-qm9"], "benchmarks/results/compile")
    p.add_argument("--fresh-cache", action="store_true", help="compile into an empty inductor cache")

    def fresh_cache(args):
        if args.fresh_cache:
            os.environ["TORCHINDUCTOR_CACHE_DIR"] = tempfile.mkdtemp(prefix="inductor-")

    return speed_main(p, argv, run_preset, markdown, "compile", setup=fresh_cache,
                      fresh_cache=lambda args: args.fresh_cache)


if __name__ == "__main__":
    sys.exit(main())
