"""Which path runs: the mode, the environment override and the one-line errors (no Triton needed)."""

from __future__ import annotations

import pytest
import torch

from graphdiff.errors import ConfigError
from graphdiff.kernels import ENV_VAR, check_mode, message_scatter, triton_importable, use_triton
from graphdiff.nn import EQGATDenoiser, GraphTransformerDenoiser
from graphdiff.state import GraphState


def test_unknown_mode_is_a_one_line_config_error():
    with pytest.raises(ConfigError, match=r"kernels='fast' is unknown; known: auto, reference, triton") as info:
        check_mode("fast")
    assert "\n" not in str(info.value)
    with pytest.raises(ConfigError, match="kernels='cuda'"):
        GraphTransformerDenoiser(node_dim=2, edge_dim=2, max_nodes=4, n_layers=1, hidden_x=4, n_heads=2,
                                 kernels="cuda")


def test_auto_and_reference_use_the_reference_on_cpu(monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)
    t = torch.zeros(2)
    assert not use_triton("auto", t) and not use_triton("reference", t)


def test_the_environment_overrides_the_mode(monkeypatch):
    t = torch.zeros(2)
    monkeypatch.setenv(ENV_VAR, "reference")
    assert not use_triton("triton", t)  # forced off: no error even where Triton cannot run
    monkeypatch.setenv(ENV_VAR, "turbo")
    with pytest.raises(ConfigError, match=f"{ENV_VAR}='turbo' is unknown"):
        use_triton("auto", t)


def test_forcing_triton_where_it_cannot_run_is_a_one_line_config_error(monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    reason = "not CUDA" if triton_importable() else "triton does not import"
    with pytest.raises(ConfigError, match=f"kernels=triton but .*{reason}") as info:
        message_scatter(torch.ones(3, 2), torch.tensor([0, 0, 1]), 2, mode="triton")
    assert "\n" not in str(info.value)
    monkeypatch.setenv(ENV_VAR, "triton")
    with pytest.raises(ConfigError, match=f"{ENV_VAR}=triton but"):
        message_scatter(torch.ones(3, 2), torch.tensor([0, 0, 1]), 2)


def test_a_denoiser_forced_to_triton_on_cpu_fails_with_the_config_error(monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    torch.manual_seed(0)
    net = EQGATDenoiser(node_dim=2, edge_dim=2, max_nodes=3, n_layers=1, hidden=4, vectors=2, edge_hidden=4, heads=2,
                        num_rbf=2, kernels="triton")
    state = GraphState(x=torch.randn(1, 3, 2), e=torch.randn(1, 3, 3, 2), mask=torch.ones(1, 3, dtype=torch.bool),
                       pos=torch.randn(1, 3, 3))
    with pytest.raises(ConfigError, match="kernels=triton but"):
        net(state, torch.tensor([0.5]))


def test_model_kernels_is_a_preset_key():
    from graphdiff.config import RunConfig

    base = {"dataset": "qm9", "process": {"name": "digress"},
            "model": {"name": "graph_transformer", "n_layers": 1, "kernels": "reference"}}
    assert RunConfig.from_dict(base).model["kernels"] == "reference"
    with pytest.raises(ConfigError, match="kernels"):
        RunConfig.from_dict({**base, "model": {**base["model"], "kernels_mode": "triton"}})


def test_auto_runs_the_scatter_kernel_only_where_it_was_measured_faster():
    """The H200 measurements behind ``auto``: gather-weight-scatter from 2^18 messages, a plain segment mean only
    without a backward pass and from 2^20; the attention kernel (slower everywhere) never under ``auto``."""
    from graphdiff.kernels.dispatch import SCATTER_MIN_MESSAGES, scatter_auto_prefers_triton

    big, huge = SCATTER_MIN_MESSAGES["gather"], SCATTER_MIN_MESSAGES["segment_no_grad"]
    assert scatter_auto_prefers_triton(big, gather=True, needs_grad=True)
    assert not scatter_auto_prefers_triton(big - 1, gather=True, needs_grad=False)
    assert not scatter_auto_prefers_triton(huge, gather=False, needs_grad=True)
    assert scatter_auto_prefers_triton(huge, gather=False, needs_grad=False)
    assert not scatter_auto_prefers_triton(huge - 1, gather=False, needs_grad=False)


def test_a_caller_that_is_not_faster_keeps_the_reference_under_auto_but_not_when_forced(monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)
    monkeypatch.setenv("TRITON_INTERPRET", "1")  # so that forcing Triton on these CPU tensors is allowed
    if not triton_importable():
        pytest.skip("triton does not import")
    t = torch.zeros(2)
    assert not use_triton("auto", t, auto=False) and use_triton("triton", t, auto=False)
