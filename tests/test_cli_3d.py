"""3D molecules through the CLI: train each 3D preset for a few steps on a QM9-3D subset, sample to .sdf / .xyz /
.png, read the files back (skipped without the shared QM9-3D file)."""

from __future__ import annotations

import numpy as np
import pytest

from graphdiff.cli import main
from graphdiff.convert.rdkit3d import read_sdf3d, read_xyz
from tests.conftest import shared_root

TINY_NET = {"eqgat": ["model.n_layers=1", "model.hidden=16", "model.vectors=4", "model.edge_hidden=8", "model.heads=2"],
            "e3nn_tp": ["model.n_layers=1", "model.scalars=8", "model.vectors=4", "model.edge_hidden=8"]}


@pytest.mark.parametrize("preset,net", [("eqgat_diff-qm9_3d", "eqgat"), ("eqgat_diff-e3nn-qm9_3d", "e3nn_tp"),
                                        ("semlaflow-qm9_3d", "eqgat")])
def test_3d_presets_train_and_sample_to_sdf_xyz_png(tmp_path, capsys, preset, net):
    root = shared_root(tmp_path, "qm9_3d")
    sets = ["dataset_options.limit=40", "train.batch_size=8", "train.max_steps=3", "train.threads=1",
            *TINY_NET[net]]
    argv = ["train", "--preset", preset, "--root", str(root), "--out", str(tmp_path / "run"), "--quiet"]
    for s in sets:
        argv += ["--set", s]
    assert main(argv) == 0, capsys.readouterr().err
    sdf, xyz, png = tmp_path / "s.sdf", tmp_path / "s.xyz", tmp_path / "s.png"
    for out, n in ((sdf, 6), (xyz, 3), (png, 2)):
        assert main(["sample", "--model", str(tmp_path / "run"), "-n", str(n), "--steps", "4", "--out", str(out),
                     "--quiet"]) == 0, capsys.readouterr().err
    mols = read_sdf3d(sdf, sanitize=False)
    assert len(mols) == 6 and all(m is not None for m in mols)
    for m in mols:
        p = m.GetConformer().GetPositions()
        assert p.shape == (m.GetNumAtoms(), 3) and np.isfinite(p).all()
        assert np.allclose(p.mean(0), 0.0, atol=1e-3)  # samples come out centred
        assert {a.GetSymbol() for a in m.GetAtoms()} <= {"H", "C", "N", "O", "F"}  # QM9's elements only
    assert len(read_xyz(xyz)) == 3
    assert png.stat().st_size > 1000
    if preset != "eqgat_diff-qm9_3d":
        return
    # the bench suite scores the trained run (--model) with the 3D evaluator, legacy stability under the published
    # names beside the revisited rule
    import json

    out = tmp_path / "bench"
    assert main(["bench", "run", "qm9_3d", "--only", preset, "--model", str(tmp_path / "run"), "--samples", "4",
                 "--steps", "2", "--root", str(root), "--out", str(out)]) == 0, capsys.readouterr().err
    row = json.loads((out / "results.json").read_text())["rows"][0]
    m = row["metrics"]
    assert m["mol_stable"] == m["molecule_stability_legacy"] and "molecule_stability_revisited" in m
    assert row["samples"] == 4 and 0.0 <= m["atom_stable"] <= 1.0
    assert "EQGAT-diff (500 steps)" in (out / "results.md").read_text()


def test_sdf_needs_a_3d_model_and_says_so_before_sampling(tmp_path, capsys, monkeypatch):
    from graphdiff import GraphDiffusionPipeline

    def refuse(*a, **k):
        raise AssertionError("sampled before refusing the output")

    monkeypatch.setattr(GraphDiffusionPipeline, "sample", refuse)
    for suffix in (".sdf", ".xyz"):
        assert main(["sample", "--model", "qm9-defog", "-n", "2", "--steps", "2", "--out",
                     str(tmp_path / f"x{suffix}"), "--quiet"]) == 2
        assert "need a 3D model" in capsys.readouterr().err
