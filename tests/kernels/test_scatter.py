"""The Triton message scatter equals its torch reference (on a GPU when there is one, else under Triton's interpreter
on CPU; small sizes), and the reference equals PyG's scatter. Tolerances: fp32 ``atol = rtol = 1e-6`` (fp32 sums of
a few terms, reordered); bf16 inputs against the fp32 reference on the same values,
``|diff| <= 1e-2 * (1 + max|ref|)``."""

from __future__ import annotations

import pytest
import torch

from graphdiff.kernels import message_scatter_reference

CASES = [  # (messages, source rows or None, destination rows, sorted index, weighted, reduce)
    (37, None, 7, True, False, "sum"),
    (37, None, 9, False, True, "mean"),
    (23, 11, 6, True, True, "mean"),
    (29, 5, 13, False, False, "sum"),
    (0, None, 3, True, True, "mean"),
]


def make(m, s, d, sorted_, weighted, dtype=torch.float32, seed=0, device="cpu"):
    g = torch.Generator().manual_seed(seed)
    index = torch.randint(0, max(d - 2, 1), (m,), generator=g)  # the last rows get no message
    if sorted_:
        index = index.sort().values
    gather = None if s is None else torch.randint(0, s, (m,), generator=g)
    values = torch.randn(m if s is None else s, 3, 5, generator=g).to(device, dtype).requires_grad_()
    weight = torch.randn(m, generator=g).to(device, dtype).requires_grad_() if weighted else None
    return values, index.to(device), None if gather is None else gather.to(device), weight


def run(fn, values, index, d, reduce, gather, weight, seed=1):
    out = fn(values, index, d, reduce, gather=gather, weight=weight)
    g_out = torch.randn(out.shape, generator=torch.Generator().manual_seed(seed)).to(out.device, out.dtype)
    inputs = [values] + ([weight] if weight is not None else [])
    return out, torch.autograd.grad((out * g_out).float().sum(), inputs, allow_unused=True)


@pytest.mark.parametrize("m,s,d,sorted_,weighted,reduce", CASES)
def test_fp32_outputs_and_gradients_equal_the_reference(device, m, s, d, sorted_, weighted, reduce):
    from graphdiff.kernels.scatter_triton import message_scatter_triton

    values, index, gather, weight = make(m, s, d, sorted_, weighted, device=device)
    out_r, grads_r = run(message_scatter_reference, values, index, d, reduce, gather, weight)
    out_t, grads_t = run(message_scatter_triton, values, index, d, reduce, gather, weight)
    assert out_t.shape == (d, 3, 5)
    assert (out_t[-2:] == 0).all()  # rows without messages
    torch.testing.assert_close(out_t, out_r, atol=1e-6, rtol=1e-6)
    for got, want in zip(grads_t, grads_r):
        torch.testing.assert_close(got, want, atol=1e-6, rtol=1e-6)


def test_bf16_equals_the_fp32_reference_within_bf16_rounding(device):
    from graphdiff.kernels.scatter_triton import message_scatter_triton

    values, index, gather, weight = make(41, 9, 8, False, True, dtype=torch.bfloat16, device=device)
    v32, w32 = values.detach().float().requires_grad_(), weight.detach().float().requires_grad_()
    out_r, grads_r = run(message_scatter_reference, v32, index, 8, "mean", gather, w32)
    out_t, grads_t = run(message_scatter_triton, values, index, 8, "mean", gather, weight)
    assert out_t.dtype == torch.bfloat16
    for got, want in [(out_t, out_r), *zip(grads_t, grads_r)]:
        assert (got.float() - want).abs().max() <= 1e-2 * (1 + want.abs().max())


@pytest.mark.parametrize("reduce", ["sum", "mean"])
def test_the_reference_is_pyg_scatter(reduce):
    from torch_geometric.utils import scatter

    values, index, _, _ = make(37, None, 9, False, False)
    assert torch.equal(message_scatter_reference(values, index, 9, reduce),
                       scatter(values, index, dim=0, dim_size=9, reduce=reduce))
