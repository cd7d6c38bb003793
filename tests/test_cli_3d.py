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


def _conformer_sdf(path, smiles=("CCO", "CC(=O)O", "c1ccccc1", "CCN", "OCCO", "CC#N", "CCCC", "C1CC1", "CO", "NCCO")):
    from rdkit import Chem
    from rdkit.Chem import AllChem

    with Chem.SDWriter(str(path)) as w:
        for i, s in enumerate(smiles):
            m = Chem.AddHs(Chem.MolFromSmiles(s))
            assert AllChem.EmbedMolecule(m, randomSeed=i) == 0
            w.write(m)
    return path


def test_an_sdf_with_conformers_trains_a_3d_model_and_is_a_whole_3d_reference(tmp_path, capsys):
    import json

    sdf = _conformer_sdf(tmp_path / "mols.sdf")
    argv = ["train", "--preset", "eqgat_diff-qm9_3d", "--root", str(tmp_path / "data"), "--max-steps", "2", "--quiet",
            "--set", "train.batch_size=4", "--set", "train.threads=1"]
    for s in TINY_NET["eqgat"]:
        argv += ["--set", s]
    assert main([*argv, "--dataset", str(sdf), "--out", str(tmp_path / "run")]) == 0, capsys.readouterr().err
    cfg = json.loads((tmp_path / "run" / "checkpoint" / "config.json").read_text())
    assert cfg["dataset_options"]["with_pos"] is True  # the conformers were read, and the run records it
    before = sdf.read_bytes()  # sampling never writes over the file the model was trained on
    assert main(["sample", "--model", str(tmp_path / "run"), "-n", "2", "--steps", "2", "--out", str(sdf)]) == 2
    assert "is the model's training data file; write to another name" in capsys.readouterr().err
    assert sdf.read_bytes() == before
    # a 2D file for a 3D preset: refused before any training, nothing left behind
    (tmp_path / "mols.smi").write_text("CCO\nCCN\nCCC\nCO\nCC\n")
    capsys.readouterr()
    assert main([*argv, "--dataset", str(tmp_path / "mols.smi"), "--out", str(tmp_path / "flat")]) == 2
    err = capsys.readouterr().err
    assert "is a 3D model: dataset" in err and "mols.smi has no coordinates" in err
    assert not (tmp_path / "flat").exists()
    # evaluating 3D samples against the .sdf: its conformers, the whole file (as a 2D file of one's own is)
    assert main(["evaluate", "--dataset", str(sdf), "--samples", str(sdf), "--root", str(tmp_path / "data"),
                 "--json", str(tmp_path / "r.json")]) == 0
    res = json.loads((tmp_path / "r.json").read_text())
    assert res["reference_split"] == "all" and res["novelty_split"] == "all"
    assert res["novelty"] == 0.0 and res["atom_type_tv"] == 0.0  # the file scored against itself


def test_models_pack_scores_a_3d_model_with_the_3d_evaluator(tmp_path, capsys):
    import json

    from graphdiff import GraphDiffusionPipeline
    from graphdiff.pack_3d import CARD_3D, card_value

    sdf = _conformer_sdf(tmp_path / "mols.sdf")
    argv = ["train", "--preset", "eqgat_diff-qm9_3d", "--root", str(tmp_path / "data"), "--max-steps", "2", "--quiet",
            "--set", "train.batch_size=4", "--set", "train.threads=1", "--dataset", str(sdf), "--out",
            str(tmp_path / "run")]
    for s in TINY_NET["eqgat"]:
        argv += ["--set", s]
    assert main(argv) == 0, capsys.readouterr().err
    capsys.readouterr()
    pack = ["models", "pack", str(tmp_path / "run"), "--name", "tiny-3d", "--samples", "6", "--steps", "3",
            "--root", str(tmp_path / "data")]
    # a SMILES reference is for 2D models: refused before anything is sampled or written
    assert main([*pack, "--out", str(tmp_path / "x"), "--reference-out", str(tmp_path / "ref.npz")]) == 2
    assert "--reference-out packs a SMILES reference for 2D molecule models" in capsys.readouterr().err
    assert not (tmp_path / "x").exists() and not (tmp_path / "ref.npz").exists()
    # a dataset without coordinates: refused before sampling, in one line
    (tmp_path / "flat.smi").write_text("CCO\nCCN\nCO\n")
    assert main([*pack, "--out", str(tmp_path / "y"), "--dataset", str(tmp_path / "flat.smi")]) == 2
    err = capsys.readouterr().err
    assert "a 3D model is scored against a dataset with coordinates" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "y").exists()

    packed = tmp_path / "packed"
    assert main([*pack, "--out", str(packed)]) == 0, capsys.readouterr().err
    card = (packed / "README.md").read_text()
    metrics = json.loads((packed / "metrics.json").read_text())
    # 3D figures, not SMILES ones: stability under both rules and geometry, against the whole file (a file of one's
    # own is the reference whole, as in `graphdiff evaluate`), each row the measured file's figure
    assert metrics["kind"] == "molecules_3d" and metrics["samples"] == 6 and metrics["steps"] == 3
    assert metrics["reference_split"] == "all" and metrics["n_samples"] == 6
    assert 0.0 <= metrics["atom_stability_revisited"] <= 1.0 and metrics["bond_length_w1"] is not None
    for key, label in CARD_3D:
        assert f"| {label} | {card_value(metrics[key])} |" in card, key
    assert "scored by the 3D evaluator" in card and "10 molecules of the whole file" in card
    assert "fcd" not in card.lower() and "The first 6 samples" in card
    assert (packed / "samples.png").stat().st_size > 1000  # the samples drawn in 3D
    # another .sdf with conformers as the reference: read with its coordinates, as `graphdiff evaluate` reads it
    other = _conformer_sdf(tmp_path / "other.sdf", smiles=("CCO", "CCN", "CCC", "OCO"))
    assert main([*pack, "--out", str(tmp_path / "z"), "--dataset", str(other)]) == 0, capsys.readouterr().err
    assert "4 molecules of the whole file" in (tmp_path / "z" / "README.md").read_text()
    # the packed model samples 3D molecules again
    mols = GraphDiffusionPipeline.from_pretrained(packed).sample(2, steps=2, output="rdkit")
    assert len(mols) == 2 and all(m is None or m.GetNumConformers() == 1 for m in mols)
    assert metrics["n_built"] >= 1  # at least one sample became a molecule


def test_sampling_the_bundled_3d_model_reports_what_the_3d_evaluator_counts_in_the_file(tmp_path, capsys):
    """`graphdiff sample` of a 3D model says how many written molecules are valid and stable, and those are the
    counts the 3D evaluator gets from the .sdf it wrote (no shared data: the bundled model)."""
    import re

    from graphdiff.metrics.molecules3d import read_sdf_samples, stability, validity_3d

    sdf = tmp_path / "b.sdf"
    assert main(["sample", "--model", "qm9_3d-eqgat_diff", "-n", "6", "--steps", "60", "--out", str(sdf),
                 "--quiet"]) == 0, capsys.readouterr().err
    line = capsys.readouterr().out
    found = re.search(r"(\d+) of 6 are valid molecules \(RDKit, whole molecule\), (\d+) stable", line)
    assert found, line
    mols, _ = read_sdf_samples(sdf)
    assert len(mols) == 6
    assert int(found[1]) == validity_3d(mols)["n_valid"]
    assert int(found[2]) == stability(mols, "legacy")["n_stable_molecules"]
