"""A packed molecule reference scores samples exactly as the evaluator does with the dataset present."""

import numpy as np
import pytest

from graphdiff.data import load_dataset
from graphdiff.errors import DataError
from graphdiff.metrics.evaluate import evaluate_molecules
from graphdiff.metrics.molecules import clear_caches
from graphdiff.metrics.packed_reference import (
    HashedTrainingSet,
    load_packed_reference,
    pack_reference,
    packed_metrics,
    smiles_hash,
)


@pytest.fixture(scope="module")
def packed(tmp_path_factory):
    from tests.assets_smiles import shipped_smiles

    d = tmp_path_factory.mktemp("packed")
    data = d / "mols.smi"
    data.write_text("\n".join(shipped_smiles()) + "\n")
    ds = load_dataset(str(data), root=d)
    return ds, pack_reference(ds, d / "ref.npz")


def test_packed_metrics_equal_the_evaluator(packed):
    from tests.assets_smiles import shipped_smiles

    ds, path = packed
    ref = load_packed_reference(path)
    assert ref.settings_match and ref.n_train == len(ds.split("train"))
    # training molecules (not novel), molecules outside the data (novel), duplicates and invalid strings
    gen = shipped_smiles()[:25] + ["CCS", "c1ccsc1", "CCS", "ClCCBr", "C1CC", None, "OCC", "CCO"]
    clear_caches()
    a = packed_metrics(gen, ref)
    b = evaluate_molecules(gen, ds, metrics=("validity", "uniqueness", "novelty", "fcd"), subsets=0, cache=False)
    for k in ("validity_strict", "uniqueness", "novelty", "valid_unique_novel", "fcd", "n_valid", "n_unique"):
        assert a[k] == b[k], k
    assert 0.0 < a["novelty"] < 1.0  # both kinds present, so membership really is tested


def test_hashed_training_set_membership():
    names = ["CCO", "c1ccccc1", "CC(=O)O"]
    s = HashedTrainingSet(np.array([smiles_hash(x) for x in names], dtype=np.uint64), n_source=5)
    assert all(x in s for x in names) and "CCN" not in s and None not in s
    assert len(s) == 3 and s.n_source == 5


def test_bad_packed_file_is_one_line(tmp_path, packed):
    bad = tmp_path / "ref.npz"
    bad.write_bytes(b"not an npz")
    with pytest.raises(DataError, match="not a packed molecule reference"):
        load_packed_reference(bad)
    _, path = packed
    with pytest.raises(DataError, match="scores validity"):
        packed_metrics(["CCO"], load_packed_reference(path), metrics=("nspdk",))
