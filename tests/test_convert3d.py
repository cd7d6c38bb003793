"""graphdiff.convert.rdkit3d (3D state <-> RDKit molecules with conformers, .sdf/.xyz) and graphdiff.viz3d."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from rdkit import Chem
from rdkit.Chem import AllChem

from graphdiff.convert import rdkit3d
from graphdiff.data import load_dataset
from graphdiff.errors import DataError, SchemaError
from graphdiff.viz3d import draw_molecules_3d
from tests.conftest import shared_root

SMILES = ["c1ccc(O)cc1", "CC(=O)[O-]", "C[NH3+]", "N#CC=O", "C1CC1"]


def _embedded(smiles: str, seed: int = 0) -> Chem.Mol:
    m = Chem.AddHs(Chem.MolFromSmiles(smiles))
    assert AllChem.EmbedMolecule(m, randomSeed=seed) == 0
    return m


def _graph(state, b: int):
    """(node types, sorted edge list with types) of graph ``b`` of a state."""
    real = state.mask[b]
    nt = state.x[b][real].argmax(-1).tolist()
    et = state.e[b][real][:, real].argmax(-1)
    iu = torch.triu_indices(len(nt), len(nt), 1)
    edges = sorted((int(i), int(j), int(et[i, j])) for i, j in zip(*iu) if et[i, j] > 0)
    return nt, edges


def _same_molecules(a, b, atol=1e-4):
    assert len(a) == len(b)
    for m, n in zip(a, b):
        assert [x.GetSymbol() for x in m.GetAtoms()] == [x.GetSymbol() for x in n.GetAtoms()]
        assert [x.GetFormalCharge() for x in m.GetAtoms()] == [x.GetFormalCharge() for x in n.GetAtoms()]
        bm = sorted((min(x.GetBeginAtomIdx(), x.GetEndAtomIdx()), max(x.GetBeginAtomIdx(), x.GetEndAtomIdx()),
                     str(x.GetBondType())) for x in m.GetBonds())
        bn = sorted((min(x.GetBeginAtomIdx(), x.GetEndAtomIdx()), max(x.GetBeginAtomIdx(), x.GetEndAtomIdx()),
                     str(x.GetBondType())) for x in n.GetBonds())
        assert bm == bn
        assert np.allclose(m.GetConformer().GetPositions(), n.GetConformer().GetPositions(), atol=atol)


def test_state_to_mol_to_sdf_and_back(tmp_path):
    mols = [_embedded(s, k) for k, s in enumerate(SMILES)]
    state = rdkit3d.from_mols3d(mols)
    assert state.pos.shape == (5, state.max_nodes, 3) and state.schema.explicit_h
    back = rdkit3d.to_mols3d(state)
    assert all(m.GetConformer().Is3D() for m in back)
    _same_molecules(mols, back)
    f = rdkit3d.write_sdf(back, tmp_path / "s.sdf")
    read = rdkit3d.read_sdf3d(f)
    _same_molecules(back, read)
    again = rdkit3d.from_mols3d(read, state.schema)
    for b in range(5):
        assert _graph(again, b) == _graph(state, b)
    assert torch.allclose(again.pos, state.pos, atol=1e-4)


def test_dataset_molecule_round_trip_through_sdf(tmp_path):
    root = shared_root(tmp_path, "qm9_3d")
    ds = load_dataset("qm9_3d", root=root, limit=20, workers=1)
    idx = list(range(0, 60, 3))
    state = ds.batch(idx)
    mols = rdkit3d.to_mols3d(state, ds.schema)
    assert all(m is not None for m in mols)
    read = rdkit3d.read_sdf3d(rdkit3d.write_sdf(mols, tmp_path / "q.sdf"))
    again = rdkit3d.from_mols3d(read, ds.schema, max_nodes=state.max_nodes)
    for b in range(len(idx)):
        assert _graph(again, b) == _graph(state, b)
    assert torch.allclose(again.pos, state.pos, atol=1e-4)


def test_none_and_invalid_graphs_keep_their_place(tmp_path):
    mols = [_embedded("CCO"), None, _embedded("O")]
    read = rdkit3d.read_sdf3d(rdkit3d.write_sdf(mols, tmp_path / "n.sdf"))
    assert [m is None for m in read] == [False, True, False]
    xyz = rdkit3d.read_xyz(rdkit3d.write_xyz(mols, tmp_path / "n.xyz"))
    assert [m is None for m in xyz] == [False, True, False]
    # a five-valent carbon: None when sanitizing, a raw molecule with its conformer otherwise
    state = rdkit3d.from_mols3d([_embedded("C")])
    e = state.e.clone()
    e[0, 1, 2] = e[0, 2, 1] = torch.eye(e.shape[-1])[1]  # H-H bond added to methane: H over-valent
    bad = type(state)(x=state.x, e=e, mask=state.mask, pos=state.pos, schema=state.schema)
    assert rdkit3d.to_mols3d(bad) == [None]
    raw = rdkit3d.to_mols3d(bad, sanitize=False)[0]
    assert raw.GetNumBonds() == 5 and raw.GetNumConformers() == 1
    assert rdkit3d.read_sdf3d(rdkit3d.write_sdf([raw], tmp_path / "raw.sdf"), sanitize=False)[0].GetNumBonds() == 5
    with pytest.raises(SchemaError, match="pos"):
        rdkit3d.to_mols3d(type(state)(x=state.x, e=state.e, mask=state.mask, schema=state.schema))


def test_xyz_round_trip_derives_the_same_bonds_and_charges(tmp_path):
    mols = [_embedded(s, k) for k, s in enumerate(SMILES)]
    for m in mols:
        AllChem.MMFFOptimizeMolecule(m)
    f = rdkit3d.write_xyz(mols, tmp_path / "m.xyz")
    assert f.read_text().splitlines()[1].startswith("charge=0")
    read = rdkit3d.read_xyz(f)
    _same_molecules(mols, read, atol=1e-7)
    with pytest.raises(DataError, match=r"m.xyz: record 1 \(line 1\): 3 coordinate lines for 4 atoms"):
        (tmp_path / "m.xyz").write_text("4\n\nC 0 0 0\nH 1 0 0\nH 0 1 0\n")
        rdkit3d.read_xyz(tmp_path / "m.xyz")


def test_draw_molecules_3d_writes_a_png(tmp_path):
    mols = [_embedded(s, k) for k, s in enumerate(SMILES)] + [None]
    out = draw_molecules_3d(mols, tmp_path / "pics" / "m.png", ncols=3)
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
    from matplotlib.image import imread

    img = imread(out)
    assert img.shape[0] > 400 and img.shape[1] > 600
    # not blank: a good share of pixels differ from the white background
    assert (img[..., :3] < 0.9).any(-1).mean() > 0.005


def test_draw_molecules_grid_of_none_or_no_molecules(tmp_path):
    """The 2D grid draws invalid molecules as empty cells, and an empty list as one cell that says so (RDKit's
    drawer raises on an empty grid)."""
    from rdkit import Chem

    from graphdiff.viz import draw_molecules

    assert draw_molecules([], tmp_path / "none.png").read_bytes()[:4] == b"\x89PNG"
    two = draw_molecules([Chem.MolFromSmiles("CCO"), None], tmp_path / "two.png", ncols=2)
    assert two.read_bytes()[:4] == b"\x89PNG" and two.stat().st_size > (tmp_path / "none.png").stat().st_size


@pytest.mark.parametrize("comment,charge", [("charge=1 t", 1), ("charge: +1", 1), ("Charge = -2 title", -2),
                                            ("charge=-1.0", -1), ("props, charge=1, spin=1", 1), ("title", 0),
                                            ("discharge=3", 0)])
def test_xyz_comment_charges_in_the_spellings_files_use(comment, charge):
    from graphdiff.convert.rdkit3d import xyz_charge

    assert xyz_charge(comment) == charge
