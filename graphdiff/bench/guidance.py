"""``graphdiff bench run guidance``: steering a bundled or trained molecule model toward QED at matched budgets.

For each entry (a model: the bundled QM9 model by default, ``--model`` for another, e.g. the GDSS authors' ZINC250k
weights imported by ``graphdiff import-checkpoint``; a model folder is scored against the packed reference of the
bundled model of its dataset) every method draws
``--samples`` molecules (default 512) at the entry's sampling steps (``--steps``), seed 0:

- ``pretrained``: the unguided sampler;
- ``best-of-N``: ``N = guidance.candidates`` candidates per molecule, the best kept
  (:func:`graphdiff.guidance.search.best_of_n`);
- ``SVDD-PM``: ``M = guidance.candidates`` candidates per step, the argmax of the clean prediction's reward kept
  (:mod:`graphdiff.guidance.svdd`);
- ``noise search``: ``K = guidance.paths`` paths and ``M / K`` children per path and step
  (:mod:`graphdiff.guidance.noise_search`; SVDD's reward calls);
- ``regressor``: DiGress's first-order guidance by a QED regressor trained on the model's own noisy states
  (:mod:`graphdiff.guidance.regressor`, ``guidance.scale``): trained here for ``--minutes`` (default 10) on
  ``guidance.regressor_limit`` training molecules and kept in ``<out>/regressors/<entry>-qed`` (a rerun reuses it;
  ``--set guidance.regressor=DIR`` gives one); its held-out errors are recorded with the row.

``--set guidance.connected=true`` steers with (and reports) ``qed+connected``: a molecule of several fragments
scores 0, so the searches cannot gain by adding detached NH3 / CH4 / HF (:func:`graphdiff.guidance.get_reward`).

Scores: strict validity, uniqueness, novelty (the model's packed training set), median and top-10% QED over all
samples (an invalid molecule scores 0), the share of valid one-fragment molecules (QED does not penalise extra
fragments, and a search can exploit that), internal diversity (1 - mean pairwise Tanimoto of Morgan fingerprints,
radius 2, 2048 bits, over valid samples), and the cost per molecule: network calls counted on the denoiser,
reward calls, regressor calls; wall time. ``<out>/top_<entry>_<method>.png`` shows the 12 highest-QED molecules.
The SVDD paper's ZINC row (GDSS base, 1000 steps, M = 10) is printed beside from the references.
"""

from __future__ import annotations

import functools
import time
from pathlib import Path

import numpy as np

from ..checks import check_keys
from ..errors import ConfigError

BUNDLED = {"defog-qm9": "qm9-defog", "defog-zinc250k": "zinc250k-defog"}
KEYS = ("candidates", "paths", "alpha", "scale", "regressor", "regressor_limit", "methods", "seed", "connected")
METHODS = ("pretrained", "best_of_n", "svdd", "noise_search", "regressor")
COLUMNS = ("method", "validity", "connected", "uniqueness", "novelty", "qed_median", "qed_top10_mean", "intdiv",
           "network_calls_per_sample", "reward_calls_per_sample", "regressor_calls_per_sample", "seconds")


def internal_diversity(valid) -> float | None:
    """1 - mean pairwise Tanimoto (Morgan radius 2, 2048 bits) of sanitized molecules (``None`` below two)."""
    from rdkit import DataStructs

    from ..metrics.density import morgan_fingerprints

    fps = morgan_fingerprints(valid)
    if len(fps) < 2:
        return None
    sims = [s for i, fp in enumerate(fps) for s in DataStructs.BulkTanimotoSimilarity(fp, fps[i + 1:])]
    return 1.0 - sum(sims) / len(sims)


def score_molecules(mols, values, packed) -> dict:
    """The row's quality columns for RDKit molecules ``mols`` with rewards ``values``."""
    from rdkit import Chem

    from ..convert.validity import _sanitized
    from ..metrics.packed_reference import packed_metrics

    sanitized = [_sanitized(m) for m in mols]
    smiles = [None if m is None else Chem.MolToSmiles(m) for m in sanitized]
    pm = packed_metrics(smiles, packed, metrics=("validity", "uniqueness", "novelty"))
    values = np.asarray(values, dtype=float)
    top = np.sort(values)[::-1][: max(1, len(values) // 10)]
    return {"validity": pm["validity"], "uniqueness": pm["uniqueness"], "novelty": pm["novelty"],
            "qed_median": float(np.median(values)), "qed_top10_mean": float(top.mean()),
            "intdiv": internal_diversity([m for m in sanitized if m is not None]),
            "connected": sum(1 for x in smiles if x and "." not in x) / len(mols)}


def _settings(overrides: dict | None) -> dict:
    s = dict((overrides or {}).get("guidance") or {})
    extra = set(overrides or {}) - {"guidance"}
    if extra:
        raise ConfigError(f"bench run guidance: --set takes guidance.KEY=VALUE, not {sorted(extra)}")
    check_keys(s, KEYS, "--set guidance")
    methods = s.get("methods", list(METHODS))
    methods = [methods] if isinstance(methods, str) else list(methods)
    for m in methods:
        if m not in METHODS:
            raise ConfigError(f"--set guidance.methods: {m!r} is not one of {list(METHODS)}")
    out = {"candidates": int(s.get("candidates", 10)), "paths": int(s.get("paths", 2)),
           "alpha": float(s.get("alpha", 0.0)), "scale": float(s.get("scale", 5.0)), "regressor": s.get("regressor"),
           "regressor_limit": int(s.get("regressor_limit", 30000)), "methods": methods, "seed": int(s.get("seed", 0)),
           "connected": bool(s.get("connected", False))}
    if out["candidates"] < 1 or out["paths"] < 1 or out["candidates"] % out["paths"]:
        raise ConfigError(f"--set guidance: candidates ({out['candidates']}) must be a positive multiple of paths "
                          f"({out['paths']})")
    return out


def _regressor(pipe, entry_name: str, cfg: dict, out: Path, minutes: float, root, progress: bool):
    from ..guidance.regressor import Regressor, train_regressor

    folder = Path(cfg["regressor"]) if cfg["regressor"] else out / "regressors" / f"{entry_name}-qed"
    if (folder / "regressor.json").is_file():
        return Regressor.load(folder), str(folder)
    reg = train_regressor(pipe, "qed", root=root, out=folder, max_minutes=minutes, limit=cfg["regressor_limit"],
                          progress=progress)
    return reg, str(folder)


LABELS = {"pretrained": "pretrained", "best_of_n": "best-of-{k}", "svdd": "SVDD-PM (M={k}, alpha={alpha:g})",
          "noise_search": "noise search (K={paths}, M={m})", "regressor": "regressor (scale {scale:g})"}


def run_method(key: str, pipe, n: int, steps: int, cfg: dict, reward, regressor_source=None):
    """Samples of method ``key`` (:data:`METHODS`): RDKit molecules, their rewards and the cost per molecule."""
    from ..guidance.noise_search import noise_search
    from ..guidance.regressor import regressor_guidance
    from ..guidance.search import CallCounter, best_of_n
    from ..guidance.svdd import svdd

    k, paths, seed = cfg["candidates"], cfg["paths"], cfg["seed"]
    if key == "pretrained":
        with CallCounter(pipe.denoiser) as c:
            mols = pipe.sample(n, steps=steps, seed=seed, output="rdkit", progress=False)
        return mols, reward(mols), {"network_calls_per_sample": c.graph_calls / n, "reward_calls_per_sample": 1.0}
    if key == "regressor":
        reg, folder = regressor_source()
        g = regressor_guidance(pipe, n, reward, regressor=reg, direction="max", scale=cfg["scale"], steps=steps,
                               seed=seed)
        return g.samples, g.rewards, {**g.cost, "regressor": folder, **reg.info}
    g = (best_of_n(pipe, n, reward, N=k, steps=steps, seed=seed) if key == "best_of_n" else
         svdd(pipe, n, reward, M=k, alpha=cfg["alpha"], steps=steps, seed=seed) if key == "svdd" else
         noise_search(pipe, n, reward, K=paths, M=k // paths, steps=steps, seed=seed))
    return g.samples, g.rewards, g.cost


def packed_reference_for(pipe, name, suite: str):
    """The packed evaluation reference of model ``name``: its own (a bundled model), else that of the bundled model
    trained on the same dataset (a model folder)."""
    from ..hub import model_index
    from ..metrics.packed_reference import load_packed_reference

    info = model_index().get(str(name))
    if info is None:
        info = next((i for i in model_index().values() if i.dataset == pipe.config.dataset and i.reference), None)
    if info is None or not getattr(info, "reference", None):
        raise ConfigError(f"bench run {suite}: {name} has no packed reference (a bundled molecule model, or a model "
                          f"of a dataset one was trained on)")
    return load_packed_reference(info.reference)


def entry_model(entry, model, steps, who: str):
    """The model of a molecule suite's entry (the bundled model it names, or ``--model``), its packed reference,
    the row name (the model run's name for a folder) and the sampling steps: ``(pipe, name, row_name, packed,
    steps)``."""
    from ..pipeline import GraphDiffusionPipeline

    name = model or BUNDLED.get(entry.name, entry.name)
    pipe = GraphDiffusionPipeline.from_pretrained(name)
    if pipe.schema.kind != "molecule":
        raise ConfigError(f"bench run {who}: {name} generates {pipe.schema.kind}s; the suite scores molecules")
    packed = packed_reference_for(pipe, name, who)
    ename = pipe.config.name or entry.name if model else entry.name  # rows are named after the model run
    st = int((steps or [None])[0] or (entry.steps or (pipe.config.sample.steps,))[0])
    return pipe, name, ename, packed, st


def run_guidance(suite, *, out, minutes=None, samples=None, overrides=None, model=None, root=None, raw_from=None,
                 only=None, bootstrap=None, progress=False, command=None, steps=None) -> dict:
    """Run the guidance suite (see the module docstring); writes ``results.json`` / ``results.md`` after every
    method and returns the results."""
    from ..guidance import get_reward
    from ..viz import draw_molecules
    from .record import finish_results, machine, new_results, open_run, save_progress

    cfg = _settings(overrides)
    out, root, entries = open_run(suite, out, root, raw_from, only, model, "guidance")
    n = int(samples or 512)
    qed = get_reward("qed", connected=cfg["connected"])
    started, t_start = machine(), time.time()
    results = new_results(suite, command, {"samples": n, "steps": steps, "minutes": minutes, **cfg},
                          machine_info=started)
    for entry in entries:
        pipe, name, ename, packed, st = entry_model(entry, model, steps, "guidance")

        for key in cfg["methods"]:
            label = LABELS[key].format(k=cfg["candidates"], alpha=cfg["alpha"], paths=cfg["paths"],
                                       m=cfg["candidates"] // cfg["paths"], scale=cfg["scale"])
            print(f"== guidance: {ename} ({name}): {label}", flush=True)
            t = time.perf_counter()
            mols, values, cost = run_method(key, pipe, n, st, cfg, qed, regressor_source=functools.partial(
                _regressor, pipe, ename, cfg, out, float(minutes or 10.0), root, progress))
            sec = time.perf_counter() - t
            row = {"entry": ename, "model": name, "method": label, "key": key, "samples": n, "steps": st,
                   **score_molecules(mols, values, packed),
                   "network_calls_per_sample": cost["network_calls_per_sample"],
                   "reward_calls_per_sample": cost["reward_calls_per_sample"],
                   "regressor_calls_per_sample": cost.get("regressor_calls_per_sample", 0.0),
                   "seconds": round(sec, 1), "cost": cost}
            results["rows"].append(row)
            best = np.argsort(-np.asarray(values, dtype=float))[:12]
            draw_molecules([mols[i] for i in best], out / f"top_{ename}_{key}.png",
                           legends=[f"QED {values[i]:.3f}" for i in best])
            save_progress(out, results, markdown)
    return finish_results(out, results, markdown, t_start)


def markdown(results: dict) -> str:
    """The results as tables, one per model, with the published SVDD row and the command."""
    from .record import model_tables
    from .references import format_table, reference_rows

    lines = [f"# {results['suite']}", "", results["description"], ""]
    for rows, table in model_tables(results, COLUMNS):
        lines += table
        reg = next((r["cost"] for r in rows if r["key"] == "regressor"), None)
        if reg:
            lines += ["", f"Regressor: {reg.get('steps')} steps in {reg.get('seconds')} s on {reg.get('train_graphs')} "
                      f"molecules; held-out QED MAE {reg.get('held_out_mae_clean', float('nan')):.4f} on clean "
                      f"graphs, {reg.get('held_out_mae_noisy', float('nan')):.4f} on noisy ones, "
                      f"{reg.get('held_out_mae_mean', float('nan')):.4f} for the training mean."]
        lines.append("")
    published = reference_rows("guidance/zinc250k_svdd")
    lines += [f"Published ({published[0].protocol}; not measured here):", "",
              format_table([], published, metrics=["qed_median", "qed_top10"]), ""]
    m = results.get("machine", {})
    lines += [f"`{results['command']}`", "",
              f"QED of an invalid molecule = 0; novelty against the model's packed training set. Machine: "
              f"{m.get('device', '?')}, torch threads {m.get('torch_threads', '?')}, load average "
              f"{m.get('load_average', '?')} at the start, {results.get('load_average_at_end', '?')} at the end."]
    return "\n".join(lines) + "\n"


__all__ = ["run_guidance", "markdown", "score_molecules", "internal_diversity", "packed_reference_for", "entry_model",
           "METHODS"]
