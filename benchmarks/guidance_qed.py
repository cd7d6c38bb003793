"""QED maximisation with the bundled QM9 model: pretrained, best-of-N, SVDD-PM and noise search, matched budgets.

    python benchmarks/guidance_qed.py [--model qm9-defog] [--samples 512] [--steps 50] [--candidates 10]
                                      [--alpha 0] [--paths 2] [--out DIR]

Each method draws ``--samples`` molecules at ``--steps`` steps (seed 0): the pretrained sampler; best-of-N with
N = ``--candidates`` (N candidates per molecule, the best QED kept); SVDD-PM with M = ``--candidates`` candidates
per step (:mod:`graphdiff.guidance.svdd`); noise search with K = ``--paths`` paths and ``--candidates / K``
children per path and step (:mod:`graphdiff.guidance.noise_search`; the same reward calls as SVDD).

Scores: strict validity, uniqueness, novelty (against the model's packed training set), median and top-10% QED
over all samples (an invalid molecule scores 0, the reward's invalid value), the share of valid one-fragment
molecules (``connected``; QED does not penalise extra fragments, and a guide can exploit that), internal diversity
(1 - mean pairwise Tanimoto of Morgan fingerprints, radius 2, 2048 bits, over valid samples), and the cost per
molecule (network calls counted on the denoiser, reward calls), with the wall time. Writes
``<out>/guidance_qed.{json,md}`` and ``<out>/top_<method>.png`` (the 12 highest-QED molecules of each method).
"""

from __future__ import annotations

import time
from pathlib import Path

import _common

NAME = Path(__file__).stem


def internal_diversity(valid) -> float | None:
    """1 - mean pairwise Tanimoto (Morgan radius 2, 2048 bits) of sanitized molecules."""
    from rdkit import DataStructs
    from rdkit.Chem import rdFingerprintGenerator

    gen = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=2048)
    fps = [gen.GetFingerprint(m) for m in valid]
    if len(fps) < 2:
        return None
    sims = [s for i, fp in enumerate(fps) for s in DataStructs.BulkTanimotoSimilarity(fp, fps[i + 1:])]
    return 1.0 - sum(sims) / len(sims)


def main(argv=None) -> int:
    p = _common.parser(__doc__, NAME, root=False, raw_from=False, overrides=False)
    p.add_argument("--model", default="qm9-defog")
    p.add_argument("--samples", type=int, default=512)
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--candidates", type=int, default=10)
    p.add_argument("--alpha", type=float, default=0.0)
    p.add_argument("--paths", type=int, default=2, help="noise search: paths K (children per path: candidates / K)")
    args = p.parse_args(argv)

    import numpy as np
    from rdkit import Chem

    from graphdiff.convert.validity import _sanitized
    from graphdiff.guidance import get_reward
    from graphdiff.guidance.search import CallCounter, best_of_n
    from graphdiff.guidance.noise_search import noise_search
    from graphdiff.guidance.svdd import svdd
    from graphdiff.hub import model_index
    from graphdiff.metrics.packed_reference import load_packed_reference, packed_metrics
    from graphdiff.pipeline import GraphDiffusionPipeline
    from graphdiff.viz import draw_molecules

    out = _common.out_dir(args, NAME)
    out.mkdir(parents=True, exist_ok=True)
    started = _common.machine()
    pipe = GraphDiffusionPipeline.from_pretrained(args.model)
    packed = load_packed_reference(model_index()[args.model].reference)
    qed = get_reward("qed")
    n, k, steps = args.samples, args.candidates, args.steps

    def pretrained():
        with CallCounter(pipe.denoiser) as c:
            mols = pipe.sample(n, steps=steps, seed=0, output="rdkit", progress=False)
        return mols, qed(mols), {"network_calls_per_sample": c.graph_calls / n, "reward_calls_per_sample": 1.0}

    def bon():
        g = best_of_n(pipe, n, qed, N=k, steps=steps, seed=0)
        return g.samples, g.rewards, g.cost

    def ns():
        g = noise_search(pipe, n, qed, K=args.paths, M=k // args.paths, steps=steps, seed=0)
        return g.samples, g.rewards, g.cost

    def sv():
        g = svdd(pipe, n, qed, M=k, alpha=args.alpha, steps=steps, seed=0)
        return g.samples, g.rewards, g.cost

    rows = []
    methods = (("pretrained", pretrained), (f"best-of-{k}", bon), (f"SVDD-PM (M={k}, alpha={args.alpha:g})", sv),
               (f"noise-search (K={args.paths}, M={k // args.paths})", ns))
    for label, fn in methods:
        t = time.perf_counter()
        mols, values, cost = fn()
        sec = time.perf_counter() - t
        sanitized = [_sanitized(m) for m in mols]
        smiles = [None if m is None else Chem.MolToSmiles(m) for m in sanitized]
        pm = packed_metrics(smiles, packed, metrics=("validity", "uniqueness", "novelty"))
        values = np.asarray(values, dtype=float)
        top = np.sort(values)[::-1][: max(1, len(values) // 10)]
        row = {"method": label, "samples": n, "steps": steps, "validity": pm["validity"],
               "uniqueness": pm["uniqueness"], "novelty": pm["novelty"], "qed_median": float(np.median(values)),
               "qed_top10_mean": float(top.mean()),
               "intdiv": internal_diversity([m for m in sanitized if m is not None]),
               "connected": sum(1 for x in smiles if x and "." not in x) / n,
               "network_calls_per_sample": cost["network_calls_per_sample"],
               "reward_calls_per_sample": cost["reward_calls_per_sample"], "seconds": round(sec, 1)}
        rows.append(row)
        best = np.argsort(-values)[:12]
        slug = label.split(" ")[0].lower().replace("-", "_")
        draw_molecules([mols[i] for i in best], out / f"top_{slug}.png",
                       legends=[f"QED {values[i]:.3f}" for i in best])
        print(row, flush=True)

    cols = ["method", "validity", "connected", "uniqueness", "novelty", "qed_median", "qed_top10_mean", "intdiv",
            "network_calls_per_sample", "reward_calls_per_sample", "seconds"]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        lines.append("| " + " | ".join(f"{r[c]:.4g}" if isinstance(r[c], float) else str(r[c]) for c in cols) + " |")
    lines += ["", f"{args.model}, {n} molecules per method at {steps} steps, seed 0; QED of an invalid molecule = 0; "
              "novelty against the model's packed training set."]
    _common.write_results(args, NAME, {"rows": rows}, "\n".join(lines), started=started)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
