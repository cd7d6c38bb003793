"""Extra structural features: cycle counts and components against networkx brute force, masking, padding,
permutation equivariance, random-walk identities and the ExtraFeatures bundle."""

import itertools
import math

import networkx as nx
import pytest
import torch

from graphdiff.errors import ConfigError, SchemaError
from graphdiff.nn.features import (
    ExtraFeatures,
    cycle_counts,
    cycle_features,
    rrwp_features,
    spectral_features,
)

KINDS = ("cycles", "spectral", "rrwp")


def random_graphs(count, seed, sizes=range(4, 12), probs=(0.15, 0.3, 0.5, 0.7)):
    """Random G(n, p) graphs with mixed sizes and densities (some disconnected, some with isolated nodes)."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for i in range(count):
        n = list(sizes)[int(torch.randint(len(sizes), (1,), generator=g))]
        out.append(nx.gnp_random_graph(n, probs[i % len(probs)], seed=seed * 1000 + i))
    return out


def batch(graphs, n=None, scattered=True, seed=0, dtype=torch.float64):
    """Dense padded batch; real nodes sit at random slots (graph node ``v`` at ``slots[v]``)."""
    g = torch.Generator().manual_seed(seed)
    n = n or max(len(h) for h in graphs) + 2
    adj = torch.zeros(len(graphs), n, n, dtype=dtype)
    mask = torch.zeros(len(graphs), n, dtype=torch.bool)
    all_slots = []
    for b, h in enumerate(graphs):
        slots = torch.randperm(n, generator=g)[: len(h)] if scattered else torch.arange(len(h))
        mask[b, slots] = True
        for u, v in h.edges():
            adj[b, slots[u], slots[v]] = adj[b, slots[v], slots[u]] = 1.0
        all_slots.append(slots)
    return adj, mask, all_slots


def brute_force_cycles(h):
    """Per-node and total numbers of simple cycles of length 3..6, by enumeration."""
    node = torch.zeros(len(h), 4, dtype=torch.float64)
    total = torch.zeros(4, dtype=torch.float64)
    for cyc in nx.simple_cycles(h, length_bound=6):
        if len(cyc) >= 3:
            total[len(cyc) - 3] += 1
            for v in cyc:
                node[v, len(cyc) - 3] += 1
    return node, total


def generic_spectrum(adj, mask, k, tol=1e-6):
    """True when, in every graph, the first ``k`` nonzero Laplacian eigenvalues are simple and their eigenvectors
    have a third moment away from zero: the precondition under which the canonically signed eigenvectors of
    :func:`spectral_features` are exactly permutation equivariant."""
    node, graph = spectral_features(adj, mask, k)
    for b in range(adj.shape[0]):
        a = adj[b][mask[b]][:, mask[b]]
        if a.shape[0] == 0:
            continue
        ev = torch.linalg.eigvalsh(torch.diag(a.sum(-1)) - a)
        first = int(graph[b, 0])
        used = range(first, min(first + k, len(ev)))
        for i in used:
            if (i > first and ev[i] - ev[i - 1] < tol) or (i + 1 < len(ev) and ev[i + 1] - ev[i] < tol):
                return False
        if bool((node[b, :, 1:].pow(3).sum(0).abs() < tol)[: len(used)].any()):
            return False
    return True


def generic_graphs(count, seed, sizes=range(6, 11), p=0.5, k=3):
    """Random graphs that satisfy :func:`generic_spectrum` (others are skipped), deterministic for a seed."""
    out, i = [], 0
    while len(out) < count:
        h = nx.gnp_random_graph(list(sizes)[i % len(sizes)], p, seed=seed * 1000 + i)
        adj, mask, _ = batch([h], scattered=False)
        if generic_spectrum(adj, mask, k):
            out.append(h)
        i += 1
    return out


# ---- cycles -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1])
def test_cycle_counts_match_brute_force(seed):
    graphs = random_graphs(24, seed)
    adj, mask, slots = batch(graphs, seed=seed)
    node, graph = cycle_counts(adj, mask)
    assert node.shape == (len(graphs), adj.shape[1], 4) and graph.shape == (len(graphs), 4)
    assert torch.all(node[~mask] == 0)
    for b, h in enumerate(graphs):
        want_node, want_total = brute_force_cycles(h)
        assert torch.equal(node[b, slots[b]], want_node), f"graph {b}: node counts differ"
        assert torch.equal(graph[b], want_total), f"graph {b}: {graph[b].tolist()} vs {want_total.tolist()}"


def test_cycle_counts_on_known_graphs_and_float32():
    graphs = [nx.complete_graph(6), nx.cycle_graph(5), nx.cycle_graph(6), nx.petersen_graph(), nx.empty_graph(3)]
    adj, mask, _ = batch(graphs, dtype=torch.float32)
    node, graph = cycle_counts(adj, mask)
    assert node.dtype == torch.float32
    # K6: C(6,3)=20 triangles, 3*C(6,4)=45 4-cycles, 12*C(6,5)=72 5-cycles, 60 6-cycles (= 5!/2)
    assert graph[0].tolist() == [20, 45, 72, 60]
    assert graph[1].tolist() == [0, 0, 1, 0] and graph[2].tolist() == [0, 0, 0, 1]
    assert graph[3].tolist() == [0, 0, 12, 10]  # Petersen graph: girth 5, 12 pentagons, 10 hexagons
    assert torch.all(graph[4] == 0)
    scaled_node, scaled_graph = cycle_features(adj, mask)
    assert torch.equal(scaled_graph, (graph / 10).clamp(max=1))
    assert torch.equal(scaled_node, (node / 10).clamp(max=1))


def test_float64_matmul_path_gives_the_same_counts():
    adj, mask, _ = batch(random_graphs(6, 8, probs=(0.5, 0.7)), seed=8)
    fast = cycle_counts(adj, mask)
    before = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("high")  # float32 products might not be exact: float64 is used instead
    try:
        slow = cycle_counts(adj, mask)
    finally:
        torch.set_float32_matmul_precision(before)
    assert torch.equal(fast[0], slow[0]) and torch.equal(fast[1], slow[1])


def test_features_are_exact_under_bf16_autocast():
    # train.amp runs the denoiser under autocast; the features' matrix products must not drop to bf16 (in bf16
    # the 5- and 6-cycle counts of K_40 come out wrong, and so would the random-walk probabilities)
    n = 40
    adj = (torch.ones(1, n, n) - torch.eye(n)).repeat(2, 1, 1)
    mask = torch.ones(2, n, dtype=torch.bool)
    mask[1, 30:] = False
    bundle = ExtraFeatures(KINDS)
    want = [*cycle_counts(adj, mask), *bundle(adj, mask)]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = [*cycle_counts(adj, mask), *bundle(adj, mask)]
        a = adj.float()
        assert (a @ a @ a).dtype == torch.bfloat16  # autocast is really on here
    for w, g in zip(want, got):
        assert g.dtype == w.dtype and torch.equal(w, g)
    assert int(want[1][0, 2]) == math.comb(n, 5) * 12  # 5-cycles of K_40: C(40, 5) * 4! / 2


def test_adjacency_is_binarised_and_diagonal_ignored():
    adj, mask, _ = batch([nx.complete_graph(4)], n=5, scattered=False)
    noisy = adj * 0.9 + torch.eye(5, dtype=adj.dtype)  # weights above 0.5 are edges, self-loops are ignored
    assert torch.equal(cycle_counts(noisy, mask)[1], cycle_counts(adj, mask)[1])
    assert torch.equal(cycle_counts(adj.bool(), mask)[1].double(), cycle_counts(adj, mask)[1])


# ---- spectrum ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1])
def test_components_largest_component_and_eigenvalues_match_networkx(seed):
    graphs = random_graphs(16, seed, sizes=range(1, 13), probs=(0.05, 0.15, 0.3)) + [nx.empty_graph(0)]
    adj, mask, slots = batch(graphs, seed=seed)
    k = 4
    node, graph = spectral_features(adj, mask, k)
    assert node.shape == (len(graphs), adj.shape[1], 1 + k) and graph.shape == (len(graphs), 1 + k)
    assert torch.all(node[~mask] == 0)
    for b, h in enumerate(graphs):
        comps = list(nx.connected_components(h))
        assert int(graph[b, 0]) == len(comps), f"graph {b}: components"
        biggest = max((len(c) for c in comps), default=0)
        lcc = torch.zeros(len(h), dtype=torch.float64)
        for c in comps:
            if len(c) == biggest:
                lcc[list(c)] = 1.0
        assert torch.equal(node[b, slots[b], 0], lcc), f"graph {b}: largest-component indicator"
        spec = sorted(nx.laplacian_spectrum(h)) if len(h) else []
        nonzero = torch.tensor([v for v in spec[len(comps):]][:k], dtype=torch.float64)
        want = torch.cat([nonzero, torch.zeros(k - len(nonzero), dtype=torch.float64)])
        assert torch.allclose(graph[b, 1:], want, atol=1e-8), f"graph {b}: eigenvalues"
        # eigenvectors: L v = lambda v on the real nodes, unit norm, zero where there is no eigenvalue
        a = adj[b][mask[b]][:, mask[b]]
        lap = torch.diag(a.sum(-1)) - a
        vecs = node[b][mask[b]][:, 1:]
        assert torch.allclose(lap @ vecs, vecs * graph[b, 1:], atol=1e-8)
        norms = vecs.pow(2).sum(0)
        assert torch.allclose(norms, (graph[b, 1:] != 0).to(norms.dtype), atol=1e-8)


def test_spectral_sign_is_canonical():
    adj, mask, _ = batch(random_graphs(6, 3, probs=(0.5,)), seed=3)
    node, _ = spectral_features(adj, mask, 3)
    assert torch.all(node[..., 1:].pow(3).sum(1) >= 0)
    flipped, _ = spectral_features(adj, mask, 3)  # deterministic
    assert torch.equal(node, flipped)


# ---- random walks -----------------------------------------------------------------------------------------------


def test_rrwp_first_step_is_random_walk_matrix_and_rows_sum_to_one():
    graphs = random_graphs(8, 4, probs=(0.1, 0.4))
    adj, mask, _ = batch(graphs, seed=4)
    steps = 5
    node, edge = rrwp_features(adj, mask, steps)
    assert node.shape == (*mask.shape, steps) and edge.shape == (*adj.shape, steps)
    deg = adj.sum(-1, keepdim=True)
    walk = torch.where(deg > 0, adj / deg.clamp(min=1), torch.zeros_like(adj))
    assert torch.allclose(edge[..., 0], walk)
    assert torch.allclose(edge[..., 1], walk @ walk)
    assert torch.equal(node, torch.diagonal(edge, dim1=1, dim2=2).transpose(1, 2))
    assert torch.all(node[..., 0] == 0)  # no self-loops: no return after one step
    rows = edge.sum(2)  # [B, N, steps]
    has_edge = (deg.squeeze(-1) > 0).unsqueeze(-1).expand_as(rows)
    assert torch.allclose(rows[has_edge], torch.ones_like(rows[has_edge]))
    assert torch.all(rows[~has_edge] == 0)
    # return probability after two steps: sum over neighbours j of 1 / (d_i d_j)
    d = deg.squeeze(-1)
    want = (adj / d.clamp(min=1).unsqueeze(-1) / d.clamp(min=1).unsqueeze(-2)).sum(-1)
    assert torch.allclose(node[..., 1], want)


# ---- masking, padding and permutations --------------------------------------------------------------------------


def all_features(adj, mask, k=3, steps=4):
    return ExtraFeatures(KINDS, spectral_k=k, rrwp_steps=steps)(adj, mask)


def test_padded_slots_zero_and_padding_changes_nothing():
    graphs = random_graphs(6, 5, probs=(0.3, 0.6))
    adj, mask, _ = batch(graphs, seed=5, scattered=False)
    node, edge, graph = all_features(adj, mask)
    pair = mask.unsqueeze(1) & mask.unsqueeze(2)
    assert torch.all(node[~mask] == 0) and torch.all(edge[~pair] == 0)
    # garbage on pairs touching padded slots is ignored
    noise = (torch.rand(adj.shape, generator=torch.Generator().manual_seed(0), dtype=adj.dtype) > 0.5).to(adj.dtype)
    dirty = torch.where(pair, adj, noise)
    for got, want in zip(all_features(dirty, mask), (node, edge, graph)):
        assert torch.equal(got, want)
    # more padded slots: same values on the real ones
    n = adj.shape[1]
    big_adj = torch.nn.functional.pad(adj, (0, 5, 0, 5))
    big_mask = torch.nn.functional.pad(mask, (0, 5))
    bn, be, bg = all_features(big_adj, big_mask)
    assert torch.allclose(bn[:, :n], node, atol=1e-10) and torch.all(bn[:, n:] == 0)
    assert torch.allclose(be[:, :n, :n], edge, atol=1e-12) and torch.all(be[:, n:] == 0)
    assert torch.allclose(bg, graph, atol=1e-10)


def test_permutation_equivariance_and_invariance():
    graphs = generic_graphs(6, 6) + [nx.empty_graph(3), nx.empty_graph(0)]
    adj, mask, _ = batch(graphs, seed=6)
    node, edge, graph = all_features(adj, mask)
    g = torch.Generator().manual_seed(0)
    b, n = mask.shape
    for _ in range(3):
        perm = torch.stack([torch.randperm(n, generator=g) for _ in range(b)])
        rows = torch.arange(b).unsqueeze(1)
        p_adj = adj[rows.unsqueeze(2), perm.unsqueeze(2), perm.unsqueeze(1)]
        p_mask = mask[rows, perm]
        pn, pe, pg = all_features(p_adj, p_mask)
        assert torch.allclose(pn, node[rows, perm], atol=1e-9)
        assert torch.allclose(pe, edge[rows.unsqueeze(2), perm.unsqueeze(2), perm.unsqueeze(1)], atol=1e-12)
        assert torch.allclose(pg, graph, atol=1e-9)


# ---- the bundle -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("r", [0, 1, 2, 3])
def test_extra_features_dims_for_every_subset(r):
    adj, mask, _ = batch(random_graphs(3, 7), seed=7, dtype=torch.float32)
    for kinds in itertools.combinations(KINDS, r):
        feats = ExtraFeatures(kinds, spectral_k=2, rrwp_steps=3)
        node, edge, graph = feats(adj, mask)
        fn, fe, fg = feats.dims
        assert node.shape == (*mask.shape, fn) and edge.shape == (*adj.shape, fe) and graph.shape == (3, fg)
        assert node.dtype == edge.dtype == graph.dtype == torch.float32
    assert ExtraFeatures(spectral_k=5, rrwp_steps=8).dims == (4 + 6 + 8, 8, 4 + 6)


def test_configuration_errors_are_one_line():
    with pytest.raises(ConfigError, match="'cycle'.*did you mean 'cycles'") as err:
        ExtraFeatures(("cycle",))
    assert "\n" not in str(err.value)
    with pytest.raises(ConfigError, match="repeated"):
        ExtraFeatures(("rrwp", "rrwp"))
    with pytest.raises(ConfigError, match="spectral_k"):
        ExtraFeatures(spectral_k=0)
    with pytest.raises(ConfigError, match="rrwp_steps"):
        rrwp_features(torch.zeros(1, 2, 2), torch.ones(1, 2, dtype=torch.bool), steps=0)
    with pytest.raises(SchemaError, match="adj"):
        cycle_counts(torch.zeros(1, 3, 2), torch.ones(1, 3, dtype=torch.bool))
    assert ExtraFeatures("rrwp").kinds == ("rrwp",)
