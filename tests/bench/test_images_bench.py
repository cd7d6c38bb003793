"""``graphdiff bench run images`` end to end at a tiny size: training an entry, then re-scoring it with --model."""

import json

from graphdiff.cli import main
from tests.conftest import one_error_line

TINY = ["--set", "train.max_steps=2", "--set", "train.batch_size=8", "--set", "model.hidden=8", "--set",
        "model.levels=2", "--set", "model.blocks=1"]


def test_images_bench_trains_then_rescores_with_model(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["bench", "run", "images", "--only", "grid-edm", "--minutes", "1", "--samples", "8", "--steps", "2",
                 "--out", str(out), "--quiet", *TINY]) == 0
    first = json.loads((out / "results.json").read_text())["rows"][0]
    assert first["entry"] == "grid-edm" and first["train_steps"] == 2 and "loaded_from" not in first
    inp = first["inpainting"]
    for key in ("unguided", "self_mse_scale1", "replacement", "self_mse_scale1_replacement"):
        assert inp[key] > 0 and inp[key + "_mean_of_2"] > 0
    assert inp["replacement"] != inp["unguided"]  # replacement changes the completions
    again = tmp_path / "again"
    assert main(["bench", "run", "images", "--only", "grid-edm", "--model", str(out), "--samples", "8", "--steps",
                 "2", "--out", str(again), "--quiet"]) == 0
    row = json.loads((again / "results.json").read_text())["rows"][0]
    assert row["loaded_from"] == str(out / "runs" / "grid-edm") and row["train_steps"] == 2
    assert row["train_seconds"] > 0 and row["parameters"] == first["parameters"]
    assert row["evals"][0]["fd"] == first["evals"][0]["fd"]  # the same weights and seed give the same samples
    md = (again / "results.md").read_text()
    assert "| replacement |" in md and "| self_mse_scale1_replacement |" in md
    capsys.readouterr()
    rc = main(["bench", "run", "images", "--only", "cnn-edm", "--model", str(out), "--out", str(tmp_path / "x"),
               "--quiet"])
    assert rc == 2 and "no folder runs/cnn-edm" in one_error_line(capsys)
