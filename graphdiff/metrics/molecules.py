"""Molecule metrics: pure functions over lists of generated samples (SMILES strings or RDKit molecules).

A sample is ``str`` (SMILES), an RDKit ``Mol`` (e.g. ``graph_to_mol(..., sanitize=False)``), or ``None`` / ``""``
for a sample that did not decode. Invalid samples are never dropped: they count in every denominator that says
"samples".

Validity (three named definitions, all always reported; :mod:`graphdiff.convert.validity` defines them):

- ``strict``: the whole sample sanitizes (for SMILES: ``Chem.MolFromSmiles(s)`` is not ``None`` and has atoms).
  Fragments are allowed. "Validity without correction" of GDSS / DiGress / MOSES tables.
- ``relaxed``: the largest fragment sanitizes.
- ``corrected``: :func:`~graphdiff.convert.validity.correct_valence` (GDSS's bond-order repair + largest
  fragment) yields a molecule.

``valid_connected`` (with ``validity="strict"``): the fraction of samples that are strictly valid *and* one
connected molecule (no ``.`` in the canonical SMILES).

``validity_gdss_decoding``: the fraction valid under GDSS's own decoding (:mod:`graphdiff.metrics.gdss_decoding`:
+1 charge on over-valent N, O, S while bonds are added), the figure behind GDSS's "validity w/o correction". It
needs the decoded graphs (RDKit molecules, ``to_mol(..., sanitize=False)``), so it is ``None`` for SMILES input.

A strictly valid sample is valid under the other two. ``validity=`` of :func:`molecule_metrics` picks which
molecule stands for a sample in every other metric: the whole molecule (``strict``, MOSES), the largest fragment
(``relaxed``) or the repaired one (``corrected``, GDSS computes FCD/NSPDK on these).

Definitions (MOSES ``moses/metrics`` unless said otherwise). "Valid" below = valid under the chosen definition,
canonical SMILES (RDKit, ``isomeric=False`` by default because graphs carry no stereo; pass ``isomeric=True`` to
canonicalise exactly as MOSES/GDSS do), duplicates kept:

- uniqueness = #distinct valid canonical SMILES / #valid samples (MOSES unique@k with k = #valid).
- novelty = #distinct valid not in the canonicalised training set / #distinct valid.
  ``valid_unique_novel`` = #distinct valid novel / #samples (V.U.N.).
- FCD: Frechet ChemNet Distance with the ``fcd`` package's ChemNet (weights shipped in the wheel, no download),
  on the canonical SMILES of the valid generated and valid reference molecules (duplicates kept), one-hot padded
  to 350 as ``fcd``/``fcd_torch`` do. GDSS and MOSES compute it the same way (through ``fcd_torch``).
- SNN: mean over generated molecules of the max Tanimoto similarity to a reference molecule (Morgan radius 2,
  1024 bits).
- Frag / Scaf: cosine similarity of BRICS-fragment counts / Bemis-Murcko scaffold counts (MOSES keeps scaffolds
  with at least ``scaffold_min_rings=2`` rings).
- IntDiv1 = 1 - mean over all ordered pairs (self-pairs included, as MOSES) of Tanimoto similarity;
  IntDiv2 = 1 - mean_i sqrt(mean_j T_ij^2) (MOSES ``p=2``).
- filters: fraction of valid generated molecules passing MOSES's MCF + PAINS + atom/charge/ring rules
  (:mod:`graphdiff.metrics.filters`; the result names the filter set used).
- properties QED, SA (RDKit Contrib sascorer), logP (Crippen), MW (``Descriptors.MolWt``): 1-D Wasserstein
  distance (scipy) between generated and reference values, and KL(reference || generated) of histograms on
  ``kl_bins=50`` equal-width bins spanning both sets, with one pseudo-count added to every bin of both.
- NSPDK: :mod:`graphdiff.metrics.nspdk` (GDSS protocol) between molecule graphs of valid generated and
  reference molecules.

A metric that cannot be computed (e.g. no valid molecule) is ``None`` and ``result["undefined"][name]`` says why;
no NaN is returned.

Speed: every per-molecule quantity is computed once per distinct canonical SMILES (multiplicities become weights)
in a ``fork`` process pool of ``n_jobs`` workers; ChemNet (on CPU) and the Tanimoto products run single-threaded
inside each process, so the work scales with processes and degrades gracefully on shared cores. The reference
side (features, ChemNet mean/covariance, NSPDK mean) and the canonical training set are cached in-process per
list (:func:`reference_statistics` returns the object explicitly; :func:`clear_caches` forgets them) and, with
``cache_dir``, on disk (:mod:`graphdiff.metrics.reference_stats`). Long reference computations report progress
on stderr (:mod:`graphdiff.progress`).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence

import numpy as np

from ..errors import DataError
from . import nspdk as _nspdk
from ._parallel import _n_jobs, _Runner
from .fcd import chemnet_activations, chemnet_stats, fcd, frechet_distance
from .mol_features import (  # noqa: F401  (_fingerprint re-exported: the per-molecule features live there)
    FP_BITS,
    FP_RADIUS,
    PROPERTIES,
    SCAFFOLD_MIN_RINGS,
    _features_chunk,
    _fingerprint,
    _wanted,
)
from .mol_validity import (
    VALIDITY_DEFINITIONS,
    _check_definition,
    _check_samples,
    _validity_chunk,
    canonical_valid,
    fraction_unique,
    fraction_valid_corrected,
    fraction_valid_relaxed,
    fraction_valid_strict,
    novelty,
    sample_validity,
)
from .reference_stats import (
    ALL_METRICS,
    CanonicalSet,
    ReferenceStats,
    _digest,
    clear_caches,
    fill_reference,
    prepare_reference,
    reference_statistics,
    train_set,
)
from .reference_stats import reference as _reference
from .similarity import (
    KL_BINS,
    KL_PSEUDOCOUNT,
    cosine_similarity_counts,
    internal_diversity,
    kl_histogram,
    nearest_similarity,
    snn,
)

__all__ = [
    "ALL_METRICS", "PROPERTIES", "VALIDITY_DEFINITIONS", "CanonicalSet", "ReferenceStats", "canonical_valid",
    "chemnet_activations", "chemnet_stats", "clear_caches", "cosine_similarity_counts", "fcd", "fraction_unique",
    "fraction_valid_corrected", "fraction_valid_relaxed", "fraction_valid_strict", "frechet_distance",
    "internal_diversity", "kl_histogram", "molecule_metrics", "novelty", "prepare_reference",
    "reference_statistics", "sample_validity", "snn",
]



# ---------------------------------------------------------------------------------------------------------------
def molecule_metrics(
    generated: Sequence,
    reference: Sequence[str] | ReferenceStats,
    train: Sequence[str] | set[str] | None = None,
    *,
    metrics: Sequence[str] = ALL_METRICS,
    validity: str = "strict",
    isomeric: bool = False,
    n_jobs: int | None = None,
    device: str | None = None,
    nspdk_reference: Sequence | None = None,
    scaffold_min_rings: int = SCAFFOLD_MIN_RINGS,
    kl_bins: int = KL_BINS,
    cache_dir=None,
    _memo: dict | None = None,
) -> dict:
    """All molecule metrics of ``generated`` against ``reference`` (novelty against ``train``).

    Args:
        generated: SMILES strings, RDKit molecules or ``None``/"" (invalid) — one entry per sample.
        reference: reference SMILES (e.g. the test split) or a :func:`reference_statistics` result. Reference
            statistics are cached in-process per reference list, so repeated evaluations pay for them once.
        train: training SMILES (canonicalised here, cached) or a set of already-canonical SMILES.
        metrics: any of :data:`ALL_METRICS`; validity and uniqueness are always computed.
        validity: which definition (strict / relaxed / corrected) selects the molecules every other metric uses.
        isomeric: canonical SMILES with stereo (MOSES/GDSS canonicalise with stereo; graphs have none).
        n_jobs: worker processes for RDKit work (default: all available cores).
        device: torch device for ChemNet (default: cuda if available).
        nspdk_reference: networkx graphs to use as the NSPDK reference instead of graphs built from
            ``reference`` (e.g. GDSS's ``qm9_test_nx.pkl``).
        cache_dir: folder for the on-disk cache of the reference statistics and the canonical training set
            (:mod:`graphdiff.metrics.reference_stats`); ``None`` keeps them in-process only.
        _memo: a dict shared by calls on subsets of the same samples (per-sample validity, per-molecule features,
            ChemNet rows and SNN maxima are then computed once); the figures do not change.

    Returns:
        A dict of figures (``None`` + a reason in ``undefined`` where not computable), ``props`` per property,
        ``settings`` (every choice that changes a number) and ``timings_s``.
    """
    t_all = time.perf_counter()
    _check_definition(validity)
    metrics = set(metrics)
    unknown = metrics - set(ALL_METRICS)
    if unknown:
        raise DataError(f"unknown molecule metric(s) {sorted(unknown)}; choose from {', '.join(ALL_METRICS)}")
    samples = _check_samples(generated)
    if "filters" in metrics:  # load the SMARTS / SA table before worker processes fork
        from .filters import filter_set_name

        filter_set_name()
    if "props" in metrics:
        from .sascore import _scorer

        _scorer()
    timings: dict[str, float] = {}
    undefined: dict[str, str] = {}
    res: dict = {}
    runner = _Runner(_n_jobs(n_jobs))
    try:
        t = time.perf_counter()
        flags = _memo_map(_memo, ("flags", validity, isomeric), samples,
                          lambda items: runner.map(_validity_chunk, items, validity, isomeric))
        timings["validity"] = round(time.perf_counter() - t, 3)
        n = len(samples)
        k = VALIDITY_DEFINITIONS.index(validity)
        can = [f[3] if f[k] else None for f in flags]
        valid = [c for c in can if c]
        res["n_samples"] = n
        res["n_valid"] = len(valid)
        res["validity"] = len(valid) / n
        for j, name in enumerate(VALIDITY_DEFINITIONS):
            res[f"validity_{name}"] = sum(f[j] for f in flags) / n
        if any(isinstance(x, str) for x in samples):
            res["validity_gdss_decoding"] = None
            undefined["validity_gdss_decoding"] = "needs the decoded graphs (RDKit molecules), not SMILES"
        else:
            from .gdss_decoding import gdss_decoding_validity

            res["validity_gdss_decoding"] = gdss_decoding_validity(samples)
        # strictly valid AND one fragment: strict validity accepts "C.C.O" (three separate atoms), which a
        # generator that leaves nodes unconnected scores well on; this says how much of it is whole molecules
        if validity == "strict":
            res["valid_connected"] = sum(1 for c in can if c and "." not in c) / n
        else:
            res["valid_connected"] = None
            undefined["valid_connected"] = "computed with validity='strict' only"
        cnt = Counter(valid)
        uniq = list(cnt)
        w = np.fromiter(cnt.values(), dtype=np.int64) if cnt else np.zeros(0, dtype=np.int64)
        res["n_unique"] = len(uniq)
        res["uniqueness"] = len(uniq) / len(valid) if valid else None
        if not valid:
            undefined["uniqueness"] = "no valid molecule"

        if "novelty" in metrics:
            if train is None:
                undefined["novelty"] = "no training set given"
                res["novelty"] = res["valid_unique_novel"] = None
            elif not uniq:
                undefined["novelty"] = "no valid molecule"
                res["novelty"] = None
                res["valid_unique_novel"] = 0.0
            else:
                t = time.perf_counter()
                tr = train_set(train, isomeric, runner, cache_dir)
                n_novel = sum(1 for s in uniq if s not in tr)
                res["novelty"] = n_novel / len(uniq)
                res["valid_unique_novel"] = n_novel / n
                timings["novelty"] = round(time.perf_counter() - t, 3)

        ref = _reference(reference, isomeric, scaffold_min_rings, runner, cache_dir=cache_dir)
        want = _wanted(metrics)
        ref_want = want - {"filters"}
        if nspdk_reference is not None:
            ref_want.discard("nspdk")
        if not uniq:
            for m in ("fcd", "nspdk", "snn", "frag", "scaf", "intdiv", "filters", "props"):
                if m in metrics:
                    undefined[m] = "no valid molecule"
                    for key in {"intdiv": ("intdiv1", "intdiv2")}.get(m, (m,)):
                        res[key] = None
        else:
            fill_reference(ref, ref_want, runner, "fcd" in metrics, device, timings)
            t = time.perf_counter()
            feats = _memo_map(_memo, ("feats", frozenset(want), scaffold_min_rings), uniq,
                              lambda items: runner.map(_features_chunk, items, want, scaffold_min_rings)) \
                if want else [None] * len(uniq)
            timings["generated_features"] = round(time.perf_counter() - t, 3)
            ok = [i for i, f in enumerate(feats) if f is not None] if want else list(range(len(uniq)))
            n_bad = len(uniq) - len(ok)
            if n_bad:
                undefined["features"] = f"{n_bad} distinct valid molecule(s) whose canonical SMILES does not " \
                                        "re-parse were left out of the distribution metrics"
            wo = w[ok].astype(np.float64)
            _distribution_metrics(res, undefined, timings, metrics, feats, ok, wo, uniq, w, ref, device,
                                  nspdk_reference, kl_bins, runner, _memo)
    finally:
        runner.close()

    from .filters import filter_set_name
    from .sascore import sa_source

    res["undefined"] = undefined
    res["settings"] = {
        "n_samples": len(samples),
        "validity_definition": validity,
        "validity_note": "strict = sanitizes as a whole (no correction); relaxed = largest fragment sanitizes; "
                         "corrected = GDSS valence correction + largest fragment; gdss_decoding = GDSS's decoding "
                         "(+1 charge on over-valent N, O, S as bonds are added), valence check only",
        "metrics": sorted(metrics | {"validity", "uniqueness"}),
        "canonical_smiles": f"RDKit MolToSmiles, isomeric={isomeric}",
        "uniqueness_denominator": "valid samples",
        "novelty_denominator": "distinct valid molecules",
        "valid_unique_novel_denominator": "all samples",
        "n_reference": ref.n,
        "n_reference_invalid": ref.n_invalid,
        "n_reference_distinct": len(ref.smiles),
        "n_train": None if train is None else getattr(train, "n_source", len(train)),
        "fingerprint": f"Morgan radius {FP_RADIUS}, {FP_BITS} bits",
        "intdiv": "MOSES: 1 - mean Tanimoto over all ordered pairs incl. self-pairs; p=2: 1 - mean_i sqrt(mean_j T^2)",
        "scaffold_min_rings": scaffold_min_rings,
        "filter_set": filter_set_name() if "filters" in metrics else None,
        "sa_scorer": sa_source() if "props" in metrics else None,
        "property_distance": f"scipy wasserstein_distance; KL(ref||gen) on {kl_bins} equal-width bins over both "
                             f"sets, +{KL_PSEUDOCOUNT:g} pseudo-count per bin, natural log",
        "fcd": "fcd package ChemNet v0.13, one-hot pad 350, canonical SMILES of valid molecules with duplicates",
        "nspdk": (f"EDeN-equivalent NSPDK r={_nspdk.RADIUS} d={_nspdk.DISTANCE} nbits={_nspdk.NBITS}, linear "
                  "kernel MMD^2; node label = atom symbol, edge label = int bond order (aromatic -> 1); reference "
                  + ("graphs given by nspdk_reference" if nspdk_reference is not None else
                     "graphs built from the reference canonical SMILES")),
        "n_jobs": runner.n_jobs,
        "reference_statistics": dict(ref.sources),
    }
    timings["total"] = round(time.perf_counter() - t_all, 3)
    res["timings_s"] = timings
    return res


def _memo_map(memo: dict | None, key, items: list, compute) -> list:
    """``compute(items)`` with results remembered per item in ``memo[key]`` (strings only; others recomputed)."""
    if memo is None:
        return compute(items)
    seen = memo.setdefault(key, {})
    todo = list(dict.fromkeys(x for x in items if isinstance(x, str) and x not in seen))
    if todo:
        seen.update(zip(todo, compute(todo)))
    other = [x for x in items if not isinstance(x, str)]
    extra = iter(compute(other)) if other else iter(())
    return [seen[x] if isinstance(x, str) else next(extra) for x in items]


def _distribution_metrics(res, undefined, timings, metrics, feats, ok, wo, uniq, w, ref, device, nspdk_reference,
                          kl_bins, runner, memo):
    from scipy.stats import wasserstein_distance

    if "fcd" in metrics:
        t = time.perf_counter()
        if int(w.sum()) < 2:
            res["fcd"] = None
            undefined["fcd"] = "fewer than 2 valid molecules"
        elif int(ref.counts.sum()) < 2:
            res["fcd"] = None
            undefined["fcd"] = "fewer than 2 valid reference molecules"
        else:
            act = np.stack(_memo_map(memo, ("chemnet",), uniq,
                                     lambda items: list(chemnet_activations(items, device=device, _runner=runner))))
            act = act.astype(np.float64)  # chemnet_stats on rows computed once per molecule
            gen = (np.average(act, axis=0, weights=w), np.cov(act, rowvar=False, fweights=w))
            res["fcd"] = frechet_distance(gen, ref.chemnet)
        timings["fcd_generated"] = round(time.perf_counter() - t, 3)
    if not ok:
        for m in ("nspdk", "snn", "frag", "scaf", "intdiv", "filters", "props"):
            if m in metrics:
                undefined[m] = "no valid molecule with a re-parsable canonical SMILES"
        return
    if metrics & {"snn", "intdiv"}:
        gfps = [feats[i].fp for i in ok]
        if "snn" in metrics:
            t = time.perf_counter()
            fp_of = {uniq[i]: feats[i].fp for i in ok}
            best = _memo_map(memo, ("snn", ref.key), [uniq[i] for i in ok],
                             lambda items: list(nearest_similarity([fp_of[x] for x in items], ref.fps, _runner=runner)))
            res["snn"] = float(np.average(np.asarray(best), weights=wo))
            timings["snn"] = round(time.perf_counter() - t, 3)
        if "intdiv" in metrics:
            t = time.perf_counter()
            res["intdiv1"], res["intdiv2"] = internal_diversity(gfps, wo, _runner=runner)
            timings["intdiv"] = round(time.perf_counter() - t, 3)
    if "frag" in metrics:
        c = Counter()
        for j, i in enumerate(ok):
            for fr in feats[i].frags:
                c[fr] += wo[j]
        res["frag"] = cosine_similarity_counts(c, ref.frag)
        if res["frag"] is None:
            undefined["frag"] = "no BRICS fragments on one side"
    if "scaf" in metrics:
        c = Counter()
        for j, i in enumerate(ok):
            if feats[i].scaf is not None:
                c[feats[i].scaf] += wo[j]
        res["scaf"] = cosine_similarity_counts(c, ref.scaf)
        if res["scaf"] is None:
            undefined["scaf"] = (f"no scaffold with >= {ref.scaffold_min_rings} rings in the "
                                 + ("generated set" if not c else "reference set"))
    if "filters" in metrics:
        res["filters"] = float(np.average([feats[i].filt for i in ok], weights=wo))
    if "props" in metrics:
        vals = np.array([feats[i].props for i in ok], dtype=np.float64).reshape(-1, len(PROPERTIES))
        props = {}
        for k, p in enumerate(PROPERTIES):
            rv, rw = ref.props[p]
            rm = np.isfinite(rv)
            gv = vals[:, k]
            gm = np.isfinite(gv)
            if not gm.any() or not rm.any():
                props[p] = None
                undefined[f"props.{p}"] = "no finite value on one side"
                continue
            props[p] = {
                "wasserstein": float(wasserstein_distance(gv[gm], rv[rm], wo[gm], rw[rm])),
                "kl": kl_histogram(rv[rm], gv[gm], rw[rm], wo[gm], bins=kl_bins),
                "mean": float(np.average(gv[gm], weights=wo[gm])),
                "reference_mean": float(np.average(rv[rm], weights=rw[rm])),
            }
        res["props"] = props
    if "nspdk" in metrics:
        t = time.perf_counter()
        gmean = _nspdk.nspdk_mean([feats[i].nspdk for i in ok], wo)
        if nspdk_reference is not None:
            key = _digest([repr(sorted(g.nodes(data="label"))) + repr(sorted(g.edges(data="label")))
                           for g in nspdk_reference])
            if ref.nspdk_graphs_key != key:
                graphs = [g for g in nspdk_reference if g.number_of_nodes() > 0]
                if not graphs:
                    raise DataError("nspdk_reference: no non-empty graph")
                ref.nspdk_graphs_mean = _nspdk.nspdk_mean(_nspdk.graph_features(graphs, n_jobs=runner.n_jobs))
                ref.nspdk_graphs_key = key
            res["nspdk"] = _nspdk.mmd_from_means(gmean, ref.nspdk_graphs_mean)
        else:
            res["nspdk"] = _nspdk.mmd_from_means(gmean, ref.nspdk_mean)
        timings["nspdk"] = round(time.perf_counter() - t, 3)
