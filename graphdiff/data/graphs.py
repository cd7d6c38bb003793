"""The standard generic-graph benchmark files: GDSS pickles and the SPECTRE planar / SBM sets.

Raw files are read from ``<root>/<name>/raw`` when present (copies of the published files), else downloaded from
the URL in the dataset card and checked against its sha256. Pickles go through the restricted unpickler.
"""

from __future__ import annotations

import networkx as nx
import numpy as np
import torch

from ..convert.networkx import networkx_to_arrays
from ..errors import DataError
from ..schema import NO_EDGE
from .base import GraphDataset, InvalidRows, RawFile, load_card
from .files import describe, read_bytes
from .safe_pickle import safe_load
from .store import GraphStore


def _arrays(graphs: list[nx.Graph], source: str, invalid: InvalidRows, node_labels: bool):
    """networkx graphs -> per-graph arrays; graphs that cannot be represented are skipped and counted."""
    kept, node_lab, edges = [], [], []
    for i, g in enumerate(graphs):
        g = nx.Graph(g)  # frozen subgraph views (ENZYMES) become independent graphs
        try:
            if g.number_of_nodes() == 0:
                raise DataError(f"{source}: graph {i} has no nodes")
            if nx.number_of_selfloops(g):
                raise DataError(f"{source}: graph {i} has a self-loop")
            nl, ei, _ = networkx_to_arrays(g, where=f"{source}: graph {i}")
        except DataError as exc:
            invalid.add(source, i, f"graph {i}", str(exc))
            continue
        kept.append(i)
        node_lab.append(nl if (node_labels and nl is not None) else ["node"] * g.number_of_nodes())
        edges.append(ei)
    return kept, node_lab, edges


def _info(store: GraphStore, invalid: InvalidRows, **extra) -> dict:
    n, m = store.num_nodes, store.num_edges
    split = np.asarray(store.split)
    return {
        "graphs": len(store),
        "splits": {k: int((split == v).sum()) for k, v in (("train", 0), ("val", 1), ("test", 2))},
        "nodes": {"min": int(n.min()), "max": int(n.max()), "mean": round(float(n.mean()), 3)},
        "edges": {"min": int(m.min()), "max": int(m.max()), "mean": round(float(m.mean()), 3)},
        "invalid": invalid.to_dict(),
        **extra,
    }


def build_store(graphs: list[nx.Graph], split: np.ndarray, source: str, *, node_labels: bool = False):
    """networkx graphs + split codes -> ``(store, schema, info)``; invalid graphs are skipped and counted."""
    invalid = InvalidRows()
    kept, node_lab, edges = _arrays(graphs, source, invalid, node_labels)
    cats = sorted({t for labs in node_lab for t in labs}, key=lambda s: (len(s), s))
    idx = {c: i for i, c in enumerate(cats)}
    node_types = [np.array([idx[t] for t in labs], dtype=np.int64) for labs in node_lab]
    store = GraphStore.from_lists(node_types, edges, split=np.asarray(split)[kept])
    schema = store.schema(tuple(cats), (NO_EDGE, "edge"))
    return store, schema, _info(store, invalid)


def _spectre_adjacencies(path) -> list:
    """The dense adjacency matrices of SPECTRE's ``<name>_..._200.pt`` (``weights_only``: no code runs)."""
    import io

    data = read_bytes(path, "a PyTorch .pt file")
    if not data.startswith((b"PK\x03\x04", b"\x80")):
        raise DataError(f"{path}: not a PyTorch .pt file (it starts with neither a zip header nor a pickle)")
    try:
        obj = torch.load(io.BytesIO(data), weights_only=True)
    except Exception as exc:  # not a zip, truncated archive, a disallowed pickle global, ...
        raise DataError(f"{path}: not a readable PyTorch file ({describe(exc)})") from None
    adjs = obj[0] if isinstance(obj, (list, tuple)) and len(obj) and isinstance(obj[0], list) else obj
    if not isinstance(adjs, (list, tuple)) or not all(getattr(a, "ndim", 0) == 2 for a in adjs):
        raise DataError(f"{path}: expected a list of dense adjacency matrices, got {type(adjs).__name__}")
    return list(adjs)


class _CardDataset(GraphDataset):
    """A dataset whose raw files are listed in its card."""

    def raw_choices(self) -> list[RawFile]:
        return [RawFile.from_card(f) for f in load_card(self.name)["files"]]


class GDSSGraphs(_CardDataset):
    """A GDSS generic-graph pickle (a list of ``nx.Graph``) with the GDSS split: test = the first 20% of the
    file, train = the rest, no shuffling (GDSS ``utils/data_loader.py``)."""

    def __init__(self, root=None, split=None, *, node_labels: bool = False, **kwargs):
        self.node_labels = node_labels
        super().__init__(root, split, **kwargs)

    def variant(self) -> str:
        return "labels" if self.node_labels else "default"

    def process(self):
        path = self.fetch(*self.raw_choices())
        graphs = safe_load(path)
        if not isinstance(graphs, list) or not all(isinstance(g, nx.Graph) for g in graphs):
            raise DataError(f"{path}: expected a pickled list of networkx graphs")
        n_test = int(0.2 * len(graphs))
        split = np.zeros(len(graphs), dtype=np.int8)
        split[:n_test] = 2
        return build_store(graphs, split, path.name, node_labels=self.node_labels)


class CommunitySmall(GDSSGraphs):
    name = "community_small"


class EgoSmall(GDSSGraphs):
    name = "ego_small"


class Enzymes(GDSSGraphs):
    name = "enzymes"


class Grid(GDSSGraphs):
    name = "grid"


class SpectreGraphs(_CardDataset):
    """SPECTRE planar / SBM: 200 graphs split 128/32/40 by ``random_split(..., manual_seed(1234))``.

    Reads ESGG's ``<name>.pkl`` (the same graphs and split, stored as networkx) or SPECTRE's original
    ``<name>_..._200.pt`` (dense adjacency tensors; loaded with ``weights_only=True`` and split here).
    Graphs are stored train, val, test, each in the split permutation's order.
    """

    def process(self):
        path = self.fetch(*self.raw_choices())
        if path.suffix == ".pkl":
            d = safe_load(path)
            if not isinstance(d, dict) or set(d) != {"train", "val", "test"}:
                raise DataError(f"{path}: expected a dict with keys train/val/test")
            graphs = list(d["train"]) + list(d["val"]) + list(d["test"])
            sizes = [len(d["train"]), len(d["val"]), len(d["test"])]
        else:
            adjs = _spectre_adjacencies(path)
            perm = torch.randperm(len(adjs), generator=torch.Generator().manual_seed(1234)).tolist()
            n_train, n_val = int(0.64 * len(adjs)), int(0.16 * len(adjs))
            sizes = [n_train, n_val, len(adjs) - n_train - n_val]
            graphs = [nx.from_numpy_array(np.asarray(adjs[i]).astype(bool).astype(np.int8)) for i in perm]
        split = np.repeat(np.array([0, 1, 2], dtype=np.int8), sizes)
        return build_store(graphs, split, path.name)


class Planar(SpectreGraphs):
    name = "planar"


class SBM(SpectreGraphs):
    name = "sbm"
