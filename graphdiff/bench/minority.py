"""``graphdiff bench run minority``: minority guidance against the pretrained model, by where samples fall in the
training distribution's density.

For each entry (the bundled QM9 model by default, ``--model DIR`` with ``--only ENTRY`` for another DeFoG or
DiGress molecule model) the suite

1. builds the density reference of :mod:`graphdiff.metrics.density` from seeded training molecules
   (``minority.reference_size`` of them, default 5,000, plus ``minority.held_out`` others, default 1,000, whose 90th
   percentile of the k-NN Tanimoto distance is the low-density threshold: about 10% of the training distribution
   lies beyond it by construction);
2. trains a regressor of the model's own minority score (:func:`graphdiff.guidance.minority.minority_scores`) on
   its noisy states for ``--minutes`` (default 10) on ``minority.regressor_limit`` training molecules, kept in
   ``<out>/regressors/<entry>-minority`` (a rerun reuses it; ``--set minority.regressor=DIR`` gives one);
3. draws ``--samples`` molecules (default 512, seed 0, the entry's steps) from the pretrained sampler and with
   minority guidance at each scale of ``minority.scales`` (default 1, 3, 10), and scores as many test molecules.

Columns: strict validity, uniqueness, novelty (the model's packed training set), the low-density share of all
samples (an invalid molecule is not beyond the threshold) and of the valid ones, the median k-NN distance of the
valid ones, the mean minority score the model gives its own valid samples, and the cost per molecule (network and
regressor calls, wall time). ``<out>/lowest_density_<entry>_<method>.png`` draws each method's 12 valid molecules
farthest from the training set.
"""

from __future__ import annotations

import functools
import time
from pathlib import Path

import numpy as np

from ..checks import check_keys
from ..errors import ConfigError
from .record import cell, model_tables

KEYS = ("scales", "regressor", "regressor_limit", "reference_size", "held_out", "k", "draws", "seed")
COLUMNS = ("method", "validity", "uniqueness", "novelty", "low_density_share", "low_density_share_valid",
           "knn_distance_median", "minority_score_mean", "network_calls_per_sample", "regressor_calls_per_sample",
           "seconds")


def _settings(overrides: dict | None) -> dict:
    over = dict(overrides or {})
    s = dict(over.pop("minority", None) or {})
    check_keys(s, KEYS, "--set minority")
    if over:
        raise ConfigError(f"bench run minority: --set takes minority.KEY only ({list(KEYS)}), got {sorted(over)}")
    scales = s.get("scales", [1.0, 3.0, 10.0])
    scales = [scales] if isinstance(scales, (int, float)) else list(scales)
    if not scales or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0 for v in scales):
        raise ConfigError(f"--set minority.scales: guidance strengths > 0, got {scales!r}")
    out = {"scales": [float(v) for v in scales], "regressor": s.get("regressor"),
           "regressor_limit": int(s.get("regressor_limit", 20000)),
           "reference_size": int(s.get("reference_size", 5000)),
           "held_out": int(s.get("held_out", 1000)), "k": int(s.get("k", 5)), "draws": int(s.get("draws", 2)),
           "seed": int(s.get("seed", 0))}
    for key in ("regressor_limit", "reference_size", "held_out", "k", "draws"):
        if out[key] < 1:
            raise ConfigError(f"--set minority.{key} must be a positive integer, got {out[key]}")
    return out


def _regressor(pipe, entry_name: str, cfg: dict, out: Path, minutes: float, root, progress: bool):
    from ..guidance.minority import TARGET, minority_scores
    from ..guidance.regressor import Regressor, train_regressor

    folder = Path(cfg["regressor"]) if cfg["regressor"] else out / "regressors" / f"{entry_name}-minority"
    if (folder / "regressor.json").is_file():
        return Regressor.load(folder), str(folder)
    scorer = functools.partial(minority_scores, draws=cfg["draws"], seed=cfg["seed"])
    reg = train_regressor(pipe, TARGET, root=root, out=folder, max_minutes=minutes, limit=cfg["regressor_limit"],
                          scorer=scorer, seed=cfg["seed"], progress=progress)
    return reg, str(folder)


def _training_molecules(ds, count: int, seed: int) -> list:
    """``count`` seeded training molecules of ``ds`` as RDKit molecules (unparseable rows dropped)."""
    from ..convert.rdkit import to_mol

    train = ds.split("train")
    idx = np.random.default_rng(seed).permutation(len(train))[:count]
    mols = []
    for lo in range(0, len(idx), 1000):
        mols += to_mol(train.batch([int(i) for i in idx[lo:lo + 1000]]), ds.schema)
    return [m for m in mols if m is not None]


def score_minority(mols, ref, packed) -> dict:
    """The row's columns for RDKit molecules ``mols`` (``None`` = invalid) against a density reference."""
    from rdkit import Chem

    from ..convert.validity import _sanitized
    from ..metrics.packed_reference import packed_metrics

    sanitized = [_sanitized(m) for m in mols]
    smiles = [None if m is None else Chem.MolToSmiles(m) for m in sanitized]
    pm = packed_metrics(smiles, packed, metrics=("validity", "uniqueness", "novelty"))
    d = ref.knn_distance(sanitized)
    valid = np.isfinite(d)
    beyond = valid & (d > ref.threshold)
    return {"validity": pm["validity"], "uniqueness": pm["uniqueness"], "novelty": pm["novelty"],
            "low_density_share": float(beyond.mean()),
            "low_density_share_valid": float(beyond[valid].mean()) if valid.any() else None,
            "knn_distance_median": float(np.median(d[valid])) if valid.any() else None,
            "_distances": d, "_sanitized": sanitized}


def _own_scores(pipe, mols, cfg) -> np.ndarray:
    """The model's minority score of its valid samples (re-encoded from their SMILES)."""
    from rdkit import Chem

    from ..convert import from_smiles
    from ..guidance.minority import minority_scores

    smiles = [Chem.MolToSmiles(m) for m in mols if m is not None]
    if not smiles:
        return np.zeros(0)
    out = []
    for lo in range(0, len(smiles), 256):
        batch = from_smiles(smiles[lo:lo + 256], pipe.schema, max_nodes=pipe.schema.max_nodes)
        out.append(minority_scores(pipe, batch, draws=cfg["draws"], seed=cfg["seed"]))
    return np.concatenate(out)


def run_minority(suite, *, out, minutes=None, samples=None, overrides=None, model=None, root=None, raw_from=None,
                 only=None, bootstrap=None, progress=False, command=None, steps=None) -> dict:
    """Run the minority suite (see the module docstring); writes ``results.json`` / ``results.md`` after every
    method and returns the results."""
    from ..data import load_dataset
    from ..guidance.minority import minority_guidance
    from ..guidance.search import CallCounter
    from ..metrics.density import density_reference
    from ..viz import draw_molecules
    from .guidance import entry_model
    from .record import finish_results, machine, new_results, open_run, save_progress

    cfg = _settings(overrides)
    out, root, entries = open_run(suite, out, root, raw_from, only, model, "minority")
    n, seed = int(samples or 512), cfg["seed"]
    started, t_start = machine(), time.time()
    results = new_results(suite, command, {"samples": n, "steps": steps, "minutes": minutes, **cfg},
                          machine_info=started)
    for entry in entries:
        pipe, name, ename, packed, st = entry_model(entry, model, steps, "minority")
        ds = load_dataset(pipe.config.dataset, root=root)
        t = time.perf_counter()
        ref = density_reference(_training_molecules(ds, cfg["reference_size"] + cfg["held_out"], seed),
                                kind="molecule", k=cfg["k"], reference_size=cfg["reference_size"],
                                held_out=cfg["held_out"], seed=seed)
        results["density_reference"] = {"threshold": ref.threshold, "k": ref.k, "reference": len(ref.reference),
                                        "seconds": round(time.perf_counter() - t, 1)}
        reg, folder = _regressor(pipe, ename, cfg, out, float(minutes or 10.0), root, progress)
        base = {"entry": ename, "model": str(name), "samples": n, "steps": st, "regressor": folder,
                "regressor_info": dict(reg.info)}

        test = ds.split("test")
        pick = np.random.default_rng(seed).permutation(len(test))[:n]
        from ..convert.rdkit import to_mol

        methods = [("data (test)", "data", None), ("pretrained", "pretrained", None)]
        methods += [(f"minority (scale {s:g})", "minority", s) for s in cfg["scales"]]
        for label, key, scale in methods:
            print(f"== minority: {ename}: {label}", flush=True)
            t = time.perf_counter()
            cost = {"network_calls_per_sample": 0.0, "regressor_calls_per_sample": 0.0}
            if key == "data":
                mols = to_mol(test.batch([int(i) for i in pick]), ds.schema)
            elif key == "pretrained":
                with CallCounter(pipe.denoiser) as c:
                    mols = pipe.sample(n, steps=st, seed=seed, output="rdkit", progress=False)
                cost["network_calls_per_sample"] = c.graph_calls / n
            else:
                g = minority_guidance(pipe, n, regressor=reg, scale=scale, steps=st, seed=seed)
                mols = g.samples if g.samples is not None else pipe._convert(g.state, "rdkit")
                cost.update({k: g.cost[k] for k in cost if k in g.cost})
            sec = time.perf_counter() - t
            row = score_minority(mols, ref, packed)
            d, sanitized = row.pop("_distances"), row.pop("_sanitized")
            row["minority_score_mean"] = (float(np.mean(s)) if len(s := _own_scores(pipe, sanitized, cfg))
                                          else None)
            results["rows"].append({**base, "method": label, "key": key, "scale": scale, **row, **cost,
                                    "seconds": round(sec, 1)})
            far = [i for i in np.argsort(-np.where(np.isfinite(d), d, -1.0)) if np.isfinite(d[i])][:12]
            tag = key if scale is None else f"{key}_{scale:g}"
            draw_molecules([sanitized[i] for i in far], out / f"lowest_density_{ename}_{tag}.png",
                           legends=[f"k-NN distance {d[i]:.3f}" for i in far])
            save_progress(out, results, markdown)
    return finish_results(out, results, markdown, t_start)


def markdown(results: dict) -> str:
    """The results as one table per model, with the regressor's errors, the threshold and the command."""
    lines = [f"# {results['suite']}", "", results["description"], ""]
    for rows, table in model_tables(results, COLUMNS):
        r0 = rows[0]
        ri = r0.get("regressor_info", {})
        lines += table
        lines += ["", f"Minority-score regressor ({r0['regressor']}): {ri.get('steps')} steps in {ri.get('seconds')} s "
                  f"on {ri.get('train_graphs')} molecules; held-out MAE {cell(ri.get('held_out_mae_clean'))} on "
                  f"clean graphs, {cell(ri.get('held_out_mae_noisy'))} on noisy ones, "
                  f"{cell(ri.get('held_out_mae_mean'))} for the training mean.", ""]
    ref = results.get("density_reference", {})
    m = results.get("machine", {})
    lines += [f"Low density: mean Tanimoto distance (Morgan radius 2, 2048 bits) to the {ref.get('k')} nearest of "
              f"{ref.get('reference')} training molecules above {cell(ref.get('threshold'))}, the 90th percentile of "
              f"held-out training molecules (so about 10% of the training distribution); an invalid molecule is not "
              f"counted as low density. minority_score_mean: the model's own minority score of the valid samples.",
              "", f"`{results['command']}`", "",
              f"Machine: {m.get('device', '?')}, torch threads {m.get('torch_threads', '?')}, load average "
              f"{m.get('load_average', '?')} at the start, {results.get('load_average_at_end', '?')} at the end."]
    return "\n".join(lines) + "\n"


__all__ = ["run_minority", "markdown", "score_minority"]
