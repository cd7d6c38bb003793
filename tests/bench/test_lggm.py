"""`graphdiff bench run lggm`: the leave-one-domain-out protocol end to end on tiny generated domains (no shared
files): every (held-out domain, method) row, lineage of the fine-tuned models, the few-shot and pre-training sets,
the zero-shot condition, the summary line computed from the rows, one-line errors."""

import copy
import json
import re
from pathlib import Path

import networkx as nx
import numpy as np
import pytest
import torch

from graphdiff import GraphDiffusionPipeline
from graphdiff.bench.lggm import STATS, held_out_options, summarize
from graphdiff.cli import main
from graphdiff.data import load_dataset
from graphdiff.data.multidomain import DOMAIN_NAMES
from graphdiff.errors import DataError
from tests.conftest import one_error_line

HELD_OUT = ("tree", "lobster")
NS = (4, 10)
TINY = ["--set", "lggm.held_out=[tree,lobster]", "--set", "lggm.train_graphs=[4,10]", "--set",
        "lggm.finetune_steps=3", "--set", "lggm.pretrain_steps=3", "--set", "lggm.sample_steps=2",
        "--set", "dataset_options.per_domain=15", "--set", "dataset_options.download=false",
        "--set", "dataset_options.domains=[tree,lobster,erdos_renyi]",
        "--set", "model.n_layers=1", "--set", "model.hidden_x=16", "--set", "model.hidden_e=8", "--set",
        "model.hidden_y=8", "--set", "model.n_heads=2", "--set", "model.ff_x=16", "--set", "model.ff_e=8",
        "--set", "model.ff_y=8", "--set", "model.extra_features=[]", "--bootstrap", "10", "--quiet"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """One tiny run; every sample() call is recorded with the condition the denoiser actually received."""
    out = tmp_path_factory.mktemp("lggm") / "out"
    calls = []
    original = GraphDiffusionPipeline.sample

    def recording(self, n, **kw):
        seen = []
        hook = self.denoiser.register_forward_pre_hook(lambda mod, args: seen.append(args[2].detach().clone()))
        try:
            return original(self, n, **kw)
        finally:
            hook.remove()
            calls.append({"folder": (self.source or {}).get("folder"), "n_nodes": list(kw.get("n_nodes") or []),
                          "y": torch.cat(seen)})

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(GraphDiffusionPipeline, "sample", recording)
        assert main(["bench", "run", "lggm", "--out", str(out), *TINY]) == 0
    return out, json.loads((out / "results.json").read_text()), calls


def test_a_row_for_every_held_out_domain_and_method(run):
    _, res, _ = run
    want = [(d, m, n) for d in HELD_OUT for m, n in [("zero-shot", 0)] + [(m, n) for n in NS
                                                                         for m in ("fine-tuned", "scratch")]]
    assert [(r["held_out"], r["method"], r["train_graphs"]) for r in res["rows"]] == want
    for r in res["rows"]:
        assert r["train"]["steps"] == (0 if r["method"] == "zero-shot" else 3)
        assert r["pretrain"]["steps"] == 3 and r["steps"] == 2
        assert r["samples"] == r["evaluation"]["test_graphs"] > 0
        for s in STATS:
            st = r["result"]["mmd"]["stats"][s]
            assert st["ci_low"] <= st["ci_high"] and st["bootstrap"] == 10 and r["metrics"][s] == st["mmd2"]
        assert r["metrics"]["mean_mmd"] == pytest.approx(np.mean([r["metrics"][s] for s in STATS]))
        assert r["result"]["vun"]["validity"] == f"is_{r['held_out']}_graph" and r["metrics"]["vun"] is not None
    assert res["kind"] == "lggm" and res["settings"]["finetune_steps"] == 3 and res["wall_minutes"] < 3


def test_fine_tuned_models_name_the_pretrained_base_in_their_lineage(run):
    _, res, _ = run
    for r in res["rows"]:
        cfg = json.loads((Path(r["model"]) / "config.json").read_text()) if r["method"] != "zero-shot" else None
        if r["method"] == "fine-tuned":
            record = cfg["finetune"]["lineage"][-1]
            assert record["base"] == r["pretrain"]["model"] and record["steps"] == 3
            assert record["base_sha256"] and r["lineage"] == record
        elif r["method"] == "scratch":
            assert not (cfg.get("finetune") or {}).get("lineage")


def test_few_shot_sets_hold_exactly_n_graphs_of_the_held_out_domain_and_pretraining_none(run):
    out, res, _ = run
    root = out / "data"
    for d in HELD_OUT:
        rows = {(r["method"], r["train_graphs"]): r for r in res["rows"] if r["held_out"] == d}
        pre = load_dataset("lggm", root=root, **rows["zero-shot", 0]["pretrain"]["dataset_options"])
        assert d not in pre.domains and pre.domains and len(pre) > 0
        for split in ("train", "val", "test"):
            assert d not in pre.split(split).domain_counts()
        full = load_dataset("lggm", root=root, **rows["zero-shot", 0]["evaluation"]["dataset_options"])
        train_sets = {}
        for n in NS:
            assert rows["fine-tuned", n]["data"] == rows["scratch", n]["data"]
            few = load_dataset("lggm", root=root, **rows["fine-tuned", n]["data"]["dataset_options"])
            assert few.split("train").domain_counts() == {d: n} and len(few.split("train")) == n
            assert few.split("test").num_nodes().tolist() == full.split("test").num_nodes().tolist()
            assert few.schema.graph_features == pre.schema.graph_features  # nothing to grow
            train_sets[n] = {tuple(sorted(g.edges())) for g in few.split("train").to_networkx()}
        assert train_sets[4] <= train_sets[10]  # the smaller set inside the larger


def test_every_model_samples_with_the_held_out_condition_and_test_sizes(run):
    out, res, calls = run
    assert len(calls) == len(res["rows"])
    for call, r in zip(calls, res["rows"]):
        d = r["held_out"]
        domain = call["y"][:, :len(DOMAIN_NAMES)]
        assert domain.sum(1).eq(1).all() and domain.argmax(1).eq(DOMAIN_NAMES.index(d)).all()
        test = load_dataset("lggm", root=out / "data", **r["evaluation"]["dataset_options"]).split("test")
        assert call["n_nodes"] == test.num_nodes().tolist()
        zero_shot = call["folder"] is not None and call["folder"].startswith(r["pretrain"]["model"])
        assert zero_shot == (r["method"] == "zero-shot")


def test_results_md_has_the_summary_line_computed_from_the_rows(run):
    out, res, _ = run
    md = (out / "results.md").read_text()
    m = re.search(r"Fine-tuned beats scratch on (\d+) of (\d+) \(domain, n\) pairs on mean MMD\^2", md)
    assert m
    pairs = [(next(r for r in res["rows"] if r["held_out"] == d and r["method"] == "fine-tuned"
                   and r["train_graphs"] == n), next(r for r in res["rows"] if r["held_out"] == d
                                                     and r["method"] == "scratch" and r["train_graphs"] == n))
             for d in HELD_OUT for n in NS]
    wins = sum(ft["metrics"]["mean_mmd"] < sc["metrics"]["mean_mmd"] for ft, sc in pairs)
    assert (int(m.group(1)), int(m.group(2))) == (wins, 4) and res["summary"]["wins"] == wins
    assert "## Held out: tree" in md and "## Held out: lobster" in md and "| fine-tuned n=10 | 10 | 3 |" in md
    # a row made to win flips the count
    rows = json.loads(json.dumps(res["rows"]))
    ft, sc = (next(r for r in rows if r["held_out"] == "tree" and r["method"] == m and r["train_graphs"] == 4)
              for m in ("fine-tuned", "scratch"))
    ft["metrics"]["mean_mmd"], sc["metrics"]["mean_mmd"] = 0.0, 1.0
    assert summarize(rows)["wins"] == wins + (not pairs[0][0]["metrics"]["mean_mmd"] < pairs[0][1]["metrics"]
                                              ["mean_mmd"])


def test_list_shows_the_lggm_suite(capsys):
    assert main(["bench", "list"]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("lggm "))
    assert "(lggm)" in line and "planar, sbm, enzymes, ego_small" in line


def test_train_limit_caps_only_the_train_split(tmp_path):
    kw = {"root": tmp_path, "download": False, "domains": ["tree"], "per_domain": 20}
    full = load_dataset("lggm", **kw)
    few = load_dataset("lggm", train_limit=5, **kw)
    assert len(few.split("train")) == 5 and len(full.split("train")) == 16
    for split in ("val", "test"):
        assert few.split(split).num_nodes().tolist() == full.split(split).num_nodes().tolist()
    assert few.info["domains"]["tree"]["train_limit"] == {"kept": 5, "of": 16}
    with pytest.raises(DataError, match="train_limit must be a positive integer, got 0"):
        load_dataset("lggm", train_limit=0, **kw)


def test_held_out_set_keeps_family_max_nodes_only_for_a_sized_family():
    opts = {"exclude": ["sbm"], "conditions": ["density"], "family_max_nodes": 200}
    stats = {"density": {"mean": 0.1, "std": 0.05}}
    sbm = held_out_options(opts, "sbm", stats, 50)
    assert sbm == {"conditions": ["density"], "condition_stats": stats, "domains": ["sbm"], "train_limit": 50}
    assert held_out_options(opts, "erdos_renyi", stats)["family_max_nodes"] == 200
    # pinned statistics are recorded as the corpus reads them (float, the conditions only), so one scaling typed two
    # ways is one held-out set for `bench compare`
    typed = {**opts, "condition_stats": {"density": {"mean": 0.1, "std": 1}, "clustering": {"mean": 0, "std": 1}}}
    assert held_out_options(typed, "sbm", None)["condition_stats"] == {"density": {"mean": 0.1, "std": 1.0}}
    assert type(held_out_options(typed, "sbm", None)["condition_stats"]["density"]["std"]) is float


@pytest.mark.parametrize("extra,match", [
    (["--set", "lggm.held_out=[plannar]"], r"lggm.held_out: unknown 'plannar'; did you mean 'planar'\?"),
    (["--set", "lggm.finetune_step=3"], r"unknown key 'finetune_step'; did you mean 'finetune_steps'\?"),
    (["--set", "lggm.train_graphs=[0]"], "lggm.train_graphs must be a positive integer, got 0"),
    (["--set", "lggm.seed=abc"], "lggm.seed must be a non-negative integer, got .abc."),
    (["--set", "lggm.train_graphs=[99]"], "held-out domain tree has 12 train graphs, cannot fine-tune on 99"),
    (["--model", "somewhere"], "--model: the lggm suite pre-trains and fine-tunes its own models"),
    (["--set", "lggm.methods=[finetuned]"], r"lggm.methods: unknown 'finetuned'; did you mean 'fine-tuned'\?"),
    (["--set", "lggm.methods=[]"], "lggm.methods: give at least one of zero-shot, fine-tuned, scratch"),
    (["--set", "lggm.methods=3"], "lggm.methods must be a list of arms"),
    (["--set", "lggm.given=median"], r"lggm.given: unknown 'median'.*choose from by_size, mean"),
    (["--only", "sbn"], r"--only 'sbn' is not a held-out domain of this run; did you mean 'sbm'\?"),
])
def test_bad_input_is_one_line(extra, match, tmp_path, capsys):
    base = ["bench", "run", "lggm", "--out", str(tmp_path / "o"), "--set", "dataset_options.download=false",
            "--set", "dataset_options.per_domain=15", "--set", "dataset_options.domains=[tree,lobster]"]
    if "--only" not in extra and "held_out" not in " ".join(extra):
        base += ["--set", "lggm.held_out=[tree]"]
    assert main(base + extra) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and re.search(match, err)


def _again(first: Path, held_out: str = "tree") -> list[str]:
    """TINY for one held-out domain, fine-tuning the models the run in ``first`` pre-trained."""
    args = [f"lggm.held_out=[{held_out}]" if a == "lggm.held_out=[tree,lobster]" else a for a in TINY]
    return args + ["--set", f"lggm.pretrained={first}"]


def test_a_rerun_fine_tunes_the_models_a_previous_run_pre_trained(run, tmp_path):
    first, res, _ = run
    out = tmp_path / "again"
    assert main(["bench", "run", "lggm", "--out", str(out), *_again(first), "--set", "finetune.warmup_steps=0"]) == 0
    again = json.loads((out / "results.json").read_text())
    assert not (out / "runs" / "tree" / "pretrain").exists()  # nothing pre-trained again
    before = {(r["method"], r["train_graphs"]): r for r in res["rows"] if r["held_out"] == "tree"}
    rows = {(r["method"], r["train_graphs"]): r for r in again["rows"]}
    assert set(rows) == set(before)
    for r in rows.values():
        assert r["pretrain"]["reused_from"] == str(first.resolve())
        assert r["pretrain"]["model"] == str(first.resolve() / "runs" / "tree" / "pretrain")
        assert r["pretrain"]["steps"] == before["zero-shot", 0]["pretrain"]["steps"] == 3
    # the same pre-trained model, the same seed: the same zero-shot graphs and scores
    assert rows["zero-shot", 0]["metrics"] == before["zero-shot", 0]["metrics"]
    for n in NS:  # the fine-tune settings of this run, not the defaults the first run used
        assert rows["fine-tuned", n]["train"]["warmup_steps"] == 0 != before["fine-tuned", n]["train"]["warmup_steps"]
        assert rows["fine-tuned", n]["lineage"]["base"] == rows["zero-shot", 0]["pretrain"]["model"]
    md = (out / "results.md").read_text()
    assert f"pre-trained by the run in {first.resolve()}" in md and "warm-up steps (--set finetune.*)" in md
    assert f"Pre-trained models: those of the run in {first.resolve()}" in md


@pytest.mark.parametrize("extra,match", [
    (["--set", "dataset_options.per_domain=16"], r"pre-trained with other settings than this one \(per_domain\)"),
    (["--set", "model.hidden_x=32"], r"other settings than this one \(model.hidden_x\)"),
])
def test_a_reused_pre_training_must_be_the_one_this_run_would_do(extra, match, run, tmp_path, capsys):
    first, _, _ = run
    assert main(["bench", "run", "lggm", "--out", str(tmp_path / "o"), *_again(first), *extra]) == 2
    assert re.search(match, one_error_line(capsys))
    assert not (tmp_path / "o" / "runs").exists()


def test_a_reused_folder_must_hold_that_domains_pre_training(run, tmp_path, capsys):
    first, _, _ = run
    assert main(["bench", "run", "lggm", "--out", str(tmp_path / "o"), *_again(first, "erdos_renyi")]) == 2
    assert "no model pre-trained without erdos_renyi (it holds: lobster, tree)" in one_error_line(capsys)
    assert main(["bench", "run", "lggm", "--out", str(tmp_path / "o"), *_again(tmp_path / "none")]) == 2
    assert "has no results.json (give a previous lggm run's --out folder)" in one_error_line(capsys)


@pytest.mark.parametrize("given", ["by_size", "mean"])
def test_numeric_conditions_ask_each_model_for_the_statistics_of_its_training_graphs(given, tmp_path):
    """With density among the corpus's conditions, every model samples with the density of the graphs it was given
    (zero-shot: the smallest few-shot set's): by default (lggm.given=by_size) each sample that of the given graphs
    nearest its node count, with lggm.given=mean one mean for every sample."""
    from graphdiff.bench.lggm import given_statistics
    from graphdiff.data.conditions import statistics_by_size

    out, calls = tmp_path / "out", []
    original = GraphDiffusionPipeline.sample

    def recording(self, n, **kw):
        graphs = original(self, n, **kw)
        calls.append((dict(kw.get("cond") or {}), list(kw.get("n_nodes") or []), graphs))
        return graphs

    # lobster, 30 graphs a domain: test graphs of three sizes (a tree's are all of 64 nodes)
    args = [a.replace("held_out=[tree,lobster]", "held_out=[lobster]").replace("[4,10]", "[4]")
            .replace("per_domain=15", "per_domain=30") for a in TINY]
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(GraphDiffusionPipeline, "sample", recording)
        assert main(["bench", "run", "lggm", "--out", str(out), *args, "--set",
                     "dataset_options.conditions=[n_nodes, density]",
                     *(["--set", f"lggm.given={given}"] if given != "by_size" else [])]) == 0
    res = json.loads((out / "results.json").read_text())
    assert res["settings"]["given"] == given
    few = res["rows"][1]["data"]["dataset_options"]
    graphs = load_dataset("lggm", root=out / "data", **few).split("train").to_networkx()
    sizes = calls[0][1]
    assert [r["method"] for r in res["rows"]] == ["zero-shot", "fine-tuned", "scratch"]
    assert all(c["domain"] == "lobster" and s == sizes for c, s, _ in calls) and len(set(sizes)) > 1
    if given == "mean":
        want = given_statistics(graphs, ["density"])["density"]
        assert 0 < want < 1
    else:  # a lobster is a tree, density 2 / n: smaller test graphs ask for denser ones
        want = statistics_by_size(graphs, ["density"], sizes)["density"]
        assert len(set(want)) > 1 and want[int(np.argmin(sizes))] > want[int(np.argmax(sizes))]
        assert want != [given_statistics(graphs, ["density"])["density"]] * len(sizes)
    assert [c["density"] for c, _, _ in calls] == [want] * 3
    assert [r["cond"] for r in res["rows"]] == [{"domain": "lobster", "density": want}] * 3
    assert all(r["sizes"] == sizes for r in res["rows"])  # what each value of a by-size condition belongs to
    # each row says how closely its samples met the density they were asked for, from the samples themselves
    asked = np.broadcast_to(np.asarray(want, dtype=float), (len(sizes),))
    for r, (_, _, graphs) in zip(res["rows"], calls):
        got = np.array([nx.density(g) for g in graphs])
        a = r["adherence"]["density"]
        assert list(r["adherence"]) == ["density"] and a["graphs"] == len(sizes)
        assert a["asked"] == pytest.approx(asked.mean(), abs=1e-5) and a["got"] == pytest.approx(got.mean(), abs=1e-5)
        assert a["mean_abs_error"] == pytest.approx(np.abs(got - asked).mean(), abs=1e-5)
        assert a["ratio"] == pytest.approx(got.mean() / asked.mean(), abs=1e-3)
        assert a["relative_error"] == pytest.approx(np.abs(got - asked).mean() / asked.mean(), abs=1e-3)
        if given == "mean":  # one ask for every sample: nothing to correlate with
            assert a["correlation"] is None
        else:
            assert a["correlation"] == pytest.approx(np.corrcoef(asked, got)[0, 1], abs=1e-3)
    md = (out / "results.md").read_text()
    a = res["rows"][1]["adherence"]["density"]
    assert f"Conditions met, fine-tuned n=4 ({len(sizes)} samples; means over them): density asked " in md
    rel = np.abs(np.array([nx.density(g) for g in calls[1][2]]) - asked).mean() / asked.mean()
    shown = re.search(r"Conditions met, fine-tuned n=4 .*?\((\d\.\d\d)x, mean \|error\| (\d+)% of the ask", md)
    assert shown and float(shown[1]) == pytest.approx(a["ratio"], abs=0.006)
    assert float(shown[2]) == pytest.approx(100 * rel, abs=0.51)
    assert "- Numeric conditions: density of the graphs each model was given" in md
    assert f"(lggm.given={given}); n_nodes the sample's own." in md


def test_results_md_says_what_each_condition_transfer_chose():
    """A fine-tune with finetune.condition_transfer gets one line under its domain's table: the domain whose column
    had the lowest base loss, by how many standard errors, and whether the fine-tune started from it."""
    from graphdiff.bench.lggm import transfer_lines

    def ft(n, losses, z, taken):
        rec = {"group": "domain", "value": "sbm", "losses": losses, "z": z, "threshold": 3.0,
               "from": "planar" if taken else None}
        return {"method": "fine-tuned", "train_graphs": n, "lineage": {"condition_transfer": [rec]}}

    rows = [{"method": "zero-shot", "train_graphs": 0},
            ft(10, {"planar": 0.96, "sbm": 0.97, "tree": 1.05}, 2.22, False),
            ft(50, {"planar": 0.90, "sbm": 1.30}, 7.5, True),
            ft(20, {"planar": 0.99, "sbm": 0.95}, -1.0, False),
            ft(40, {"planar": 0.80, "sbm": 1.20}, None, True),  # every paired difference equal: no finite z
            {"method": "fine-tuned", "train_graphs": 30, "lineage": {"method": "full"}},  # no transfer asked
            {"method": "scratch", "train_graphs": 10}]
    lines = transfer_lines(rows)
    assert len(lines) == 5 and lines[-1] == ""
    assert lines[0].startswith("Condition transfer, fine-tuned n=10: domain `sbm`: lowest base loss under `planar`")
    assert "2.22 standard errors" in lines[0] and "threshold is 3" in lines[0] and "kept its own column" in lines[0]
    assert "over the 3 domain values 0.96 to 1.05" in lines[0]
    assert "n=50" in lines[1] and "started from `planar`'s column" in lines[1] and "7.5 standard errors" in lines[1]
    assert "n=20" in lines[2] and "its own column has the lowest base loss (0.95): kept its own column" in lines[2]
    assert "n=40" in lines[3] and "an unbounded margin" in lines[3] and "started from `planar`" in lines[3]
    assert transfer_lines([r for r in rows if r["train_graphs"] in (0, 30)]) == []


def test_checkpoint_selection_scores_the_validation_best_weights_of_each_arm(run, tmp_path):
    first, res, _ = run
    out = tmp_path / "select"
    assert main(["bench", "run", "lggm", "--out", str(out), *_again(first), "--set", "lggm.select_every=2"]) == 0
    again = json.loads((out / "results.json").read_text())
    assert again["settings"]["select_every"] == 2
    before = {(r["method"], r["train_graphs"]): r for r in res["rows"] if r["held_out"] == "tree"}
    base = GraphDiffusionPipeline.from_pretrained(first / "runs" / "tree" / "pretrain").denoiser.state_dict()
    md = (out / "results.md").read_text()
    for r in again["rows"]:
        if r["method"] == "zero-shot":
            assert "selection" not in r
            continue
        sel = r["selection"]
        # candidates: every 2nd step and the last (K = 3); the fine-tune's starting point too
        steps = [0, 2, 3] if r["method"] == "fine-tuned" else [2, 3]
        assert [int(k) for k in sel["scores"]] == steps and sel["split"] == "val" and sel["val_graphs"] > 0
        scores = {int(k): v for k, v in sel["scores"].items()}
        assert sel["chosen_step"] == min(scores, key=scores.get)
        # the training itself is the one a run without selection makes (same random stream, same last loss; the
        # thread count follows the machine's load, so the sums may differ in the last digits)
        assert r["train"]["final_loss"] == pytest.approx(
            before[r["method"], r["train_graphs"]]["train"]["final_loss"], rel=1e-4)
        chosen = GraphDiffusionPipeline.from_pretrained(r["model"]).denoiser.state_dict()
        if sel["chosen_step"] == 3:  # the last step's model, as without selection
            assert Path(r["model"]).name in ("model", "checkpoint")
        else:
            assert Path(r["model"]).name == "selected"
            last = Path(r["model"]).parent / ("model" if r["method"] == "fine-tuned" else "checkpoint")
            final = GraphDiffusionPipeline.from_pretrained(last).denoiser.state_dict()
            assert any(not torch.equal(chosen[k], final[k]) for k in final)
        if sel["chosen_step"] == 0:  # the base itself
            assert all(torch.equal(chosen[k], base[k]) for k in base)
        assert f"Selection, {r['method']} n={r['train_graphs']}: validation mean MMD^2 by step" in md
    assert "Checkpoint selection: every 2 steps and the last" in md
    assert main(["bench", "run", "lggm", "--out", str(tmp_path / "bad"), *_again(first), "--set",
                 "lggm.select_every=-1"]) == 2


def test_one_arm_alone_with_other_fine_tune_settings_joins_an_earlier_runs_rows(run, tmp_path, capsys):
    first, res, _ = run
    out = tmp_path / "ft-only"
    assert main(["bench", "run", "lggm", "--out", str(out), *_again(first), "--set", "lggm.methods=[fine-tuned]",
                 "--set", "finetune.marginals=base", "--set", "train.seed=3"]) == 0
    rows = json.loads((out / "results.json").read_text())["rows"]
    assert [(r["method"], r["train_graphs"]) for r in rows] == [("fine-tuned", n) for n in NS]
    assert {r["train"]["seed"] for r in rows} == {3}  # the run's train settings reach the fine-tune too
    assert "fine-tuned rows only (lggm.methods), no fine-tuned and scratch pair" in (out / "results.md").read_text()
    base = GraphDiffusionPipeline.from_pretrained(first / "runs" / "tree" / "pretrain")
    for r in rows:
        ft = GraphDiffusionPipeline.from_pretrained(r["model"])
        assert ft.config.finetune.marginals == "base" and ft.schema.edge_marginals == base.schema.edge_marginals
    before = {(r["method"], r["train_graphs"]) for r in res["rows"] if r["held_out"] == "tree"}
    assert not (out / "runs" / "tree" / "scratch-n4").exists() and ("scratch", 4) in before
    # the scratch arm with the same seed in a run of its own, on the same base: the two pair up in bench compare
    sc = tmp_path / "sc-only"
    assert main(["bench", "run", "lggm", "--out", str(sc), *_again(first), "--set", "lggm.methods=[scratch]",
                 "--set", "train.seed=3"]) == 0
    capsys.readouterr()
    assert main(["bench", "compare", str(first), str(out), str(sc)]) == 0
    text = capsys.readouterr().out
    tree = [part for part in text.split("### ") if part.startswith("tree, ")]
    assert [part.split(",")[1].strip() for part in tree] == [f"n = {n}" for n in NS]
    for part in tree:  # each recipe paired with the scratch row of its own seed (0 in the first run, 3 here)
        assert "| arm | seed 0/0 | seed 3/0 | mean | sd |" in part
        assert "- fine-tuned: below scratch in " in part and " of 1 seeds" in part
        assert "- fine-tuned (finetune.marginals=base): below scratch in " in part
        assert part.count(" of 1 seeds") == 2


def test_a_scratch_only_run_pre_trains_nothing_and_repeats_the_scratch_rows_of_a_full_run(run, tmp_path, capsys):
    first, res, _ = run
    out = tmp_path / "sc"
    args = [a for a in _again(first) if not a.startswith("lggm.pretrained=")][:-1]  # no base named
    assert main(["bench", "run", "lggm", "--out", str(out), *args, "--set", "lggm.methods=[scratch]"]) == 0
    again = json.loads((out / "results.json").read_text())
    assert not (out / "runs" / "tree" / "pretrain").exists()
    before = {r["train_graphs"]: r for r in res["rows"] if r["held_out"] == "tree" and r["method"] == "scratch"}
    assert [r["method"] for r in again["rows"]] == ["scratch"] * len(NS)
    for r in again["rows"]:  # no base touches the scratch arm: the same seed gives the same model and scores
        assert r["pretrain"]["not_pretrained"] and r["pretrain"]["model"] is None
        assert r["pretrain"]["dataset_options"] == before[r["train_graphs"]]["pretrain"]["dataset_options"]
        assert r["metrics"] == before[r["train_graphs"]]["metrics"]
        assert r["parameters"] == before[r["train_graphs"]]["parameters"]
    md = (out / "results.md").read_text()
    assert "Nothing pre-trained (the scratch arm only" in md and "- Pre-trained models: none" in md
    # a run that pre-trained nothing is no base to fine-tune
    capsys.readouterr()
    assert main(["bench", "run", "lggm", "--out", str(tmp_path / "o"), *_again(out)]) == 2
    assert "no model pre-trained without tree (it holds: none)" in one_error_line(capsys)


def test_selection_keeps_the_weights_whose_samples_match_the_validation_graphs_best():
    import networkx as nx
    from types import SimpleNamespace

    from graphdiff.bench.lggm_select import ValidationSelection

    net = torch.nn.Linear(1, 1)
    pipe = SimpleNamespace(denoiser=net)
    # the "model" draws paths while its weight is positive, stars otherwise; the validation graphs are paths
    draw = lambda p: [nx.path_graph(6) if p.denoiser.weight.item() > 0 else nx.star_graph(5) for _ in range(4)]
    sel = ValidationSelection(2, 5, draw, [nx.path_graph(6) for _ in range(4)])
    for step, w in [(0, -1.0), (2, 1.0), (4, -2.0), (5, -3.0)]:
        with torch.no_grad():
            net.weight.fill_(w)
        sel.consider(pipe, step)
    assert sel.best_step == 2 and sel.scores[2] < min(sel.scores[0], sel.scores[4], sel.scores[5])
    sel.apply(pipe)
    assert net.weight.item() == 1.0
    rec = sel.record()
    assert rec["chosen_step"] == 2 and list(rec["scores"]) == ["0", "2", "4", "5"] and rec["val_graphs"] == 4


def test_selection_of_a_lora_fine_tune_keeps_merged_weights_that_load_into_the_merged_model():
    import networkx as nx
    from types import SimpleNamespace

    from graphdiff.bench.lggm_select import ValidationSelection
    from graphdiff.finetune import add_lora, merge_lora

    torch.manual_seed(0)
    net = add_lora(torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 1)), 2, None, 0.0)
    lora_b = [p for n, p in net.named_parameters() if "lora_B" in n]
    pipe = SimpleNamespace(denoiser=net)
    # paths while the first adapter's B is positive (the chosen candidate), stars otherwise
    draw = lambda p: [nx.path_graph(6) if lora_b[0].sum().item() > 0 else nx.star_graph(5) for _ in range(4)]
    sel = ValidationSelection(1, 2, draw, [nx.path_graph(6) for _ in range(4)])
    with torch.no_grad():
        for p in lora_b:
            p.fill_(0.5)
    sel.consider(pipe, 1)
    chosen = {k: v.clone() for k, v in merge_lora(copy.deepcopy(net)).state_dict().items()}
    with torch.no_grad():
        for p in lora_b:
            p.fill_(-0.5)
    sel.consider(pipe, 2)
    assert sel.best_step == 1
    final = SimpleNamespace(denoiser=merge_lora(net))  # what the arm ends with: the last step, merged
    sel.apply(final)
    assert set(final.denoiser.state_dict()) == set(chosen)
    assert all(torch.equal(final.denoiser.state_dict()[k], chosen[k]) for k in chosen)
