"""``graphdiff.samplers.sample``, the one entry point: the sampler table per process and the checks it makes before
drawing anything."""

import pytest
import torch

import graphdiff.samplers as samplers
from graphdiff.errors import ConfigError
from graphdiff.nn import build_denoiser
from graphdiff.processes import GDSSProcess
from graphdiff.processes.defog import DiscreteFlowMatching
from graphdiff.processes.digress import DiscreteDiffusion
from graphdiff.processes.pard import BlockAutoregressive
from tests.processes.test_categorical import TinyDenoiser, small_schema
from tests.processes.test_gdss import plain_schema
from tests.processes.test_pard import schema, tiny_ppgn


def gdss():
    proc = GDSSProcess(plain_schema(6), node_features="degree", max_feat_num=3)
    return proc, build_denoiser("gdss", x_net={"type": "gcn", "depth": 1, "nhid": 4},
                                adj_net={"nhid": 4, "num_layers": 1}, x_dim=proc.x_dim, max_nodes=6)


def digress():
    proc = DiscreteDiffusion(small_schema(), T=10)
    return proc, TinyDenoiser(**proc.denoiser_kwargs())


def defog():
    proc = DiscreteFlowMatching(small_schema())
    return proc, TinyDenoiser(**proc.denoiser_kwargs())


def pard():
    proc = BlockAutoregressive(schema(), T=10, max_block=3, max_blocks=4)
    return proc, tiny_ppgn(proc)


@pytest.mark.parametrize("build,sampler,typo,closest,value", [
    (gdss, "pc", "snrr", "snr", 0.1), (gdss, "s4", "scale_esp", "scale_eps", 0.5),
    (digress, "ancestral", "guidence", "guidance", 0.0), (defog, "ctmc", "etaa", "eta", 1.0),
    (defog, "ctmc", "time_distorsion", "time_distortion", "cos"), (pard, "block", "max_block", "max_blocks", 3),
])
def test_an_unknown_knob_is_a_one_line_error_naming_it_and_the_closest_one(build, sampler, typo, closest, value):
    proc, den = build()
    calls = []
    den.register_forward_pre_hook(lambda mod, args: calls.append(1))
    with pytest.raises(ConfigError) as err:
        samplers.sample(proc, den, torch.tensor([4, 3]), steps=2, sampler=sampler, **{typo: value})
    msg = str(err.value)
    assert "\n" not in msg and f"sampler {sampler!r}" in msg, msg
    assert f"unknown key {typo!r}; did you mean {closest!r}?" in msg, msg
    assert not calls  # refused before any network call
    samplers.sample(proc, den, torch.tensor([4, 3]), steps=2, sampler=sampler, **{closest: value})  # the right one
    assert calls


def test_knobs_belong_to_their_sampler():
    proc, den = digress()
    with pytest.raises(ConfigError, match=r"sampler 'ancestral': unknown key 'eta'; valid keys: cond, guidance$"):
        samplers.sample(proc, den, torch.tensor([4]), steps=2, sampler="ancestral", eta=1.0)  # DeFoG's, not DiGress's
    with pytest.raises(ConfigError, match=r"sampler 'ctmcc' is not available for process 'defog'; did you mean "
                                          r"'ctmc'\?; choose from \['ctmc'\]"):
        samplers.sample(*defog(), torch.tensor([4]), steps=2, sampler="ctmcc")
    with pytest.raises(ConfigError, match="steps must be a positive integer, got 0"):
        samplers.sample(proc, den, torch.tensor([4]), steps=0, sampler="ancestral")
