"""3D molecules against a dataset's splits: the dataset side of :func:`graphdiff.metrics.molecules3d.evaluate_3d`.

``evaluate_samples_3d(path_or_mols, dataset)`` reads an ``.sdf`` / ``.xyz`` sample file (a record that holds no
molecule is an invalid sample, never dropped) and scores it against the dataset's test split (geometry and
composition distances) and its train split (novelty). ``evaluate_reference_3d(dataset)`` scores the test split
itself against a seeded subset of the train split: the "data" row the papers print.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import DataError

SAMPLE_SUFFIXES = (".sdf", ".xyz")


def is_3d_dataset(ds) -> bool:
    """Whether a dataset stores coordinates."""
    store = getattr(ds, "store", None)
    return store is not None and getattr(store, "pos", None) is not None


def read_samples_3d(path: str | os.PathLike) -> list:
    """Molecules with a conformer from an ``.sdf`` or ``.xyz`` sample file (``None`` for an empty record)."""
    from ..convert.rdkit3d import read_sdf3d, read_xyz

    suffix = Path(path).suffix.lower()
    if suffix == ".sdf":
        return read_sdf3d(path, sanitize=False)
    if suffix == ".xyz":
        return read_xyz(path)
    raise DataError(f"{path}: 3D sample files must be .sdf or .xyz, got {suffix!r}")


def dataset_mols(ds, indices: Sequence[int] | None = None, batch: int = 1024) -> list:
    """RDKit molecules with their conformers for the graphs ``indices`` (default all) of a 3D dataset."""
    from ..convert.rdkit3d import to_mols3d

    idx = np.arange(len(ds)) if indices is None else np.asarray(indices)
    out = []
    for start in range(0, len(idx), batch):
        state = ds.batch(idx[start:start + batch].tolist())
        out.extend(to_mols3d(state, ds.schema))
    return out


def _subset(n: int, k: int | None, seed: int) -> np.ndarray:
    if k is None or k >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, k, replace=False))


def _train_smiles(train, n: int | None, seed: int) -> list[str]:
    from rdkit import Chem

    smiles = []
    for m in dataset_mols(train, _subset(len(train), n, seed)):
        if m is not None:
            smiles.append(Chem.MolToSmiles(Chem.RemoveHs(m, sanitize=False), isomericSmiles=False))
    return smiles


_CACHE: dict = {}


def _dataset_side(ds, reference: str, n_reference, n_train, seed: int, novelty: str = "train"):
    """The reference statistics, their molecule count and the training SMILES, computed once per dataset store
    and settings in a process (a benchmark scores several models against the same split)."""
    from ..data.base import dataset_label
    from .molecules3d import reference_3d

    key = (id(ds.store), str(getattr(ds, "processed_dir", "")), reference, n_reference, n_train, seed, novelty)
    if key not in _CACHE:
        ref, train = ds.split(reference), ds.split(novelty)
        if len(ref) == 0 or len(train) == 0:
            raise DataError(f"dataset {dataset_label(ds)} needs a {reference!r} and a {novelty!r} split")
        ref_mols = [m for m in dataset_mols(ref, _subset(len(ref), n_reference, seed)) if m is not None]
        _CACHE.clear()  # one dataset side at a time: the statistics of 100,000 molecules are not small
        _CACHE[key] = (reference_3d(ref_mols), len(ref_mols), _train_smiles(train, n_train, seed))
    return _CACHE[key]


def evaluate_molecules_3d(samples: Sequence, ds, *, reference: str = "test", relax: bool = False,
                          n_reference: int | None = 5000, n_train: int | None = None, seed: int = 0,
                          novelty: str = "train") -> dict:
    """Score molecules with conformers against a 3D dataset (``reference`` split for the distances, the
    ``novelty`` split, the train split by default, for novelty); ``n_reference`` / ``n_train`` take seeded subsets
    (``None``: all)."""
    from ..data.base import dataset_label
    from .molecules3d import evaluate_3d

    if not is_3d_dataset(ds):
        raise DataError(f"3D samples need a dataset with coordinates (qm9_3d, an .xyz or an .sdf with conformers); "
                        f"{dataset_label(ds)} has none")
    t0 = time.perf_counter()
    ref_stats, n_ref, train_smiles = _dataset_side(ds, reference, n_reference, n_train, seed, novelty)
    res = evaluate_3d(list(samples), ref_stats, train_smiles=train_smiles, relax=relax)
    res = dict(res)
    res.setdefault("kind", "molecules_3d")
    res.update(dataset=ds.name, reference_split=reference, novelty_split=novelty)
    res["settings_3d"] = {"dataset": ds.name, "reference_split": reference, "reference_molecules": n_ref,
                          "train_molecules_for_novelty": len(train_smiles), "seed": seed, "relax": relax}
    res["seconds"] = round(time.perf_counter() - t0, 1)
    return res


def reference_splits(ds, reference: str | None, novelty: str = "train") -> tuple[str, str]:
    """``(reference split, novelty split)`` for scoring samples against ``ds``: a file of the user's own is used
    whole for both unless ``reference`` names a split; a registered dataset's reference is its test split."""
    from ..data.custom import CustomDataset

    if isinstance(ds, CustomDataset) and reference in (None, "all"):
        return "all", "all"
    return reference or "test", novelty


def evaluate_samples_3d(samples, dataset, *, root=None, reference: str | None = None, dataset_options=None,
                        **kw) -> dict:
    """Evaluate an ``.sdf`` / ``.xyz`` file (or a list of molecules) against a 3D dataset by name or file. A file of
    the user's own is read with its coordinates (an ``.sdf`` too) and, as in 2D, is the reference whole (novelty
    against the whole file too) unless ``reference`` names a split; a registered dataset's reference is its test
    split."""
    from ..data import load_dataset
    if isinstance(samples, (str, os.PathLike)):  # read first: a bad file fails before a dataset is built
        samples = read_samples_3d(samples)
    if isinstance(dataset, os.PathLike):
        dataset = str(dataset)
    options = dict(dataset_options or {})
    if isinstance(dataset, str) and dataset.lower().endswith((".sdf", ".sdf.gz")):
        options.setdefault("with_pos", True)  # 3D samples are scored against the file's conformers
    ds = load_dataset(dataset, root=root, **options) if isinstance(dataset, str) else dataset
    reference, novelty = reference_splits(ds, reference)
    return evaluate_molecules_3d(samples, ds, reference=reference, novelty=novelty, **kw)


def evaluate_reference_3d(dataset, *, root=None, n_reference: int | None = 5000, seed: int = 0, **kw) -> dict:
    """The data row: the test split's molecules scored as samples, distances against a seeded train subset."""
    from ..data import load_dataset

    ds = load_dataset(dataset, root=root) if isinstance(dataset, str) else dataset
    test = ds.split("test")
    res = evaluate_molecules_3d(dataset_mols(test), ds, reference="train", n_reference=n_reference, seed=seed, **kw)
    res["generated"] = f"test split ({len(test)} molecules, data row)"
    return res


__all__ = ["SAMPLE_SUFFIXES", "is_3d_dataset", "read_samples_3d", "dataset_mols", "evaluate_molecules_3d",
           "evaluate_samples_3d", "evaluate_reference_3d"]
