"""``graphdiff bench run targeting`` end to end at a toy size (the bundled QM9 model, the offline QM9-3D file):
the unconditional and guided rows per property and target, the oracles' held-out errors, the cost columns, and
one-line errors for bad settings; and the property oracle on molecules the bundled model generates."""

from __future__ import annotations

import json

import numpy as np
import pytest

from graphdiff.cli import main
from graphdiff.errors import ConfigError
from graphdiff.metrics.property_oracle import PropertyOracle
from tests.conftest import one_error_line, shared_root


def test_targeting_suite_rows_and_oracles(tmp_path):
    root = shared_root(tmp_path, "qm9_3d")
    out = tmp_path / "out"
    argv = ["bench", "run", "targeting", "--samples", "4", "--steps", "2", "--minutes", "0.02", "--out", str(out),
            "--root", str(root), "--quiet", "--set", "targeting.molecules=200", "--set",
            "targeting.regressor_limit=150", "--set", "targeting.properties=[mu]", "--set", "targeting.quantiles=[0.5]"]
    assert main(argv) == 0
    res = json.loads((out / "results.json").read_text())
    rows = res["rows"]
    assert [(r["property"], r["key"]) for r in rows] == [("mu", "unconditional"), ("mu", "regressor")]
    target = res["targets"]["mu"][0]
    assert 0.5 < target < 5 and all(r["target"] == target for r in rows)  # the median dipole, in debye
    assert rows[0]["network_calls_per_sample"] == 2 and rows[0]["regressor_calls_per_sample"] == 0
    assert rows[1]["network_calls_per_sample"] == 2 and rows[1]["regressor_calls_per_sample"] == 2
    for r in rows:
        assert 0 <= r["validity"] <= 1 and r["samples"] == 4
        assert r["mae_to_target"] is None or r["mae_to_target"] >= 0
    oracle = res["oracles"]["mu"]
    assert oracle["train"] + oracle["held_out"] == 200 and oracle["held_out_mae"] > 0
    assert (out / "regressors" / "defog-qm9-mu" / "regressor.json").is_file()
    md = (out / "results.md").read_text()
    assert "oracle of mu (D)" in md and "| mu |" in md
    assert len(list(out.glob("closest_defog-qm9_mu_*.png"))) == 2  # one picture per row


@pytest.mark.parametrize("setting, message", [
    ("targeting.properties=[dipole]", "QM9 properties"),
    ("targeting.quantiles=[1.5]", "quantiles in (0, 1)"),
    ("targeting.molecules=10", "at least 100"),
    ("targeting.budget=2", "unknown key 'budget'"),
])
def test_targeting_bad_settings_are_one_line_errors(tmp_path, capsys, setting, message):
    assert main(["bench", "run", "targeting", "--out", str(tmp_path), "--set", setting]) == 2
    assert message in one_error_line(capsys)


def test_the_property_oracle_learns_a_property_and_marks_invalid_molecules():
    from rdkit.Chem import rdMolDescriptors

    from graphdiff import GraphDiffusionPipeline

    pipe = GraphDiffusionPipeline.from_pretrained("qm9-defog")
    mols = [m for m in pipe.sample(400, steps=10, seed=0, output="rdkit", progress=False) if m is not None]
    y = np.array([m.GetNumHeavyAtoms() + 0.5 * rdMolDescriptors.CalcNumRings(m) for m in mols])
    oracle = PropertyOracle.fit("toy", mols, y, seed=0, max_iter=100)
    assert oracle.info["held_out_mae"] < 0.5 * oracle.info["held_out_mae_mean"]  # it learned something
    pred = oracle.predict(mols[:5] + [None])
    assert np.all(np.isfinite(pred[:5])) and np.isnan(pred[5])
    with pytest.raises(ConfigError, match="molecules but"):
        PropertyOracle.fit("toy", mols, y[:-1])
