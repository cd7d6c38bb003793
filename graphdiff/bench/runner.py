"""``graphdiff bench run``: train (or load), sample, evaluate every entry of a suite and write one results folder.

The folder holds ``results.json`` (every row with its full evaluation, the settings, the budget, the command, the
graphdiff version and git commit, the device, threads and load) and ``results.md`` (our rows beside the published
rows of :mod:`graphdiff.bench.references`, then the budget of each row). Each entry's run folder (checkpoint and
``log.jsonl``) lies under ``<out>/runs/<entry>``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from ..config import load_preset
from ..errors import ConfigError, DataError
from .offline import link_raw
from .record import (_calls_per_graph, entry_overrides, finish_results, header_lines, machine, new_results,
                     write_results)
from .references import format_table, metrics_from_result, reference_rows
from .suites import Entry, Suite, get_suite

GRAPH_METRICS = {"gdss": ("degree", "clustering", "orbit"),
                 "spectre": ("vun", "degree", "clustering", "orbit", "spectral")}
MOLECULE_METRICS = ("validity_strict", "validity_gdss_decoding", "uniqueness", "novelty", "fcd", "nspdk", "snn",
                    "frag", "scaf", "filters")
MOLECULE_3D_METRICS = ("mol_stable", "atom_stable", "molecule_stability_revisited", "atom_stability_revisited",
                       "validity", "validity_largest_fragment", "connected", "uniqueness", "novelty",
                       "bond_length_w1", "bond_angle_w1", "torsion_w1", "atom_type_tv", "charge_tv")


def budget_text(row: dict) -> str:
    over = row.get("overrides") or {}
    parts = []
    if over.get("model"):
        parts.append("small model")
    bs = row["train"].get("batch_size")
    if bs:
        parts.append(f"batch {bs}")
    for key in ("amp", "compile"):
        if (over.get("train") or {}).get(key):
            parts.append(f"train.{key}")
    where = "CPU" if not row.get("cuda") else "GPU"
    if row.get("imported"):
        return f"the authors' weights, imported ({where} sampling)"
    minutes = row["train"].get("minutes")
    head = f"{minutes:.3g} min {where}" if minutes is not None else f"loaded ({row['train'].get('steps')} steps)"
    return head + (f" ({', '.join(parts)})" if parts else "")


def _model_for(entry: Entry, model: Path | None, n_entries: int) -> Path | None:
    if model is None:
        return None
    for cand in (model / entry.name, model / "runs" / entry.name):
        if (cand / "checkpoint" / "config.json").is_file() or (cand / "config.json").is_file():
            return cand
    if n_entries == 1:
        return model
    raise ConfigError(f"--model {model}: no run folder for {entry.name} (expected {model / entry.name}); give one "
                      f"entry with --only, or a folder holding one run folder per entry")


def _train_or_load(entry: Entry, run: Path, *, minutes, overrides, model, root, progress, train: bool = True):
    from ..pipeline import GraphDiffusionPipeline

    if not train and model is None:  # speed and threads time training steps themselves, untrained
        cfg = load_preset(entry.preset, overrides)
        pipe = GraphDiffusionPipeline.from_preset(cfg, root=root)
        return pipe, pipe._dataset, {"steps": 0, "minutes": None, "batch_size": pipe.config.train.batch_size}
    if model is not None:
        t = time.perf_counter()
        pipe = GraphDiffusionPipeline.from_pretrained(model)
        ds_name = overrides.get("dataset") or pipe.config.dataset
        from ..data import load_dataset

        # the model's own dataset options (a subset, targets) unless the run names another dataset
        options = {} if overrides.get("dataset") else dict(pipe.config.dataset_options or {})
        ds = load_dataset(ds_name, root=root, **{**options, **(overrides.get("dataset_options") or {})})
        return pipe, ds, {"steps": getattr(pipe, "trained_steps", None), "minutes": None, "loaded_from": str(model),
                          "seconds": round(time.perf_counter() - t, 1),
                          "batch_size": pipe.config.train.batch_size}
    cfg = load_preset(entry.preset, overrides)
    t = time.perf_counter()
    pipe = GraphDiffusionPipeline.fit(None, preset=cfg, out=run, root=root, max_minutes=minutes, progress=progress,
                                      overwrite=True)  # a suite's runs are its own; a rerun replaces them
    s = pipe.summary
    return pipe, pipe._dataset, {"steps": s["steps"], "epochs": s["epochs"], "minutes": minutes,
                                 "stopped_by": s["stopped_by"], "final_loss": s["loss"],
                                 "seconds": round(time.perf_counter() - t, 1),
                                 "batch_size": s.get("batch_size", pipe.config.train.batch_size)}


def _degree_matched(pipe) -> dict:
    """PARD with block degree: the share of generated nodes whose edges to blocks up to their own number the block
    degree they were drawn with."""
    stats = getattr(pipe.process, "total_stats", None) or {}
    if not getattr(pipe.process, "block_degree", False) or not stats.get("nodes"):
        return {}
    return {"block_degree_matched": round(stats["degree_matched"] / stats["nodes"], 4)}


def _quality_rows(entry: Entry, pipe, ds, *, samples, bootstrap, progress, steps_list=None) -> list[dict]:
    from ..convert.networkx import to_networkx
    from ..convert.rdkit import to_mol
    from ..metrics.evaluate import evaluate_graphs, evaluate_molecules

    molecule = pipe.schema.kind == "molecule"
    n = samples or entry.samples or (1000 if molecule else len(ds.split("test")))
    rows = []
    for steps in steps_list or entry.steps or (pipe.config.sample.steps or 1000,):
        if hasattr(pipe.process, "reset_stats"):
            pipe.process.reset_stats()
        t = time.perf_counter()
        state = pipe.sample(n, steps=steps, seed=0, progress=progress, batch_size=entry.sample_batch)
        sample_s = time.perf_counter() - t
        if state.pos is not None:  # 3D molecules: stability, validity, geometry against the test split
            from ..convert.rdkit3d import to_mols3d
            from ..metrics.evaluate3d import evaluate_molecules_3d

            res = evaluate_molecules_3d(to_mols3d(state, state.schema, sanitize=False), ds)
        elif molecule:
            res = evaluate_molecules(to_mol(state, pipe.schema, sanitize=False), ds, subsets=0)
        else:
            res = evaluate_graphs(to_networkx(state, pipe.schema), ds, protocol=entry.protocol, bootstrap=bootstrap)
        rows.append({"steps": steps, "samples": n, "sample_seconds": round(sample_s, 1),
                     "graphs_per_second": round(n / sample_s, 2), "network_calls_per_graph": _calls_per_graph(
                         pipe, steps), "metrics": metrics_from_result(res), "result": res, **_degree_matched(pipe)})
        print(f"  {entry.name}: {steps} steps, {n} samples in {sample_s:.1f}s: " + ", ".join(
            f"{k} {v:.4g}" for k, v in rows[-1]["metrics"].items()
            if k in GRAPH_METRICS["spectre"] + MOLECULE_METRICS + MOLECULE_3D_METRICS), flush=True)
    return rows


def _speed_rows(entry: Entry, pipe, ds, *, samples, progress, steps_list=None) -> list[dict]:
    from .timing import time_train_steps

    bs = pipe.config.train.batch_size
    timing = time_train_steps(pipe, ds.split("train"), bs, steps=8, warmup=2, lr=pipe.config.train.lr)
    n = samples or entry.samples or 64
    steps = (steps_list or entry.steps or (pipe.config.sample.steps or 100,))[0]
    pipe.sample(2, steps=2, seed=1, progress=False)  # warm-up: lazy initialisation
    t = time.perf_counter()
    pipe.sample(n, steps=steps, seed=0, progress=progress)
    sample_s = time.perf_counter() - t
    return [{"steps": steps, "samples": n, "sample_seconds": round(sample_s, 2),
             "graphs_per_second": round(n / sample_s, 2), "network_calls_per_graph": _calls_per_graph(pipe, steps),
             "metrics": {"train_graphs_per_s": timing["graphs_per_s"], "sample_graphs_per_s": round(n / sample_s, 2)},
             "training": timing}]


def run_suite(name: str, *, out, minutes: float | None = None, samples: int | None = None,
              overrides: dict | None = None, model=None, root=None, raw_from=None, only=None, bootstrap: int = 100,
              progress: bool = False, command: str | None = None, steps=None) -> dict:
    """Run suite ``name`` and write ``<out>/results.json`` and ``<out>/results.md``; returns the results.

    Args:
        minutes: training budget per entry (default: each entry's).
        samples: samples per step count (default: each entry's).
        overrides: ``--set`` values applied to every entry's preset (after the entry's own).
        model: a checkpoint folder (one entry) or a folder of run folders named after the entries: evaluate
            these instead of training.
        root: dataset root (default: ``<out>/data``); ``raw_from``: a folder with the standard raw files
            (``graphdiff.bench.offline``), placed under ``root`` before loading.
        only: entry names (or presets) to run, a subset of the suite's.
        steps: sampling step counts to score every entry at (default: each entry's).
    """
    import torch

    suite: Suite = get_suite(name)
    if suite.kind == "lggm":
        raise ConfigError("suite lggm runs through graphdiff.bench.lggm.run_lggm (graphdiff bench run lggm)")
    if suite.kind == "kernels":
        raise ConfigError("suite kernels runs through graphdiff.bench.kernels.run_kernels "
                          "(graphdiff bench run kernels)")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    root = Path(root) if root is not None else out / "data"
    entries = list(suite.entries)
    if only:
        names = {e.name for e in entries} | {e.preset for e in entries}
        for o in only:
            if o not in names:
                from ..checks import suggest

                raise ConfigError(f"--only {o!r} is not an entry of suite {name}{suggest(o, names)}; entries: "
                                  f"{', '.join(e.name for e in entries)}")
        entries = [e for e in entries if e.name in only or (e.preset in only and not e.imported)]
    linked = link_raw(root, suite.datasets, raw_from)
    cpu = not torch.cuda.is_available()
    started = machine()
    t_start = time.time()
    settings = {"minutes": minutes, "samples": samples, "steps": steps, "overrides": overrides or {},
                "bootstrap": bootstrap, "model": None if model is None else str(model), "only": list(only or []),
                "raw_files_linked": len(linked)}
    results = new_results(suite, command, settings, machine_info=started)
    for entry in entries:
        if entry.imported and model is None:
            print(f"== {suite.name}: {entry.name} skipped (the authors' weights: give the converted folder with "
                  f"--model, see `graphdiff import-checkpoint`)", flush=True)
            continue
        print(f"== {suite.name}: {entry.name}", flush=True)
        over = entry_overrides(entry, overrides, cpu)
        budget = minutes if minutes is not None else entry.minutes
        src = _model_for(entry, None if model is None else Path(model), len(entries))
        pipe, ds, train = _train_or_load(entry, out / "runs" / entry.name, minutes=budget, overrides=over,
                                         model=src, root=root, progress=progress,
                                         train=suite.kind == "quality")
        if suite.kind == "threads":
            from .threads import thread_rows

            evals = [{"steps": None, "samples": 0, "sample_seconds": None, "graphs_per_second": None,
                      "network_calls_per_graph": None, **r,
                      "metrics": {"train_steps_per_s": r["steps_per_s"]}} for r in thread_rows(pipe, ds)]
        elif suite.kind == "speed":
            evals = _speed_rows(entry, pipe, ds, samples=samples, progress=progress, steps_list=steps)
        else:
            evals = _quality_rows(entry, pipe, ds, samples=samples, bootstrap=bootstrap, progress=progress,
                                  steps_list=steps)
        params = sum(p.numel() for p in pipe.denoiser.parameters())
        for ev in evals:
            results["rows"].append({"entry": entry.name, "preset": entry.preset, "dataset": ds.name,
                                    "process": pipe.process.name, "sampler": pipe.config.sample.sampler,
                                    "reference": entry.reference, "protocol": entry.protocol, "overrides": over,
                                    "parameters": params, "train": train, "cuda": not cpu,
                                    **({"imported": pipe.config.description or "imported"} if entry.imported else {}),
                                    **ev})
        _write(out, results)  # after every entry: a stopped run keeps what it measured
    return finish_results(out, results, markdown, t_start)


def _method(row: dict) -> str:
    if row.get("imported"):
        return f"graphdiff {row['entry']} (authors' weights), {row['steps']} steps"
    return f"graphdiff {row['preset']}, {row['steps']} steps"


def markdown(results: dict) -> str:
    lines = header_lines(results)
    rows = results["rows"]
    if results["kind"] == "threads":
        lines += ["| entry | batch | torch threads | load | training steps/s (median) | all repeats | x 2 threads "
                  "same load | load average seen |", "|---|---:|---:|---|---:|---|---:|---|"]
        for r in rows:
            two = next((x for x in rows if x["entry"] == r["entry"] and x["load"] == r["load"]
                        and x["threads"] == 2), r)
            lines.append(f"| {r['entry']} | {r['batch_size']} | {r['threads']} | {r['load']} | {r['steps_per_s']} | "
                         f"{', '.join(map(str, r['steps_per_s_all']))} | {r['steps_per_s'] / two['steps_per_s']:.2f} | "
                         f"{', '.join(map(str, r['load_average_seen']))} |")
        return "\n".join(lines) + "\n"
    if results["kind"] == "speed":
        base = next((r for r in rows if r["process"] == "gdss"), rows[0] if rows else None)
        lines += ["| entry | batch | train graphs/s | x GDSS | sample steps | sample graphs/s | x GDSS | "
                  "network calls/graph |", "|---|---|---:|---:|---:|---:|---:|---:|"]
        for r in rows:
            t, s = r["metrics"]["train_graphs_per_s"], r["metrics"]["sample_graphs_per_s"]
            bt, bsm = base["metrics"]["train_graphs_per_s"], base["metrics"]["sample_graphs_per_s"]
            lines.append(f"| {r['entry']} | {r['train']['batch_size']} | {t:g} | {t / bt:.2f} | {r['steps']} | {s:g} | "
                         f"{s / bsm:.2f} | {r['network_calls_per_graph']} |")
        lines += ["", "Ratios are within this one run (same machine, same load)."]
        return "\n".join(lines) + "\n"
    groups: dict = {}
    for r in rows:
        groups.setdefault((r["dataset"], r["reference"], r["protocol"], r["result"].get("kind")), []).append(r)
    for (dataset, ref, protocol, kind), rs in groups.items():
        cols = list(GRAPH_METRICS[protocol] if kind == "graphs" else
                    MOLECULE_3D_METRICS if kind == "molecules_3d" else MOLECULE_METRICS)
        ours = [{"method": _method(r), "metrics": {k: r["metrics"].get(k) for k in cols},
                 "source": f"this run: {budget_text(r)}"} for r in rs]
        lines += [f"## {dataset}" + (f" ({protocol} protocol)" if kind == "graphs" else ""), ""]
        try:
            refs = reference_rows(ref) if ref else []
        except Exception as exc:  # a reference name that is not in the table: our rows alone, said so
            refs, ref = [], f"{ref} (not found: {exc})"
        lines += [format_table(ours, refs, cols), ""]
        if refs:
            lines += [f"Published rows: {refs[0].protocol or ''} ({refs[0].samples or 'sample count as published'})."
                      " Ours: our evaluator's pinned protocol, the sample count in the budget table below.", ""]
    lines += ["## Budget", "", "| entry | dataset | trained steps | budget | parameters | sample steps | samples | "
              "sample s | graphs/s | network calls/graph |", "|---|---|---:|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['entry']} | {r['dataset']} | {r['train'].get('steps')} | {budget_text(r)} | "
                     f"{r['parameters']:,} | {r['steps']} | {r['samples']} | {r['sample_seconds']} | "
                     f"{r['graphs_per_second']} | {r['network_calls_per_graph']} |")
    return "\n".join(lines) + "\n"


def _write(out: Path, results: dict) -> None:
    write_results(out, results, markdown(results))


def read_results(folder) -> dict:
    """``results.json`` of a results folder (one-line error when absent or not JSON)."""
    from ..errors import DataError

    f = Path(folder) / "results.json" if Path(folder).is_dir() else Path(folder)
    if not f.is_file():
        raise DataError(f"{f}: no results.json (run `graphdiff bench run SUITE --out {folder}` first)")
    try:
        res = json.loads(f.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"{f}: not a results file ({type(exc).__name__}: {exc})") from None
    if not isinstance(res, dict) or not isinstance(res.get("rows"), list):
        raise DataError(f"{f}: not a results file (a JSON object with a list of \"rows\", as `graphdiff bench run` "
                        f"writes)")
    return res


def read_run(spec) -> dict:
    """One run's results: a folder, or ``DIR_A+DIR_B`` for one run of a suite split over folders by ``--only``
    (the same settings but the series; each entry in one part only), read as one results file."""
    from ..errors import DataError

    spec = str(spec)
    parts = spec.split("+")
    if len(parts) == 1 or Path(spec).exists():
        return read_results(spec)
    read = [(p, read_results(p)) for p in parts]
    first = read[0][1]

    def same(res: dict) -> dict:
        return {k: v for k, v in (res.get("settings") or {}).items() if k != "only"}

    merged = {**first, "rows": [], "command": " + ".join(str(r.get("command", "?")) for _, r in read),
              "wall_minutes": round(sum(float(r.get("wall_minutes") or 0) for _, r in read), 2),
              "wall_minutes_note": "the sum of the parts' minutes (they may have run side by side)"}
    merged["settings"] = {**(first.get("settings") or {}), "only": None}
    owner: dict[str, str] = {}
    for folder, res in read:
        if res.get("suite") != first.get("suite") or same(res) != same(first):
            raise DataError(f"{spec}: {folder} is not the same run as {read[0][0]} (another suite or other "
                            f"settings); join with + only the parts of one run split by --only")
        for r in res.get("rows") or []:
            key = str(r.get("series", r.get("entry")))
            if owner.setdefault(key, folder) != folder:
                raise DataError(f"{spec}: {key} is in both {owner[key]} and {folder}; each part of a run holds "
                                f"its own entries")
            merged["rows"].append(r)
    return merged


def compare(folders) -> str:
    """Several results folders side by side: one row per (folder, entry, steps), the metrics they share; folders of
    the ``timeseries`` suite (repeated runs) are compared run by run (:mod:`graphdiff.bench.timeseries_compare`),
    those of the ``lggm`` suite arm by arm and seed by seed (:mod:`graphdiff.bench.lggm_compare`).
    ``DIR_A+DIR_B`` is one run split over two folders (:func:`read_run`)."""
    read = [(str(folder), read_run(folder)) for folder in folders]
    if any(res.get("suite") == "timeseries" for _, res in read):
        from .timeseries_compare import compare_timeseries

        return compare_timeseries(read)
    if read and all(res.get("suite") == "lggm" for _, res in read):
        from .lggm_compare import compare_lggm

        return compare_lggm(read)
    all_rows = []
    for folder, res in read:
        own_kind = res.get("kind") in ("threads", "speed")  # timings, not scores: their tables are in results.md
        for r in res["rows"] or ([None] if own_kind else []):
            if own_kind or not isinstance(r, dict) or not {"metrics", "entry", "train"} <= set(r):
                raise DataError(f"{folder}: the {res.get('suite', '?')!r} suite writes rows of its own kind; bench "
                                f"compare reads the model suites' rows (see its results.md for this one)")
            all_rows.append((str(folder), res, r))
    if not all_rows:
        return "(no rows)\n"
    keys = list(dict.fromkeys(k for _, _, r in all_rows for k in r["metrics"]))
    shown = [k for k in keys if sum(k in r["metrics"] for _, _, r in all_rows) > 1] or keys
    head = ["results", "entry", "dataset", "steps", *shown, "budget", "trained steps", "graphs/s"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for folder, _, r in all_rows:
        vals = [r["metrics"].get(k) for k in shown]
        cells = ["-" if v is None else (f"{v:.4g}" if isinstance(v, float) else str(v)) for v in vals]
        lines.append("| " + " | ".join([folder, r["entry"], r["dataset"], str(r["steps"]), *cells, budget_text(r),
                                         str(r["train"].get("steps")), str(r["graphs_per_second"])]) + " |")
    return "\n".join(lines) + "\n"


__all__ = ["run_suite", "compare", "markdown", "read_results", "machine", "entry_overrides"]
