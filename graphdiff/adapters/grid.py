"""ImageGrid: images ``[B, C, H, W]`` as states on the fixed ``H x W`` grid graph, and PNG grids of images.

Pixel ``(r, c)`` is node ``r * W + c``; its ``C`` intensities, scaled from ``value_range`` to [-1, 1], are the node
features ``x``; 4-neighbour edges join horizontal and vertical neighbours (edge kind ``neighbour``), 8-neighbour
edges add the diagonals as a second kind (``axial``, ``diagonal``); ``pos`` holds ``(row, col, 0)`` in [-1, 1].
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ..errors import DataError
from ..state import GraphState
from .base import FixedGraphAdapter, register_adapter


@register_adapter
class ImageGrid(FixedGraphAdapter):
    """Images on the grid graph.

    Args:
        height, width: image size in pixels.
        channels: colour channels (1 for grey).
        connectivity: 4 or 8 neighbours.
        value_range: ``(lo, hi)`` of the raw intensities, mapped to [-1, 1] (digits: ``(0, 16)``).

    Shapes:
        images: ``[B, C, H, W]``; state ``x [B, H*W, C]``, ``e [B, H*W, H*W, 2 or 3]``, ``pos [B, H*W, 3]``.
    """

    kind = "grid"

    def __init__(self, height: int, width: int, channels: int = 1, connectivity: int = 4,
                 value_range: tuple[float, float] | list = (0.0, 1.0)):
        if connectivity not in (4, 8):
            raise DataError(f"ImageGrid connectivity must be 4 or 8, got {connectivity!r}")
        if min(int(height), int(width), int(channels)) < 1:
            raise DataError(f"ImageGrid needs positive height, width, channels, got {height}, {width}, {channels}")
        lo, hi = (float(v) for v in value_range)
        if not hi > lo:
            raise DataError(f"ImageGrid value_range must have hi > lo, got {list(value_range)}")
        self.height, self.width, self.channels = int(height), int(width), int(channels)
        self.connectivity, self.value_range = int(connectivity), (lo, hi)
        self.n_nodes = self.height * self.width
        self.edge_kinds = ("neighbour",) if connectivity == 4 else ("axial", "diagonal")

    def to_dict(self) -> dict:
        return {"adapter": self.kind, "height": self.height, "width": self.width, "channels": self.channels,
                "connectivity": self.connectivity, "value_range": list(self.value_range)}

    def channel_names(self) -> tuple[str, ...]:
        return ("intensity",) if self.channels == 1 else tuple(f"channel_{i}" for i in range(self.channels))

    # ---- geometry ------------------------------------------------------------------------------------
    def edge_list(self) -> Tensor:
        h, w = self.height, self.width
        idx = torch.arange(h * w).reshape(h, w)
        rows = [(idx[:, :-1], idx[:, 1:], 1), (idx[:-1, :], idx[1:, :], 1)]
        if self.connectivity == 8:
            rows += [(idx[:-1, :-1], idx[1:, 1:], 2), (idx[:-1, 1:], idx[1:, :-1], 2)]
        out = [torch.stack([a.reshape(-1), b.reshape(-1), torch.full((a.numel(),), k)], 1) for a, b, k in rows]
        return torch.cat(out)

    def positions(self) -> Tensor:
        r = torch.linspace(-1, 1, self.height) if self.height > 1 else torch.zeros(1)
        c = torch.linspace(-1, 1, self.width) if self.width > 1 else torch.zeros(1)
        rr, cc = torch.meshgrid(r, c, indexing="ij")
        return torch.stack([rr.reshape(-1), cc.reshape(-1), torch.zeros(self.n_nodes)], 1)

    # ---- data ----------------------------------------------------------------------------------------
    def _check(self, images) -> Tensor:
        images = torch.as_tensor(images, dtype=torch.float32)
        if images.dim() == 3 and self.channels == 1:
            images = images.unsqueeze(1)
        want = (self.channels, self.height, self.width)
        if images.dim() != 4 or tuple(images.shape[1:]) != want:
            raise DataError(f"ImageGrid wants images [B, {want[0]}, {want[1]}, {want[2]}], got "
                            f"{list(images.shape)}")
        return images

    def _nodes(self, data: Tensor) -> Tensor:
        data = self._check(data)
        return data.flatten(2).transpose(1, 2)

    def to_state(self, images, y: Tensor | None = None) -> GraphState:
        """Images ``[B, C, H, W]`` (or ``[B, H, W]`` grey) in ``value_range`` -> state; NaN pixels become 0 (the
        middle of the range); use :meth:`observation` to know which were missing."""
        lo, hi = self.value_range
        x = self._nodes(torch.nan_to_num(self._check(images), nan=(lo + hi) / 2))
        x = 2.0 * (x - lo) / (hi - lo) - 1.0
        t = self.template(x.shape[0], device=x.device)
        return GraphState(x=x, e=t.e, mask=t.mask, pos=t.pos, y=y)

    def from_state(self, state: GraphState) -> Tensor:
        """State -> images ``[B, C, H, W]`` in ``value_range`` (clamped)."""
        lo, hi = self.value_range
        x = state.x[..., : self.channels].clamp(-1, 1)
        img = (x + 1.0) / 2.0 * (hi - lo) + lo
        return img.transpose(1, 2).reshape(-1, self.channels, self.height, self.width)


def image_grid(images: Tensor | np.ndarray, nrow: int | None = None, value_range=(0.0, 1.0), pad: int = 1,
               scale: int = 4) -> np.ndarray:
    """Tile ``[B, C, H, W]`` images into one ``uint8`` picture (``[rows*H', cols*W']`` grey or ``[.., 3]``)."""
    imgs = torch.as_tensor(np.asarray(images), dtype=torch.float32)
    if imgs.dim() == 3:
        imgs = imgs.unsqueeze(1)
    b, c, h, w = imgs.shape
    lo, hi = value_range
    imgs = ((imgs - lo) / (hi - lo)).clamp(0, 1)
    imgs = imgs.repeat_interleave(scale, 2).repeat_interleave(scale, 3)
    h, w = h * scale, w * scale
    nrow = nrow or int(np.ceil(np.sqrt(b)))
    rows = int(np.ceil(b / nrow))
    canvas = torch.ones(c, rows * (h + pad) + pad, nrow * (w + pad) + pad)
    blank = 0.0 if c == 1 else 1.0  # cells past the last image: white paper (grey pictures are drawn inverted)
    for i in range(rows * nrow):
        r, q = divmod(i, nrow)
        canvas[:, pad + r * (h + pad): pad + r * (h + pad) + h,
               pad + q * (w + pad): pad + q * (w + pad) + w] = imgs[i] if i < b else blank
    out = (canvas * 255).round().byte().numpy()
    return out[0] if c == 1 else np.moveaxis(out[:3], 0, -1)


def save_image_grid(images, path, nrow: int | None = None, value_range=(0.0, 1.0)) -> Path:
    """Write ``[B, C, H, W]`` images as one PNG grid (grey images dark on white, like ink)."""
    from PIL import Image

    pic = image_grid(images, nrow=nrow, value_range=value_range)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(255 - pic if pic.ndim == 2 else pic).save(path)
    return path
