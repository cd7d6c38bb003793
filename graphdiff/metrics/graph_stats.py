"""Per-graph statistics compared by MMD: degree, clustering, orbit counts, Laplacian spectrum, wavelets.

Each function maps one ``networkx.Graph`` to a 1-D numpy vector. The definitions follow GraphRNN (You et al.,
2018) as used by GDSS, and SPECTRE (Martinkus et al., 2022) as used by DiGress, for the spectrum and wavelets.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Callable, Sequence

import networkx as nx
import numpy as np
from scipy import optimize


def degree_histogram(g: nx.Graph) -> np.ndarray:
    """Counts of nodes with degree 0, 1, 2, ... (``nx.degree_histogram``)."""
    return np.asarray(nx.degree_histogram(g), dtype=np.float64)


def clustering_histogram(g: nx.Graph, bins: int = 100) -> np.ndarray:
    """Histogram of local clustering coefficients on ``bins`` equal bins of [0, 1]."""
    c = np.fromiter(nx.clustering(g).values(), dtype=np.float64, count=g.number_of_nodes())
    return np.histogram(c, bins=bins, range=(0.0, 1.0))[0].astype(np.float64)


def orbit_statistic(g: nx.Graph) -> np.ndarray:
    """Mean number of times a node sits in each of the 15 orbits of 2-4 node graphlets (GraphRNN's
    ``orbit_stats_all``: per-node orbit counts summed over nodes, divided by the node count)."""
    from .orbits import orbit_counts

    n = g.number_of_nodes()
    return orbit_counts(g).sum(0).astype(np.float64) / max(n, 1)


def normalized_laplacian_eigh(g: nx.Graph) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues and eigenvectors of the symmetric normalised Laplacian (isolated nodes give 0 rows)."""
    a = nx.to_numpy_array(g, weight=None)
    d = a.sum(1)
    inv = np.where(d > 0, 1.0 / np.sqrt(np.maximum(d, 1e-12)), 0.0)
    lap = np.diag((d > 0).astype(np.float64)) - inv[:, None] * a * inv[None, :]
    return np.linalg.eigh(lap)


def spectral_histogram(g: nx.Graph, bins: int = 200) -> np.ndarray:
    """Normalised histogram (sums to 1) of normalised-Laplacian eigenvalues on ``bins`` bins of (-1e-5, 2)."""
    ev = normalized_laplacian_eigh(g)[0]
    h = np.histogram(ev, bins=bins, range=(-1e-5, 2.0))[0].astype(np.float64)
    return h / max(h.sum(), 1.0)


# ---- SGWT wavelets (SPECTRE's spectral-filter statistic) ------------------------------------------------
# Abspline filter bank of Hammond, Vandergheynst & Gribonval (2011), lmax = 2 for the normalised Laplacian.


def _abspline3(x: np.ndarray, alpha=2.0, beta=2.0, t1=1.0, t2=2.0) -> np.ndarray:
    """SGWT band-pass kernel: x^alpha rising below t1, cubic spline between, x^-beta decay above t2."""
    m = np.array([[1, t1, t1**2, t1**3], [1, t2, t2**2, t2**3], [0, 1, 2 * t1, 3 * t1**2], [0, 1, 2 * t2, 3 * t2**2]])
    v = np.array([1.0, 1.0, t1 ** (-alpha) * alpha * t1 ** (alpha - 1), -beta * t2 ** (-(beta + 1)) * t2**beta])
    a = np.linalg.solve(m, v)
    x = np.asarray(x, dtype=np.float64)
    r = np.zeros_like(x)
    lo, mid, hi = x <= t1, (x >= t1) & (x < t2), x >= t2
    r[lo] = x[lo] ** alpha * t1 ** (-alpha)
    r[mid] = a[0] + a[1] * x[mid] + a[2] * x[mid] ** 2 + a[3] * x[mid] ** 3
    with np.errstate(divide="ignore"):
        r[hi] = x[hi] ** (-beta) * t2**beta
    return r


@lru_cache(maxsize=8)
def _abspline_bank(n_filters: int = 12, lmax: float = 2.0, lpfactor: float = 20.0):
    lmin = lmax / lpfactor
    scales = np.exp(np.linspace(np.log(2.0 / lmin), np.log(1.0 / lmax), n_filters - 1))
    res = optimize.minimize_scalar(lambda x: -_abspline3(np.array([x]))[0], bounds=(1, 2), method="bounded")
    gamma_l = float(_abspline3(np.array([res.x]))[0])

    def lowpass(x):
        return gamma_l * np.exp(-np.power(x / (0.6 * lmin), 4))

    filters: list[Callable] = [lowpass] + [lambda x, s=s: _abspline3(s * x) for s in scales]
    grid = np.arange(0, 2, 0.01)
    bound = float(np.max([f(grid) for f in filters]))
    return filters, bound


def wavelet_statistic(g: nx.Graph, n_filters: int = 12, bins: int = 100) -> np.ndarray:
    """SPECTRE's wavelet statistic: for each of 12 Abspline filters g_k, the histogram (``bins`` bins on
    [0, bound]) of the squared row norms of ``U g_k(Lambda) U^T``; the 12 histograms concatenated."""
    ev, u = normalized_laplacian_eigh(g)
    filters, bound = _abspline_bank(n_filters)
    out = []
    for f in filters:
        op = (u * f(ev)[None, :]) @ u.T
        out.append(np.histogram((op**2).sum(1), bins=bins, range=(0.0, bound))[0])
    return np.concatenate(out).astype(np.float64)


STATISTICS: dict[str, Callable[[nx.Graph], np.ndarray]] = {
    "degree": degree_histogram,
    "clustering": clustering_histogram,
    "orbit": orbit_statistic,
    "spectral": spectral_histogram,
    "wavelet": wavelet_statistic,
}


def _stat_worker(args):
    name, graphs = args
    return [STATISTICS[name](g) for g in graphs]


def compute_statistic(graphs: Sequence[nx.Graph], name: str, workers: int = 1) -> list[np.ndarray]:
    """One statistic vector per graph, optionally in ``workers`` processes."""
    if name not in STATISTICS:
        raise KeyError(f"unknown statistic {name!r}; choose from {sorted(STATISTICS)}")
    graphs = list(graphs)
    if workers <= 1 or len(graphs) < 32:
        return [STATISTICS[name](g) for g in graphs]
    import multiprocessing as mp

    chunks = [graphs[i::workers] for i in range(workers)]
    with mp.get_context("fork").Pool(workers) as pool:
        parts = pool.map(_stat_worker, [(name, c) for c in chunks])
    out: list = [None] * len(graphs)
    for w, part in enumerate(parts):
        out[w::workers] = part
    return out
