"""``train.compile``: training through torch.compile gives the eager run's weights and plain checkpoints; a broken
compiler is a one-line ConfigError; the PPGN transformer's compile-time level bound changes no output."""

from __future__ import annotations

import shutil

import pytest
import torch

from graphdiff.errors import ConfigError
from graphdiff.nn.ppgn import PPGNTransformerDenoiser
from graphdiff.state import GraphState
from graphdiff.train import Trainer, load_checkpoint

from .toys import RUN_CONFIG, RegressionProcess, make_denoiser, resume_config

needs_cxx = pytest.mark.skipif(not (shutil.which("g++") or shutil.which("c++")),
                               reason="torch.compile on CPU needs a C++ compiler")


def _fit(train_set, out, compile_: bool, **kw):
    cfg = resume_config(max_steps=3, grad_clip=None, ema_decay=0.9, ckpt_every=0, compile=compile_, **kw)
    tr = Trainer(RegressionProcess(), make_denoiser(), train_set, cfg, out, run_config=RUN_CONFIG, progress=False)
    tr.fit()
    return tr


@needs_cxx
def test_compiled_training_gives_the_eager_weights_and_a_plain_checkpoint(train_set, tmp_path):
    eager = _fit(train_set, tmp_path / "eager", False)
    compiled = _fit(train_set, tmp_path / "compiled", True)
    assert compiled._loss_module is not compiled.model  # the loss really ran through the compiled wrapper
    moved = False
    start = make_denoiser()
    for (name, p), q, p0 in zip(eager.model.named_parameters(), compiled.model.parameters(), start.parameters()):
        assert torch.allclose(p, q, rtol=1e-4, atol=1e-6), f"parameter {name} differs"
        moved |= not torch.allclose(p, p0)
    assert moved  # three steps changed the weights, so the comparison has teeth
    ckpt = load_checkpoint(tmp_path / "compiled" / "checkpoint")
    assert ckpt.model_state.keys() == eager.model.state_dict().keys()  # no "_orig_mod." prefix


@needs_cxx
def test_compiled_training_under_amp_follows_the_eager_amp_run(train_set, tmp_path):
    from graphdiff.train.amp import AutocastForward

    eager = _fit(train_set, tmp_path / "eager", False, amp=True)
    compiled = _fit(train_set, tmp_path / "compiled", True, amp=True)
    assert isinstance(compiled._loss_module, AutocastForward)  # autocast around the compiled wrapper
    assert compiled._loss_module.module is not compiled.model
    out = compiled._loss_module(torch.randn(4, 2))
    assert out.dtype == torch.float32
    start = make_denoiser()
    gaps = [float((p - q).detach().abs().max()) for p, q in zip(eager.model.parameters(), compiled.model.parameters())]
    moved = [float((p - p0).detach().abs().max()) for p, p0 in zip(eager.model.parameters(), start.parameters())]
    # inductor may fuse bf16 operations differently from eager: close, not identical, and far closer than a step
    assert max(gaps) < 0.1 * max(moved)


@needs_cxx
def test_a_broken_compiler_is_a_one_line_config_error(train_set, tmp_path, monkeypatch):
    import torch._inductor.config as inductor_config

    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "inductor"))  # nothing cached: it must compile
    monkeypatch.setattr(inductor_config, "fx_graph_cache", False)
    monkeypatch.setattr(inductor_config.cpp, "cxx", (None, str(tmp_path / "no-such-compiler")))
    torch._dynamo.reset()
    try:
        with pytest.raises(ConfigError, match=r"train.compile: torch.compile failed .*set train.compile: false") as e:
            _fit(train_set, tmp_path / "run", True, batch_size=5)
        assert "\n" not in str(e.value)
    finally:
        torch._dynamo.reset()


def test_the_compile_time_level_bound_changes_no_output(monkeypatch):
    """Inside torch.compile the block structure uses the slot count as its number of levels (no data-dependent
    count); run that path in eager mode and compare with the normal one."""
    torch.manual_seed(0)
    net = PPGNTransformerDenoiser(node_dim=3, edge_dim=2, max_nodes=12, n_layers=2, hidden=16, n_heads=2,
                                  max_block=4, max_degree=3).eval()
    b, n = 2, 9
    x = torch.randn(b, n, 3)
    e = torch.randn(b, n, n, 2)
    e = e + e.transpose(1, 2)
    mask = torch.ones(b, n, dtype=torch.bool)
    mask[1, 7:] = False
    block = torch.tensor([[0, 0, 1, 2, 2, 3, 4, 4, 5], [0, 1, 1, 2, 3, 3, 4, -1, -1]])
    state = GraphState(x=x, e=e, mask=mask)
    with torch.no_grad():
        ref = net(state, torch.full((b,), 0.3), block=block)
        monkeypatch.setattr(torch.compiler, "is_compiling", lambda: True)
        bound = net(state, torch.full((b,), 0.3), block=block)
    assert torch.allclose(ref.x, bound.x, atol=1e-5) and torch.allclose(ref.e, bound.e, atol=1e-5)
    s_ref, s_bound = net.size_logits(ref), net.size_logits(bound)
    assert s_ref.shape[1] == 6 and s_bound.shape[1] == n  # max level + 1 against the slot count
    assert torch.allclose(s_ref, s_bound[:, :6], atol=1e-5)
    assert torch.count_nonzero(s_bound[:, 6:]) == 0
    assert torch.allclose(net.degree_logits(ref), net.degree_logits(bound)[:, :6], atol=1e-5)
