"""Reference statistics of the MOSES test sets shipped in the ``molsets`` wheel, reused where they equal ours.

``molsets`` (0.3.1) ships ``moses/dataset/data/{test,test_scaffolds}_stats.npz``: a pickled dict made by MOSES's
``compute_intermediate_statistics`` over the rows of ``{test,test_scaffolds}.csv.gz``, in row order:

- ``SNN.fps``: Morgan fingerprints, radius 2, 1024 bits, one uint8 0/1 row per SMILES row;
- ``Frag.frag`` / ``Scaf.scaf``: ``Counter`` of BRICS fragments / Bemis-Murcko scaffolds (at least 2 rings);
- ``logP`` / ``SA`` / ``QED`` / ``weight``: ``values`` per row (Crippen logP, Contrib sascorer, QED, MolWt);
- ``FCD``: ``mu`` (float32) and ``sigma`` of the ``fcd_torch`` ChemNet activations.

They were computed with an RDKit of 2019/2020 and MOSES's own ``sascorer`` copy. Compared with what this package
computes over the whole MOSES test set (176,074 molecules, RDKit 2026.09.1, fcd 1.2.2):

- 36 rows are not the canonical SMILES of their molecule any more (explicit ``[H]`` on imines, fused azole
  rings now written aromatic); for 6 of them the fingerprint, the fragments, the scaffold, QED and logP differ;
- on the other 176,038 rows fingerprints, logP and MolWt are equal and QED within 1.1e-16, but SA differs for 2
  molecules (by up to 0.66);
- Frag / Scaf counters differ in 6 / 5 keys (those molecules) and cannot be patched (only totals are stored);
- FCD ``mu`` differs by up to 4.3e-4 (those 36 strings, ``mu`` stored as float32): FCD between the two
  statistics 5.8e-7.

So fingerprints and QED / logP / MW are taken from the wheel, only for molecules whose canonical SMILES is their
wheel row, and the FCD statistics (``mu``, ``sigma``) are taken whole: the FCD between them and ours (5.8e-7) is
four orders of magnitude below the third decimal FCD is reported to, and computing ours costs about 140 s of
ChemNet on 2 cores. SA, Frag, Scaf and NSPDK are computed. They are used only when the reference is exactly the wheel's
rows (same strings, same order) and after a seeded spot check of :data:`CHECK_MOLECULES` molecules recomputed
here agrees (an RDKit whose fingerprints or descriptors moved falls back to computing). The wheel file is read
with a restricted unpickler (containers, numpy arrays and ``collections.Counter`` only); ``moses`` itself is
never imported.
"""

from __future__ import annotations

import importlib.util
import io
import zipfile
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..data.safe_pickle import ALLOWED, RestrictedUnpickler
from ..errors import DataError
from .mol_features import FP_BITS, PROPERTIES
from .reference_stats import KnownFeatures

SUBSETS = ("test", "test_scaffolds")
CHECK_MOLECULES = 200
PROPS_ATOL = 1e-9  # the largest difference measured (QED) is 1.1e-16
# wheel property -> ours, for the properties found equal (SA is not: the wheel's sascorer is MOSES's own copy)
WHEEL_PROPERTIES = {"QED": "qed", "logP": "logp", "weight": "mw"}

_WHEEL_ALLOWED = ALLOWED | {("collections", "Counter"), ("_codecs", "encode")}


class _WheelUnpickler(RestrictedUnpickler):
    def find_class(self, module: str, name: str):
        if (module, name) in _WHEEL_ALLOWED and (module, name) not in ALLOWED:
            return super(RestrictedUnpickler, self).find_class(module, name)
        return super().find_class(module, name)


def wheel_data_dir() -> Path | None:
    """``moses/dataset/data`` of the installed ``molsets`` wheel (found without importing ``moses``)."""
    try:
        spec = importlib.util.find_spec("moses")
    except (ImportError, ValueError):
        return None
    for loc in (spec and spec.submodule_search_locations) or []:
        d = Path(loc) / "dataset" / "data"
        if d.is_dir():
            return d
    return None


def molsets_version() -> str:
    try:
        from importlib.metadata import version

        return version("molsets")
    except Exception:
        return "unknown"


def read_stats_file(path) -> dict | None:
    """The dict pickled in a MOSES ``*_stats.npz`` (restricted unpickling; a refused global is a DataError)."""
    from numpy.lib import format as npformat

    try:
        with zipfile.ZipFile(path) as z, z.open("stats.npy") as fh:
            version = npformat.read_magic(fh)
            shape, _, dtype = (npformat.read_array_header_1_0(fh) if version == (1, 0)
                               else npformat.read_array_header_2_0(fh))
            if shape != () or dtype != np.dtype("O"):
                raise DataError(f"{path}: expected one pickled object, got {dtype} {shape}")
            obj = _WheelUnpickler(io.BytesIO(fh.read()), source=str(path)).load()
    except (OSError, KeyError, zipfile.BadZipFile, ValueError) as exc:
        raise DataError(f"{path}: unreadable ({type(exc).__name__}: {exc})") from None
    if isinstance(obj, np.ndarray) and obj.shape == () and obj.dtype == np.dtype("O"):
        obj = obj.item()  # np.save pickles the 0-d object array that holds the dict
    return obj if isinstance(obj, dict) else None


@lru_cache(maxsize=2)
def load_wheel_stats(subset: str) -> dict | None:
    """The statistics dict of ``<subset>_stats.npz`` in the wheel, or ``None`` when absent."""
    d = wheel_data_dir()
    path = d / f"{subset}_stats.npz" if d is not None else None
    if path is None or not path.is_file():
        return None
    return read_stats_file(path)


@lru_cache(maxsize=2)
def wheel_rows(subset: str) -> tuple[str, ...] | None:
    """The SMILES rows of ``<subset>.csv.gz`` in the wheel (the rows its statistics were computed on)."""
    import gzip

    d = wheel_data_dir()
    path = d / f"{subset}.csv.gz" if d is not None else None
    if path is None or not path.is_file():
        return None
    with gzip.open(path, "rt", newline="") as fh:
        head = fh.readline().strip().lower().split(",")
        if head != ["smiles"]:
            return None
        return tuple(line.strip() for line in fh if line.strip())


def _known(st, stats: dict, first: dict) -> KnownFeatures:
    """Wheel values for the distinct reference molecules whose canonical SMILES is a wheel row."""
    idx = np.fromiter((first.get(s, -1) for s in st.smiles), dtype=np.int64, count=len(st.smiles))
    known = idx >= 0
    rows = idx[known]
    fps = np.zeros((len(idx), FP_BITS // 8), dtype=np.uint8)
    fps[known] = np.packbits(np.asarray(stats["SNN"]["fps"])[rows].astype(bool), axis=1)
    props = np.full((len(idx), len(PROPERTIES)), np.nan)
    for name, col in WHEEL_PROPERTIES.items():
        props[known, PROPERTIES.index(col)] = np.asarray(stats[name]["values"], dtype=np.float64)[rows]
    return KnownFeatures(known, fps, props, "")


def _wheel_chemnet(stats: dict) -> tuple | None:
    """``(mu, sigma)`` of the wheel's FCD statistics as float64, or ``None`` when malformed."""
    try:
        mu = np.asarray(stats["FCD"]["mu"], dtype=np.float64)
        sigma = np.asarray(stats["FCD"]["sigma"], dtype=np.float64)
    except (KeyError, TypeError, ValueError):
        return None
    ok = (mu.ndim == 1 and sigma.shape == (len(mu), len(mu)) and np.isfinite(mu).all()
          and np.isfinite(sigma).all())
    return (mu, sigma) if ok else None


def _agrees(st, kf, sample: np.ndarray) -> bool:
    """Recompute fingerprints and properties of the sampled molecules and compare with the wheel's values."""
    from .mol_features import _features_chunk

    feats = _features_chunk(([st.smiles[i] for i in sample], {"fp", "props"}, st.scaffold_min_rings))
    if any(f is None for f in feats):
        return False
    cols = [PROPERTIES.index(c) for c in WHEEL_PROPERTIES.values()]
    mine = np.array([f.props for f in feats], dtype=np.float64)[:, cols]
    return (all(np.array_equal(f.fp, kf.fps[i]) for f, i in zip(feats, sample))
            and bool(np.allclose(mine, kf.props[sample][:, cols], rtol=0, atol=PROPS_ATOL, equal_nan=True)))


def moses_provider(subset: str, reference_rows: list, *, check: int = CHECK_MOLECULES,
                   seed: int = 0) -> Callable | None:
    """A ``provider`` for :func:`graphdiff.metrics.reference_stats.prepare_reference`: wheel fingerprints and
    QED / logP / MW for the molecules whose canonical SMILES is their wheel row (see the module docstring), or
    ``None`` when the wheel is absent or ``reference_rows`` are not exactly its rows."""
    if subset not in SUBSETS:
        return None
    rows = wheel_rows(subset)
    if rows is None or len(rows) != len(reference_rows) or any(a != b for a, b in zip(rows, reference_rows)):
        return None
    first: dict[str, int] = {}
    for r, s in enumerate(rows):
        first.setdefault(s, r)

    def provide(st):
        stats = load_wheel_stats(subset)
        if stats is None:
            return None
        try:
            kf = _known(st, stats, first)
        except (KeyError, TypeError, ValueError, IndexError):
            return None
        cand = np.flatnonzero(kf.known)
        if not len(cand):
            return None
        sample = np.sort(np.random.default_rng(seed).choice(cand, min(check, len(cand)), replace=False))
        if not _agrees(st, kf, sample):
            return None
        kf.source = f"molsets {molsets_version()} {subset}_stats.npz (spot-checked on {len(sample)}, seed {seed})"
        kf.chemnet = _wheel_chemnet(stats)
        if kf.chemnet is not None:
            kf.chemnet_source = (f"molsets {molsets_version()} {subset}_stats.npz (fcd_torch ChemNet over the wheel "
                                 "rows; FCD to the statistics computed here 5.8e-7)")
        return kf

    return provide
