"""3D molecule datasets: qm9_3d bond derivation, drops, properties and targets; GEOM-Drugs pickles; custom .xyz and
.sdf input with coordinates and its one-line errors."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from rdkit import Chem
from rdkit.Chem import AllChem

from graphdiff.convert import rdkit3d
from graphdiff.data import load_dataset
from graphdiff.data.base import RawFile
from graphdiff.data.conditions import condition_tensor
from graphdiff.data.molecules3d import (
    PROPERTIES,
    QM93D,
    R_ATOMS,
    R_GRAPH,
    R_SMILES,
    derive_molecule,
)
from graphdiff.data.geom_drugs import GEOMDrugs
from graphdiff.errors import DataError, MissingFileError
from tests.conftest import shared_root


def _embedded(smiles: str, seed: int = 0) -> Chem.Mol:
    m = Chem.AddHs(Chem.MolFromSmiles(smiles))
    assert AllChem.EmbedMolecule(m, randomSeed=seed) == 0
    AllChem.MMFFOptimizeMolecule(m)
    return m


def _z_pos(m: Chem.Mol):
    return np.array([a.GetAtomicNum() for a in m.GetAtoms()]), m.GetConformer().GetPositions()


# ---- bond derivation ------------------------------------------------------------------------------------------
def test_derive_keeps_atom_order_and_takes_orders_and_charges_from_the_smiles():
    m = _embedded("[NH3+]CC([O-])=O")
    z, pos = _z_pos(m)
    perm = np.random.default_rng(0).permutation(len(z))  # file order differs from the SMILES order
    mol, why, factor = derive_molecule(z[perm], pos[perm], "[NH3+]CC([O-])=O")
    assert why == "ok" and factor == 1.15
    assert [a.GetAtomicNum() for a in mol.GetAtoms()] == z[perm].tolist()
    assert np.allclose(mol.GetConformer().GetPositions(), pos[perm])
    assert sorted(a.GetFormalCharge() for a in mol.GetAtoms() if a.GetFormalCharge()) == [-1, 1]
    assert Chem.MolToSmiles(Chem.RemoveHs(mol)) == Chem.CanonSmiles("[NH3+]CC([O-])=O")


def test_derive_keeps_aromatic_bonds():
    z, pos = _z_pos(_embedded("Cc1ccco1"))
    mol, why, _ = derive_molecule(z, pos, "Cc1ccco1")
    assert why == "ok"
    kinds = [str(b.GetBondType()) for b in mol.GetBonds()]
    assert kinds.count("AROMATIC") == 5 and "DOUBLE" not in kinds


def test_derive_drops_molecules_that_disagree_with_their_coordinates():
    z, pos = _z_pos(_embedded("CCO"))
    far = pos.copy()
    far[2] += 3.0  # the O atom (index 2) pulled 5 A away: the distances no longer give the SMILES graph
    assert derive_molecule(z, far, "CCO")[1] == R_GRAPH
    assert derive_molecule(z, pos, "CCN")[1] == R_ATOMS
    assert derive_molecule(z, pos, "C1CC")[1] == R_SMILES
    # the same atoms read as the isomer dimethyl ether: the SMILES graph is not the coordinates' graph
    assert derive_molecule(z, pos, "COC")[1] == R_GRAPH


# ---- qm9_3d on a tiny npz written here ------------------------------------------------------------------------
class TinyQM93D(QM93D):
    def raw_choices(self, role):
        return [RawFile("tiny.npz")]


TINY = ["C", "[NH3+]CC([O-])=O", "Cc1ccco1", "CCO", "N#CC=O", "OCC#N"]


def _tiny_root(tmp_path, broken: int | None = 3):
    mols = [_embedded(s, seed=k) for k, s in enumerate(TINY)]
    z = [np.array([a.GetAtomicNum() for a in m.GetAtoms()], np.uint8) for m in mols]
    pos = [m.GetConformer().GetPositions().astype(np.float32) + 10.0 * k for k, m in enumerate(mols)]
    if broken is not None:
        pos[broken][2] += 4.0  # CCO's O far from its carbon
    n = len(TINY)
    arrays = {"gdb_index": np.arange(1, n + 1, dtype=np.int32), "num_atoms": np.array([len(a) for a in z], np.int16),
              "atom_offsets": np.concatenate([[0], np.cumsum([len(a) for a in z])]).astype(np.int64),
              "charges": np.concatenate(z), "positions": np.concatenate(pos), "smiles": np.array(TINY),
              "edm_split": np.array([0, 0, 0, 1, 2, 0], np.int8)}
    for k, p in enumerate(PROPERTIES):
        arrays[p] = np.arange(n, dtype=np.float64) * (k + 1) + 0.5
    raw = tmp_path / "qm9_3d" / "raw"
    raw.mkdir(parents=True)
    np.savez_compressed(raw / "tiny.npz", **arrays)
    return tmp_path, pos


def test_qm9_3d_derives_drops_and_keeps_coordinates_properties_and_splits(tmp_path):
    root, pos = _tiny_root(tmp_path)
    ds = TinyQM93D(root=root, workers=1)
    assert len(ds) == 5 and ds.info["dropped"] == {"count": 1, "by_reason": {R_GRAPH: 1}}
    assert ds.info["invalid"]["examples"][0]["line"] == 4 and ds.info["invalid"]["examples"][0]["value"] == "CCO"
    assert ds.split_sizes() == {"train": 4, "val": 0, "test": 1}
    assert ds.schema.explicit_h and ds.schema.kind == "molecule"
    assert ds.schema.edge_categories == ("none", "SINGLE", "DOUBLE", "TRIPLE", "AROMATIC")
    assert ds.schema.node_categories == ("H", "C", "N", "N+", "O", "O-")
    assert ds.gdb_index.tolist() == [1, 2, 3, 5, 6]
    # coordinates as in the file (not centred), per molecule
    for i, g in enumerate([0, 1, 2, 4, 5]):
        assert np.array_equal(ds.store.graph_pos(i), pos[g])
    st = ds.batch([1, 2])
    assert st.pos.shape == (2, st.max_nodes, 3) and st.pos[~st.mask].abs().sum() == 0
    # properties: [len, 16] in the file's column order, following the kept molecules
    assert ds.properties.shape == (5, 16) and ds.property_names == PROPERTIES
    assert np.allclose(ds.property_values("gap"), (np.array([0, 1, 2, 4, 5]) * (PROPERTIES.index("gap") + 1) + 0.5))
    assert ds.split("test").gdb_index.tolist() == [5]
    # the derived molecules are the SMILES
    mols = rdkit3d.to_mols3d(ds.batch(range(5)), ds.schema)
    kept = [TINY[g] for g in (0, 1, 2, 4, 5)]
    assert [Chem.MolToSmiles(Chem.RemoveHs(m)) for m in mols] == [Chem.CanonSmiles(s) for s in kept]
    again = TinyQM93D(root=root, workers=1)
    assert not again.processed_now and len(again) == 5


def test_qm9_3d_targets_become_named_normalised_conditions(tmp_path):
    root, _ = _tiny_root(tmp_path)
    ds = TinyQM93D(root=root, targets=("gap", "mu"), workers=1)
    assert ds.schema.graph_features == ("gap", "mu")
    train = ds.split("train")
    raw = train.properties[:, [PROPERTIES.index("gap"), PROPERTIES.index("mu")]]
    y = train.batch(range(len(train))).y.numpy()
    assert np.allclose(y, (raw - raw.mean(0)) / raw.std(0), atol=1e-5)
    cond = condition_tensor(ds.schema, {"gap": float(raw[0, 0]), "mu": float(raw[0, 1])})
    assert np.allclose(cond.numpy(), y[:1], atol=1e-5)
    plain = TinyQM93D(root=root, workers=1)  # the variant without targets was built on the way and has no y
    assert not plain.processed_now and plain.store.y is None and plain.schema.graph_features == ()


def test_qm9_3d_options_are_checked_and_limits_select(tmp_path):
    root, _ = _tiny_root(tmp_path, broken=None)
    with pytest.raises(DataError, match="unknown target 'gapp'.*gap"):
        TinyQM93D(root=root, targets="gapp")
    with pytest.raises(DataError, match="limit must be a positive integer"):
        TinyQM93D(root=root, limit=0)
    lim = TinyQM93D(root=root, limit=1, workers=1)
    assert lim.gdb_index.tolist() == [1, 4, 5]  # first of each split
    few = TinyQM93D(root=root, train_limit=2, workers=1)
    assert few.split_sizes() == {"train": 2, "val": 1, "test": 1}


def test_qm9_3d_shared_file_subset(tmp_path):
    root = shared_root(tmp_path, "qm9_3d")
    ds = load_dataset("qm9_3d", root=root, limit=40, workers=1)
    assert ds.split_sizes() == {"train": 40, "val": 40, "test": 40} and ds.info["dropped"]["count"] == 0
    assert ds.info["rows"] == 130_831 and ds.schema.explicit_h
    npz = np.load(root / "qm9_3d" / "raw" / "qm9_3d_qm9pack.npz")
    rows = np.searchsorted(npz["gdb_index"], ds.gdb_index)
    off = npz["atom_offsets"]
    for i in (0, 57, 119):
        r = rows[i]
        assert np.array_equal(ds.store.graph_pos(i), npz["positions"][off[r]:off[r + 1]])
        assert ds.store.split[i] == npz["edm_split"][r]
    mols = rdkit3d.to_mols3d(ds.batch(range(len(ds))), ds.schema)
    got = [Chem.MolToSmiles(Chem.RemoveHs(m), isomericSmiles=False) for m in mols]
    assert got == [Chem.CanonSmiles(str(s), useChiral=0) for s in npz["smiles"][rows]]


# ---- GEOM-Drugs --------------------------------------------------------------------------------------------------
def _conformers(smiles: str, k: int, seed: int) -> list[Chem.Mol]:
    m = Chem.AddHs(Chem.MolFromSmiles(smiles))
    ids = AllChem.EmbedMultipleConfs(m, numConfs=k, randomSeed=seed)
    return [Chem.Mol(m, confId=int(c)) for c in ids]


def _geom_root(tmp_path):
    raw = tmp_path / "geom_drugs" / "raw"
    raw.mkdir(parents=True)
    data = {"train": [("c1ccccc1O", _conformers("c1ccccc1O", 3, 0)), ("CC(=O)[O-]", _conformers("CC(=O)[O-]", 2, 1))],
            "val": [("C[NH3+]", _conformers("C[NH3+]", 2, 2))], "test": [("CCOC", _conformers("CCOC", 1, 3))]}
    for role, items in data.items():
        with open(raw / f"{role}_data.pickle", "wb") as fh:
            pickle.dump(items, fh)
    return tmp_path, data


def test_geom_drugs_reads_midi_split_pickles(tmp_path):
    root, data = _geom_root(tmp_path)
    ds = load_dataset("geom_drugs", root=root, conformers=2, download=False)
    assert ds.split_sizes() == {"train": 4, "val": 2, "test": 1}
    assert ds.schema.explicit_h and "AROMATIC" in ds.schema.edge_categories
    assert {"O-", "N+"} <= set(ds.schema.node_categories)
    # graph 1 is phenol's second conformer, coordinates as stored
    assert np.allclose(ds.store.graph_pos(1), data["train"][0][1][1].GetConformer().GetPositions(), atol=1e-6)
    nt, ei, et = ds.graph(0)
    assert (et == ds.schema.edge_categories.index("AROMATIC")).sum() == 6
    one = load_dataset("geom_drugs", root=root, conformers=5, limit=1, download=False)
    assert one.split_sizes() == {"train": 3, "val": 2, "test": 1}


def test_geom_drugs_refuses_code_in_pickles_and_missing_files(tmp_path):
    root, _ = _geom_root(tmp_path)

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    (root / "geom_drugs" / "raw" / "val_data.pickle").write_bytes(pickle.dumps([("C", [Evil()])]))
    with pytest.raises(DataError, match=r"val_data.pickle: refusing to unpickle global builtins.print"):
        GEOMDrugs(root=root, download=False)
    (root / "geom_drugs" / "raw" / "val_data.pickle").unlink()
    with pytest.raises(MissingFileError, match="val_data.pickle"):
        GEOMDrugs(root=root, download=False)


# ---- custom 3D input ------------------------------------------------------------------------------------------
def test_xyz_file_loads_as_a_3d_dataset(tmp_path):
    mols = [_embedded(s, seed=k) for k, s in enumerate(["c1ccccc1O", "CC(=O)[O-]", "CCN"])]
    f = rdkit3d.write_xyz(mols, tmp_path / "m.xyz")
    ds = load_dataset(str(f), root=tmp_path, split_ratios=(1.0, 0.0, 0.0))
    assert len(ds) == 3 and ds.schema.explicit_h and "AROMATIC" in ds.schema.edge_categories
    assert "O-" in ds.schema.node_categories  # charge=-1 from the comment line
    for i, m in enumerate(mols):
        assert np.allclose(ds.store.graph_pos(i), m.GetConformer().GetPositions(), atol=1e-6)
    single = tmp_path / "one.xyz"
    single.write_text("3\nwater\nO 0.0 0.0 0.0\nH 0.96 0.0 0.0\nH -0.24 0.93 0.0\n")
    ds1 = load_dataset(str(single), root=tmp_path)
    assert len(ds1) == 1 and ds1.graph(0)[1].tolist() == [[0, 1], [0, 2]]


@pytest.mark.parametrize("text, match", [
    ("3\n\nO 0 0 0\nH 0.96 0 0\n", r"bad.xyz: record 1 \(line 1\): 2 coordinate lines for 3 atoms"),
    ("1\n\nC 0 0 0\n2\n\nO 0 0 0\nH 0.96 0 0\nH 0 0.96 0\n", r"bad.xyz: record 2 \(line 4\): more coordinate lines"),
    ("2\n\nO 0 0 0\nH nan 0 0\n", r"bad.xyz: record 1 \(line 1\): atom 2: NaN"),
    ("2\n\nO 0 0 0\nXx 1 0 0\n", r"bad.xyz: record 1 \(line 1\): atom 2 \(line 4\): unknown element 'Xx'"),
    ("two\n\nO 0 0 0\n", r"bad.xyz: record 1 \(line 1\): expected the atom count"),
])
def test_bad_xyz_is_a_one_line_error(tmp_path, text, match):
    f = tmp_path / "bad.xyz"
    f.write_text(text)
    with pytest.raises(DataError, match=match) as err:
        load_dataset(str(f), root=tmp_path)
    assert "\n" not in str(err.value)


def test_sdf_with_pos_is_explicit_h_and_refuses_records_without_3d_coordinates(tmp_path):
    good = _embedded("c1ccncc1")
    f = rdkit3d.write_sdf([good, _embedded("CO")], tmp_path / "ok.sdf")
    ds = load_dataset(str(f), root=tmp_path, with_pos=True)
    assert ds.schema.explicit_h and "AROMATIC" in ds.schema.edge_categories and "H" in ds.schema.node_categories
    flat = Chem.AddHs(Chem.MolFromSmiles("CCO"))
    AllChem.Compute2DCoords(flat)
    none = Chem.AddHs(Chem.MolFromSmiles("CCO"))  # a 0D record: every atom at 0, 0, 0
    none.AddConformer(Chem.Conformer(none.GetNumAtoms()))
    block = Chem.MolToMolBlock(good).splitlines()
    block[4] = "       nan" + block[4][10:]
    cases = [([good, flat], r"two.sdf: record 2 \(line \d+\): 2D coordinates"),
             ([none], r"two.sdf: record 1 \(line 1\): no coordinates")]
    for mols, match in cases:
        rdkit3d.write_sdf(mols, tmp_path / "two.sdf")
        with pytest.raises(DataError, match=match):
            load_dataset(str(tmp_path / "two.sdf"), root=tmp_path, with_pos=True)
    (tmp_path / "nan.sdf").write_text("\n".join(block) + "\n$$$$\n")
    with pytest.raises(DataError, match=r"nan.sdf: record 1 \(line 1\): NaN coordinates"):
        load_dataset(str(tmp_path / "nan.sdf"), root=tmp_path, with_pos=True)
    plain = load_dataset(str(tmp_path / "two.sdf"), root=tmp_path)  # without with_pos coordinates are not needed
    assert len(plain) == 1 and plain.store.pos is None


def test_cli_reports_a_bad_xyz_in_one_line(tmp_path, capsys):
    from graphdiff.cli import main

    f = tmp_path / "cut.xyz"
    f.write_text("3\nwater\nO 0 0 0\nH 0.96 0 0\n")
    assert main(["datasets", "info", str(f), "--root", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "cut.xyz: record 1 (line 1): 2 coordinate lines for 3 atoms" in err
    assert "\n" not in err and "Traceback" not in err


def test_a_skipped_3d_record_is_reported_at_the_line_where_it_starts(tmp_path):
    # two good frames, then one whose bonds cannot be derived (two carbons 0.3 A apart), starting at line 7
    f = tmp_path / "three.xyz"
    f.write_text("1\n\nO 0 0 0\n1\n\nN 0 0 0\n2\n\nC 0 0 0\nC 0.3 0 0\n")
    ds = load_dataset(str(f), root=tmp_path)
    bad = ds.info["invalid"]["examples"]
    assert ds.info["invalid"]["count"] == 1 and bad[0]["line"] == 7 and bad[0]["value"] == "record 3"
