"""Training throughput and memory per batch size: molecules (graphs) per second and the peak resident memory.

    python benchmarks/train_memory.py [--presets pard-moses] [--batch-sizes 32 128] [--steps 20]
                                      [--set KEY=VALUE ...] [--root DIR] [--raw-from DIR] [--out DIR]

For each preset: build the pipeline (the small CPU network and batch of ``graphdiff.bench.suites``, then ``--set``)
on the dataset's prepared store under ``--root`` (prepared first when it is not there: pass the root of a prepared
store, ``graphdiff datasets prepare NAME --root DIR``, to skip it), prepare PARD's order as the trainer does, and
record the setup time and the resident memory after it. Then time ``--steps`` training steps after two untimed
ones (``graphdiff.bench.timing.time_train_steps``, each step assembling its batch from the memory-mapped store) at
each batch size in ascending order, and record the process's peak RSS after each (``getrusage``: the peak only
grows, so ascending batch sizes make each peak that batch size's own). ``--batch-sizes`` defaults to the
configuration's batch size. The loss runs as the trainer runs it: ``--set train.amp=true`` under bf16 autocast,
``--set train.compile=true`` compiled; ``--set model.gradient_checkpointing=true`` trades compute for memory.

The committed MOSES figures (``moses_training*`` in ``benchmarks/results/history/blockar/blockar.json``, made by
``blockar.py --moses-root ... --moses-steps 3 --moses-batch 32 128 --cpu-model [--moses-amp |
--moses-checkpointing]``) are reproduced by ``python benchmarks/train_memory.py --batch-sizes 32 128 --steps 3
--root DIR`` with nothing, ``--set train.amp=true`` or ``--set model.gradient_checkpointing=true``; the SBM one
(``sbm_training_checkpointing``) by ``--presets pard-sbm --batch-sizes 8 --steps 1 --set
model.gradient_checkpointing=true``.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path

import _common

NAME = Path(__file__).stem
LR = 2e-4  # the learning rate of the committed figures (the loss after a few steps depends on it; the speed not)


def rss() -> tuple[float, float]:
    """(current RSS, lifetime peak RSS) of this process in MB."""
    from graphdiff.bench.timing import rss_mb

    return round(rss_mb(), 1), round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def run_preset(preset: str, args, root: Path) -> dict:
    from graphdiff.bench.timing import time_train_steps

    t0 = time.perf_counter()
    pipe, ds, bs, row = _common.timing_pipeline(preset, args, root)
    setup = time.perf_counter() - t0
    rss_setup, peak_setup = rss()
    module = _common.loss_module(pipe)
    per_batch = []
    for b in sorted(args.batch_sizes or [bs]):
        timing = time_train_steps(pipe, ds, b, args.steps, lr=LR, module=module)
        per_batch.append({**timing, "molecules_per_s": timing["graphs_per_s"], "peak_rss_mb": rss()[1]})
        print(json.dumps(per_batch[-1]), flush=True)
    row.update(amp=pipe.config.train.amp, compile=pipe.config.train.compile,
               gradient_checkpointing=bool(pipe.config.model.get("gradient_checkpointing")),
               per_batch_size=per_batch, setup_seconds_incl_block_statistics=round(setup, 1),
               rss_after_setup_mb=rss_setup, peak_rss_during_setup_mb=peak_setup)
    return row


def markdown(rows) -> str:
    lines = ["| preset | settings | batch | graphs/s | peak RSS MB | timed steps | setup s | RSS after setup MB |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        settings = ", ".join(k for k in ("amp", "compile", "gradient_checkpointing") if r[k]) or "float32"
        for b in r["per_batch_size"]:
            lines.append(f"| {r['preset']} | {settings} | {b['batch_size']} | {b['graphs_per_s']} | "
                         f"{b['peak_rss_mb']} | {b['timed_steps']} | {r['setup_seconds_incl_block_statistics']} | "
                         f"{r['rss_after_setup_mb']} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = _common.parser(__doc__, NAME, presets=["pard-moses"])
    p.add_argument("--batch-sizes", type=int, nargs="+", default=None,
                   help="batch sizes to time, ascending (default: the configuration's)")
    p.add_argument("--steps", type=int, default=20, help="timed training steps per batch size")
    args = p.parse_args(argv)
    started = _common.machine()
    root = _common.data_root(args, {x.split("-", 1)[1] for x in args.presets}, NAME)
    rows = _common.each(args.presets, lambda preset: run_preset(preset, args, root))
    _common.write_results(args, NAME, {"rows": rows}, markdown(rows), started=started)
    return 0


if __name__ == "__main__":
    sys.exit(_common.run(main))
