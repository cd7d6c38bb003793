"""Triton kernel of the edge-conditioned attention (:func:`~graphdiff.kernels.reference.edge_attention_reference`).

One program per query row ``(b, i)`` walks the keys in blocks of ``BJ``: it loads the edge features ``e[b, i, j]``
once, applies the FiLM maps, the score-to-edge map and an online (running maximum) softmax in registers, and writes
only the outputs ``x [B, N, H, Dh]``, ``e_out [B, N, N, Do]`` and the per-row log-sum-exp ``[B, N, H]``. None of the
``[B, N, N, H + De]`` intermediates of the reference (FiLM maps, modulated scores, attention) reaches memory.

The backward pass recomputes them per block from the inputs and the saved log-sum-exp (FlashAttention-style). Each
program handles ``ROWS`` query rows; gradients of per-pair and per-row quantities are written directly, gradients of
keys, values and the weights (shared across rows) are accumulated with fp32 atomics. Arithmetic is fp32 whatever
the input dtype (fp32 or bf16); matrix products use IEEE fp32, or TF32 where torch's float32 matmul precision allows
it (:func:`_precision`).
"""

from __future__ import annotations

import math
import os
import warnings

import torch
import triton
import triton.language as tl
from torch import Tensor

from .reference import edge_attention_reference

__all__ = ["edge_attention_triton"]


@triton.jit
def _load_weights(WM, BM, WA, BA, WO, BO, H, DE, FE, DO, HP: tl.constexpr, DEP: tl.constexpr, FEP: tl.constexpr,
                  DOP: tl.constexpr):
    rh, rc, rf, ro = tl.arange(0, HP), tl.arange(0, DEP), tl.arange(0, FEP), tl.arange(0, DOP)
    hm, cm, fm, om = rh < H, rc < DE, rf < FE, ro < DO
    hc = H + DE
    # FiLM maps transposed for [BJ, Fe] @ [Fe, *]: W[h, f] sits at h * Fe + f
    wms = tl.load(WM + rh[None, :] * FE + rf[:, None], mask=hm[None, :] & fm[:, None], other=0.0).to(tl.float32)
    wmp = tl.load(WM + (H + rc[None, :]) * FE + rf[:, None], mask=cm[None, :] & fm[:, None], other=0.0).to(tl.float32)
    was = tl.load(WA + rh[None, :] * FE + rf[:, None], mask=hm[None, :] & fm[:, None], other=0.0).to(tl.float32)
    wap = tl.load(WA + (H + rc[None, :]) * FE + rf[:, None], mask=cm[None, :] & fm[:, None], other=0.0).to(tl.float32)
    bms = tl.load(BM + rh, mask=hm, other=0.0).to(tl.float32)
    bmp = tl.load(BM + H + rc, mask=cm, other=0.0).to(tl.float32)
    bas = tl.load(BA + rh, mask=hm, other=0.0).to(tl.float32)
    bap = tl.load(BA + H + rc, mask=cm, other=0.0).to(tl.float32)
    # score-to-edge map transposed: W_out[o, c] sits at o * (H + De) + c
    wos = tl.load(WO + ro[None, :] * hc + rh[:, None], mask=om[None, :] & hm[:, None], other=0.0).to(tl.float32)
    wop = tl.load(WO + ro[None, :] * hc + H + rc[:, None], mask=om[None, :] & cm[:, None], other=0.0).to(tl.float32)
    bo = tl.load(BO + ro, mask=om, other=0.0).to(tl.float32)
    return wms, wmp, was, wap, bms, bmp, bas, bap, wos, wop, bo


@triton.jit
def _pair_block(K, KE, E, row, cols, jm, q, qe, wms, wmp, was, wap, bms, bmp, bas, bap, N, H, DH, DE,
                FE, scale, scale_e, HP: tl.constexpr, DHP: tl.constexpr, DEP: tl.constexpr, FEP: tl.constexpr,
                PREC: tl.constexpr):
    """Recompute a block of keys: edge tile, FiLM maps, raw scores and modulated scores."""
    rh, rd, rc, rf = tl.arange(0, HP), tl.arange(0, DHP), tl.arange(0, DEP), tl.arange(0, FEP)
    hd = (rh < H)[:, None] & (rd < DH)[None, :]
    cm, fm = rc < DE, rf < FE
    krow = (row // N) * N + cols
    et = tl.load(E + (row * N + cols)[:, None] * FE + rf[None, :], mask=jm[:, None] & fm[None, :],
                 other=0.0).to(tl.float32)
    ms = tl.dot(et, wms, input_precision=PREC) + bms[None, :]
    mp = tl.dot(et, wmp, input_precision=PREC) + bmp[None, :]
    ad_s = tl.dot(et, was, input_precision=PREC) + bas[None, :]
    ad_p = tl.dot(et, wap, input_precision=PREC) + bap[None, :]
    kt = tl.load(K + krow[:, None, None] * (H * DH) + rh[None, :, None] * DH + rd[None, None, :],
                 mask=jm[:, None, None] & hd[None, :, :], other=0.0).to(tl.float32)
    s = tl.sum(kt * q[None, :, :], axis=2) * scale
    ket = tl.load(KE + krow[:, None] * DE + rc[None, :], mask=jm[:, None] & cm[None, :], other=0.0).to(tl.float32)
    r = ket * qe[None, :] * scale_e
    ps = s * (1.0 + ms) + ad_s
    pp = r * (1.0 + mp) + ad_p
    return et, kt, ket, krow, ms, mp, s, r, ps, pp


@triton.jit
def _edge_attention_fwd(Q, K, V, QE, KE, E, MASK, WM, BM, WA, BA, WO, BO, XO, EO, LSE, N, H, DH, DE, FE, DO,
                        scale, scale_e, BJ: tl.constexpr, HP: tl.constexpr, DHP: tl.constexpr, DEP: tl.constexpr,
                        FEP: tl.constexpr, DOP: tl.constexpr, PREC: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)  # b * N + i
    base = (row // N) * N
    rh, rd, rc, ro, rj = tl.arange(0, HP), tl.arange(0, DHP), tl.arange(0, DEP), tl.arange(0, DOP), tl.arange(0, BJ)
    hm = rh < H
    hd = hm[:, None] & (rd < DH)[None, :]
    om = ro < DO
    row_ok = tl.load(MASK + row) != 0
    q = tl.load(Q + row * (H * DH) + rh[:, None] * DH + rd[None, :], mask=hd, other=0.0).to(tl.float32)
    qe = tl.load(QE + row * DE + rc, mask=rc < DE, other=0.0).to(tl.float32)
    wms, wmp, was, wap, bms, bmp, bas, bap, wos, wop, bo = _load_weights(WM, BM, WA, BA, WO, BO, H, DE, FE, DO, HP,
                                                                         DEP, FEP, DOP)
    m_i = tl.full([HP], -1e30, tl.float32)
    l_i = tl.zeros([HP], tl.float32)
    acc = tl.zeros([HP, DHP], tl.float32)
    for j0 in range(0, N, BJ):
        cols = j0 + rj
        jm = cols < N
        key_ok = (tl.load(MASK + base + cols, mask=jm, other=0) != 0) & jm
        et, kt, ket, krow, ms, mp, s, r, ps, pp = _pair_block(K, KE, E, row, cols, jm, q, qe, wms, wmp, was,
                                                              wap, bms, bmp, bas, bap, N, H, DH, DE, FE, scale,
                                                              scale_e, HP, DHP, DEP, FEP, PREC)
        eo = tl.dot(ps, wos, input_precision=PREC) + tl.dot(pp, wop, input_precision=PREC) + bo[None, :]
        eo = tl.where((key_ok & row_ok)[:, None], eo, 0.0)
        tl.store(EO + (row * N + cols)[:, None] * DO + ro[None, :], eo.to(EO.dtype.element_ty),
                 mask=jm[:, None] & om[None, :])
        logit = tl.where(key_ok[:, None], ps, -1e30)
        m_new = tl.maximum(m_i, tl.max(logit, axis=0))
        p = tl.where(key_ok[:, None], tl.exp(logit - m_new[None, :]), 0.0)
        alpha = tl.exp(m_i - m_new)
        l_i = l_i * alpha + tl.sum(p, axis=0)
        vt = tl.load(V + krow[:, None, None] * (H * DH) + rh[None, :, None] * DH + rd[None, None, :],
                     mask=jm[:, None, None] & hd[None, :, :], other=0.0).to(tl.float32)
        acc = acc * alpha[:, None] + tl.sum(p[:, :, None] * vt, axis=0)
        m_i = m_new
    has = (l_i > 0) & row_ok
    l_safe = tl.where(has, l_i, 1.0)
    out = tl.where(has[:, None], acc / l_safe[:, None], 0.0)
    tl.store(XO + row * (H * DH) + rh[:, None] * DH + rd[None, :], out.to(XO.dtype.element_ty), mask=hd)
    tl.store(LSE + row * H + rh, m_i + tl.log(l_safe), mask=hm)


@triton.jit
def _edge_attention_bwd(Q, K, V, QE, KE, E, MASK, WM, BM, WA, BA, WO, BO, XO, LSE, DXO, DEO,
                        DQ, DK, DV, DQE, DKE, DEE, DWM, DBM, DWA, DBA, DWO, DBO, N, H, DH, DE, FE, DO, scale, scale_e,
                        ROWS: tl.constexpr, BJ: tl.constexpr, HP: tl.constexpr, DHP: tl.constexpr,
                        DEP: tl.constexpr, FEP: tl.constexpr, DOP: tl.constexpr, PREC: tl.constexpr):
    pid = tl.program_id(0).to(tl.int64)
    blocks = tl.cdiv(N, ROWS)
    b = pid // blocks
    i0 = (pid % blocks) * ROWS
    base = b * N
    rh, rd, rc, rf = tl.arange(0, HP), tl.arange(0, DHP), tl.arange(0, DEP), tl.arange(0, FEP)
    ro, rj = tl.arange(0, DOP), tl.arange(0, BJ)
    hm, cm, fm, om = rh < H, rc < DE, rf < FE, ro < DO
    hd = hm[:, None] & (rd < DH)[None, :]
    hc = H + DE
    wms, wmp, was, wap, bms, bmp, bas, bap, wos, wop, bo = _load_weights(WM, BM, WA, BA, WO, BO, H, DE, FE, DO, HP,
                                                                         DEP, FEP, DOP)
    g_wms = tl.zeros([HP, FEP], tl.float32)
    g_wmp = tl.zeros([DEP, FEP], tl.float32)
    g_was = tl.zeros([HP, FEP], tl.float32)
    g_wap = tl.zeros([DEP, FEP], tl.float32)
    g_bms = tl.zeros([HP], tl.float32)
    g_bmp = tl.zeros([DEP], tl.float32)
    g_bas = tl.zeros([HP], tl.float32)
    g_bap = tl.zeros([DEP], tl.float32)
    g_wos = tl.zeros([DOP, HP], tl.float32)
    g_wop = tl.zeros([DOP, DEP], tl.float32)
    g_bo = tl.zeros([DOP], tl.float32)
    for ii in range(0, ROWS):
        # row validity as vectors: the interpreter rejects a scalar bool combined with a tensor mask
        i = i0 + ii
        row = base + i
        i_h, i_c, i_j = (rh * 0 + i) < N, (rc * 0 + i) < N, (rj * 0 + i) < N
        row_h = (tl.load(MASK + row + rh * 0, mask=i_h, other=0) != 0) & i_h
        row_j = (tl.load(MASK + row + rj * 0, mask=i_j, other=0) != 0) & i_j
        q = tl.load(Q + row * (H * DH) + rh[:, None] * DH + rd[None, :], mask=hd & i_h[:, None],
                    other=0.0).to(tl.float32)
        qe = tl.load(QE + row * DE + rc, mask=cm & i_c, other=0.0).to(tl.float32)
        g_o = tl.load(DXO + row * (H * DH) + rh[:, None] * DH + rd[None, :], mask=hd & row_h[:, None],
                      other=0.0).to(tl.float32)
        o = tl.load(XO + row * (H * DH) + rh[:, None] * DH + rd[None, :], mask=hd & row_h[:, None],
                    other=0.0).to(tl.float32)
        delta = tl.sum(g_o * o, axis=1)
        lse = tl.load(LSE + row * H + rh, mask=hm & i_h, other=0.0)
        g_q = tl.zeros([HP, DHP], tl.float32)
        g_qe = tl.zeros([DEP], tl.float32)
        for j0 in range(0, N, BJ):
            cols = j0 + rj
            jm = (cols < N) & i_j
            key_ok = (tl.load(MASK + base + cols, mask=jm, other=0) != 0) & jm
            et, kt, ket, krow, ms, mp, s, r, ps, pp = _pair_block(K, KE, E, row, cols, jm, q, qe, wms, wmp,
                                                                  was, wap, bms, bmp, bas, bap, N, H, DH, DE, FE,
                                                                  scale, scale_e, HP, DHP, DEP, FEP, PREC)
            g_eo = tl.load(DEO + (row * N + cols)[:, None] * DO + ro[None, :],
                           mask=(key_ok & row_j)[:, None] & om[None, :], other=0.0).to(tl.float32)
            g_ps = tl.dot(g_eo, tl.trans(wos), input_precision=PREC)
            g_pp = tl.dot(g_eo, tl.trans(wop), input_precision=PREC)
            g_wos += tl.dot(tl.trans(g_eo), ps, input_precision=PREC)
            g_wop += tl.dot(tl.trans(g_eo), pp, input_precision=PREC)
            g_bo += tl.sum(g_eo, axis=0)
            p = tl.exp(tl.where(key_ok[:, None], ps - lse[None, :], float("-inf")))
            vmask = jm[:, None, None] & hd[None, :, :]
            vptr = krow[:, None, None] * (H * DH) + rh[None, :, None] * DH + rd[None, None, :]
            vt = tl.load(V + vptr, mask=vmask, other=0.0).to(tl.float32)
            tl.atomic_add(DV + vptr, p[:, :, None] * g_o[None, :, :], mask=vmask & key_ok[:, None, None])
            g_p = tl.sum(g_o[None, :, :] * vt, axis=2)
            g_ps += p * (g_p - delta[None, :])
            g_s = g_ps * (1.0 + ms) * scale
            g_ms = g_ps * s
            g_r = g_pp * (1.0 + mp) * scale_e
            g_mp = g_pp * r
            g_q += tl.sum(g_s[:, :, None] * kt, axis=0)
            tl.atomic_add(DK + vptr, g_s[:, :, None] * q[None, :, :], mask=vmask)
            g_qe += tl.sum(g_r * ket, axis=0)
            tl.atomic_add(DKE + krow[:, None] * DE + rc[None, :], g_r * qe[None, :], mask=jm[:, None] & cm[None, :])
            g_e = (tl.dot(g_ms, tl.trans(wms), input_precision=PREC) + tl.dot(g_mp, tl.trans(wmp), input_precision=PREC)
                   + tl.dot(g_ps, tl.trans(was), input_precision=PREC)
                   + tl.dot(g_pp, tl.trans(wap), input_precision=PREC))
            tl.store(DEE + (row * N + cols)[:, None] * FE + rf[None, :], g_e.to(DEE.dtype.element_ty),
                     mask=jm[:, None] & fm[None, :])
            g_wms += tl.dot(tl.trans(g_ms), et, input_precision=PREC)
            g_wmp += tl.dot(tl.trans(g_mp), et, input_precision=PREC)
            g_was += tl.dot(tl.trans(g_ps), et, input_precision=PREC)
            g_wap += tl.dot(tl.trans(g_pp), et, input_precision=PREC)
            g_bms += tl.sum(g_ms, axis=0)
            g_bmp += tl.sum(g_mp, axis=0)
            g_bas += tl.sum(g_ps, axis=0)
            g_bap += tl.sum(g_pp, axis=0)
        tl.store(DQ + row * (H * DH) + rh[:, None] * DH + rd[None, :], g_q.to(DQ.dtype.element_ty),
                 mask=hd & i_h[:, None])
        tl.store(DQE + row * DE + rc, g_qe.to(DQE.dtype.element_ty), mask=cm & i_c)
    hf, cf = hm[:, None] & fm[None, :], cm[:, None] & fm[None, :]
    tl.atomic_add(DWM + rh[:, None] * FE + rf[None, :], g_wms, mask=hf)
    tl.atomic_add(DWM + (H + rc[:, None]) * FE + rf[None, :], g_wmp, mask=cf)
    tl.atomic_add(DWA + rh[:, None] * FE + rf[None, :], g_was, mask=hf)
    tl.atomic_add(DWA + (H + rc[:, None]) * FE + rf[None, :], g_wap, mask=cf)
    tl.atomic_add(DBM + rh, g_bms, mask=hm)
    tl.atomic_add(DBM + H + rc, g_bmp, mask=cm)
    tl.atomic_add(DBA + rh, g_bas, mask=hm)
    tl.atomic_add(DBA + H + rc, g_bap, mask=cm)
    tl.atomic_add(DWO + ro[:, None] * hc + rh[None, :], g_wos, mask=om[:, None] & hm[None, :])
    tl.atomic_add(DWO + ro[:, None] * hc + H + rc[None, :], g_wop, mask=om[:, None] & cm[None, :])
    tl.atomic_add(DBO + ro, g_bo, mask=om)


def _pow2(n: int) -> int:
    return max(16, triton.next_power_of_2(int(n)))


def _interpreting() -> bool:
    return os.environ.get("TRITON_INTERPRET", "") not in ("", "0")


def _key_block(n: int, gpu_block: int) -> int:
    """Keys per block: ``gpu_block`` on a GPU (the launch configurations below); the interpreter runs faster with
    fewer, larger blocks."""
    return min(64, _pow2(n)) if _interpreting() else gpu_block


def _row_block() -> int:
    """Query rows per backward program (the weight-gradient atomics are issued once per program)."""
    return 4 if _interpreting() else 16


# Launch configurations from a sweep on an H200 (benchmarks/gpu_attention_sweep.py at N = 256, fp32; results in
# benchmarks/results/kernels-h200/sweep-fp32-256.json): the forward pass is fastest with 32 keys per block and
# 4 warps (7.7 ms against 12.6 ms with 16 keys and 8 warps, IEEE products), the backward with 16 keys and 8 warps
# (its weight-gradient accumulators spill registers; with 4 warps it is 3x slower). No software pipelining of the key
# loop. tests/kernels/gpu_compile.py checks their shared memory for sm_90 without a GPU.
FORWARD = dict(BJ=32, num_warps=4, num_stages=1)
BACKWARD = dict(BJ=16, num_warps=8, num_stages=1)


def _precision() -> str:
    """Precision of the in-kernel matrix products, following torch's float32 matmul precision: IEEE fp32 under
    torch's default (``"highest"``), TF32 tensor-core products where the user allowed them
    (``torch.set_float32_matmul_precision("high")``): about 4x faster forward and 2x faster backward on an H200, outputs
    within about 1e-2 of the reference instead of 1e-6. A GPU with less than about 115 KB of shared memory per block
    runs the TF32 backward through the reference under ``auto`` (see :func:`_fall_back`)."""
    return "ieee" if torch.get_float32_matmul_precision() == "highest" else "tf32"


def _launch_sizes(q: Tensor, qe: Tensor, e: Tensor, w_out: Tensor, config: dict) -> dict:
    _, n, h, dh = q.shape
    return dict(HP=_pow2(h), DHP=_pow2(dh), DEP=_pow2(qe.shape[-1]), FEP=_pow2(e.shape[-1]),
                DOP=_pow2(w_out.shape[0]), PREC=_precision(), **{**config, "BJ": _key_block(n, config["BJ"])})


def _launch_forward(q, k, v, qe, ke, e, mask8, w_mul, b_mul, w_add, b_add, w_out, b_out, sizes):
    b, n, h, dh = q.shape
    de, fe, do = qe.shape[-1], e.shape[-1], w_out.shape[0]
    x = torch.empty_like(q)
    e_out = torch.empty((b, n, n, do), device=q.device, dtype=q.dtype)
    lse = torch.empty((b, n, h), device=q.device, dtype=torch.float32)
    if b * n:
        _edge_attention_fwd[(b * n,)](q, k, v, qe, ke, e, mask8, w_mul, b_mul, w_add, b_add, w_out, b_out, x, e_out,
                                      lse, n, h, dh, de, fe, do, 1.0 / math.sqrt(dh), 1.0 / math.sqrt(de), **sizes)
    return x, e_out, lse


def _launch_backward(inputs, x, lse, g_x, g_e_out, sizes):
    q, k, v, qe, ke, e, mask8, w_mul, b_mul, w_add, b_add, w_out, b_out = inputs
    b, n, h, dh = q.shape
    de, fe, do = qe.shape[-1], e.shape[-1], w_out.shape[0]
    f32 = dict(device=q.device, dtype=torch.float32)
    g_q, g_qe, g_e = torch.zeros_like(q), torch.zeros_like(qe), torch.zeros_like(e)
    g_k, g_v, g_ke = torch.zeros(k.shape, **f32), torch.zeros(v.shape, **f32), torch.zeros(ke.shape, **f32)
    g_w = [torch.zeros(t.shape, **f32) for t in (w_mul, b_mul, w_add, b_add, w_out, b_out)]
    rows = _row_block()
    if b * n:
        _edge_attention_bwd[(b * triton.cdiv(n, rows),)](
            q, k, v, qe, ke, e, mask8, w_mul, b_mul, w_add, b_add, w_out, b_out, x, lse, g_x, g_e_out,
            g_q, g_k, g_v, g_qe, g_ke, g_e, *g_w, n, h, dh, de, fe, do, 1.0 / math.sqrt(dh), 1.0 / math.sqrt(de),
            ROWS=rows, **sizes)
    weights = (w_mul, b_mul, w_add, b_add, w_out, b_out)
    return (g_q, g_k.to(k.dtype), g_v.to(v.dtype), g_qe, g_ke.to(ke.dtype), g_e, None,
            *(g.to(w.dtype) for g, w in zip(g_w, weights)))


def _reference_grads(inputs, g_x, g_e_out):
    """Gradients by recomputing the reference (the fallback of a kernel that cannot launch on this device)."""
    leaves = [t if i == 6 else t.detach().requires_grad_() for i, t in enumerate(inputs)]
    mask = leaves[6].bool()
    with torch.enable_grad():
        x, e_out = edge_attention_reference(*leaves[:6], mask, *leaves[7:])
        diff = [t for i, t in enumerate(leaves) if i != 6]
        grads = list(torch.autograd.grad((x, e_out), diff, (g_x, g_e_out), allow_unused=True))
    grads = [torch.zeros_like(t) if g is None else g for g, t in zip(grads, diff)]
    return (*grads[:6], None, *grads[6:])


_WARNED: set = set()


def _fall_back(exc: Exception, allowed: bool, what: str) -> None:
    """Re-raise ``exc`` unless falling back to the reference is allowed; warn once per kind of failure."""
    if not allowed or not isinstance(exc, triton.runtime.errors.OutOfResources):
        raise exc
    if what not in _WARNED:
        _WARNED.add(what)
        warnings.warn(f"edge attention: the Triton {what} kernel does not fit this GPU ({exc}); the torch reference "
                      f"computes it instead (set GRAPHDIFF_KERNELS=reference to silence this)", stacklevel=4)


class _EdgeAttention(torch.autograd.Function):
    @staticmethod
    def forward(ctx, fallback, q, k, v, qe, ke, e, mask, w_mul, b_mul, w_add, b_add, w_out, b_out):
        inputs = tuple(t.contiguous() for t in (q, k, v, qe, ke, e, mask.to(torch.int8), w_mul, b_mul, w_add, b_add,
                                                w_out, b_out))
        ctx.fallback, ctx.sizes = fallback, _launch_sizes(q, qe, e, w_out, BACKWARD)
        try:
            x, e_out, lse = _launch_forward(*inputs, _launch_sizes(q, qe, e, w_out, FORWARD))
        except Exception as exc:
            _fall_back(exc, fallback, "forward")
            x, e_out = edge_attention_reference(q, k, v, qe, ke, e, mask, w_mul, b_mul, w_add, b_add, w_out, b_out)
            lse = None
        ctx.save_for_backward(*inputs, x, lse)
        return x, e_out

    @staticmethod
    def backward(ctx, g_x, g_e_out):
        *inputs, x, lse = ctx.saved_tensors
        g_x, g_e_out = g_x.contiguous(), g_e_out.contiguous()
        if lse is not None:
            try:
                return (None, *_launch_backward(inputs, x, lse, g_x, g_e_out, ctx.sizes))
            except Exception as exc:
                _fall_back(exc, ctx.fallback, "backward")
        return (None, *_reference_grads(inputs, g_x, g_e_out))


def edge_attention_triton(q: Tensor, k: Tensor, v: Tensor, qe: Tensor, ke: Tensor, e: Tensor, mask: Tensor,
                          w_mul: Tensor, b_mul: Tensor, w_add: Tensor, b_add: Tensor, w_out: Tensor, b_out: Tensor, *,
                          fallback: bool = False) -> tuple[Tensor, Tensor]:
    """The Triton kernel of :func:`~graphdiff.kernels.reference.edge_attention_reference` (same arguments, same
    results up to float rounding; differentiable).

    Args:
        fallback: where a kernel needs more GPU resources (shared memory, registers) than the device has, compute
            that pass with the torch reference, with a warning, instead of raising Triton's ``OutOfResources``.
    """
    return _EdgeAttention.apply(fallback, q, k, v, qe, ke, e, mask, w_mul, b_mul, w_add, b_add, w_out, b_out)
