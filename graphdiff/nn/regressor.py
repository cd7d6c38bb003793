"""A property regressor on noisy graphs: the graph transformer's body, pooled, and a small head.

DiGress (Vignac et al., ICLR 2023, Sec. 4.3) guides a pretrained discrete model with a regressor ``g(z_t, t)``
trained to predict a graph property from the *noisy* graph at time ``t``; DiffusionNAG's predictor guidance is the
same idea. The regressor here reuses :class:`~graphdiff.nn.transformer.GraphTransformerDenoiser` (the same
structural features, time input and layers as the denoiser it guides, at a width of its own) with node and edge
outputs of width ``ff_x`` / ``ff_e`` instead of logits; the nodes' masked mean, min, max and standard deviation
and the real pairs' mean, concatenated, go through a two-layer MLP to one value per target. It is permutation
invariant, and its inputs are the process's one-hot states, so the gradient with respect to them is what
categorical guidance needs.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor, nn

from ..state import GraphState
from .layers import pair_mask
from .transformer import GraphTransformerDenoiser, masked_pool


class GraphRegressor(nn.Module):
    """``g(z_t, t) -> [B, n_targets]`` for noisy one-hot graphs (see the module docstring).

    Args:
        node_dim / edge_dim: the process's node and edge state channels (one-hot; edge channel 0 = no edge).
        max_nodes: largest number of node slots.
        n_targets: values predicted per graph.
        n_layers, hidden_x, hidden_e, hidden_y, n_heads, ff_x, ff_e, ff_y, extra_features, rrwp_steps: the body's
            sizes (:class:`~graphdiff.nn.transformer.GraphTransformerDenoiser`).

    Shapes:
        state.x: ``[B, N, node_dim]``; state.e: ``[B, N, N, edge_dim]``; t: ``[B]``; returns ``[B, n_targets]``.
    """

    def __init__(self, *, node_dim: int, edge_dim: int, max_nodes: int, n_targets: int = 1, n_layers: int = 3,
                 hidden_x: int = 64, hidden_e: int = 32, hidden_y: int = 32, n_heads: int = 4, ff_x: int = 128,
                 ff_e: int = 64, ff_y: int = 64, extra_features: Iterable[str] | None = ("rrwp",),
                 rrwp_steps: int = 8):
        super().__init__()
        self.body = GraphTransformerDenoiser(
            node_dim=node_dim, edge_dim=edge_dim, node_out=ff_x, edge_out=ff_e, max_nodes=max_nodes,
            n_layers=n_layers, hidden_x=hidden_x, hidden_e=hidden_e, hidden_y=hidden_y, n_heads=n_heads, ff_x=ff_x,
            ff_e=ff_e, ff_y=ff_y, extra_features=extra_features, rrwp_steps=rrwp_steps, input_residual=False)
        self.head = nn.Sequential(nn.Linear(4 * ff_x + ff_e, ff_x), nn.ReLU(), nn.Linear(ff_x, int(n_targets)))
        self.n_targets = int(n_targets)

    def forward(self, state: GraphState, t: Tensor) -> Tensor:
        out = self.body(state, t)
        mask = state.mask.bool()
        hx = masked_pool(torch.relu(out.x), mask)
        pm = pair_mask(mask).flatten(1).unsqueeze(-1).to(out.e.dtype)
        he = (torch.relu(out.e).flatten(1, 2) * pm).sum(1) / pm.sum(1).clamp(min=1.0)
        return self.head(torch.cat([hx, he], -1))


__all__ = ["GraphRegressor"]
