"""``train.amp``'s wrapper: the forward pass under bf16 autocast, float32 (and only float32) back out, attributes read
through from the wrapped denoiser."""

import torch
from torch import nn

from graphdiff.state import GraphState
from graphdiff.train.amp import AutocastForward, _to_float32


def test_lower_precision_outputs_come_back_as_float32_and_nothing_else_changes():
    b, n = 2, 3
    state = GraphState(x=torch.randn(b, n, 4).bfloat16(), e=torch.randn(b, n, n, 2).half(),
                       mask=torch.ones(b, n, dtype=torch.bool), y=torch.randn(b, 5, dtype=torch.float64))
    out = _to_float32({"state": state, "pair": (torch.ones(2, dtype=torch.bfloat16), torch.arange(3)), "k": 7})
    got = out["state"]
    assert got.x.dtype == torch.float32 and got.e.dtype == torch.float32
    assert torch.equal(got.x, state.x.float()) and torch.equal(got.e, state.e.float())
    assert got.y.dtype == torch.float64 and got.y is state.y  # float64 is never narrowed
    assert got.mask.dtype == torch.bool and got.pos is None
    assert out["pair"][0].dtype == torch.float32 and out["pair"][1].dtype == torch.int64 and out["k"] == 7


class _Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(3, 3)
        self.max_block = 5

    def forward(self, x):
        return self.lin(x)

    def helper(self):
        return self.max_block + 1


def test_the_wrapper_runs_the_forward_in_bf16_and_reads_attributes_through():
    net = _Net()
    wrapped = AutocastForward(net, "cpu")
    seen = []
    net.lin.register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    x = torch.randn(4, 3)
    out = wrapped(x)
    assert seen == [torch.bfloat16] and out.dtype == torch.float32
    assert torch.allclose(out, net(x), atol=0.05) and not torch.equal(out, net(x))  # bf16 arithmetic, close
    assert wrapped.max_block == 5 and wrapped.helper() == 6  # the denoiser's attributes and helpers
    assert list(wrapped.parameters()) == list(net.parameters())  # shared, not copied
