"""Regressor guidance: DiGress's first-order reweighting of each reverse step by a noisy-graph regressor's gradient
(a hand-made regressor whose gradient is known, on the bundled DeFoG QM9 model), training a regressor on a model's
own noisy states, saving and loading it, the CLI and one-line errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from graphdiff import GraphDiffusionPipeline
from graphdiff.cli import main
from graphdiff.errors import ConfigError
from graphdiff.guidance import Regressor, get_reward, regressor_guidance, train_regressor
from graphdiff.guidance.steps import guidance_gradients

TINY = {"n_layers": 1, "hidden_x": 16, "hidden_e": 8, "hidden_y": 8, "n_heads": 2, "ff_x": 16, "ff_e": 8, "ff_y": 8,
        "extra_features": [], "rrwp_steps": 4}


class BondCount(torch.nn.Module):
    """g(z_t) = the number of bonded pairs of the noisy state, in units of 10 (a normalised output, as a trained
    regressor's): its gradient raises every bond category."""

    def forward(self, state, t):
        return (state.e[..., 1:].sum((1, 2, 3)) / 20).unsqueeze(-1)


def bonds(state) -> np.ndarray:
    return ((state.e.argmax(-1) > 0).sum((1, 2)) / 2).numpy()


@pytest.fixture(scope="module")
def qm9():
    return GraphDiffusionPipeline.from_pretrained("qm9-defog")


def _hand_made(pipe) -> Regressor:
    s = pipe.schema
    return Regressor(net=BondCount(), target="bonds", mean=0.0, std=10.0, process=pipe.process.name,
                     node_categories=tuple(s.node_categories), edge_categories=tuple(s.edge_categories), sizes={})


def test_the_gradient_steers_toward_the_direction_and_the_target(qm9):
    reg = _hand_made(qm9)
    n, steps = 24, 8
    plain = qm9.sample(n, steps=steps, seed=1, progress=False)
    up = regressor_guidance(qm9, n, regressor=reg, direction="max", scale=10.0, steps=steps, seed=1)
    down = regressor_guidance(qm9, n, regressor=reg, direction="min", scale=10.0, steps=steps, seed=1)
    assert bonds(down.state).mean() < bonds(plain).mean() < bonds(up.state).mean()
    # without a reward the rewards are the regressor's values on the clean samples
    assert np.allclose(up.rewards, bonds(up.state))
    assert up.cost["network_calls_per_sample"] == steps and up.cost["regressor_calls_per_sample"] == steps
    # a target value pulls from both sides toward it: a target above the samples raises the bond count, one below
    # lowers it, and the loss (g - target)^2 has no gradient at the target itself
    b = bonds(plain)
    above = regressor_guidance(qm9, n, regressor=reg, target=float(b.max()) + 5, scale=3.0, steps=steps, seed=1)
    below = regressor_guidance(qm9, n, regressor=reg, target=max(0.0, float(b.min()) - 5), scale=3.0, steps=steps,
                               seed=1)
    assert bonds(below.state).mean() < b.mean() < bonds(above.state).mean()
    state = qm9.process.prior(torch.tensor([6, 9]), generator=torch.Generator().manual_seed(0))
    t = torch.full((2,), 0.5)
    g = reg.normalised(state, t).detach()
    for goal, sign in ((g + 1.0, -1.0), (g - 1.0, 1.0)):  # above: the loss falls as bonds rise; below: the reverse
        _, ge, _ = guidance_gradients(reg, state, t, goal, 1.0)
        assert (sign * ge[..., 1:][state.mask[:, :, None] & state.mask[:, None, :]] > 0).all()
    assert guidance_gradients(reg, state, t, g, 1.0)[1].abs().max() < 1e-6
    # through pipe.sample with a reward to score the samples
    qed = get_reward("qed")
    mols = qm9.sample(6, steps=4, guide="regressor", reward=qed, guide_options={"regressor": reg, "scale": 1.0},
                      output="rdkit", progress=False)
    assert np.allclose(qm9.last_guidance.rewards, qed(mols))


def test_guidance_settings_and_mismatches_are_one_line_errors(qm9, tmp_path):
    reg = _hand_made(qm9)
    with pytest.raises(ConfigError, match="scale must be > 0"):
        regressor_guidance(qm9, 2, regressor=reg, scale=0.0)
    with pytest.raises(ConfigError, match="direction must be 'max' or 'min'"):
        regressor_guidance(qm9, 2, regressor=reg, direction="up")
    other = Regressor(net=BondCount(), target="bonds", mean=0.0, std=1.0, process="digress",
                      node_categories=reg.node_categories, edge_categories=reg.edge_categories, sizes={})
    with pytest.raises(ConfigError, match="trained on the digress process; this model is defog"):
        regressor_guidance(qm9, 2, regressor=other)
    with pytest.raises(ConfigError, match="not a regressor folder"):
        regressor_guidance(qm9, 2, regressor=tmp_path)


def test_a_trained_regressor_learns_saves_and_guides(tmp_path, capsys):
    pipe = GraphDiffusionPipeline.fit(
        "synth_community_small", preset="digress-community_small", out=tmp_path / "run", root=tmp_path / "data",
        overrides={"model": TINY, "train": {"max_steps": 2, "batch_size": 16, "ckpt_every": 0}}, progress=False)
    reg = train_regressor(pipe, "n_nodes", root=tmp_path / "data", out=tmp_path / "reg", max_steps=60,
                          batch_size=32, lr=3e-3, sizes={k: v for k, v in TINY.items()}, log=lambda *a: None)
    info = reg.info
    assert info["steps"] == 60 and info["train_graphs"] + info["held_out_graphs"] > 20
    # it learned something: better than predicting the training mean on held-out clean graphs
    assert info["held_out_mae_clean"] < info["held_out_mae_mean"]
    back = Regressor.load(tmp_path / "reg")
    state = pipe.process.encode(pipe.sample(4, steps=2, seed=0, progress=False))
    assert np.allclose(back.predict(state, 0.5), reg.predict(state, 0.5))
    assert back.target == "n_nodes" and back.process == "digress"
    g = regressor_guidance(pipe, 4, regressor=tmp_path / "reg", scale=1.0, steps=3, seed=0)
    assert len(g.state) == 4 and np.isfinite(g.rewards).all()

    # the CLI: train-regressor, then sample with it
    cli_reg = tmp_path / "cli-reg"
    assert main(["train-regressor", "--model", str(tmp_path / "run"), "--target", "density", "--root",
                 str(tmp_path / "data"), "--out", str(cli_reg), "--max-steps", "3", "--batch-size", "8",
                 "--set", "model.n_layers=1", "--set", "model.extra_features=[]", "--quiet"]) == 0
    assert (cli_reg / "regressor.json").is_file() and (cli_reg / "model.safetensors").is_file()
    out = tmp_path / "g.jsonl"
    assert main(["sample", "--model", str(tmp_path / "run"), "-n", "3", "--steps", "2", "--guide", "regressor",
                 "--regressor", str(cli_reg), "--direction", "min", "--scale", "2", "--out", str(out),
                 "--quiet"]) == 0
    assert len(out.read_text().splitlines()) == 3
    assert "regressor on the regressor's min" in capsys.readouterr().out
    for argv, msg in ((["--guide", "regressor"], "needs --regressor DIR"),
                      (["--regressor", str(cli_reg)], "needs --guide regressor, minority or svdd")):
        assert main(["sample", "--model", str(tmp_path / "run"), "-n", "2", "--out", str(out), *argv]) == 2
        assert msg in capsys.readouterr().err
    assert main(["train-regressor", "--model", str(tmp_path / "run"), "--target", "density", "--out",
                 str(cli_reg), "--root", str(tmp_path / "data")]) == 2
    assert "give a budget" in capsys.readouterr().err


def test_svdd_mc_uses_a_value_network_between_steps(qm9):
    from graphdiff.guidance import svdd

    reg = _hand_made(qm9)
    n_bonds = get_reward(lambda m: m.GetNumBonds(), name="bonds")
    n, M, steps = 12, 3, 6
    g = svdd(qm9, n, n_bonds, M=M, steps=steps, seed=2, value=reg)
    plain = qm9.sample(n, steps=steps, seed=2, progress=False)
    assert bonds(g.state).mean() > bonds(plain).mean()
    # one transition per step, no clean-guess calls; the reward only at the last step
    assert g.cost["network_calls_per_sample"] == steps and g.cost["reward_calls_per_sample"] == M
    assert g.cost["regressor_calls_per_sample"] == M * (steps - 1) and "(MC)" in g.cost["value"]
