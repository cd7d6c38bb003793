"""`graphdiff bench`: every suite is well formed, the smoke suite runs end to end (what CI runs), --model evaluates
a checkpoint without training, compare puts folders side by side, bad input is one line."""

import json
import shutil
from pathlib import Path

import pytest

from graphdiff.bench.runner import compare, entry_overrides
from graphdiff.bench.suites import SUITES
from graphdiff.cli import main
from graphdiff.config import load_preset

REQUIRED = {"graphs-gdss", "graphs-spectre", "qm9", "zinc250k", "moses", "speed", "smoke"}
LEGACY_GDSS = Path(__file__).resolve().parents[1] / "fixtures" / "legacy_v1" / "gdss"
REPO = Path(__file__).resolve().parents[2]


def test_list_shows_every_suite_with_its_time(capsys):
    assert main(["bench", "list"]) == 0
    out = capsys.readouterr().out
    assert REQUIRED <= set(SUITES)
    for name in REQUIRED:
        line = next(x for x in out.splitlines() if x.startswith(name + " "))
        assert "min on 2 CPU cores" in line


@pytest.mark.parametrize("suite", sorted(s for s in SUITES if SUITES[s].kind != "kernels"))  # kernels: no presets
def test_every_entry_is_a_valid_preset_with_its_overrides(suite):
    for entry in SUITES[suite].entries:
        for cpu in (True, False):
            cfg = load_preset(entry.preset, entry_overrides(entry, {}, cpu))
            assert cfg.process["name"] == entry.preset.split("-")[0]
        assert entry.reference is None or entry.reference.count("/") == 1


def test_user_overrides_win_over_the_entry_ones():
    entry = next(e for e in SUITES["qm9"].entries if e.preset == "defog-qm9")
    over = entry_overrides(entry, {"train": {"batch_size": 7, "amp": True}}, cpu=True)
    assert over["train"] == {"batch_size": 7, "amp": True} and over["model"]["n_layers"] == 4
    assert "model" not in entry_overrides(entry, {}, cpu=False)  # the preset's own network on a GPU


def test_smoke_suite_runs_every_process_end_to_end(tmp_path, capsys):
    """The whole smoke suite at its default budget: four processes trained, sampled and scored."""
    out = tmp_path / "smoke"
    assert main(["bench", "run", "smoke", "--out", str(out), "--quiet"]) == 0
    res = json.loads((out / "results.json").read_text())
    assert {r["process"] for r in res["rows"]} == {"gdss", "digress", "defog", "pard"}
    for r in res["rows"]:
        assert r["train"]["steps"] > 0 and r["samples"] == 16
        assert all(0 <= r["metrics"][k] < 10 for k in ("degree", "clustering", "orbit"))
    assert res["command"].startswith("graphdiff bench run smoke") and res["machine"]["graphdiff"]
    assert res["wall_minutes"] < 6
    md = (out / "results.md").read_text()
    assert "graphdiff pard-community_small, 5 steps" in md and "## Budget" in md
    # compare: two results folders side by side, a row per folder and entry
    other = tmp_path / "copy"
    shutil.copytree(out, other, ignore=shutil.ignore_patterns("runs", "data"))
    table = compare([out, other])
    assert table.count("| gdss-demo |") == 2 and "degree" in table.splitlines()[0]


def test_model_is_evaluated_without_training(tmp_path, capsys):
    out = tmp_path / "eval"
    assert main(["bench", "run", "smoke", "--only", "gdss-demo", "--model", str(LEGACY_GDSS), "--samples", "4",
                 "--bootstrap", "0", "--out", str(out), "--quiet"]) == 0
    row = json.loads((out / "results.json").read_text())["rows"][0]
    assert row["train"]["loaded_from"] == str(LEGACY_GDSS) and row["samples"] == 4
    assert not (out / "runs").exists()  # nothing trained


@pytest.mark.parametrize("argv,match", [
    (["bench", "run", "smok"], "bench suite: unknown 'smok'; did you mean 'smoke'?"),
    (["bench", "run", "smoke", "--only", "gdss-dem"], "did you mean 'gdss-demo'?"),
    (["bench", "run", "smoke", "--minutes", "0"], "--minutes must be > 0"),
    (["bench", "run", "smoke", "--raw-from", "/nonexistent/raw"], "--raw-from /nonexistent/raw: not a folder"),
    (["bench", "compare", "/nonexistent/results"], "no results.json"),
    (["bench", "compare", "benchmarks/results/threads-cpu"], "the 'threads' suite writes rows of its own kind"),
])
def test_bad_input_is_one_line(argv, match, capsys, tmp_path):
    if argv[1] == "run":
        argv = argv + ["--out", str(tmp_path / "o")]
    argv = [str(REPO / a) if a.startswith("benchmarks/") else a for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert match in err and err.count("\n") == 1 and "Traceback" not in err


def test_an_imported_entry_needs_model_and_is_labelled_as_the_authors_weights(tmp_path, capsys):
    from graphdiff.bench.runner import _method, budget_text, run_suite

    entry = next(e for e in SUITES["qm9"].entries if e.imported)
    assert entry.name == "gdss-imported" and entry.preset == "gdss-qm9"
    res = run_suite("qm9", out=tmp_path, only=["gdss-imported"], root=tmp_path / "data", raw_from=tmp_path)
    assert res["rows"] == [] and "skipped" in capsys.readouterr().out
    row = {"entry": "gdss-imported", "preset": "gdss-qm9", "steps": 1000, "imported": "the GDSS authors' ...",
           "train": {"steps": 0, "batch_size": 32}, "cuda": False}
    assert _method(row) == "graphdiff gdss-imported (authors' weights), 1000 steps"
    assert budget_text(row) == "the authors' weights, imported (CPU sampling)"
