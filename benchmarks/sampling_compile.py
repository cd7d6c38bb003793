"""Sampling a bundled model through ``torch.compile`` of its denoiser against eager PyTorch, on this machine's CPU
(issue 20's CPU goal: sampling throughput by fusion, samples unchanged).

    python benchmarks/sampling_compile.py [--model qm9-defog] [--samples 250] [--steps 50] [--threads 1]
                                          [--no-freeze]

In one process, from the same weights and seed: an eager run, then ``pipe.compile()`` (``torch.compile(denoiser,
dynamic=True)`` with inductor's weight freezing unless ``--no-freeze``; its
warm-up, two steps on the timed run's batch shapes, timed apart: that is the compilation; a warm-up on other shapes
leaves a recompilation inside the timed run), the compiled run, and a second eager run (the
machine's drift between the two eager runs bounds what the ratio means). The ratio is compiled graphs/s over the mean
of the two eager runs; the outputs are compared sample by sample (canonical SMILES for molecules).
"""

from __future__ import annotations

import time

import _common

NAME = "sampling_compile"


def main() -> None:
    p = _common.parser(__doc__, NAME, root=False, raw_from=False, overrides=False)
    p.add_argument("--model", default="qm9-defog")
    p.add_argument("--samples", type=int, default=250)
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--no-freeze", action="store_true", help="compile without inductor's weight freezing")
    args = p.parse_args()
    started = _common.machine()

    import torch

    from graphdiff import GraphDiffusionPipeline

    torch.set_num_threads(args.threads)
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
    pipe.compile(freeze=not args.no_freeze)
    t = time.perf_counter()
    warm()
    warmup = time.perf_counter() - t
    compiled, t_comp = run()
    pipe._compiled = None  # back to the plain module
    _, t_eager2 = run()
    same = sum(a == b for a, b in zip(eager, compiled)) if out == "smiles" else None
    mean_eager = (t_eager + t_eager2) / 2
    row = {"model": args.model, "samples": args.samples, "steps": args.steps, "threads": args.threads,
           "freeze": not args.no_freeze, "eager_s": round(t_eager, 2), "eager_again_s": round(t_eager2, 2),
           "compile_warmup_s": round(warmup, 1),
           "compiled_s": round(t_comp, 2), "ratio": round(mean_eager / t_comp, 2), "identical_samples": same}
    print(row, flush=True)
    md = ("| model | samples x steps | threads | freezing | eager s (two runs) | compile warm-up s | compiled s | "
          "ratio | identical samples |\n|---|---|---:|---|---|---:|---:|---:|---:|\n"
          f"| {args.model} | {args.samples} x {args.steps} | {args.threads} | {'yes' if row['freeze'] else 'no'} | "
          f"{row['eager_s']} / "
          f"{row['eager_again_s']} | {row['compile_warmup_s']} | {row['compiled_s']} | {row['ratio']} | "
          f"{same if same is not None else '-'} / {args.samples} |")
    _common.write_results(args, NAME, {"rows": [row]}, md, started=started)


if __name__ == "__main__":
    main()
