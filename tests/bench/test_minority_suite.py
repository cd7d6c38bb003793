"""``graphdiff bench run minority`` end to end at a toy size on the bundled QM9 model and the offline QM9 copy: the
data, pretrained and guided rows, their cost accounting, the density threshold, the regressor reused on a rerun,
the PNGs, and one-line errors for bad settings."""

from __future__ import annotations

import json

import pytest

from graphdiff.cli import main
from tests.conftest import one_error_line, shared_root


def test_minority_suite_rows_costs_and_files(tmp_path, capsys):
    root = shared_root(tmp_path, "qm9")
    out = tmp_path / "out"
    argv = ["bench", "run", "minority", "--samples", "6", "--steps", "2", "--minutes", "0.05", "--out", str(out),
            "--root", str(root), "--quiet", "--set", "minority.reference_size=60", "--set", "minority.held_out=20",
            "--set", "minority.regressor_limit=120", "--set", "minority.scales=[2]", "--set", "minority.draws=1"]
    assert main(argv) == 0
    res = json.loads((out / "results.json").read_text())
    rows = {r["key"]: r for r in res["rows"]}
    assert list(rows) == ["data", "pretrained", "minority"]
    assert rows["data"]["network_calls_per_sample"] == 0 and rows["data"]["validity"] == 1.0
    assert rows["pretrained"]["network_calls_per_sample"] == 2 and rows["pretrained"]["regressor_calls_per_sample"] == 0
    assert rows["minority"]["network_calls_per_sample"] == 2 and rows["minority"]["regressor_calls_per_sample"] == 2
    assert rows["minority"]["scale"] == 2.0
    for r in rows.values():
        assert r["samples"] == 6 and 0 <= r["low_density_share"] <= 1 and 0 <= r["validity"] <= 1
        assert r["low_density_share"] <= r["validity"]  # invalid molecules never count as low density
        assert r["minority_score_mean"] is None or r["minority_score_mean"] > 0
        tag = r["key"] if r["scale"] is None else f"{r['key']}_{r['scale']:g}"
        assert (out / f"lowest_density_defog-qm9_{tag}.png").is_file()
    ref = res["density_reference"]
    assert ref["reference"] == 60 and 0 < ref["threshold"] < 1
    folder = out / "regressors" / "defog-qm9-minority"
    assert (folder / "regressor.json").is_file() and rows["minority"]["regressor"] == str(folder)
    info = rows["minority"]["regressor_info"]
    assert info["train_graphs"] > 0 and info["steps"] >= 1
    md = (out / "results.md").read_text()
    assert "| minority (scale 2) |" in md and "| data (test) |" in md
    assert "90th percentile" in md and "held-out MAE" in md
    capsys.readouterr()
    # a rerun reuses the saved regressor (same training record), one scale, the pretrained rows again
    assert main(argv) == 0
    again = {r["key"]: r for r in json.loads((out / "results.json").read_text())["rows"]}
    assert again["minority"]["regressor_info"] == info
    assert again["pretrained"]["low_density_share"] == rows["pretrained"]["low_density_share"]  # seeded


@pytest.mark.parametrize("setting, message", [
    ("minority.scales=[0]", "minority.scales"),
    ("minority.budget=3", "unknown key 'budget'"),
    ("minority.draws=0", "minority.draws must be a positive integer"),
    ("train.lr=0.1", "--set takes minority.KEY only"),
])
def test_minority_suite_bad_settings_are_one_line_errors(tmp_path, capsys, setting, message):
    assert main(["bench", "run", "minority", "--out", str(tmp_path), "--set", setting]) == 2
    assert message in one_error_line(capsys)
