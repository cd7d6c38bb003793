"""3D evaluation against a dataset: the data row, sample files, the CLI, and rotation invariance of the whole path."""

from __future__ import annotations

import numpy as np
import pytest
from rdkit import Chem
from rdkit.Chem import AllChem

from graphdiff.cli import main
from graphdiff.convert.rdkit3d import write_sdf, write_xyz
from graphdiff.data import load_dataset
from graphdiff.errors import DataError
from graphdiff.metrics.evaluate3d import dataset_mols, evaluate_molecules_3d, evaluate_reference_3d, \
    evaluate_samples_3d
from tests.conftest import shared_root

KEYS = ("molecule_stability_legacy", "atom_stability_legacy", "molecule_stability_revisited", "validity",
        "bond_length_w1", "bond_angle_w1", "torsion_w1", "atom_type_tv")


@pytest.fixture(scope="module")
def qm9_small(tmp_path_factory):
    root = shared_root(tmp_path_factory.mktemp("qm9_3d"), "qm9_3d")
    return load_dataset("qm9_3d", root=root, limit=40, workers=1)


def test_data_row_is_stable_and_samples_score_like_the_dataset(qm9_small, tmp_path):
    ds = qm9_small
    row = evaluate_reference_3d(ds)
    assert row["molecule_stability_legacy"] == 1.0 and row["molecule_stability_revisited"] == 1.0
    assert row["validity"] == 1.0 and row["settings_3d"]["reference_split"] == "train"
    # the test molecules written to .sdf and read back score exactly as the molecules themselves
    mols = dataset_mols(ds.split("test"))
    sdf = write_sdf(mols, tmp_path / "test.sdf")
    direct = evaluate_molecules_3d(mols, ds)
    from_file = evaluate_samples_3d(sdf, ds)
    for k in KEYS:  # .sdf keeps 4 decimals of an angstrom: lengths (A) and angles (degrees) agree to 0.01
        assert from_file[k] == pytest.approx(direct[k], abs=0.01 if k.endswith("_w1") else 1e-9), k
    assert direct["bond_length_w1"] < 0.05  # test vs test geometry: near zero


def test_scores_do_not_change_when_samples_are_rotated_and_moved(qm9_small):
    ds = qm9_small
    mols = dataset_mols(ds.split("test"))
    rng = np.random.default_rng(0)
    moved = []
    for m in mols:
        q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
        m2 = Chem.Mol(m)
        conf = m2.GetConformer()
        p = conf.GetPositions() @ q.T + rng.normal(size=3) * 10
        for i, xyz in enumerate(p):
            conf.SetAtomPosition(i, xyz.tolist())
        moved.append(m2)
    a, b = evaluate_molecules_3d(mols, ds), evaluate_molecules_3d(moved, ds)
    for k in KEYS:
        assert b[k] == pytest.approx(a[k], abs=1e-6), k


def test_cli_evaluates_an_sdf_against_a_3d_file_dataset(tmp_path, capsys):
    mols = []
    for k, s in enumerate(["CCO", "CC(=O)O", "c1ccccc1", "CCN", "C#N", "OCC#N", "CC=O", "NCC(=O)[O-]"] * 3):
        m = Chem.AddHs(Chem.MolFromSmiles(s))
        AllChem.EmbedMolecule(m, randomSeed=k)
        mols.append(m)
    ref = write_xyz(mols, tmp_path / "ref.xyz")
    samples = write_sdf(mols[:6] + [None], tmp_path / "s.sdf")
    assert main(["evaluate", "--dataset", str(ref), "--samples", str(samples), "--root", str(tmp_path / "data"),
                 "--json", str(tmp_path / "r.json")]) == 0
    out = capsys.readouterr().out
    assert "molecule_stability_revisited" in out and "bond_length_w1" in out
    import json

    res = json.loads((tmp_path / "r.json").read_text())
    assert res["n_samples"] == 7 and res["n_built"] == 6  # the empty record counts as a sample, not dropped


def test_3d_samples_need_a_3d_dataset(tmp_path):
    smi = tmp_path / "m.smi"
    smi.write_text("CCO\nCCN\nCCC\nCO\nCN\n")
    m = Chem.AddHs(Chem.MolFromSmiles("CCO"))
    AllChem.EmbedMolecule(m, randomSeed=0)
    sdf = write_sdf([m], tmp_path / "s.sdf")
    with pytest.raises(DataError, match="need a dataset with coordinates"):
        evaluate_samples_3d(sdf, str(smi), root=tmp_path / "data")
