"""``graphdiff bench run targeting``: property targeting with regressor guidance on QM9-3D's DFT properties,
scored by an independent oracle.

For each entry (the bundled QM9 model by default, ``--model DIR`` with ``--only ENTRY`` for another DeFoG or
DiGress QM9 model) the suite

1. writes ``<out>/data/qm9_properties.csv``: the GDB-17 SMILES and the properties ``targeting.properties``
   (default ``mu`` in debye and ``homo`` in hartree) of ``targeting.molecules`` seeded molecules (default 40,000)
   of ``qm9_3d_qm9pack.npz`` (the QM9-3D raw file, properties in the original QM9 units);
2. fits the oracle of each property (:class:`graphdiff.metrics.property_oracle.PropertyOracle`: gradient boosting
   on Morgan counts and RDKit descriptors of the clean molecule, nothing shared with the diffusion model) on those
   molecules with 10% held out, whose mean absolute error it reports;
3. trains the guidance regressor of each property on the model's noisy states of the same molecules
   (:func:`graphdiff.guidance.regressor.train_regressor`, ``--minutes`` each, default 5; kept in
   ``<out>/regressors/<entry>-<property>``, reused by a rerun);
4. draws ``--samples`` molecules (default 512, seed 0, the entry's steps) unconditionally, and with regressor
   guidance toward each target (default the 10th and 90th percentiles of the property over the molecules,
   ``targeting.quantiles``) at each scale of ``targeting.scales`` (default 5).

Columns: the property, the target, the method, strict validity, uniqueness, the oracle's mean absolute error to
the target over the valid samples (``mae_to_target``), their oracle mean and the share within one oracle
held-out MAE of the target; the cost per molecule (network and regressor calls, seconds). The unconditional rows
score the same samples against each target: the baseline that guidance must beat.
``<out>/closest_<entry>_<property>_<target>_<method>.png`` draws each row's 12 valid molecules whose oracle value
is closest to the target.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from ..checks import check_keys
from ..errors import ConfigError
from .record import cell, model_tables

KEYS = ("properties", "quantiles", "scales", "molecules", "regressor_limit", "seed")
COLUMNS = ("property", "target", "method", "validity", "uniqueness", "mae_to_target", "oracle_mean",
           "within_oracle_mae", "network_calls_per_sample", "regressor_calls_per_sample", "seconds")
UNITS = {"mu": "D", "homo": "Ha", "lumo": "Ha", "gap": "Ha", "alpha": "bohr^3", "Cv": "cal/mol K"}


def _settings(overrides: dict | None) -> dict:
    over = dict(overrides or {})
    s = dict(over.pop("targeting", None) or {})
    check_keys(s, KEYS, "--set targeting")
    if over:
        raise ConfigError(f"bench run targeting: --set takes targeting.KEY only ({list(KEYS)}), got {sorted(over)}")

    def floats(key, default, ok, what):
        v = s.get(key, default)
        v = [v] if isinstance(v, (int, float)) and not isinstance(v, bool) else list(v)
        if not v or not all(isinstance(x, (int, float)) and not isinstance(x, bool) and ok(x) for x in v):
            raise ConfigError(f"--set targeting.{key}: {what}, got {v!r}")
        return [float(x) for x in v]

    props = s.get("properties", ["mu", "homo"])
    props = [props] if isinstance(props, str) else list(props)
    from ..data.molecules3d import PROPERTIES

    bad = [p for p in props if p not in PROPERTIES]
    if not props or bad:
        raise ConfigError(f"--set targeting.properties: QM9 properties from {list(PROPERTIES)}, got {props!r}")
    out = {"properties": props,
           "quantiles": floats("quantiles", [0.1, 0.9], lambda q: 0 < q < 1, "quantiles in (0, 1)"),
           "scales": floats("scales", [5.0], lambda v: v > 0, "guidance strengths > 0"),
           "molecules": int(s.get("molecules", 40000)), "regressor_limit": int(s.get("regressor_limit", 30000)),
           "seed": int(s.get("seed", 0))}
    for key in ("molecules", "regressor_limit"):
        if out[key] < 100:
            raise ConfigError(f"--set targeting.{key} must be at least 100, got {out[key]}")
    return out


def property_csv(npz: Path, out: Path, properties, count: int, seed: int) -> Path:
    """Write ``smiles,<properties>`` for ``count`` seeded molecules of the QM9-3D raw file."""
    with np.load(npz, allow_pickle=False) as z:
        smiles = z["smiles"]
        cols = {p: z[p] for p in properties}
    idx = np.sort(np.random.default_rng(seed).permutation(len(smiles))[:count])
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w") as fh:
        fh.write(",".join(["smiles", *properties]) + "\n")
        for i in idx:
            fh.write(",".join([str(smiles[i]), *(repr(float(cols[p][i])) for p in properties)]) + "\n")
    return out


def _oracle_data(ds, properties):
    """RDKit molecules of every graph of ``ds`` (all splits) and their property columns."""
    from ..convert.rdkit import to_mol

    mols, ys = [], []
    for split in ("train", "val", "test"):
        part = ds.split(split)
        for lo in range(0, len(part), 2048):
            batch = part.batch(range(lo, min(len(part), lo + 2048)))
            mols += to_mol(batch, ds.schema)
            ys.append(batch.y.double().numpy())
    y = np.concatenate(ys)
    cols = list(ds.schema.graph_features)
    return mols, {p: y[:, cols.index(p)] for p in properties}


def _regressor(pipe, entry: str, prop: str, ds, cfg: dict, out: Path, minutes: float, progress: bool):
    from ..guidance.regressor import Regressor, train_regressor

    folder = out / "regressors" / f"{entry}-{prop}"
    if (folder / "regressor.json").is_file():
        return Regressor.load(folder), str(folder)
    reg = train_regressor(pipe, prop, dataset=ds, out=folder, max_minutes=minutes, limit=cfg["regressor_limit"],
                          seed=cfg["seed"], progress=progress)
    return reg, str(folder)


def _score(mols, packed, oracle, target: float) -> dict:
    from rdkit import Chem

    from ..convert.validity import _sanitized
    from ..metrics.packed_reference import packed_metrics

    sanitized = [_sanitized(m) for m in mols]
    smiles = [None if m is None else Chem.MolToSmiles(m) for m in sanitized]
    pm = packed_metrics(smiles, packed, metrics=("validity", "uniqueness"))
    pred = oracle.predict(sanitized)
    ok = np.isfinite(pred)
    err = np.abs(pred[ok] - target)
    tol = oracle.info["held_out_mae"]
    return {"validity": pm["validity"], "uniqueness": pm["uniqueness"],
            "mae_to_target": float(err.mean()) if ok.any() else None,
            "oracle_mean": float(pred[ok].mean()) if ok.any() else None,
            "within_oracle_mae": float((err <= tol).mean()) if ok.any() else None,
            "_sanitized": sanitized, "_pred": pred}


def _draw(row: dict, path: Path, unit: str) -> None:
    """The 12 valid molecules whose oracle value is closest to the row's target, with their values."""
    from ..viz import draw_molecules

    mols, pred = row.pop("_sanitized"), row.pop("_pred")
    ok = np.flatnonzero(np.isfinite(pred))
    best = ok[np.argsort(np.abs(pred[ok] - row["target"]))][:12]
    draw_molecules([mols[i] for i in best], path, legends=[f"oracle {pred[i]:.3g} {unit}" for i in best])


def run_targeting(suite, *, out, minutes=None, samples=None, overrides=None, model=None, root=None, raw_from=None,
                  only=None, bootstrap=None, progress=False, command=None, steps=None) -> dict:
    """Run the targeting suite (see the module docstring); writes ``results.json`` / ``results.md`` after every
    method and returns the results."""
    from ..data import load_dataset
    from ..guidance.regressor import regressor_guidance
    from ..guidance.search import CallCounter
    from ..metrics.property_oracle import PropertyOracle
    from .guidance import entry_model
    from .record import finish_results, machine, new_results, open_run, save_progress

    cfg = _settings(overrides)
    out, root, entries = open_run(suite, out, root, raw_from, only, model, "targeting")
    npz = root / "qm9_3d" / "raw" / "qm9_3d_qm9pack.npz"
    if not npz.is_file():
        raise ConfigError(f"bench run targeting: {npz} is missing (the QM9-3D raw file; --raw-from DIR or "
                          f"GRAPHDIFF_RAW names a folder holding it)")
    n, seed = int(samples or 512), cfg["seed"]
    started, t_start = machine(), time.time()
    results = new_results(suite, command, {"samples": n, "steps": steps, "minutes": minutes, **cfg},
                          machine_info=started)
    csv = property_csv(npz, out / "data" / "qm9_properties.csv", cfg["properties"], cfg["molecules"], seed)
    ds = load_dataset(str(csv), root=root, condition_columns=cfg["properties"], seed=seed)
    t = time.perf_counter()
    mols, values = _oracle_data(ds, cfg["properties"])
    oracles = {p: PropertyOracle.fit(p, mols, values[p], seed=seed) for p in cfg["properties"]}
    targets = {p: [float(np.quantile(values[p][np.isfinite(values[p])], q)) for q in cfg["quantiles"]]
               for p in cfg["properties"]}
    results["oracles"] = {p: o.info for p, o in oracles.items()}
    results["oracles_seconds"] = round(time.perf_counter() - t, 1)
    results["targets"] = targets
    for entry in entries:
        pipe, name, ename, packed, st = entry_model(entry, model, steps, "targeting")
        base = {"entry": ename, "model": str(name), "samples": n, "steps": st}
        print(f"== targeting: {ename}: unconditional", flush=True)
        t = time.perf_counter()
        with CallCounter(pipe.denoiser) as c:
            plain = pipe.sample(n, steps=st, seed=seed, output="rdkit", progress=False)
        plain_cost = {"network_calls_per_sample": c.graph_calls / n, "regressor_calls_per_sample": 0.0,
                      "seconds": round(time.perf_counter() - t, 1)}
        for prop in cfg["properties"]:
            reg, folder = _regressor(pipe, ename, prop, ds, cfg, out, float(minutes or 5.0), progress)
            for target in targets[prop]:
                row = {**base, "property": prop, "target": target, "method": "unconditional", "key": "unconditional",
                       "scale": None, **_score(plain, packed, oracles[prop], target), **plain_cost}
                _draw(row, out / f"closest_{ename}_{prop}_{target:.4g}_unconditional.png", UNITS.get(prop, ""))
                results["rows"].append(row)
                for scale in cfg["scales"]:
                    print(f"== targeting: {ename}: {prop} -> {target:.4g}, scale {scale:g}", flush=True)
                    t = time.perf_counter()
                    g = regressor_guidance(pipe, n, regressor=reg, target=target, scale=scale, steps=st, seed=seed)
                    sec = time.perf_counter() - t
                    row = {**base, "property": prop, "target": target, "method": f"regressor (scale {scale:g})",
                           "key": "regressor", "scale": scale, "regressor": folder, "regressor_info": dict(reg.info),
                           **_score(pipe._convert(g.state, "rdkit"), packed, oracles[prop], target),
                           "network_calls_per_sample": g.cost["network_calls_per_sample"],
                           "regressor_calls_per_sample": g.cost["regressor_calls_per_sample"],
                           "seconds": round(sec, 1)}
                    _draw(row, out / f"closest_{ename}_{prop}_{target:.4g}_scale{scale:g}.png", UNITS.get(prop, ""))
                    results["rows"].append(row)
                    save_progress(out, results, markdown)
    return finish_results(out, results, markdown, t_start)


def markdown(results: dict) -> str:
    """One table per model, the oracles' and regressors' errors, the command and the machine."""
    lines = [f"# {results['suite']}", "", results["description"], ""]
    for rows, table in model_tables(results, COLUMNS, "molecules per row"):
        lines += table + [""]
        for prop in dict.fromkeys(r["property"] for r in rows):
            ri = next((r["regressor_info"] for r in rows if r["property"] == prop and r.get("regressor_info")), {})
            if ri:
                lines.append(f"- guidance regressor of {prop} ({UNITS.get(prop, '')}): {ri.get('steps')} steps in "
                             f"{ri.get('seconds')} s on {ri.get('train_graphs')} molecules; held-out MAE "
                             f"{cell(ri.get('held_out_mae_clean'))} clean, {cell(ri.get('held_out_mae_noisy'))} "
                             f"noisy, {cell(ri.get('held_out_mae_mean'))} for the training mean")
        lines.append("")
    for prop, info in results.get("oracles", {}).items():
        lines.append(f"- oracle of {prop} ({UNITS.get(prop, '')}): {info['model']}, {info['train']} molecules; "
                     f"held-out MAE {cell(info['held_out_mae'])} on {info['held_out']} (the training mean: "
                     f"{cell(info['held_out_mae_mean'])}; std {cell(info['std'])})")
    m = results.get("machine", {})
    lines += ["", "Targets: quantiles " + ", ".join(f"{q:g}" for q in results["settings"]["quantiles"]) +
              " of each property over the molecules; mae_to_target and oracle_mean over the valid samples; "
              "within_oracle_mae: the share of valid samples whose oracle value is within the oracle's own held-out "
              "MAE of the target. Properties in the original QM9 units (mu in D, homo in Ha).", "",
              f"`{results['command']}`", "",
              f"Machine: {m.get('device', '?')}, torch threads {m.get('torch_threads', '?')}, load average "
              f"{m.get('load_average', '?')} at the start, {results.get('load_average_at_end', '?')} at the end."]
    return "\n".join(lines) + "\n"


__all__ = ["run_targeting", "markdown", "property_csv"]
