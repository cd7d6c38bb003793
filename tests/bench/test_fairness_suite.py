"""``graphdiff bench run fairness`` end to end at a toy size (a tiny DiGress trained for two steps): the data row,
the unguided row, a faros row per switch time with its cost, the relabelling row's balance, one-line errors."""

from __future__ import annotations

import json

from graphdiff.cli import main

TINY = ["--set", "model.n_layers=1", "--set", "model.hidden_x=16", "--set", "model.hidden_e=8",
        "--set", "model.hidden_y=8", "--set", "model.n_heads=2", "--set", "model.ff_x=16", "--set", "model.ff_e=8",
        "--set", "model.ff_y=8", "--set", "model.extra_features=[]", "--set", "train.max_steps=2",
        "--set", "train.ckpt_every=0"]


def test_fairness_suite_rows_and_files(tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["bench", "run", "fairness", "--only", "digress", "--samples", "6", "--steps", "3", "--out", str(out),
            "--quiet", "--set", "fairness.switch_times=[0.5,1.0]", *TINY]
    assert main(argv) == 0
    res = json.loads((out / "results.json").read_text())
    rows = {r["method"]: r for r in res["rows"]}
    assert list(rows) == ["data (train)", "unguided", "faros t=0.5", "faros t=1"]
    assert rows["unguided"]["network_calls_per_sample"] == 3 and rows["faros t=0.5"]["network_calls_per_sample"] == 3
    assert rows["data (train)"]["parity_gap"] > 0.15  # the data's edges depend on the groups
    for r in rows.values():
        assert r["mmd_degree"] is not None and 0 <= r["group_balance"] <= 1 and r["samples"] == 6
    assert rows["faros t=1"]["changed_nodes_per_sample"] > 0
    md = (out / "results.md").read_text()
    assert "| faros t=0.5 |" in md and "load average" in md
    capsys.readouterr()
    assert main(["bench", "run", "fairness", "--only", "digress", "--out", str(out), "--quiet",
                 "--set", "fairness.switch_times=[2]"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "error: --set fairness.switch_times: fractions of the trajectory in [0, 1], got [2]"
