"""Triton kernel of the edge-conditioned attention (:func:`~graphdiff.kernels.reference.edge_attention_reference`).

The attention splits by size. Everything per pair and edge channel (the FiLM maps of ``e``, the modulated scores
``[S, P] (1 + M) + A`` and their map to the new edge features) is ``[B, N, N, Fe]``-sized and dominates time and
memory; the kernels below compute it on tiles of ``BI x BJ`` pairs with tensor-core matrix products and write only
the new edge features and the ``H`` modulated head scores. What is ``[B, H, N, N]``-sized (``S = q k^T``, the masked
softmax over keys and ``softmax V``) is a few batched matrix products and one softmax, left to torch in the same
operations as the reference.

Forward (:func:`_pair_film_fwd`): per tile, load ``e`` once; FiLM maps, modulated scores and the edge output in
registers. Backward (:func:`_pair_film_bwd`): per tile, recompute the FiLM maps from ``e``, take the gradients of
the new edge features and of the head scores (the latter from torch's softmax backward), write the gradients of
``e`` and ``S`` per pair, reduce the gradient of ``qe`` over the program's keys (plain stores: a program owns its
query rows) and of ``ke`` over its query rows (fp32 atomics, one ``[BJ, De]`` block per tile), and accumulate the
weight gradients over all the program's tiles in registers (one set of fp32 atomics per program). No
``[B, N, N, H + De]`` intermediate reaches memory in either pass.

Matrix products run on tensor cores in bf16 for bf16 inputs (fp32 accumulation); for fp32 inputs they follow
torch's float32 matmul precision (:func:`_precision`: IEEE fp32 by default, TF32 where the user allowed it).
"""

from __future__ import annotations

import math
import os
import warnings

import torch
import triton
import triton.language as tl
from torch import Tensor
from torch.nn import functional as F


__all__ = ["edge_attention_triton"]


@triton.jit
def _mm(a, b, PREC: tl.constexpr):
    """``a @ b`` with fp32 accumulation: bf16 tensor-core products (``PREC="bf16"``), else fp32 ones in ``PREC``."""
    if PREC == "bf16":
        return tl.dot(a.to(tl.bfloat16), b.to(tl.bfloat16), out_dtype=tl.float32)
    else:
        return tl.dot(a.to(tl.float32), b.to(tl.float32), input_precision=PREC)


@triton.jit
def _load_weights(WM, BM, WA, BA, WO, BO, H, DE, FE, DO, HP: tl.constexpr, DEP: tl.constexpr, FEP: tl.constexpr,
                  DOP: tl.constexpr):
    """The FiLM maps transposed to ``[Fe, *]`` (``W[c, f]`` at ``c * Fe + f``), split into the head part (``H``
    columns) and the edge-width part (``De``), and the score-to-edge map transposed to ``[*, Do]``."""
    rh, rc, rf, ro = tl.arange(0, HP), tl.arange(0, DEP), tl.arange(0, FEP), tl.arange(0, DOP)
    hm, cm, fm, om = rh < H, rc < DE, rf < FE, ro < DO
    hc = H + DE
    wms = tl.load(WM + rh[None, :] * FE + rf[:, None], mask=hm[None, :] & fm[:, None], other=0.0)
    wmp = tl.load(WM + (H + rc[None, :]) * FE + rf[:, None], mask=cm[None, :] & fm[:, None], other=0.0)
    was = tl.load(WA + rh[None, :] * FE + rf[:, None], mask=hm[None, :] & fm[:, None], other=0.0)
    wap = tl.load(WA + (H + rc[None, :]) * FE + rf[:, None], mask=cm[None, :] & fm[:, None], other=0.0)
    bms = tl.load(BM + rh, mask=hm, other=0.0).to(tl.float32)
    bmp = tl.load(BM + H + rc, mask=cm, other=0.0).to(tl.float32)
    bas = tl.load(BA + rh, mask=hm, other=0.0).to(tl.float32)
    bap = tl.load(BA + H + rc, mask=cm, other=0.0).to(tl.float32)
    wos = tl.load(WO + ro[None, :] * hc + rh[:, None], mask=om[None, :] & hm[:, None], other=0.0)
    wop = tl.load(WO + ro[None, :] * hc + H + rc[:, None], mask=om[None, :] & cm[:, None], other=0.0)
    bo = tl.load(BO + ro, mask=om, other=0.0).to(tl.float32)
    return wms, wmp, was, wap, bms, bmp, bas, bap, wos, wop, bo


@triton.jit
def _tile(S, QE, KE, E, MASK, b, ii, jj, N, H, DE, FE, scale_e, wms, wmp, was, wap, bms, bmp, bas, bap,
          HP: tl.constexpr, DEP: tl.constexpr, FEP: tl.constexpr, PREC: tl.constexpr):
    """One tile of pairs ``(ii[m], jj[m])``: edge features, FiLM maps, head scores, edge-width products and the
    modulated scores, all ``[M, *]``; ``real``: both nodes real; ``inside``: the pair exists (``< N``)."""
    rh, rc, rf = tl.arange(0, HP), tl.arange(0, DEP), tl.arange(0, FEP)
    hm, cm, fm = rh < H, rc < DE, rf < FE
    inside = (ii < N) & (jj < N)
    real = inside & (tl.load(MASK + b * N + ii, mask=inside, other=0) != 0) \
        & (tl.load(MASK + b * N + jj, mask=inside, other=0) != 0)
    pair = (b * N + ii) * N + jj
    et = tl.load(E + pair[:, None] * FE + rf[None, :], mask=inside[:, None] & fm[None, :], other=0.0)
    ms = _mm(et, wms, PREC) + bms[None, :]
    mp = _mm(et, wmp, PREC) + bmp[None, :]
    ads = _mm(et, was, PREC) + bas[None, :]
    adp = _mm(et, wap, PREC) + bap[None, :]
    sp = ((b * H + rh[None, :]) * N + ii[:, None]) * N + jj[:, None]  # [B, H, N, N] layout
    s = tl.load(S + sp, mask=inside[:, None] & hm[None, :], other=0.0).to(tl.float32)
    qet = tl.load(QE + (b * N + ii)[:, None] * DE + rc[None, :], mask=inside[:, None] & cm[None, :],
                  other=0.0).to(tl.float32)
    ket = tl.load(KE + (b * N + jj)[:, None] * DE + rc[None, :], mask=inside[:, None] & cm[None, :],
                  other=0.0).to(tl.float32)
    r = qet * ket * scale_e
    ps = s * (1.0 + ms) + ads
    pp = r * (1.0 + mp) + adp
    return inside, real, pair, sp, et, ms, mp, s, qet, ket, r, ps, pp


@triton.jit
def _pair_film_fwd(S, QE, KE, E, MASK, WM, BM, WA, BA, WO, BO, PS, EO, N, H, DE, FE, DO, scale_e,
                   BI: tl.constexpr, BJ: tl.constexpr, HP: tl.constexpr, DEP: tl.constexpr, FEP: tl.constexpr,
                   DOP: tl.constexpr, PREC: tl.constexpr):
    pid = tl.program_id(0).to(tl.int64)
    blocks = tl.cdiv(N, BI)
    b = pid // blocks
    i0 = (pid % blocks) * BI
    rh, ro, rm = tl.arange(0, HP), tl.arange(0, DOP), tl.arange(0, BI * BJ)
    hm, om = rh < H, ro < DO
    wms, wmp, was, wap, bms, bmp, bas, bap, wos, wop, bo = _load_weights(WM, BM, WA, BA, WO, BO, H, DE, FE, DO, HP,
                                                                         DEP, FEP, DOP)
    ii = i0 + rm // BJ
    for j0 in range(0, N, BJ):
        jj = j0 + rm % BJ
        inside, real, pair, sp, et, ms, mp, s, qet, ket, r, ps, pp = _tile(
            S, QE, KE, E, MASK, b, ii, jj, N, H, DE, FE, scale_e, wms, wmp, was, wap, bms, bmp, bas, bap, HP, DEP,
            FEP, PREC)
        eo = _mm(ps, wos, PREC) + _mm(pp, wop, PREC) + bo[None, :]
        eo = tl.where(real[:, None], eo, 0.0)
        tl.store(EO + pair[:, None] * DO + ro[None, :], eo.to(EO.dtype.element_ty), mask=inside[:, None] & om[None, :])
        tl.store(PS + sp, ps.to(PS.dtype.element_ty), mask=inside[:, None] & hm[None, :])


@triton.jit
def _pair_film_bwd(S, QE, KE, E, MASK, WM, BM, WA, BA, WO, BO, GPS, GEO, GS, GQE, GKE, GE, DWM, DBM, DWA, DBA, DWO,
                   DBO, N, H, DE, FE, DO, scale_e, BI: tl.constexpr, BJ: tl.constexpr, RB: tl.constexpr,
                   HP: tl.constexpr, DEP: tl.constexpr, FEP: tl.constexpr, DOP: tl.constexpr, PREC: tl.constexpr):
    pid = tl.program_id(0).to(tl.int64)
    blocks = tl.cdiv(N, BI * RB)
    b = pid // blocks
    rh, rc, rf, ro = tl.arange(0, HP), tl.arange(0, DEP), tl.arange(0, FEP), tl.arange(0, DOP)
    rm, rj = tl.arange(0, BI * BJ), tl.arange(0, BJ)
    hm, cm, fm, om = rh < H, rc < DE, rf < FE, ro < DO
    hc = H + DE
    wms, wmp, was, wap, bms, bmp, bas, bap, wos, wop, bo = _load_weights(WM, BM, WA, BA, WO, BO, H, DE, FE, DO, HP,
                                                                         DEP, FEP, DOP)
    g_wms = tl.zeros([FEP, HP], tl.float32)
    g_wmp = tl.zeros([FEP, DEP], tl.float32)
    g_was = tl.zeros([FEP, HP], tl.float32)
    g_wap = tl.zeros([FEP, DEP], tl.float32)
    g_bms = tl.zeros([HP], tl.float32)
    g_bmp = tl.zeros([DEP], tl.float32)
    g_bas = tl.zeros([HP], tl.float32)
    g_bap = tl.zeros([DEP], tl.float32)
    g_wos = tl.zeros([HP, DOP], tl.float32)
    g_wop = tl.zeros([DEP, DOP], tl.float32)
    g_bo = tl.zeros([DOP], tl.float32)
    for rb in range(0, RB):
        i0 = (pid % blocks) * (BI * RB) + rb * BI
        ii = i0 + rm // BJ
        g_qe = tl.zeros([BI, DEP], tl.float32)
        for j0 in range(0, N, BJ):
            jj = j0 + rm % BJ
            inside, real, pair, sp, et, ms, mp, s, qet, ket, r, ps, pp = _tile(
                S, QE, KE, E, MASK, b, ii, jj, N, H, DE, FE, scale_e, wms, wmp, was, wap, bms, bmp, bas, bap, HP,
                DEP, FEP, PREC)
            g_eo = tl.load(GEO + pair[:, None] * DO + ro[None, :], mask=real[:, None] & om[None, :],
                           other=0.0).to(tl.float32)
            g_ps = tl.load(GPS + sp, mask=inside[:, None] & hm[None, :], other=0.0).to(tl.float32) \
                + _mm(g_eo, tl.trans(wos), PREC)
            g_pp = _mm(g_eo, tl.trans(wop), PREC)
            g_wos += _mm(tl.trans(ps), g_eo, PREC)
            g_wop += _mm(tl.trans(pp), g_eo, PREC)
            g_bo += tl.sum(g_eo, axis=0)
            tl.store(GS + sp, (g_ps * (1.0 + ms)).to(GS.dtype.element_ty), mask=inside[:, None] & hm[None, :])
            g_ms = g_ps * s
            g_mp = g_pp * r
            g_r = g_pp * (1.0 + mp) * scale_e
            g_qe += tl.sum(tl.reshape(g_r * ket, (BI, BJ, DEP)), axis=1)
            cols = j0 + rj
            tl.atomic_add(GKE + (b * N + cols)[:, None] * DE + rc[None, :],
                          tl.sum(tl.reshape(g_r * qet, (BI, BJ, DEP)), axis=0),
                          mask=(cols < N)[:, None] & cm[None, :])
            g_e = (_mm(g_ms, tl.trans(wms), PREC) + _mm(g_mp, tl.trans(wmp), PREC)
                   + _mm(g_ps, tl.trans(was), PREC) + _mm(g_pp, tl.trans(wap), PREC))
            tl.store(GE + pair[:, None] * FE + rf[None, :], g_e.to(GE.dtype.element_ty),
                     mask=inside[:, None] & fm[None, :])
            ett = tl.trans(et)
            g_wms += _mm(ett, g_ms, PREC)
            g_wmp += _mm(ett, g_mp, PREC)
            g_was += _mm(ett, g_ps, PREC)
            g_wap += _mm(ett, g_pp, PREC)
            g_bms += tl.sum(g_ms, axis=0)
            g_bmp += tl.sum(g_mp, axis=0)
            g_bas += tl.sum(g_ps, axis=0)
            g_bap += tl.sum(g_pp, axis=0)
        rows = i0 + tl.arange(0, BI)
        tl.store(GQE + (b * N + rows)[:, None] * DE + rc[None, :], g_qe, mask=(rows < N)[:, None] & cm[None, :])
    fh, fc = fm[:, None] & hm[None, :], fm[:, None] & cm[None, :]
    tl.atomic_add(DWM + rh[None, :] * FE + rf[:, None], g_wms, mask=fh)
    tl.atomic_add(DWM + (H + rc[None, :]) * FE + rf[:, None], g_wmp, mask=fc)
    tl.atomic_add(DWA + rh[None, :] * FE + rf[:, None], g_was, mask=fh)
    tl.atomic_add(DWA + (H + rc[None, :]) * FE + rf[:, None], g_wap, mask=fc)
    tl.atomic_add(DBM + rh, g_bms, mask=hm)
    tl.atomic_add(DBM + H + rc, g_bmp, mask=cm)
    tl.atomic_add(DBA + rh, g_bas, mask=hm)
    tl.atomic_add(DBA + H + rc, g_bap, mask=cm)
    tl.atomic_add(DWO + ro[None, :] * hc + rh[:, None], g_wos, mask=om[None, :] & hm[:, None])
    tl.atomic_add(DWO + ro[None, :] * hc + H + rc[:, None], g_wop, mask=om[None, :] & cm[:, None])
    tl.atomic_add(DBO + ro, g_bo, mask=om)


def _pow2(n: int) -> int:
    return max(16, triton.next_power_of_2(int(n)))


def _interpreting() -> bool:
    return os.environ.get("TRITON_INTERPRET", "") not in ("", "0")


# Launch configurations per product precision, (forward, backward): tiles of BI query rows x BJ keys, the backward
# program walks RB such row blocks. To be chosen by benchmarks/gpu_attention_sweep.py on a GPU (not run yet: these
# are the starting points). IEEE products take tiles of 16 pairs: with 32 or more, ptxas (Triton 3.9, sm_80 and
# sm_90) gives the kernels 32 registers and spills 10-34 KB (`python tests/kernels/gpu_compile.py --tf32` reports
# registers and spills). tests/kernels/gpu_compile.py checks that they compile for sm_90.
CONFIGS = {
    "bf16": (dict(BI=4, BJ=32, num_warps=8, num_stages=1), dict(BI=2, BJ=32, RB=8, num_warps=8, num_stages=1)),
    "tf32": (dict(BI=4, BJ=32, num_warps=8, num_stages=1), dict(BI=2, BJ=32, RB=8, num_warps=8, num_stages=1)),
    "ieee": (dict(BI=1, BJ=16, num_warps=4, num_stages=1), dict(BI=1, BJ=16, RB=16, num_warps=4, num_stages=1)),
}


def _tiles(n: int, config: dict) -> dict:
    """Tile sizes for graphs of ``n`` slots: ``config``'s on a GPU; the interpreter runs faster with one large tile
    per query row and one row block per program."""
    if not _interpreting():
        return {k: config[k] for k in ("BI", "BJ", "RB") if k in config}
    out = dict(BI=1, BJ=min(64, _pow2(n)))
    return {**out, "RB": 1} if "RB" in config else out


def _precision(dtype: torch.dtype) -> str:
    """Precision of the in-kernel matrix products: bf16 tensor-core products for bf16 inputs and under bf16
    autocast (as torch's linear layers there); for fp32 inputs, torch's float32 matmul precision: IEEE fp32 under its
    default (``"highest"``), TF32 where the user allowed it (``torch.set_float32_matmul_precision("high")``), as for
    torch's own matrix products. Triton's interpreter (tests on CPU) multiplies bf16 tiles as raw integers, so there
    every product is IEEE fp32."""
    if _interpreting():
        return "ieee" if dtype == torch.bfloat16 or torch.get_float32_matmul_precision() == "highest" else "tf32"
    if dtype == torch.bfloat16 or (torch.is_autocast_enabled("cuda")
                                   and torch.get_autocast_dtype("cuda") == torch.bfloat16):
        return "bf16"
    return "ieee" if torch.get_float32_matmul_precision() == "highest" else "tf32"


def _launch_sizes(e: Tensor, qe: Tensor, w_out: Tensor, h: int, backward: bool) -> dict:
    prec = _precision(e.dtype)
    config = CONFIGS[prec][int(backward)]
    options = {k: v for k, v in config.items() if k.startswith("num_")}
    return dict(HP=_pow2(h), DEP=_pow2(qe.shape[-1]), FEP=_pow2(e.shape[-1]), DOP=_pow2(w_out.shape[0]), PREC=prec,
                **_tiles(e.shape[1], config), **options)


def _out_dtype(e: Tensor) -> torch.dtype:
    """The new edge features' dtype: the autocast dtype under autocast (as the reference's last linear map gives),
    ``e``'s otherwise."""
    if e.is_cuda and torch.is_autocast_enabled("cuda"):
        return torch.get_autocast_dtype("cuda")
    return e.dtype


def _launch_forward(scores, qe, ke, e, mask8, w_mul, b_mul, w_add, b_add, w_out, b_out, sizes):
    b, h, n, _ = scores.shape
    de, fe, do = qe.shape[-1], e.shape[-1], w_out.shape[0]
    ps = torch.empty_like(scores)
    e_out = torch.empty((b, n, n, do), device=e.device, dtype=_out_dtype(e))
    if b * n:
        _pair_film_fwd[(b * triton.cdiv(n, sizes["BI"]),)](
            scores, qe, ke, e, mask8, w_mul, b_mul, w_add, b_add, w_out, b_out, ps, e_out, n, h, de, fe, do,
            1.0 / math.sqrt(de), **sizes)
    return ps, e_out


def _launch_backward(inputs, g_ps, g_e_out, sizes):
    scores, qe, ke, e, mask8, w_mul, b_mul, w_add, b_add, w_out, b_out = inputs
    b, h, n, _ = scores.shape
    de, fe, do = qe.shape[-1], e.shape[-1], w_out.shape[0]
    f32 = dict(device=e.device, dtype=torch.float32)
    g_s, g_e = torch.empty_like(scores), torch.empty_like(e)
    g_qe, g_ke = torch.empty(qe.shape, **f32), torch.zeros(ke.shape, **f32)
    g_w = [torch.zeros(t.shape, **f32) for t in (w_mul, b_mul, w_add, b_add, w_out, b_out)]
    if b * n:
        _pair_film_bwd[(b * triton.cdiv(n, sizes["BI"] * sizes["RB"]),)](
            scores, qe, ke, e, mask8, w_mul, b_mul, w_add, b_add, w_out, b_out, g_ps, g_e_out, g_s, g_qe, g_ke, g_e,
            *g_w, n, h, de, fe, do, 1.0 / math.sqrt(de), **sizes)
    weights = (w_mul, b_mul, w_add, b_add, w_out, b_out)
    return (g_s, g_qe.to(qe.dtype), g_ke.to(ke.dtype), g_e, None, *(g.to(w.dtype) for g, w in zip(g_w, weights)))


def _pair_film_reference(scores, qe, ke, e, mask, w_mul, b_mul, w_add, b_add, w_out, b_out):
    """What the two kernels compute, in torch (the fallback where a kernel does not fit the GPU): the modulated head
    scores ``[B, H, N, N]`` and the new edge features, as in the reference."""
    h, de = scores.shape[1], qe.shape[-1]
    prod = qe.unsqueeze(2) * ke.unsqueeze(1) / math.sqrt(de)
    pair = torch.cat([scores.permute(0, 2, 3, 1), prod], -1) * (F.linear(e, w_mul, b_mul) + 1.0) \
        + F.linear(e, w_add, b_add)
    pm = (mask[:, :, None] & mask[:, None, :]).unsqueeze(-1)
    return pair[..., :h].permute(0, 3, 1, 2), F.linear(pair, w_out, b_out) * pm.to(pair.dtype)


def _reference_grads(inputs, g_ps, g_e_out):
    """Gradients by recomputing :func:`_pair_film_reference` (the fallback of a backward kernel that cannot launch)."""
    leaves = [t if i == 4 else t.detach().requires_grad_() for i, t in enumerate(inputs)]
    with torch.enable_grad():
        out = _pair_film_reference(*leaves[:4], leaves[4].bool(), *leaves[5:])
        diff = [t for i, t in enumerate(leaves) if i != 4]
        grads = list(torch.autograd.grad(out, diff, (g_ps, g_e_out), allow_unused=True))
    grads = [torch.zeros_like(t) if g is None else g for g, t in zip(grads, diff)]
    return (*grads[:4], None, *grads[4:])


_WARNED: set = set()


def _fall_back(exc: Exception, allowed: bool, what: str) -> None:
    """Re-raise ``exc`` unless falling back to the reference is allowed; warn once per kind of failure."""
    if not allowed or not isinstance(exc, triton.runtime.errors.OutOfResources):
        raise exc
    if what not in _WARNED:
        _WARNED.add(what)
        warnings.warn(f"edge attention: the Triton {what} kernel does not fit this GPU ({exc}); the torch reference "
                      f"computes it instead (set GRAPHDIFF_KERNELS=reference to silence this)", stacklevel=4)


class _PairFilm(torch.autograd.Function):
    """``(scores [B, H, N, N], qe, ke, e, mask, weights) -> (modulated head scores [B, H, N, N], new edges)``."""

    @staticmethod
    def forward(ctx, fallback, scores, qe, ke, e, mask, w_mul, b_mul, w_add, b_add, w_out, b_out):
        inputs = tuple(t.contiguous() for t in (scores, qe, ke, e, mask.to(torch.int8), w_mul, b_mul, w_add, b_add,
                                                w_out, b_out))
        h = scores.shape[1]
        ctx.fallback, ctx.sizes = fallback, _launch_sizes(e, qe, w_out, h, backward=True)
        ctx.kernel = True
        try:
            ps, e_out = _launch_forward(*inputs, _launch_sizes(e, qe, w_out, h, backward=False))
        except Exception as exc:
            _fall_back(exc, fallback, "forward")
            ps, e_out = _pair_film_reference(scores, qe, ke, e, mask, w_mul, b_mul, w_add, b_add, w_out, b_out)
            ctx.kernel = False
        ctx.save_for_backward(*inputs)
        return ps, e_out

    @staticmethod
    def backward(ctx, g_ps, g_e_out):
        inputs = ctx.saved_tensors
        g_ps, g_e_out = g_ps.contiguous(), g_e_out.contiguous()
        if ctx.kernel:
            try:
                return (None, *_launch_backward(inputs, g_ps, g_e_out, ctx.sizes))
            except Exception as exc:
                _fall_back(exc, ctx.fallback, "backward")
        return (None, *_reference_grads(inputs, g_ps, g_e_out))


def edge_attention_triton(q: Tensor, k: Tensor, v: Tensor, qe: Tensor, ke: Tensor, e: Tensor, mask: Tensor,
                          w_mul: Tensor, b_mul: Tensor, w_add: Tensor, b_add: Tensor, w_out: Tensor, b_out: Tensor, *,
                          fallback: bool = False) -> tuple[Tensor, Tensor]:
    """The Triton route of :func:`~graphdiff.kernels.reference.edge_attention_reference` (same arguments, same
    results up to float rounding; differentiable): the pair-level part in the kernels, the head scores, masked
    softmax and value aggregation as torch batched products.

    Args:
        fallback: where a kernel needs more GPU resources (shared memory, registers) than the device has, compute
            that pass with torch, with a warning, instead of raising Triton's ``OutOfResources``.
    """
    dh = q.shape[-1]
    qt, kt, vt = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)  # [B, H, N, Dh]
    scores = torch.matmul(qt, kt.transpose(-1, -2)) / math.sqrt(dh)
    ps, e_out = _PairFilm.apply(fallback, scores, qe, ke, e, mask, w_mul, b_mul, w_add, b_add, w_out, b_out)
    keys = mask[:, None, None, :]
    logits = ps.masked_fill(~keys, torch.finfo(ps.dtype).min)
    attn = torch.softmax(logits, dim=-1) * keys.to(ps.dtype)
    x = torch.matmul(attn, vt).transpose(1, 2) * mask[:, :, None, None].to(v.dtype)
    return x, e_out

