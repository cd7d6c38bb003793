"""``graphdiff demo``: sample molecules from the bundled QM9 model, score them, draw them; no training, no download.

The bundled model (``graphdiff models info qm9-defog``) samples ``n`` molecules; validity, uniqueness, novelty and
FCD are computed by the pinned evaluator against the QM9 reference packed with the package
(:mod:`graphdiff.metrics.packed_reference`: ChemNet statistics of the test split, hashed canonical training set),
so the figures equal ``graphdiff evaluate --dataset qm9`` on the same samples. The table prints the model card's
figures and the published DeFoG row beside this run's.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from .errors import CheckpointError

MODEL = "qm9-defog"


def run_molecule_demo(out: Path = Path("demo"), *, model: str = MODEL, n: int = 1000, steps: int | None = None,
                      seed: int = 0, progress: bool = True) -> dict:
    """Sample ``n`` molecules from a named model, score them against its packed reference, draw a grid."""
    from rdkit import Chem

    from .hub import model_index
    from .metrics.packed_reference import load_packed_reference, packed_metrics
    from .pipeline import GraphDiffusionPipeline
    from .train.threads import ThreadPolicy
    from .viz import draw_molecules

    t0 = time.perf_counter()
    entry = model_index().get(model)
    if entry is None or entry.reference is None:
        raise CheckpointError(f"{model!r} is not a bundled molecule model with a packed reference; "
                              f"try `graphdiff models list`, or `graphdiff demo --train`")
    pipe = GraphDiffusionPipeline.from_pretrained(model)
    steps = steps or pipe.config.sample.steps
    threads = ThreadPolicy("auto")  # one thread when another process holds a core (see graphdiff.train.threads)
    threads_line = threads.start()
    t = time.perf_counter()
    try:
        smiles = pipe.sample(n, steps=steps, seed=seed, output="smiles", progress=progress)
    finally:
        threads.restore()
    sample_s = time.perf_counter() - t
    t = time.perf_counter()
    res = packed_metrics(smiles, load_packed_reference(entry.reference))
    eval_s = time.perf_counter() - t

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "samples.smi").write_text("".join(f"{s or ''}\n" for s in smiles))
    valid = [s for s in smiles if s]
    mols = [Chem.MolFromSmiles(s) for s in valid[:24]]
    draw_molecules(mols, out / "molecules.png", ncols=6, size=200)
    card = _card_figures(entry.path)
    summary = {"model": model, "n": n, "steps": steps, "seed": seed, "sample_seconds": round(sample_s, 2),
               "molecules_per_second": round(n / sample_s, 1), "threads": threads_line,
               "evaluate_seconds": round(eval_s, 2),
               **{k: res.get(k) for k in ("validity_strict", "uniqueness", "novelty", "valid_unique_novel", "fcd")},
               "reference": res["reference"], "card": card, "total_seconds": round(time.perf_counter() - t0, 1)}
    (out / "results.json").write_text(json.dumps(summary, indent=1))
    _print(summary, pipe, out)
    return summary


def _card_figures(folder: Path) -> dict:
    path = Path(folder) / "metrics.json"
    if not path.is_file():
        return {}
    m = json.loads(path.read_text())
    return {k: m.get(k) for k in ("samples", "steps", "validity_strict", "uniqueness", "novelty", "fcd")}


def _print(s: dict, pipe, out: Path) -> None:
    from .bench.references import reference_rows

    def pct(v):
        return "-" if v is None else f"{100 * v:.1f}"

    def num(v):
        return "-" if v is None else f"{v:.3f}"

    rows = [(f"{s['model']} (this run, {s['n']} samples, {s['steps']} steps)", s["validity_strict"], s["uniqueness"],
             s["novelty"], s["fcd"])]
    c = s["card"]
    if c:
        rows.append((f"{s['model']} (model card, {c['samples']:,} samples, {c['steps']} steps)", c["validity_strict"],
                     c["uniqueness"], c["novelty"], c["fcd"]))
    head = f"{'':50} {'valid %':>8} {'unique %':>9} {'novel %':>8} {'FCD':>7}"
    print("\n" + head)
    for name, v, u, nov, f in rows:
        print(f"{name:50} {pct(v):>8} {pct(u):>9} {pct(nov):>8} {num(f):>7}")
    for r in reference_rows("molecules/qm9"):
        if r.method == "DeFoG (50 steps)":
            m = r.metrics
            print(f"{r.method + ' (' + r.citation + ', GPU)':50} {m.get('validity_strict', '-'):>8} "
                  f"{m.get('uniqueness', '-'):>9} {'-':>8} {m.get('fcd', '-'):>7}")
    print(f"\nvalidity = strict (RDKit sanitisation, no correction); FCD against the QM9 test split "
          f"({s['reference']['n']:,} molecules); novelty against {s['reference']['n_train']:,} training molecules")
    print(f"sampled {s['n']} molecules in {s['sample_seconds']:.1f} s ({s['molecules_per_second']:.0f}/s), "
          f"scored in {s['evaluate_seconds']:.1f} s; {s['total_seconds']:.0f} s in all; {s['threads']}")
    print(f"molecules drawn to {out / 'molecules.png'}; SMILES in {out / 'samples.smi'}; figures in "
          f"{out / 'results.json'}")
