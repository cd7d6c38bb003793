"""Regressor guidance on GDSS (continuous): a regressor trained on the SDEs' noisy states, its gradient added to
every score. A vanishing scale is the model's own sampler; a large one steers the property; the regressor folder
records the process and refuses another."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from graphdiff import GraphDiffusionPipeline
from graphdiff.errors import ConfigError
from graphdiff.guidance import get_reward
from graphdiff.guidance.regressor import Regressor, noisy_states, regressor_guidance, train_regressor


class MeanAdjacency(torch.nn.Module):
    """g = the mean of the continuous adjacency over real pairs (channel 1 of the regressor's [1 - A, A] view)."""

    def forward(self, state, t):
        pm = (state.mask.unsqueeze(1) & state.mask.unsqueeze(2)).to(state.e.dtype)
        return ((state.e[..., 1] * pm).sum((1, 2)) / pm.sum((1, 2)).clamp(min=1)).unsqueeze(-1)


def density_of(state) -> np.ndarray:
    import networkx as nx

    from graphdiff.convert import to_networkx

    return np.array([nx.density(g) for g in to_networkx(state)])


@pytest.fixture(scope="module")
def gdss(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("gdss")
    pipe = GraphDiffusionPipeline.fit(
        "synth_community_small", preset="gdss-demo", out=tmp / "run", root=tmp / "data",
        overrides={"train": {"max_steps": 30, "batch_size": 16, "ckpt_every": 0, "log_every": 10}}, progress=False)
    reg = train_regressor(pipe, "density", root=tmp / "data", out=tmp / "reg", max_steps=150, batch_size=32,
                          lr=1e-3, sizes={"n_layers": 1, "hidden_x": 16, "hidden_e": 8, "hidden_y": 8, "n_heads": 2,
                                          "ff_x": 16, "ff_e": 8, "ff_y": 8}, log=lambda *a: None)
    return pipe, reg, tmp


def test_the_regressor_learns_density_from_noisy_continuous_states(gdss):
    pipe, reg, tmp = gdss
    assert reg.process == "gdss" and reg.sizes["edge_dim"] == 2  # the [1 - A, A] view of the adjacency
    assert reg.info["held_out_mae_clean"] < reg.info["held_out_mae_mean"]
    again = Regressor.load(tmp / "reg")
    batch = pipe.process.encode(pipe.sample(4, steps=5, seed=0, output="state", progress=False))
    assert np.allclose(again.predict(batch, 0.01), reg.predict(batch, 0.01), atol=1e-5)
    noisy, t = noisy_states(pipe.process, batch, torch.Generator().manual_seed(0))
    assert noisy.x.shape == batch.x.shape and torch.all((t >= pipe.process.eps) & (t <= 1))
    assert torch.equal(noisy.e[..., 0], noisy.e[..., 0].transpose(1, 2))  # symmetric adjacency noise


def test_a_vanishing_scale_is_the_samplers_own_run_and_a_large_one_steers(gdss):
    pipe, reg, _ = gdss
    n, steps = 24, 20
    plain = pipe.sample(n, steps=steps, seed=3, output="state", progress=False)
    tiny = regressor_guidance(pipe, n, regressor=reg, direction="max", scale=1e-9, steps=steps, seed=3)
    assert torch.equal(tiny.state.mask, plain.mask) and torch.equal(tiny.state.e, plain.e)
    assert tiny.cost["regressor_calls_per_sample"] == 2 * steps  # corrector and predictor scores
    assert tiny.cost["network_calls_per_sample"] == 2 * steps
    # a regressor whose gradient is known (the mean of the continuous adjacency over real pairs) steers both ways
    s = pipe.schema
    known = Regressor(net=MeanAdjacency(), target="density", mean=0.0, std=1.0, process="gdss",
                      node_categories=tuple(s.node_categories), edge_categories=tuple(s.edge_categories), sizes={})
    density = get_reward("density")
    up = regressor_guidance(pipe, n, density, regressor=known, direction="max", scale=30.0, steps=steps, seed=3)
    down = regressor_guidance(pipe, n, density, regressor=known, direction="min", scale=30.0, steps=steps, seed=3)
    assert down.rewards.mean() < density_of(plain).mean() < up.rewards.mean()


def test_a_gdss_regressor_is_refused_by_a_discrete_model(gdss):
    _, reg, _ = gdss
    qm9 = GraphDiffusionPipeline.from_pretrained("qm9-defog")
    with pytest.raises(ConfigError, match="trained on the gdss process"):
        regressor_guidance(qm9, 2, regressor=reg)


def test_svdd_mc_on_gdss_values_the_candidates_with_the_noisy_state_regressor(gdss):
    """SVDD-MC: the GDSS regressor scores the candidates of every step but the last (no clean-estimate network
    call, no reward call), the reward scores the last."""
    from graphdiff.guidance import svdd

    pipe, reg, _ = gdss
    n, M, steps = 4, 3, 5
    g = svdd(pipe, n, get_reward("density"), M=M, steps=steps, seed=0, value=reg)
    assert len(g.rewards) == n and "value network" in g.cost["value"]
    assert g.cost["regressor_calls_per_sample"] == M * (steps - 1) and g.cost["reward_calls_per_sample"] == M
    assert g.cost["network_calls_per_sample"] == 2 * steps  # the sampler's own calls only
