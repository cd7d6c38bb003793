"""SVDD for PARD at the level of blocks: one replica is PARD's own sampler (the same graphs as ``pipe.sample``),
more replicas steer toward the reward and cost more network calls, the options are checked."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from graphdiff import GraphDiffusionPipeline
from graphdiff.errors import ConfigError
from graphdiff.guidance import get_reward, svdd


@pytest.fixture(scope="module")
def pard(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("pard")
    return GraphDiffusionPipeline.fit(
        "synth_community_small", preset="pard-community_small", out=tmp / "run", root=tmp / "data",
        overrides={"model": {"n_layers": 2, "hidden": 16, "n_heads": 2},
                   "train": {"max_steps": 30, "batch_size": 16, "ckpt_every": 0, "log_every": 10},
                   "sample": {"steps": 3}}, progress=False)


pytestmark = pytest.mark.filterwarnings("ignore:pard sampler")  # a tiny model proposes blocks past max_nodes


def test_one_replica_is_pards_own_sampler(pard):
    plain = pard.sample(5, steps=3, seed=4, output="state", progress=False)
    g = svdd(pard, 5, get_reward("n_nodes"), M=1, steps=3, seed=4)
    assert torch.equal(g.state.mask, plain.mask) and torch.equal(g.state.x, plain.x)
    assert torch.equal(g.state.e, plain.e) and torch.equal(g.state.blocks, plain.blocks)
    assert g.cost["candidates"] == 1 and "PARD blocks" in g.cost["value"]


def test_replicas_steer_toward_the_reward_and_cost_more(pard):
    reward = get_reward("n_nodes")
    n = 12
    plain = pard.sample(n, steps=3, seed=1, output="networkx", progress=False)
    g = svdd(pard, n, reward, M=4, steps=3, seed=1)
    got = np.array([h.number_of_nodes() for h in g.samples])
    assert np.array_equal(got, g.rewards)  # the returned rewards are the returned graphs'
    assert got.mean() > np.mean([h.number_of_nodes() for h in plain])
    one = svdd(pard, n, reward, M=1, steps=3, seed=1)
    assert g.cost["network_calls_per_sample"] > 2 * one.cost["network_calls_per_sample"]
    assert g.cost["reward_calls_per_sample"] > one.cost["reward_calls_per_sample"] >= 2  # M per round, + the last
    through = pard.sample(n, steps=3, seed=1, guide="svdd", reward="n_nodes", guide_options={"M": 4},
                          output="networkx")  # the pipeline's guide interface routes PARD here
    assert [h.number_of_nodes() for h in through] == got.tolist()
    with pytest.raises(ConfigError, match="no value network"):
        svdd(pard, 2, reward, M=2, value="somewhere")
    with pytest.raises(ConfigError, match="M must be a positive integer"):
        svdd(pard, 2, reward, M=0)


def test_noise_search_on_pard_keeps_k_paths_and_counts_them(pard):
    from graphdiff.guidance import noise_search

    reward = get_reward("n_nodes")
    one = svdd(pard, 6, reward, M=1, steps=3, seed=2)
    g = noise_search(pard, 6, reward, K=2, M=2, steps=3, seed=2)
    got = np.array([h.number_of_nodes() for h in g.samples])
    assert np.array_equal(got, g.rewards) and g.cost["paths"] == 2 and g.cost["candidates"] == 2
    assert got.mean() >= np.mean([h.number_of_nodes() for h in one.samples])
    assert g.cost["network_calls_per_sample"] > 2 * one.cost["network_calls_per_sample"]
    with pytest.raises(ConfigError, match="K must be a positive integer"):
        noise_search(pard, 2, reward, K=0, M=2)
