"""PARD sampling with and without the prefix cache (``graphdiff.nn.ppgn_cache``): time, network calls, same graphs.

    python benchmarks/prefix_cache.py --checkpoints DIR [DIR ...] [--samples 16] [--steps S] [--seed 0]
                                      [--out DIR]

Each ``DIR`` is a trained PARD pipeline (``GraphDiffusionPipeline.from_pretrained``), e.g. a run folder that
``graphdiff bench run qm9 --only pard-qm9 --out OUT`` leaves in ``OUT/runs/pard-qm9``. In one process per
checkpoint: ``--samples`` graphs with ``prefix_cache=False`` (every network call runs the whole network), then the
same samples (same seed, so the same per-sample streams) with ``prefix_cache=True``. Reported: both wall times and
their ratio, network calls per graph (the same in both: the cache changes what a call computes, not how many there
are), and how many graphs come out identical (node types and edges). ``--steps`` defaults to the checkpoint's
``sample.steps``. The checkpoints are loaded, not built from a preset, so there is no ``--set``.

The committed figures (``benchmarks/results/history/prefix_cache/{planar,qm9}``) were measured on the checkpoints
of ``blockar-planar-eager/pard-planar`` (``--samples 8 --steps 10``) and ``blockar-degree/pard-qm9``
(``--samples 200 --steps 25``); the same command with those checkpoints reproduces them.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import _common

NAME = Path(__file__).stem


def run_checkpoint(path: str, args) -> dict:
    import torch

    from graphdiff.pipeline import GraphDiffusionPipeline

    pipe = GraphDiffusionPipeline.from_pretrained(path)
    steps = args.steps or int(pipe.config.sample.steps or 20)
    row = {"checkpoint": path, "preset": pipe.config.description or "", "samples": args.samples, "steps": steps,
           "seed": args.seed, "model": {k: pipe.config.model.get(k) for k in ("n_layers", "hidden", "n_heads")}}
    outs, seconds = {}, {}
    for use in (False, True):
        t = time.perf_counter()
        out = pipe.sample(args.samples, steps=steps, seed=args.seed, progress=False, prefix_cache=use)
        secs = time.perf_counter() - t
        calls = pipe.process.last_stats["network_calls"].float()
        outs[use], seconds[use] = out, secs
        key = "cache" if use else "no_cache"
        row[key] = {"seconds": round(secs, 1), "calls_per_graph": round(float(calls.mean()), 1)}
        print(path, key, row[key], flush=True)
    a, b = outs[False], outs[True]
    same = [torch.equal(g.x.argmax(-1), h.x.argmax(-1)) and torch.equal(g.e.argmax(-1), h.e.argmax(-1))
            for g, h in ((a[i], b[i]) for i in range(args.samples))]
    row["identical_graphs"] = int(sum(same))
    row["mean_nodes"] = round(float(a.n_nodes.float().mean()), 1)
    row["ratio"] = round(seconds[False] / seconds[True], 2)  # from the unrounded times
    return row


def markdown(rows) -> str:
    lines = ["| checkpoint | samples | steps/block | mean nodes | network calls/graph | s without cache | "
             "s with cache | speed-up | identical graphs |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| `{r['checkpoint']}` | {r['samples']} | {r['steps']} | {r['mean_nodes']} | "
                     f"{r['no_cache']['calls_per_graph']} | {r['no_cache']['seconds']} | {r['cache']['seconds']} | "
                     f"**{r['ratio']}x** | {r['identical_graphs']} of {r['samples']} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = _common.parser(__doc__, NAME, root=False, raw_from=False, overrides=False)
    p.add_argument("--checkpoints", nargs="+", required=True, help="trained PARD run or checkpoint folders")
    p.add_argument("--samples", type=int, default=16)
    p.add_argument("--steps", type=int, default=None, help="diffusion steps per block (default: the checkpoint's)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    started = _common.machine()
    rows = _common.each(args.checkpoints, lambda path: run_checkpoint(path, args))
    _common.write_results(args, NAME, {"rows": rows}, markdown(rows), started=started)
    return 0


if __name__ == "__main__":
    sys.exit(_common.run(main))
