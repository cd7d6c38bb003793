"""The Triton edge-conditioned attention equals its torch reference (outputs and gradients) at small sizes, on a
GPU when there is one, else under Triton's interpreter on CPU.

Tolerances: fp32 kernels against the fp32 reference, ``atol = rtol = 1e-5`` (the kernels' tile sums and atomics only
reorder fp32 additions). bf16 inputs: the kernel (bf16 products on a GPU, fp32 accumulation, bf16 out) against the
fp32 reference on the same bf16 values, ``|diff| <= 2e-2 * (1 + max|ref|)`` (a few bf16 roundings of the output and
the gradients).
"""

from __future__ import annotations

import pytest
import torch

from graphdiff.kernels import edge_attention_reference

NAMES = ("q", "k", "v", "qe", "ke", "e", "mask", "w_mul", "b_mul", "w_add", "b_add", "w_out", "b_out")


def make_inputs(b, n, h, dh, de, fe, do, mask, device, dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed)
    r = lambda *s: (0.5 * torch.randn(*s, generator=g)).to(device=device, dtype=dtype).requires_grad_()
    mask = mask.to(device)
    return dict(q=r(b, n, h, dh), k=r(b, n, h, dh), v=r(b, n, h, dh), qe=r(b, n, de), ke=r(b, n, de),
                e=r(b, n, n, fe), mask=mask, w_mul=r(h + de, fe), b_mul=r(h + de), w_add=r(h + de, fe),
                b_add=r(h + de), w_out=r(do, h + de), b_out=r(do))


def outputs_and_grads(fn, args, seed=1):
    x, e_out = fn(*(args[k] for k in NAMES))
    g = torch.Generator().manual_seed(seed)
    gx = torch.randn(x.shape, generator=g).to(x.device, x.dtype)
    ge = torch.randn(e_out.shape, generator=g).to(x.device, x.dtype)
    diff = [k for k in NAMES if k != "mask"]
    grads = torch.autograd.grad((x * gx).float().sum() + (e_out * ge).float().sum(), [args[k] for k in diff])
    return x, e_out, dict(zip(diff, grads))


def assert_grads_close(got: dict, want: dict, tol: float = 1e-5):
    for name in want:
        torch.testing.assert_close(got[name], want[name], atol=tol, rtol=tol, msg=lambda m, n=name: f"grad {n}: {m}")


def triton_fn():
    from graphdiff.kernels.attention_triton import edge_attention_triton

    return edge_attention_triton


def masks(n):
    full = torch.ones(n, dtype=torch.bool)
    part = torch.arange(n) < max(n // 2, 1)
    part[-1] = n > 2  # a real node after a padded one
    return torch.stack([full, part])


@pytest.mark.parametrize("b,n,h,dh,de,fe,do", [(2, 5, 2, 3, 4, 6, 5), (1, 1, 1, 2, 3, 3, 2), (2, 7, 3, 5, 2, 4, 3)])
def test_fp32_outputs_and_gradients_equal_the_reference(device, b, n, h, dh, de, fe, do):
    mask = masks(n)[:b] if b == 2 else torch.ones(b, n, dtype=torch.bool)
    args = make_inputs(b, n, h, dh, de, fe, do, mask, device)
    xr, er, gr = outputs_and_grads(edge_attention_reference, args)
    xt, et, gt = outputs_and_grads(triton_fn(), args)
    torch.testing.assert_close(xt, xr, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(et, er, atol=1e-5, rtol=1e-5)
    assert_grads_close(gt, gr)


def test_several_key_blocks_and_row_blocks(device, monkeypatch):
    from graphdiff.kernels import attention_triton

    # N = 19: one full and one ragged key block of 16, tiles of 4 query rows (the last ragged), backward programs of
    # 2 row blocks (3 per graph, the last ragged); two graphs, so programs of the second one start mid-tensor
    monkeypatch.setattr(attention_triton, "_tiles",
                        lambda n, config: dict(BI=4, BJ=16, **({"RB": 2} if "RB" in config else {})))
    mask = torch.stack([torch.arange(19) != 4, torch.arange(19) < 13])
    args = make_inputs(2, 19, 2, 2, 2, 3, 2, mask, device)
    xr, er, gr = outputs_and_grads(edge_attention_reference, args)
    xt, et, gt = outputs_and_grads(attention_triton.edge_attention_triton, args)
    torch.testing.assert_close(xt, xr, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(et, er, atol=1e-5, rtol=1e-5)
    assert_grads_close(gt, gr)


def test_bf16_equals_the_fp32_reference_within_bf16_rounding(device):
    args = make_inputs(2, 5, 2, 4, 4, 4, 4, masks(5), device, dtype=torch.bfloat16)
    args32 = {k: (v.detach().float().requires_grad_() if k != "mask" else v) for k, v in args.items()}
    xr, er, gr = outputs_and_grads(edge_attention_reference, args32)
    xt, et, gt = outputs_and_grads(triton_fn(), args)
    assert xt.dtype == et.dtype == torch.bfloat16 and gt["e"].dtype == torch.bfloat16
    for got, want in [(xt, xr), (et, er)] + [(gt[k], gr[k]) for k in gr]:
        assert (got.float() - want).abs().max() <= 2e-2 * (1 + want.abs().max())


def test_padded_slots_never_reach_real_outputs_and_get_no_gradient(device):
    mask = masks(6).to(device)
    args = make_inputs(2, 6, 2, 3, 3, 3, 3, mask, device)
    xt, et, gt = outputs_and_grads(triton_fn(), args)
    pad = ~mask
    pairs = mask[:, :, None] & mask[:, None, :]
    assert (xt[pad] == 0).all() and (et[~pairs] == 0).all()
    for name in ("q", "k", "v", "qe", "ke"):
        assert (gt[name][pad] == 0).all(), name
    assert (gt["e"][~pairs] == 0).all()
    # garbage at padded slots leaves the real outputs bit for bit unchanged
    noisy = dict(args)
    for name in ("q", "k", "v", "qe", "ke"):
        noisy[name] = args[name].detach().clone()
        noisy[name][pad] = 1e4
    noisy["e"] = torch.where(pairs.unsqueeze(-1), args["e"].detach(), torch.full_like(args["e"], -1e4))
    xn, en = triton_fn()(*(noisy[k] for k in NAMES))
    assert torch.equal(xn[mask], xt[mask].detach()) and torch.equal(en[pairs], et[pairs].detach())


def test_a_graph_without_real_nodes_gives_zeros_and_finite_gradients(device):
    mask = torch.zeros(2, 4, dtype=torch.bool)
    mask[1, :3] = True
    args = make_inputs(2, 4, 2, 2, 2, 2, 2, mask, device)
    xr, er, gr = outputs_and_grads(edge_attention_reference, args)
    xt, et, gt = outputs_and_grads(triton_fn(), args)
    assert (xt[0] == 0).all() and (et[0] == 0).all()
    torch.testing.assert_close(xt, xr, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(et, er, atol=1e-5, rtol=1e-5)
    for name in gr:
        assert torch.isfinite(gt[name]).all()
        torch.testing.assert_close(gt[name], gr[name], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("failing", ["_launch_forward", "_launch_backward"])
def test_a_kernel_too_big_for_the_gpu_falls_back_to_the_reference_only_when_allowed(device, monkeypatch, failing):
    import triton

    from graphdiff.kernels import attention_triton

    def too_big(*args, **kwargs):
        raise triton.runtime.errors.OutOfResources(160_000, 101_376, "shared memory")

    monkeypatch.setattr(attention_triton, failing, too_big)
    monkeypatch.setattr(attention_triton, "_WARNED", set())
    args = make_inputs(2, 5, 2, 3, 3, 4, 3, masks(5), device)
    xr, er, gr = outputs_and_grads(edge_attention_reference, args)
    fallback = lambda *a: attention_triton.edge_attention_triton(*a, fallback=True)
    with pytest.warns(UserWarning, match="does not fit this GPU"):
        xt, et, gt = outputs_and_grads(fallback, args)
    torch.testing.assert_close(xt, xr, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(et, er, atol=1e-5, rtol=1e-5)
    assert_grads_close(gt, gr)
    with pytest.raises(triton.runtime.errors.OutOfResources):  # forced Triton: the error stands
        outputs_and_grads(attention_triton.edge_attention_triton, args)


def test_the_kernels_matrix_precision_follows_the_dtype_and_torchs_float32_matmul_precision(monkeypatch):
    from graphdiff.kernels import attention_triton

    before = torch.get_float32_matmul_precision()
    try:
        for interpreting in (False, True):
            monkeypatch.setattr(attention_triton, "_interpreting", lambda i=interpreting: i)
            torch.set_float32_matmul_precision("highest")
            assert attention_triton._precision(torch.float32) == "ieee"
            # the interpreter has no bf16 products: IEEE fp32 there
            assert attention_triton._precision(torch.bfloat16) == ("ieee" if interpreting else "bf16")
            torch.set_float32_matmul_precision("high")
            assert attention_triton._precision(torch.float32) == "tf32"
        if torch.cuda.is_available():  # bf16 autocast: bf16 products for fp32 edge features too, as torch's linear
            monkeypatch.setattr(attention_triton, "_interpreting", lambda: False)
            with torch.autocast("cuda", dtype=torch.bfloat16):
                assert attention_triton._precision(torch.float32) == "bf16"
    finally:
        torch.set_float32_matmul_precision(before)
