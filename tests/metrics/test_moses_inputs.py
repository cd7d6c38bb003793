"""Which SMILES stand for a dataset split (raw rows or decoded graphs) and the molsets-wheel statistics provider."""

from __future__ import annotations

import gzip
import pickle
import zipfile

import numpy as np
import pytest

from graphdiff.data import molecules as data_molecules
from graphdiff.errors import DataError
from graphdiff.metrics import dataset_smiles as D
from graphdiff.metrics import molecules as M
from graphdiff.metrics import moses_stats as W
from graphdiff.metrics import reference_stats as R
from graphdiff.metrics.dataset_smiles import dataset_smiles
from graphdiff.metrics.mol_features import _features_chunk
from graphdiff.metrics.mol_validity import canonical_valid

ROWS = ["CC(C)Cc1ccc(C(C)C(=O)O)cc1", "CC(=O)Nc1ccc(O)cc1", "c1ccc2ccccc2c1", "CCOC(=O)c1ccccc1",
        "OC(=O)c1ccccc1O", "CC(=O)Nc1ccc(O)cc1"]  # a duplicate row: first occurrence maps


def _needs_molsets():
    if data_molecules._molsets_copy("train.csv.gz") is None:
        pytest.skip("molsets is not installed (pip install --no-deps molsets)")


def test_split_smiles_uses_raw_rows_only_while_they_match_the_graphs(tmp_path, no_network):
    _needs_molsets()
    ds = data_molecules.MOSES(root=tmp_path, limit=150, workers=1)
    D._RAW_CACHE.clear()
    test = D.split_smiles(ds, "test", check=40)
    assert test.how.startswith("raw file rows, canonicalised") and "checked on 40" in test.how
    with gzip.open(tmp_path / "moses/raw/test.csv.gz", "rt") as fh:
        assert test.smiles == fh.read().split("\n")[1:151]
    decoded = dataset_smiles(ds.split("test"))
    assert canonical_valid(test.smiles) == canonical_valid(decoded)  # the same canonical SMILES either way
    assert D.split_smiles(ds, "train", check=10).how.startswith("raw file rows")
    # a raw file that is not the one the store was made from: the graphs are decoded instead
    (tmp_path / "moses/raw/test.csv.gz").write_bytes(gzip.compress(b"SMILES\nCCO\n"))
    D._RAW_CACHE.clear()
    again = D.split_smiles(ds, "test", check=40)
    assert again.how.startswith("decoded from the stored graphs") and again.smiles == decoded


def test_split_smiles_decodes_a_custom_dataset(tmp_path):
    from graphdiff.data import load_dataset

    data = tmp_path / "mols.smi"
    data.write_text("\n".join(ROWS[:5]) + "\n")
    ds = load_dataset(str(data), root=tmp_path)
    out = D.split_smiles(ds, "train")
    assert out.how.startswith("decoded from the stored graphs") and canonical_valid(out.smiles)


def _fake_wheel(tmp_path, monkeypatch, rows, *, spoil: int | None = None, fcd=None):
    """A molsets-like data folder: ``test.csv.gz`` and a ``test_stats.npz`` made from our own features
    (``fcd``: the ``FCD`` entry, if any)."""
    feats = _features_chunk((rows, {"fp", "props"}, 2))
    qed, _, logp, mw = (np.array(col) for col in zip(*(f.props for f in feats)))
    if spoil is not None:
        qed[spoil] += 0.01
    stats = {"SNN": {"fps": np.unpackbits(np.stack([f.fp for f in feats]), axis=1)},
             "QED": {"values": list(qed)}, "logP": {"values": list(logp)}, "weight": {"values": list(mw)},
             "SA": {"values": [0.0] * len(rows)}}
    if fcd is not None:
        stats["FCD"] = fcd
    folder = tmp_path / "wheel"
    folder.mkdir(exist_ok=True)
    (folder / "test.csv.gz").write_bytes(gzip.compress(("SMILES\n" + "\n".join(rows) + "\n").encode()))
    arr = np.empty((), dtype=object)
    arr[()] = stats
    np.savez(folder / "test_stats.npz", stats=arr)
    monkeypatch.setattr(W, "wheel_data_dir", lambda: folder)
    W.load_wheel_stats.cache_clear()
    W.wheel_rows.cache_clear()
    return feats


def _stats(smiles):
    return R.ReferenceStats(key="t", n=len(smiles), n_invalid=0, smiles=smiles, counts=np.ones(len(smiles), int),
                            isomeric=False, scaffold_min_rings=2)


def test_moses_provider_supplies_checked_wheel_values(tmp_path, monkeypatch):
    feats = _fake_wheel(tmp_path, monkeypatch, ROWS)
    assert W.moses_provider("test", ROWS[:-1]) is None  # not the wheel's rows
    assert W.moses_provider("val", ROWS) is None
    provide = W.moses_provider("test", ROWS)
    st = _stats(["CCO", *ROWS[:5]])  # "CCO" is no wheel row: computed
    kf = provide(st)
    assert kf.known.tolist() == [False, True, True, True, True, True]
    assert kf.source.startswith("molsets") and "spot-checked on 5" in kf.source
    for i, f in enumerate(feats[:5], start=1):
        assert np.array_equal(kf.fps[i], f.fp)
        assert kf.props[i, [0, 2, 3]].tolist() == [f.props[0], f.props[2], f.props[3]] and np.isnan(kf.props[i, 1])
    M.clear_caches()
    direct = M.reference_statistics(["CCO", *ROWS], metrics=("snn", "props"), n_jobs=1)
    M.clear_caches()
    via = M.reference_statistics(["CCO", *ROWS], metrics=("snn", "props"), n_jobs=1,
                                 provider=W.moses_provider("test", ROWS))
    assert via.sources["props"].startswith("computed, with values from molsets")
    assert all(np.array_equal(a, b) for a, b in zip(via.fps, direct.fps))
    assert all(np.array_equal(via.props[p][0], direct.props[p][0]) for p in M.PROPERTIES)


def test_moses_provider_supplies_the_wheel_fcd_statistics(tmp_path, monkeypatch):
    mu, sigma = np.linspace(0, 1, 512).astype(np.float32), np.eye(512) * 0.5
    _fake_wheel(tmp_path, monkeypatch, ROWS, fcd={"mu": mu, "sigma": sigma})

    def forbidden(*a, **k):
        raise AssertionError("ChemNet must not run when the wheel supplies the FCD statistics")

    monkeypatch.setattr(R, "chemnet_stats", forbidden)
    M.clear_caches()
    st = M.reference_statistics(ROWS, metrics=("fcd",), n_jobs=1, provider=W.moses_provider("test", ROWS))
    assert st.sources["chemnet"].startswith("molsets") and "fcd_torch" in st.sources["chemnet"]
    assert st.chemnet[0].dtype == np.float64 and np.array_equal(st.chemnet[0], mu.astype(np.float64))
    assert np.array_equal(st.chemnet[1], sigma)


def test_moses_provider_ignores_malformed_fcd_statistics(tmp_path, monkeypatch):
    _fake_wheel(tmp_path, monkeypatch, ROWS, fcd={"mu": np.zeros(4), "sigma": np.eye(3)})
    kf = W.moses_provider("test", ROWS)(_stats(ROWS[:5]))
    assert kf is not None and kf.chemnet is None  # fingerprints still supplied, ChemNet computed
    monkeypatch.setattr(R, "chemnet_stats", lambda smiles, counts, **kw: (np.ones(3), np.eye(3)))
    M.clear_caches()
    st = M.reference_statistics(ROWS, metrics=("fcd",), n_jobs=1, provider=W.moses_provider("test", ROWS))
    assert st.sources["chemnet"] == "computed" and st.chemnet[0].tolist() == [1.0, 1.0, 1.0]


def test_moses_provider_refuses_values_that_disagree(tmp_path, monkeypatch):
    _fake_wheel(tmp_path, monkeypatch, ROWS, spoil=2)
    assert W.moses_provider("test", ROWS)(_stats(ROWS[:5])) is None


def test_wheel_statistics_are_unpickled_restrictedly(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    arr = np.empty((), dtype=object)
    arr[()] = {"x": Evil()}
    np.savez(tmp_path / "evil.npz", stats=arr)
    with pytest.raises(DataError, match="refusing to unpickle global builtins.print"):
        W.read_stats_file(tmp_path / "evil.npz")
    with zipfile.ZipFile(tmp_path / "bad.npz", "w") as z:
        z.writestr("other.npy", pickle.dumps(1))
    with pytest.raises(DataError, match="unreadable"):
        W.read_stats_file(tmp_path / "bad.npz")
