"""The reference side of the molecule metrics: canonical reference set, its statistics, the canonical training set.

Everything here is computed once per reference (or training) list and kept in-process (:func:`clear_caches`
forgets it). With a ``cache_dir`` the results are also stored on disk, so that a later process loads them instead
of recomputing them: reference statistics go to ``<cache_dir>/reference-<key>/<part>.npz`` and canonical
training sets to ``<cache_dir>/train-<key>.txt``. ``<key>`` hashes the input list together with every setting
that changes a number (:func:`protocol_settings`: RDKit and ``fcd`` versions, fingerprint, scaffold rule, NSPDK
parameters, ...), so a changed setting or list reads or writes another entry and never a stale one. Files are
written atomically; an unreadable file is recomputed.

Parts of a reference entry: ``base`` (distinct canonical SMILES and their multiplicities), ``fp`` (Morgan
fingerprints), ``frag`` / ``scaf`` (BRICS fragment and scaffold counts), ``props`` (QED, SA, logP, MW),
``nspdk`` (mean NSPDK feature vector), ``chemnet`` (mean and covariance of ChemNet activations). Each part is
computed (or loaded) only when a requested metric needs it. A ``provider`` may supply per-molecule values
(fingerprints, some properties) for some of the molecules (:class:`KnownFeatures`,
:mod:`graphdiff.metrics.moses_stats`); the rest is computed. ``ReferenceStats.sources`` records where every part
came from.
"""

from __future__ import annotations

import hashlib
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import DataError
from ..progress import progress, stage
from . import nspdk as _nspdk
from ._parallel import _n_jobs, _Runner
from .fcd import FCD_PAD, chemnet_stats
from .mol_features import FP_BITS, FP_RADIUS, PROPERTIES, SCAFFOLD_MIN_RINGS, _canon_chunk, _features_chunk, _wanted
from .mol_validity import _check_samples
from .reference_store import DiskParts, _atomic_write, _join, _split, part_arrays, set_part

ALL_METRICS = ("validity", "uniqueness", "novelty", "fcd", "nspdk", "snn", "frag", "scaf", "intdiv", "filters",
               "props")

CACHE_FORMAT = 1
PARTS = ("fp", "frag", "scaf", "props", "nspdk", "chemnet")
PROGRESS_MIN = 5000  # lists shorter than this are processed without progress lines
_CACHE_SIZE = 4
_REF_BLOCK = 20_000  # reference molecules featurised at a time
_PROGRESS_CHUNK = 20_000  # canonicalisation work items per progress update


def protocol_settings(isomeric: bool, scaffold_min_rings: int) -> dict:
    """Every setting that changes a reference statistic (the disk cache key hashes it)."""
    import rdkit

    try:
        from importlib.metadata import version

        fcd_version = version("fcd")
    except Exception:  # not installed: FCD will fail later with its own error
        fcd_version = None
    return {"format": CACHE_FORMAT, "rdkit": rdkit.__version__, "canonical_smiles_isomeric": bool(isomeric),
            "fingerprint": f"Morgan radius {FP_RADIUS}, {FP_BITS} bits", "scaffold_min_rings": int(scaffold_min_rings),
            "properties": list(PROPERTIES), "sa": "RDKit Contrib sascorer",
            "nspdk": [_nspdk.RADIUS, _nspdk.DISTANCE, _nspdk.NBITS], "fcd": [fcd_version, FCD_PAD]}


def _digest(items: Iterable, *extra) -> str:
    h = hashlib.sha1()
    for x in extra:
        h.update(repr(x).encode())
        h.update(b"\x01")
    for s in items:
        h.update(s.encode() if isinstance(s, str) else b"\x00")
        h.update(b"\n")
    return h.hexdigest()


def _remember(cache: OrderedDict, key, value):
    cache[key] = value
    cache.move_to_end(key)
    while len(cache) > _CACHE_SIZE:
        cache.popitem(last=False)
    return value


@dataclass
class ReferenceStats:
    """Everything the metrics need from a reference set; computed lazily and cached per reference list."""

    key: str
    n: int
    n_invalid: int
    smiles: list[str]  # distinct canonical SMILES of the valid reference molecules
    counts: np.ndarray
    isomeric: bool
    scaffold_min_rings: int
    want: set = field(default_factory=set)
    fps: list | None = None  # np.packbits rows
    frag: Counter | None = None
    scaf: Counter | None = None
    props: dict | None = None
    nspdk_mean: np.ndarray | None = None
    chemnet: tuple | None = None
    nspdk_graphs_key: str | None = None
    nspdk_graphs_mean: np.ndarray | None = None
    disk: DiskParts | None = None
    provider: Callable | None = None  # provider(stats) -> KnownFeatures or None
    sources: dict = field(default_factory=dict)  # part -> where it came from
    label: str = "reference"

    def has(self, part: str) -> bool:
        return self.chemnet is not None if part == "chemnet" else part in self.want


_REF_CACHE: OrderedDict[str, ReferenceStats] = OrderedDict()
_TRAIN_CACHE: OrderedDict[str, frozenset] = OrderedDict()


def clear_caches() -> None:
    """Forget the in-process reference statistics and canonical training sets (disk caches stay)."""
    _REF_CACHE.clear()
    _TRAIN_CACHE.clear()


class CanonicalSet(frozenset):
    """A set of canonical SMILES that remembers how many molecules it was made from (``n_source``)."""

    n_source: int = 0

    def __new__(cls, items=(), n_source: int | None = None):
        obj = super().__new__(cls, items)
        obj.n_source = len(obj) if n_source is None else int(n_source)
        return obj


def reference(ref, isomeric: bool, scaffold_min_rings: int, runner: _Runner, *, canonical: bool = False,
              cache_dir=None, provider: Callable | None = None, label: str = "reference") -> ReferenceStats:
    """The :class:`ReferenceStats` of a reference list (canonicalised here unless ``canonical``)."""
    if isinstance(ref, ReferenceStats):
        return ref
    ref = _check_samples(ref, "reference")
    if any(not isinstance(s, (str, type(None))) for s in ref):
        raise DataError("reference: expected SMILES strings")
    settings = protocol_settings(isomeric, scaffold_min_rings)
    key = _digest(ref, sorted(settings.items()), canonical)
    if key in _REF_CACHE:
        _REF_CACHE.move_to_end(key)
        st = _REF_CACHE[key]
        st.provider = st.provider or provider
        return st
    disk = DiskParts(Path(cache_dir) / f"reference-{key[:20]}", settings) if cache_dir is not None else None
    base = disk.load("base") if disk is not None else None
    if base is not None:
        smiles, counts = _split(base["smiles"]), base["counts"]
        n_invalid = int(base["n_invalid"])
        source = "disk cache"
    else:
        if canonical:
            can = [s if s else None for s in ref]
        else:
            if len(ref) >= PROGRESS_MIN:
                stage(f"canonicalising {len(ref):,} {label} SMILES")
            with progress(total=len(ref), desc=f"{label} canonical SMILES", unit="mol",
                          disable=len(ref) < PROGRESS_MIN) as bar:
                can = runner.map(_canon_chunk, ref, isomeric, bar=bar, chunk=_PROGRESS_CHUNK)
        cnt = Counter(c for c in can if c)
        smiles, counts = list(cnt), np.fromiter(cnt.values(), dtype=np.int64, count=len(cnt))
        n_invalid = len(ref) - int(counts.sum())
        source = "given canonical" if canonical else "computed"
        if disk is not None and smiles:
            disk.save("base", source, smiles=_join(smiles), counts=counts, n_invalid=np.int64(n_invalid))
    if not smiles:
        raise DataError("reference: no valid molecule")
    st = ReferenceStats(key=key, n=len(ref), n_invalid=n_invalid, smiles=smiles, counts=counts, isomeric=isomeric,
                        scaffold_min_rings=scaffold_min_rings, disk=disk, provider=provider, label=label)
    st.sources["base"] = source
    return _remember(_REF_CACHE, key, st)


def prepare_reference(reference_smiles: Sequence[str], *, isomeric: bool = False,
                      scaffold_min_rings: int = SCAFFOLD_MIN_RINGS, canonical: bool = False, cache_dir=None,
                      provider: Callable | None = None, label: str = "reference",
                      n_jobs: int | None = None) -> ReferenceStats:
    """The canonical reference set only; its statistics are filled in (or loaded) when a metric needs them.

    ``canonical=True`` takes the strings as canonical SMILES already (no RDKit pass); ``cache_dir`` stores and
    reuses everything on disk (see the module docstring); ``provider(stats)`` may return
    :class:`KnownFeatures` for some molecules; ``label`` names the set in progress lines."""
    runner = _Runner(_n_jobs(n_jobs))
    try:
        return reference(reference_smiles, isomeric, scaffold_min_rings, runner, canonical=canonical,
                         cache_dir=cache_dir, provider=provider, label=label)
    finally:
        runner.close()


def reference_statistics(reference_smiles: Sequence[str], *, metrics=None, isomeric: bool = False,
                         scaffold_min_rings: int = SCAFFOLD_MIN_RINGS, n_jobs: int | None = None,
                         device: str | None = None, canonical: bool = False, cache_dir=None,
                         provider: Callable | None = None, label: str = "reference") -> ReferenceStats:
    """Precompute (and cache) the reference side of ``metrics``; pass the result as ``reference=`` later.

    ``canonical=True`` takes the strings as canonical SMILES already (no RDKit pass); ``cache_dir`` stores and
    reuses the statistics on disk (see the module docstring); ``provider`` may supply per-molecule values."""
    metrics = ALL_METRICS if metrics is None else metrics
    runner = _Runner(_n_jobs(n_jobs))
    try:
        st = reference(reference_smiles, isomeric, scaffold_min_rings, runner, canonical=canonical,
                       cache_dir=cache_dir, provider=provider, label=label)
        fill_reference(st, _wanted(set(metrics)) - {"filters"}, runner, "fcd" in metrics, device, {})
    finally:
        runner.close()
    return st


@dataclass
class KnownFeatures:
    """Per-molecule values of some reference molecules, supplied instead of computed (rows follow
    ``ReferenceStats.smiles``; ``known[i]`` says whether molecule ``i``'s values are given).

    ``fps``: packed fingerprints (:func:`~graphdiff.metrics.mol_features._fingerprint` layout); ``props``: the
    :data:`~graphdiff.metrics.mol_features.PROPERTIES` columns, NaN in a column that is not supplied (computed
    for every molecule then); ``source``: recorded in ``ReferenceStats.sources``. ``chemnet``: ``(mu, sigma)``
    of the ChemNet activations of the whole reference, used instead of computing them (``chemnet_source`` says
    where they come from)."""

    known: np.ndarray
    fps: np.ndarray | None
    props: np.ndarray | None
    source: str
    chemnet: tuple | None = None
    chemnet_source: str = ""

    def given_props(self) -> list[int]:
        """Columns of ``props`` that are supplied (not NaN) for every known molecule."""
        if self.props is None or not self.known.any():
            return []
        rows = self.props[self.known]
        return [k for k in range(rows.shape[1]) if not np.isnan(rows[:, k]).any()]


def _take_stored(st: ReferenceStats, parts: set, timings: dict) -> set:
    """Install the parts the disk cache holds; returns those still missing."""
    left = set(parts)
    for part in sorted(parts):
        t = time.perf_counter()
        got = st.disk.load(part) if st.disk is not None else None
        if got is None:
            continue
        source = _split(got.pop("source"))[0] if "source" in got else "unknown"
        set_part(st, part, got)
        st.sources[part] = f"disk cache ({source})"
        timings[f"reference_{part}_loaded"] = round(time.perf_counter() - t, 3)
        left.discard(part)
    return left


def fill_reference(st: ReferenceStats, want: set, runner: _Runner, need_fcd: bool, device, timings: dict):
    """Make sure the parts in ``want`` (and ChemNet statistics when ``need_fcd``) are present."""
    missing = {p for p in want if not st.has(p)}
    if need_fcd and st.chemnet is None and int(st.counts.sum()) >= 2:
        missing.add("chemnet")
    if not missing:
        return
    missing = _take_stored(st, missing, timings)
    feats_missing = missing - {"chemnet"}
    big = len(st.smiles) >= PROGRESS_MIN
    known = None
    if st.provider is not None and (feats_missing & {"fp", "props"} or "chemnet" in missing):
        t = time.perf_counter()
        known = st.provider(st)
        timings["reference_provider"] = round(time.perf_counter() - t, 3)
    if feats_missing:
        t = time.perf_counter()
        given = known if feats_missing & {"fp", "props"} else None
        if big:
            stage(f"computing {st.label} statistics ({', '.join(sorted(feats_missing))}) of {len(st.smiles):,} "
                  f"distinct molecules" + (f"; fingerprints and supplied properties of {int(given.known.sum()):,} "
                                           f"of them from {given.source}" if given is not None else ""))
        _compute_features(st, feats_missing, runner, big, given)
        for part in sorted(feats_missing):
            uses_known = given is not None and part in ("fp", "props") and given.known.any()
            st.sources[part] = f"computed, with values from {given.source}" if uses_known else "computed"
            if st.disk is not None and not (part == "nspdk" and st.nspdk_mean is None):
                st.disk.save(part, st.sources[part], **part_arrays(st, part))
        timings["reference_features"] = round(time.perf_counter() - t, 3)
    if "chemnet" in missing and known is not None and known.chemnet is not None:
        st.chemnet = tuple(np.asarray(a, dtype=np.float64) for a in known.chemnet)
        st.sources["chemnet"] = known.chemnet_source
        if st.disk is not None:
            st.disk.save("chemnet", known.chemnet_source, **part_arrays(st, "chemnet"))
    elif "chemnet" in missing:
        t = time.perf_counter()
        if big:
            stage(f"computing {st.label} ChemNet activations of {len(st.smiles):,} distinct molecules")
        with progress(total=len(st.smiles), desc=f"{st.label} ChemNet", unit="mol", disable=not big) as bar:
            st.chemnet = chemnet_stats(st.smiles, st.counts, device=device, _runner=runner, _bar=bar)
        st.sources["chemnet"] = "computed"
        if st.disk is not None:
            st.disk.save("chemnet", "computed", **part_arrays(st, "chemnet"))
        timings["fcd_reference_chemnet"] = round(time.perf_counter() - t, 3)


def _block_features(st: ReferenceStats, lo: int, hi: int, missing: set, runner: _Runner, bar,
                    known: KnownFeatures | None) -> list:
    """Features of molecules ``lo:hi``; values ``known`` supplies are filled in instead of computed."""
    items = st.smiles[lo:hi]
    if known is None:
        return runner.map(_features_chunk, items, missing, st.scaffold_min_rings, bar=bar)
    given = known.given_props() if "props" in missing else []
    short = set(missing)
    if "fp" in missing and known.fps is not None:
        short.discard("fp")
    if "props" in missing and given:
        short.discard("props")
        short.add("sa" if given == [0, 2, 3] else "props")
    mask = known.known[lo:hi]
    full_idx, short_idx = np.flatnonzero(~mask), np.flatnonzero(mask)
    feats: list = [None] * len(items)
    for idx, want in ((full_idx, missing), (short_idx, short)):
        if len(idx):
            for j, f in zip(idx, runner.map(_features_chunk, [items[j] for j in idx], want, st.scaffold_min_rings,
                                            bar=bar)):
                feats[j] = f
    for j in short_idx:
        f = feats[j]
        if f is None:
            continue
        i = lo + j
        if "fp" in missing and known.fps is not None:
            f.fp = known.fps[i]
        if "props" in missing and given:
            vals = known.props[i].copy()
            if f.props is not None:  # not every column supplied: computed ones fill the gaps
                vals = np.where(np.isnan(vals), np.asarray(f.props, dtype=np.float64), vals)
            else:
                vals[1] = f.sa
            f.props = tuple(float(v) for v in vals)
    return feats


def _compute_features(st: ReferenceStats, missing: set, runner: _Runner, big: bool,
                      known: KnownFeatures | None = None) -> None:
    # Blocks bound memory: per-molecule NSPDK feature dicts are large, so only running sums are kept
    # (a 176k-molecule MOSES reference held at once needs tens of GB).
    fps, frag, scaf, props, props_w = [], Counter(), Counter(), [], []
    nspdk_sum, nspdk_w = None, 0.0
    with progress(total=len(st.smiles), desc=f"{st.label} features", unit="mol", disable=not big) as bar:
        for lo in range(0, len(st.smiles), _REF_BLOCK):
            feats = _block_features(st, lo, lo + _REF_BLOCK, missing, runner, bar, known)
            w = st.counts[lo:lo + _REF_BLOCK]
            ok = [i for i, f in enumerate(feats) if f is not None]
            if "fp" in missing:
                fps.extend(feats[i].fp for i in ok)
            for i in ok:
                if "frag" in missing:
                    for fr in feats[i].frags:
                        frag[fr] += int(w[i])
                if "scaf" in missing and feats[i].scaf is not None:
                    scaf[feats[i].scaf] += int(w[i])
            if "props" in missing:
                props.extend(feats[i].props for i in ok)
                props_w.extend(w[ok].tolist())
            if "nspdk" in missing and ok:
                bw = float(w[ok].sum())
                part = _nspdk.nspdk_mean([feats[i].nspdk for i in ok], w[ok]) * bw
                nspdk_sum = part if nspdk_sum is None else nspdk_sum + part
                nspdk_w += bw
            del feats
    if "fp" in missing:
        st.fps = fps
    if "frag" in missing:
        st.frag = frag
    if "scaf" in missing:
        st.scaf = scaf
    if "props" in missing:
        vals = np.array(props, dtype=np.float64).reshape(-1, len(PROPERTIES))
        st.props = {p: (vals[:, k], np.asarray(props_w, dtype=np.float64)) for k, p in enumerate(PROPERTIES)}
    if "nspdk" in missing and nspdk_sum is not None:
        st.nspdk_mean = nspdk_sum / nspdk_w
    st.want |= missing


def train_set(train, isomeric: bool, runner: _Runner, cache_dir=None) -> frozenset:
    """The canonical SMILES of a training list (a set is taken as canonical already), cached in-process and,
    with ``cache_dir``, on disk as ``train-<key>.txt``."""
    if isinstance(train, (set, frozenset)):
        return train if isinstance(train, CanonicalSet) else CanonicalSet(train)
    tr = list(train)
    settings = protocol_settings(isomeric, SCAFFOLD_MIN_RINGS)
    key = _digest(tr, isomeric, settings["rdkit"], CACHE_FORMAT)
    if key in _TRAIN_CACHE:
        _TRAIN_CACHE.move_to_end(key)
        return _TRAIN_CACHE[key]
    path = Path(cache_dir) / f"train-{key[:20]}.txt" if cache_dir is not None else None
    if path is not None and path.is_file():
        text = path.read_text(encoding="utf-8")
        return _remember(_TRAIN_CACHE, key, CanonicalSet(text.split("\n") if text else [], n_source=len(tr)))
    big = len(tr) >= PROGRESS_MIN
    if big:
        stage(f"canonicalising {len(tr):,} training SMILES (novelty)")
    with progress(total=len(tr), desc="training canonical SMILES", unit="mol", disable=not big) as bar:
        can = runner.map(_canon_chunk, tr, isomeric, bar=bar, chunk=_PROGRESS_CHUNK)
    out = CanonicalSet((c for c in can if c), n_source=len(tr))
    if path is not None:
        _atomic_write(path, lambda p: p.write_text("\n".join(sorted(out)), encoding="utf-8"))
    return _remember(_TRAIN_CACHE, key, out)
