"""Sampling a bundled model through ``torch.compile`` of its denoiser against eager PyTorch, on this machine's CPU
(issue 20's CPU goal: sampling throughput by fusion, samples unchanged).

    python benchmarks/sampling_compile.py [--model qm9-defog] [--samples 250] [--steps 50] [--threads 1]
                                          [--processes K]

In one process, from the same weights and seed: an eager run, then ``pipe.compile()`` (``torch.compile(denoiser,
dynamic=True)``; its warm-up, two steps on the timed run's batch shapes, timed apart: that is the compilation; a
warm-up on other shapes leaves a recompilation inside the timed run), the compiled run, and a second eager run (the
machine's drift between the two eager runs bounds what the ratio means). The ratio is compiled graphs/s over the
mean of the two eager runs; the outputs are compared sample by sample (canonical SMILES for molecules).

``--processes K`` (K > 1) adds two rows: K worker processes of one thread each (what ``graphdiff sample --shard
i/K`` runs), each sampling its contiguous shard of the same samples, eager and then compiled; each worker warms up
(and compiles) first, then all start each timed run together, and a row's time is the slowest worker's. Their
samples, concatenated in shard order, are compared with the single-process eager run's. A last row times what a
user runs for that, ``pipe.sample(n, workers=K)`` (``graphdiff sample --workers K``), eager, from the call to the
merged samples: worker start-up (a fresh interpreter each) and model loading included.
"""

from __future__ import annotations

import sys
import time

import _common

NAME = "sampling_compile"


def _prepare(index, count, payload):
    """One worker of a sharded row: load, compile if asked, warm up on its shard; return the timed sampling call."""
    from graphdiff import GraphDiffusionPipeline

    model, samples, steps, mode = payload
    pipe = GraphDiffusionPipeline.from_pretrained(model)
    out = "smiles" if pipe.schema.kind == "molecule" else "networkx"
    if mode == "compiled":
        pipe.compile()
    shard = (index, count)
    pipe.sample(samples, steps=2, seed=0, output="state", progress=False, shard=shard)  # warm-up / compilation
    return lambda: pipe.sample(samples, steps=steps, seed=0, output=out, progress=False, shard=shard)


def _sharded(args, reference, smiles: bool) -> list[dict]:
    """Rows for K one-thread worker processes, eager and compiled."""
    rows = []
    for mode in ("eager", "compiled"):
        parts, seconds = _common.in_processes(_prepare, args.processes, (args.model, args.samples, args.steps, mode))
        merged = [s for part in parts for s in part]
        same = sum(a == b for a, b in zip(reference, merged)) if smiles else None
        rows.append({"run": f"{args.processes} processes x 1 thread, {mode}", "seconds": round(seconds, 2),
                     "graphs_per_s": round(args.samples / seconds, 1), "identical_samples": same})
    return rows


def main() -> None:
    p = _common.parser(__doc__, NAME, root=False, raw_from=False, overrides=False)
    p.add_argument("--model", default="qm9-defog")
    p.add_argument("--samples", type=int, default=250)
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--processes", type=int, default=1,
                   help="also time this many one-thread worker processes, each sampling a shard (eager, compiled)")
    args = p.parse_args()

    import torch

    from graphdiff import GraphDiffusionPipeline

    torch.set_num_threads(args.threads)
    started = _common.machine()  # after the thread count is set: the record names the threads the runs used
    pipe = GraphDiffusionPipeline.from_pretrained(args.model)
    out = "smiles" if pipe.schema.kind == "molecule" else "networkx"

    def run():
        t = time.perf_counter()
        got = pipe.sample(args.samples, steps=args.steps, seed=0, output=out, progress=False)
        return got, time.perf_counter() - t

    def warm():  # the timed run's batch shapes (same sizes, same seed), two steps
        pipe.sample(args.samples, steps=2, seed=0, output="state", progress=False)

    warm()  # lazy initialisation
    eager, t_eager = run()
    pipe.compile()
    t = time.perf_counter()
    warm()
    warmup = time.perf_counter() - t
    compiled, t_comp = run()
    pipe._compiled = None  # back to the plain module
    _, t_eager2 = run()
    same = sum(a == b for a, b in zip(eager, compiled)) if out == "smiles" else None
    mean_eager = (t_eager + t_eager2) / 2
    threads = f"{args.threads} thread" + ("s" if args.threads > 1 else "")
    rows = [{"run": f"1 process x {threads}, eager (two runs)", "seconds": round(mean_eager, 2),
             "eager_s": round(t_eager, 2), "eager_again_s": round(t_eager2, 2),
             "graphs_per_s": round(args.samples / mean_eager, 1), "identical_samples": None},
            {"run": f"1 process x {threads}, compiled", "seconds": round(t_comp, 2),
             "compile_warmup_s": round(warmup, 1), "graphs_per_s": round(args.samples / t_comp, 1),
             "identical_samples": same}]
    if args.processes > 1:
        t = time.perf_counter()  # the user's command: process start, model loading and sampling, all timed
        got = pipe.sample(args.samples, steps=args.steps, seed=0, output=out, progress=False, workers=args.processes)
        seconds = time.perf_counter() - t
        del pipe
        rows += _sharded(args, eager, out == "smiles")
        rows.append({"run": f"pipe.sample(workers={args.processes}), eager, start-up included",
                     "seconds": round(seconds, 2), "graphs_per_s": round(args.samples / seconds, 1),
                     "identical_samples": sum(a == b for a, b in zip(eager, got)) if out == "smiles" else None})
    for row in rows:
        row["ratio"] = round(mean_eager / row["seconds"], 2)
        print(row, flush=True)
    md = (f"{args.model}, {args.samples} samples x {args.steps} steps; ratio: graphs/s over the mean of the two "
          f"eager one-process runs ({rows[0]['eager_s']} / {rows[0]['eager_again_s']} s); compilation (warm-up) "
          f"{rows[1]['compile_warmup_s']} s, not in the timed runs\n\n"
          "| run | seconds | graphs/s | ratio | identical samples |\n|---|---:|---:|---:|---:|\n")
    md += "".join(f"| {r['run']} | {r['seconds']} | {r['graphs_per_s']} | {r['ratio']} | "
                  f"{'-' if r['identical_samples'] is None else r['identical_samples']} / {args.samples} |\n"
                  for r in rows)
    _common.write_results(args, NAME, {"rows": rows}, md, started=started)


if __name__ == "__main__":
    sys.exit(_common.run(main))
