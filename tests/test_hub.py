"""Named models: the bundled ones load and carry cards; names, folders, URLs with sha256; `graphdiff models`."""

import hashlib
import io
import json
import tarfile

import pytest

from graphdiff import GraphDiffusionPipeline
from graphdiff.cli import main
from graphdiff.errors import CheckpointError, ChecksumError
from graphdiff.hub import model_index, resolve_model
from graphdiff.pack_3d import CARD_3D, card_value

MAX_BYTES = 5 * 1024 * 1024
TINY_TF = {"n_layers": 1, "hidden_x": 16, "hidden_e": 8, "hidden_y": 8, "n_heads": 2, "ff_x": 16, "ff_e": 8,
           "ff_y": 8, "extra_features": [], "rrwp_steps": 4}


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    """A few-step DeFoG molecule model on the shipped SMILES (train, then save_pretrained)."""
    from tests.assets_smiles import shipped_smiles

    d = tmp_path_factory.mktemp("hub")
    data = d / "mols.smi"
    data.write_text("\n".join(shipped_smiles()) + "\n")
    pipe = GraphDiffusionPipeline.fit(str(data), preset="defog-qm9", out=d / "run", root=d / "data",
                                      overrides={"model": TINY_TF, "train": {"max_steps": 3, "batch_size": 16},
                                                 "sample": {"steps": 3}}, progress=False)
    pipe.save_pretrained(d / "model")
    return d


def _tar(folder, dest, arcname="model"):
    with tarfile.open(dest, "w:gz") as t:
        t.add(folder, arcname=arcname)
    return hashlib.sha256(dest.read_bytes()).hexdigest()


def test_every_bundled_model_loads_and_has_a_measured_card():
    idx = model_index()
    assert idx, "no bundled model"
    for name, entry in idx.items():
        if not entry.bundled:
            continue
        weights = entry.path / "model.safetensors"
        assert weights.stat().st_size <= MAX_BYTES, name
        card = (entry.path / "README.md").read_text()
        table = "| series |" if entry.task == "timeseries" else "| metric |"
        for field in ("- command: `graphdiff ", "- trained steps:", "- wall time:", "- device:", table):
            assert field in card, (name, field)
        assert any(f"- command: `graphdiff {c}" in card for c in ("train", "finetune", "bench run")), name
        measured = json.loads((entry.path / "metrics.json").read_text())
        pipe = GraphDiffusionPipeline.from_pretrained(name)
        assert pipe.config.dataset == entry.dataset and pipe.process.name == entry.process
        assert pipe.config.sample.steps == measured["steps"]
        key = "validity_strict" if entry.task == "molecules" else None
        if key:  # the card's table shows the measured file's figure
            assert f"| {key} | {measured[key]:.4f} |" in card
        if entry.task == "timeseries":  # the scale chosen on validation windows is the model's default
            assert pipe.config.sample.self_guidance == {"scale": measured["guidance_scale"], "variant": "quantile"}
            for row in measured["series"]:
                assert f"| {row['series']} | {row['windows']} x {row['horizon']} |" in card
        if entry.task == "molecules_3d":  # the 3D evaluator's figures, not SMILES ones
            assert measured["kind"] == "molecules_3d"
            for key, label in CARD_3D:
                assert f"| {label} | {card_value(measured.get(key))} |" in card, (name, key)
            assert (entry.path / "samples.png").is_file()
        if entry.task == "images":
            assert f"| {measured['fd']:.1f} |" in card and (entry.path / "samples.png").is_file()
        if entry.reference is not None:
            assert entry.reference.is_file()


def test_unknown_name_is_one_line_with_the_names(tmp_path):
    names = list(model_index())
    with pytest.raises(CheckpointError) as exc:
        resolve_model("qm9-defgo")
    msg = str(exc.value)
    assert "\n" not in msg and "neither a checkpoint folder nor a model name" in msg
    assert all(n in msg for n in names)
    if "qm9-defog" in names:
        assert "did you mean 'qm9-defog'" in msg


def test_folder_and_url_with_sha256(tiny_model, tmp_path):
    folder = tiny_model / "model"
    assert resolve_model(folder) == folder
    archive = tmp_path / "m.tar.gz"
    sha = _tar(folder, archive)
    cache = tmp_path / "cache"
    got = resolve_model(f"file://{archive}#sha256={sha}", cache=cache)
    assert (got / "model.safetensors").read_bytes() == (folder / "model.safetensors").read_bytes()
    again = resolve_model(f"file://{archive}", sha256=sha, cache=cache)  # cached: no second copy
    assert again == got
    a = GraphDiffusionPipeline.from_pretrained(folder).sample(3, seed=1, output="smiles", progress=False)
    b = GraphDiffusionPipeline.from_pretrained(got).sample(3, seed=1, output="smiles", progress=False)
    assert a == b
    with pytest.raises(ChecksumError, match="does not match"):
        resolve_model(f"file://{archive}#sha256={'0' * 64}", cache=tmp_path / "cache2")
    with pytest.raises(CheckpointError, match="needs its sha256"):
        resolve_model(f"file://{archive}", cache=tmp_path / "cache3")
    # a folder's sha256 is its weights'
    weights = hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest()
    assert resolve_model(folder, sha256=weights.upper()) == folder
    with pytest.raises(ChecksumError, match="the weights' sha256 is"):
        resolve_model(folder, sha256="00")
    for bad in (None, 3):
        with pytest.raises(CheckpointError, match="a model is a name, a folder"):
            GraphDiffusionPipeline.from_pretrained(bad)


def test_archive_members_outside_the_folder_are_refused(tmp_path):
    evil = tmp_path / "evil.tar.gz"
    with tarfile.open(evil, "w:gz") as t:
        data = b"x"
        info = tarfile.TarInfo("../escaped.txt")
        info.size = len(data)
        t.addfile(info, io.BytesIO(data))
    sha = hashlib.sha256(evil.read_bytes()).hexdigest()
    with pytest.raises(CheckpointError, match="outside the model folder"):
        resolve_model(f"file://{evil}#sha256={sha}", cache=tmp_path / "cache")
    assert not (tmp_path / "escaped.txt").exists()


def test_models_cli_list_info_and_pack(tiny_model, tmp_path, capsys):
    assert main(["models", "list"]) == 0
    out = capsys.readouterr().out
    assert all(n in out for n in model_index())
    idx = model_index()  # every column starts at the same place in every row, however long a process name is
    starts = {line.index(f" {e.dataset} ", len(n) + len(e.process))
              for line, (n, e) in zip(out.splitlines(), idx.items())}
    assert len(starts) == 1
    assert main(["models", "info", str(tiny_model / "model")]) == 0
    assert "a model without a card" in capsys.readouterr().out
    (tmp_path / "mols.smi").write_text("CCO\n")
    assert main(["models", "info", str(tmp_path / "mols.smi")]) == 2  # not a model at all
    assert "holds no checkpoint" in capsys.readouterr().err
    dest = tmp_path / "packed"
    ref = tmp_path / "ref.npz"
    rc = main(["models", "pack", str(tiny_model / "run"), "--name", "tiny", "--out", str(dest), "--samples", "8",
               "--steps", "2", "--root", str(tiny_model / "data"), "--dataset", str(tiny_model / "mols.smi"),
               "--command", "graphdiff train --preset x",
               "--reference-out", str(ref)])
    assert rc == 0
    card = (dest / "README.md").read_text()
    assert "- command: `graphdiff train --preset x`" in card and "- trained steps: 3" in card
    measured = json.loads((dest / "metrics.json").read_text())
    assert measured["samples"] == 8 and measured["steps"] == 2 and 0.0 <= measured["validity_strict"] <= 1.0
    assert f"| validity_strict | {measured['validity_strict']:.4f} |" in card
    assert GraphDiffusionPipeline.from_pretrained(dest).config.sample.steps == 2
    assert ref.is_file()
    assert main(["models", "info", str(dest)]) == 0
    assert "# tiny" in capsys.readouterr().out


def test_train_records_its_command(tiny_model, tmp_path):
    from tests.assets_smiles import shipped_smiles

    data = tmp_path / "mols.smi"
    data.write_text("\n".join(shipped_smiles()[:40]) + "\n")
    run = tmp_path / "run"
    assert main(["train", "--preset", "defog-qm9", "--dataset", str(data), "--out", str(run), "--root",
                 str(tmp_path / "data"), "--quiet", "--set", "train.max_steps=1", "--set", "train.batch_size=8",
                 "--set", "model.n_layers=1", "--set", "model.hidden_x=8", "--set", "model.hidden_e=4",
                 "--set", "model.hidden_y=4", "--set", "model.n_heads=2", "--set", "model.extra_features=[]"]) == 0
    line = (run / "command.txt").read_text().strip()
    assert line.startswith("graphdiff train --preset defog-qm9") and "train.max_steps=1" in line
    # a resume the run refuses (another process) is not recorded; nothing about the run changes
    assert main(["train", "--preset", "digress-qm9", "--dataset", str(data), "--out", str(run), "--root",
                 str(tmp_path / "data"), "--quiet", "--resume"]) == 2
    assert (run / "command.txt").read_text().strip() == line
    # --overwrite starts the run afresh, and its record with it
    argv = ["train", "--preset", "defog-qm9", "--dataset", str(data), "--out", str(run), "--root",
            str(tmp_path / "data"), "--quiet", "--set", "train.max_steps=2", "--set", "train.batch_size=8",
            "--set", "model.n_layers=1", "--set", "model.hidden_x=8", "--set", "model.hidden_e=4",
            "--set", "model.hidden_y=4", "--set", "model.n_heads=2", "--set", "model.extra_features=[]"]
    assert main([*argv, "--overwrite"]) == 0
    lines = (run / "command.txt").read_text().splitlines()
    assert len(lines) == 1 and "train.max_steps=2" in lines[0] and lines[0].endswith("--overwrite")
