import networkx as nx
import numpy as np
import pytest

from graphdiff import DataError
from graphdiff.metrics.mmd import PROTOCOLS, KernelSpec, graph_mmd, kernel_matrix, mmd2


def reference_mmd(xs, ys, kernel):
    """Plain double loop over pairs, the way the published code computes it."""
    def disc(a, b):
        return sum(kernel(p, q) for p in a for q in b) / (len(a) * len(b))
    return disc(xs, xs) + disc(ys, ys) - 2 * disc(xs, ys)


def pad(a, n):
    return np.concatenate([a, np.zeros(n - len(a))])


def test_gaussian_emd_matches_pyemd():
    pyemd = pytest.importorskip("pyemd")
    from scipy.linalg import toeplitz

    rng = np.random.default_rng(0)
    xs = [rng.integers(0, 5, rng.integers(3, 9)).astype(float) for _ in range(6)]
    ys = [rng.integers(0, 5, rng.integers(3, 9)).astype(float) for _ in range(5)]
    xs = [x / x.sum() for x in xs if x.sum()]
    ys = [y / y.sum() for y in ys if y.sum()]

    def k(x, y, sigma=0.7, scaling=3.0):
        n = max(len(x), len(y))
        d = pyemd.emd(pad(x, n), pad(y, n), toeplitz(np.arange(n)).astype(float) / scaling)
        return np.exp(-d * d / (2 * sigma * sigma))

    ours = mmd2(xs, ys, KernelSpec("gaussian_emd", 0.7, distance_scaling=3.0))["mmd2"]
    assert ours == pytest.approx(reference_mmd(xs, ys, k), abs=1e-9)


@pytest.mark.parametrize("name", ["gaussian_tv", "rbf"])
def test_tv_and_rbf_match_loop(name):
    rng = np.random.default_rng(1)
    xs = [rng.random(rng.integers(2, 7)) for _ in range(5)]
    ys = [rng.random(rng.integers(2, 7)) for _ in range(4)]
    n = max(map(len, xs + ys))

    def k(x, y, sigma=2.0):
        x, y = pad(x, n), pad(y, n)
        d = np.abs(x - y).sum() / 2 if name == "gaussian_tv" else np.linalg.norm(x - y)
        return np.exp(-d * d / (2 * sigma * sigma))

    ours = mmd2(xs, ys, KernelSpec(name, 2.0, is_hist=False))["mmd2"]
    assert ours == pytest.approx(reference_mmd(xs, ys, k), abs=1e-12)


def test_identical_sets_give_zero_and_kernel_is_psd():
    rng = np.random.default_rng(2)
    xs = [rng.random(10) for _ in range(8)]
    assert mmd2(xs, xs, KernelSpec("gaussian_tv", 1.0))["mmd2"] == pytest.approx(0.0, abs=1e-12)
    x = np.stack(xs)
    for kern in ("rbf", "gaussian_tv", "gaussian_emd"):
        ev = np.linalg.eigvalsh(kernel_matrix(x / x.sum(1, keepdims=True), x / x.sum(1, keepdims=True), kern, 1.0))
        assert ev.min() > -1e-8 or kern != "rbf"  # rbf is positive definite; the others are used as in papers


def test_bootstrap_interval_brackets_estimate():
    rng = np.random.default_rng(3)
    xs = [rng.random(10) for _ in range(30)]
    ys = [rng.random(10) + 0.3 for _ in range(30)]
    r = mmd2(xs, ys, KernelSpec("rbf", 1.0, is_hist=False), bootstrap=200, seed=0)
    assert r["ci_low"] <= r["mmd2"] <= r["ci_high"] and r["ci_high"] > r["ci_low"]
    assert r["kernel"] == "rbf" and r["sigma"] == 1.0 and r["n_x"] == 30


def test_graph_mmd_separates_families_and_records_settings():
    rng = np.random.default_rng(0)
    trees = [nx.random_labeled_tree(20, seed=int(s)) for s in rng.integers(0, 1e6, 20)]
    trees2 = [nx.random_labeled_tree(20, seed=int(s)) for s in rng.integers(0, 1e6, 20)]
    dense = [nx.gnp_random_graph(20, 0.5, seed=int(s)) for s in rng.integers(0, 1e6, 20)]
    for proto in ("gdss", "spectre"):
        stats = ("degree", "clustering", "spectral")
        same = graph_mmd(trees, trees2, protocol=proto, stats=stats, bootstrap=0)
        diff = graph_mmd(dense, trees2, protocol=proto, stats=stats, bootstrap=0)
        for s in stats:
            factor = 1.2 if s == "spectral" else 5.0  # a 200-bin EMD spectrum is noisy for 20 graphs
            assert diff["stats"][s]["mmd2"] > factor * max(same["stats"][s]["mmd2"], 1e-4), (proto, s)
            assert diff["stats"][s]["kernel"] == PROTOCOLS[proto][s].kernel
        assert diff["n_generated"] == 20 and diff["protocol"] == proto


def test_graph_mmd_bad_input():
    g = [nx.path_graph(4)]
    with pytest.raises(DataError, match="unknown protocol"):
        graph_mmd(g, g, protocol="grnn")
    with pytest.raises(DataError, match="reference set is empty"):
        graph_mmd(g, [], protocol="gdss", stats=("degree",))
    r = graph_mmd([nx.Graph()], g, protocol="gdss", stats=("degree",), bootstrap=0)
    assert r["stats"]["degree"]["mmd2"] is None and r["empty_generated"] == 1
    r = graph_mmd([nx.Graph(), nx.path_graph(4)], g, protocol="gdss", stats=("degree",), bootstrap=0)
    assert r["stats"]["degree"]["mmd2"] == pytest.approx(0.0, abs=1e-12) and r["empty_generated"] == 1


def test_bootstrap_interval_is_recentred_where_resampled_duplicates_inflate_mmd():
    """Two samples of one distribution: the raw resampled values all lie above the estimate (duplicates), the
    reported interval still contains it and is as wide as the raw percentile interval."""
    rng = np.random.default_rng(4)
    xs = [rng.random(10) for _ in range(20)]
    ys = [rng.random(10) for _ in range(20)]
    r = mmd2(xs, ys, KernelSpec("gaussian_tv", 1.0), bootstrap=200, seed=0)
    assert r["bootstrap_bias"] > 0  # the resamples' mean exceeds the estimate
    assert r["ci_low"] <= r["mmd2"] <= r["ci_high"] and r["ci_low"] >= 0.0


def test_a_long_graph_mmd_says_what_it_computes(monkeypatch, capsys):
    import graphdiff.metrics.mmd as mmd_module

    gen = [nx.path_graph(5)] * 3
    ref = [nx.cycle_graph(5)] * 4
    graph_mmd(gen, ref, stats=("degree",), bootstrap=0)
    assert capsys.readouterr().err == ""  # a small evaluation is quiet
    monkeypatch.setattr(mmd_module, "LONG_MMD", 7)
    graph_mmd(gen, ref, stats=("degree", "clustering"), bootstrap=5)
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and err[0].endswith("graph MMD: degree of 3 generated and 4 reference graphs (5 bootstrap "
                                             "resamples)...")
