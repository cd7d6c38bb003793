"""``graphdiff bench run guidance`` end to end at a toy size on the bundled QM9 model (a saved, untrained regressor
stands in for the trained one): every method's row, its cost accounting, the published SVDD row, the PNGs."""

from __future__ import annotations

import json

from graphdiff.cli import main
from graphdiff.guidance import Regressor
from graphdiff.nn.regressor import GraphRegressor
from graphdiff.pipeline import GraphDiffusionPipeline


def test_guidance_suite_rows_costs_and_files(tmp_path, capsys):
    pipe = GraphDiffusionPipeline.from_pretrained("qm9-defog")
    sizes = {"node_dim": pipe.process.node_states, "edge_dim": pipe.process.ke, "max_nodes": pipe.schema.max_nodes,
             "n_targets": 1, "n_layers": 1, "hidden_x": 8, "hidden_e": 8, "hidden_y": 8, "n_heads": 2, "ff_x": 8,
             "ff_e": 8, "ff_y": 8, "extra_features": [], "rrwp_steps": 2}
    s = pipe.schema
    Regressor(net=GraphRegressor(**sizes), target="qed", mean=0.5, std=0.1, process="defog",
              node_categories=tuple(s.node_categories), edge_categories=tuple(s.edge_categories),
              sizes=sizes).save(tmp_path / "reg")
    out = tmp_path / "out"
    argv = ["bench", "run", "guidance", "--samples", "3", "--steps", "2", "--out", str(out), "--quiet",
            "--set", "guidance.candidates=2", "--set", "guidance.paths=1",
            "--set", f"guidance.regressor={tmp_path}/reg"]
    assert main(argv) == 0
    res = json.loads((out / "results.json").read_text())
    rows = {r["key"]: r for r in res["rows"]}
    assert list(rows) == ["pretrained", "best_of_n", "svdd", "noise_search", "regressor"]
    assert rows["pretrained"]["network_calls_per_sample"] == 2
    assert rows["best_of_n"]["network_calls_per_sample"] == 2 * 2 and rows["best_of_n"]["reward_calls_per_sample"] == 2
    assert rows["svdd"]["reward_calls_per_sample"] == 2 * 2
    assert rows["regressor"]["regressor_calls_per_sample"] == 2 and rows["regressor"]["network_calls_per_sample"] == 2
    for r in rows.values():
        assert 0 <= r["validity"] <= 1 and 0 <= r["qed_median"] <= 1 and r["samples"] == 3
        assert (out / f"top_defog-qm9_{r['key']}.png").is_file()
    md = (out / "results.md").read_text()
    assert "SVDD" in md and "0.848" in md and "Published" in md  # the paper's row beside ours
    capsys.readouterr()
    assert main(argv[:-2] + ["--set", "guidance.budget=3"]) == 2
    assert "unknown key 'budget'" in capsys.readouterr().err


def test_a_model_folder_is_scored_against_the_bundled_reference_of_its_dataset(tmp_path):
    """``--model DIR`` (an imported or trained QM9 model, not bundled): rows named after the model run, scored with
    the packed reference of the bundled model trained on the same dataset."""
    pipe = GraphDiffusionPipeline.from_pretrained("qm9-defog")
    pipe.save_pretrained(tmp_path / "mine")
    out = tmp_path / "out"
    argv = ["bench", "run", "guidance", "--model", str(tmp_path / "mine"), "--samples", "6", "--steps", "10",
            "--out", str(out), "--quiet", "--set", "guidance.methods=[pretrained]"]
    assert main(argv) == 0
    rows = json.loads((out / "results.json").read_text())["rows"]
    assert len(rows) == 1 and rows[0]["entry"] == pipe.config.name and rows[0]["model"] == str(tmp_path / "mine")
    # novelty needs the packed training set (None only when no sample is valid: 10 steps give valid molecules)
    assert rows[0]["novelty"] is not None and 0 < rows[0]["validity"] <= 1
