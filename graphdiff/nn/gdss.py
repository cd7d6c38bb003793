"""GDSS score networks (Jo, Lee & Hwang, ICML 2022, "Score-based Generative Modeling of Graphs via the System of
Stochastic Differential Equations").

GDSS diffuses node features ``X`` and a continuous adjacency ``A`` jointly and learns one score network per
component: :class:`ScoreNetworkX` (dense GCN) or :class:`ScoreNetworkX_GMH` (graph multi-head attention) for
``X``, and :class:`ScoreNetworkA` (graph multi-head attention over the adjacency powers ``A^1..A^c``) for ``A``.
:class:`GDSSDenoiser` wraps the pair behind the :class:`~graphdiff.state.GraphState` interface.

All networks are permutation equivariant and never let padded slots influence real ones. As in the paper they are
not conditioned on the diffusion time by default; ``time_cond=True`` adds a sinusoidal time embedding.
"""

from __future__ import annotations


import inspect
import math

import torch
from torch import Tensor, nn

from ..checks import suggest
from ..errors import SchemaError
from ..state import GraphState, pair_mask
from .layers import MLP, DenseGCNConv, TimeEmbedding

__all__ = [
    "GraphMultiHeadAttention",
    "AttentionLayer",
    "ScoreNetworkX",
    "ScoreNetworkX_GMH",
    "ScoreNetworkA",
    "GDSSDenoiser",
    "adjacency_powers",
]

_CONVS = ("GCN", "MLP")


def adjacency_powers(adj: Tensor, c: int, mask: Tensor | None = None) -> Tensor:
    """Stack ``A^1 .. A^c`` as channels, ``[B, N, N] -> [B, c, N, N]``.

    With a mask, ``A`` is first zeroed on pairs touching padded nodes and on its diagonal, so every power is zero
    on those pairs too (the diagonals of ``A^k``, ``k >= 2``, keep their walk counts).
    """
    if mask is not None:
        adj = adj * pair_mask(mask).to(adj.dtype)
    out = [adj]
    for _ in range(c - 1):
        out.append(out[-1] @ adj)
    return torch.stack(out, dim=1)


def _node_mask(x: Tensor, mask: Tensor) -> Tensor:
    return x * mask.unsqueeze(-1).to(x.dtype)


def _check_conv(conv: str) -> str:
    if conv not in _CONVS:
        hint = suggest(conv, _CONVS)
        raise SchemaError(f"conv must be one of {', '.join(_CONVS)}, got {conv!r}{hint}")
    return conv


def _check_heads(name: str, dim: int, num_heads: int) -> None:
    if num_heads < 1 or dim % num_heads:
        raise SchemaError(f"{name}={dim} must be a positive multiple of num_heads={num_heads}")


def _check_positive(**kwargs: int) -> None:
    for k, v in kwargs.items():
        if int(v) < 1:
            raise SchemaError(f"{k} must be >= 1, got {v}")


def _time(t: Tensor | None, b: int, like: Tensor) -> Tensor:
    if t is None:
        raise ValueError("this network was built with time_cond=True and needs t ([B] floats in [0, 1])")
    t = torch.as_tensor(t, device=like.device).to(like.dtype).reshape(-1)
    if t.numel() == 1:
        t = t.expand(b)
    if t.shape != (b,):
        raise SchemaError(f"t must be [B] = [{b}] or a scalar, got {tuple(t.shape)}")
    return t


class GraphMultiHeadAttention(nn.Module):
    """GDSS's graph multi-head attention on one adjacency channel (the paper's ``Attention``).

    ``Q``, ``K`` and ``V`` are a GCN (``conv="GCN"``) or a linear map (``conv="MLP"``) of ``x`` given ``adj``.
    The attention map is ``tanh(Q_h K_h^T / sqrt(d_h))`` averaged over the heads, symmetrised as
    ``(S + S^T) / 2`` and zeroed on pairs touching padded nodes.

    Args:
        in_dim: node feature size.
        attn_dim: total query/key size, split over ``num_heads`` heads.
        out_dim: value size.
        num_heads: number of heads.
        conv: ``"GCN"`` or ``"MLP"``.
        compute_value: build ``V`` (a layer whose node output is unused can skip it).
        compute_attention: build ``Q`` and ``K`` (a layer whose adjacency output is unused can skip them: as in
            GDSS, the attention map feeds only the new adjacency channels, never the values).

    Shapes:
        x: ``[B, N, in_dim]``.
        adj: ``[B, N, N]``.
        mask: ``[B, N]`` bool.
        output: ``(value [B, N, out_dim] or None, attention [B, N, N] or None)``.
    """

    def __init__(
        self, in_dim: int, attn_dim: int, out_dim: int, num_heads: int = 4, conv: str = "GCN",
        compute_value: bool = True, compute_attention: bool = True,
    ):
        super().__init__()
        _check_heads("attention dim", attn_dim, num_heads)
        self.conv = _check_conv(conv)
        self.num_heads, self.head_dim = num_heads, attn_dim // num_heads

        def make(o: int) -> nn.Module:
            if conv == "GCN":
                return DenseGCNConv(in_dim, o)
            lin = nn.Linear(in_dim, o)
            nn.init.xavier_uniform_(lin.weight)
            nn.init.zeros_(lin.bias)
            return lin

        self.q = make(attn_dim) if compute_attention else None
        self.k = make(attn_dim) if compute_attention else None
        self.v = make(out_dim) if compute_value else None

    def forward(self, x: Tensor, adj: Tensor, mask: Tensor) -> tuple[Tensor | None, Tensor | None]:
        b, n, _ = x.shape
        scores = None
        if self.q is not None:
            q = self._conv(self.q, x, adj, mask).view(b, n, self.num_heads, self.head_dim)
            k = self._conv(self.k, x, adj, mask).view(b, n, self.num_heads, self.head_dim)
            scores = torch.tanh(torch.einsum("bihd,bjhd->bhij", q, k) / math.sqrt(self.head_dim)).mean(1)
            scores = 0.5 * (scores + scores.transpose(-1, -2))
            scores = scores * pair_mask(mask, include_diagonal=True).to(scores.dtype)
        v = self._conv(self.v, x, adj, mask) if self.v is not None else None
        return v, scores

    def _conv(self, layer: nn.Module, x: Tensor, adj: Tensor, mask: Tensor) -> Tensor:
        if self.conv == "GCN":
            return layer(x, adj, mask)
        return _node_mask(layer(x), mask)


class AttentionLayer(nn.Module):
    """One GDSS attention layer: graph multi-head attention on every input adjacency channel.

    New node features are ``tanh(W mean_c V_c)``; new adjacency channels are an MLP (``num_linears`` layers,
    ELU) over each pair's stacked attention maps concatenated with the input channels, symmetrised and masked.

    Args:
        in_dim: input node feature size.
        attn_dim: query/key size of each attention.
        out_dim: output node feature size (the value size).
        c_in: number of input adjacency channels.
        c_out: number of output adjacency channels.
        num_heads: attention heads.
        conv: ``"GCN"`` or ``"MLP"`` for ``Q``, ``K``, ``V``.
        num_linears: layers of the adjacency MLP.
        compute_x: produce node features (off for a last layer whose node output is unused).
        compute_adj: produce adjacency channels (off for a last layer whose adjacency output is unused).

    Shapes:
        x: ``[B, N, in_dim]``.
        adj: ``[B, c_in, N, N]``.
        mask: ``[B, N]`` bool.
        output: ``(x [B, N, out_dim] or None, adj [B, c_out, N, N] or None)``, both zero on padded slots.
    """

    def __init__(
        self, *, in_dim: int, attn_dim: int, out_dim: int, c_in: int, c_out: int, num_heads: int = 4,
        conv: str = "GCN", num_linears: int = 2, compute_x: bool = True, compute_adj: bool = True,
    ):
        super().__init__()
        _check_positive(c_in=c_in, num_linears=num_linears)
        self.c_in, self.c_out = c_in, c_out
        self.attn = nn.ModuleList(
            GraphMultiHeadAttention(
                in_dim, attn_dim, out_dim, num_heads, conv, compute_value=compute_x, compute_attention=compute_adj
            )
            for _ in range(c_in)
        )
        self.x_out = None
        if compute_x:
            self.x_out = nn.Linear(out_dim, out_dim)
            nn.init.xavier_uniform_(self.x_out.weight)
            nn.init.zeros_(self.x_out.bias)
        self.adj_mlp = None
        if compute_adj:
            _check_positive(c_out=c_out)
            self.adj_mlp = MLP(2 * c_in, 2 * max(c_in, c_out), c_out, num_linears, act="elu")

    def forward(self, x: Tensor, adj: Tensor, mask: Tensor) -> tuple[Tensor | None, Tensor | None]:
        values, maps = [], []
        for c, attn in enumerate(self.attn):
            v, s = attn(x, adj[:, c], mask)
            values.append(v)
            maps.append(s)
        x_new = None
        if self.x_out is not None:
            x_new = _node_mask(torch.tanh(self.x_out(torch.stack(values, 0).mean(0))), mask)
        adj_new = None
        if self.adj_mlp is not None:
            feats = torch.cat([torch.stack(maps, -1), adj.permute(0, 2, 3, 1)], dim=-1)
            a = self.adj_mlp(feats).permute(0, 3, 1, 2)
            a = 0.5 * (a + a.transpose(-1, -2))
            adj_new = a * pair_mask(mask, include_diagonal=True).unsqueeze(1).to(a.dtype)
        return x_new, adj_new


class _TimeShift(nn.Module):
    """Time embedding plus one linear shift per layer, added to that layer's node features."""

    def __init__(self, dims: list[int], tdim: int):
        super().__init__()
        self.embed = TimeEmbedding(tdim)
        self.proj = nn.ModuleList(nn.Linear(tdim, d) for d in dims)

    def forward(self, t: Tensor) -> list[Tensor]:
        h = torch.nn.functional.silu(self.embed(t))
        return [p(h).unsqueeze(1) for p in self.proj]


class ScoreNetworkX(nn.Module):
    """GDSS node-feature score network with dense GCN layers.

    ``depth`` GCN layers with tanh; the input and every layer output are concatenated and mapped back to
    ``in_dim`` by a 3-layer ELU MLP. With ``time_cond`` a time embedding is added before each tanh.

    Args:
        in_dim: node feature size (input and output).
        depth: number of GCN layers.
        nhid: hidden size.
        time_cond: condition on ``t``.

    Shapes:
        x: ``[B, N, in_dim]``.
        adj: ``[B, N, N]``.
        mask: ``[B, N]`` bool.
        t: ``[B]`` or ``None``.
        output: ``[B, N, in_dim]``, zero at padded slots.
    """

    def __init__(self, *, in_dim: int, depth: int = 2, nhid: int = 16, time_cond: bool = False):
        super().__init__()
        _check_positive(in_dim=in_dim, depth=depth, nhid=nhid)
        self.in_dim, self.depth, self.nhid, self.time_cond = in_dim, depth, nhid, time_cond
        self.layers = nn.ModuleList(DenseGCNConv(in_dim if i == 0 else nhid, nhid) for i in range(depth))
        fdim = in_dim + depth * nhid
        self.final = MLP(fdim, 2 * fdim, in_dim, num_layers=3, act="elu")
        self.time = _TimeShift([nhid] * depth, tdim=max(nhid, 16)) if time_cond else None

    def forward(self, x: Tensor, adj: Tensor, mask: Tensor, t: Tensor | None = None) -> Tensor:
        mask = mask.bool()
        x = _node_mask(x, mask)
        adj = adj * pair_mask(mask).to(adj.dtype)
        shifts = self.time(_time(t, x.shape[0], x)) if self.time is not None else None
        xs = [x]
        for i, conv in enumerate(self.layers):
            h = conv(x, adj, mask)
            if shifts is not None:
                h = h + shifts[i]
            x = _node_mask(torch.tanh(h), mask)
            xs.append(x)
        return _node_mask(self.final(torch.cat(xs, -1)), mask)


def _attention_stack(
    *, in_dim: int, nhid: int, adim: int, num_layers: int, c_init: int, c_hid: int, c_final: int, num_heads: int,
    conv: str, num_linears: int, x_only_last: bool,
) -> nn.ModuleList:
    """GDSS's layer plan: ``c_init -> c_hid -> ... -> c_final``; the first layer attends with ``nhid`` dims, the
    rest with ``adim``. The last layer skips whichever output the network does not use."""
    layers = []
    for i in range(num_layers):
        first, last = i == 0, i == num_layers - 1
        layers.append(AttentionLayer(
            in_dim=in_dim if first else nhid, attn_dim=nhid if first else adim, out_dim=nhid,
            c_in=c_init if first else c_hid, c_out=c_final if last else c_hid, num_heads=num_heads, conv=conv,
            num_linears=num_linears, compute_x=not last or x_only_last, compute_adj=not (last and x_only_last),
        ))
    return nn.ModuleList(layers)


class ScoreNetworkX_GMH(nn.Module):
    """GDSS node-feature score network with graph multi-head attention over adjacency powers.

    The adjacency powers ``A^1..A^c_init`` feed ``depth`` attention layers (``c_init -> c_hid -> ...``); the
    input and every layer's node output are concatenated and mapped to ``in_dim`` by a 3-layer ELU MLP. The last
    layer's adjacency output is unused, so it is not computed (``c_final`` is accepted for GDSS configs).

    Args:
        in_dim: node feature size (input and output).
        depth: number of attention layers.
        nhid: hidden node size (and the first layer's attention size).
        adim: attention size of the later layers.
        num_heads: attention heads (must divide ``nhid`` and ``adim``).
        conv: ``"GCN"`` or ``"MLP"`` for queries, keys and values.
        c_init: number of adjacency powers.
        c_hid: hidden adjacency channels.
        c_final: adjacency channels of the last layer (unused here).
        time_cond: condition on ``t`` (a time embedding added to each layer's input node features).

    Shapes:
        x: ``[B, N, in_dim]``.
        adj: ``[B, N, N]``.
        mask: ``[B, N]`` bool.
        t: ``[B]`` or ``None``.
        output: ``[B, N, in_dim]``, zero at padded slots.
    """

    def __init__(
        self, *, in_dim: int, depth: int = 2, nhid: int = 16, adim: int = 16, num_heads: int = 4,
        conv: str = "GCN", c_init: int = 2, c_hid: int = 8, c_final: int = 4, time_cond: bool = False,
    ):
        super().__init__()
        _check_positive(in_dim=in_dim, depth=depth, nhid=nhid, c_init=c_init, c_hid=c_hid, c_final=c_final)
        _check_heads("nhid", nhid, num_heads)
        if depth > 1:
            _check_heads("adim", adim, num_heads)
        self.in_dim, self.c_init, self.time_cond = in_dim, c_init, time_cond
        self.layers = _attention_stack(
            in_dim=in_dim, nhid=nhid, adim=adim, num_layers=depth, c_init=c_init, c_hid=c_hid, c_final=c_final,
            num_heads=num_heads, conv=_check_conv(conv), num_linears=2, x_only_last=True,
        )
        fdim = in_dim + depth * nhid
        self.final = MLP(fdim, 2 * fdim, in_dim, num_layers=3, act="elu")
        dims = [in_dim] + [nhid] * (depth - 1)
        self.time = _TimeShift(dims, tdim=max(nhid, 16)) if time_cond else None

    def forward(self, x: Tensor, adj: Tensor, mask: Tensor, t: Tensor | None = None) -> Tensor:
        mask = mask.bool()
        xs, _ = _run_attention(self, x, adj, mask, t)
        return _node_mask(self.final(torch.cat(xs, -1)), mask)


def _run_attention(net, x: Tensor, adj: Tensor, mask: Tensor, t) -> tuple[list[Tensor], list[Tensor]]:
    """Run ``net.layers`` (attention layers) over the adjacency powers; node features and adjacency channels of
    the input and of every layer, with ``net.time`` (if any) shifting each layer's input node features."""
    x = _node_mask(x, mask)
    adjc = adjacency_powers(adj, net.c_init, mask)
    shifts = net.time(_time(t, x.shape[0], x)) if net.time is not None else None
    xs, adjs = [x], [adjc]
    for i, layer in enumerate(net.layers):
        h = _node_mask(x + shifts[i], mask) if shifts is not None else x
        x, adjc = layer(h, adjc, mask)
        xs.append(x)
        adjs.append(adjc)
    return xs, adjs


class ScoreNetworkA(nn.Module):
    """GDSS adjacency score network: graph multi-head attention over adjacency powers.

    The powers ``A^1..A^c_init`` (masked) go through ``num_layers`` attention layers
    (``c_init -> c_hid -> ... -> c_hid -> c_final``), each producing new node features and adjacency channels.
    The adjacency channels of the input and of every layer (``c_init + c_hid (L-1) + c_final``) are mapped per
    pair to one value by an ELU MLP with ``num_linears`` layers. The last layer's node output is unused, so it is
    not computed.

    Args:
        in_dim: node feature size.
        nhid: hidden node size (and the first layer's attention size).
        num_layers: number of attention layers.
        num_linears: layers of each adjacency MLP (inside the attention layers and the final one).
        c_init: number of adjacency powers.
        c_hid: hidden adjacency channels.
        c_final: adjacency channels of the last layer.
        adim: attention size of the later layers.
        num_heads: attention heads (must divide ``nhid`` and ``adim``).
        conv: ``"GCN"`` or ``"MLP"`` for queries, keys and values.
        time_cond: condition on ``t`` (a time embedding added to each layer's input node features).

    Shapes:
        x: ``[B, N, in_dim]``.
        adj: ``[B, N, N]``.
        mask: ``[B, N]`` bool.
        t: ``[B]`` or ``None``.
        output: ``[B, N, N]`` symmetric, zero on the diagonal and on pairs touching padded slots.
    """

    def __init__(
        self, *, in_dim: int, nhid: int = 16, num_layers: int = 3, num_linears: int = 2, c_init: int = 2,
        c_hid: int = 8, c_final: int = 4, adim: int = 16, num_heads: int = 4, conv: str = "GCN",
        time_cond: bool = False,
    ):
        super().__init__()
        _check_positive(
            in_dim=in_dim, nhid=nhid, num_layers=num_layers, num_linears=num_linears, c_init=c_init, c_hid=c_hid,
            c_final=c_final,
        )
        _check_heads("nhid", nhid, num_heads)
        if num_layers > 1:
            _check_heads("adim", adim, num_heads)
        self.in_dim, self.c_init, self.time_cond = in_dim, c_init, time_cond
        self.layers = _attention_stack(
            in_dim=in_dim, nhid=nhid, adim=adim, num_layers=num_layers, c_init=c_init, c_hid=c_hid,
            c_final=c_final, num_heads=num_heads, conv=_check_conv(conv), num_linears=num_linears,
            x_only_last=False,
        )
        fdim = c_init + c_hid * (num_layers - 1) + c_final
        self.final = MLP(fdim, 2 * fdim, 1, num_layers=num_linears, act="elu")
        dims = [in_dim] + [nhid] * (num_layers - 1)
        self.time = _TimeShift(dims, tdim=max(nhid, 16)) if time_cond else None

    def forward(self, x: Tensor, adj: Tensor, mask: Tensor, t: Tensor | None = None) -> Tensor:
        mask = mask.bool()
        _, adjs = _run_attention(self, x, adj, mask, t)
        out = self.final(torch.cat(adjs, 1).permute(0, 2, 3, 1)).squeeze(-1)
        out = 0.5 * (out + out.transpose(-1, -2))
        return out * pair_mask(mask).to(out.dtype)


# ---- the GraphState-facing denoiser ---------------------------------------------------------------------------

_X_NETS: dict[str, type[nn.Module]] = {"gcn": ScoreNetworkX, "gmh": ScoreNetworkX_GMH}


def _net_params(cls: type) -> list[str]:
    return [
        p.name for p in inspect.signature(cls.__init__).parameters.values()
        if p.name not in ("self", "in_dim") and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]


def _check_keys(where: str, cls: type, kwargs: dict, extra: tuple[str, ...] = ()) -> None:
    valid = _net_params(cls)
    for key in kwargs:
        if key == "in_dim":
            raise SchemaError(f"{where}: 'in_dim' is set from x_dim; remove it")
        if key not in valid:
            hint = suggest(key, valid + list(extra))[2:] or f"valid keys: {', '.join(list(extra) + valid)}"
            raise SchemaError(f"{where}: unknown key {key!r} for {cls.__name__}; {hint}")


class GDSSDenoiser(nn.Module):
    """GDSS's pair of score networks behind the :class:`~graphdiff.state.GraphState` interface.

    Args:
        x_net: ``{"type": "gcn" | "gmh", **kwargs}`` for :class:`ScoreNetworkX` / :class:`ScoreNetworkX_GMH`
            (``type`` defaults to ``"gcn"``; ``in_dim`` is ``x_dim``).
        adj_net: keyword arguments of :class:`ScoreNetworkA` (``in_dim`` is ``x_dim``).
        x_dim: number of continuous node feature channels.
        max_nodes: largest number of node slots a batch may have.

    Raises:
        SchemaError: an unknown network type or key (the message names the closest valid one).

    Shapes:
        state.x: ``[B, N, x_dim]`` continuous node features.
        state.e: ``[B, N, N, 1]`` continuous adjacency.
        state.mask: ``[B, N]`` bool.
        t: ``[B]`` floats in ``[0, 1]`` (or a scalar; ignored unless a network has ``time_cond``).
        output: ``GraphState(x=[B, N, x_dim] score, e=[B, N, N, 1] symmetric score, mask=state.mask)``.
    """

    def __init__(self, *, x_net: dict, adj_net: dict, x_dim: int, max_nodes: int):
        super().__init__()
        x_net, adj_net = dict(x_net or {}), dict(adj_net or {})
        kind = x_net.pop("type", "gcn")
        if kind not in _X_NETS:
            hint = suggest(kind, _X_NETS)[2:] or f"known: {', '.join(_X_NETS)}"
            raise SchemaError(f"x_net: unknown type {kind!r}; {hint}")
        _check_keys("x_net", _X_NETS[kind], x_net, extra=("type",))
        _check_keys("adj_net", ScoreNetworkA, adj_net)
        self.x_dim, self.max_nodes, self.x_type = x_dim, max_nodes, kind
        self.x_net = _X_NETS[kind](in_dim=x_dim, **x_net)
        self.adj_net = ScoreNetworkA(in_dim=x_dim, **adj_net)

    def forward(self, state: GraphState, t: Tensor | float | None, cond=None) -> GraphState:
        if cond is not None:
            raise SchemaError("GDSSDenoiser is unconditional; got a cond")
        if state.x.shape[-1] != self.x_dim:
            raise SchemaError(f"GDSSDenoiser wants x with {self.x_dim} channels, got {state.x.shape[-1]}")
        if state.e.shape[-1] != 1:
            raise SchemaError(f"GDSSDenoiser wants a one-channel adjacency e [B,N,N,1], got {tuple(state.e.shape)}")
        if state.max_nodes > self.max_nodes:
            raise SchemaError(f"batch has {state.max_nodes} node slots, more than max_nodes={self.max_nodes}")
        adj = state.e[..., 0]
        score_x = self.x_net(state.x, adj, state.mask, t)
        score_adj = self.adj_net(state.x, adj, state.mask, t)
        return GraphState(x=score_x, e=score_adj.unsqueeze(-1), mask=state.mask, schema=state.schema)
