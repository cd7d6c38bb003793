"""Shared categorical pieces: limit distributions, per-sample symmetric sampling, conditions, encode / decode.

Also holds the helpers the DiGress and DeFoG tests share (a small schema, i.i.d. categorical data, a tiny
per-node / per-pair MLP denoiser).
"""

import pytest
import torch
from torch import nn

from graphdiff.convert import from_smiles
from graphdiff.errors import ConfigError, SchemaError
from graphdiff.processes.categorical import (
    CategoricalProcess, check_condition, condition_input, draw_uniforms, drop_conditions, guided_log_probs,
    limit_distributions, sample_categorical, sample_edges, sample_nodes,
)
from graphdiff.processes.digress import DiscreteDiffusion
from graphdiff.processes.defog import DiscreteFlowMatching
from graphdiff.samplers import SampleNoise
from graphdiff.schema import Schema
from graphdiff.state import GraphState

# data: nodes and edges i.i.d. categorical, with probabilities far from the schema's marginals (the limit)
PI_X = torch.tensor([0.15, 0.25, 0.60], dtype=torch.float64)
PI_E = torch.tensor([0.50, 0.20, 0.30], dtype=torch.float64)


def small_schema(max_nodes=12, graph_features=()):
    hist = [0] * (max_nodes + 1)
    hist[10] = 1
    return Schema(node_categories=("A", "B", "C"), edge_categories=("none", "single", "double"), max_nodes=max_nodes,
                  node_count_hist=tuple(hist), node_marginals=(0.6, 0.3, 0.1), edge_marginals=(0.85, 0.1, 0.05),
                  graph_features=tuple(graph_features))


def iid_batch(schema, n_nodes, seed=0, y=None):
    """Graphs whose node and edge categories are i.i.d. PI_X / PI_E."""
    g = torch.Generator().manual_seed(seed)
    b, n = len(n_nodes), int(max(n_nodes))
    mask = torch.arange(n).unsqueeze(0) < torch.as_tensor(n_nodes).unsqueeze(1)
    nt = torch.multinomial(PI_X.float(), b * n, replacement=True, generator=g).view(b, n)
    et = torch.multinomial(PI_E.float(), b * n * n, replacement=True, generator=g).view(b, n, n).triu(1)
    return GraphState.from_types(nt, et + et.transpose(1, 2), mask, schema, y=y)


class TinyDenoiser(nn.Module):
    """Per-node and per-pair MLPs on (one-hot state, t, condition, endpoint states): small but trainable."""

    def __init__(self, node_dim, edge_dim, node_out, edge_out, cond_dim=0, max_nodes=0, hidden=32):
        super().__init__()
        self.node = nn.Sequential(nn.Linear(node_dim + 1 + cond_dim, hidden), nn.SiLU(), nn.Linear(hidden, node_out))
        self.edge = nn.Sequential(nn.Linear(edge_dim + 1 + node_dim + cond_dim, hidden), nn.SiLU(),
                                  nn.Linear(hidden, edge_out))

    def forward(self, state, t, cond=None):
        b, n = state.mask.shape
        tn = t.view(b, 1, 1).to(state.x.dtype).expand(b, n, 1)
        hx = [state.x, tn] + ([cond.view(b, 1, -1).expand(b, n, -1).to(state.x.dtype)] if cond is not None else [])
        pair = state.x.unsqueeze(2) + state.x.unsqueeze(1)
        he = [state.e, tn.unsqueeze(2).expand(b, n, n, 1), pair]
        if cond is not None:
            he.append(cond.view(b, 1, 1, -1).expand(b, n, n, -1).to(state.x.dtype))
        return GraphState(x=self.node(torch.cat(hx, -1)), e=self.edge(torch.cat(he, -1)), mask=state.mask)


# ---- limit distributions -----------------------------------------------------------------------------
@pytest.mark.parametrize("limit", ["uniform", "marginal", "absorbing"])
def test_limit_distributions_sum_to_one(limit):
    s = small_schema()
    m_x, m_e = limit_distributions(s, limit)
    assert abs(float(m_x.sum()) - 1) < 1e-12 and abs(float(m_e.sum()) - 1) < 1e-12
    assert (m_x >= 0).all() and (m_e >= 0).all()
    if limit == "absorbing":
        assert m_x.shape == (4,) and m_x[3] == 1 and m_e[0] == 1
    elif limit == "marginal":
        assert torch.allclose(m_x, torch.tensor([0.6, 0.3, 0.1], dtype=torch.float64))
    else:
        assert torch.allclose(m_e, torch.full((3,), 1 / 3, dtype=torch.float64))


def test_limit_errors_name_the_field_and_value():
    bare = Schema(node_categories=("A", "B"), edge_categories=("none", "e"), max_nodes=4)
    with pytest.raises(ConfigError, match=r"process.transition: 'marginal' needs the schema's node_marginals"):
        DiscreteDiffusion(bare)
    with pytest.raises(ConfigError, match=r"process.limit: 'mask' is not one of"):
        DiscreteFlowMatching(bare, limit="mask")
    assert DiscreteFlowMatching(bare, limit="uniform").denoiser_kwargs()["node_dim"] == 2


# ---- sampling ----------------------------------------------------------------------------------------
def test_inverse_cdf_sampling_matches_probabilities():
    p = torch.tensor([0.1, 0.0, 0.6, 0.3], dtype=torch.float64)
    u = torch.rand(200_000, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    idx = sample_categorical(p.expand(len(u), -1), u)
    freq = torch.bincount(idx, minlength=4).double() / len(u)
    assert freq[1] == 0 and torch.allclose(freq, p, atol=5e-3)
    assert sample_categorical(p.unsqueeze(0), torch.zeros(1)).item() == 0  # u = 0 never picks a zero-mass class


def test_symmetric_edge_sampling_is_one_hot_with_none_on_diagonal_and_padding():
    g = torch.Generator().manual_seed(1)
    mask = torch.tensor([[True] * 6, [True] * 4 + [False] * 2])
    probs = torch.rand(2, 6, 6, 3, generator=g)  # not symmetric on purpose
    e = sample_edges(probs, torch.rand(2, 6, 6, generator=g, dtype=torch.float64), mask)
    assert torch.equal(e, e.transpose(1, 2))
    assert (e.sum(-1) == 1).all()
    idx = e.argmax(-1)
    assert (torch.diagonal(idx, dim1=1, dim2=2) == 0).all()
    assert (idx[1, 4:] == 0).all() and (idx[1, :, 4:] == 0).all()
    assert idx[0].triu(1).sum() > 0  # real pairs do get edges
    x = sample_nodes(torch.rand(2, 6, 3, generator=g), torch.rand(2, 6, generator=g, dtype=torch.float64), mask)
    assert (x[1, 4:] == 0).all() and (x[mask].sum(-1) == 1).all()


@pytest.mark.parametrize("cls", [DiscreteDiffusion, DiscreteFlowMatching])
def test_prior_sample_is_the_same_alone_or_in_a_batch(cls):
    proc = cls(small_schema())
    n = torch.tensor([5, 10, 7, 3])
    batch = proc.prior(n, generator=SampleNoise.for_run(11, 0, 4))
    for i in range(4):
        alone = proc.prior(n[i:i + 1], generator=SampleNoise.for_run(11, i, 1))
        k = int(n[i])
        assert torch.equal(alone.x[0, :k], batch.x[i, :k]) and torch.equal(alone.e[0, :k, :k], batch.e[i, :k, :k])
    assert torch.equal(batch.e, batch.e.transpose(1, 2))
    # the uniforms themselves: full-size draws sliced
    u_x, u_e = draw_uniforms(SampleNoise.for_run(3, 0, 2), torch.ones(2, 4, dtype=torch.bool), 12)
    v_x, v_e = draw_uniforms(SampleNoise.for_run(3, 1, 1), torch.ones(1, 7, dtype=torch.bool), 12)
    assert torch.equal(u_x[1], v_x[0, :4]) and torch.equal(u_e[1], v_e[0, :4, :4])


def test_prior_follows_the_limit_distribution():
    proc = DiscreteDiffusion(small_schema())
    st = proc.prior(torch.full((200,), 10), generator=SampleNoise.for_run(0, 0, 200))
    fx = st.x[st.mask].mean(0).double()
    up = torch.ones(10, 10, dtype=torch.bool).triu(1)
    fe = st.e[:, up].reshape(-1, 3).mean(0).double()
    assert torch.allclose(fx, proc.m_x, atol=0.04) and torch.allclose(fe, proc.m_e, atol=0.02)
    absorbing = DiscreteDiffusion(small_schema(), transition="absorbing").prior(torch.tensor([4]),
                                                                                 generator=SampleNoise.for_run(0, 0, 1))
    assert (absorbing.x[0].argmax(-1) == 3).all() and (absorbing.e.argmax(-1) == 0).all()


# ---- conditions --------------------------------------------------------------------------------------
def test_condition_width_error_names_expected_and_got():
    s = small_schema(graph_features=("qed", "logp"))
    with pytest.raises(ConfigError, match=r"cond: expected 2 graph features \['qed', 'logp'\].*got shape \(3, 5\)"):
        check_condition(torch.zeros(3, 5), s, 3)
    assert check_condition(torch.tensor([1.0, 2.0]), s, 3).shape == (3, 2)
    proc = DiscreteDiffusion(small_schema())  # no graph features: any condition is the wrong width
    state = proc.prior(torch.tensor([3]), generator=SampleNoise.for_run(0, 0, 1))
    den = TinyDenoiser(**proc.denoiser_kwargs())
    with pytest.raises(ConfigError, match="expected 0 graph features"):
        proc.predict(den, state, torch.zeros(1), cond=torch.zeros(1, 1))


def test_condition_dropout_rate_matches_cond_drop():
    y = torch.randn(20_000, 2, generator=torch.Generator().manual_seed(0)) + 3
    c = drop_conditions(y, 0.3, torch.Generator().manual_seed(1))
    keep = c[:, -1]
    assert c.shape == (20_000, 3) and set(keep.unique().tolist()) == {0.0, 1.0}
    assert abs(keep.mean().item() - 0.7) < 0.015
    assert (c[keep == 0, :2] == 0).all() and torch.equal(c[keep == 1, :2], y[keep == 1])
    assert torch.equal(condition_input(y[:2], torch.zeros(2)), torch.zeros(2, 3))


def test_guided_log_probs():
    g = torch.Generator().manual_seed(0)
    lc = torch.log_softmax(torch.randn(5, 4, generator=g), -1)
    lu = torch.log_softmax(torch.randn(5, 4, generator=g), -1)
    assert torch.allclose(guided_log_probs(lc, lu, 0.0), lc, atol=1e-6)
    assert torch.allclose(guided_log_probs(lc, lc, 3.0), lc, atol=1e-5)
    out = guided_log_probs(lc, lu, 2.0)
    assert torch.allclose(out.exp().sum(-1), torch.ones(5), atol=1e-6)
    ref = torch.log_softmax(3 * lc - 2 * lu, -1)
    assert torch.allclose(out, ref, atol=1e-6)


def test_predict_calls_the_denoiser_with_both_branches_and_guides():
    s = small_schema(graph_features=("qed",))
    proc = DiscreteDiffusion(s)
    seen = []

    class CondShift(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.zeros(1))

        def forward(self, state, t, cond):
            seen.append(cond.clone())
            b, n = state.mask.shape
            x = torch.zeros(b, n, 3)
            x[..., 0] = cond[:, 0].view(b, 1) * 2.0
            return GraphState(x=x, e=torch.zeros(b, n, n, 3), mask=state.mask)

    den = CondShift()
    state = proc.prior(torch.tensor([4, 4]), generator=SampleNoise.for_run(0, 0, 2))
    y = torch.tensor([[1.0], [0.5]])
    lx0, _ = proc.predict(den, state, torch.zeros(2), cond=y)
    assert len(seen) == 1 and torch.equal(seen[0], torch.tensor([[1.0, 1.0], [0.5, 1.0]]))
    lxw, _ = proc.predict(den, state, torch.zeros(2), cond=y, guidance=1.5)
    assert torch.equal(seen[2], torch.zeros(2, 2))  # the unconditional branch: y * 0 and keep = 0
    lu = torch.log_softmax(torch.zeros(3), -1)
    assert torch.allclose(lxw, guided_log_probs(lx0, lu.expand_as(lx0), 1.5), atol=1e-6)
    assert (lxw[..., 0] > lx0[..., 0]).all()  # guidance sharpens towards the conditioned class
    with pytest.raises(ConfigError, match="needs a condition"):
        proc.predict(den, state, torch.zeros(2), guidance=1.0)


# ---- encode / decode ---------------------------------------------------------------------------------
@pytest.mark.parametrize("limit", ["marginal", "absorbing"])
def test_encode_decode_round_trip_on_molecules(limit):
    batch = from_smiles(["CC(=O)O", "C#N", "c1ccccc1O", "[NH3+]CC(=O)[O-]"])
    proc = DiscreteFlowMatching(batch.schema, limit=limit)
    enc = proc.encode(batch)
    assert enc.x.shape[-1] == proc.node_states and torch.equal(enc.e, enc.e.transpose(1, 2))
    assert (enc.e.sum(-1) == 1).all()  # "none" on the diagonal and the padding
    dec = proc.decode(enc)
    assert torch.equal(dec.node_types(), batch.node_types()) and torch.equal(dec.edge_types(), batch.edge_types())


def test_encode_remaps_known_categories_and_rejects_unknown_ones():
    big = from_smiles(["CCO", "CN", "CCl"])
    small = from_smiles(["OCC"])
    proc = DiscreteDiffusion(big.schema)
    x0, _ = proc.categories(small)
    names = [big.schema.node_categories[i] for i in x0[0, :3].tolist()]
    assert sorted(names) == sorted(small.schema.node_categories[i] for i in small.node_types()[0, :3].tolist())
    with pytest.raises(SchemaError, match=r"sample has node categories the schema does not know: \['S'\]"):
        DiscreteDiffusion(small.schema).encode(from_smiles(["CS"]))


def test_shared_base_sizes():
    s = small_schema(graph_features=("a", "b"))
    assert DiscreteDiffusion(s, transition="absorbing").denoiser_kwargs() == {
        "node_dim": 4, "edge_dim": 3, "node_out": 3, "edge_out": 3, "cond_dim": 3, "max_nodes": 12}
    assert isinstance(DiscreteDiffusion(s), CategoricalProcess)


def seeded_loss(proc, den, batch, seeds) -> float:
    """Mean of the process loss over fixed noise seeds (a held-out estimate that does not move between calls)."""
    with torch.no_grad():
        return torch.stack([proc.loss(den, batch, generator=torch.Generator().manual_seed(int(k))).mean()
                            for k in seeds]).mean().item()


def adam_steps(proc, den, batch, steps: int, lr: float) -> None:
    """``steps`` Adam steps on the process loss, noise seed = step index."""
    opt = torch.optim.Adam(den.parameters(), lr=lr)
    for i in range(steps):
        val = proc.loss(den, batch, generator=torch.Generator().manual_seed(i)).mean()
        opt.zero_grad()
        val.backward()
        opt.step()
