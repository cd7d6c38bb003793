"""graphdiff sample --cond / --guidance / --nodes: a conditioned model (the bundled lggm-base) sampled from the
command line as from Python, and the flags' one-line errors."""

import json

import pytest

from graphdiff.cli import main
from graphdiff.pipeline import GraphDiffusionPipeline
from tests.conftest import one_error_line


def _edges(path):
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    return [(r["num_nodes"], sorted(map(tuple, r["edges"]))) for r in rows]


@pytest.fixture(scope="module")
def base():
    return GraphDiffusionPipeline.from_pretrained("lggm-base")


def _cli(tmp_path, name, *flags):
    out = tmp_path / f"{name}.jsonl"
    assert main(["sample", "--model", "lggm-base", "-n", "3", "--steps", "2", "--quiet", "--out", str(out),
                 *flags]) == 0
    return out


def test_cond_and_nodes_reach_the_model_as_in_python(tmp_path, base, capsys):
    out = _cli(tmp_path, "tree", "--cond", "domain=tree", "--nodes", "12")
    printed = capsys.readouterr().out
    got = _edges(out)
    assert [n for n, _ in got] == [12, 12, 12]
    want = base.sample(3, steps=2, seed=0, progress=False, n_nodes=12, cond={"domain": "tree"}, output="networkx")
    assert got == [(g.number_of_nodes(), sorted(tuple(sorted(e)) for e in g.edges())) for g in want]
    # the domain's validity rule is counted (trees have one), on these graphs
    from graphdiff.metrics.vun import validity_for_dataset

    k = sum(validity_for_dataset("tree")(g) for g in want)
    assert f"; {k} of 3 are valid tree graphs" in printed
    # another domain is another condition: other graphs from the same seed
    assert _edges(_cli(tmp_path, "grid", "--cond", "domain=grid", "--nodes", "12")) != got


def test_guidance_and_per_sample_sizes(tmp_path, base):
    got = _edges(_cli(tmp_path, "g", "--cond", "domain=planar", "--guidance", "1.5", "--nodes", "10,14,18"))
    assert [n for n, _ in got] == [10, 14, 18]
    want = base.sample(3, steps=2, seed=0, progress=False, n_nodes=[10, 14, 18], cond={"domain": "planar"},
                       guidance=1.5, output="networkx")
    assert got == [(g.number_of_nodes(), sorted(tuple(sorted(e)) for e in g.edges())) for g in want]
    plain = _edges(_cli(tmp_path, "p", "--cond", "domain=planar", "--nodes", "10,14,18"))
    assert plain != got  # the weight changes the samples


@pytest.mark.parametrize("flags, words", [
    (["--cond", "domain=plannar"], ["unknown domain 'plannar'", "did you mean 'planar'", "sbm"]),
    (["--cond", "densty=0.1", "--cond", "domain=sbm"], ["unknown condition column 'densty'", "takes domain"]),
    (["--cond", "domain"], ["--cond 'domain'", "NAME=VALUE"]),
    (["--cond", "domain=sbm", "--cond", "domain=tree"], ["--cond domain given twice"]),
    (["--cond", "domain=yes"], ["unknown domain 'yes'"]),  # typed text, not YAML's True
    (["--cond", "domain="], ["--cond NAME=: the value is empty"]),
    (["--cond", "domain=[tree, grid]"], ["2 values for 3 samples"]),
    (["--guidance", "2"], ["--guidance needs --cond"]),
    (["--cond", "domain=sbm", "--guidance", "nan"], ["--guidance must be a finite number"]),
    (["--nodes", "ten"], ["--nodes 'ten'", "integer"]),
    (["--nodes", "10,12"], ["--nodes '10,12': 2 sizes for -n 3 samples"]),
    (["--nodes", "0"], ["--nodes 0: this model makes graphs of 1 to"]),
    (["--nodes", "5000"], ["--nodes 5000: this model makes graphs of 1 to"]),
    (["--cond", "n_nodes=30", "--nodes", "30"], ["both give the size"]),
    (["--cond", "domain=sbm", "--set", "cond=1"], ["give it once"]),
    (["--guide", "self", "--cond", "domain=sbm"], ["--guide self does not take --cond"]),
    (["--guide", "best_of_n", "--reward", "qed", "--cond", "domain=sbm"], ["--guide best_of_n does not take --cond"]),
])
def test_bad_condition_flags_are_one_line_errors(tmp_path, capsys, flags, words):
    out = tmp_path / "x.jsonl"
    rc = main(["sample", "--model", "lggm-base", "-n", "3", "--steps", "2", "--quiet", "--out", str(out), *flags])
    assert rc != 0
    line = one_error_line(capsys)
    for w in words:
        assert w in line
    assert not out.exists()


def test_cond_on_a_model_without_conditions_is_refused(tmp_path, capsys):
    rc = main(["sample", "--model", "qm9-defog", "-n", "2", "--steps", "2", "--quiet", "--cond", "qed=0.9",
               "--out", str(tmp_path / "x.smi")])
    assert rc != 0 and "trained without graph-level conditions" in one_error_line(capsys)


def test_models_info_says_how_to_ask_for_a_condition(capsys):
    assert main(["models", "info", "lggm-base"]) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line.startswith("Conditions (graphdiff sample --cond NAME=VALUE")
    domains = GraphDiffusionPipeline.from_pretrained("lggm-base").schema.extra["conditions"]["categorical"]["domain"]
    assert f"domain={'|'.join(domains)}" in line
    assert main(["models", "info", "qm9-defog"]) == 0
    assert "Conditions (" not in capsys.readouterr().out  # an unconditioned model: no such line


def test_one_domain_per_sample(tmp_path, base, capsys):
    out = _cli(tmp_path, "mixed", "--cond", "domain=[tree, grid, planar]", "--nodes", "12")
    printed = capsys.readouterr().out
    want = base.sample(3, steps=2, seed=0, progress=False, n_nodes=12, cond={"domain": ["tree", "grid", "planar"]},
                       output="networkx")
    assert _edges(out) == [(g.number_of_nodes(), sorted(tuple(sorted(e)) for e in g.edges())) for g in want]
    assert "valid" not in printed  # no one family to check the samples against



def test_models_info_of_a_model_without_a_card_names_its_conditions(tmp_path, base, capsys):
    base.save_pretrained(tmp_path / "m")  # weights and config, no card
    assert main(["models", "info", str(tmp_path / "m")]) == 0
    out = capsys.readouterr().out
    assert "a model without a card" in out and "domain=erdos_renyi|" in out


def test_numeric_conditions_from_the_command_line(tmp_path, capsys):
    """A tiny corpus model with numeric conditions: --cond values are typed text, read as numbers, and a node count
    asked for by name is also the size drawn (as in Python)."""
    over = {"model": {"n_layers": 1, "hidden_x": 16, "hidden_e": 8, "hidden_y": 8, "n_heads": 2, "ff_x": 16,
                      "ff_e": 8, "ff_y": 8, "extra_features": ["cycles"]},
            "train": {"max_steps": 2, "ckpt_every": 2, "batch_size": 8}, "sample": {"steps": 2},
            "dataset_options": {"per_domain": 3, "download": False, "conditions": ["n_nodes", "density"]}}
    pipe = GraphDiffusionPipeline.fit("lggm", preset="digress-lggm", out=tmp_path / "run", root=tmp_path / "data",
                                      overrides=over, progress=False)
    capsys.readouterr()  # the corpus's lines about domains without raw files
    out = tmp_path / "x.jsonl"
    assert main(["sample", "--model", str(tmp_path / "run"), "-n", "2", "--steps", "2", "--quiet", "--out", str(out),
                 "--cond", "domain=tree", "--cond", "n_nodes=12", "--cond", "density=0.3"]) == 0
    want = pipe.sample(2, steps=2, seed=0, progress=False, cond={"domain": "tree", "n_nodes": 12, "density": 0.3},
                       output="networkx")
    assert _edges(out) == [(g.number_of_nodes(), sorted(tuple(sorted(e)) for e in g.edges())) for g in want]
    assert [n for n, _ in _edges(out)] == [12, 12]
    assert main(["sample", "--model", str(tmp_path / "run"), "-n", "2", "--out", str(tmp_path / "y.jsonl"),
                 "--cond", "domain=tree", "--cond", "density=dense"]) != 0
    assert "cond['density']: expected a number, got 'dense'" in one_error_line(capsys)
