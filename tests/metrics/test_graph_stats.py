import networkx as nx
import numpy as np
import pytest

from graphdiff.metrics.graph_stats import (
    clustering_histogram,
    degree_histogram,
    normalized_laplacian_eigh,
    spectral_histogram,
    wavelet_statistic,
)

GRAPHS = [nx.path_graph(6), nx.cycle_graph(7), nx.complete_graph(5), nx.petersen_graph(),
          nx.disjoint_union(nx.path_graph(3), nx.empty_graph(2)), nx.star_graph(6)]


@pytest.mark.parametrize("g", GRAPHS)
def test_laplacian_matches_networkx(g):
    ours = normalized_laplacian_eigh(g)[0]
    theirs = np.linalg.eigvalsh(nx.normalized_laplacian_matrix(g).toarray())
    assert np.allclose(np.sort(ours), np.sort(theirs), atol=1e-9)


def test_degree_and_clustering_histograms():
    g = nx.complete_graph(4)
    assert degree_histogram(g).tolist() == [0, 0, 0, 4]
    h = clustering_histogram(g)
    assert h.sum() == 4 and h[-1] == 4  # clustering 1.0 falls in the last bin
    assert clustering_histogram(nx.path_graph(5))[0] == 5


def test_spectral_histogram_is_pmf():
    h = spectral_histogram(nx.petersen_graph())
    assert h.shape == (200,) and h.sum() == pytest.approx(1.0)


@pytest.mark.parametrize("g", GRAPHS)
def test_wavelet_matches_pygsp_filter_bank(g):
    pygsp = pytest.importorskip("pygsp")

    class Dummy:
        lmax = 2

    filters = pygsp.filters.Abspline(Dummy, 12)
    bound = np.max(filters.evaluate(np.arange(0, 2, 0.01)))
    ev, u = normalized_laplacian_eigh(g)
    ref = []
    for ge in filters.evaluate(ev):
        op = u @ np.diag(ge) @ u.T
        ref.append(np.histogram((op**2).sum(1), range=[0, bound], bins=100)[0])
    assert np.array_equal(wavelet_statistic(g), np.concatenate(ref))
