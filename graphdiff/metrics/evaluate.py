"""One evaluator for generated graphs and molecules against a dataset's splits, with every setting recorded.

``evaluate_samples(path_or_list, dataset)`` reads a ``.smi`` file (one SMILES per line; an empty or unparsable
line is an invalid sample, never dropped) or a JSON-lines edge-list file and compares it with the dataset's test
split (MMD / FCD / NSPDK ...) and train split (novelty). ``evaluate_reference(dataset)`` evaluates the dataset's
own train split against its test split: the "data" row papers print.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Sequence

import networkx as nx
import numpy as np

from ..errors import DataError
from .dataset_smiles import dataset_smiles


# ---- reading sample files --------------------------------------------------------------------------
def read_smiles_samples(path: str | os.PathLike) -> list[str | None]:
    """One entry per line of a .smi file; empty lines become ``None`` (an invalid sample). A missing, empty,
    binary or non-UTF-8 file is a one-line error naming it (and the line of a bad byte)."""
    from ..data.files import read_text

    lines = read_text(path, "SMILES text (one per line)").splitlines()
    if not lines:
        raise DataError(f"{path}: the sample file is empty")
    out = []
    for line in lines:
        parts = line.split()
        out.append(parts[0] if parts else None)
    return out


def read_graph_samples(path: str | os.PathLike) -> list[nx.Graph]:
    """Graphs from a JSON-lines edge-list file (``{"num_nodes": n, "edges": [[i, j], ...]}`` per line).

    ``num_nodes`` may be 0 (an empty sample, kept and counted). A malformed line is a one-line error naming the
    file and line. Self-loops are kept out of the statistics but make the sample invalid for V.U.N.
    """
    from ..data.files import open_text

    graphs = []
    with open_text(path, "JSON lines (one graph per line)", newline=None) as fh:
        for k, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            where = f"{path}: line {k}"
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{where}: invalid JSON ({exc.msg} at column {exc.colno})") from None
            n = obj.get("num_nodes") if isinstance(obj, dict) else None
            if not isinstance(n, int) or isinstance(n, bool) or n < 0:
                raise DataError(f"{where}: num_nodes must be a non-negative integer, got {n!r}")
            g = nx.Graph()
            g.add_nodes_from(range(n))
            try:
                edges = [(int(u), int(v)) for u, v in obj.get("edges", [])]
            except (TypeError, ValueError):
                raise DataError(f"{where}: edges must be a list of [i, j] integer pairs") from None
            bad = [(u, v) for u, v in edges if not (0 <= u < n and 0 <= v < n)]
            if bad:
                raise DataError(f"{where}: edge {list(bad[0])} refers to a node outside 0..{n - 1}")
            g.add_edges_from(edges)
            _add_labels(g, obj, edges, where)
            graphs.append(g)
    if not graphs:
        raise DataError(f"{path}: the sample file is empty")
    return graphs


def read_samples(path: str | os.PathLike):
    """``("smiles", list)`` for .smi/.txt files, ``("graphs", list)`` for .jsonl files (either may be gzipped)."""
    if Path(path).is_dir():
        from ..data.files import check_file

        check_file(path, "a .smi or .jsonl sample file")  # raises: a directory
    suffixes = [s.lower() for s in Path(path).suffixes]
    suffix = suffixes[-2] if suffixes[-1:] == [".gz"] and len(suffixes) > 1 else Path(path).suffix.lower()
    if suffix in (".smi", ".txt"):
        return "smiles", read_smiles_samples(path)
    if suffix == ".jsonl":
        return "graphs", read_graph_samples(path)
    raise DataError(f"{path}: sample files must be .smi / .txt (SMILES), .jsonl (edge lists) or, for 3D molecules, "
                    f".sdf / .xyz; got {suffix!r}")


def _add_labels(g: nx.Graph, obj: dict, edges: list, where: str) -> None:
    """Put a line's ``node_labels`` / ``edge_labels`` on ``g`` as ``label`` attributes (graph statistics ignore them;
    a molecule dataset reads them as atoms and bonds), checked as a dataset file's are."""
    from ..data.custom import jsonl_labels

    nl, el = jsonl_labels(obj, g.number_of_nodes(), edges, where)
    for i, lab in enumerate(nl or []):
        g.nodes[i]["label"] = lab
    for (u, v), lab in (el or {}).items():
        g.edges[u, v]["label"] = lab
    if nl or el:
        g.graph["labelled"] = True  # graph statistics read structure: the evaluation notes that labels are not compared


def graphs_as_smiles(graphs: Sequence[nx.Graph], *, where: str = "samples") -> list:
    """Labelled graphs (atom symbols as node ``label``, bond names such as ``SINGLE`` / ``AROMATIC`` as edge ``label``,
    what ``graphdiff sample --out s.jsonl`` writes for a molecule model) as canonical SMILES; ``None`` where a graph
    is no valid molecule (strict, no correction: an unknown atom or bond, a self-loop, a wrong valence). Hydrogens
    are explicit exactly when the graphs hold ``H`` atoms. Graphs without labels at all are a one-line error."""
    from ..convert.networkx import networkx_to_arrays
    from ..convert.rdkit import graph_to_mol, mol_to_smiles
    from ..errors import GraphdiffError
    from ..schema import NO_EDGE, Schema

    labelled = [any("label" in d for _, d in g.nodes(data=True)) for g in graphs]
    if not any(labelled):
        raise DataError(f"{where}: unlabelled graphs cannot be scored as molecules; write the samples as .smi, or as "
                        ".jsonl with atom symbols in node_labels and bond names in edge_labels")
    explicit_h = any(d.get("label") == "H" for g in graphs for _, d in g.nodes(data=True))
    out = []
    for g in graphs:
        try:
            nl, edges, el = networkx_to_arrays(g)
            el = el or ["SINGLE"] * len(edges)
            atoms, bonds = sorted(set(nl)), sorted(set(el) - {NO_EDGE} | {"SINGLE"})
            schema = Schema(node_categories=tuple(atoms), edge_categories=(NO_EDGE, *bonds), kind="molecule",
                            explicit_h=explicit_h)  # checks that every label is an atom token
            et = [schema.edge_categories.index(x) for x in el]
            out.append(mol_to_smiles(graph_to_mol([atoms.index(x) for x in nl], edges, et, schema)))
        except (GraphdiffError, TypeError, ValueError):  # not a molecule: an invalid sample, as an empty SMILES line is
            out.append(None)
    return out


# ---- dataset-side inputs ---------------------------------------------------------------------------
def _split(ds, name: str):
    from ..data.base import dataset_label

    out = ds.split(name)
    if len(out) == 0:
        sizes = ", ".join(f"{k} {v}" for k, v in ds.split_sizes().items())
        raise DataError(f"dataset {dataset_label(ds)} has no {name!r} split (its splits: {sizes})")
    return out


# ---- evaluation ------------------------------------------------------------------------------------
def evaluate_graphs(generated: Sequence[nx.Graph], ds, *, protocol: str = "gdss", reference: str = "test",
                    bootstrap: int = 100, seed: int = 0, stats=None, workers: int = 1, subsets: int = 0,
                    metrics=None, novelty: str = "train") -> dict:
    """MMD (protocol) against the ``reference`` split, uniqueness / novelty (against the ``novelty`` split) and,
    where the dataset has a validity rule, V.U.N.; the fractions with 95% Wilson intervals (``intervals``).

    MMD intervals come from ``bootstrap`` resamples; ``subsets`` is accepted for symmetry with molecules and
    unused (the bootstrap already gives every MMD figure an interval)."""
    from .mmd import graph_mmd
    from .vun import validity_for_dataset, vun

    if metrics is not None:
        raise DataError("--metrics / metrics= names molecule metrics; graph datasets take --stats")
    if len(generated) == 0:
        raise DataError("no generated graphs to evaluate")
    ref = _split(ds, reference).to_networkx()
    train = _split(ds, novelty).to_networkx()
    t = time.perf_counter()
    result = {"kind": "graphs", "dataset": ds.name, "reference_split": reference, "novelty_split": novelty,
              "mmd": graph_mmd(generated, ref, protocol=protocol, stats=stats, bootstrap=bootstrap, seed=seed,
                               workers=workers)}
    validity = validity_for_dataset(ds.name.split("/")[-1])
    result["vun"] = v = vun(list(generated), train, validity)
    n = v["num_graphs"]
    result["intervals"] = {k: {"interval": wilson_interval(v[f"num_{k}"], n), "n": n, "method": "Wilson score, 95%"}
                           for k in ("valid", "unique", "novel", "unique_novel", "vun")
                           if isinstance(v.get(k), float) and n > 0}
    notes = []
    if len(generated) != len(ref):
        notes.append(f"{len(generated)} generated vs {len(ref)} reference graphs; published {protocol} figures use "
                     "as many samples as the reference split")
    if any(g.graph.get("labelled") or any("label" in d for _, d in g.nodes(data=True)) for g in generated[:50]):
        notes.append("the samples' node and edge labels are not compared: MMD, uniqueness and novelty are about "
                     "structure only")
    if notes:
        result["note"] = "; ".join(notes)
    result["seconds"] = round(time.perf_counter() - t, 3)
    return result


# the metrics a dataset's published protocol reports, where that is not every metric (``metrics=`` asks for others):
# MOSES (Polykovskiy et al. 2020; the DiGress / DeFoG MOSES tables) has no NSPDK, whose reference features over the
# 176k test molecules would be half of a first evaluation's time
PROTOCOL_METRICS = {"moses": ("validity", "uniqueness", "novelty", "fcd", "snn", "frag", "scaf", "intdiv", "filters",
                              "props")}


def evaluate_molecules(generated: Sequence[str | None], ds, *, reference: str = "test", bootstrap: int = 100,
                       seed: int = 0, metrics=None, workers: int | None = None, stats=None, subsets: int = 5,
                       cache: bool = True, novelty: str = "train") -> dict:
    """Molecule metrics of SMILES samples against the dataset's ``reference`` split (novelty against the
    ``novelty`` split, train by default).

    Fractions come with 95% Wilson intervals over their own denominators. With ``subsets=K`` (default 5; 0 turns
    it off) the metrics are also computed on K disjoint random subsets of the samples (seeded) and every figure
    gets a mean +- 1.96 sd/sqrt(K) interval (FCD on a subset is biased upward, so that interval describes the
    spread, not the full-set value).

    ``metrics``: names from :data:`graphdiff.metrics.molecules.ALL_METRICS`; default: the dataset's protocol
    (:data:`PROTOCOL_METRICS`, every metric for the others).

    The reference statistics and the canonical training set are computed once and kept in
    ``<processed dir>/metrics/`` (``cache=False``: in-process only); see
    :mod:`graphdiff.metrics.reference_stats`, :mod:`graphdiff.metrics.dataset_smiles` (which SMILES stand for a
    split) and :mod:`graphdiff.metrics.moses_stats` (MOSES statistics taken from the ``molsets`` wheel)."""
    from ..progress import stage
    from .dataset_smiles import split_smiles
    from .molecules import molecule_metrics, prepare_reference
    from .moses_stats import moses_provider
    from .reference_stats import PROGRESS_MIN

    if stats is not None:
        raise DataError("graph statistics (--stats) apply to graph datasets, not molecules")
    if len(generated) == 0:
        raise DataError("no generated molecules to evaluate")
    from ..checks import check_choice
    from .reference_stats import ALL_METRICS

    if metrics is None:
        metrics = PROTOCOL_METRICS.get(ds.name)
    else:
        metrics = tuple(metrics)
        for m in metrics:
            check_choice(m, ALL_METRICS, "metric")
    t = time.perf_counter()
    cache_dir = ds.processed_dir / "metrics" if cache else None
    inputs = {}
    for split in dict.fromkeys((reference, novelty)):
        inputs[split] = split_smiles(_split(ds, split), split, workers=workers)
        if len(inputs[split].smiles) >= PROGRESS_MIN:
            stage(f"{ds.name} {split} split: {len(inputs[split].smiles):,} molecules, {inputs[split].how}")
    ref_in, train_in = inputs[reference], inputs[novelty]
    provider = None
    if ds.name == "moses" and reference == "test":  # None unless the reference rows are the wheel's
        provider = moses_provider(getattr(ds, "subset", "test"), ref_in.smiles)
    ref = prepare_reference(ref_in.smiles, cache_dir=cache_dir, provider=provider, label=f"{ds.name} {reference}",
                            n_jobs=workers)
    train = train_in.smiles
    kw = {"cache_dir": cache_dir} if metrics is None else {"metrics": metrics, "cache_dir": cache_dir}
    if workers is not None:
        kw["n_jobs"] = workers
    memo: dict = {}  # per-molecule work shared with the subset runs
    res = molecule_metrics(list(generated), ref, train, _memo=memo, **kw)
    res = {"kind": "molecules", "dataset": ds.name, "reference_split": reference, "novelty_split": novelty, **res}
    res["settings"]["reference_smiles"] = ref_in.how
    res["settings"]["train_smiles"] = train_in.how
    res["settings"]["cache_dir"] = None if cache_dir is None else str(cache_dir)
    res["intervals"] = fraction_intervals(res)
    if subsets > 1 and len(generated) // subsets >= MIN_SUBSET:
        res["subset_intervals"] = subset_intervals(list(generated), ref, train, subsets, seed, {**kw, "_memo": memo})
    elif subsets > 1:
        res["subset_intervals"] = {"skipped": f"{subsets} subsets of {len(generated) // subsets} samples; intervals "
                                              f"of non-fractions need subsets of at least {MIN_SUBSET}"}
    res["seconds"] = round(time.perf_counter() - t, 3)
    return res


def wilson_interval(k: float, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval of a binomial fraction ``k / n`` (95% by default)."""
    if n <= 0:
        return (0.0, 0.0)
    p = k / n
    d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    h = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return (float(max(0.0, c - h)), float(min(1.0, c + h)))


# fraction -> the count it is taken over (see graphdiff.metrics.molecules for the definitions)
_DENOMINATORS = {"validity": "n_samples", "validity_strict": "n_samples", "validity_relaxed": "n_samples",
                 "validity_corrected": "n_samples", "validity_gdss_decoding": "n_samples", "uniqueness": "n_valid",
                 "novelty": "n_unique", "valid_unique_novel": "n_samples", "filters": "n_valid",
                 "valid_connected": "n_samples"}


def fraction_intervals(res: dict) -> dict:
    """95% Wilson intervals of the molecule fractions, each over its own denominator."""
    out = {}
    for key, denom in _DENOMINATORS.items():
        v, n = res.get(key), res.get(denom)
        if isinstance(v, float) and isinstance(n, int) and n > 0:
            out[key] = {"interval": wilson_interval(v * n, n), "n": n, "method": "Wilson score, 95%"}
    return out


# a subset interval needs subsets of this many samples (IntDiv of 1 molecule is 0, SNN of 2 is one pair)
MIN_SUBSET = 10
# metrics that are shares or similarities in [0, 1]; every other scalar molecule metric is a distance (>= 0)
UNIT_RANGE = ("snn", "frag", "scaf", "intdiv1", "intdiv2", "filters")


def subset_intervals(generated, ref, train, k: int, seed: int, kw: dict) -> dict:
    """Mean +- 1.96 sd / sqrt(k) of every scalar metric over ``k`` disjoint random subsets of the samples, cut to
    the metric's range (no negative distance, no similarity above 1)."""
    from .molecules import molecule_metrics

    perm = np.random.default_rng(seed).permutation(len(generated))
    parts = [p for p in np.array_split(perm, k) if len(p)]
    runs = [molecule_metrics([generated[i] for i in part], ref, train, **kw) for part in parts]
    out = {"method": f"{len(parts)} disjoint random subsets (seed {seed}), mean +- 1.96 sd/sqrt(k)",
           "subset_size": int(min(len(p) for p in parts))}
    for key, v in runs[0].items():
        vals = [r.get(key) for r in runs]
        if isinstance(v, float) and all(isinstance(x, float) for x in vals):
            m, sd = float(np.mean(vals)), float(np.std(vals, ddof=1)) if len(vals) > 1 else 0.0
            h = 1.96 * sd / np.sqrt(len(vals))
            hi = min(m + h, 1.0) if key in UNIT_RANGE or key in _DENOMINATORS else m + h
            out[key] = {"mean": m, "sd": sd, "interval": (max(m - h, 0.0), hi)}
    return out


def reference_words(res: dict, article: str = "") -> str:
    """What an evaluation scored against, in words: "the whole file (reference and novelty)" for a user's own file,
    else "split test" (with the novelty split when it is not train); with an ``article`` ("the "), in prose:
    "the test split"."""
    ref, novelty = res.get("reference_split", "test"), res.get("novelty_split", "train")
    if ref == novelty == "all":
        return "the whole file (reference and novelty)"
    if article:
        return f"{article}{ref} split" + (f", novelty against {article}{novelty} split" if novelty != "train" else "")
    return f"split {ref}" + (f", novelty against split {novelty}" if novelty != "train" else "")


def _no_protocol(protocol) -> None:
    if protocol is not None:
        raise DataError(f"protocol {protocol!r} (--protocol, graph MMD conventions) applies to graph datasets; "
                        "molecules are scored by their metrics (--metrics)")


def evaluate_samples(samples, dataset, *, root=None, protocol: str | None = None, reference: str | None = None,
                     bootstrap: int = 100, seed: int = 0, dataset_options: dict | None = None, **kw) -> dict:
    """Evaluate a sample file (or a list of SMILES / networkx graphs) against a dataset by name; ``.sdf`` / ``.xyz``
    files of 3D molecules go to :func:`graphdiff.metrics.evaluate3d.evaluate_samples_3d`.

    ``reference`` defaults to the test split of a registered dataset (novelty against its train split) and to the
    whole file of a user's own file (``split "all"``, novelty against the whole file too): a reference set given as
    a file is used whole, not the 10% its training split rule would keep for testing (``reference="test"``
    scores against that 10%, novelty against its train split). ``dataset_options`` go to the dataset's loader
    (``{"smiles_column": ...}``)."""
    from ..data import load_dataset
    from .evaluate3d import SAMPLE_SUFFIXES, evaluate_samples_3d

    if isinstance(samples, (str, os.PathLike)) and Path(samples).suffix.lower() in SAMPLE_SUFFIXES:
        _no_protocol(protocol)
        return evaluate_samples_3d(samples, dataset, root=root, reference=reference, seed=seed,
                                   dataset_options=dataset_options, **{k: v for k, v in kw.items() if k == "relax"})
    source = str(samples) if isinstance(samples, (str, os.PathLike)) else "samples"
    if isinstance(samples, (str, os.PathLike)):  # read first: a bad file fails before a dataset is built
        kind, samples = read_samples(samples)
    else:
        samples = list(samples)
        kind = "graphs" if samples and isinstance(samples[0], nx.Graph) else "smiles"
    if isinstance(dataset, os.PathLike):
        dataset = str(dataset)
    ds = load_dataset(dataset, root=root, **(dataset_options or {})) if isinstance(dataset, str) else dataset
    from .evaluate3d import reference_splits

    reference, novelty = reference_splits(ds, reference, kw.get("novelty", "train"))
    kw["novelty"] = novelty
    read_as = None
    if kind == "graphs" and ds.schema.kind == "molecule":  # molecules written as labelled graphs (sample --out .jsonl)
        samples, kind = graphs_as_smiles(samples, where=source), "smiles"
        read_as = "labelled graphs read as molecules (node labels = atoms, edge labels = bonds; strict validity)"
    if kind == "smiles":
        if ds.schema.kind != "molecule":
            from ..data.base import dataset_label

            raise DataError(f"SMILES samples need a molecule dataset; {dataset_label(ds)} holds graphs")
        _no_protocol(protocol)
        res = evaluate_molecules(samples, ds, reference=reference, bootstrap=bootstrap, seed=seed, **kw)
        if read_as:
            res["note"] = "; ".join(x for x in (res.get("note"), f"samples: {read_as}") if x)
        return res
    return evaluate_graphs(samples, ds, protocol=protocol or "gdss", reference=reference, bootstrap=bootstrap,
                           seed=seed, **kw)


def evaluate_reference(dataset, *, root=None, protocol: str | None = None, bootstrap: int = 100, seed: int = 0,
                       n_molecules: int | None = 10_000, **kw) -> dict:
    """The dataset's own train split evaluated against its test split ("data" row). Molecule datasets use a
    seeded random subset of ``n_molecules`` training molecules (all when ``None``)."""
    from ..data import load_dataset

    from .evaluate3d import evaluate_reference_3d, is_3d_dataset

    ds = load_dataset(dataset, root=root) if isinstance(dataset, str) else dataset
    if is_3d_dataset(ds) or ds.schema.kind == "molecule":
        _no_protocol(protocol)
    if is_3d_dataset(ds):
        return evaluate_reference_3d(ds, seed=seed, **{k: v for k, v in kw.items() if k == "relax"})
    train = _split(ds, "train")
    if ds.schema.kind == "molecule":
        smiles = dataset_smiles(train)
        if n_molecules is not None and n_molecules < len(smiles):
            pick = np.sort(np.random.default_rng(seed).choice(len(smiles), n_molecules, replace=False))
            smiles = [smiles[i] for i in pick]
        res = evaluate_molecules(smiles, ds, bootstrap=bootstrap, seed=seed, **kw)
        res["train_subset"] = {"size": len(smiles), "seed": seed}
    else:
        res = evaluate_graphs(train.to_networkx(), ds, protocol=protocol or "gdss", bootstrap=bootstrap, seed=seed,
                              **kw)
    res["generated"] = "train split (data row)"
    return res
