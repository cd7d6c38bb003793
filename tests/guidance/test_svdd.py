"""SVDD-PM: per-step candidate selection by the reward of the clean prediction, on DeFoG (the bundled QM9 model)
and DiGress (a tiny model on generated graphs); cost accounting; one-line errors."""

from __future__ import annotations

import numpy as np
import pytest

from graphdiff import GraphDiffusionPipeline
from graphdiff.errors import ConfigError
from graphdiff.guidance import get_reward
from graphdiff.guidance.search import score_states
from graphdiff.guidance.svdd import svdd


@pytest.fixture(scope="module")
def qm9():
    return GraphDiffusionPipeline.from_pretrained("qm9-defog")


def test_svdd_beats_the_unguided_sampler_and_reports_its_cost(qm9):
    mw = get_reward("mw")
    n, M, steps = 12, 4, 6
    g = svdd(qm9, n, mw, M=M, steps=steps, seed=3)
    base = qm9.sample(n, steps=steps, seed=3, output="rdkit", progress=False)
    assert np.median(g.rewards) > np.median(mw(base))
    # the rewards are the returned samples' own
    assert np.allclose(score_states(qm9, g.state, mw)[1], g.rewards)
    assert g.cost["network_calls_per_sample"] == (M + 1) * steps - M  # one transition + M values per step
    assert g.cost["reward_calls_per_sample"] == M * steps
    # the same seed gives the same samples; through pipe.sample as a named guide too
    again = qm9.sample(n, steps=steps, seed=3, guide="svdd", reward=mw, guide_options={"M": M}, output="smiles",
                       progress=False)
    assert np.allclose(qm9.last_guidance.rewards, g.rewards) and len(again) == n


def test_svdd_with_a_temperature_and_on_digress(tmp_path):
    pipe = GraphDiffusionPipeline.fit(
        "synth_community_small", preset="digress-community_small", out=tmp_path / "run", root=tmp_path / "data",
        overrides={"model": {"n_layers": 1, "hidden_x": 16, "hidden_e": 8, "hidden_y": 8, "n_heads": 2, "ff_x": 16,
                             "ff_e": 8, "ff_y": 8, "extra_features": [], "rrwp_steps": 4},
                   "train": {"max_steps": 2, "batch_size": 16, "ckpt_every": 0}}, progress=False)
    density = get_reward("density")
    g = svdd(pipe, 6, density, M=3, alpha=0.5, steps=4, seed=0)
    assert len(g.state) == 6 and g.cost["alpha"] == 0.5
    assert np.allclose(score_states(pipe, g.state, density)[1], g.rewards)
    greedy = svdd(pipe, 6, density, M=3, steps=4, seed=0)
    plain = pipe.sample(6, steps=4, seed=0, output="networkx", progress=False)
    assert np.mean(greedy.rewards) >= np.mean(density(plain))


def test_svdd_settings_are_checked(qm9):
    r = get_reward("qed")
    with pytest.raises(ConfigError, match="M must be a positive integer"):
        svdd(qm9, 2, r, M=0)
    with pytest.raises(ConfigError, match="alpha must be >= 0"):
        svdd(qm9, 2, r, alpha=-1.0)
    with pytest.raises(ConfigError, match="n_nodes is not supported"):
        qm9.sample(2, steps=2, guide="svdd", reward=r, n_nodes=5)


def test_noise_search_keeps_the_best_paths_and_counts_its_cost(qm9):
    from graphdiff.guidance import noise_search

    mw = get_reward("mw")
    n, K, M, steps = 6, 3, 2, 4
    g = noise_search(qm9, n, mw, K=K, M=M, steps=steps, seed=1)
    assert np.allclose(score_states(qm9, g.state, mw)[1], g.rewards)
    # K transitions per step, K * M values per step but the last
    assert g.cost["network_calls_per_sample"] == K * steps + K * M * (steps - 1)
    assert g.cost["reward_calls_per_sample"] == K * M * steps
    base = qm9.sample(n, steps=steps, seed=1, output="rdkit", progress=False)
    assert np.median(g.rewards) > np.median(mw(base))
    with pytest.raises(ConfigError, match="K must be a positive integer"):
        noise_search(qm9, 2, mw, K=0)


def test_cli_noise_search(tmp_path, capsys):
    from graphdiff.cli import main

    out = tmp_path / "ns.smi"
    assert main(["sample", "--model", "qm9-defog", "-n", "2", "--steps", "2", "--guide", "noise_search", "--reward",
                 "qed", "--paths", "2", "--candidates", "2", "--out", str(out), "--quiet"]) == 0
    assert "noise_search on qed" in capsys.readouterr().out and len(out.read_text().splitlines()) == 2


@pytest.fixture(scope="module")
def gdss(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("gdss")
    return GraphDiffusionPipeline.fit(
        "synth_community_small", preset="gdss-demo", out=tmp / "run", root=tmp / "data",
        overrides={"train": {"max_steps": 30, "batch_size": 16, "ckpt_every": 0, "log_every": 10}}, progress=False)


def test_svdd_and_noise_search_steer_gdss_and_count_its_calls(gdss):
    """GDSS (continuous SDEs): candidates differ in the predictor's noise, valued by Tweedie's clean estimate;
    the predictor-corrector sampler's calls (1 corrector + 1 predictor per step) plus M value calls per step but
    the last, whose candidates share the noise-free mean."""
    density = get_reward("density")
    n, M, steps = 8, 4, 6
    g = svdd(gdss, n, density, M=M, steps=steps, seed=2)
    assert len(g.state) == n and np.allclose(score_states(gdss, g.state, density)[1], g.rewards)
    assert g.cost["network_calls_per_sample"] == 2 * steps + M * (steps - 1)
    plain = gdss.sample(n, steps=steps, seed=2, output="networkx", progress=False)
    assert np.mean(g.rewards) > np.mean(density(plain))
    low = svdd(gdss, n, lambda gs: -np.asarray(density(gs)), M=M, steps=steps, seed=2)  # steer the other way
    assert np.mean(density(low.samples)) < np.mean(density(plain)) < np.mean(g.rewards)
    again = svdd(gdss, n, density, M=M, steps=steps, seed=2)
    assert np.allclose(again.rewards, g.rewards)  # seeded: the same samples
    from graphdiff.guidance import noise_search

    ns = noise_search(gdss, 4, density, K=2, M=2, steps=steps, seed=1)
    assert len(ns.state) == 4 and ns.cost["network_calls_per_sample"] == 2 * (2 * steps) + 4 * (steps - 1)


def test_a_single_gdss_candidate_is_the_pc_samplers_own_step(gdss):
    """One candidate per path drawing from the sampler's own noise stream is exactly the predictor-corrector step."""
    import torch

    from graphdiff.guidance.steppers import make_stepper
    from graphdiff.guidance.steps import search_setup
    from graphdiff.samplers.noise import SampleNoise
    from graphdiff.samplers.sde import predictor_corrector

    steps, b = 5, 3
    n_steps, _, knobs, times, _ = search_setup(gdss, b, steps, 0, {}, "test")
    stepper = make_stepper(gdss, n_steps, times, knobs)
    sizes = torch.tensor([6, 9, 12])
    noise = SampleNoise.for_run(0, 0, b)
    state = stepper.prior(sizes, noise)
    got = [stepper.propose(state, 0, torch.arange(b), noise, noise)]
    got.append(stepper.propose(got[0], 1, torch.arange(b), noise, noise))
    seen = []
    ref = SampleNoise.for_run(0, 0, b)
    sample_knobs = {k: v for k, v in knobs.items() if k in ("predictor", "snr", "scale_eps", "n_corrector")}
    predictor_corrector(gdss.process, gdss.denoiser, gdss.process.prior(sizes, generator=ref), steps=steps,
                        noise=ref, eps=float(gdss.config.sample.knobs.get("eps", 1e-4)),
                        callback=lambda k, t, st: seen.append(st), **sample_knobs)
    for mine, theirs in zip(got, seen[:2]):
        torch.testing.assert_close(mine.x, theirs.x)
        torch.testing.assert_close(mine.e, theirs.e)


def test_svdd_with_one_candidate_on_the_samplers_streams_is_pipe_sample(gdss, monkeypatch):
    """End to end (prior, every step, the selection, the decoding): SVDD with M = 1 whose predictor draws from the
    sampler's own per-sample streams returns exactly ``pipe.sample``'s graphs. With its own candidate streams
    (the default) it is the same chain on other noise, so any difference from the unguided sampler at M = 1 is
    sampling variance."""
    import torch

    from graphdiff.guidance.steppers import SDEStepper

    n, steps = 5, 6
    plain = gdss.sample(n, steps=steps, seed=2, output="state", progress=False)
    own = SDEStepper.propose
    monkeypatch.setattr(SDEStepper, "propose",
                        lambda self, state, k, rep, noise, path_noise=None: own(self, state, k, rep, path_noise,
                                                                                path_noise))
    g = svdd(gdss, n, get_reward("density"), M=1, steps=steps, seed=2)
    assert torch.equal(g.state.mask, plain.mask) and torch.equal(g.state.x, plain.x)
    assert torch.equal(g.state.e, plain.e)
