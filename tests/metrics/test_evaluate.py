import json

import networkx as nx
import pytest

from graphdiff import DataError
from graphdiff.cli import main
from graphdiff.metrics.evaluate import evaluate_reference, evaluate_samples, read_graph_samples, read_smiles_samples


def write_jsonl(path, graphs):
    path.write_text("\n".join(json.dumps({"num_nodes": g.number_of_nodes(),
                                          "edges": [list(e) for e in nx.convert_node_labels_to_integers(g).edges]})
                              for g in graphs) + "\n")


def test_reference_row_for_tree_has_settings_and_validity(tmp_path):
    res = evaluate_reference("tree", root=tmp_path, protocol="spectre", bootstrap=20,
                             stats=("degree", "clustering", "orbit"))
    m = res["mmd"]
    assert m["protocol"] == "spectre" and m["n_generated"] == 128 and m["n_reference"] == 40
    for s in ("degree", "clustering", "orbit"):
        r = m["stats"][s]
        assert r["kernel"] == "gaussian_tv" and r["ci_low"] <= r["mmd2"] <= r["ci_high"]
        assert r["mmd2"] < 0.05
    v = res["vun"]
    assert v["valid"] == 1.0 and v["novel"] == 0.0 and v["validity"] == "is_tree_graph"


def test_samples_file_against_dataset(tmp_path):
    f = tmp_path / "s.jsonl"
    samples = [nx.random_labeled_tree(64, seed=i) for i in range(10)] + [nx.cycle_graph(64), nx.Graph()]
    write_jsonl(f, samples)
    res = evaluate_samples(f, "tree", root=tmp_path, protocol="gdss", bootstrap=0)
    assert res["mmd"]["n_generated"] == 12 and res["mmd"]["empty_generated"] == 1
    assert res["vun"]["num_valid"] == 10 and res["vun"]["num_graphs"] == 12
    assert "note" in res  # 12 samples vs 40 reference graphs


def test_far_samples_score_worse_than_data(tmp_path):
    ds_row = evaluate_reference("synth_community_small", root=tmp_path, bootstrap=0)
    er = [nx.gnp_random_graph(16, 0.3, seed=i) for i in range(20)]
    res = evaluate_samples(er, "synth_community_small", root=tmp_path, bootstrap=0)
    for s in ("degree", "clustering", "orbit"):
        assert res["mmd"]["stats"][s]["mmd2"] > ds_row["mmd"]["stats"][s]["mmd2"], s


def test_sample_file_errors(tmp_path):
    empty = tmp_path / "e.smi"
    empty.write_text("")
    with pytest.raises(DataError, match="empty"):
        read_smiles_samples(empty)
    smi = tmp_path / "s.smi"
    smi.write_text("CCO\n\nnot_a_smiles\n")
    assert read_smiles_samples(smi) == ["CCO", None, "not_a_smiles"]  # nothing dropped
    bad = tmp_path / "b.jsonl"
    bad.write_text('{"num_nodes": 2, "edges": [[0, 1]]}\n{"num_nodes": 2, "edges": [[0, 7]]}\n')
    with pytest.raises(DataError, match=r"b\.jsonl: line 2: edge \[0, 7\]"):
        read_graph_samples(bad)
    with pytest.raises(DataError, match="must be .smi / .txt"):
        evaluate_samples(tmp_path / "x.csv", "tree", root=tmp_path)


def test_labelled_graph_samples_are_scored_as_structure_and_say_so(tmp_path):
    f = tmp_path / "lab.jsonl"
    recs = [{"num_nodes": 4, "edges": [[0, 1], [1, 2], [2, 3]], "node_labels": ["C", "C", "O", "N"]}] * 3
    f.write_text("".join(json.dumps(r) + "\n" for r in recs))
    res = evaluate_samples(f, "tree", root=tmp_path, stats=("degree",), bootstrap=0)
    assert "labels are not compared" in res["note"]
    plain = tmp_path / "plain.jsonl"
    plain.write_text("".join(json.dumps({k: v for k, v in r.items() if k != "node_labels"}) + "\n" for r in recs))
    again = evaluate_samples(plain, "tree", root=tmp_path, stats=("degree",), bootstrap=0)
    assert "labels" not in again.get("note", "")


def test_smiles_on_graph_dataset_is_an_error(tmp_path):
    smi = tmp_path / "s.smi"
    smi.write_text("CCO\n")
    with pytest.raises(DataError, match="need a molecule dataset"):
        evaluate_samples(smi, "tree", root=tmp_path)


def test_cli_evaluate_writes_json(tmp_path, capsys):
    f = tmp_path / "s.jsonl"
    write_jsonl(f, [nx.random_labeled_tree(64, seed=i) for i in range(8)])
    out = tmp_path / "r.json"
    rc = main(["evaluate", "--dataset", "tree", "--samples", str(f), "--root", str(tmp_path), "--protocol",
               "spectre", "--stats", "degree,orbit", "--bootstrap", "10", "--json", str(out)])
    assert rc == 0
    text = capsys.readouterr().out
    assert "degree" in text and "gaussian_tv" in text and "valid 1.000" in text
    res = json.loads(out.read_text())
    assert res["mmd"]["stats"]["orbit"]["sigma"] == 30.0 and res["mmd"]["n_generated"] == 8
    lo, hi = res["intervals"]["valid"]["interval"]  # 8 of 8 valid trees: a Wilson interval, not [1, 1]
    assert res["intervals"]["valid"]["n"] == 8 and 0.6 < lo < 1.0 and hi == 1.0
    assert set(res["intervals"]) == {"valid", "unique", "novel", "unique_novel", "vun"}
    assert f"valid 1.000 [{lo:.3f}, 1.000]" in text
    assert main(["evaluate", "--dataset", "tree", "--root", str(tmp_path)]) == 2
    assert "exactly one of --samples" in capsys.readouterr().err


def test_molecule_samples_against_custom_dataset(tmp_path, capsys):
    from tests.assets_smiles import shipped_smiles

    data = tmp_path / "mols.smi"
    data.write_text("\n".join(shipped_smiles()) + "\n")
    samples = tmp_path / "gen.smi"
    samples.write_text("\n".join(shipped_smiles()[:40]) + "\n\nC1CC\nCCO\n")
    out = tmp_path / "r.json"
    rc = main(["evaluate", "--dataset", str(data), "--samples", str(samples), "--root", str(tmp_path),
               "--subsets", "3", "--json", str(out)])
    assert rc == 0
    res = json.loads(out.read_text())
    assert res["n_samples"] == 43 and res["n_valid"] == 41  # the blank and the unparsable line count, invalid
    assert res["validity_strict"] == pytest.approx(41 / 43)
    lo, hi = res["intervals"]["validity_strict"]["interval"]
    assert lo < 41 / 43 < hi and res["intervals"]["uniqueness"]["n"] == 41
    assert "fcd" in res["subset_intervals"] and res["subset_intervals"]["subset_size"] >= 14
    assert res["fcd"] is not None and res["fcd"] >= 0
    text = capsys.readouterr().out
    assert "validity_strict" in text and "fcd" in text



def test_a_users_reference_file_is_used_whole_for_reference_and_novelty(tmp_path, capsys):
    from rdkit import Chem

    from tests.assets_smiles import shipped_smiles

    ref = shipped_smiles()[:60]
    data = tmp_path / "ref.smi"
    data.write_text("\n".join(ref) + "\n")
    known = {Chem.CanonSmiles(s) for s in ref}
    novel = [s for s in ("CCO", "CCCCO", "OCCO", "CC(=O)N", "c1ccncc1", "CCCl") if Chem.CanonSmiles(s) not in known][:4]
    samples = ref[:20] + novel
    res = evaluate_samples(samples, str(data), root=tmp_path, subsets=0)
    # every file molecule is known: with the training split rule (80/10/10) some of the 20 would count as novel
    assert res["reference_split"] == "all" and res["novelty"] == pytest.approx(len(novel) / len(samples))
    assert res["fcd"] is not None
    split = evaluate_samples(samples, str(data), root=tmp_path, subsets=0, reference="test")
    assert split["reference_split"] == "test" and split["novelty"] > res["novelty"]
    assert main(["evaluate", "--dataset", str(data), "--samples", str(data), "--root", str(tmp_path)]) == 0
    assert "reference the whole file" in capsys.readouterr().out
    csv = tmp_path / "ref.csv"  # the same molecules in a CSV whose SMILES column has another name
    csv.write_text("id,SMILES_in\n" + "".join(f"m{i},{s}\n" for i, s in enumerate(ref)))
    out = tmp_path / "r.json"
    assert main(["evaluate", "--dataset", str(csv), "--smiles-column", "SMILES_in", "--samples", str(data), "--root",
                 str(tmp_path), "--reference-split", "test", "--json", str(out)]) == 0
    held = json.loads(out.read_text())
    assert held["reference_split"] == "test" and held["novelty_split"] == "train" and held["novelty"] > 0


def test_subset_intervals_stay_in_range_and_need_subsets_of_ten(tmp_path):
    from tests.assets_smiles import shipped_smiles

    data = tmp_path / "mols.smi"
    data.write_text("\n".join(shipped_smiles()) + "\n")
    few = evaluate_samples(shipped_smiles()[:15], str(data), root=tmp_path, subsets=5)
    assert "subsets of 3 samples" in few["subset_intervals"]["skipped"]
    res = evaluate_samples(shipped_smiles()[-60:], str(data), root=tmp_path, subsets=5)
    iv = res["subset_intervals"]
    assert iv["subset_size"] == 12
    for key in ("snn", "frag", "intdiv1", "intdiv2", "filters", "fcd", "nspdk"):
        lo, hi = iv[key]["interval"]
        assert 0.0 <= lo <= hi and (hi <= 1.0 or key in ("fcd", "nspdk")), (key, lo, hi)

def test_molecule_reference_row_has_no_novelty(tmp_path):
    from tests.assets_smiles import shipped_smiles

    data = tmp_path / "mols.smi"
    data.write_text("\n".join(shipped_smiles()) + "\n")
    res = evaluate_reference(str(data), root=tmp_path, n_molecules=100, metrics=("validity", "uniqueness", "novelty"))
    assert res["validity"] == 1.0 and res["novelty"] == 0.0 and res["train_subset"]["size"] == 100


def test_second_molecule_evaluation_reads_the_cache(tmp_path):
    from graphdiff.metrics.molecules import clear_caches
    from tests.assets_smiles import shipped_smiles

    data = tmp_path / "mols.smi"
    data.write_text("\n".join(shipped_smiles()) + "\n")
    samples = shipped_smiles()[:30] + ["CCO", None]
    clear_caches()
    first = evaluate_samples(samples, str(data), root=tmp_path, subsets=2)
    clear_caches()  # as in a new process
    second = evaluate_samples(samples, str(data), root=tmp_path, subsets=2)
    cache = first["settings"]["cache_dir"]
    assert cache and cache.endswith("metrics") and second["settings"]["cache_dir"] == cache
    assert set(first["settings"]["reference_statistics"].values()) == {"computed"}
    assert all(v.startswith("disk cache") for v in second["settings"]["reference_statistics"].values())
    assert second["settings"]["train_smiles"].startswith("decoded from the stored graphs")
    for key in ("fcd", "snn", "frag", "scaf", "nspdk", "novelty", "props", "subset_intervals", "intervals"):
        assert second[key] == first[key], key


def test_cli_metrics_option_selects_checks_and_names_typos(tmp_path, capsys):
    from tests.assets_smiles import shipped_smiles

    data = tmp_path / "mols.smi"
    data.write_text("\n".join(shipped_smiles()) + "\n")
    samples = tmp_path / "gen.smi"
    samples.write_text("\n".join(shipped_smiles()[:20]) + "\n")
    out = tmp_path / "r.json"
    base = ["evaluate", "--dataset", str(data), "--samples", str(samples), "--root", str(tmp_path), "--subsets", "0"]
    assert main([*base, "--metrics", "validity,uniqueness", "--json", str(out)]) == 0
    res = json.loads(out.read_text())
    assert res["uniqueness"] == 1.0 and "fcd" not in res and "nspdk" not in res
    capsys.readouterr()
    assert main([*base, "--metrics", "validity,nspkd"]) != 0
    err = capsys.readouterr().err
    assert "metric: unknown 'nspkd'; did you mean 'nspdk'" in err and "Traceback" not in err
    graphs = tmp_path / "g.jsonl"
    write_jsonl(graphs, [nx.path_graph(4)])
    with pytest.raises(DataError, match="graph datasets take --stats"):
        evaluate_samples(str(graphs), "tree", root=tmp_path, metrics=("fcd",))


def test_moses_protocol_has_no_nspdk():
    from graphdiff.metrics.evaluate import PROTOCOL_METRICS
    from graphdiff.metrics.reference_stats import ALL_METRICS

    assert set(PROTOCOL_METRICS["moses"]) == set(ALL_METRICS) - {"nspdk"}


def test_bad_samples_file_fails_before_the_dataset_is_built(tmp_path):
    bad = tmp_path / "gen.smi"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00binary")
    root = tmp_path / "empty-root"  # qm9 is not here: building it would need a download
    with pytest.raises(DataError, match="gen.smi"):
        evaluate_samples(str(bad), "qm9", root=root)
    assert not (root / "qm9").exists()


def test_molecules_written_as_labelled_graphs_are_scored_as_molecules(tmp_path, capsys):
    from tests.assets_smiles import shipped_smiles
    from tests.conftest import one_error_line

    data = tmp_path / "mols.smi"
    data.write_text("\n".join(shipped_smiles()) + "\n")
    for suffix in ("smi", "jsonl"):  # the same 24 samples of the bundled QM9 model, once as SMILES, once as graphs
        assert main(["sample", "--model", "qm9-defog", "-n", "24", "--steps", "6", "--seed", "3", "--out",
                     str(tmp_path / f"s.{suffix}")]) == 0
    capsys.readouterr()
    as_smiles = evaluate_samples(tmp_path / "s.smi", str(data), root=tmp_path, subsets=0)
    as_graphs = evaluate_samples(tmp_path / "s.jsonl", str(data), root=tmp_path, subsets=0)
    assert as_graphs["kind"] == "molecules" and "labelled graphs read as molecules" in as_graphs["note"]
    for key in ("n_samples", "n_valid", "validity_strict", "uniqueness", "novelty", "fcd"):
        assert as_graphs[key] == pytest.approx(as_smiles[key]), key
    assert as_smiles["n_valid"] > 0  # molecules were scored, not only invalid graphs
    assert main(["evaluate", "--dataset", str(data), "--samples", str(tmp_path / "s.smi"), "--root", str(tmp_path),
                 "--protocol", "spectre"]) == 2  # graph MMD conventions are not silently ignored for molecules
    assert "protocol 'spectre' (--protocol, graph MMD conventions) applies to graph datasets" in one_error_line(capsys)
    plain = tmp_path / "plain.jsonl"
    write_jsonl(plain, [nx.path_graph(4)] * 3)
    assert main(["evaluate", "--dataset", str(data), "--samples", str(plain), "--root", str(tmp_path)]) == 2
    assert "unlabelled graphs cannot be scored as molecules" in one_error_line(capsys)
    short = tmp_path / "short.jsonl"
    short.write_text(json.dumps({"num_nodes": 3, "edges": [[0, 1]], "node_labels": ["C", "O"]}) + "\n")
    with pytest.raises(DataError, match=r"short\.jsonl: line 1: 2 node_labels for num_nodes=3"):
        read_graph_samples(short)
    twice = tmp_path / "twice.jsonl"  # checked as a dataset file is: one edge, two bond orders
    twice.write_text(json.dumps({"num_nodes": 2, "edges": [[0, 1], [1, 0]], "node_labels": ["C", "O"],
                                 "edge_labels": ["SINGLE", "DOUBLE"]}) + "\n")
    with pytest.raises(DataError, match=r"twice\.jsonl: line 1: edge \[0, 1\] listed twice"):
        read_graph_samples(twice)


def test_labelled_graphs_as_smiles_mark_odd_graphs_invalid_and_read_hydrogens_from_the_samples():
    from graphdiff.metrics.evaluate import graphs_as_smiles

    def mol(atoms, bonds):
        g = nx.Graph()
        for i, a in enumerate(atoms):
            g.add_node(i, label=a)
        for u, v, b in bonds:
            g.add_edge(u, v, label=b)
        return g

    ethanol = mol(["C", "C", "O"], [(0, 1, "SINGLE"), (1, 2, "SINGLE")])
    loop = mol(["C", "O"], [(0, 1, "SINGLE")])
    loop.add_edge(0, 0, label="SINGLE")
    odd = [loop, mol(["c", "6"], [(0, 1, "SINGLE")]), mol(["C", "O"], [(0, 1, "QUINTUPLE")]), nx.path_graph(2)]
    assert graphs_as_smiles([ethanol, *odd]) == ["CCO", None, None, None, None]  # invalid samples, not errors
    # heavy atoms only: implicit hydrogens, whatever the reference's convention
    assert graphs_as_smiles([ethanol]) == ["CCO"]
    # hydrogens among the labels: explicit, so a carbon with three H is a methyl radical, not methane
    methyl = mol(["C", "H", "H", "H"], [(0, 1, "SINGLE"), (0, 2, "SINGLE"), (0, 3, "SINGLE")])
    assert graphs_as_smiles([methyl]) == ["[CH3]"]


def test_a_one_atom_type_molecule_model_writes_jsonl_that_scores_as_molecules(tmp_path):
    from graphdiff.cli_sample import write_samples
    from graphdiff.convert.rdkit import from_smiles

    smiles = ["CCC", "C1CC1", "C=CC"]  # carbon only: one atom type, single and double bonds
    state = from_smiles(smiles)
    assert state.schema.num_node_types == 1
    out = write_samples(state, tmp_path / "s.jsonl", state.schema)
    recs = [json.loads(line) for line in out.read_text().splitlines()]
    assert all(r["node_labels"] == ["C"] * r["num_nodes"] and len(r["edge_labels"]) == len(r["edges"]) for r in recs)
    from graphdiff.metrics.evaluate import graphs_as_smiles

    assert graphs_as_smiles(read_graph_samples(out)) == smiles


def test_reference_words_name_the_split_in_prose_and_in_a_listing():
    from graphdiff.metrics.evaluate import reference_words

    assert reference_words({"reference_split": "test", "novelty_split": "train"}, "the ") == "the test split"
    assert reference_words({"reference_split": "test", "novelty_split": "train"}) == "split test"
    assert reference_words({"reference_split": "val", "novelty_split": "all"}, "the ") == \
        "the val split, novelty against the all split"
    assert reference_words({"reference_split": "all", "novelty_split": "all"}, "the ") == \
        "the whole file (reference and novelty)"
