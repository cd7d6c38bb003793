"""GDSS score networks (Jo, Lee & Hwang, ICML 2022, "Score-based Generative Modeling of Graphs via the System of
Stochastic Differential Equations").

GDSS diffuses node features ``X`` and a continuous adjacency ``A`` jointly and learns one score network per
component: :class:`ScoreNetworkX` (dense GCN) or :class:`ScoreNetworkX_GMH` (graph multi-head attention) for
``X``, and :class:`ScoreNetworkA` (graph multi-head attention over the adjacency powers ``A^1..A^c``) for ``A``.
:class:`~graphdiff.nn.gdss_denoiser.GDSSDenoiser` wraps the pair behind the :class:`~graphdiff.state.GraphState`
interface.

All networks are permutation equivariant and never let padded slots influence real ones. As in the paper they are
not conditioned on the diffusion time by default; ``time_cond=True`` adds a sinusoidal time embedding.

Two variants of the attention networks exist (``variant=``):

- ``"gdss"`` (default): parameter for parameter the authors' networks (github.com/harryjo97/GDSS), so that their
  released checkpoints load (:mod:`graphdiff.convert.checkpoints`). Attention logits are scaled by
  ``sqrt(value size)``; with ``conv="MLP"`` queries and keys are 2-layer tanh MLPs and values a GCN; a layer's node
  output is a 2-layer ELU MLP over the concatenated per-channel values; its adjacency output is ``M + M^T``; the
  final pair MLP of :class:`ScoreNetworkA` has 3 layers; :class:`ScoreNetworkX_GMH` reads ``num_linears`` and
  applies tanh to each layer's (already tanh-ed) node output, as the authors' code does.
- ``"graphdiff-v1"``: the networks of graphdiff before 0.2 (``sqrt(head size)`` scaling, linear queries/keys/
  values, node output one linear map of the channel mean, adjacency output ``(M + M^T) / 2``, final MLP of
  ``num_linears`` layers, ``num_linears = 2`` in :class:`ScoreNetworkX_GMH`). Checkpoints written before the
  variant existed name no variant and load as this one (see :func:`graphdiff.config._upgrade`).
"""

from __future__ import annotations


import math

import torch
from torch import Tensor, nn

from ..checks import suggest
from ..errors import SchemaError
from ..state import pair_mask
from .gdss_pairs import adjacency_powers, head_blocks, head_dots, symmetric_pair_mlp, tanh
from .layers import MLP, DenseGCNConv, TimeEmbedding, gcn_apply, gcn_normalize

__all__ = [
    "GraphMultiHeadAttention",
    "AttentionLayer",
    "ScoreNetworkX",
    "ScoreNetworkX_GMH",
    "ScoreNetworkA",
    "adjacency_powers",
    "VARIANTS",
]

_CONVS = ("GCN", "MLP")
VARIANTS = ("gdss", "graphdiff-v1")


def _node_mask(x: Tensor, mask: Tensor) -> Tensor:
    return x * mask.unsqueeze(-1).to(x.dtype)


def _check_conv(conv: str) -> str:
    if conv not in _CONVS:
        hint = suggest(conv, _CONVS)
        raise SchemaError(f"conv must be one of {', '.join(_CONVS)}, got {conv!r}{hint}")
    return conv


def _check_variant(variant: str) -> str:
    if variant not in VARIANTS:
        hint = suggest(variant, VARIANTS)
        raise SchemaError(f"variant must be one of {', '.join(VARIANTS)}, got {variant!r}{hint}")
    return variant


def _torch_init(module: nn.Module) -> nn.Module:
    """PyTorch's default ``nn.Linear`` initialisation (what the authors' GDSS MLPs start from)."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            m.reset_parameters()
    return module


def _check_heads(name: str, dim: int, num_heads: int) -> None:
    if num_heads < 1 or dim % num_heads:
        raise SchemaError(f"{name}={dim} must be a positive multiple of num_heads={num_heads}")


def _check_positive(**kwargs: int) -> None:
    from ..checks import as_integer

    for k, v in kwargs.items():
        if as_integer(v) is None or v < 1:
            raise SchemaError(f"{k} must be an integer >= 1, got {v!r}")


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

    ``Q`` and ``K`` are a GCN (``conv="GCN"``) or, with ``conv="MLP"``, a 2-layer tanh MLP (variant ``gdss``) or
    a linear map (``graphdiff-v1``) of ``x``; ``V`` is a GCN (``graphdiff-v1`` with ``"MLP"``: a linear map). The
    attention map is ``tanh(Q_h K_h^T / s)`` averaged over the heads, symmetrised as ``(S + S^T) / 2`` and zeroed
    on pairs touching padded nodes; ``s = sqrt(out_dim)`` (``gdss``) or ``sqrt(attn_dim / num_heads)``
    (``graphdiff-v1``).

    Args:
        in_dim: node feature size.
        attn_dim: total query/key size, split over ``num_heads`` heads.
        out_dim: value size.
        num_heads: number of heads.
        conv: ``"GCN"`` or ``"MLP"``.
        compute_value: build ``V`` (a layer whose node output is unused can skip it).
        compute_attention: build ``Q`` and ``K`` (a layer whose adjacency output is unused can skip them: as in
            GDSS, the attention map feeds only the new adjacency channels, never the values).
        variant: ``"gdss"`` or ``"graphdiff-v1"`` (see the module docstring).

    Shapes:
        x: ``[B, N, in_dim]``.
        adj: ``[B, N, N]``.
        mask: ``[B, N]`` bool.
        output: ``(value [B, N, out_dim] or None, attention [B, N, N] or None)``.
    """

    def __init__(
        self, in_dim: int, attn_dim: int, out_dim: int, num_heads: int = 4, conv: str = "GCN",
        compute_value: bool = True, compute_attention: bool = True, variant: str = "gdss",
    ):
        super().__init__()
        _check_heads("attention dim", attn_dim, num_heads)
        self.conv = _check_conv(conv)
        self.variant = _check_variant(variant)
        self.num_heads, self.head_dim = num_heads, attn_dim // num_heads
        self.scale = math.sqrt(out_dim if variant == "gdss" else self.head_dim)

        def make(o: int, value: bool) -> nn.Module:
            if conv == "GCN" or (value and variant == "gdss"):
                return DenseGCNConv(in_dim, o)
            if variant == "gdss":
                return _torch_init(MLP(in_dim, 2 * o, o, num_layers=2, act="tanh"))
            lin = nn.Linear(in_dim, o)
            nn.init.xavier_uniform_(lin.weight)
            nn.init.zeros_(lin.bias)
            return lin

        self.q = make(attn_dim, False) if compute_attention else None
        self.k = make(attn_dim, False) if compute_attention else None
        self.v = make(out_dim, True) if compute_value else None
        if compute_attention:  # not saved: a constant of the shapes
            self.register_buffer("head_blocks", head_blocks(num_heads, self.head_dim), persistent=False)

    def forward(self, x: Tensor, adj: Tensor, mask: Tensor) -> tuple[Tensor | None, Tensor | None]:
        scores = None
        gcn = [m for m in (self.q, self.k, self.v) if isinstance(m, DenseGCNConv)]
        done = {}
        if gcn:  # the convolutions on this channel share its normalised adjacency and run as one product
            done = dict(zip(map(id, gcn), gcn_apply(gcn, x, gcn_normalize(adj, mask), mask)))
        if self.q is not None:
            q = self._conv(self.q, x, adj, mask, done)
            k = self._conv(self.k, x, adj, mask, done)
            scores = self.attention_map(q, k) * pair_mask(mask, include_diagonal=True).to(q.dtype)
        v = self._conv(self.v, x, adj, mask, done) if self.v is not None else None
        return v, scores

    def attention_map(self, q: Tensor, k: Tensor) -> Tensor:
        """``(S + S^T) / 2`` with ``S = tanh(Q_h K_h^T / s)`` averaged over the heads: ``q, k [..., N, attn_dim]
        -> [..., N, N]`` (leading dims are batched: one graph's channel, or a batch of channels), unmasked."""
        *lead, n, d = q.shape
        m = math.prod(lead)
        dots = head_dots(q.reshape(m, n, d), k.reshape(m, n, d), self.num_heads, self.head_blocks)
        s = tanh(dots / self.scale).mean(1).view(*lead, n, n)
        return 0.5 * (s + s.transpose(-1, -2))

    @staticmethod
    def _conv(layer: nn.Module, x: Tensor, adj: Tensor, mask: Tensor, done: dict) -> Tensor:
        if id(layer) in done:
            return done[id(layer)]
        if isinstance(layer, DenseGCNConv):
            return layer(x, adj, mask)
        return _node_mask(layer(x), mask)


class AttentionLayer(nn.Module):
    """One GDSS attention layer: graph multi-head attention on every input adjacency channel.

    New node features are ``tanh(MLP(concat_c V_c))`` (variant ``gdss``: 2 layers, ELU, hidden
    ``2 max(c_in, c_out)``) or ``tanh(W mean_c V_c)`` (``graphdiff-v1``). New adjacency channels are an MLP
    (``num_linears`` layers, ELU, hidden ``2 max(c_in, c_out)``) over each pair's stacked attention maps
    concatenated with the input channels, symmetrised (``M + M^T``, ``graphdiff-v1``: ``(M + M^T) / 2``) and
    masked.

    Args:
        in_dim: input node feature size.
        attn_dim: query/key size of each attention.
        out_dim: output node feature size (the value size).
        c_in: number of input adjacency channels.
        c_out: number of output adjacency channels.
        num_heads: attention heads.
        conv: ``"GCN"`` or ``"MLP"`` for ``Q``, ``K`` (and ``V`` in ``graphdiff-v1``).
        num_linears: layers of the adjacency MLP.
        compute_x: produce node features (off for a last layer whose node output is unused).
        compute_adj: produce adjacency channels (off for a last layer whose adjacency output is unused).
        variant: ``"gdss"`` or ``"graphdiff-v1"``.

    Shapes:
        x: ``[B, N, in_dim]``.
        adj: ``[B, c_in, N, N]``.
        mask: ``[B, N]`` bool.
        output: ``(x [B, N, out_dim] or None, adj [B, c_out, N, N] or None)``, both zero on padded slots.
    """

    def __init__(
        self, *, in_dim: int, attn_dim: int, out_dim: int, c_in: int, c_out: int, num_heads: int = 4,
        conv: str = "GCN", num_linears: int = 2, compute_x: bool = True, compute_adj: bool = True,
        variant: str = "gdss",
    ):
        super().__init__()
        _check_positive(c_in=c_in, c_out=c_out, num_linears=num_linears)
        self.c_in, self.c_out, self.variant = c_in, c_out, _check_variant(variant)
        gdss = variant == "gdss"
        hidden = 2 * max(c_in, c_out)
        self.attn = nn.ModuleList(
            GraphMultiHeadAttention(
                in_dim, attn_dim, out_dim, num_heads, conv, compute_value=compute_x, compute_attention=compute_adj,
                variant=variant,
            )
            for _ in range(c_in)
        )
        self.x_out = None
        if compute_x and gdss:
            self.x_out = _torch_init(MLP(c_in * out_dim, hidden, out_dim, num_layers=2, act="elu"))
        elif compute_x:
            self.x_out = nn.Linear(out_dim, out_dim)
            nn.init.xavier_uniform_(self.x_out.weight)
            nn.init.zeros_(self.x_out.bias)
        self.adj_mlp = None
        if compute_adj:
            self.adj_mlp = MLP(2 * c_in, hidden, c_out, num_linears, act="elu")
            if gdss:
                _torch_init(self.adj_mlp)
        self.adj_sym = 1.0 if gdss else 0.5

    def forward(self, x: Tensor, adj: Tensor, mask: Tensor) -> tuple[Tensor | None, Tensor | None]:
        if self.attn[0].conv == "GCN":
            values, maps = self._gcn_channels(x, adj, mask)
        else:
            per_channel = [attn(x, adj[:, c], mask) for c, attn in enumerate(self.attn)]
            values = torch.stack([v for v, _ in per_channel], 1) if self.x_out is not None else None
            maps = torch.stack([s for _, s in per_channel], -1) if self.adj_mlp is not None else None
        x_new = None
        if self.x_out is not None:  # values [B, C, N, D]
            b, c, n, d = values.shape
            h = values.transpose(1, 2).reshape(b, n, c * d) if self.variant == "gdss" else values.mean(1)
            x_new = _node_mask(tanh(self.x_out(h)), mask)
        adj_new = None
        if self.adj_mlp is not None:
            # M + M^T of a symmetric M is 2 M (symmetric_pair_mlp returns the symmetrised M)
            a = symmetric_pair_mlp(self.adj_mlp, [maps, adj.permute(0, 2, 3, 1)], diagonal=True, channels_first=True)
            adj_new = ((2.0 * self.adj_sym) * a) * pair_mask(mask, include_diagonal=True).unsqueeze(1).to(a.dtype)
        return x_new, adj_new

    def _gcn_channels(self, x: Tensor, adj: Tensor, mask: Tensor) -> tuple[Tensor | None, Tensor | None]:
        """Every channel's :class:`GraphMultiHeadAttention` (``conv="GCN"``) at once, the same function as one
        channel at a time: the channels' ``Q``, ``K``, ``V`` weights side by side in one ``x W`` product, the
        normalised adjacencies of all channels in one batched ``A_hat (x W)`` product and one batch of head dot
        products (at QM9's 9 nodes, per-channel kernels spent most of their time on loop overhead and strided reads).
        Returns ``(values [B, C, N, D] or None, attention maps [B, N, N, C] or None)``."""
        first = self.attn[0]
        convs = [[m for m in (a.q, a.k, a.v) if m is not None] for a in self.attn]
        sizes = [m.out_dim for m in convs[0]]
        if not sizes:  # neither node nor adjacency output
            return None, None
        w = torch.stack([torch.cat([m.weight for m in ms], 1) for ms in convs], 1)  # [F, C, D]
        bias = torch.stack([torch.cat([m.bias if m.bias is not None else m.weight.new_zeros(m.out_dim) for m in ms])
                            for ms in convs])  # [C, D]
        (b, n, f), (_, c, d) = x.shape, w.shape
        node = mask.to(x.dtype)
        h = (x @ w.reshape(f, c * d)).view(b, n, c, d) * node.view(b, n, 1, 1)
        out = gcn_normalize(adj, mask) @ h.transpose(1, 2) + bias.unsqueeze(1)  # [B, C, N, D]
        out = out * node.view(b, 1, n, 1)
        parts = dict(zip(("q", "k", "v") if first.q is not None else ("v",), out.split(sizes, -1)))
        maps = None
        if first.q is not None:
            s = first.attention_map(parts["q"], parts["k"])  # [B, C, N, N]
            maps = (s * pair_mask(mask, include_diagonal=True).unsqueeze(1).to(s.dtype)).permute(0, 2, 3, 1)
        return parts.get("v"), maps


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
        a_hat = gcn_normalize(adj, mask)  # every layer convolves with the same adjacency
        for i, conv in enumerate(self.layers):
            h = conv(x, adj, mask, normalized=a_hat)
            if shifts is not None:
                h = h + shifts[i]
            x = _node_mask(tanh(h), mask)
            xs.append(x)
        return _node_mask(self.final(torch.cat(xs, -1)), mask)


def _attention_stack(
    *, in_dim: int, nhid: int, adim: int, num_layers: int, c_init: int, c_hid: int, c_final: int, num_heads: int,
    conv: str, num_linears: int, x_only_last: bool, variant: str,
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
            variant=variant,
        ))
    return nn.ModuleList(layers)


class ScoreNetworkX_GMH(nn.Module):
    """GDSS node-feature score network with graph multi-head attention over adjacency powers.

    The adjacency powers ``A^1..A^c_init`` feed ``depth`` attention layers (``c_init -> c_hid -> ...``); the
    input and every layer's node output (variant ``gdss``: passed through tanh once more, as the authors' code
    does) are concatenated and mapped to ``in_dim`` by a 3-layer ELU MLP. The last layer's adjacency output is
    unused, so it is not computed (``c_final`` is accepted for GDSS configs).

    Args:
        in_dim: node feature size (input and output).
        depth: number of attention layers.
        nhid: hidden node size (and the first layer's attention size).
        adim: attention size of the later layers.
        num_heads: attention heads (must divide ``nhid`` and ``adim``).
        conv: ``"GCN"`` or ``"MLP"`` for queries and keys (and values in ``graphdiff-v1``).
        c_init: number of adjacency powers.
        c_hid: hidden adjacency channels.
        c_final: adjacency channels of the last layer (unused here).
        num_linears: layers of the adjacency MLPs inside the attention layers (``graphdiff-v1``: 2 only).
        time_cond: condition on ``t`` (a time embedding added to each layer's input node features).
        variant: ``"gdss"`` (the authors' network) or ``"graphdiff-v1"`` (see the module docstring).

    Shapes:
        x: ``[B, N, in_dim]``.
        adj: ``[B, N, N]``.
        mask: ``[B, N]`` bool.
        t: ``[B]`` or ``None``.
        output: ``[B, N, in_dim]``, zero at padded slots.
    """

    def __init__(
        self, *, in_dim: int, depth: int = 2, nhid: int = 16, adim: int = 16, num_heads: int = 4,
        conv: str = "GCN", c_init: int = 2, c_hid: int = 8, c_final: int = 4, num_linears: int = 2,
        time_cond: bool = False, variant: str = "gdss",
    ):
        super().__init__()
        _check_positive(in_dim=in_dim, depth=depth, nhid=nhid, c_init=c_init, c_hid=c_hid, c_final=c_final,
                        num_linears=num_linears)
        _check_heads("nhid", nhid, num_heads)
        if depth > 1:
            _check_heads("adim", adim, num_heads)
        if _check_variant(variant) == "graphdiff-v1" and num_linears != 2:
            raise SchemaError(f"num_linears={num_linears}: variant 'graphdiff-v1' of ScoreNetworkX_GMH has 2; use "
                              "variant 'gdss'")
        self.in_dim, self.c_init, self.time_cond, self.variant = in_dim, c_init, time_cond, variant
        self.layers = _attention_stack(
            in_dim=in_dim, nhid=nhid, adim=adim, num_layers=depth, c_init=c_init, c_hid=c_hid, c_final=c_final,
            num_heads=num_heads, conv=_check_conv(conv), num_linears=num_linears, x_only_last=True, variant=variant,
        )
        fdim = in_dim + depth * nhid
        self.final = MLP(fdim, 2 * fdim, in_dim, num_layers=3, act="elu")
        if variant == "gdss":
            _torch_init(self.final)
        dims = [in_dim] + [nhid] * (depth - 1)
        self.time = _TimeShift(dims, tdim=max(nhid, 16)) if time_cond else None

    def forward(self, x: Tensor, adj: Tensor, mask: Tensor, t: Tensor | None = None) -> Tensor:
        mask = mask.bool()
        xs, _ = _run_attention(self, x, adj, mask, t, x_act=self.variant == "gdss")
        return _node_mask(self.final(torch.cat(xs, -1)), mask)


def _run_attention(net, x: Tensor, adj: Tensor, mask: Tensor, t, x_act: bool = False
                   ) -> tuple[list[Tensor], list[Tensor]]:
    """Run ``net.layers`` (attention layers) over the adjacency powers; node features and adjacency channels of
    the input and of every layer, with ``net.time`` (if any) shifting each layer's input node features and, with
    ``x_act``, tanh applied to each layer's node output."""
    x = _node_mask(x, mask)
    adjc = adjacency_powers(adj, net.c_init, mask)
    shifts = net.time(_time(t, x.shape[0], x)) if net.time is not None else None
    xs, adjs = [x], [adjc]
    for i, layer in enumerate(net.layers):
        h = _node_mask(x + shifts[i], mask) if shifts is not None else x
        x, adjc = layer(h, adjc, mask)
        if x_act and x is not None:
            x = tanh(x)
        xs.append(x)
        adjs.append(adjc)
    return xs, adjs


class ScoreNetworkA(nn.Module):
    """GDSS adjacency score network: graph multi-head attention over adjacency powers.

    The powers ``A^1..A^c_init`` (masked) go through ``num_layers`` attention layers
    (``c_init -> c_hid -> ... -> c_hid -> c_final``), each producing new node features and adjacency channels.
    The adjacency channels of the input and of every layer (``c_init + c_hid (L-1) + c_final``) are mapped per
    pair to one value by an ELU MLP of 3 layers (variant ``graphdiff-v1``: ``num_linears`` layers). The last
    layer's node output is unused, so it is not computed.

    Args:
        in_dim: node feature size.
        nhid: hidden node size (and the first layer's attention size).
        num_layers: number of attention layers.
        num_linears: layers of the adjacency MLP inside each attention layer (``graphdiff-v1``: and of the final
            one).
        c_init: number of adjacency powers.
        c_hid: hidden adjacency channels.
        c_final: adjacency channels of the last layer.
        adim: attention size of the later layers.
        num_heads: attention heads (must divide ``nhid`` and ``adim``).
        conv: ``"GCN"`` or ``"MLP"`` for queries and keys (and values in ``graphdiff-v1``).
        time_cond: condition on ``t`` (a time embedding added to each layer's input node features).
        variant: ``"gdss"`` (the authors' network) or ``"graphdiff-v1"`` (see the module docstring).

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
        time_cond: bool = False, variant: str = "gdss",
    ):
        super().__init__()
        _check_positive(
            in_dim=in_dim, nhid=nhid, num_layers=num_layers, num_linears=num_linears, c_init=c_init, c_hid=c_hid,
            c_final=c_final,
        )
        _check_heads("nhid", nhid, num_heads)
        if num_layers > 1:
            _check_heads("adim", adim, num_heads)
        self.in_dim, self.c_init, self.time_cond, self.variant = in_dim, c_init, time_cond, _check_variant(variant)
        self.layers = _attention_stack(
            in_dim=in_dim, nhid=nhid, adim=adim, num_layers=num_layers, c_init=c_init, c_hid=c_hid,
            c_final=c_final, num_heads=num_heads, conv=_check_conv(conv), num_linears=num_linears,
            x_only_last=False, variant=variant,
        )
        fdim = c_init + c_hid * (num_layers - 1) + c_final
        self.final = MLP(fdim, 2 * fdim, 1, num_layers=3 if variant == "gdss" else num_linears, act="elu")
        if variant == "gdss":
            _torch_init(self.final)
        dims = [in_dim] + [nhid] * (num_layers - 1)
        self.time = _TimeShift(dims, tdim=max(nhid, 16)) if time_cond else None

    def forward(self, x: Tensor, adj: Tensor, mask: Tensor, t: Tensor | None = None) -> Tensor:
        mask = mask.bool()
        _, adjs = _run_attention(self, x, adj, mask, t)
        out = symmetric_pair_mlp(self.final, [a.permute(0, 2, 3, 1) for a in adjs], diagonal=False).squeeze(-1)
        return out * pair_mask(mask).to(out.dtype)
