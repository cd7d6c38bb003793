"""Regressor guidance on EQGAT-diff (3D coordinates + atom types, charges and bonds): the regressor reads an
E(3)-invariant view (bonds and a radial basis of the distances); the sampler's coordinates follow the posterior mean
shifted by the gradient and its categories DiGress's reweighting. A tiny model trained for a few steps on a QM9-3D
subset (skipped without the shared QM9-3D file)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from graphdiff import GraphDiffusionPipeline
from graphdiff.errors import ConfigError
from graphdiff.guidance import Regressor, regressor_guidance, train_regressor
from graphdiff.guidance.regressor import noisy_states
from graphdiff.guidance.regressor_3d import view_3d
from graphdiff.schema import parse_atom_token
from graphdiff.state import GraphState
from tests.conftest import shared_root


class Spread(torch.nn.Module):
    """g = the mean squared distance of the real atoms from their centre, in units of 10 A^2 (reads ``pos``)."""

    def forward(self, state, t):
        m = state.mask.unsqueeze(-1).to(state.pos.dtype)
        c = (state.pos * m).sum(1, keepdim=True) / m.sum(1, keepdim=True).clamp(min=1)
        return ((((state.pos - c) ** 2).sum(-1, keepdim=True) * m).sum((1, 2)) / m.sum((1, 2)) / 10).unsqueeze(-1)


class Carbons(torch.nn.Module):
    """g = the number of carbon atoms (a channel of the element one-hot), in units of 5."""

    def __init__(self, channel: int):
        super().__init__()
        self.channel = channel

    def forward(self, state, t):
        return (state.x[..., self.channel] * state.mask).sum(1, keepdim=True) / 5


def spread(state) -> np.ndarray:
    return Spread()(state, None)[:, 0].numpy() * 10


def carbons(state) -> np.ndarray:
    """Carbon atoms per decoded molecule (atom tokens of any charge)."""
    toks = [parse_atom_token(t)[0] for t in state.schema.node_categories]
    return np.array([sum(toks[i] == "C" for i, m in zip(row.tolist(), mk.tolist()) if m)
                     for row, mk in zip(state.x.argmax(-1), state.mask)])


def with_pos(state, pos):
    return GraphState(x=state.x, e=state.e, mask=state.mask, pos=pos)


def _hand_made(pipe, net) -> Regressor:
    s = pipe.schema
    return Regressor(net=net, target="hand", mean=0.0, std=1.0, process="eqgat_diff",
                     node_categories=tuple(s.node_categories), edge_categories=tuple(s.edge_categories), sizes={})


@pytest.fixture(scope="module")
def pipe3d(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("reg3d")
    root = shared_root(tmp, "qm9_3d")
    pipe = GraphDiffusionPipeline.fit(
        "qm9_3d", preset="eqgat_diff-qm9_3d", out=tmp / "run", root=root, progress=False,
        overrides={"dataset_options": {"limit": 200}, "train": {"batch_size": 8, "max_steps": 3, "threads": 1,
                                                                "ckpt_every": 0},
                   "model": {"n_layers": 1, "hidden": 16, "vectors": 4, "edge_hidden": 8, "heads": 2}})
    return pipe, root, tmp


def test_the_3d_view_is_invariant_and_its_gradient_rotates_with_the_molecule(pipe3d):
    pipe, root, _ = pipe3d
    from graphdiff.data import load_dataset

    clean = pipe.process.encode(load_dataset("qm9_3d", root=root, limit=200).split("train").batch(range(4)))
    torch.manual_seed(0)
    net = torch.nn.Linear(clean.e.shape[-1] + 16, 1)

    def g(state):
        v = view_3d(state)
        return net(v.e).sum((1, 2, 3))

    q, _ = torch.linalg.qr(torch.randn(3, 3, dtype=torch.float64))
    q = q.float()
    rotated = with_pos(clean, (clean.pos @ q.T + torch.tensor([1.0, -2.0, 0.5])) * clean.mask.unsqueeze(-1))
    torch.testing.assert_close(g(clean), g(rotated), atol=1e-4, rtol=1e-4)
    pos = clean.pos.clone().requires_grad_(True)
    grad = torch.autograd.grad(g(with_pos(clean, pos)).sum(), pos)[0]
    pos_r = (clean.pos @ q.T).requires_grad_(True)
    grad_r = torch.autograd.grad(g(with_pos(clean, pos_r)).sum(), pos_r)[0]
    torch.testing.assert_close(grad @ q.T, grad_r, atol=1e-4, rtol=1e-3)
    assert torch.allclose(grad.sum(1), torch.zeros(4, 3), atol=1e-4)  # no push on the centre of mass


def test_a_vanishing_scale_is_the_samplers_own_run_and_the_gradient_steers_both_kinds(pipe3d):
    pipe, _, _ = pipe3d
    n, steps = 12, 10
    plain = pipe.sample(n, steps=steps, seed=2, output="state", progress=False)
    tiny = regressor_guidance(pipe, n, regressor=_hand_made(pipe, Spread()), direction="max", scale=1e-9,
                              steps=steps, seed=2)
    assert torch.equal(tiny.state.x, plain.x) and torch.equal(tiny.state.e, plain.e)
    torch.testing.assert_close(tiny.state.pos, plain.pos, atol=1e-5, rtol=1e-5)
    assert tiny.cost["network_calls_per_sample"] == steps and tiny.cost["regressor_calls_per_sample"] == steps
    up = regressor_guidance(pipe, n, regressor=_hand_made(pipe, Spread()), direction="max", scale=20.0,
                            steps=steps, seed=2)
    down = regressor_guidance(pipe, n, regressor=_hand_made(pipe, Spread()), direction="min", scale=20.0,
                              steps=steps, seed=2)
    assert spread(down.state).mean() < spread(plain).mean() < spread(up.state).mean()
    assert np.allclose(10 * up.rewards, spread(up.state), rtol=1e-4)  # no reward: the regressor on the samples
    c = pipe.process.elements.index("C")
    more = regressor_guidance(pipe, n, regressor=_hand_made(pipe, Carbons(c)), direction="max", scale=5.0,
                              steps=steps, seed=2)
    fewer = regressor_guidance(pipe, n, regressor=_hand_made(pipe, Carbons(c)), direction="min", scale=5.0,
                               steps=steps, seed=2)
    assert carbons(fewer.state).mean() < carbons(plain).mean() < carbons(more.state).mean()


def test_a_trained_3d_regressor_learns_from_noisy_molecules_and_guides(pipe3d):
    pipe, root, tmp = pipe3d
    from graphdiff.data import load_dataset

    data = load_dataset("qm9_3d", root=root, limit=200)  # the model's own subset: its categories
    reg = train_regressor(pipe, "mw", dataset=data, out=tmp / "reg", max_steps=120, batch_size=32, lr=2e-3,
                          sizes={"n_layers": 1, "hidden_x": 16, "hidden_e": 8, "hidden_y": 8, "n_heads": 2,
                                 "ff_x": 16, "ff_e": 8, "ff_y": 8}, log=lambda *a: None)
    assert reg.process == "eqgat_diff" and reg.sizes["edge_dim"] == pipe.process.ke + 16
    assert reg.info["held_out_mae_clean"] < reg.info["held_out_mae_mean"]
    again = Regressor.load(tmp / "reg")
    batch = data.split("train").batch(range(6))
    noisy, t = noisy_states(pipe.process, batch, torch.Generator().manual_seed(0))
    assert noisy.pos is not None and torch.all((t > 0) & (t <= 1))
    assert np.allclose(again.predict(noisy, t), reg.predict(noisy, t), atol=1e-5)
    g = regressor_guidance(pipe, 4, regressor=again, direction="max", scale=2.0, steps=5, seed=0)
    assert len(g.state) == 4 and g.state.pos is not None and np.isfinite(g.rewards).all()
    # SVDD-MC: the 3D regressor values the noisy candidates of every step but the last
    from graphdiff.guidance import get_reward, svdd

    mc = svdd(pipe, 3, get_reward("mw"), M=2, steps=4, seed=0, value=again)
    assert len(mc.rewards) == 3 and mc.cost["regressor_calls_per_sample"] == 2 * 3
    qm9 = GraphDiffusionPipeline.from_pretrained("qm9-defog")
    with pytest.raises(ConfigError, match="trained on the eqgat_diff process"):
        regressor_guidance(qm9, 2, regressor=again)


TINY = {"n_layers": 1, "hidden_x": 16, "hidden_e": 8, "hidden_y": 8, "n_heads": 2, "ff_x": 16, "ff_e": 8, "ff_y": 8}


def test_a_qm9_3d_property_is_a_target_in_its_own_units_from_the_models_own_subset(pipe3d):
    pipe, root, tmp = pipe3d
    from graphdiff.data import load_dataset

    # no dataset given: the model's own qm9_3d with the options it trained with (limit 200), not the full set
    reg = train_regressor(pipe, "gap", root=root, max_steps=2, batch_size=8, sizes=TINY, log=lambda *a: None)
    gaps = load_dataset("qm9_3d", root=root, limit=200).split("train").property_values("gap")
    assert reg.info["train_graphs"] + reg.info["held_out_graphs"] == len(gaps)
    # hartree, as in QM9 (not the normalised condition scale, whose mean would be about 0 and std 1)
    assert gaps.min() <= reg.mean <= gaps.max() and 0.15 < reg.mean < 0.4 and reg.std < 0.1
    assert reg.info["target_source"] == "property of the data, in Ha"
    with pytest.raises(ConfigError, match=r"target 'gapp' .*did you mean 'gap'\?"):
        train_regressor(pipe, "gapp", root=root, max_steps=1, sizes=TINY, log=lambda *a: None)


def test_train_regressor_cli_takes_a_qm9_3d_property(pipe3d, capsys):
    from graphdiff.cli import main

    pipe, root, tmp = pipe3d
    model = tmp / "model"
    if not model.exists():
        pipe.save_pretrained(model)
    rc = main(["train-regressor", "--model", str(model), "--target", "homo", "--root", str(root), "--out",
               str(tmp / "reg-homo"), "--max-steps", "2", "--batch-size", "8", "--quiet", "--set", "model.n_layers=1",
               "--set", "model.hidden_x=16"])
    assert rc == 0
    reg = Regressor.load(tmp / "reg-homo")
    assert reg.target == "homo" and -0.4 < reg.mean < -0.15  # HOMO energies are negative, in hartree
    assert "held-out MAE" in capsys.readouterr().out
