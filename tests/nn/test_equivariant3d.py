"""3D denoisers (EQGAT-class and e3nn tensor-product): permutation and E(3) equivariance (rotations, reflections,
translations) with padding, e3nn's own equivariance check, padding and batch isolation, the output contract,
conditioning, input checks, gradients to every parameter and a short fit.

Tolerances (absolute, on logits and on coordinates in Å with translations of ~10 Å): float32 1e-4 for logits and
2e-4 for coordinates; float64 1e-9 for both.
"""

from __future__ import annotations

import pytest
import torch

from graphdiff import GraphState
from graphdiff.errors import ConfigError, SchemaError
from graphdiff.nn import DENOISERS, E3nnTPDenoiser, EQGATDenoiser, build_denoiser
from graphdiff.nn.equivariance import (
    assert_e3_equivariant,
    assert_mask_isolated,
    assert_permutation_equivariant,
    random_orthogonal,
)

NODE_DIM, EDGE_DIM, NODE_OUT, EDGE_OUT, COND = 7, 5, 6, 4, 2
SMALL = {
    "eqgat": dict(n_layers=2, hidden=16, vectors=4, edge_hidden=8, heads=2, num_rbf=8),
    "e3nn_tp": dict(n_layers=2, scalars=16, vectors=4, edge_hidden=8, lmax=2, num_rbf=8, radial_hidden=16),
}
NAMES = list(SMALL)
F32_ATOL, F32_POS_ATOL, F64_ATOL = 1e-4, 2e-4, 1e-9

_NETS: dict = {}


def net(name: str, dtype=torch.float32, cond_dim=COND, seed=0) -> torch.nn.Module:
    """A small network (cached: building e3nn tensor products takes a moment), in eval mode."""
    key = (name, dtype, cond_dim, seed)
    if key not in _NETS:
        torch.manual_seed(seed)
        m = build_denoiser(name, node_dim=NODE_DIM, edge_dim=EDGE_DIM, node_out=NODE_OUT, edge_out=EDGE_OUT,
                           cond_dim=cond_dim, max_nodes=12, **SMALL[name])
        _NETS[key] = m.to(dtype).eval()
    return _NETS[key]


def make_state(sizes=(5, 1, 9, 3, 0), n=10, seed=0, dtype=torch.float32) -> GraphState:
    """Graphs of the given sizes at scattered slots of ``n``: random element/charge-like one-hots, symmetric random
    bond one-hots, coordinates ~ N(0, 1.5 Å) centred over real nodes (zeros at padded slots)."""
    g = torch.Generator().manual_seed(seed)
    b = len(sizes)
    mask = torch.zeros(b, n, dtype=torch.bool)
    for i, k in enumerate(sizes):
        mask[i, torch.randperm(n, generator=g)[:k]] = True
    x = torch.nn.functional.one_hot(torch.randint(0, NODE_DIM, (b, n), generator=g), NODE_DIM).to(dtype)
    types = torch.triu(torch.randint(0, EDGE_DIM, (b, n, n), generator=g), 1)
    e = torch.nn.functional.one_hot(types + types.transpose(1, 2), EDGE_DIM).to(dtype)
    pos = (torch.randn(b, n, 3, generator=g, dtype=torch.float64) * 1.5).to(dtype)
    return GraphState(x=x, e=e, pos=pos, mask=mask).masked()


def inputs(state: GraphState, seed=1):
    g = torch.Generator().manual_seed(seed)
    t = torch.rand(len(state), generator=g, dtype=torch.float64).to(state.x.dtype)
    cond = torch.randn(len(state), COND, generator=g, dtype=torch.float64).to(state.x.dtype)
    return t, cond


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
def test_permutation_and_e3_equivariant_with_padding(name, dtype):
    m, s = net(name, dtype), make_state(dtype=dtype)
    t, cond = inputs(s)
    fn = lambda state, tt: m(state, tt, cond)  # noqa: E731
    atol, pos_atol = (F32_ATOL, F32_POS_ATOL) if dtype == torch.float32 else (F64_ATOL, F64_ATOL)
    gen = torch.Generator().manual_seed(3)
    with torch.no_grad():
        assert_permutation_equivariant(fn, s, t=t, atol=atol, generator=gen)
        assert_mask_isolated(fn, s, t=t, atol=atol, generator=gen)
        worst = assert_e3_equivariant(fn, s, t=t, atol=atol, pos_atol=pos_atol, generator=gen, trials=2)
    assert set(worst) == {"x", "e", "pos"}


@pytest.mark.parametrize("name", NAMES)
def test_e3nn_assert_equivariant(name):
    """e3nn's own check (rotations, parity, translations in float64 transforms): node and edge logits at real nodes
    and pairs as scalars, predicted coordinates at real nodes as Cartesian points."""
    from e3nn import o3
    from e3nn.util.test import assert_equivariant

    m, s = net(name, torch.float64), make_state(dtype=torch.float64, seed=4)
    t, cond = inputs(s)
    pairs = s.pair_mask()

    def fn(x, pos):
        with torch.no_grad():
            out = m(GraphState(x=x, e=s.e, pos=pos, mask=s.mask), t, cond)
        return out.x[s.mask], out.e[pairs], out.pos[s.mask]

    errors = assert_equivariant(
        fn, args_in=[s.x, s.pos], irreps_in=[o3.Irreps(f"{NODE_DIM}x0e"), "cartesian_points"],
        irreps_out=[o3.Irreps(f"{NODE_OUT}x0e"), o3.Irreps(f"{EDGE_OUT}x0e"), "cartesian_points"],
        tolerance=F64_ATOL, ntrials=2,
    )
    assert set(errors) == {(0, False), (0, True), (1, False), (1, True)}  # rotations, reflections, translations


def test_equivariance_checks_fail_on_a_non_equivariant_coordinate_output():
    """The helper catches a coordinate output that ignores the rotation (it is not a vacuous check)."""
    m, s = net("eqgat"), make_state()
    t, cond = inputs(s)

    def frozen_axes(state, tt):  # the first predicted coordinate is replaced by an invariant: breaks equivariance
        out = m(state, tt, cond)
        pos = out.pos.clone()
        pos[..., 0] = out.x[..., 0]
        return GraphState(x=out.x, e=out.e, pos=pos, mask=out.mask)

    with torch.no_grad(), pytest.raises(AssertionError, match="not E\\(3\\) equivariant"):
        assert_e3_equivariant(frozen_axes, s, t=t, atol=1e-4, generator=torch.Generator().manual_seed(0))


def test_random_orthogonal_has_the_asked_determinant():
    g = torch.Generator().manual_seed(0)
    for reflect in (False, True):
        q = random_orthogonal(reflect, g)
        assert torch.allclose(q @ q.T, torch.eye(3, dtype=q.dtype), atol=1e-12)
        assert float(torch.det(q)) == pytest.approx(-1.0 if reflect else 1.0, abs=1e-12)


@pytest.mark.parametrize("name", NAMES)
def test_each_graph_alone_gives_the_same_outputs_as_in_the_batch(name):
    """Graphs of different sizes in one padded batch do not see each other or the padding."""
    m, s = net(name, torch.float64), make_state(dtype=torch.float64, seed=5)
    t, cond = inputs(s)
    with torch.no_grad():
        out = m(s, t, cond)
        for i in range(len(s)):
            k = int(s.n_nodes[i])
            slots = s.mask[i].nonzero().squeeze(-1)
            alone = GraphState(x=s.x[i:i + 1, slots], e=s.e[i:i + 1][:, slots][:, :, slots],
                               pos=s.pos[i:i + 1, slots], mask=torch.ones(1, k, dtype=torch.bool))
            got = m(alone, t[i:i + 1], cond[i:i + 1])
            torch.testing.assert_close(got.x[0], out.x[i, slots], atol=1e-9, rtol=0)
            torch.testing.assert_close(got.e[0], out.e[i][slots][:, slots], atol=1e-9, rtol=0)
            torch.testing.assert_close(got.pos[0], out.pos[i, slots], atol=1e-9, rtol=0)


@pytest.mark.parametrize("name", NAMES)
def test_output_contract(name):
    """Shapes, zeros off the real nodes and pairs, symmetric edge logits, coordinates keep the input's centre of mass,
    and the input is not modified."""
    m, s = net(name), make_state(seed=6)
    s.pos = s.pos + torch.tensor([1.0, -2.0, 0.5]) * s.mask.unsqueeze(-1)  # off-centre input
    before = s.clone()
    t, cond = inputs(s)
    with torch.no_grad():
        out = m(s, t, cond)
    b, n = s.mask.shape
    assert out.x.shape == (b, n, NODE_OUT) and out.e.shape == (b, n, n, EDGE_OUT) and out.pos.shape == (b, n, 3)
    assert torch.equal(out.mask, s.mask)
    assert bool((out.x[~s.mask] == 0).all()) and bool((out.pos[~s.mask] == 0).all())
    assert bool((out.e[~s.pair_mask()] == 0).all())
    torch.testing.assert_close(out.e, out.e.transpose(1, 2), atol=1e-5, rtol=0)
    w = s.mask.unsqueeze(-1).float()
    real = s.n_nodes > 0
    centre = lambda p: (p * w).sum(1)[real] / w.sum(1)[real]  # noqa: E731
    torch.testing.assert_close(centre(out.pos), centre(s.pos), atol=1e-5, rtol=0)
    assert not torch.allclose(out.pos[s.mask], s.pos[s.mask])  # it does move the atoms
    for a, c in ((s.x, before.x), (s.e, before.e), (s.pos, before.pos)):
        assert torch.equal(a, c)


@pytest.mark.parametrize("name", NAMES)
def test_time_and_condition_change_the_outputs(name):
    m, s = net(name), make_state(seed=7)
    t, cond = inputs(s)
    with torch.no_grad():
        base = m(s, t, cond)
        other_t = m(s, 1.0 - t, cond)
        other_c = m(s, t, cond + 1.0)
        no_c = m(s, t, None)  # None means a zero condition
        zero_c = m(s, t, torch.zeros_like(cond))
    for other in (other_t, other_c):
        assert (other.x - base.x)[s.mask].abs().max() > 1e-4
        assert (other.pos - base.pos)[s.mask].abs().max() > 1e-6
    torch.testing.assert_close(no_c.x, zero_c.x)


@pytest.mark.parametrize("name", NAMES)
def test_registered_and_input_errors(name):
    assert DENOISERS[name] is {"eqgat": EQGATDenoiser, "e3nn_tp": E3nnTPDenoiser}[name]
    m, s = net(name), make_state(seed=8)
    t, cond = inputs(s)
    with pytest.raises(SchemaError, match="pos"):
        m(GraphState(x=s.x, e=s.e, mask=s.mask), t, cond)
    bad = s.pos.clone()
    b0, n0 = s.mask.nonzero()[0].tolist()
    bad[b0, n0] = float("nan")
    with pytest.raises(SchemaError, match="NaN"):
        m(GraphState(x=s.x, e=s.e, pos=bad, mask=s.mask), t, cond)
    with pytest.raises(SchemaError, match="node_dim"):
        m(GraphState(x=s.x[..., :3], e=s.e, pos=s.pos, mask=s.mask), t, cond)
    with pytest.raises(SchemaError, match="cond"):
        m(s, t, cond[:, :1])
    sizes = dict(SMALL[name], n_layers=0)
    with pytest.raises(ConfigError, match="n_layers"):
        build_denoiser(name, node_dim=NODE_DIM, edge_dim=EDGE_DIM, max_nodes=4, **sizes)


def test_eqgat_rejects_hidden_not_a_multiple_of_heads():
    with pytest.raises(ConfigError, match="multiple of heads"):
        EQGATDenoiser(node_dim=3, edge_dim=2, max_nodes=4, hidden=10, heads=4)


@pytest.mark.parametrize("name", NAMES)
def test_gradients_reach_every_parameter_and_a_short_fit_lowers_the_loss(name):
    """Every parameter gets a finite, non-zero gradient; 30 Adam steps on a fixed toy batch (recover the clean atom
    types, bonds and coordinates from noisy ones) cut the loss by more than half, and the predicted coordinates end
    closer to the clean ones than the noisy input is."""
    torch.manual_seed(0)
    m = build_denoiser(name, node_dim=NODE_DIM, edge_dim=EDGE_DIM, cond_dim=COND, max_nodes=12, **SMALL[name])
    clean = make_state(sizes=(6, 4, 8), n=8, seed=9)
    g = torch.Generator().manual_seed(10)
    noisy = GraphState(x=clean.x, e=clean.e, mask=clean.mask,
                       pos=clean.pos + 0.3 * torch.randn(clean.pos.shape, generator=g)).masked()
    t, cond = inputs(clean)
    pairs = clean.pair_mask()

    def loss_fn():
        out = m(noisy, t, cond)
        ce_x = torch.nn.functional.cross_entropy(out.x[clean.mask], clean.x[clean.mask].argmax(-1))
        ce_e = torch.nn.functional.cross_entropy(out.e[pairs], clean.e[pairs].argmax(-1))
        mse = (out.pos - clean.pos)[clean.mask].pow(2).sum(-1).mean()
        return ce_x + ce_e + mse

    loss = loss_fn()
    loss.backward()
    for pname, p in m.named_parameters():
        assert p.grad is not None, f"no gradient reaches {pname}"
        assert bool(torch.isfinite(p.grad).all()), f"non-finite gradient at {pname}"
        assert float(p.grad.abs().max()) > 0, f"zero gradient at {pname}"
    opt = torch.optim.Adam(m.parameters(), lr=1e-2)
    first = float(loss.detach())
    for _ in range(30):
        opt.zero_grad()
        loss = loss_fn()
        loss.backward()
        opt.step()
    with torch.no_grad():
        assert float(loss_fn()) < 0.5 * first
        pos_mse = (m(noisy, t, cond).pos - clean.pos)[clean.mask].pow(2).sum(-1).mean()
        assert pos_mse < (noisy.pos - clean.pos)[clean.mask].pow(2).sum(-1).mean()  # beats returning the input
