"""The graph transformer denoiser of DiGress (Vignac et al., ICLR 2023, "DiGress: Discrete Denoising diffusion for
graph generation", Sec. 3), also used by DeFoG (Qin et al., 2025).

Three streams run side by side: node features ``X [B, N, dx]``, edge features ``E [B, N, N, de]`` (kept symmetric)
and graph features ``y [B, dy]``. In every layer, node attention scores are modulated by the edge features (FiLM of
``Q K^T`` by ``E``), the modulated scores give the new edge features, ``y`` modulates ``X`` and ``E`` (FiLM) and is
updated from pooled ``X`` and ``E``; residuals, LayerNorm and a feed-forward block follow for each stream. The
noisy graph's structural features (:mod:`graphdiff.nn.features`) are computed inside ``forward`` and concatenated
to the inputs.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor, nn

from ..errors import ConfigError
from ..kernels import check_mode, edge_attention
from ..state import GraphState, pair_mask
from .features import ExtraFeatures
from .layers import Linear, check_inputs, check_sizes, run_layers

__all__ = ["GraphTransformerDenoiser", "GraphTransformerLayer", "masked_pool"]


def _linear(i: int, o: int) -> nn.Linear:
    return Linear(i, o)


def _mlp(i: int, h: int, o: int, final_act: bool) -> nn.Sequential:
    layers: list[nn.Module] = [_linear(i, h), nn.ReLU(), _linear(h, o)]
    if final_act:
        layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def _ff(d: int, h: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(_linear(d, h), nn.ReLU(), nn.Dropout(dropout), _linear(h, d))


# Paper: Vignac et al. 2023, DiGress, Sec. 3 (graph-level features from pooled node and edge features).
def masked_pool(h: Tensor, mask: Tensor, eps: float = 1e-6) -> Tensor:
    """Mean, min, max and standard deviation of ``h`` over the entries selected by ``mask``.

    The graph-level pooling of DiGress's transformer, restricted to real entries.
    The standard deviation is the population one, ``sqrt(max(var, eps))`` (finite gradients for constant
    features). A set with no selected entry pools to zeros.

    Args:
        h: ``[B, S, F]`` features of ``S`` entries (nodes, or flattened node pairs).
        mask: ``[B, S]`` bool.
        eps: floor of the variance under the square root.

    Returns:
        ``[B, 4 F]``: ``[mean, min, max, std]``.
    """
    m = mask.unsqueeze(-1)
    w = m.to(h.dtype)
    count = w.sum(1)
    any_ = count > 0
    mean = (h * w).sum(1) / count.clamp(min=1)
    big = torch.finfo(h.dtype).max
    mn = torch.where(m, h, torch.full_like(h, big)).amin(1)
    mx = torch.where(m, h, torch.full_like(h, -big)).amax(1)
    var = (((h - mean.unsqueeze(1)) * w) ** 2).sum(1) / count.clamp(min=1)
    std = var.clamp(min=eps).sqrt()
    out = torch.cat([mean, mn, mx, std], -1)
    return out * any_.to(h.dtype)


# Paper: Vignac et al. 2023, DiGress, Sec. 3; Dwivedi & Bresson 2021 (graph transformer with edge features).
class GraphTransformerLayer(nn.Module):
    """One layer of the DiGress graph transformer: edge-modulated attention over nodes plus a graph stream.

    Per head ``h``: ``S_ij = (q_i . k_j / sqrt(d_h)) (1 + E_mul(E_ij)) + E_add(E_ij)``. Beside the ``H`` head
    scores, an edge-width product ``P_ij = (W_q' x_i) o (W_k' x_j) / sqrt(de)`` is FiLM-modulated by ``E_ij`` in the
    same way (DiGress modulates per channel; here the attention stays one scalar per head, which keeps memory at
    ``B N^2 (H + de)``, and the channel-wise product feeds the edge update only). The new edge features are a
    linear map of ``[S_ij, P_ij]``, symmetrised as ``(S' + S'^T) / 2``, FiLM-modulated by ``y`` and mapped once
    more. The new node features are ``softmax_j(S_ij) v_j`` (padded ``j`` excluded), FiLM-modulated by ``y``
    and mapped once more. The new ``y`` is ``y W + pool(X) W_x + pool(E) W_e`` followed by an MLP, with mean, min,
    max and std pooling over real nodes and real off-diagonal pairs. Each stream then takes a residual, LayerNorm,
    a feed-forward block (ReLU), a second residual and a second LayerNorm (post-norm, as in DiGress).

    Args:
        dx: node stream width (a multiple of ``n_heads``).
        de: edge stream width.
        dy: graph stream width.
        n_heads: attention heads.
        ff_x: node feed-forward width.
        ff_e: edge feed-forward width.
        ff_y: graph feed-forward width.
        dropout: dropout after each update and inside the feed-forward blocks.
        update_y: compute the graph stream (off for a last layer whose ``y`` is not used).
        kernels: ``auto``, ``reference`` or ``triton``: which implementation of the attention runs (see
            :func:`graphdiff.kernels.edge_attention`, which is the definition of the attention step).

    Shapes:
        x: ``[B, N, dx]``.
        e: ``[B, N, N, de]`` symmetric.
        y: ``[B, dy]``.
        mask: ``[B, N]`` bool.
        output: ``(x [B, N, dx], e [B, N, N, de] symmetric, y [B, dy])``; ``x`` zero at padded slots, ``e`` zero on
        pairs touching them (the diagonal of real nodes is kept); ``y`` is returned unchanged when
        ``update_y=False``.
    """

    def __init__(
        self, *, dx: int, de: int, dy: int, n_heads: int, ff_x: int, ff_e: int, ff_y: int, dropout: float = 0.0,
        update_y: bool = True, kernels: str = "auto",
    ):
        super().__init__()
        if n_heads < 1 or dx % n_heads:
            raise ConfigError(f"hidden_x={dx} must be a positive multiple of n_heads={n_heads}")
        self.dx, self.de, self.dy, self.n_heads, self.update_y = dx, de, dy, n_heads, update_y
        self.kernels = check_mode(kernels)
        self.q, self.k, self.v = _linear(dx, dx), _linear(dx, dx), _linear(dx, dx)
        self.q_e, self.k_e = _linear(dx, de), _linear(dx, de)
        self.e_mul, self.e_add = _linear(de, n_heads + de), _linear(de, n_heads + de)
        self.y_e_mul, self.y_e_add = _linear(dy, de), _linear(dy, de)
        self.y_x_mul, self.y_x_add = _linear(dy, dx), _linear(dy, dx)
        self.score_to_e = _linear(n_heads + de, de)
        self.e_out, self.x_out = _linear(de, de), _linear(dx, dx)
        self.norm_x1, self.norm_x2 = nn.LayerNorm(dx), nn.LayerNorm(dx)
        self.norm_e1, self.norm_e2 = nn.LayerNorm(de), nn.LayerNorm(de)
        self.ff_x, self.ff_e = _ff(dx, ff_x, dropout), _ff(de, ff_e, dropout)
        if update_y:
            self.y_self, self.x_pool, self.e_pool = _linear(dy, dy), _linear(4 * dx, dy), _linear(4 * de, dy)
            self.y_out = _mlp(dy, dy, dy, final_act=False)
            self.norm_y1, self.norm_y2 = nn.LayerNorm(dy), nn.LayerNorm(dy)
            self.ff_y = _ff(dy, ff_y, dropout)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: Tensor, e: Tensor, y: Tensor, mask: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        b, n, _ = x.shape
        h, dh = self.n_heads, self.dx // self.n_heads
        nm = mask.unsqueeze(-1).to(x.dtype)
        pm = pair_mask(mask, include_diagonal=True).unsqueeze(-1).to(e.dtype)
        q = self.q(x).view(b, n, h, dh)
        k = self.k(x).view(b, n, h, dh)
        v = (self.v(x) * nm).view(b, n, h, dh)
        x_att, new_e = edge_attention(q, k, v, self.q_e(x), self.k_e(x), e, mask, self.e_mul.weight, self.e_mul.bias,
                                      self.e_add.weight, self.e_add.bias, self.score_to_e.weight,
                                      self.score_to_e.bias, mode=self.kernels)
        new_e = 0.5 * (new_e + new_e.transpose(1, 2))
        new_e = self.y_e_add(y)[:, None, None] + (self.y_e_mul(y)[:, None, None] + 1.0) * new_e
        new_e = self.e_out(new_e) * pm

        new_x = x_att.reshape(b, n, self.dx)
        new_x = self.y_x_add(y).unsqueeze(1) + (self.y_x_mul(y).unsqueeze(1) + 1.0) * new_x
        new_x = self.x_out(new_x) * nm

        if self.update_y:
            pairs = pair_mask(mask).reshape(b, n * n)
            new_y = self.y_self(y) + self.x_pool(masked_pool(x, mask)) + self.e_pool(
                masked_pool(e.reshape(b, n * n, self.de), pairs)
            )
            new_y = self.y_out(new_y)
            y = self.norm_y1(y + self.drop(new_y))
            y = self.norm_y2(y + self.drop(self.ff_y(y)))

        x = self.norm_x1(x + self.drop(new_x)) * nm
        x = self.norm_x2(x + self.drop(self.ff_x(x))) * nm
        e = self.norm_e1(e + self.drop(new_e)) * pm
        e = self.norm_e2(e + self.drop(self.ff_e(e))) * pm
        return x, e, y


# Paper: Vignac et al. 2023, DiGress, Sec. 3 (denoising network); Qin et al. 2025, DeFoG (same network).
class GraphTransformerDenoiser(nn.Module):
    """DiGress/DeFoG graph transformer: noisy one-hot graph, time and condition in; node and edge logits out.

    Structural features of the noisy graph (``adj = state.e.argmax(-1) > 0`` on real off-diagonal pairs, see
    :class:`~graphdiff.nn.features.ExtraFeatures`) are concatenated to the inputs: node features to ``X``, edge
    features to ``E``, graph features to ``y = [t, n / max_nodes, cond, graph features]`` (the normalised node
    count ``n / max_nodes`` is DiGress's own ``y`` input). Each stream goes through a 2-layer ReLU input MLP
    (hidden width ``ff_*``), the input ``E`` is symmetrised, then ``n_layers`` :class:`GraphTransformerLayer` run
    (the last one skips the unused ``y`` update) and 2-layer output MLPs give the logits. With ``input_residual``
    the noisy input is added to the logits as in DiGress (the first ``min(node_dim, node_out)`` channels of ``X``,
    likewise for ``E``). Edge logits are symmetrised ``(E + E^T) / 2`` and zeroed on the diagonal and on pairs
    touching padded slots; node logits are zero at padded slots.

    Args:
        node_dim: node input channels (one-hot categories or probability vectors).
        edge_dim: edge input channels (channel 0 = no edge).
        node_out: node logit channels (default ``node_dim``).
        edge_out: edge logit channels (default ``edge_dim``).
        cond_dim: width of the graph-level condition (0 for none).
        max_nodes: largest number of node slots a batch may have (also normalises ``n``).
        n_layers: transformer layers.
        hidden_x: node stream width (a multiple of ``n_heads``).
        hidden_e: edge stream width.
        hidden_y: graph stream width.
        n_heads: attention heads.
        ff_x: node feed-forward width (and hidden width of the node input/output MLPs).
        ff_e: edge feed-forward width (and of the edge MLPs).
        ff_y: graph feed-forward width (and of the graph input MLP).
        extra_features: kinds of structural features, any of ``"cycles"``, ``"spectral"``, ``"rrwp"`` (``None`` or
            ``()`` for none).
        spectral_k: eigenpairs of the spectral features.
        rrwp_steps: random-walk lengths of the RRWP features.
        dropout: dropout rate inside the layers.
        input_residual: add the noisy input to the logits.
        gradient_checkpointing: recompute each layer's activations in the backward pass instead of storing them
            (less training memory, more compute; see :func:`graphdiff.nn.layers.run_layers`).
        kernels: ``auto`` (the torch reference: the Triton attention was measured slower on a GPU), ``reference``
            or ``triton`` (less memory, slower): the implementation of the layers' attention; the environment
            variable ``GRAPHDIFF_KERNELS`` overrides it (see :mod:`graphdiff.kernels`).

    Raises:
        ConfigError: a size below 1, ``hidden_x`` not a multiple of ``n_heads`` or an unknown feature kind.
        SchemaError: in ``forward``, inputs whose widths differ from the ones the model was built with, or more node
            slots than ``max_nodes``.

    Shapes:
        state.x: ``[B, N, node_dim]``.
        state.e: ``[B, N, N, edge_dim]``.
        state.mask: ``[B, N]`` bool.
        t: ``[B]`` floats in ``[0, 1]`` (or a scalar).
        cond: ``[B, cond_dim]`` or ``None`` (zeros).
        output: ``GraphState(x=[B, N, node_out] logits, e=[B, N, N, edge_out] symmetric logits, mask=state.mask)``.
    """

    def __init__(
        self, *, node_dim: int, edge_dim: int, node_out: int | None = None, edge_out: int | None = None,
        cond_dim: int = 0, max_nodes: int, n_layers: int = 5, hidden_x: int = 256, hidden_e: int = 64,
        hidden_y: int = 64, n_heads: int = 8, ff_x: int = 256, ff_e: int = 128, ff_y: int = 128,
        extra_features: Iterable[str] | None = ("cycles", "spectral"), spectral_k: int = 5, rrwp_steps: int = 8,
        dropout: float = 0.0, input_residual: bool = True, gradient_checkpointing: bool = False,
        kernels: str = "auto",
    ):
        super().__init__()
        node_out = node_dim if node_out is None else node_out
        edge_out = edge_dim if edge_out is None else edge_out
        sizes = dict(node_dim=node_dim, edge_dim=edge_dim, node_out=node_out, edge_out=edge_out, max_nodes=max_nodes,
                     n_layers=n_layers, hidden_x=hidden_x, hidden_e=hidden_e, hidden_y=hidden_y, n_heads=n_heads,
                     ff_x=ff_x, ff_e=ff_e, ff_y=ff_y)
        check_sizes(sizes, cond_dim=cond_dim, dropout=dropout)
        if hidden_x % n_heads:
            raise ConfigError(f"hidden_x={hidden_x} must be a multiple of n_heads={n_heads}")
        self.node_dim, self.edge_dim, self.node_out, self.edge_out = node_dim, edge_dim, node_out, edge_out
        self.cond_dim, self.max_nodes, self.input_residual = int(cond_dim), int(max_nodes), bool(input_residual)
        self.gradient_checkpointing = bool(gradient_checkpointing)
        self.kernels = check_mode(kernels)
        self.features = ExtraFeatures(extra_features or (), spectral_k=spectral_k, rrwp_steps=rrwp_steps)
        fn, fe, fg = self.features.dims
        self.in_x = _mlp(node_dim + fn, ff_x, hidden_x, final_act=True)
        self.in_e = _mlp(edge_dim + fe, ff_e, hidden_e, final_act=True)
        self.in_y = _mlp(2 + self.cond_dim + fg, ff_y, hidden_y, final_act=True)
        self.layers = nn.ModuleList(
            GraphTransformerLayer(dx=hidden_x, de=hidden_e, dy=hidden_y, n_heads=n_heads, ff_x=ff_x, ff_e=ff_e,
                                  ff_y=ff_y, dropout=dropout, update_y=i < n_layers - 1, kernels=self.kernels)
            for i in range(n_layers)
        )
        self.out_x = _mlp(hidden_x, ff_x, node_out, final_act=False)
        self.out_e = _mlp(hidden_e, ff_e, edge_out, final_act=False)

    def forward(self, state: GraphState, t: Tensor, cond: Tensor | None = None) -> GraphState:
        t, cond = check_inputs(self, state, t, cond)
        mask = state.mask.bool()
        b, n = mask.shape
        nm = mask.unsqueeze(-1).to(state.x.dtype)
        real_pairs = pair_mask(mask).unsqueeze(-1).to(state.e.dtype)
        x0, e0 = state.x * nm, state.e * real_pairs
        adj = GraphState(x=x0, e=e0, mask=mask).adjacency()
        fx, fe, fy = self.features(adj, mask)
        n_frac = mask.sum(1, keepdim=True).to(x0.dtype) / self.max_nodes

        pm = pair_mask(mask, include_diagonal=True).unsqueeze(-1).to(e0.dtype)
        x = self.in_x(torch.cat([x0, fx.to(x0.dtype)], -1)) * nm
        e = self.in_e(torch.cat([e0, fe.to(e0.dtype)], -1))
        e = 0.5 * (e + e.transpose(1, 2)) * pm
        y = self.in_y(torch.cat([t.unsqueeze(-1), n_frac, cond, fy.to(x0.dtype)], -1))
        x, e, y = run_layers(self.layers, x, e, y, mask, checkpoint=self.gradient_checkpointing)

        out_x = self.out_x(x)
        out_e = self.out_e(e)
        if self.input_residual:
            kx, ke = min(self.node_dim, self.node_out), min(self.edge_dim, self.edge_out)
            out_x = torch.cat([out_x[..., :kx] + x0[..., :kx], out_x[..., kx:]], -1)
            out_e = torch.cat([out_e[..., :ke] + e0[..., :ke], out_e[..., ke:]], -1)
        out_e = 0.5 * (out_e + out_e.transpose(1, 2))
        return GraphState(x=out_x * nm, e=out_e * real_pairs, mask=state.mask)

    def condition_input(self) -> tuple[nn.Linear, int]:
        """The layer reading the graph condition and the column of its first condition input."""
        return self.in_y[0], 2

    def grow(self, *, node_new: int = 0, edge_new: int = 0, max_nodes: int | None = None,
             cond_dim: int | None = None) -> None:
        """Widen the network for fine-tuning (see :mod:`graphdiff.nn.growth`): ``node_new`` / ``edge_new`` new
        categories appended after the old ones (an absorbing [MASK] input channel moves behind them), a larger
        ``max_nodes`` (the node-count input is re-scaled so it keeps its effect) and ``cond_dim`` new condition
        columns (zero-initialised; the old ones are dropped). On inputs of the old categories and sizes the
        outputs for the old categories are unchanged."""
        from .growth import grow_categories, replace_inputs, scale_input

        grow_categories(self, node_new, edge_new)
        if max_nodes is not None and int(max_nodes) != self.max_nodes:
            scale_input(self.in_y[0], 1, int(max_nodes) / self.max_nodes)  # n / max_nodes is the 2nd y input
            self.max_nodes = int(max_nodes)
        if cond_dim is not None and int(cond_dim) != self.cond_dim:
            self.in_y[0] = replace_inputs(self.in_y[0], 2, 2 + self.cond_dim, int(cond_dim))
            self.cond_dim = int(cond_dim)

    def extra_repr(self) -> str:
        return (f"node_dim={self.node_dim}, edge_dim={self.edge_dim}, node_out={self.node_out}, "
                f"edge_out={self.edge_out}, cond_dim={self.cond_dim}, max_nodes={self.max_nodes}, "
                f"features={self.features!r}")
