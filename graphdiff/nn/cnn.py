"""ConvDenoiser: a plain convolutional U-Net on the same fixed-grid states, the baseline of :mod:`graphdiff.nn.grid`.

The image is rebuilt from the state (node values placed by their ``pos`` row and column), run through 3x3
convolutions with GroupNorm, noise-level conditioning, 2x average pooling and nearest upsampling, and read back per
node. Same interface and the same U-Net shape (levels, residual blocks) as :class:`~graphdiff.nn.grid.GridDenoiser`;
the benchmark picks ``hidden`` so that both have the same number of parameters.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..errors import SchemaError
from ..state import GraphState
from .layers import timestep_embedding


def _groups(c: int) -> int:
    for g in (8, 4, 2):
        if c % g == 0:
            return g
    return 1


class ConvBlock(nn.Module):
    """Residual block ``h + conv(SiLU(GN(h)) + emb)``."""

    def __init__(self, hidden: int, emb: int):
        super().__init__()
        self.norm = nn.GroupNorm(_groups(hidden), hidden)
        self.conv = nn.Conv2d(hidden, hidden, 3, padding=1)
        self.emb = nn.Linear(emb, hidden)
        self.out = nn.Conv2d(hidden, hidden, 1)

    def forward(self, h: Tensor, emb: Tensor) -> Tensor:
        u = self.conv(nn.functional.silu(self.norm(h))) + self.emb(emb)[:, :, None, None]
        return h + self.out(nn.functional.silu(u))


class ConvDenoiser(nn.Module):
    """Convolutional U-Net baseline (model name ``cnn``); arguments as :class:`~graphdiff.nn.grid.GridDenoiser`
    (``edge_kinds`` is accepted and unused: the convolution reads the grid from the positions, so a grid-graph preset
    can switch ``model.name`` alone).

    Shapes:
        state.x ``[B, H*W, C]`` with state.pos ``[B, H*W, 3]`` on a full grid, t ``[B]`` -> x ``[B, H*W, C]``.
    """

    def __init__(self, *, x_dim: int, max_nodes: int, hidden: int = 48, levels: int = 2, blocks: int = 2,
                 cond_dim: int = 0, emb: int = 64, edge_kinds: int | None = None):
        super().__init__()
        self.x_dim, self.max_nodes, self.levels, self.emb_dim = x_dim, max_nodes, levels, emb
        self.inp = nn.Conv2d(x_dim, hidden, 3, padding=1)
        self.t_mlp = nn.Sequential(nn.Linear(emb, emb), nn.SiLU(), nn.Linear(emb, emb))
        self.cond = nn.Linear(cond_dim, emb) if cond_dim else None
        self.down = nn.ModuleList(nn.ModuleList(ConvBlock(hidden, emb) for _ in range(blocks)) for _ in range(levels))
        self.up = nn.ModuleList(nn.ModuleList(ConvBlock(hidden, emb) for _ in range(blocks))
                                for _ in range(levels - 1))
        self.norm = nn.GroupNorm(_groups(hidden), hidden)
        self.head = nn.Conv2d(hidden, x_dim, 3, padding=1)

    @staticmethod
    def grid_index(pos0: Tensor) -> tuple[Tensor, int, int]:
        """Flat pixel index of each node and the grid size, from the rows and columns in ``pos0 [N, 3]``."""
        rows, r = torch.unique(pos0[:, 0], return_inverse=True)
        cols, c = torch.unique(pos0[:, 1], return_inverse=True)
        h, w = len(rows), len(cols)
        if h * w != pos0.shape[0]:
            raise SchemaError(f"cnn needs a full grid of nodes; {pos0.shape[0]} nodes on {h} x {w} positions")
        return r * w + c, h, w

    def forward(self, state: GraphState, t: Tensor, cond: Tensor | None = None) -> GraphState:
        if state.pos is None:
            raise SchemaError("cnn needs state.pos (pixel coordinates)")
        idx, hgt, wid = self.grid_index(state.pos[0])
        b = state.batch_size
        img = torch.zeros(b, hgt * wid, self.x_dim, device=state.x.device, dtype=state.x.dtype)
        img[:, idx] = state.x * state.mask.unsqueeze(-1)
        img = img.transpose(1, 2).reshape(b, self.x_dim, hgt, wid)
        t = torch.as_tensor(t, dtype=state.x.dtype, device=state.x.device).reshape(-1).expand(b)
        emb = self.t_mlp(timestep_embedding(t * 100.0, self.emb_dim))
        cond = state.y if cond is None else cond
        if self.cond is not None and cond is not None:
            emb = emb + self.cond(cond.to(emb.dtype))
        h = self.inp(img)
        skips = []
        for lv, blocks in enumerate(self.down):
            for blk in blocks:
                h = blk(h, emb)
            if lv < self.levels - 1:
                skips.append(h)
                h = nn.functional.avg_pool2d(h, 2, ceil_mode=True)
        for lv in range(self.levels - 2, -1, -1):
            s = skips[lv]
            h = nn.functional.interpolate(h, scale_factor=2, mode="nearest")[..., : s.shape[2], : s.shape[3]] + s
            for blk in self.up[lv]:
                h = blk(h, emb)
        out = self.head(nn.functional.silu(self.norm(h))).reshape(b, self.x_dim, -1).transpose(1, 2)
        return GraphState(x=out[:, idx] * state.mask.unsqueeze(-1), e=state.e, mask=state.mask, pos=state.pos,
                          y=state.y)


__all__ = ["ConvDenoiser", "ConvBlock"]
