"""A dataset's molecule reference packed into one small file, so that samples are scored without the dataset.

The pinned evaluator (:func:`graphdiff.metrics.evaluate.evaluate_molecules`) needs the reference split's ChemNet
statistics for FCD and the canonical training set for novelty. :func:`pack_reference` stores exactly those, as
the evaluator computes them, in an ``.npz``:

- ``mu`` and the upper triangle of ``sigma`` (float64) of the reference split's ChemNet activations;
- ``train_hashes``: the first 8 bytes of the SHA-1 of every canonical training SMILES, sorted (novelty by binary
  search; two of 10^5 molecules share a hash with probability about 3e-10, and no SMILES are stored);
- the counts, the dataset and split names, and :func:`~graphdiff.metrics.reference_stats.protocol_settings`.

:func:`packed_metrics` then gives validity, uniqueness, novelty and FCD through the same
:func:`~graphdiff.metrics.molecules.molecule_metrics` call, so the figures equal the evaluator's (tested). A file
packed under other protocol settings (another RDKit or fcd version) still loads; ``settings_match`` says so.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DataError
from .reference_stats import CanonicalSet, ReferenceStats, protocol_settings

FORMAT = 1
METRICS = ("validity", "uniqueness", "novelty", "fcd")


def smiles_hash(smiles: str) -> int:
    """First 8 bytes of the SHA-1 of a canonical SMILES, as an unsigned 64-bit integer."""
    return int.from_bytes(hashlib.sha1(smiles.encode("utf-8")).digest()[:8], "little")


class HashedTrainingSet(CanonicalSet):
    """A canonical training set known only by :func:`smiles_hash` values (``s in set`` by binary search)."""

    def __new__(cls, hashes: np.ndarray, n_source: int):
        obj = super().__new__(cls, (), n_source=n_source)
        obj.hashes = np.sort(np.asarray(hashes, dtype=np.uint64))
        return obj

    def __contains__(self, smiles) -> bool:
        if not isinstance(smiles, str):
            return False
        h = np.uint64(smiles_hash(smiles))
        i = int(np.searchsorted(self.hashes, h))
        return i < len(self.hashes) and self.hashes[i] == h

    def __len__(self) -> int:
        return len(self.hashes)


@dataclass
class PackedReference:
    """What :func:`pack_reference` wrote (see the module docstring)."""

    dataset: str
    reference_split: str
    n_reference: int
    n_train: int
    mu: np.ndarray
    sigma: np.ndarray
    train: HashedTrainingSet
    settings: dict

    @property
    def settings_match(self) -> bool:
        """Whether this machine's protocol settings (RDKit / fcd versions, ...) are the packed ones."""
        return _comparable(self.settings) == _comparable(protocol_settings(False, self.settings["scaffold_min_rings"]))

    def reference_stats(self) -> ReferenceStats:
        """A :class:`ReferenceStats` holding only the ChemNet statistics (enough for FCD)."""
        st = ReferenceStats(key=f"packed-{self.dataset}-{self.reference_split}", n=self.n_reference, n_invalid=0,
                            smiles=[], counts=np.array([self.n_reference]), isomeric=False,
                            scaffold_min_rings=int(self.settings["scaffold_min_rings"]),
                            label=f"{self.dataset} {self.reference_split} (packed)")
        st.chemnet = (self.mu, self.sigma)
        st.sources["chemnet"] = "packed reference file"
        return st


def _comparable(settings: dict) -> dict:
    return json.loads(json.dumps(settings))


def pack_reference(ds, path, *, reference: str = "test", workers: int | None = None, novelty: str = "train") -> Path:
    """Write the packed reference of molecule dataset ``ds`` (its ``reference`` split, novelty against the
    ``novelty`` split: train, or ``"all"`` with ``reference="all"`` for a user's own file)."""
    from .dataset_smiles import split_smiles
    from .evaluate import _split
    from ._parallel import _n_jobs, _Runner
    from .reference_stats import prepare_reference, reference_statistics, train_set

    if ds.schema.kind != "molecule":
        raise DataError(f"{ds.name}: a packed reference needs a molecule dataset")
    ref_in = split_smiles(_split(ds, reference), reference, workers=workers)
    train_in = split_smiles(_split(ds, novelty), novelty, workers=workers)
    cache_dir = ds.processed_dir / "metrics"
    st = prepare_reference(ref_in.smiles, cache_dir=cache_dir, label=f"{ds.name} {reference}", n_jobs=workers)
    st = reference_statistics(st, metrics=("fcd",), cache_dir=cache_dir, n_jobs=workers)
    runner = _Runner(_n_jobs(workers))
    try:
        tr = train_set(train_in.smiles, False, runner, cache_dir)
    finally:
        runner.close()
    hashes = np.array(sorted(smiles_hash(s) for s in tr), dtype=np.uint64)
    mu, sigma = st.chemnet
    iu = np.triu_indices(len(mu))
    settings = protocol_settings(st.isomeric, st.scaffold_min_rings)
    meta = {"format": FORMAT, "dataset": ds.name, "reference_split": reference, "n_reference": int(st.n),
            "n_train": int(getattr(tr, "n_source", len(tr))), "settings": settings,
            "reference_smiles": ref_in.how, "train_smiles": train_in.how}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        np.savez_compressed(fh, mu=np.asarray(mu, np.float64), sigma_upper=np.asarray(sigma, np.float64)[iu],
                            train_hashes=hashes, meta=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8))
    return path


def load_packed_reference(path) -> PackedReference:
    """Read a file written by :func:`pack_reference` (arrays only; nothing is unpickled)."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(z["meta"].tobytes().decode("utf-8"))
            mu, upper, hashes = z["mu"], z["sigma_upper"], z["train_hashes"]
    except (OSError, KeyError, ValueError) as exc:
        raise DataError(f"{path}: not a packed molecule reference ({type(exc).__name__}: {exc})") from None
    if meta.get("format") != FORMAT:
        raise DataError(f"{path}: packed reference format {meta.get('format')!r}, this graphdiff reads {FORMAT}")
    d = len(mu)
    if len(upper) != d * (d + 1) // 2:
        raise DataError(f"{path}: sigma_upper has {len(upper)} values, expected {d * (d + 1) // 2} for mu of {d}")
    sigma = np.zeros((d, d))
    iu = np.triu_indices(d)
    sigma[iu] = upper
    sigma = sigma + np.triu(sigma, 1).T
    return PackedReference(dataset=meta["dataset"], reference_split=meta["reference_split"],
                           n_reference=int(meta["n_reference"]), n_train=int(meta["n_train"]), mu=mu, sigma=sigma,
                           train=HashedTrainingSet(hashes, meta["n_train"]), settings=meta["settings"])


def packed_metrics(generated, packed: PackedReference, *, metrics=METRICS, n_jobs: int | None = None) -> dict:
    """Validity, uniqueness, novelty and FCD of SMILES ``generated`` against a packed reference."""
    from .molecules import molecule_metrics

    unknown = set(metrics) - set(METRICS)
    if unknown:
        raise DataError(f"a packed reference scores {', '.join(METRICS)}; not {', '.join(sorted(unknown))}")
    kw = {} if n_jobs is None else {"n_jobs": n_jobs}
    res = molecule_metrics(list(generated), packed.reference_stats(), packed.train, metrics=tuple(metrics), **kw)
    res["reference"] = {"dataset": packed.dataset, "split": packed.reference_split, "n": packed.n_reference,
                        "n_train": packed.n_train, "settings_match": packed.settings_match}
    return res
