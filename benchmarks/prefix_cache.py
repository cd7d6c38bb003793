"""PARD sampling with and without the prefix cache (``graphdiff.nn.ppgn_cache``): time, network calls, same graphs.

    python benchmarks/prefix_cache.py --checkpoints DIR [DIR ...] [--samples 16] [--steps S] [--seed 0]
                                      [--out benchmarks/results/prefix_cache]

Each ``DIR`` is a trained PARD pipeline (``GraphDiffusionPipeline.from_pretrained``), e.g. the checkpoints that
``benchmarks/blockar.py`` leaves in ``<out>/<preset>/checkpoint``. In one process per checkpoint: ``--samples``
graphs with ``prefix_cache=False`` (every network call runs the whole network), then the same samples (same seed,
so the same per-sample streams) with ``prefix_cache=True``. Reported: both wall times and their ratio, network
calls per graph (the same in both: the cache changes what a call computes, not how many there are), and how many
graphs come out identical (node types and edges). ``--steps`` defaults to the checkpoint's ``sample.steps``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import run_and_write  # noqa: E402


def run_checkpoint(path: str, args, root) -> dict:
    import torch

    from graphdiff.pipeline import GraphDiffusionPipeline

    pipe = GraphDiffusionPipeline.from_pretrained(path)
    steps = args.steps or int(pipe.config.get("sample", {}).get("steps", 20))
    row = {"checkpoint": path, "preset": pipe.config.get("preset", {}).get("description", ""),
           "samples": args.samples, "steps": steps, "seed": args.seed,
           "model": {k: pipe.config.get("model", {}).get(k) for k in ("n_layers", "hidden", "n_heads")}}
    outs = {}
    for use in (False, True):
        t = time.perf_counter()
        out = pipe.sample(args.samples, steps=steps, seed=args.seed, progress=False, prefix_cache=use)
        secs = time.perf_counter() - t
        calls = pipe.process.last_stats["network_calls"].float()
        outs[use] = out
        key = "cache" if use else "no_cache"
        row[key] = {"seconds": round(secs, 1), "calls_per_graph": round(float(calls.mean()), 1)}
        print(path, key, row[key], flush=True)
    a, b = outs[False], outs[True]
    same = [torch.equal(g.x.argmax(-1), h.x.argmax(-1)) and torch.equal(g.e.argmax(-1), h.e.argmax(-1))
            for g, h in (([a[i], b[i]]) for i in range(args.samples))]
    row["identical_graphs"] = int(sum(same))
    row["mean_nodes"] = round(float(a.n_nodes.float().mean()), 1)
    row["ratio"] = round(row["no_cache"]["seconds"] / row["cache"]["seconds"], 2)
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
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--checkpoints", nargs="+", required=True)
    p.add_argument("--samples", type=int, default=16)
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="benchmarks/results/prefix_cache")
    args = p.parse_args(argv)
    run_and_write(args.checkpoints, run_checkpoint, args, None, args.out, "prefix_cache", markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
