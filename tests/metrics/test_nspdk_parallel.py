"""NSPDK feature extraction through the process pool (graph_features with n_jobs > 1) and the module's imports."""

from __future__ import annotations

import subprocess
import sys

import networkx as nx
import numpy as np

from graphdiff.metrics import _parallel
from graphdiff.metrics import nspdk as N


def _small_graphs(n: int, seed: int = 0) -> list[nx.Graph]:
    """``n`` distinct small labelled graphs: paths, stars and cycles of 2..6 nodes with random C/N/O labels."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        size = int(rng.integers(2, 7))
        g = [nx.path_graph, nx.star_graph, nx.cycle_graph][int(rng.integers(3))](size)
        g = nx.convert_node_labels_to_integers(g)
        for u in g.nodes:
            g.nodes[u]["label"] = "CNO"[int(rng.integers(3))]
        for u, v in g.edges:
            g.edges[u, v]["label"] = int(rng.integers(1, 4))
        out.append(g)
    return out


def test_graph_features_parallel_path_equals_serial(monkeypatch):
    graphs = _small_graphs(N.PARALLEL_MIN_GRAPHS)
    serial = N.graph_features(graphs, n_jobs=1)
    pools = []
    real_pool = _parallel._pool

    def counting_pool(n_jobs):
        pools.append(n_jobs)
        return real_pool(n_jobs)

    monkeypatch.setattr(_parallel, "_pool", counting_pool)
    parallel = N.graph_features(graphs, n_jobs=2)
    assert pools == [2]  # the pool path ran (it raised ImportError before the fix)
    assert parallel == serial  # same features, same order
    assert N.nspdk_mmd(graphs[:1000], graphs[1000:], n_jobs=1) > 0
    assert N.nspdk_mean(parallel).tolist() == N.nspdk_mean(serial).tolist()


def test_nspdk_imports_nothing_from_molecules():
    code = ("import sys, graphdiff.metrics.nspdk; "
            "print('graphdiff.metrics.molecules' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
