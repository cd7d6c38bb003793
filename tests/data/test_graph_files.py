import networkx as nx
import numpy as np
import pytest

from graphdiff import DataError
from graphdiff.data import load_dataset
from graphdiff.data.base import load_card
from graphdiff.errors import ChecksumError, MissingFileError
from tests.conftest import shared_root

FILES = ["community_small", "ego_small", "enzymes", "grid", "planar", "sbm"]


@pytest.mark.parametrize("name", FILES)
def test_counts_match_card_and_splits(tmp_path, name, no_network):
    root = shared_root(tmp_path, name)
    ds = load_dataset(name, root=root)
    card = load_card(name)["counts"]
    assert len(ds) == card["graphs"]
    assert ds.split_sizes() == {k: card[k] for k in ("train", "val", "test")}
    n = ds.num_nodes()
    assert (n.min(), n.max()) == (card["nodes"]["min"], card["nodes"]["max"])
    assert ds.info["invalid"]["count"] == 0
    s = ds.schema
    assert abs(sum(s.edge_marginals) - 1) < 1e-9 and abs(sum(s.node_marginals) - 1) < 1e-9
    assert s.max_nodes == card["nodes"]["max"]


def test_gdss_split_is_first_20_percent(tmp_path, no_network):
    from graphdiff.data.safe_pickle import safe_load
    from tests.conftest import SHARED

    root = shared_root(tmp_path, "community_small")
    test = load_dataset("community_small", root=root, split="test").to_networkx()
    raw = safe_load(SHARED / "gdss" / "community_small.pkl")[:20]
    assert all(nx.is_isomorphic(a, b) for a, b in zip(test, raw))


def test_planar_graphs_are_planar_and_connected(tmp_path, no_network):
    root = shared_root(tmp_path, "planar")
    graphs = load_dataset("planar", root=root, split="test").to_networkx()
    assert len(graphs) == 40
    assert all(nx.check_planarity(g)[0] and nx.is_connected(g) for g in graphs)


def test_cache_is_reused_and_rebuilt_on_force(tmp_path, no_network):
    root = shared_root(tmp_path, "ego_small")
    a = load_dataset("ego_small", root=root)
    assert a.processed_now
    mtime = (a.processed_dir / "meta.json").stat().st_mtime_ns
    b = load_dataset("ego_small", root=root)
    assert not b.processed_now
    assert (b.processed_dir / "meta.json").stat().st_mtime_ns == mtime
    c = load_dataset("ego_small", root=root, force_reload=True)
    assert c.processed_now
    assert np.array_equal(np.asarray(b.store.edge_index), np.asarray(c.store.edge_index))


def test_checksum_mismatch_names_file(tmp_path, no_network):
    raw = tmp_path / "grid" / "raw"
    raw.mkdir(parents=True)
    (raw / "grid.pkl").write_bytes(b"not the published file")
    with pytest.raises(ChecksumError, match=r"grid\.pkl: sha256 .* does not match"):
        load_dataset("grid", root=tmp_path)


def test_missing_raw_file_without_network_is_one_line(tmp_path, no_network):
    with pytest.raises(MissingFileError, match=r"raw file planar\.pkl or planar_64_200\.pt not found in .*planar/raw"):
        load_dataset("planar", root=tmp_path)
    with pytest.raises(MissingFileError, match="downloads disabled"):
        load_dataset("sbm", root=tmp_path, download=False)


def test_unknown_dataset_suggests_closest():
    with pytest.raises(DataError, match="did you mean 'planar'"):
        load_dataset("planr")


def test_enzymes_node_labels_option(tmp_path, no_network):
    root = shared_root(tmp_path, "enzymes")
    plain = load_dataset("enzymes", root=root)
    lab = load_dataset("enzymes", root=root, node_labels=True)
    assert plain.schema.node_categories == ("node",)
    assert lab.schema.node_categories == ("1", "2", "3")
    assert lab.processed_dir != plain.processed_dir
