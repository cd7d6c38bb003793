"""Bad output paths and bad options on every CLI command that writes: a one-line ``error: ...`` (exit status 2)
before the command's work (sampling, training, converting, measuring), and nothing that was there is touched."""

from __future__ import annotations

import pytest

from graphdiff.cli import main

from tests.conftest import shared_root


@pytest.fixture
def place(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "afile").write_text("keep")
    (tmp_path / "adir").mkdir()
    (tmp_path / "adir" / "notes.txt").write_text("keep")
    (tmp_path / "ctx.csv").write_text("date,value\n" + "".join(f"2020-{m:02d}-01,{m}\n" for m in range(1, 13)))
    (tmp_path / "mols.smi").write_text("CCO\nCCN\nc1ccccc1\n" * 5)
    (tmp_path / "ckpt.pth").write_bytes(b"not read")
    (tmp_path / "ckpt").mkdir()  # a model's folder: config.json beside its weights
    (tmp_path / "ckpt" / "config.json").write_text('{"format": 1}')
    (tmp_path / "model").mkdir()  # a user's folder named like the merged model a fine-tune writes into --out
    (tmp_path / "model" / "notes.txt").write_text("keep")
    (tmp_path / "mine").mkdir()  # a folder of the user's with a file named like a run's log
    (tmp_path / "mine" / "log.jsonl").write_text("keep")
    (tmp_path / "blist").mkdir()  # a results.json that is JSON but not a results file
    (tmp_path / "blist" / "results.json").write_text("[1, 2]")
    (tmp_path / "vals.csv").write_text("a,b\n" + "".join(f"{100 + i},{i}\n" for i in range(12)))  # no date column
    return tmp_path


COMMANDS = [
    (["datasets", "draw", "community_small", "--out", "adir"], "is a folder"),
    (["datasets", "draw", "community_small", "--out", "x.txt"], "must end in .png"),
    (["datasets", "draw", "community_small", "--out", "afile/x.png"], "afile is a file, not a folder"),
    (["evaluate", "--dataset", "community_small", "--samples", "mols.smi", "--json", "adir"],
     "--json adir is a folder"),
    (["evaluate", "--dataset", "qm9", "--reference", "train", "--n-molecules", "-5"], "--n-molecules must be >= 0"),
    (["evaluate", "--dataset", "community_small", "--samples", "mols.smi", "--json", "./mols.smi"],
     "--json mols.smi is the --samples file"),
    (["evaluate", "--dataset", "mols.smi", "--samples", "ctx.csv", "--json", "mols.smi"],
     "--json mols.smi is the --dataset file"),
    (["train-regressor", "--model", "qm9-defog", "--target", "qed", "--out", "ckpt", "--max-steps", "1"],
     "ckpt holds a model checkpoint (config.json)"),
    (["forecast", "--model", "ets", "--context", "ctx.csv", "--horizon", "3", "--out", "ctx.csv"],
     "--out ctx.csv is the --context file"),
    (["sample", "--model", "qm9-defog", "-n", "2", "--out", "afile/x.smi"], "afile is a file"),
    (["sample", "--model", "qm9-defog", "-n", "2", "--out", "adir"], "is a folder"),
    (["sample", "--model", "qm9-defog", "-n", "2", "--out", "x.smi", "--device", "foo"], "not a torch device"),
    (["train", "--preset", "gdss-demo", "--out", "afile"], "afile is a file, not a folder"),
    (["train", "--preset", "adir"], "is a folder; give a preset name"),
    (["train", "--preset", "gdss-demo", "--out", "ft", "--resume", "--overwrite"], "give one of them"),
    (["finetune", "--from", "qm9-defog", "--dataset", "mols.smi", "--out", "ft", "--max-steps", "1", "--resume",
      "--overwrite"], "give one of them"),
    (["finetune", "--from", "qm9-defog", "--dataset", "mols.smi", "--out", "afile", "--max-steps", "1"], "is a file"),
    (["finetune", "--from", "qm9-defog", "--dataset", "mols.smi", "--out", "ft", "--max-steps", "1",
      "--freeze", "[unclosed"], "not a regular expression"),
    (["finetune", "--from", "qm9-defog", "--dataset", "mols.smi", "--out", ".", "--max-steps", "1",
      "--overwrite"], "model is a folder that holds no checkpoint"),
    (["train-regressor", "--model", "qm9-defog", "--target", "qed", "--out", "afile"], "afile is a file"),
    (["forecast", "--model", "ets", "--context", "ctx.csv", "--horizon", "3", "--out", "adir"], "is a folder"),
    (["forecast", "--model", "ets", "--context", "ctx.csv", "--horizon", "3", "--out", "f.csv", "--plot", "adir"],
     "--plot adir is a folder"),
    (["models", "pack", "qm9-defog", "--name", "x", "--out", "adir"], "holds no checkpoint"),
    (["models", "pack", "qm9-defog", "--name", "x", "--out", "afile"], "is a file, not a folder"),
    (["import-checkpoint", "--format", "gdss", "adir", "--out", "o"], "adir is a folder; give the authors'"),
    (["import-checkpoint", "--format", "gdss", "ckpt.pth", "--out", "adir"], "holds no checkpoint"),
    (["datasets", "info", "qm9", "--smiles-column", "foo"], "--smiles-column is for a custom .csv"),
    (["import-checkpoint", "--format", "gdss", "ckpt.pth", "--out", "afile/sub"], "afile is a file"),
    (["models", "pack", "qm9-defog", "--name", "x", "--out", "new", "--reference-out", "adir"],
     "--reference-out adir is a folder"),
    # values a user can mistype, each refused before any work with the option's name
    (["datasets", "info", "community_small", "--root", "afile"], "--root afile: not a folder"),
    (["datasets", "draw", "community_small", "-n", "4", "--seed", "-1", "--out", "s.png"],
     "--seed must be at least 0"),
    (["datasets", "prepare", "community_small", "--workers", "-2"], "--workers must be at least 1"),
    (["evaluate", "--dataset", "community_small", "--samples", "mols.smi", "--seed", "-1"],
     "--seed must be at least 0"),
    (["evaluate", "--dataset", "community_small", "--samples", "mols.smi", "--workers", "0"],
     "--workers must be at least 1"),
    (["evaluate", "--dataset", "mols.smi", "--samples", "mols.smi", "--smiles-column", "x"],
     "names a column of a .csv with a header; this file has none"),
    (["bench", "run", "smoke", "--out", "afile"], "afile is a file, not a folder"),
    (["bench", "compare", "blist"], "not a results file"),
    (["forecast", "--model", "ets", "--context", "ctx.csv", "--horizon", "3", "--out", "f.txt"],
     "--out must end in .csv"),
    (["forecast", "--model", "ets", "--context", "ctx.csv", "--horizon", "3", "--out", "f.csv", "--plot", "f.txt"],
     "--plot must end in .png"),
    (["forecast", "--model", "monthly-tsdiff", "--context", "ctx.csv", "--horizon", "12", "--out", "f.csv",
      "--steps", "0"], "--steps must be at least 1"),
    (["forecast", "--model", "ets", "--context", "ctx.csv", "--horizon", "3", "--out", "f.csv", "--plot", "f.png",
      "--plot-context", "-5"], "--plot-context must be at least 1"),
    (["forecast", "--model", "ets", "--context", "vals.csv", "--horizon", "3", "--out", "f.csv"],
     "vals.csv: line 2: column 'a': '100' is not a date"),
    (["sample", "--model", "qm9-defog", "-n", "2", "--out", "x.smi", "--batch-size", "0"],
     "--batch-size must be at least 1"),
    (["sample", "--model", "lggm-base", "-n", "2", "--out", "x.smi"], "generates graphs, not molecules"),
    (["sample", "--model", "monthly-tsdiff", "-n", "2", "--out", "x.png"], "is a time-series model: forecast with"),
    (["sample", "--model", "digits-edm", "-n", "2", "--out", "x.jsonl"], "is an image model"),
    (["finetune", "--from", "qm9-defog", "--dataset", "mols.smi", "--out", "ft", "--max-steps", "1", "--lora", "0"],
     "--lora must be at least 1"),
    (["train", "--preset", "gdss-demo", "--out", "mine", "--max-steps", "1"], "mine holds log.jsonl"),
    (["finetune", "--from", "qm9-defog", "--dataset", "mols.smi", "--out", "mine", "--max-steps", "1"],
     "mine holds log.jsonl"),
    (["train-regressor", "--model", "qm9-defog", "--target", "qed", "--out", "r", "--max-steps", "1", "--lr", "-1"],
     "--lr must be > 0"),
    (["train-regressor", "--model", "qm9-defog", "--target", "qed", "--out", "r", "--max-steps", "1", "--dataset",
      "mols.smi"], "mols.smi has 12 training graphs; need at least 20"),  # a named file is read, not split as text
    (["models", "pack", "qm9-defog", "--name", "../../evil"], "--name must be letters, digits"),
    (["models", "pack", "qm9-defog", "--name", "x", "--out", "ckpt"], "ckpt already holds a model"),
    (["models", "pack", "nosuch", "--name", "x", "--out", "new"], "nosuch: no such run folder (or model name)"),
]


@pytest.mark.parametrize("argv,needle", COMMANDS, ids=[" ".join(a[:2]) + f" {i}" for i, (a, _) in
                                                         enumerate(COMMANDS)])
def test_bad_outputs_and_options_are_one_line_errors_that_keep_files(place, capsys, argv, needle):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and needle in err, err
    assert (place / "afile").read_text() == "keep" and (place / "adir" / "notes.txt").read_text() == "keep"
    assert sorted(p.name for p in (place / "adir").iterdir()) == ["notes.txt"]
    assert (place / "mols.smi").read_text() == "CCO\nCCN\nc1ccccc1\n" * 5
    assert (place / "mine" / "log.jsonl").read_text() == "keep"
    assert not (place.parent / "evil").exists()
    assert (place / "ctx.csv").read_text().startswith("date,value")
    assert not (place / "new").exists() and not (place / "ft").exists()  # nothing made before the refusal
    assert sorted(p.name for p in (place / "model").iterdir()) == ["notes.txt"] and not (place / "log.jsonl").exists()


def test_evaluate_json_goes_into_a_new_folder(place, capsys, no_network):
    root = shared_root(place, "qm9")
    assert main(["evaluate", "--dataset", "qm9", "--root", str(root), "--samples", "mols.smi", "--metrics",
                 "validity,uniqueness", "--json", "new/sub/scores.json"]) == 0
    import json

    res = json.loads((place / "new" / "sub" / "scores.json").read_text())
    assert res["validity"] == 1.0 and res["n_samples"] == 15 and "command" in res


def test_a_forecast_from_a_much_shorter_context_than_the_model_reads_says_so(place):
    (place / "short.csv").write_text("date,value\n" + "".join(f"2020-{m:02d}-01,{100 + m}\n" for m in range(1, 6)))
    with pytest.warns(UserWarning, match="the context has 5 steps; the model reads 36"):
        assert main(["forecast", "--model", "monthly-tsdiff", "--context", "short.csv", "--horizon", "12",
                     "--samples", "2", "--steps", "2", "--out", "f.csv"]) == 0
    assert len((place / "f.csv").read_text().splitlines()) == 13  # a header and the 12 forecast steps
