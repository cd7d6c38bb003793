"""Molecule datasets (QM9, ZINC250k, MOSES): counts, splits, schema, cache, invalid rows, checksums, fast path."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pytest

from graphdiff.convert.rdkit import (
    SmilesRowError,
    reference_smiles_to_arrays,
    smiles_graph,
    smiles_to_arrays,
    sort_atom_tokens,
)
from graphdiff.data import molecules
from graphdiff.data.base import RawFile
from graphdiff.data.molecules import MOSES, QM9, ZINC250k, zinc_csv_index_to_line
from graphdiff.errors import ChecksumError, DataError, MissingFileError
from tests.assets_smiles import TRICKY, combinatorial
from tests.conftest import SHARED, shared_root


# ---- helpers -------------------------------------------------------------------------------------------
def _same(smiles: str, **kw) -> bool:
    try:
        ref = reference_smiles_to_arrays(smiles, **kw)
    except DataError:
        ref = None
    try:
        fast = smiles_to_arrays(smiles, **kw)
    except DataError:
        fast = None
    try:  # the datasets' path: a row smiles_graph rejects is counted invalid, so it must be one RDKit rejects
        smiles_graph(smiles, kw.get("explicit_h", False), kw.get("kekulize", True))
        kept = True
    except SmilesRowError:
        kept = False
    if kept != (ref is not None):
        return False
    if ref is None or fast is None:
        return ref is fast
    return ref[0] == fast[0] and np.array_equal(ref[1], fast[1]) and ref[2] == fast[2]


def _sample_lines(path, n: int, step: int, header: bool) -> list[str]:
    out = []
    with gzip.open(path, "rt") as fh:
        if header:
            next(fh)
        for i, line in enumerate(fh):
            if i % step == 0:
                out.append(line.strip())
                if len(out) >= n:
                    break
    return out


class _Custom:
    """Mixin: raw files named by the test, without checksums (the card's files are not used)."""

    files: dict = {}

    def raw_choices(self, role):
        return [RawFile(self.files[role])]


class TinyQM9(_Custom, QM9):
    files = {"smiles": "smiles.csv", "test_index": "test.json"}


class TinyZINC(_Custom, ZINC250k):
    files = {"smiles": "zinc.smi", "test_index": "test.json"}
    DROPPED_LINE = 3


def _tiny_qm9_root(tmp_path, lines, test=("000001",)):
    raw = tmp_path / "qm9" / "raw"
    raw.mkdir(parents=True)
    (raw / "smiles.csv").write_text("smiles\n" + "\n".join(lines) + "\n")
    (raw / "test.json").write_text(json.dumps({"valid_idxs": list(test)}))
    return tmp_path


# ---- the fast featuriser ---------------------------------------------------------------------------------
@pytest.mark.parametrize("opts", [{}, {"explicit_h": True}, {"kekulize": False}])
def test_fast_featuriser_equals_reference_on_assets(opts):
    extra = ["", "  ", "xyz", "C[H]", "[2H]C", "[13CH3]O", "C->[Fe]", "C$C", "c1ccccc1 name", "CC |$a;b$|",
             "CN(=O)=O", "c1cc[se]c1", "*C", "[*]C", "c1cccc1", "[H+]", "[Hg]C", "F[Si](F)(F)F", "Cl[Cl]",
             # ZINC .smi line 231060 (0-based): with explicit H its Kekule form depends on stereo perception
             "CN1C(=O)/C(=N\\NC(=O)c2cccc(C(=O)N/N=C3/C(=O)N(C)c4ccccc43)c2)c2ccccc21"]
    bad = [s for s in TRICKY + combinatorial(400) + extra if not _same(s, **opts)]
    assert bad == []


def test_fast_featuriser_equals_reference_on_datasets():
    files = [("qm9/qm9_smiles.csv.gz", True, 131), ("zinc250k/250k_rndm_zinc_drugs_clean.smi.gz", False, 241)]
    sample = []
    for rel, header, step in files:
        if (SHARED / rel).is_file():
            sample += _sample_lines(SHARED / rel, 1000, step, header)
    moses_train = molecules._molsets_copy("train.csv.gz")
    if moses_train is not None:
        sample += _sample_lines(moses_train, 1000, 1583, True)
    if not sample:
        pytest.skip(f"no offline SMILES files in {SHARED} and molsets not installed")
    assert [s for s in sample if not _same(s)] == []
    assert [s for s in sample[::10] if not _same(s, explicit_h=True) or not _same(s, kekulize=False)] == []


# ---- QM9 (the whole file; a few seconds) -----------------------------------------------------------------
@pytest.fixture(scope="module")
def qm9(tmp_path_factory):
    root = shared_root(tmp_path_factory.mktemp("qm9"), "qm9")
    return root, QM9(root=root, download=False)


def test_qm9_counts_splits_and_schema(qm9):
    root, ds = qm9
    info = ds.info
    assert ds.processed_now
    assert info["rows"] == {"qm9_smiles.csv.gz": 133_885}
    inv = info["invalid"]
    assert inv["count"] <= len(inv["examples"])  # every invalid row is listed, so the relation below is exact
    assert len(ds) == info["molecules"] == 133_885 - inv["count"]
    test_idx = {int(v) for v in json.loads((SHARED / "qm9/valid_idx_qm9.json").read_text())["valid_idxs"]}
    invalid_test = sum(1 for ex in inv["examples"] if ex["line"] - 2 in test_idx)  # line 1 is the header
    sizes = ds.split_sizes()
    assert sizes == info["splits"]
    assert sizes["test"] == 13_082 - invalid_test and sizes["val"] == 0
    assert sizes["train"] + sizes["test"] == len(ds)
    s = ds.schema
    assert s.kind == "molecule" and not s.explicit_h and s.max_nodes == 9
    assert s.edge_categories == ("none", "SINGLE", "DOUBLE", "TRIPLE")
    assert list(s.node_categories) == sort_atom_tokens(s.node_categories)
    assert set(info["atom_tokens"]) == set(s.node_categories)
    assert abs(sum(s.node_marginals) - 1) < 1e-9 and abs(sum(s.edge_marginals) - 1) < 1e-9
    assert info["atoms"]["max"] == 9 and sum(info["atom_tokens"].values()) == int(ds.store.num_nodes.sum())


def test_qm9_graphs_match_rows_and_cache_is_reused(qm9):
    root, ds = qm9
    assert ds.info["invalid"]["count"] == 0  # else graph index != row index below
    with gzip.open(SHARED / "qm9/qm9_smiles.csv.gz", "rt") as fh:
        rows = fh.read().split("\n")[1:]
    for i in (0, 79, 24_564, 133_884):
        tokens, edges, names = reference_smiles_to_arrays(rows[i])
        nt, ei, et = ds.graph(i)
        assert [ds.schema.node_categories[t] for t in nt] == tokens
        assert np.array_equal(ei, np.sort(edges, axis=1))
        assert [ds.schema.edge_categories[t] for t in et] == names
    again = QM9(root=root, split="test", download=False)
    assert not again.processed_now and len(again) == ds.split_sizes()["test"]
    assert again.batch([0, 1]).x.shape[0] == 2


# ---- ZINC250k ----------------------------------------------------------------------------------------------
def test_zinc_index_mapping_anchors():
    for i in (0, 7777, 12236, 37851, 51196, 75832, 195595, 234_298):  # anchors of SOURCES.md and the last kept
        assert zinc_csv_index_to_line(i) == i
    assert zinc_csv_index_to_line(234_299) == 234_300
    assert zinc_csv_index_to_line(249_454) == 249_455  # last CSV row = last .smi line
    assert list(zinc_csv_index_to_line(np.array([5, 234_299]))) == [5, 234_300]


def test_zinc_dropped_line_is_the_only_120_character_smiles():
    path = SHARED / "zinc250k/250k_rndm_zinc_drugs_clean.smi.gz"
    if not path.is_file():
        pytest.skip(f"offline copy {path} not present")
    with gzip.open(path, "rt") as fh:
        lines = fh.read().splitlines()
    assert len(lines) == 249_456
    long = [i for i, s in enumerate(lines) if len(s.strip()) >= 120]
    assert long == [ZINC250k.DROPPED_LINE]


def test_zinc_split_follows_csv_indices(tmp_path):
    raw = tmp_path / "zinc250k" / "raw"
    raw.mkdir(parents=True)
    smi = ["C", "CC", "CCC", "CCCCCCCC", "CCCC", "CCCCC", "CCCCCC", "CCCCCCC"]  # line 3 is the 'missing' one
    (raw / "zinc.smi").write_text("\n".join(smi) + "\n")
    (raw / "test.json").write_text(json.dumps([1, 3, 5]))  # CSV rows -> .smi lines 1, 4, 6
    ds = TinyZINC(root=tmp_path, workers=1)
    assert len(ds) == 7 and ds.info["dropped"][0]["line"] == 4 and ds.info["dropped"][0]["value"] == "CCCCCCCC"
    assert [int(n) for n in ds.store.num_nodes] == [1, 2, 3, 4, 5, 6, 7]  # CSV order, line 3 left out
    assert list(np.flatnonzero(np.asarray(ds.store.split) == 2)) == [1, 3, 5]
    assert "UNVERIFIED" in ds.info["index_mapping"]


def test_zinc_real_files_with_limit(tmp_path):
    root = shared_root(tmp_path, "zinc250k")
    ds = ZINC250k(root=root, limit=3000, workers=1, download=False)
    test_idx = json.loads((SHARED / "zinc250k/valid_idx_zinc250k.json").read_text())
    assert len(ds) == 3000 - ds.info["invalid"]["count"]
    assert ds.split_sizes()["test"] == sum(1 for i in test_idx if i < 3000)
    assert ds.processed_dir.name == "implicit_h-kekule-limit3000"


# ---- invalid rows, options, parallel chunks ------------------------------------------------------------------
def test_invalid_rows_are_counted_with_line_numbers(tmp_path):
    lines = ["C", "", "xyz", "C1CC", "c1cccc1", "C->[Fe]", "CC", "C$C", "[Na+].[Cl-]"]
    root = _tiny_qm9_root(tmp_path, lines, test=("000006",))
    ds = TinyQM9(root=root, workers=1)
    inv = ds.info["invalid"]
    assert inv["count"] == 6 and len(ds) == 3
    got = {ex["line"]: ex for ex in inv["examples"]}
    assert sorted(got) == [3, 4, 5, 6, 7, 9]  # 1-based, the header is line 1
    assert got[3]["reason"] == "empty SMILES" and got[4]["value"] == "xyz"
    assert "DATIVE" in got[7]["reason"] and "QUADRUPLE" in got[9]["reason"]
    assert all(ex["file"] == "smiles.csv" for ex in inv["examples"])
    assert ds.split_sizes() == {"train": 2, "val": 0, "test": 1}  # row 6 ('CC') is the test molecule
    assert ds.schema.node_categories == ("C", "Na+", "Cl-")


def test_options_get_their_own_cache(tmp_path):
    root = _tiny_qm9_root(tmp_path, ["c1ccccc1O", "C[N+](C)(C)C", "CC(=O)[O-]"])
    plain = TinyQM9(root=root, workers=1)
    h = TinyQM9(root=root, explicit_h=True, workers=1)
    arom = TinyQM9(root=root, kekulize=False, workers=1)
    assert len({plain.processed_dir, h.processed_dir, arom.processed_dir}) == 3
    assert h.schema.explicit_h and "H" in h.schema.node_categories and "H" not in plain.schema.node_categories
    assert arom.schema.edge_categories[-1] == "AROMATIC" and "AROMATIC" not in plain.schema.edge_categories
    assert int(h.store.num_nodes[0]) == 13 and int(plain.store.num_nodes[0]) == 7
    assert not TinyQM9(root=root, workers=1).processed_now


def test_parallel_chunks_equal_serial(tmp_path, monkeypatch):
    lines = combinatorial(120) + ["", "xyz"] + TRICKY[:40]
    root = _tiny_qm9_root(tmp_path, lines, test=("000003", "000050", "000161"))
    serial = TinyQM9(root=root, workers=1)
    monkeypatch.setattr(molecules, "CHUNK_ROWS", 17)
    par = TinyQM9(root=root, workers=2, force_reload=True)
    for name in ("node_ptr", "node_type", "edge_ptr", "edge_index", "edge_type", "split"):
        assert np.array_equal(np.asarray(getattr(serial.store, name)), np.asarray(getattr(par.store, name))), name
    assert par.info["invalid"] == serial.info["invalid"] and par.schema == serial.schema


# ---- raw files ---------------------------------------------------------------------------------------------
def test_checksum_mismatch_names_the_file(tmp_path, no_network):
    raw = tmp_path / "qm9" / "raw"
    raw.mkdir(parents=True)
    with gzip.open(raw / "qm9_smiles.csv.gz", "wt") as fh:
        fh.write("smiles\nC\n")
    with pytest.raises(ChecksumError, match="qm9_smiles.csv.gz"):
        QM9(root=tmp_path)


def test_missing_files_without_download(tmp_path):
    with pytest.raises(MissingFileError, match="valid_idx_zinc250k.json|250k_rndm"):
        ZINC250k(root=tmp_path, download=False)


def test_moses_slice_from_molsets_copy(tmp_path, no_network):
    if molecules._molsets_copy("train.csv.gz") is None:
        pytest.skip("molsets is not installed (pip install --no-deps molsets)")
    ds = MOSES(root=tmp_path, limit=300, workers=1)
    assert ds.split_sizes() == {"train": 300, "val": 0, "test": 300}
    assert (tmp_path / "moses/raw/train.csv.gz").is_file() and ds.info["invalid"]["count"] == 0
    scaf = MOSES(root=tmp_path, limit=300, workers=1, subset="test_scaffolds")
    assert scaf.processed_dir != ds.processed_dir and scaf.info["subset"] == "test_scaffolds"
    assert "test_scaffolds.csv.gz" in scaf.info["raw_files"] and "test.csv.gz" not in scaf.info["raw_files"]
    with pytest.raises(DataError, match="subset"):
        MOSES(root=tmp_path, subset="val")


def test_moses_without_its_files_names_the_file_once_and_the_wheel(tmp_path, no_network, monkeypatch):
    monkeypatch.setattr(molecules, "_molsets_copy", lambda name: None)  # as on a machine without molsets
    with pytest.raises(MissingFileError) as err:
        MOSES(root=tmp_path)
    text = str(err.value)
    assert text.startswith("raw file train.csv.gz not found in")  # once, although the card gives it two URLs
    assert "network disabled in tests" in text and "pip install --no-deps molsets" in text
