"""Conv1dDenoiser: a 1-D convolutional U-Net on series windows, the baseline of :mod:`graphdiff.nn.grid` on paths.

A series window on the path graph (:class:`graphdiff.adapters.TimeSeriesPath`) is a sequence: the nodes are put in
time order by the first coordinate of ``pos`` and run through residual blocks of dilated 1-D convolutions (kernel 3,
dilation ``1, 2, 4, ...`` within a level) with GroupNorm and noise-level conditioning, 2x average pooling and
nearest upsampling between levels, and read back per node. No edge is read: the seasonal lag the graph denoiser sees
as an edge the convolution has to reach through its receptive field. Node inputs are the values and, as in
:class:`~graphdiff.nn.grid.GridDenoiser`, Fourier features of ``pos`` (``pos_freqs: 0`` leaves them out). Same
interface and U-Net shape (levels, residual blocks) as the graph denoiser; ``graphdiff bench run timeseries`` picks
``hidden`` so that both have the same number of parameters.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ..errors import SchemaError
from ..state import GraphState
from .cnn import _groups
from .layers import timestep_embedding


class DilatedBlock(nn.Module):
    """Residual block ``h + W_out SiLU(conv_d(SiLU(GN(h))) + emb)`` with a dilated kernel-3 convolution."""

    def __init__(self, hidden: int, emb: int, dilation: int, kernel: int = 3):
        super().__init__()
        self.norm = nn.GroupNorm(_groups(hidden), hidden)
        self.conv = nn.Conv1d(hidden, hidden, kernel, padding=dilation * (kernel - 1) // 2, dilation=dilation)
        self.emb = nn.Linear(emb, hidden)
        self.out = nn.Conv1d(hidden, hidden, 1)

    def forward(self, h: Tensor, emb: Tensor, mask: Tensor) -> Tensor:
        u = self.conv(nn.functional.silu(self.norm(h))) + self.emb(emb)[:, :, None]
        return (h + self.out(nn.functional.silu(u))) * mask


def _pool_mask(mask: Tensor) -> Tensor:
    return nn.functional.max_pool1d(mask, 2, ceil_mode=True)


class Conv1dDenoiser(nn.Module):
    """Dilated 1-D convolution U-Net on path-graph states (model name ``cnn1d``).

    Args:
        x_dim: value channels C (filled in by the process).
        max_nodes: L, steps per window (filled in by the process).
        hidden: channels of every convolution.
        levels: resolutions of the U-Net (1: no pooling).
        blocks: residual blocks per level on the way down (and up); block ``j`` of a level has dilation ``2^j``.
        kernel: odd kernel size of the dilated convolutions.
        pos_freqs: Fourier frequencies per ``pos`` coordinate fed as input channels (0: values only).
        cond_dim: width of the graph-level condition (0: unconditional).
        emb: width of the noise-level embedding.
        edge_kinds: accepted and unused (a ``grid_mpnn`` preset can switch ``model.name`` alone).

    Shapes:
        state.x ``[B, L, C]`` with state.pos ``[B, L, 3]`` (distinct first coordinates), t ``[B]`` -> x ``[B, L, C]``.
    """

    def __init__(self, *, x_dim: int, max_nodes: int, hidden: int = 64, levels: int = 3, blocks: int = 2,
                 kernel: int = 3, pos_freqs: int = 4, cond_dim: int = 0, emb: int = 64,
                 edge_kinds: int | None = None):
        super().__init__()
        if levels < 1 or blocks < 1 or kernel < 1 or kernel % 2 == 0:
            raise SchemaError(f"cnn1d needs levels >= 1, blocks >= 1 and an odd kernel, got {levels}, {blocks}, "
                              f"{kernel}")
        self.x_dim, self.max_nodes, self.levels, self.emb_dim, self.pos_freqs = x_dim, max_nodes, levels, emb, pos_freqs
        self.inp = nn.Conv1d(x_dim + 3 * 2 * pos_freqs, hidden, kernel, padding=kernel // 2)
        self.t_mlp = nn.Sequential(nn.Linear(emb, emb), nn.SiLU(), nn.Linear(emb, emb))
        self.cond = nn.Linear(cond_dim, emb) if cond_dim else None
        self.down = nn.ModuleList(nn.ModuleList(DilatedBlock(hidden, emb, 2**j, kernel) for j in range(blocks))
                                  for _ in range(levels))
        self.up = nn.ModuleList(nn.ModuleList(DilatedBlock(hidden, emb, 2**j, kernel) for j in range(blocks))
                                for _ in range(levels - 1))
        self.norm = nn.GroupNorm(_groups(hidden), hidden)
        self.head = nn.Conv1d(hidden, x_dim, kernel, padding=kernel // 2)

    @staticmethod
    def order(pos0: Tensor) -> Tensor:
        """The node indices in time order, from the first coordinate of ``pos0 [L, 3]``."""
        t = pos0[:, 0]
        if len(torch.unique(t)) != len(t):
            raise SchemaError(f"cnn1d needs a path of nodes with distinct time positions (pos[:, 0]); "
                              f"{len(t)} nodes share {len(torch.unique(t))} positions")
        return torch.argsort(t)

    def features(self, state: GraphState) -> Tensor:
        if not self.pos_freqs:
            return state.x
        freqs = (2.0 ** torch.arange(self.pos_freqs, device=state.x.device, dtype=state.x.dtype)) * math.pi / 2
        ang = state.pos.unsqueeze(-1) * freqs
        return torch.cat([state.x, ang.sin().flatten(2), ang.cos().flatten(2)], -1)

    def forward(self, state: GraphState, t: Tensor, cond: Tensor | None = None) -> GraphState:
        if state.pos is None:
            raise SchemaError("cnn1d needs state.pos (the time coordinate of each step)")
        if state.x.shape[-1] != self.x_dim:
            raise SchemaError(f"cnn1d wants x with {self.x_dim} channels, got {state.x.shape[-1]}")
        idx = self.order(state.pos[0])
        b = state.batch_size
        m = state.mask[:, idx].unsqueeze(1).to(state.x.dtype)  # [B, 1, L]
        h = self.features(state)[:, idx].transpose(1, 2) * m
        t = torch.as_tensor(t, dtype=state.x.dtype, device=state.x.device).reshape(-1).expand(b)
        emb = self.t_mlp(timestep_embedding(t * 100.0, self.emb_dim))
        cond = state.y if cond is None else cond
        if self.cond is not None and cond is not None:
            emb = emb + self.cond(cond.to(emb.dtype))
        h = self.inp(h) * m
        skips, masks = [], []
        for lv, blocks in enumerate(self.down):
            for blk in blocks:
                h = blk(h, emb, m)
            if lv < self.levels - 1:
                skips.append(h)
                masks.append(m)
                h = nn.functional.avg_pool1d(h, 2, ceil_mode=True)
                m = _pool_mask(m)
        for lv in range(self.levels - 2, -1, -1):
            s, m = skips[lv], masks[lv]
            h = (nn.functional.interpolate(h, scale_factor=2, mode="nearest")[..., : s.shape[2]] + s) * m
            for blk in self.up[lv]:
                h = blk(h, emb, m)
        out = (self.head(nn.functional.silu(self.norm(h))) * m).transpose(1, 2)
        x = torch.empty_like(out)
        x[:, idx] = out
        return GraphState(x=x * state.mask.unsqueeze(-1), e=state.e, mask=state.mask, pos=state.pos, y=state.y)


__all__ = ["Conv1dDenoiser", "DilatedBlock"]
