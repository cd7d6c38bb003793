"""GDSS process: encoding round trip, loss, prior, and every sampler against an exact score."""

import pytest
import torch

from graphdiff.convert import from_smiles
from graphdiff.errors import ConfigError
from graphdiff.nn import build_denoiser
from graphdiff.nn.equivariance import assert_permutation_equivariant
from graphdiff.processes import GDSSProcess, build_process
from graphdiff.samplers import SampleNoise, sample
from graphdiff.schema import Schema

MU, S0 = 0.5, 0.3


def plain_schema(n=8):
    hist = [0] * (n + 1)
    hist[n] = 1
    return Schema(node_categories=("node",), edge_categories=("none", "edge"), max_nodes=n,
                  node_count_hist=tuple(hist))


class GaussianOracle(torch.nn.Module):
    """The exact score network when every entry of X and A is N(MU, S0^2): what a perfect denoiser outputs."""

    def __init__(self, process):
        super().__init__()
        self.p = process
        self.dummy = torch.nn.Parameter(torch.zeros(1))

    def forward(self, state, t, cond=None):
        outs = []
        for sde, v in ((self.p.sde_x, state.x), (self.p.sde_adj, state.e[..., 0])):
            a, std = sde.marginal(torch.ones(len(t), dtype=v.dtype), t)
            a, std = a.view(-1, *[1] * (v.dim() - 1)), std.view(-1, *[1] * (v.dim() - 1))
            score = -(v - a * MU) / (a**2 * S0**2 + std**2)
            outs.append(-score * std if sde.scales_output() else score)
        return type(state)(x=outs[0], e=outs[1].unsqueeze(-1), mask=state.mask)


SDE_PAIRS = {
    "VP": {"type": "VP", "beta_min": 0.1, "beta_max": 20.0},
    "VE": {"type": "VE", "beta_min": 0.01, "beta_max": 10.0},
    "subVP": {"type": "subVP", "beta_min": 0.1, "beta_max": 20.0},
}


@pytest.mark.parametrize("sampler,kw", [("em", {}), ("pc", {"predictor": "reverse", "snr": 0.1, "scale_eps": 1.0}),
                                        ("pc", {"predictor": "euler", "snr": 0.1, "scale_eps": 1.0}),
                                        ("s4", {"snr": 0.1, "scale_eps": 1.0}),
                                        ("ode", {})])
@pytest.mark.parametrize("sde", ["VP", "VE", "subVP"])
def test_samplers_recover_gaussian_data_with_exact_score(sampler, kw, sde):
    torch.manual_seed(0)
    proc = GDSSProcess(plain_schema(), sde_x=SDE_PAIRS[sde], sde_adj=SDE_PAIRS[sde], node_features="degree",
                       max_feat_num=3)
    oracle = GaussianOracle(proc)
    n_nodes = torch.full((96,), 8)
    out = sample(proc, oracle, n_nodes, steps=250, sampler=sampler, seed=0, decode=False, eps=1e-3, **kw)
    x = out.x[out.mask]
    a = out.e[..., 0][out.mask.unsqueeze(2) & out.mask.unsqueeze(1) & ~torch.eye(8, dtype=torch.bool)]
    for v in (x, a):
        assert abs(v.mean().item() - MU) < 0.04, (sampler, sde, v.mean().item())
        assert abs(v.std().item() / S0 - 1) < 0.12, (sampler, sde, v.std().item())
    assert torch.equal(out.e[..., 0], out.e[..., 0].transpose(1, 2))


def test_prior_is_symmetric_masked_and_per_sample():
    proc = GDSSProcess(plain_schema(), node_features="degree", max_feat_num=3)
    n = torch.tensor([3, 8, 5])
    st = proc.prior(n, generator=SampleNoise.for_run(7, 0, 3))
    a = st.e[..., 0]
    assert torch.equal(a, a.transpose(1, 2))
    assert (a[0, 3:] == 0).all() and (a[0, :, 3:] == 0).all() and (st.x[0, 3:] == 0).all()
    assert (torch.diagonal(a, dim1=1, dim2=2) == 0).all()
    alone = proc.prior(n[1:2], generator=SampleNoise.for_run(7, 1, 1))
    assert torch.equal(alone.e[0], st.e[1]) and torch.equal(alone.x[0], st.x[1])


def test_molecule_encode_decode_round_trip():
    batch = from_smiles(["CC(=O)O", "C#N", "c1ccccc1O", "[NH3+]CC(=O)[O-]"])
    proc = build_process({"name": "gdss"}, batch.schema)
    assert proc.node_features == "types" and proc.x_dim == batch.schema.num_node_types
    enc = proc.encode(batch)
    assert set(enc.e.unique().tolist()) <= {0.0, 1.0, 2.0, 3.0}
    noisy = enc.clone()
    noisy.e = noisy.e + 0.3 * (torch.rand_like(noisy.e) - 0.5)  # within the rounding bins
    dec = proc.decode(noisy)
    assert torch.equal(dec.edge_types(), batch.edge_types())
    assert torch.equal(dec.node_types(), batch.node_types())


def test_degree_features_cap_and_errors():
    batch = from_smiles(["CC(C)(C)C"])  # centre has degree 4
    plain = plain_schema(5)
    proc = GDSSProcess(plain, node_features="degree", max_feat_num=3)
    enc = proc.encode(type(batch)(x=torch.ones(1, 5, 1), e=batch.e[..., :2] * 0 + torch.nn.functional.one_hot(
        batch.edge_types().clamp(max=1), 2).float(), mask=batch.mask))
    assert enc.x.shape[-1] == 3 and enc.x[0].argmax(-1).max() == 2
    with pytest.raises(ConfigError, match="cannot generate"):
        GDSSProcess(from_smiles(["CO"]).schema, node_features="degree", max_feat_num=5)
    with pytest.raises(ConfigError, match="node_features"):
        GDSSProcess(plain, node_features="deg")


def test_loss_is_per_graph_masked_and_trains():
    batch = from_smiles(["CCO", "CC(=O)O", "c1ccccc1", "CCN(C)C", "OCC(O)CO", "C1CC1"] * 2)
    proc = build_process({"name": "gdss", "sde_x": {"type": "VP", "beta_min": 0.1, "beta_max": 1.0},
                          "sde_adj": {"type": "VE", "beta_min": 0.2, "beta_max": 1.0}}, batch.schema)
    torch.manual_seed(0)
    den = build_denoiser("gdss", x_net={"type": "gcn", "depth": 2, "nhid": 16},
                         adj_net={"nhid": 16, "num_layers": 2}, x_dim=proc.x_dim, max_nodes=batch.max_nodes + 3)
    loss = proc.loss(den, batch, generator=torch.Generator().manual_seed(0))
    assert loss.shape == (len(batch),) and torch.isfinite(loss).all()
    again = proc.loss(den, batch, generator=torch.Generator().manual_seed(0))
    assert torch.equal(loss, again)  # the generator alone decides the noise
    opt = torch.optim.Adam(den.parameters(), lr=5e-3)
    first = None
    for i in range(60):
        val = proc.loss(den, batch, generator=torch.Generator().manual_seed(i)).mean()
        first = first if first is not None else val.item()
        opt.zero_grad()
        val.backward()
        opt.step()
    late = torch.stack([proc.loss(den, batch, generator=torch.Generator().manual_seed(1000 + i)).mean()
                        for i in range(10)]).mean()
    assert late.item() < 0.8 * first


def test_gdss_denoiser_inside_the_process_is_permutation_equivariant():
    batch = from_smiles(["CCO", "CC(=O)O", "c1ccccc1"])
    proc = build_process({"name": "gdss"}, batch.schema)
    den = build_denoiser("gdss", x_net={"type": "gmh", "depth": 2, "nhid": 8, "adim": 8},
                         adj_net={"nhid": 8, "num_layers": 2, "adim": 8}, x_dim=proc.x_dim,
                         max_nodes=batch.max_nodes).double()
    enc = proc.encode(batch).to(torch.float64)
    t = torch.tensor([0.2, 0.5, 0.9], dtype=torch.float64)
    assert_permutation_equivariant(lambda s: den(s, t), enc, atol=1e-9)
