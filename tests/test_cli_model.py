"""graphdiff train | sample | demo from the command line, and their one-line errors."""

import json

import pytest

from graphdiff.cli import main
from tests.conftest import one_error_line

TINY_PRESET = """description: tiny GDSS for tests
dataset: synth_community_small
process: {name: gdss, node_features: degree, max_feat_num: auto}
model:
  name: gdss
  x_net: {type: gcn, depth: 1, nhid: 8}
  adj_net: {nhid: 8, num_layers: 2, adim: 8, c_hid: 4, c_final: 2}
train: {batch_size: 16, max_steps: 6, ckpt_every: 3, log_every: 1}
sample: {sampler: em, steps: 4}
"""


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    preset = d / "tiny.yaml"
    preset.write_text(TINY_PRESET)
    rc = main(["train", "--preset", str(preset), "--out", str(d / "run"), "--root", str(d / "data"), "--quiet"])
    assert rc == 0
    return d


def test_train_writes_checkpoint_and_resume_continues(run, capsys):
    ck = run / "run" / "checkpoint"
    assert json.loads((ck / "config.json").read_text())["step"] == 6
    rc = main(["train", "--preset", str(run / "tiny.yaml"), "--out", str(run / "run"), "--root", str(run / "data"),
               "--resume", "--set", "train.max_steps=9", "--quiet"])
    assert rc == 0
    assert json.loads((ck / "config.json").read_text())["step"] == 9
    steps = [json.loads(line).get("step") for line in (run / "run" / "log.jsonl").read_text().splitlines()]
    assert max(s for s in steps if s is not None) == 9


def test_train_max_steps_is_a_step_budget_the_presets_epochs_do_not_cut(run, capsys):
    one_epoch = run / "one_epoch.yaml"  # a preset of one pass over the data: a few steps
    one_epoch.write_text(TINY_PRESET.replace("max_steps: 6,", "epochs: 1,"))
    argv = ["train", "--preset", str(one_epoch), "--root", str(run / "data"), "--quiet", "--max-steps", "12"]
    assert main([*argv, "--out", str(run / "steps")]) == 0
    cfg = json.loads((run / "steps" / "checkpoint" / "config.json").read_text())
    assert cfg["step"] == 12 and cfg["train"]["max_steps"] == 12 and cfg["train"]["epochs"] == 12
    assert main([*argv, "--out", str(run / "epochs"), "--set", "train.epochs=1"]) == 0  # epochs asked for: kept
    cfg = json.loads((run / "epochs" / "checkpoint" / "config.json").read_text())
    assert cfg["train"]["epochs"] == 1 and cfg["step"] < 12
    capsys.readouterr()
    assert main([*argv, "--out", str(run / "none"), "--max-steps", "0"]) == 2
    assert "--max-steps must be >= 1, got 0" in one_error_line(capsys)


def test_sample_writes_jsonl_and_png(run, tmp_path, capsys):
    out = tmp_path / "s.jsonl"
    assert main(["sample", "--model", str(run / "run"), "-n", "5", "--steps", "3", "--sampler", "pc",
                 "--out", str(out), "--quiet"]) == 0
    recs = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(recs) == 5 and all(r["num_nodes"] >= 1 for r in recs)
    from graphdiff.metrics.evaluate import read_graph_samples

    assert len(read_graph_samples(out)) == 5  # what `graphdiff evaluate` reads
    png = tmp_path / "s.png"
    assert main(["sample", "--model", str(run / "run"), "-n", "4", "--steps", "2", "--out", str(png), "--quiet"]) == 0
    assert png.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("argv,match", [
    (["-n", "0"], "-n must be at least 1"),
    (["-n", "3", "--steps", "-2"], "--steps must be a positive integer"),
    (["-n", "3", "--out", "x.smi"], "generates graphs"),
    (["-n", "3", "--out", "x.csv"], "must end in .smi, .sdf, .xyz, .jsonl, .png or .npy"),
    (["-n", "3", "--set", "snrr=0.2"], "snrr"),
    (["-n", "3", "--set", "sample.snr=0.2"], "sampler knobs as KEY=VALUE"),
])
def test_sample_bad_input(run, tmp_path, capsys, argv, match):
    args = ["sample", "--model", str(run / "run"), "--out", str(tmp_path / "s.jsonl"), *argv]
    assert main(args) == 2
    assert match in one_error_line(capsys)


def test_missing_model_and_preset_typo(run, tmp_path, capsys):
    assert main(["sample", "--model", str(tmp_path / "none"), "-n", "2", "--out", str(tmp_path / "a.jsonl")]) == 2
    assert "neither a checkpoint folder nor a model name" in one_error_line(capsys)
    bad = tmp_path / "bad.yaml"
    bad.write_text(TINY_PRESET.replace("max_steps", "max_stesp"))
    assert main(["train", "--preset", str(bad), "--out", str(tmp_path / "r")]) == 2
    assert "did you mean 'max_steps'" in one_error_line(capsys)
    assert main(["train", "--preset", "gdss-qm8"]) == 2
    assert "did you mean 'gdss-qm9'" in one_error_line(capsys)


def test_demo_runs_end_to_end(tmp_path, capsys):
    rc = main(["demo", "--train", "--out", str(tmp_path / "demo"), "--minutes", "0.05", "--steps", "3",
               "--root", str(tmp_path / "data"), "--quiet"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "Erdos-Renyi" in out and "GDSS (this run)" in out
    res = json.loads((tmp_path / "demo" / "results.json").read_text())
    assert set(res["mmd2"]) == {"GDSS (this run)", "Erdos-Renyi, same density", "train split (data)"}
    for row in res["mmd2"].values():
        assert all(v is not None and v >= 0 for v in row.values())
    # the evaluation can tell community structure from noise: data beats the matched-density baseline
    assert res["mmd2"]["train split (data)"]["clustering"] < res["mmd2"]["Erdos-Renyi, same density"]["clustering"]
    assert (tmp_path / "demo" / "samples.png").read_bytes()[:4] == b"\x89PNG"


def test_demo_samples_the_bundled_qm9_model(tmp_path, capsys):
    from graphdiff.hub import model_index
    from graphdiff.metrics.packed_reference import load_packed_reference, packed_metrics

    out = tmp_path / "demo"
    assert main(["demo", "-n", "12", "--out", str(out), "--quiet"]) == 0
    text = capsys.readouterr().out
    assert "qm9-defog (this run, 12 samples" in text and "DeFoG (50 steps)" in text
    res = json.loads((out / "results.json").read_text())
    smiles = [s or None for s in (out / "samples.smi").read_text().split("\n")[:-1]]
    assert len(smiles) == 12 and res["n"] == 12
    again = packed_metrics(smiles, load_packed_reference(model_index()["qm9-defog"].reference))
    assert res["validity_strict"] == again["validity_strict"] and res["fcd"] == again["fcd"]
    assert (out / "molecules.png").read_bytes()[:4] == b"\x89PNG"
    assert main(["demo", "--model", "nope", "--out", str(out)]) == 2
    assert "graphdiff demo --train" in capsys.readouterr().err


SMALL = ["--set", "model.n_layers=1", "--set", "model.hidden_x=8", "--set", "model.hidden_e=4", "--set",
         "model.hidden_y=4", "--set", "model.ff_x=8", "--set", "model.ff_e=4", "--set", "model.ff_y=4", "--set",
         "train.batch_size=2", "--set", "train.max_steps=2", "--set", "train.threads=1", "--quiet"]


def test_a_resume_on_other_data_or_another_network_names_what_differs(tmp_path, capsys):
    a, b = tmp_path / "a.smi", tmp_path / "b.smi"
    a.write_text("CCO\nCCCl\nOCCCl\nCCC\n")
    b.write_text("CCN\nCCO\nNCCO\nCCC\n")  # the same number of atom types, another meaning for one channel
    run = tmp_path / "run"
    base = ["train", "--preset", "defog-qm9", "--out", str(run), "--root", str(tmp_path / "data")]
    assert main(base + ["--dataset", str(a)] + SMALL) == 0
    before = (run / "checkpoint" / "model.safetensors").read_bytes()
    def error_line():  # the trainer's thread line goes to stderr too
        lines = [x for x in capsys.readouterr().err.splitlines() if not x.startswith("torch threads")]
        assert len(lines) == 1 and lines[0].startswith("error: "), lines
        return lines[0]

    assert main(base + ["--dataset", str(b), "--resume"] + SMALL) == 2
    err = error_line()
    assert "node categories ['C', 'O', 'Cl']" in err and "has ['C', 'N', 'O']" in err and "--overwrite" in err
    assert main(base + ["--dataset", str(a), "--resume"] + SMALL + ["--set", "model.n_layers=2"]) == 2
    assert "trained with model.n_layers=1 (this run: 2)" in error_line()
    assert (run / "checkpoint" / "model.safetensors").read_bytes() == before  # the refused runs wrote nothing


def test_train_and_finetune_read_a_csv_whose_smiles_column_has_another_name(tmp_path, capsys):
    data = tmp_path / "mols.csv"
    data.write_text("name,SMILES_in\n" + "".join(f"m{i},{s}\n" for i, s in enumerate(["CCO", "CCS", "CCCl", "CCN"])))
    root = ["--root", str(tmp_path / "data")]
    assert main(["finetune", "--dataset", str(data), "--out", str(tmp_path / "ft"), "--max-steps", "1"] + root
                + ["--quiet", "--set", "train.batch_size=4"]) == 2
    assert "no 'smiles' column" in capsys.readouterr().err
    assert main(["finetune", "--dataset", str(data), "--smiles-column", "SMILES_in", "--out", str(tmp_path / "ft"),
                 "--max-steps", "1", "--quiet", "--set", "train.batch_size=4"] + root) == 0
    assert "new node categories S, Cl" in capsys.readouterr().out
    assert main(["train", "--preset", "defog-qm9", "--dataset", str(data), "--smiles-column", "SMILES_in", "--out",
                 str(tmp_path / "run")] + root + SMALL) == 0
    cfg = json.loads((tmp_path / "run" / "checkpoint" / "config.json").read_text())
    assert cfg["dataset_options"] == {"smiles_column": "SMILES_in"} and "S" in cfg["schema"]["node_categories"]


def test_training_on_a_file_with_bad_rows_says_how_many_it_skipped(tmp_path, capsys):
    data = tmp_path / "mixed.smi"
    data.write_text("CCO\nC1CC\nCCS\nnot a smiles\nCCN\nCCC\n")
    assert main(["train", "--preset", "defog-qm9", "--dataset", str(data), "--out", str(tmp_path / "run"), "--root",
                 str(tmp_path / "data")] + SMALL) == 0
    err = capsys.readouterr().err
    assert "2 invalid row(s) skipped (first: line 2, RDKit cannot parse SMILES 'C1CC')" in err
    # a warning on the command line is one line, naming the split, without Python's source line under it (a real
    # process: pytest records warnings instead of printing them)
    import subprocess
    import sys

    run = subprocess.run([sys.executable, "-m", "graphdiff.cli", "finetune", "--dataset", str(data), "--out",
                          str(tmp_path / "ft"), "--root", str(tmp_path / "data"), "--max-steps", "1", "--quiet",
                          "--set", "train.batch_size=64", "--set", "train.threads=1"],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    warned = [line for line in run.stderr.splitlines() if "batch_size 64" in line or "warnings.warn" in line]
    assert len(warned) == 1 and warned[0].startswith(f"warning: batch_size 64 is larger than dataset '{data}'")
    assert warned[0].endswith("(split 'train') (3 graphs); using 3")
