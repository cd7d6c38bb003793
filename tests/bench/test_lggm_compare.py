"""`graphdiff bench compare` over lggm runs: arms split over folders and seeds read together, paired by seed."""

import json

import pytest

from graphdiff.bench.lggm_compare import compare_lggm
from graphdiff.cli import main
from graphdiff.errors import DataError
from tests.conftest import one_error_line

BASE = {"model": "/runs/base/runs/sbm/pretrain", "steps": 2036}


def _run(seed, rows, finetune=None, ns=(50,)):
    """A results file as `graphdiff bench run lggm` writes it, with rows ``(method, n, mean_mmd)``."""
    over = {"train": {"threads": 1, "seed": seed}, **({"finetune": finetune} if finetune else {})}
    return {"suite": "lggm", "settings": {"finetune_steps": 300, "select_every": 100, "seed": seed, "sample_steps": 50,
                                          "train_graphs": list(ns), "overrides": over},
            "rows": [{"entry": f"sbm/{m}", "method": m, "held_out": "sbm", "train_graphs": n, "pretrain": BASE,
                      "train": {"seed": seed} if m != "zero-shot" else {"steps": 0},
                      "metrics": {"mean_mmd": v}} for m, n, v in rows]}


def test_arms_split_over_folders_pair_by_seed_and_count_the_wins():
    runs = [("s0", _run(0, [("zero-shot", 0, 0.07), ("fine-tuned", 50, 0.050), ("scratch", 50, 0.055)])),
            ("s1-ft", _run(1, [("fine-tuned", 50, 0.060)], {"marginals": "base"})),
            ("s1-sc", _run(1, [("scratch", 50, 0.050)])),
            ("s2-ft", _run(2, [("fine-tuned", 50, 0.040)], {"marginals": "base"})),
            ("s2-sc", _run(2, [("scratch", 50, 0.045)])),
            ("s0-ft", _run(0, [("fine-tuned", 50, 0.052)], {"marginals": "base"}))]
    md = compare_lggm(runs)
    assert "| arm | seed 0/0 | seed 1/1 | seed 2/2 | mean | sd |" in md
    # the two fine-tune recipes stay apart; the zero-shot row sits with the n its statistics came from
    assert "| zero-shot | 0.0700 | - | - | 0.0700 | - |" in md
    assert "| scratch | 0.0550 | 0.0500 | 0.0450 | 0.0500 | 0.0050 |" in md
    assert "| fine-tuned (finetune.marginals=base) | 0.0520 | 0.0600 | 0.0400 | 0.0507 | 0.0101 |" in md
    assert "- fine-tuned: below scratch in 1 of 1 seeds; mean over those seeds 0.0500 against 0.0550 (0.91x)." in md
    assert ("- fine-tuned (finetune.marginals=base): below scratch in 2 of 3 seeds; mean over those seeds 0.0507 "
            "against 0.0500 (1.01x).") in md


def test_other_sizes_or_corpora_are_other_comparisons_and_a_run_twice_is_refused(tmp_path, capsys):
    a = _run(0, [("fine-tuned", 10, 0.05), ("scratch", 10, 0.06)], ns=(10,))
    b = _run(0, [("fine-tuned", 50, 0.05), ("scratch", 50, 0.04)])
    c = _run(1, [("fine-tuned", 50, 0.05), ("scratch", 50, 0.04)])
    for r in c["rows"]:  # a corpus without the numeric conditions: scratch scales its conditions otherwise
        r["pretrain"] = {**BASE, "dataset_options": {"exclude": ["sbm"]}}
    md = compare_lggm([("a", a), ("b", b), ("c", c)])
    assert md.count("### sbm") == 3 and md.count("below scratch in 1 of 1 seeds") == 1
    for name, res in (("a", a), ("again", a)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "results.json").write_text(json.dumps(res))
    assert main(["bench", "compare", str(tmp_path / "a"), str(tmp_path / "again")]) == 2
    assert "with seeds 0/0 is in" in one_error_line(capsys)


def test_fine_tunes_of_two_bases_pair_with_one_scratch_arm():
    old = _run(0, [("zero-shot", 0, 0.07), ("fine-tuned", 50, 0.050), ("scratch", 50, 0.055)])
    new = _run(0, [("zero-shot", 0, 0.06), ("fine-tuned", 50, 0.045)])
    new1 = _run(1, [("fine-tuned", 50, 0.044)])
    again = _run(1, [("fine-tuned", 50, 0.052), ("scratch", 50, 0.049)])
    for r in new["rows"] + new1["rows"]:
        r["pretrain"] = {"model": "/runs/longer/runs/sbm/pretrain", "steps": 5000}
    md = compare_lggm([("old", old), ("new", new), ("new1", new1), ("again", again)])
    assert md.count("### sbm, n = 50") == 1 and md.count("### sbm") == 1
    assert "- base 1: /runs/base/runs/sbm/pretrain (2036 steps)" in md
    assert "- base 2: /runs/longer/runs/sbm/pretrain (5000 steps)" in md
    assert "| scratch | 0.0550 | 0.0490 | 0.0520 | 0.0042 |" in md
    assert "| fine-tuned on base 2 | 0.0450 | 0.0440 | 0.0445 | 0.0007 |" in md
    assert "| zero-shot on base 1 | 0.0700 | - | 0.0700 | - |" in md
    assert ("- fine-tuned on base 2: below scratch in 2 of 2 seeds; mean over those seeds 0.0445 against 0.0520 "
            "(0.86x).") in md
    assert "- fine-tuned on base 1: below scratch in 1 of 2 seeds" in md
    # one scratch computation named by two runs is read once, and the second reading is shown; a scratch row that
    # scores otherwise is not the same computation (other code or machine), nor is a network of another size
    rerun = _run(1, [("scratch", 50, 0.049)])
    md = compare_lggm([("old", old), ("again", again), ("rerun", rerun)])
    assert "- scratch seed 1/1 is in again and in rerun (0.0490 in both)." in md
    other = _run(1, [("scratch", 50, 0.047)])
    with pytest.raises(DataError, match=r"other: sbm/scratch with seeds 1/1 scores 0.0470 where again has 0.0490"):
        compare_lggm([("again", again), ("other", other)])
    for r in other["rows"]:
        r["parameters"] = 5_000_000
    md = compare_lggm([("again", again), ("other", other)])
    assert md.count("### sbm") == 2 and "5,000,000 parameters" in md
    with pytest.raises(DataError, match="compare each run once"):  # one folder given twice
        compare_lggm([("rerun", rerun), ("rerun", rerun)])


def test_bases_of_other_corpora_pair_with_scratch_where_the_held_out_set_is_the_same():
    """The group follows the held-out set the row records (``evaluation``), not the corpus: a base pre-trained on a
    wider corpus with the condition scaling pinned pairs with the scratch runs already made; other scaling does not."""
    stats = {"density": {"mean": 0.14, "std": 0.12}}
    held = {"domains": ["sbm"], "conditions": ["density"], "condition_stats": stats}
    old = _run(0, [("fine-tuned", 50, 0.050), ("scratch", 50, 0.055)])
    wide = _run(0, [("fine-tuned", 50, 0.045)])
    moved = _run(1, [("fine-tuned", 50, 0.044)])
    for r in old["rows"]:
        r["pretrain"] = {**BASE, "dataset_options": {"exclude": ["sbm"], "conditions": ["density"]}}
    for r in wide["rows"] + moved["rows"]:
        r["pretrain"] = {"model": "/runs/wide/runs/sbm/pretrain", "steps": 3000, "dataset_options": {
            "exclude": ["sbm"], "conditions": ["density"], "family_max_nodes": 200, "condition_stats": stats}}
    for r in old["rows"] + wide["rows"]:
        r["evaluation"] = {"dataset_options": {**held, "train_limit": 50}}
    moved["rows"][0]["evaluation"] = {"dataset_options": {**held, "condition_stats": {"density": {"mean": 0.1,
                                                                                                  "std": 0.1}}}}
    md = compare_lggm([("old", old), ("wide", wide), ("moved", moved)])
    assert md.count("### sbm") == 2
    first = md.split("### sbm")[1]
    assert "| fine-tuned on base 2 | 0.0450 | 0.0450 | - |" in first and "| scratch | 0.0550 |" in first
    assert "- fine-tuned on base 2: below scratch in 1 of 1 seeds" in first
    assert '- held-out set: {"condition_stats": {"density": {"mean": 0.14, "std": 0.12}}' in first
    assert '- pre-training corpus of fine-tuned on base 2: {"condition_stats"' in first
    assert "family_max_nodes" in first and "train_limit" not in first
    assert "- fine-tuned: no scratch row with the same seeds." in md.split("### sbm")[2]


def test_samples_asked_for_conditions_by_size_or_as_one_mean_are_other_comparisons():
    """Where the corpus has numeric conditions, runs that asked for them by node count (lggm.given=by_size) and as
    one mean (lggm.given=mean, or a run from before the key) are not paired; a corpus without them is one group."""
    corpus = {**BASE, "dataset_options": {"exclude": ["sbm"], "conditions": ["n_nodes", "density", "clustering"]}}
    old = _run(0, [("fine-tuned", 50, 0.050), ("scratch", 50, 0.055)])  # no lggm.given: the mean
    by_size = _run(0, [("fine-tuned", 50, 0.040), ("scratch", 50, 0.052)])
    by_size["settings"]["given"] = "by_size"
    mean = _run(1, [("scratch", 50, 0.049)])
    mean["settings"]["given"] = "mean"
    for r in old["rows"] + by_size["rows"] + mean["rows"]:
        r["pretrain"] = corpus
    md = compare_lggm([("old", old), ("by-size", by_size), ("mean", mean)])
    assert md.count("### sbm") == 2
    assert md.count("conditions asked as one mean (lggm.given=mean)") == 1
    assert md.count("conditions asked by node count (lggm.given=by_size)") == 1
    assert "| scratch | 0.0550 | 0.0490 | 0.0520 | 0.0042 |" in md  # the old run and the explicit mean pair
    assert "- fine-tuned: below scratch in 1 of 1 seeds; mean over those seeds 0.0400 against 0.0520 (0.77x)." in md
    plain = _run(0, [("fine-tuned", 50, 0.050), ("scratch", 50, 0.055)])
    plain["settings"]["given"] = "by_size"  # no numeric conditions: the rule asked nothing
    md = compare_lggm([("plain", plain), ("old-plain", _run(1, [("scratch", 50, 0.05)]))])
    assert md.count("### sbm") == 1 and "conditions asked" not in md


@pytest.mark.parametrize("folder", ["lggm-cpu-sbm-cond60-select-n50"])
def test_the_committed_runs_compare(folder, capsys):
    from pathlib import Path

    d = Path(__file__).resolve().parents[2] / "benchmarks" / "results" / folder
    assert main(["bench", "compare", str(d)]) == 0
    out = capsys.readouterr().out
    assert "- fine-tuned: below scratch in 0 of 1 seeds" in out
