import gzip
import json

import numpy as np
import pytest
import torch
from rdkit import Chem

from graphdiff import DataError
from graphdiff.convert.rdkit import canonical_smiles, graph_to_mol
from graphdiff.data import load_dataset
from graphdiff.data.custom import from_pyg_dataset


def test_smi_file_skips_and_reports_invalid_rows(tmp_path):
    f = tmp_path / "mols.smi"
    f.write_text("CCO ethanol\n\nC1CC\nc1ccccc1\n[Se]=C=[Se]\n")
    ds = load_dataset(str(f), root=tmp_path / "root")
    assert len(ds) == 3
    inv = ds.info["invalid"]
    assert inv["count"] == 2
    assert [(e["line"], e["value"]) for e in inv["examples"]] == [(2, ""), (3, "C1CC")]
    assert "Se" in ds.schema.node_categories
    smiles = sorted(Chem.MolToSmiles(graph_to_mol(*ds.store.graph(i), ds.schema)) for i in range(3))
    assert smiles == sorted(canonical_smiles(s) for s in ["CCO", "c1ccccc1", "[Se]=C=[Se]"])
    assert sum(ds.split_sizes().values()) == 3


def test_csv_column_and_gzip(tmp_path):
    f = tmp_path / "mols.csv.gz"
    with gzip.open(f, "wt") as fh:
        fh.write("id,SMILES,score\n1,CCO,0.5\n2,CCN,0.1\n3,,0.3\n")
    ds = load_dataset(str(f), root=tmp_path)
    assert len(ds) == 2 and ds.info["invalid"]["count"] == 1
    assert ds.info["invalid"]["examples"][0]["line"] == 4
    g = tmp_path / "x.csv"
    g.write_text("a,b\n1,2\n")
    with pytest.raises(DataError, match=r"x\.csv: line 1: no 'smiles' column"):
        load_dataset(str(g), root=tmp_path)


def test_strict_mode_raises_on_first_bad_row(tmp_path):
    f = tmp_path / "m.smi"
    f.write_text("CC\nXYZ\n")
    with pytest.raises(DataError, match=r"m\.smi: line 2: RDKit cannot parse SMILES 'XYZ'"):
        load_dataset(str(f), root=tmp_path, strict=True)


def test_all_invalid_file_is_an_error(tmp_path):
    f = tmp_path / "bad.smi"
    f.write_text("\nC1CC\n")
    with pytest.raises(DataError, match=r"bad\.smi: no valid rows \(2 invalid; first: line 1"):
        load_dataset(str(f), root=tmp_path)


def test_jsonl_graphs_with_labels_and_bad_lines(tmp_path):
    rows = [
        {"num_nodes": 3, "edges": [[0, 1], [1, 2]], "node_labels": ["a", "b", "a"]},
        {"num_nodes": 2, "edges": [[0, 0]], "node_labels": ["a", "a"]},
        {"num_nodes": 2, "edges": [[0, 5]], "node_labels": ["a", "a"]},
        {"num_nodes": 4, "edges": [[0, 1], [1, 0], [2, 3]], "node_labels": ["a", "c", "b", "b"]},
    ]
    f = tmp_path / "g.jsonl"
    f.write_text("\n".join(json.dumps(r) for r in rows) + "\nnot json\n")
    ds = load_dataset(str(f), root=tmp_path)
    assert len(ds) == 2
    reasons = [e["reason"] for e in ds.info["invalid"]["examples"]]
    assert any("self-loop" in r for r in reasons) and any("outside" in r for r in reasons)
    assert any("invalid JSON" in r for r in reasons)
    assert ds.schema.node_categories == ("a", "b", "c")
    graphs = {g.number_of_nodes(): g for g in ds.to_networkx()}
    assert graphs[4].number_of_edges() == 2  # the duplicated reverse edge counts once
    # a line without labels among labelled lines is named by its line (1-based, counting the skipped lines)
    f.write_text("\n".join(json.dumps(r) for r in rows[:3] + [{"num_nodes": 2, "edges": [[0, 1]]}]) + "\n")
    with pytest.raises(DataError, match=r"g\.jsonl: line 4: no node_labels while other lines have them"):
        load_dataset(str(f), root=tmp_path)
    # edge labels: a graph without edges needs none; the first edged graph without them is named
    rows = [{"num_nodes": 2, "edges": [[0, 1]], "edge_labels": ["x"]}, {"num_nodes": 1, "edges": []},
            {"num_nodes": 2, "edges": [[0, 1]]}]
    f.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    with pytest.raises(DataError, match=r"g\.jsonl: line 3: no edge_labels while other lines have them"):
        load_dataset(str(f), root=tmp_path)


def test_sdf_with_positions(tmp_path):
    f = tmp_path / "m.sdf"
    w = Chem.SDWriter(str(f))
    for smi in ["CCO", "c1ccccc1"]:
        m = Chem.AddHs(Chem.MolFromSmiles(smi))
        from rdkit.Chem import AllChem

        AllChem.EmbedMolecule(m, randomSeed=0)
        w.write(m)
    w.close()
    ds = load_dataset(str(f), root=tmp_path, with_pos=True)
    assert len(ds) == 2
    st = ds.batch([0, 1])
    assert st.pos is not None and st.pos[st.mask].abs().sum() > 0


def test_pyg_dataset_wrapper(tmp_path):
    from torch_geometric.data import Data

    data = [Data(x=torch.eye(3)[[0, 1, 2, 1]], edge_index=torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]]))
            for _ in range(5)]
    ds = from_pyg_dataset(data, name="toy", root=tmp_path)
    assert len(ds) == 5 and ds.schema.node_categories == ("0", "1", "2")
    nt, ei, et = ds.graph(0)
    assert nt.tolist() == [0, 1, 2, 1] and ei.tolist() == [[0, 1], [1, 2]] and np.all(et == 1)


def test_a_model_records_its_own_file_by_absolute_path_and_reads_it_from_any_folder(tmp_path, monkeypatch):
    from graphdiff.data import dataset_record, load_model_data, same_dataset
    from graphdiff.errors import MissingFileError
    from graphdiff.pipeline import GraphDiffusionPipeline

    (tmp_path / "work").mkdir()
    (tmp_path / "work" / "mols.csv").write_text("id,SMI\n1,CCO\n2,CCN\n3,c1ccccc1\n4,CC(=O)O\n5,CCCl\n")
    monkeypatch.chdir(tmp_path / "work")
    pipe = GraphDiffusionPipeline.from_preset("defog-qm9", "mols.csv", root=tmp_path / "root",
                                              overrides={"dataset_options": {"smiles_column": "SMI"}})
    mine = tmp_path / "work" / "mols.csv"
    assert pipe.config.dataset == str(mine.resolve())  # not the relative name, not the cache's name
    assert same_dataset("mols.csv", pipe.config.dataset) and not same_dataset("qm9", pipe.config.dataset)
    monkeypatch.chdir(tmp_path)  # elsewhere: the model's own data, read with its SMILES column
    ds = load_model_data(pipe.config, root=tmp_path / "root")
    assert len(ds) == 5 and "Cl" in ds.schema.node_categories
    assert len(load_model_data(pipe.config, "work/mols.csv", root=tmp_path / "root")) == 5  # the same file
    mine.rename(tmp_path / "moved.csv")
    with pytest.raises(MissingFileError, match=r"mols\.csv: the file this model was trained on is not there any "
                                               r"more; give it with --dataset FILE"):
        load_model_data(pipe.config, root=tmp_path / "root")
    # given where it moved to, it is still the model's own data: read with the recorded SMILES column
    assert len(load_model_data(pipe.config, str(tmp_path / "moved.csv"), root=tmp_path / "root")) == 5
    assert dataset_record("qm9", ds, {}) == (ds.name, {})  # a registered dataset keeps its name


def test_a_dataset_loaded_from_a_file_of_ones_own_is_recorded_as_that_file_with_its_options(tmp_path, monkeypatch):
    from graphdiff.data import load_model_data
    from graphdiff.pipeline import GraphDiffusionPipeline

    (tmp_path / "mols.csv").write_text("id,SMI\n1,CCO\n2,CCN\n3,c1ccccc1\n4,CC(=O)O\n5,CCCl\n")
    monkeypatch.chdir(tmp_path)
    ds = load_dataset("mols.csv", root=tmp_path / "root", smiles_column="SMI")
    pipe = GraphDiffusionPipeline.from_preset("defog-qm9", ds, root=tmp_path / "root")  # the object, not a name
    ft = GraphDiffusionPipeline.from_pretrained("qm9-defog").finetune(ds, out=tmp_path / "ft", max_steps=1,
                                                                      progress=False)
    for cfg in (pipe.config, ft.config):
        assert cfg.dataset == str((tmp_path / "mols.csv").resolve()) and cfg.dataset_options == {"smiles_column": "SMI"}
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")  # read again from another folder, with the SMILES column it was read with
    assert len(load_model_data(ft.config, root=tmp_path / "root")) == 5


def test_a_pools_own_files_are_recorded_by_absolute_path_and_series_are_named_by_name(tmp_path, monkeypatch):
    from graphdiff.data import record_options
    from graphdiff.data.base import dataset_label

    (tmp_path / "wave.csv").write_text("date,v\n2020-01-01,1\n")
    monkeypatch.chdir(tmp_path)
    assert record_options({"series": ["wineind", "wave.csv"], "stride": 1}) == {
        "series": ["wineind", str(tmp_path / "wave.csv")], "stride": 1}
    assert record_options({"stride": 2}) == {"stride": 2}
    pytest.importorskip("pmdarima")
    assert dataset_label(load_dataset("wineind")) == "wineind"  # its .path is the path graph, not a file
