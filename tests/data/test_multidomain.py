"""The multi-domain corpus ``lggm`` (LGGM protocol): domains, skips, determinism, caps, conditions, a tiny model."""

import networkx as nx
import numpy as np
import pytest
import torch

from graphdiff import GraphDiffusionPipeline
from graphdiff.data import load_dataset
from graphdiff.data import multidomain as M
from graphdiff.data.conditions import (condition_adherence, condition_tensor, domain_condition, graph_statistics,
                                       statistics_by_size)
from graphdiff.errors import ConfigError, DataError
from tests.conftest import shared_root

GENERATED = [d.name for d in M.GENERATED]
FILES = [d.name for d in M.FROM_FILES]
STATS = ["n_nodes", "density", "clustering"]


def corpus(root, **kw):
    return load_dataset("lggm", root=root, download=False, **kw)


@pytest.fixture(scope="module")
def gen_root(tmp_path_factory):
    return tmp_path_factory.mktemp("lggm_gen")


@pytest.fixture(scope="module")
def gen(gen_root):
    """Generated domains only (no raw files in this root), 5 graphs each, numeric conditions on."""
    return corpus(gen_root, per_domain=5, conditions=STATS)


@pytest.fixture(scope="module")
def full(tmp_path_factory):
    """Every domain, from the offline copies of the standard files (skips when they are absent)."""
    root = shared_root(tmp_path_factory.mktemp("lggm_full"), "community_small", "ego_small", "enzymes", "grid",
                       "planar", "sbm", "qm9", "zinc250k")
    return root, corpus(root, per_domain=4)


def arrays(ds):
    s = ds.store
    return [np.asarray(a) for a in (s.node_ptr, s.edge_ptr, s.edge_index, s.split, s.y)]


def edge_lists(ds, name):
    return [ds.graph(i)[1].tolist() for i in range(len(ds)) if ds.domain_of(i) == name]


# ---- domains, skips, caps --------------------------------------------------------------------------------------
def test_generated_only_corpus_skips_each_absent_file_domain_with_one_line(tmp_path, capsys):
    ds = corpus(tmp_path, per_domain=3)
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("lggm: domain")]
    assert ds.domains == GENERATED
    assert ds.domain_counts() == {d: 3 for d in GENERATED}
    assert sorted(ds.info["skipped"]) == sorted(FILES)
    assert len(err) == len(FILES) and all("skipped" in line for line in err)
    assert sum(ds.split_sizes().values()) == len(ds) == 21


def test_at_least_twelve_domains_from_the_shared_files(full):
    root, ds = full
    assert len(ds.domains) >= 12 and ds.domains == GENERATED + FILES
    assert not ds.info["skipped"]
    assert set(ds.domain_counts().values()) == {4}
    assert int(ds.num_nodes().max()) <= 200 and ds.schema.max_nodes == 200
    # GDSS grids above 200 nodes are dropped (and counted); the rest keep the file's split
    grid = load_dataset("grid", root=root, download=False)
    assert ds.info["domains"]["grid"]["dropped_over_max_nodes"] == int((grid.num_nodes() > 200).sum()) > 0
    assert ds.info["domains"]["planar"]["split_rule"].startswith("published SPECTRE")
    qm9 = ds.info["domains"]["qm9_skeleton"]
    assert qm9["nodes"]["max"] <= 9 and qm9["file"] == "qm9_smiles.csv.gz"


def test_exclude_removes_exactly_that_domain(gen_root, gen):
    ds = corpus(gen_root, per_domain=5, conditions=STATS, exclude="tree")
    assert ds.domains == [d for d in GENERATED if d != "tree"]
    assert len(ds) == len(gen) - 5
    assert edge_lists(ds, "lobster") == edge_lists(gen, "lobster")  # the other domains are unchanged
    assert ds.info["excluded"] == ["tree"]


def test_exclude_and_include_file_domains(full):
    root, everything = full
    no_planar = corpus(root, per_domain=4, exclude=["planar"])
    assert "planar" not in no_planar.domains and len(no_planar) == len(everything) - 4
    only = corpus(root, per_domain=4, domains=["planar", "sbm"])
    assert only.domains == ["planar", "sbm"] and only.schema.graph_features == everything.schema.graph_features


def test_two_builds_are_identical(tmp_path, gen):
    again = corpus(tmp_path, per_domain=5, conditions=STATS)
    assert again.processed_now
    for a, b in zip(arrays(gen), arrays(again)):
        assert np.array_equal(a, b)


def test_two_builds_from_files_are_identical(full):
    root, ds = full
    rebuilt = load_dataset("lggm", root=root, download=False, per_domain=4, force_reload=True)
    assert rebuilt.processed_now and all(np.array_equal(a, b) for a, b in zip(arrays(ds), arrays(rebuilt)))


def test_card_lists_every_domain_with_its_seed_and_count(gen):
    from graphdiff.data.base import load_card

    card = load_card("lggm")
    assert list(card["domains"]) == list(M.DOMAIN_NAMES) == list(card["counts"]["domains"])
    for d in M.DOMAINS:
        assert (card["domains"][d.name]["seed"], card["domains"][d.name].get("count")) == (d.seed, d.count)
    assert card["counts"]["generated_only"]["domains"] == GENERATED
    assert {n: gen.info["domains"][n]["seed"] for n in GENERATED} == {d.name: d.seed for d in M.GENERATED}


def test_max_nodes_caps_every_graph(gen_root):
    ds = corpus(gen_root, per_domain=6, max_nodes=40)
    assert int(ds.num_nodes().max()) <= 40 and ds.schema.max_nodes == 40
    assert sum(d["dropped_over_max_nodes"] for d in ds.info["domains"].values()) > 0


def test_family_max_nodes_widens_only_the_sized_families(gen_root):
    kw = {"download": False, "domains": ["erdos_renyi", "powerlaw_cluster", "tree"], "per_domain": 40}
    default = load_dataset("lggm", root=gen_root, **kw)
    wide = load_dataset("lggm", root=gen_root, family_max_nodes=200, **kw)
    for name in ("erdos_renyi", "powerlaw_cluster"):
        assert default.info["domains"][name]["nodes"]["max"] <= 128 < wide.info["domains"][name]["nodes"]["max"] <= 200
        assert wide.info["domains"][name]["params"]["max_nodes"] == 200
        assert wide.info["domains"][name]["nodes"]["min"] >= M.FAMILY_MIN_NODES
    assert wide.info["domains"]["tree"]["nodes"] == default.info["domains"]["tree"]["nodes"]  # not a sized family
    assert wide.variant() != default.variant() and wide.options["family_max_nodes"] == 200
    # a corpus with no sized family is the same set, under the same cache name, with or without the option
    trees = load_dataset("lggm", root=gen_root, download=False, domains=["tree"], per_domain=5, family_max_nodes=150)
    assert "family_max_nodes" not in trees.options
    assert trees.variant() == load_dataset("lggm", root=gen_root, download=False, domains=["tree"],
                                           per_domain=5).variant()
    assert load_dataset("lggm", root=gen_root, family_max_nodes=128, **kw).variant() == default.variant()
    for bad in (300, 8, 1.5, True):
        with pytest.raises(DataError, match=f"family_max_nodes must be an integer from 16 to max_nodes .200., got "
                                            f"{bad!r}"):
            load_dataset("lggm", root=gen_root, family_max_nodes=bad, **kw)


# ---- conditions ----------------------------------------------------------------------------------------------
def test_graph_statistics_by_hand():
    # a triangle 0-1-2 with a pendant 3 on node 0: local clustering 1/3, 1, 1, 0
    edges = np.array([[0, 1], [1, 2], [0, 2], [0, 3]])
    assert graph_statistics(4, edges) == pytest.approx([4.0, 4 / 6, 7 / 12])
    g = nx.Graph(edges.tolist())
    assert graph_statistics(4, edges)[2] == pytest.approx(nx.average_clustering(g))
    assert graph_statistics(1, np.zeros((0, 2))) == [1.0, 0.0, 0.0]


def test_statistics_by_size_average_the_graphs_nearest_each_node_count():
    """Each size gets the mean statistics of its k nearest graphs by node count and of any as near as the k-th (the
    order of the graphs does not matter), not one mean over all of them; n_nodes is left out; bad input is a
    one-line ConfigError."""
    graphs = [nx.complete_graph(4), nx.path_graph(10), nx.cycle_graph(20), nx.star_graph(39)]  # 4, 10, 20, 40 nodes
    density = [nx.density(g) for g in graphs]
    got = statistics_by_size(graphs, ["n_nodes", "density", "clustering"], [3, 12, 40, 25], k=1)
    assert list(got) == ["density", "clustering"]
    assert got["density"] == pytest.approx([density[0], density[1], density[3], density[2]], abs=1e-6)
    assert got["clustering"] == pytest.approx([1.0, 0.0, 0.0, 0.0])
    two = statistics_by_size(graphs, ["density"], [15, 30], k=2)["density"]
    assert two == pytest.approx([(density[1] + density[2]) / 2, (density[2] + density[3]) / 2], abs=1e-6)
    # 15 is 5 from both 10 and 20: with k = 1 both count, in either order of the graphs
    assert statistics_by_size(graphs, ["density"], [15], k=1)["density"] == pytest.approx(two[:1], abs=1e-6)
    assert statistics_by_size(graphs[::-1], ["density"], [15], k=1)["density"] == pytest.approx(two[:1], abs=1e-6)
    # graphs of one size: every size asks for the mean of all of them, whatever k
    same = [nx.gnm_random_graph(12, m, seed=m) for m in (10, 20, 30, 40, 50)]
    assert statistics_by_size(same, ["density"], [5, 12, 90], k=1)["density"] == pytest.approx(
        [np.mean([nx.density(g) for g in same])] * 3, abs=1e-6)
    # default k: round(sqrt(4)) = 2; with k = 4 every size gets the overall mean
    assert statistics_by_size(graphs, ["density"], [15])["density"] == pytest.approx(two[:1], abs=1e-6)
    assert statistics_by_size(graphs, ["density"], [3, 40], k=4)["density"] == pytest.approx(
        [np.mean(density)] * 2, abs=1e-6)
    for bad, match in (({"graphs": []}, "no graphs"), ({"k": 0}, "k must be a positive integer, got 0")):
        with pytest.raises(ConfigError, match=match):
            statistics_by_size(bad.get("graphs", graphs), ["density"], [5], k=bad.get("k"))


def test_condition_adherence_compares_each_graphs_statistics_with_its_ask():
    """Asked against achieved per statistic, by hand: means, ratio, mean error, correlation over the graphs (None
    where the asks do not vary); names that are not statistics (the domain) are left out."""
    graphs = [nx.complete_graph(4), nx.path_graph(4), nx.cycle_graph(5)]  # density 1, 0.5, 0.5
    got = condition_adherence(graphs, {"domain": "planar", "density": [0.8, 0.5, 0.4], "clustering": 0.5})
    assert list(got) == ["density", "clustering"]
    d = got["density"]
    assert d["asked"] == pytest.approx(1.7 / 3, abs=1e-6) and d["got"] == pytest.approx(2 / 3, abs=1e-6)
    assert d["ratio"] == pytest.approx(2 / 1.7, abs=1e-4)
    assert d["mean_abs_error"] == pytest.approx((0.2 + 0 + 0.1) / 3, abs=1e-6)
    assert d["relative_error"] == pytest.approx(0.1 / (1.7 / 3), abs=1e-4)
    assert d["correlation"] == pytest.approx(np.corrcoef([0.8, 0.5, 0.4], [1, 0.5, 0.5])[0, 1], abs=1e-4)
    c = got["clustering"]  # asked 0.5 of every graph: clustering 1, 0, 0
    assert c["got"] == pytest.approx(1 / 3, abs=1e-6) and c["correlation"] is None and c["graphs"] == 3
    assert condition_adherence(graphs, {"domain": "planar"}) == {} and condition_adherence([], {"density": 0.1}) == {}
    # n_nodes is the sampler's to set, not scored; asks as a tensor; a zero ask has no ratio
    got = condition_adherence(graphs, {"n_nodes": [4, 4, 5], "density": torch.tensor([0.8, 0.5, 0.4])})
    assert list(got) == ["density"] and got["density"]["got"] == pytest.approx(2 / 3, abs=1e-6)
    zero = condition_adherence(graphs, {"density": 0.0})["density"]
    assert zero["ratio"] is None and zero["relative_error"] is None and zero["mean_abs_error"] == pytest.approx(2 / 3)
    # any node labels; a DiGraph's two directions of an edge and a self-loop count as the simple graph they make
    odd = nx.relabel_nodes(nx.path_graph(4), {0: "a", 1: "b", 2: "c", 3: "d"})
    di = nx.DiGraph([(0, 1), (1, 0), (1, 2), (2, 2)])
    got = condition_adherence([odd, nx.path_graph(range(1, 5)), di], {"density": 0.5})["density"]
    assert got["got"] == pytest.approx((0.5 + 0.5 + 2 / 3) / 3, abs=1e-6)
    for bad, match in (([0.1, 0.2], "asked must map condition names to values, got list"),
                       ({"densty": 0.1}, "unknown statistic 'densty'; did you mean 'density'"),
                       ({"density": [0.1, 0.2]}, r"cond\['density'\]: 2 values for 3 samples")):
        with pytest.raises(ConfigError, match=match):
            condition_adherence(graphs, bad)


def test_condition_vectors_are_one_hot_domain_and_normalised_statistics(gen):
    d = len(M.DOMAIN_NAMES)
    assert gen.schema.graph_features[:d] == tuple(f"domain:{n}" for n in M.DOMAIN_NAMES)
    assert gen.schema.graph_features[d:] == tuple(STATS)
    spec = gen.schema.extra["conditions"]["numeric"]
    y = np.asarray(gen.store.y)
    for i in (0, 7, 23, len(gen) - 1):
        g = gen.to_networkx([i])[0]
        assert y[i, :d].sum() == 1 and y[i, M.DOMAIN_NAMES.index(gen.domain_of(i))] == 1
        want = [g.number_of_nodes(), nx.density(g), nx.average_clustering(g)]
        got = [y[i, d + k] * spec[s]["std"] + spec[s]["mean"] for k, s in enumerate(STATS)]
        assert got == pytest.approx(want, abs=1e-4)
    train = y[np.asarray(gen.store.split) == 0, d:]
    assert np.abs(train.mean(0)).max() < 1e-4 and np.abs(train.std(0) - 1).max() < 1e-4
    # by name: the domain's one-hot, a given statistic normalised, the others at their training mean (0)
    c = domain_condition(gen, "tree", n_nodes=64)
    assert c.shape == (d + 3,) and c[M.DOMAIN_NAMES.index("tree")] == 1 and c[:d].sum() == 1
    assert float(c[d]) == pytest.approx((64 - spec["n_nodes"]["mean"]) / spec["n_nodes"]["std"])
    assert c[d + 1:].tolist() == [0.0, 0.0]
    per_sample = condition_tensor(gen.schema, {"domain": ["tree", "lobster"], "density": [0.1, 0.2]}, 2)
    assert per_sample[:, :d].argmax(1).tolist() == [M.DOMAIN_NAMES.index("tree"), M.DOMAIN_NAMES.index("lobster")]


def test_conditions_by_name_without_a_record_take_raw_column_values():
    from graphdiff.schema import Schema

    schema = Schema(("C",), ("none", "single"), kind="molecule", graph_features=("logp", "qed"))
    y = condition_tensor(schema, {"logp": 2.5, "qed": [0.1, 0.9]}, 2)
    assert y.flatten().tolist() == pytest.approx([2.5, 0.1, 2.5, 0.9])
    with pytest.raises(ConfigError, match="'qed' missing"):
        condition_tensor(schema, {"logp": 1.0})
    with pytest.raises(ConfigError, match=r"2 values for 3 samples"):
        condition_tensor(schema, {"logp": [1.0, 2.0], "qed": 0.5}, 3)


def test_unknown_domain_or_condition_is_one_line_with_a_suggestion(gen_root, gen):
    with pytest.raises(DataError, match=r"exclude: unknown 'plannar'; did you mean 'planar'\?") as err:
        corpus(gen_root, exclude=["plannar"])
    assert "\n" not in str(err.value)
    with pytest.raises(DataError, match=r"condition column: unknown 'densty'; did you mean 'density'\?"):
        corpus(gen_root, conditions=["densty"])
    with pytest.raises(ConfigError, match=r"unknown domain 'plannar'; did you mean 'planar'\?"):
        domain_condition(gen, "plannar")
    with pytest.raises(ConfigError, match=r"unknown condition column 'densty'; did you mean 'density'\?"):
        condition_tensor(gen.schema, {"domain": "tree", "densty": 0.1})
    with pytest.raises(ConfigError, match="'domain' missing"):
        condition_tensor(gen.schema, {"n_nodes": 20})
    with pytest.raises(DataError, match="per_domain must be a positive integer, got 'ten'"):
        corpus(gen_root, per_domain="ten")
    with pytest.raises(DataError, match="no domain left"):
        corpus(gen_root, domains=["tree"], exclude=["tree"])


def test_info_prints_the_per_domain_counts(gen, monkeypatch, capsys):
    from graphdiff import cli

    monkeypatch.setattr(cli, "_load", lambda args, split=None, force=False: gen)
    assert cli.main(["datasets", "info", "lggm"]) == 0
    out = capsys.readouterr().out
    for name in GENERATED:
        assert f"\n{name:18} generated" in out
    assert "conditions: n_nodes, density, clustering" in out


# ---- a tiny model ----------------------------------------------------------------------------------------------
TINY = {"model": {"n_layers": 1, "hidden_x": 16, "hidden_e": 8, "hidden_y": 8, "n_heads": 2, "ff_x": 16, "ff_e": 8,
                  "ff_y": 8, "extra_features": ["cycles"]},
        "train": {"max_steps": 3, "ckpt_every": 3, "batch_size": 8}, "sample": {"steps": 3},
        "dataset_options": {"per_domain": 3, "download": False, "conditions": ["n_nodes"]}}


@pytest.mark.parametrize("preset", ["digress-lggm", "defog-sbm"])
def test_tiny_model_trains_and_samples_a_domain_by_name(preset, gen_root, tmp_path):
    over = {**TINY, "process": {"cond_drop": 0.5}} if preset == "digress-lggm" else dict(TINY)
    pipe = GraphDiffusionPipeline.fit("lggm", preset=preset, out=tmp_path / "run", root=gen_root, overrides=over,
                                      progress=False)
    d = len(M.DOMAIN_NAMES)
    assert pipe.summary["steps"] == 3 and pipe.process.denoiser_kwargs()["cond_dim"] == d + 2
    seen = []
    pipe.denoiser.register_forward_pre_hook(lambda mod, args: seen.append(args[2].detach().clone()))
    graphs = pipe.sample(2, cond={"domain": "tree", "n_nodes": 12}, guidance=1.0, output="networkx",
                         progress=False)
    assert [g.number_of_nodes() for g in graphs] == [12, 12]  # n_nodes by name is also the size drawn
    conditioned = [c for c in seen if c[:, -1].eq(1).all()]
    unconditioned = [c for c in seen if c.abs().sum() == 0]
    assert len(conditioned) == len(unconditioned) == len(seen) // 2 > 0  # guidance: two calls per step
    assert conditioned[0][:, M.DOMAIN_NAMES.index("tree")].eq(1).all() and conditioned[0][:, :d].sum() == 2
    loaded = GraphDiffusionPipeline.from_pretrained(tmp_path / "run")
    assert loaded.schema.extra["conditions"] == pipe.schema.extra["conditions"]
    with pytest.raises(ConfigError, match=r"did you mean 'planar'\?"):
        loaded.sample(1, cond={"domain": "plannar"}, progress=False)
