"""The 3D molecule processes (EQGAT-diff diffusion, SemlaFlow-class flow): encoding, noising, posteriors, losses
and the samplers' end points with an oracle denoiser."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from rdkit import Chem
from rdkit.Chem import AllChem

from graphdiff.convert.rdkit import bond_categories
from graphdiff.errors import ConfigError, SchemaError
from graphdiff.processes import build_process
from graphdiff.processes.eqgat_diff import EQGATDiffusion, adaptive_cosine
from graphdiff.processes.mixed3d import centre
from graphdiff.processes.semlaflow import MolecularFlowMatching, kabsch_align
from graphdiff.samplers import SampleNoise, sample
from graphdiff.schema import Schema, atom_token
from graphdiff.state import GraphState

SMILES = ["CCO", "C[NH3+]", "CC(=O)[O-]", "c1ccccc1", "C#N"]
EDGES = bond_categories(kekulize=False)
_BOND = {Chem.BondType.SINGLE: 1, Chem.BondType.DOUBLE: 2, Chem.BondType.TRIPLE: 3, Chem.BondType.AROMATIC: 4}


def _molecules():
    out = []
    for i, s in enumerate(SMILES):
        m = Chem.AddHs(Chem.MolFromSmiles(s))
        AllChem.EmbedMolecule(m, randomSeed=i)
        out.append(m)
    return out


@pytest.fixture(scope="module")
def batch_and_schema():
    mols = _molecules()
    toks = sorted({atom_token(a.GetSymbol(), a.GetFormalCharge()) for m in mols for a in m.GetAtoms()})
    nt = [np.array([toks.index(atom_token(a.GetSymbol(), a.GetFormalCharge())) for a in m.GetAtoms()]) for m in mols]
    et = [np.array([_BOND[b.GetBondType()] for b in m.GetBonds()]) for m in mols]
    schema = Schema.from_graphs(nt, et, node_categories=toks, edge_categories=EDGES, kind="molecule",
                                explicit_h=True)
    n = max(m.GetNumAtoms() for m in mols)
    b = len(mols)
    types = torch.zeros(b, n, dtype=torch.long)
    edges = torch.zeros(b, n, n, dtype=torch.long)
    pos = torch.zeros(b, n, 3)
    mask = torch.zeros(b, n, dtype=torch.bool)
    for k, m in enumerate(mols):
        k_n = m.GetNumAtoms()
        types[k, :k_n] = torch.as_tensor(nt[k])
        mask[k, :k_n] = True
        pos[k, :k_n] = torch.as_tensor(m.GetConformer().GetPositions(), dtype=torch.float32) + 5.0
        for bd in m.GetBonds():
            i, j = bd.GetBeginAtomIdx(), bd.GetEndAtomIdx()
            edges[k, i, j] = edges[k, j, i] = _BOND[bd.GetBondType()]
    return GraphState.from_types(types, edges, mask, schema, pos=pos), schema


class TinyDenoiser(torch.nn.Module):
    """Permutation- and E(3)-equivariant toy: linear maps of the one-hot inputs, coordinates scaled."""

    def __init__(self, node_dim, edge_dim, node_out, edge_out, **_):
        super().__init__()
        self.x = torch.nn.Linear(node_dim + 1, node_out)
        self.e = torch.nn.Linear(edge_dim + 1, edge_out)
        self.scale = torch.nn.Parameter(torch.ones(()))

    def forward(self, state, t, cond=None):
        b, n = state.mask.shape
        tx = t.view(-1, 1, 1).expand(b, n, 1)
        te = t.view(-1, 1, 1, 1).expand(b, n, n, 1)
        return GraphState(x=self.x(torch.cat([state.x, tx], -1)), e=self.e(torch.cat([state.e, te], -1)),
                          mask=state.mask, pos=self.scale * state.pos)


class Oracle(torch.nn.Module):
    """Predicts one fixed clean molecule exactly (logits +-30, the true coordinates)."""

    def __init__(self, clean: GraphState):
        super().__init__()
        self.clean = clean
        self.dummy = torch.nn.Parameter(torch.zeros(()))

    def forward(self, state, t, cond=None):
        c, (b, n) = self.clean, state.mask.shape
        x = (60 * c.x - 30)[:, :n].expand(b, -1, -1)
        e = (60 * c.e - 30)[:, :n, :n].expand(b, -1, -1, -1)
        return GraphState(x=x, e=e, mask=state.mask, pos=c.pos[:, :n].expand(b, -1, -1))


def test_encode_decode_roundtrip_and_centring(batch_and_schema):
    batch, schema = batch_and_schema
    for cls in (EQGATDiffusion, MolecularFlowMatching):
        proc = cls(schema)
        assert proc.elements == ("C", "H", "N", "O")
        assert proc.charges == (-1, 0, 1)
        st = proc.encode(batch)
        assert st.x.shape[-1] == proc.ka + proc.kc
        com = (st.pos * st.mask.unsqueeze(-1)).sum(1)
        assert torch.allclose(com, torch.zeros_like(com), atol=1e-5)
        back = proc.decode(st)
        assert back.schema.node_categories[: schema.num_node_types] == schema.node_categories
        assert torch.equal(back.node_types(), batch.node_types(schema))
        assert torch.equal(back.edge_types(), batch.edge_types())
        assert torch.allclose(back.pos, centre(batch.pos, batch.mask), atol=1e-5)
        # element and charge marginals are the token marginals summed
        assert math.isclose(float(proc.m_c.sum()), 1.0) and float(proc.m_c[proc.charges.index(1)]) > 0


def test_decode_adds_unknown_element_charge_combinations(batch_and_schema):
    batch, schema = batch_and_schema
    proc = EQGATDiffusion(schema)
    st = proc.encode(batch)
    x = st.x.clone()
    x[0, 0] = 0
    x[0, 0, proc.elements.index("C")] = 1
    x[0, 0, proc.ka + proc.charges.index(-1)] = 1  # "C-" is not a token of the data
    out = proc.decode(GraphState(x=x, e=st.e, mask=st.mask, pos=st.pos))
    assert "C-" in out.schema.node_categories
    assert out.schema.node_categories[int(out.node_types()[0, 0])] == "C-"


def test_schedule_and_weighting():
    ab = adaptive_cosine(500, 2.5)
    assert float(ab[0]) == 1.0 and float(ab[-1]) < 1e-6
    assert bool((ab[1:] <= ab[:-1]).all())
    # nu > 1 keeps more signal at mid times than nu = 1
    assert float(adaptive_cosine(500, 2.5)[250]) > float(adaptive_cosine(500, 1.0)[250])


def test_noisy_states_interpolate_between_data_and_prior(batch_and_schema):
    batch, schema = batch_and_schema
    proc = EQGATDiffusion(schema, T=100)
    g = torch.Generator().manual_seed(0)
    b = batch.batch_size
    clean, (pos0, a0, c0, e0) = proc.noisy(batch, torch.zeros(b, dtype=torch.long), g)
    assert torch.allclose(clean.pos, pos0, atol=1e-5)
    assert torch.equal(clean.x[..., : proc.ka].argmax(-1)[batch.mask], a0[batch.mask])
    noisy, _ = proc.noisy(batch, torch.full((b,), 100, dtype=torch.long), g)
    com = (noisy.pos * noisy.mask.unsqueeze(-1)).sum(1)
    assert torch.allclose(com, torch.zeros_like(com), atol=1e-4)
    # at t = T the coordinates are pure noise: unrelated to the data
    assert float((noisy.pos - pos0)[batch.mask].norm(dim=-1).mean()) > 1.0
    assert torch.allclose(noisy.e, noisy.e.transpose(1, 2))


def test_gaussian_posterior_marginalises_to_the_forward_marginal():
    # q(x_s | x_t, x0) averaged over x_t ~ q(x_t | x0) is q(x_s | x0) = N(a_s x0, sigma_s^2)
    schema = Schema(node_categories=("C", "H"), edge_categories=EDGES, kind="molecule", max_nodes=2,
                    node_count_hist=(0, 0, 1), node_marginals=(0.5, 0.5), edge_marginals=(0.5, 0.5, 0, 0, 0))
    proc = EQGATDiffusion(schema, T=50)
    g = torch.Generator().manual_seed(1)
    m = 200_000
    mask = torch.ones(m, 2, dtype=torch.bool)
    x0 = torch.tensor([[1.5, -0.5, 2.0], [-1.5, 0.5, -2.0]]).expand(m, 2, 3)
    t, s = 30, 20
    a_t, s_t = (v.float() for v in proc.signal(torch.tensor([t])))
    x_t = a_t * x0 + s_t * centre(torch.randn(m, 2, 3, generator=g), mask)
    x_s = proc.reverse_pos(x_t, x0, t, s, mask, centre(torch.randn(m, 2, 3, generator=g), mask))
    a_s, s_s = (v.float() for v in proc.signal(torch.tensor([s])))
    assert torch.allclose(x_s.mean(0), (a_s * x0[0]).float(), atol=0.01)
    # centred noise on 2 atoms keeps half the variance per coordinate
    assert math.isclose(float(x_s[:, 0, 0].var()), float(s_s ** 2) / 2, rel_tol=0.02)


def test_losses_are_finite_weighted_and_differentiable(batch_and_schema):
    batch, schema = batch_and_schema
    for cls in (EQGATDiffusion, MolecularFlowMatching):
        proc = cls(schema)
        net = TinyDenoiser(**proc.denoiser_kwargs())
        loss = proc.loss(net, batch, generator=torch.Generator().manual_seed(0))
        assert loss.shape == (batch.batch_size,) and bool(torch.isfinite(loss).all())
        loss.mean().backward()
        assert all(p.grad is not None for p in net.parameters())
    w = EQGATDiffusion(schema).loss_weight(torch.arange(1, 501))
    assert float(w.min()) >= 0.05 and float(w.max()) <= 1.5 and float(w[0]) == 1.5 and float(w[-1]) == 0.05


@pytest.mark.parametrize("name,sampler,steps", [("eqgat_diff", "ancestral", 20), ("semlaflow", "euler", 10)])
def test_samplers_reach_the_predicted_molecule(batch_and_schema, name, sampler, steps):
    batch, schema = batch_and_schema
    proc = build_process({"name": name, "T": 100} if name == "eqgat_diff" else {"name": name}, schema)
    target = proc.encode(batch[[3]])  # benzene with its hydrogens
    seen = []

    def cb(k, t, state):
        com = (state.pos * state.mask.unsqueeze(-1)).sum(1)
        seen.append(float(com.abs().max()))

    n = int(batch.n_nodes[3])
    out = sample(proc, Oracle(target), torch.tensor([n, n]), steps=steps, sampler=sampler,
                 noise=SampleNoise.for_run(0, 0, 2), callback=cb)
    assert len(seen) == steps and max(seen) < 1e-4
    assert torch.equal(out.node_types(), batch[[3, 3]].node_types(schema)[:, :n])
    assert out.schema == proc.decode_schema
    assert torch.equal(out.edge_types(), batch[[3, 3]].edge_types()[:, :n, :n])
    assert torch.allclose(out.pos, target.pos.expand(2, -1, -1)[:, :n], atol=1e-4)


def test_kabsch_align_is_a_proper_rotation_that_reduces_the_distance():
    g = torch.Generator().manual_seed(3)
    mask = torch.ones(4, 7, dtype=torch.bool)
    target = centre(torch.randn(4, 7, 3, generator=g), mask)
    noise = centre(torch.randn(4, 7, 3, generator=g), mask)
    aligned = kabsch_align(noise, target, mask)
    assert torch.allclose(torch.cdist(aligned, aligned), torch.cdist(noise, noise), atol=1e-5)  # rigid
    assert bool(((aligned - target).norm() <= (noise - target).norm()).all())
    # a rotated copy is brought back exactly
    q, _ = torch.linalg.qr(torch.randn(3, 3, generator=g))
    q = q * torch.sign(torch.linalg.det(q))
    assert torch.allclose(kabsch_align(target @ q, target, mask), target, atol=1e-5)


def test_bad_settings_are_one_line_errors(batch_and_schema):
    batch, schema = batch_and_schema
    with pytest.raises(ConfigError, match="process.T"):
        EQGATDiffusion(schema, T=1)
    with pytest.raises(ConfigError, match="process.weighting"):
        EQGATDiffusion(schema, weighting="snr")
    with pytest.raises(ConfigError, match="process.limit"):
        MolecularFlowMatching(schema, limit="absorbing")
    with pytest.raises(ConfigError, match="steps must be an integer in 1..100"):
        EQGATDiffusion(schema, T=100).timesteps(101)
    graph = Schema(node_categories=("a",), edge_categories=("none", "edge"), kind="graph")
    with pytest.raises(SchemaError, match="molecule schema"):
        EQGATDiffusion(graph)
    no_pos = GraphState(x=batch.x, e=batch.e, mask=batch.mask, schema=schema)
    with pytest.raises(SchemaError, match="no pos"):
        EQGATDiffusion(schema).encode(no_pos)
