"""Gradient checkpointing in the transformer denoisers: the same outputs and gradients as without it, fewer
activations kept for the backward pass, and the option survives a preset round trip."""

import pytest
import torch

from . import test_ppgn, test_transformer


def _saved_bytes(fn):
    """``(fn(), bytes of the tensors autograd keeps for the backward pass while it runs)``, unique storages."""
    seen = {}

    def pack(t):
        seen[(t.untyped_storage().data_ptr(), t.device)] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = fn()
    return out, sum(seen.values())


def _forward(kind, checkpoint):
    if kind == "ppgn":
        net = test_ppgn.model(("cycles",), cond_dim=2, n_layers=3, gradient_checkpointing=checkpoint).train()
        s = test_ppgn.make_state()
        args = (s, test_ppgn.times(len(s)), torch.ones(len(s), 2, dtype=torch.float64))
        kw = {"block": test_ppgn.make_blocks(s.mask)}
    else:
        net = test_transformer.model(("cycles", "rrwp"), cond_dim=2, n_layers=3,
                                     gradient_checkpointing=checkpoint).train()
        s = test_transformer.make_state()
        args = (s, test_transformer.times(len(s)), torch.ones(len(s), 2, dtype=torch.float64))
        kw = {}
    return net, lambda: net(*args, **kw)


@pytest.mark.parametrize("kind", ["ppgn", "transformer"])
def test_checkpointing_gives_the_same_outputs_and_gradients_and_keeps_less(kind):
    results = {}
    for checkpoint in (False, True):
        net, fn = _forward(kind, checkpoint)
        out, saved = _saved_bytes(fn)
        loss = out.x.pow(2).sum() + out.e.pow(2).sum() + (0 if out.y is None else out.y.pow(2).sum())
        loss.backward()
        grads = {n: p.grad.clone() for n, p in net.named_parameters() if p.grad is not None}
        results[checkpoint] = (out, grads, saved)
    (o0, g0, s0), (o1, g1, s1) = results[False], results[True]
    assert torch.equal(o0.x, o1.x) and torch.equal(o0.e, o1.e)
    assert g0.keys() == g1.keys() and len(g0) > 10
    for name in g0:
        torch.testing.assert_close(g1[name], g0[name], rtol=1e-10, atol=1e-12, msg=name)
    assert s1 < 0.6 * s0, (s0, s1)


def test_sampling_without_gradients_does_not_recompute(monkeypatch):
    calls = []
    real = torch.utils.checkpoint.checkpoint
    monkeypatch.setattr(torch.utils.checkpoint, "checkpoint", lambda *a, **k: calls.append(1) or real(*a, **k))
    net, fn = _forward("ppgn", True)
    with torch.no_grad():
        a = fn()
    assert not calls
    fn()
    assert len(calls) == len(net.layers)  # with gradients: once per layer
    _, plain = _forward("ppgn", False)
    with torch.no_grad():
        b = plain()
    assert torch.equal(a.x, b.x) and torch.equal(a.y, b.y)


def test_a_preset_turns_it_on_and_it_survives_save_and_load(tmp_path):
    from graphdiff import GraphDiffusionPipeline

    over = {"model": {"n_layers": 1, "hidden": 16, "n_heads": 2, "gradient_checkpointing": True},
            "train": {"max_steps": 2, "batch_size": 8}, "sample": {"steps": 2}}
    pipe = GraphDiffusionPipeline.fit("synth_community_small", preset="pard-community_small", out=tmp_path / "run",
                                      root=tmp_path / "d", overrides=over, progress=False)
    assert pipe.denoiser.gradient_checkpointing
    assert GraphDiffusionPipeline.from_pretrained(tmp_path / "run").denoiser.gradient_checkpointing
