"""DeFoG's sampling-time knobs on a bundled molecule model, no retraining: the time distortion, the stochasticity
``eta`` and the target guidance ``omega`` (Qin et al. 2025, Sec. 4) at a fixed number of steps, scored by the
model's packed reference (strict validity, uniqueness, novelty, FCD against the test split).

    python benchmarks/defog_knobs.py [--model qm9-defog] [--samples 1000] [--steps 50] [--seed 0]
                                     [--omega 0 0.05 0.1 0.2] [--eta 0 10 50] [--distortion polydec identity]
                                     [--sample-compiled]

Every combination samples the same seed; the rows are sorted as run. ``--sample-compiled`` samples through
``pipe.compile()`` (the same molecules, faster past the first combination, whose time includes the compilation).
A combination worth keeping is confirmed on more samples with ``graphdiff models pack ... --set sample.omega=...
--set sample.eta=...`` (the model card).
"""

from __future__ import annotations

import sys
import itertools
import time

import _common

NAME = "defog_knobs"


def main() -> None:
    p = _common.parser(__doc__, NAME, root=False, raw_from=False, overrides=False)
    p.add_argument("--model", default="qm9-defog", help="a bundled model, or a model or run folder of a dataset "
                   "one was trained on")
    p.add_argument("--samples", type=int, default=1000)
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--omega", type=float, nargs="+", default=[0.0, 0.05, 0.1, 0.2])
    p.add_argument("--eta", type=float, nargs="+", default=[0.0, 10.0, 50.0])
    p.add_argument("--distortion", nargs="+", default=["polydec"])
    p.add_argument("--sample-compiled", action="store_true", help="sample through pipe.compile()")
    args = p.parse_args()
    started = _common.machine()

    from graphdiff import GraphDiffusionPipeline
    from graphdiff.bench.guidance import packed_reference_for
    from graphdiff.metrics.packed_reference import packed_metrics

    pipe = GraphDiffusionPipeline.from_pretrained(args.model)
    packed = packed_reference_for(pipe, args.model, "defog_knobs")  # a run folder: its dataset's bundled reference
    if args.sample_compiled:
        pipe.compile()
    rows = []
    for dist, eta, omega in itertools.product(args.distortion, args.eta, args.omega):
        t = time.perf_counter()
        smiles = pipe.sample(args.samples, steps=args.steps, seed=args.seed, output="smiles", progress=False,
                             time_distortion=dist, eta=eta, omega=omega)
        sec = time.perf_counter() - t
        m = packed_metrics(smiles, packed)
        rows.append({"time_distortion": dist, "eta": eta, "omega": omega, "seconds": round(sec, 1), **m})
        print(rows[-1], flush=True)
    lines = [f"{args.model}, {args.samples} samples at {args.steps} steps, seed {args.seed}", "",
             "| time distortion | eta | omega | validity | uniqueness | novelty | FCD | sample s |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    lines += [f"| {r['time_distortion']} | {r['eta']:g} | {r['omega']:g} | {100 * r['validity']:.1f}% | "
              f"{100 * r['uniqueness']:.1f}% | {100 * r['novelty']:.1f}% | {r['fcd']:.3f} | {r['seconds']} |"
              for r in rows]
    _common.write_results(args, NAME, {"settings": vars(args), "rows": rows}, "\n".join(lines), started=started)


if __name__ == "__main__":
    sys.exit(_common.run(main))
