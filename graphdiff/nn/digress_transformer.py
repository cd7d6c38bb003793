"""The DiGress authors' graph transformer, tensor for tensor, for the checkpoints they (and DeFoG's) released.

Vignac et al., ICLR 2023, "DiGress", Sec. 3 and App. B; Qin et al., 2025, "DeFoG" (the same network, with a
sinusoidal embedding of ``t`` appended to the graph input). graphdiff's own
:class:`~.transformer.GraphTransformerDenoiser` keeps one attention score per head; this module keeps the
authors' layout, so that every tensor of their ``GraphTransformer`` has a counterpart of the same name and shape
here (the import mapping is the identity):

* Attention per channel: ``Q, K, V = q(X), k(X), v(X)`` (``dx`` wide, ``n_head`` heads of ``df = dx / n_head``),
  ``Y_ij = Q_i o K_j / sqrt(df)`` modulated by the edges, ``Y_ij <- Y_ij (e_mul(E_ij) + 1) + e_add(E_ij)``
  (``de -> dx``). The new edges are ``e_out(y_e_add(y) + (y_e_mul(y) + 1) o Y_ij)`` (``dx -> de``). The
  attention is a softmax over the keys ``j`` per channel, the new nodes
  ``x_out(y_x_add(y) + (y_x_mul(y) + 1) o sum_j a_ij o V_j)``. The new graph features are
  ``y_out(y_y(y) + x_y.lin(pool X) + e_y.lin(pool E))``, pooling = mean, min, max and unbiased std over *every*
  node slot and node pair, padded ones included, as the authors pool.
* Each stream: residual, LayerNorm, feed-forward (``lin*1``, ReLU, ``lin*2``), residual, LayerNorm. The layers
  mask Q, K, V and the attention outputs but not the normalised streams, so padded slots carry LayerNorm biases
  into the pooling: a graph's output depends on how much padding its batch has, as in the authors' code.
* Input MLPs ``mlp_in_X/E/y`` (two ReLU layers; ``E`` symmetrised, then ``X`` and ``E`` masked), output MLPs
  ``mlp_out_X/E/y`` plus the first channels of the input, ``E`` zeroed on the diagonal, symmetrised and masked.

Inputs are assembled as the authors do: ``X = [x, features]``, ``E = [e, features]``, ``y = [cond, features, t]``
(DeFoG: then ``timestep_embedding(t, 64)``), the features being :class:`~.digress_features.DiGressFeatures`.
"""

from __future__ import annotations

import math
import warnings

import torch
from torch import Tensor, nn

from ..errors import ConfigError
from ..state import GraphState, pair_mask
from .digress_features import DiGressFeatures
from .layers import Linear, check_inputs, check_sizes

__all__ = ["DiGressTransformerDenoiser", "XEyTransformerLayer", "NodeEdgeBlock", "sinusoidal_time"]


def _pool(h: Tensor) -> Tensor:
    """``[mean, min, max, std]`` over dim 1 of ``[B, S, F]`` (unbiased std, every entry counted)."""
    return torch.cat([h.mean(1), h.amin(1), h.amax(1), h.std(1)], -1)


class _Pool(nn.Module):
    """Pooled node (or flattened edge) features to the graph width (the authors' ``Xtoy`` / ``Etoy``)."""

    def __init__(self, d: int, dy: int):
        super().__init__()
        self.lin = Linear(4 * d, dy)

    def forward(self, h: Tensor) -> Tensor:
        return self.lin(_pool(h.reshape(h.shape[0], -1, h.shape[-1])))


class NodeEdgeBlock(nn.Module):
    """The authors' attention block: per-channel edge-modulated attention, FiLM by ``y``, and the ``y`` update.

    Shapes:
        x ``[B, N, dx]``, e ``[B, N, N, de]``, y ``[B, dy]``, mask ``[B, N]`` bool; returns the three updates.
    """

    def __init__(self, dx: int, de: int, dy: int, n_head: int):
        super().__init__()
        if n_head < 1 or dx % n_head:
            raise ConfigError(f"dx={dx} must be a positive multiple of n_head={n_head}")
        self.dx, self.de, self.dy, self.n_head, self.df = dx, de, dy, n_head, dx // n_head
        self.q, self.k, self.v = Linear(dx, dx), Linear(dx, dx), Linear(dx, dx)
        self.e_add, self.e_mul = Linear(de, dx), Linear(de, dx)
        self.y_e_mul, self.y_e_add = Linear(dy, dx), Linear(dy, dx)
        self.y_x_mul, self.y_x_add = Linear(dy, dx), Linear(dy, dx)
        self.y_y = Linear(dy, dy)
        self.x_y, self.e_y = _Pool(dx, dy), _Pool(de, dy)
        self.x_out, self.e_out = Linear(dx, dx), Linear(dx, de)
        self.y_out = nn.Sequential(Linear(dy, dy), nn.ReLU(), Linear(dy, dy))

    def forward(self, x: Tensor, e: Tensor, y: Tensor, mask: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        b, n, _ = x.shape
        h, df = self.n_head, self.df
        xm = mask.unsqueeze(-1).to(x.dtype)
        em = (xm.unsqueeze(2) * xm.unsqueeze(1))  # [B, N, N, 1], the diagonal of real nodes included
        q = (self.q(x) * xm).view(b, n, 1, h, df)
        k = (self.k(x) * xm).view(b, 1, n, h, df)
        scores = q * k / math.sqrt(df)  # [B, N, N, h, df]
        e_mul = (self.e_mul(e) * em).view(b, n, n, h, df)
        e_add = (self.e_add(e) * em).view(b, n, n, h, df)
        scores = scores * (e_mul + 1) + e_add
        new_e = scores.flatten(3)
        new_e = self.y_e_add(y)[:, None, None] + (self.y_e_mul(y)[:, None, None] + 1) * new_e
        new_e = self.e_out(new_e) * em
        keys = mask[:, None, :, None, None].expand(b, n, n, h, 1)
        if bool(mask.any()):  # the authors leave the scores as they are when no slot of the batch is real
            scores = scores.masked_fill(~keys, float("-inf")).softmax(2)
        v = (self.v(x) * xm).view(b, 1, n, h, df)
        new_x = (scores * v).sum(2).flatten(2)
        new_x = self.y_x_add(y).unsqueeze(1) + (self.y_x_mul(y).unsqueeze(1) + 1) * new_x
        new_x = self.x_out(new_x) * xm
        new_y = self.y_out(self.y_y(y) + self.x_y(x) + self.e_y(e))
        return new_x, new_e, new_y


class XEyTransformerLayer(nn.Module):
    """The authors' layer: :class:`NodeEdgeBlock`, then per stream residual + LayerNorm, feed-forward + residual +
    LayerNorm (post-norm, LayerNorm eps 1e-5, dropout after each update and inside the feed-forward blocks)."""

    def __init__(self, dx: int, de: int, dy: int, n_head: int, ff_x: int, ff_e: int, ff_y: int,
                 dropout: float = 0.0):
        super().__init__()
        self.self_attn = NodeEdgeBlock(dx, de, dy, n_head)
        self.linX1, self.linX2 = Linear(dx, ff_x), Linear(ff_x, dx)
        self.normX1, self.normX2 = nn.LayerNorm(dx), nn.LayerNorm(dx)
        self.linE1, self.linE2 = Linear(de, ff_e), Linear(ff_e, de)
        self.normE1, self.normE2 = nn.LayerNorm(de), nn.LayerNorm(de)
        self.lin_y1, self.lin_y2 = Linear(dy, ff_y), Linear(ff_y, dy)
        self.norm_y1, self.norm_y2 = nn.LayerNorm(dy), nn.LayerNorm(dy)
        self.drop = nn.Dropout(dropout)

    def _ff(self, h: Tensor, lin1: nn.Linear, lin2: nn.Linear) -> Tensor:
        return self.drop(lin2(self.drop(torch.relu(lin1(h)))))

    def forward(self, x: Tensor, e: Tensor, y: Tensor, mask: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        nx, ne, ny = self.self_attn(x, e, y, mask)
        x = self.normX1(x + self.drop(nx))
        e = self.normE1(e + self.drop(ne))
        y = self.norm_y1(y + self.drop(ny))
        x = self.normX2(x + self._ff(x, self.linX1, self.linX2))
        e = self.normE2(e + self._ff(e, self.linE1, self.linE2))
        y = self.norm_y2(y + self._ff(y, self.lin_y1, self.lin_y2))
        return x, e, y


def sinusoidal_time(t: Tensor, dim: int, max_period: float = 10000.0) -> Tensor:
    """DeFoG's time embedding: ``[cos(t w_i), sin(t w_i)]``, ``w_i = max_period^(-i / (dim // 2))`` (a zero column
    for odd ``dim``). Shapes: ``t [B]`` -> ``[B, dim]``."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = t.float().unsqueeze(-1) * freqs
    out = torch.cat([torch.cos(args), torch.sin(args)], -1)
    if dim % 2:
        out = torch.cat([out, torch.zeros_like(out[:, :1])], -1)
    return out.to(t.dtype)


def _in_mlp(i: int, h: int, o: int) -> nn.Sequential:
    return nn.Sequential(Linear(i, h), nn.ReLU(), Linear(h, o), nn.ReLU())


def _out_mlp(i: int, h: int, o: int) -> nn.Sequential:
    with warnings.catch_warnings():  # o = 0 (the authors' empty graph output): nothing to initialise
        warnings.filterwarnings("ignore", "Initializing zero-element tensors")
        return nn.Sequential(Linear(i, h), nn.ReLU(), Linear(h, o))


# Paper: Vignac et al. 2023, DiGress, Sec. 3 and App. B; Qin et al. 2025, DeFoG (time embedding).
class DiGressTransformerDenoiser(nn.Module):
    """The DiGress / DeFoG authors' ``GraphTransformer`` as a graphdiff denoiser (noisy one-hot graph and ``t`` in,
    node and edge logits out), with their tensor names (``mlp_in_X``, ``tf_layers.{i}.self_attn.q``, ...).

    Args:
        node_dim: node input channels (the process state's).
        edge_dim: edge input channels (channel 0 = no edge).
        node_out: node logit channels (default ``node_dim``).
        edge_out: edge logit channels (default ``edge_dim``).
        y_out: graph outputs of ``mlp_out_y`` (kept so that a checkpoint's tensors load; never computed, graphdiff's
            processes read no graph prediction).
        cond_dim: graph condition width, read first in ``y`` (the authors' ``y_t``; 0 for none).
        max_nodes: most node slots (and the ``n / max_nodes`` normaliser of the features).
        n_layers: transformer layers.
        hidden_mlp_x, hidden_mlp_e, hidden_mlp_y: hidden widths of the input / output MLPs.
        dx, de, dy: stream widths.
        n_head: attention heads (``dx`` a multiple of it).
        ff_x, ff_e, ff_y: feed-forward widths (the authors' layers use 2048 for ``y`` whatever their config says).
        extra_features: ``None``, ``"cycles"``, ``"eigenvalues"``, ``"all"`` or ``"rrwp"``.
        variant: ``"digress"`` or ``"defog"`` (features and time embedding).
        rrwp_steps: walk lengths of ``"rrwp"``.
        molecular: ``None`` or ``{"valencies", "atom_weights", "max_weight"}`` (the authors' domain features).
        time_embedding: width of DeFoG's sinusoidal embedding of ``t`` appended to ``y`` (0: none).
        dropout: dropout rate (the authors train with 0.1; sampling runs in eval mode).

    Shapes:
        state.x ``[B, N, node_dim]``, state.e ``[B, N, N, edge_dim]``, state.mask ``[B, N]``, t ``[B]``;
        output ``GraphState(x [B, N, node_out], e [B, N, N, edge_out] symmetric, zero on the diagonal)``.
    """

    def __init__(
        self, *, node_dim: int, edge_dim: int, node_out: int | None = None, edge_out: int | None = None,
        y_out: int = 0, cond_dim: int = 0, max_nodes: int, n_layers: int = 5, hidden_mlp_x: int = 256,
        hidden_mlp_e: int = 128, hidden_mlp_y: int = 128, dx: int = 256, de: int = 64, dy: int = 64,
        n_head: int = 8, ff_x: int = 256, ff_e: int = 128, ff_y: int = 2048, extra_features: str | None = "all",
        variant: str = "digress", rrwp_steps: int = 12, molecular: dict | None = None, time_embedding: int = 0,
        dropout: float = 0.0,
    ):
        super().__init__()
        node_out = node_dim if node_out is None else node_out
        edge_out = edge_dim if edge_out is None else edge_out
        check_sizes(dict(node_dim=node_dim, edge_dim=edge_dim, node_out=node_out, edge_out=edge_out,
                         max_nodes=max_nodes, n_layers=n_layers, hidden_mlp_x=hidden_mlp_x, hidden_mlp_e=hidden_mlp_e,
                         hidden_mlp_y=hidden_mlp_y, dx=dx, de=de, dy=dy, n_head=n_head, ff_x=ff_x, ff_e=ff_e,
                         ff_y=ff_y), cond_dim=cond_dim, dropout=dropout)
        if int(y_out) < 0 or int(time_embedding) < 0:
            raise ConfigError(f"y_out and time_embedding must be >= 0, got {y_out} and {time_embedding}")
        self.node_dim, self.edge_dim, self.node_out, self.edge_out = node_dim, edge_dim, node_out, edge_out
        self.cond_dim, self.max_nodes, self.time_embedding = int(cond_dim), int(max_nodes), int(time_embedding)
        self.features = DiGressFeatures(extra_features, variant=variant, max_nodes=max_nodes, rrwp_steps=rrwp_steps,
                                        molecular=molecular)
        fn, fe, fg = self.features.dims
        self.mlp_in_X = _in_mlp(node_dim + fn, hidden_mlp_x, dx)
        self.mlp_in_E = _in_mlp(edge_dim + fe, hidden_mlp_e, de)
        self.mlp_in_y = _in_mlp(self.cond_dim + fg + 1 + self.time_embedding, hidden_mlp_y, dy)
        self.tf_layers = nn.ModuleList(XEyTransformerLayer(dx, de, dy, n_head, ff_x, ff_e, ff_y, dropout)
                                       for _ in range(n_layers))
        self.mlp_out_X = _out_mlp(dx, hidden_mlp_x, node_out)
        self.mlp_out_E = _out_mlp(de, hidden_mlp_e, edge_out)
        self.mlp_out_y = _out_mlp(dy, hidden_mlp_y, int(y_out))

    def inputs(self, state: GraphState, t: Tensor, cond: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """The authors' network inputs ``X [B, N, node_dim + Fn]``, ``E [B, N, N, edge_dim + Fe]``, ``y``."""
        mask = state.mask.bool()
        xm = mask.unsqueeze(-1).to(state.x.dtype)
        x = state.x * xm
        e = state.e * pair_mask(mask, include_diagonal=True).unsqueeze(-1).to(state.e.dtype)
        fx, fe, fy = self.features(x, e, mask)
        y = [cond, fy.to(x.dtype), t.unsqueeze(-1)]
        if self.time_embedding:
            y.append(sinusoidal_time(t, self.time_embedding))
        return torch.cat([x, fx.to(x.dtype)], -1), torch.cat([e, fe.to(e.dtype)], -1), torch.cat(y, -1)

    def forward(self, state: GraphState, t: Tensor, cond: Tensor | None = None) -> GraphState:
        t, cond = check_inputs(self, state, t, cond)
        mask = state.mask.bool()
        x_in, e_in, y_in = self.inputs(state, t, cond)
        b, n = mask.shape
        xm = mask.unsqueeze(-1).to(x_in.dtype)
        em = xm.unsqueeze(2) * xm.unsqueeze(1)
        e = self.mlp_in_E(e_in)
        e = 0.5 * (e + e.transpose(1, 2)) * em
        x = self.mlp_in_X(x_in) * xm
        y = self.mlp_in_y(y_in)
        for layer in self.tf_layers:
            x, e, y = layer(x, e, y, mask)
        x = self.mlp_out_X(x) + x_in[..., : self.node_out]
        off_diag = (~torch.eye(n, dtype=torch.bool, device=mask.device)).view(1, n, n, 1).to(e.dtype)
        e = (self.mlp_out_E(e) + e_in[..., : self.edge_out]) * off_diag
        e = 0.5 * (e + e.transpose(1, 2))
        return GraphState(x=x * xm, e=e * em, mask=state.mask)

    def condition_input(self) -> tuple[nn.Linear, int]:
        """The layer reading the graph condition and the column of its first condition input."""
        return self.mlp_in_y[0], 0

    def grow(self, *, node_new: int = 0, edge_new: int = 0, max_nodes: int | None = None,
             cond_dim: int | None = None) -> None:
        """Widen the network for fine-tuning (see :mod:`graphdiff.nn.growth`): ``node_new`` / ``edge_new`` new
        categories appended after the old ones (input columns initialised to the mean of the old categories', new
        logits with zero weights and the mean old bias), a larger ``max_nodes`` (the ``n / max_nodes`` graph feature
        is re-scaled so it keeps its effect) and ``cond_dim`` new condition columns (zero-initialised; the old ones
        are dropped). On inputs of the old categories and sizes the outputs for the old categories are unchanged.
        New categories are refused when the network reads the authors' molecular features, which need each atom
        type's valency and weight and each bond type's order."""
        from .growth import grow_categories, replace_inputs, scale_input

        if (node_new or edge_new) and self.features.molecular is not None:
            raise ConfigError(f"this DiGress transformer reads molecular features (valencies and weights per atom "
                              f"type, orders per bond type) and cannot take {node_new} new atom and {edge_new} new "
                              f"bond types; fine-tune it on data with the base model's categories")
        grow_categories(self, node_new, edge_new, ("mlp_in_X", "mlp_in_E", "mlp_out_X", "mlp_out_E"))
        if max_nodes is not None and int(max_nodes) != self.max_nodes:
            if self.features.mode is not None:  # n / max_nodes is the first graph feature, after the conditions
                scale_input(self.mlp_in_y[0], self.cond_dim, int(max_nodes) / self.max_nodes)
            self.max_nodes = self.features.max_nodes = int(max_nodes)
        if cond_dim is not None and int(cond_dim) != self.cond_dim:
            self.mlp_in_y[0] = replace_inputs(self.mlp_in_y[0], 0, self.cond_dim, int(cond_dim))
            self.cond_dim = int(cond_dim)

    def extra_repr(self) -> str:
        return (f"node_dim={self.node_dim}, edge_dim={self.edge_dim}, node_out={self.node_out}, "
                f"edge_out={self.edge_out}, cond_dim={self.cond_dim}, max_nodes={self.max_nodes}, "
                f"time_embedding={self.time_embedding}, features={self.features!r}")
