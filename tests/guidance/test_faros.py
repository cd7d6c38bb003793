"""FAROS: the sensitive node category switched once at a chosen step of a pretrained DiGress / DeFoG model (tiny
networks on the attributed SBM); no switch is the unguided sampler; seeded; one-line errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from graphdiff import GraphDiffusionPipeline
from graphdiff.errors import ConfigError
from graphdiff.guidance import faros, get_reward
from graphdiff.metrics.fairness import group_shares, parity_gaps

TINY = {"n_layers": 1, "hidden_x": 16, "hidden_e": 8, "hidden_y": 8, "n_heads": 2, "ff_x": 16, "ff_e": 8, "ff_y": 8,
        "extra_features": [], "rrwp_steps": 4}
GROUPS = ["g0", "g1"]


@pytest.fixture(scope="module", params=["digress", "defog"])
def pipe(request, tmp_path_factory):
    tmp = tmp_path_factory.mktemp(request.param)
    return GraphDiffusionPipeline.fit(
        "synth_sbm_attr", preset=f"{request.param}-community_small", out=tmp / "run", root=tmp / "data",
        overrides={"model": TINY, "train": {"max_steps": 2, "batch_size": 16, "ckpt_every": 0, "threads": 1}},
        progress=False)


def shares(pipe, state) -> np.ndarray:
    s = group_shares(state, groups=GROUPS, schema=pipe.schema)
    return np.array([s["g0"], s["g1"]])


def test_no_switch_is_the_unguided_sampler(pipe):
    base = pipe.sample(8, steps=6, seed=3, progress=False)
    g = faros(pipe, 8, fraction=0.0, steps=6, seed=3)
    assert torch.equal(g.state.x, base.x) and torch.equal(g.state.e, base.e)
    assert g.cost["network_calls_per_sample"] == 6 and g.cost["reward_calls_per_sample"] == 0
    assert g.cost["changed_nodes_per_sample"] == 0
    # without a reward the rewards are minus each graph's parity gap
    assert np.allclose(g.rewards, -parity_gaps(g.samples, groups=GROUPS), equal_nan=True)


def test_the_switch_step_decides_how_much_of_the_switch_survives(pipe):
    plain = pipe.sample(16, steps=20, seed=1, progress=False)
    base = shares(pipe, plain)[0]
    early = faros(pipe, 16, switch_step=0, target=[1, 0], steps=20, seed=1)  # the prior
    late = faros(pipe, 16, switch_step=19, target=[1, 0], steps=20, seed=1)  # the state entering the last step
    end = faros(pipe, 16, switch_time=1.0, target={"g0": 1.0}, steps=20, seed=1)  # a relabelling of the samples
    assert end.cost["switch_step"] == 20 and end.cost["changed_nodes_per_sample"] > 0
    assert shares(pipe, end.state)[0] == 1.0
    moved = shares(pipe, late.state)[0] - base
    assert moved > 0.1  # much of the late switch survives the last step (an untrained model: measured 0.23-0.26)
    assert abs(shares(pipe, early.state)[0] - base) < moved  # the prior's switch is mostly denoised away
    assert late.cost["switched_nodes_per_sample"] > late.cost["changed_nodes_per_sample"] > 0
    # switched at the very end only the attributes move: the edges are the unguided samples'
    assert torch.equal(end.state.e, plain.e) and not torch.equal(end.state.x, plain.x)


def test_a_mapping_flips_the_chosen_share_and_runs_are_seeded(pipe):
    plain = pipe.sample(10, steps=4, seed=2, progress=False)
    flip = faros(pipe, 10, switch_time=1.0, mapping={"g0": "g1", "g1": "g0"}, fraction=1.0, steps=4, seed=2)
    assert np.allclose(shares(pipe, flip.state), shares(pipe, plain)[::-1])
    half = faros(pipe, 10, switch_time=1.0, mapping={"g0": "g1", "g1": "g0"}, steps=4, seed=2)  # fraction 1/2
    real = int(plain.mask.sum())
    assert abs(half.cost["changed_nodes_per_sample"] * 10 - real / 2) <= 10 / 2  # rounding per graph
    a = faros(pipe, 10, switch_time=0.5, steps=4, seed=7)
    b = faros(pipe, 10, switch_time=0.5, steps=4, seed=7)
    c = faros(pipe, 10, switch_time=0.5, steps=4, seed=8)
    assert torch.equal(a.state.x, b.state.x) and torch.equal(a.state.e, b.state.e)
    assert not torch.equal(a.state.x, c.state.x)


def test_through_pipe_sample_with_a_reward(pipe):
    density = get_reward("density")
    out = pipe.sample(4, steps=3, seed=0, guide="faros", reward=density, guide_options={"switch_time": 0.5},
                      output="networkx", progress=False)
    g = pipe.last_guidance
    assert len(out) == 4 and np.allclose(g.rewards, density(out)) and g.cost["reward_calls_per_sample"] == 1
    assert pipe.sample(2, steps=2, guide="faros", output="state", progress=False).batch_size == 2  # no reward


@pytest.mark.parametrize("options, message", [
    ({"switch_time": 1.5}, "switch_time must be a fraction"),
    ({"switch_time": 0.5, "switch_step": 1}, "not both"),
    ({"switch_step": 9}, r"switch_step must be an integer in 0\.\.3"),
    ({"fraction": 1.2}, "fraction must be a share"),
    ({"groups": ["g0"]}, "two or more distinct"),
    ({"groups": ["g0", "x"]}, "'x' is not a node category"),
    ({"target": [1.0]}, "target must be 2 finite proportions"),
    ({"target": [1.0, -1.0]}, "target must be 2 finite proportions"),
    ({"mapping": {"g0": 5}}, "is not a node category index"),
    ({"mapping": {"g0": "g1"}, "target": [1, 0]}, "not both"),
    ({"mapping": {}}, "mapping must be a non-empty dict"),
])
def test_bad_settings_give_one_line_errors(pipe, options, message):
    with pytest.raises(ConfigError, match=message) as err:
        faros(pipe, 2, steps=3, **options)
    assert "\n" not in str(err.value)


def test_other_processes_are_refused(tmp_path):
    pipe = GraphDiffusionPipeline.fit("synth_community_small", preset="gdss-demo", out=tmp_path / "run",
                                      root=tmp_path / "data", overrides={"train": {"max_steps": 1, "ckpt_every": 0}},
                                      progress=False)
    with pytest.raises(ConfigError, match="faros switches node categories of the discrete processes.*'gdss'"):
        pipe.sample(2, steps=2, guide="faros", progress=False)


def test_cli_sample_with_faros(pipe, tmp_path, capsys):
    from graphdiff.cli import main

    run = tmp_path / "model"
    pipe.save_pretrained(run)
    out = tmp_path / "s.jsonl"
    assert main(["sample", "--model", str(run), "-n", "3", "--steps", "2", "--guide", "faros", "--switch-time", "1",
                 "--fraction", "0.5", "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "faros on minus the parity gap" in printed and "2 network calls" in printed
    assert len(out.read_text().splitlines()) == 3
    assert main(["sample", "--model", str(run), "-n", "3", "--switch-time", "1", "--out", str(out)]) == 2
    assert capsys.readouterr().err.strip() == "error: --switch-time and --fraction need --guide faros"
