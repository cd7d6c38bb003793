"""Small dense layers shared by the graph score networks.

Everything here works on dense, padded batches: node features ``[B, N, F]``, adjacency ``[B, N, N]`` and a bool
node mask ``[B, N]``. Layers that mix nodes take the mask so that padded slots never leak into real ones.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable

import torch
import torch.utils.checkpoint
from torch import Tensor, nn

from ..state import pair_mask

_ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "elu": nn.ELU,
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "silu": nn.SiLU,
    "gelu": nn.GELU,
    "identity": nn.Identity,
}


def activation(act: str | nn.Module | Callable[[], nn.Module]) -> nn.Module:
    """An activation module from a name (``"elu"``, ``"relu"``, ``"tanh"``, ``"silu"``, ``"gelu"``,
    ``"identity"``), a module instance, or a zero-argument factory such as ``nn.ELU``."""
    if isinstance(act, str):
        try:
            return _ACTIVATIONS[act.lower()]()
        except KeyError:
            raise ValueError(f"unknown activation {act!r}; known: {', '.join(sorted(_ACTIVATIONS))}") from None
    if isinstance(act, nn.Module):
        return act
    return act()


def gcn_normalize(adj: Tensor, mask: Tensor | None = None) -> Tensor:
    """``D^-1/2 (A + I) D^-1/2`` of :class:`DenseGCNConv`: the diagonal of ``adj`` replaced by self-loops of weight
    1, pairs touching padded nodes zeroed first, degrees clamped to at least 1. ``adj`` is ``[B, N, N]`` or has
    channel dims between: ``[B, C, N, N]`` normalises each channel (``mask`` stays ``[B, N]``)."""
    n = adj.shape[-1]
    eye = torch.eye(n, dtype=torch.bool, device=adj.device)
    a = adj.masked_fill(eye, 0.0)
    if mask is not None:
        pm = pair_mask(mask, include_diagonal=True)
        a = a * pm.view(pm.shape[0], *([1] * (a.dim() - 3)), n, n).to(a.dtype)  # [B, ..., N, N] channels
    a = a + eye.to(a.dtype)
    d = a.sum(-1).clamp(min=1.0).rsqrt()  # rsqrt, not pow(-0.5): compiled CPU kernels recompute it per pair
    return d.unsqueeze(-1) * a * d.unsqueeze(-2)


def gcn_apply(convs, x: Tensor, normalized: Tensor, mask: Tensor | None = None) -> list[Tensor]:
    """Several :class:`DenseGCNConv` layers on the same input and adjacency in one pass: their weights side by side
    in one ``x W`` and one ``A_hat (x W)`` product (fewer, larger kernels; the same values as one at a time up to
    float rounding). Returns one output per layer."""
    w = convs[0].weight if len(convs) == 1 else torch.cat([c.weight for c in convs], 1)
    h = x @ w
    if mask is not None:
        h = h * mask.unsqueeze(-1).to(h.dtype)
    out = normalized @ h
    if all(c.bias is not None for c in convs):
        out = out + (convs[0].bias if len(convs) == 1 else torch.cat([c.bias for c in convs]))
    elif any(c.bias is not None for c in convs):
        parts = out.split([c.out_dim for c in convs], -1)
        out = torch.cat([p if c.bias is None else p + c.bias for p, c in zip(parts, convs)], -1)
    if mask is not None:
        out = out * mask.unsqueeze(-1).to(out.dtype)
    return list(out.split([c.out_dim for c in convs], -1)) if len(convs) > 1 else [out]


class DenseGCNConv(nn.Module):
    """Graph convolution on a dense, padded adjacency: ``D^-1/2 (A + I) D^-1/2 X W + b``.

    The diagonal of ``A`` is ignored (replaced by the self-loop of weight 1), pairs touching padded nodes are
    zeroed before the degrees are taken, degrees are clamped to at least 1 (continuous, possibly negative,
    adjacencies stay finite) and the output is zero at padded slots. Real nodes therefore never see padded ones.

    Args:
        in_dim: input node feature size.
        out_dim: output node feature size.
        bias: add a learned bias.

    Shapes:
        x: ``[B, N, in_dim]``.
        adj: ``[B, N, N]`` weighted adjacency.
        mask: ``[B, N]`` bool or ``None`` (all real).
        output: ``[B, N, out_dim]``.
    """

    def __init__(self, in_dim: int, out_dim: int, bias: bool = True):
        super().__init__()
        self.in_dim, self.out_dim = in_dim, out_dim
        self.weight = nn.Parameter(torch.empty(in_dim, out_dim))
        self.bias = nn.Parameter(torch.zeros(out_dim)) if bias else None
        nn.init.xavier_uniform_(self.weight)

    def forward(self, x: Tensor, adj: Tensor, mask: Tensor | None = None, *, normalized: Tensor | None = None
                ) -> Tensor:
        """``normalized``: :func:`gcn_normalize` of ``(adj, mask)`` when the caller already has it (several
        convolutions on one adjacency share it); ``adj`` is then not read."""
        return gcn_apply((self,), x, gcn_normalize(adj, mask) if normalized is None else normalized, mask)[0]

    def extra_repr(self) -> str:
        return f"{self.in_dim}, {self.out_dim}, bias={self.bias is not None}"


class Linear(nn.Linear):
    """``nn.Linear`` (the same parameters and state dict) whose bias, under ``torch.compile``, is added after the
    product: the compiled graph then fuses the addition into the next elementwise kernel (an activation, a
    residual), where ``addmm`` first copies the bias into every output row, a visible share of compiled CPU
    sampling for GDSS and DeFoG in ``torch.profiler``. Eager it is ``nn.Linear``."""

    def forward(self, x: Tensor) -> Tensor:
        if self.bias is not None and torch.compiler.is_compiling():
            y = nn.functional.linear(x, self.weight)
            return y + self.bias.to(y.dtype)  # under autocast y is bf16/fp16: keep it so, as nn.Linear does
        return nn.functional.linear(x, self.weight, self.bias)


class MLP(nn.Module):
    """``num_layers`` linear layers with an activation between them (none after the last), on the last dim.

    Args:
        in_dim: input size.
        hidden_dim: size of every hidden layer.
        out_dim: output size.
        num_layers: number of linear layers (1 means a single ``in_dim -> out_dim`` linear map).
        act: activation between layers (see :func:`activation`).

    Shapes:
        input: ``[..., in_dim]``.
        output: ``[..., out_dim]``.
    """

    def __init__(
        self, in_dim: int, hidden_dim: int, out_dim: int, num_layers: int = 2,
        act: str | nn.Module | Callable[[], nn.Module] = "elu",
    ):
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"MLP needs num_layers >= 1, got {num_layers}")
        dims = [in_dim] + [hidden_dim] * (num_layers - 1) + [out_dim]
        self.linears = nn.ModuleList(Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))
        self.act = activation(act)
        for lin in self.linears:
            nn.init.xavier_uniform_(lin.weight)
            nn.init.zeros_(lin.bias)

    def forward(self, x: Tensor) -> Tensor:
        for i, lin in enumerate(self.linears):
            x = lin(x)
            if i < len(self.linears) - 1:
                x = self.act(x)
        return x


def timestep_embedding(t: Tensor, dim: int, max_period: float = 10000.0) -> Tensor:
    """Sinusoidal embedding of (continuous) times: ``[cos(t w_k), sin(t w_k)]`` with geometric frequencies.

    Frequencies run from 1 down to ``1 / max_period``; times in ``[0, 1]`` are best scaled up first (the
    networks here use ``1000 t``). An odd ``dim`` gets one trailing zero.

    Args:
        t: ``[B]`` times (a 0-dim tensor is treated as one time).
        dim: embedding size.
        max_period: the slowest period.

    Returns:
        ``[B, dim]`` embedding in the dtype of ``t`` (float32 for integer ``t``).
    """
    t = t.reshape(-1)
    if not torch.is_floating_point(t):
        t = t.float()
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device, dtype=t.dtype) / max(half, 1))
    args = t.unsqueeze(-1) * freqs.unsqueeze(0)
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    if dim % 2:
        emb = torch.nn.functional.pad(emb, (0, 1))
    return emb


class TimeEmbedding(nn.Module):
    """Sinusoidal embedding of ``scale * t`` followed by a two-layer SiLU MLP.

    Args:
        dim: embedding (and output) size.
        scale: factor applied to ``t`` before the sinusoids (times in ``[0, 1]`` want about 1000).

    Shapes:
        t: ``[B]`` (or a scalar, broadcast to ``[1]``).
        output: ``[B, dim]``.
    """

    def __init__(self, dim: int, scale: float = 1000.0):
        super().__init__()
        self.dim, self.scale = dim, scale
        self.mlp = MLP(dim, dim, dim, num_layers=2, act="silu")

    def forward(self, t: Tensor) -> Tensor:
        return self.mlp(timestep_embedding(t.reshape(-1) * self.scale, self.dim))


def check_sizes(sizes: dict, *, cond_dim: int, dropout: float) -> None:
    """One-line ConfigErrors for a denoiser's layer sizes (each >= 1), ``cond_dim`` (>= 0) and ``dropout``."""
    from ..errors import ConfigError

    def whole(key, val) -> int:
        if isinstance(val, bool) or not (isinstance(val, numbers.Integral)
                                         or (isinstance(val, numbers.Real) and float(val).is_integer())):
            raise ConfigError(f"{key} must be an integer, got {val!r}")
        return int(val)

    for key, val in sizes.items():
        if whole(key, val) < 1:
            raise ConfigError(f"{key} must be >= 1, got {val}")
    if whole("cond_dim", cond_dim) < 0:
        raise ConfigError(f"cond_dim must be >= 0, got {cond_dim}")
    if isinstance(dropout, bool) or not isinstance(dropout, numbers.Real):
        raise ConfigError(f"dropout must be a number in [0, 1), got {dropout!r}")
    if not 0.0 <= float(dropout) < 1.0:
        raise ConfigError(f"dropout must be in [0, 1), got {dropout}")


def check_inputs(net, state, t, cond):
    """Check a categorical denoiser's inputs against ``net.node_dim / edge_dim / max_nodes / cond_dim``; return
    ``t`` as ``[B]`` and ``cond`` as ``[B, cond_dim]`` (zeros when ``None``). Errors are one-line SchemaErrors."""
    from ..errors import SchemaError

    b, n = state.mask.shape
    if state.x.shape[-1] != net.node_dim:
        raise SchemaError(f"x has {state.x.shape[-1]} channels, the model was built with node_dim={net.node_dim}")
    if state.e.shape[-1] != net.edge_dim:
        raise SchemaError(f"e has {state.e.shape[-1]} channels, the model was built with edge_dim={net.edge_dim}")
    if n > net.max_nodes:
        raise SchemaError(f"batch has {n} node slots, more than max_nodes={net.max_nodes}")
    dev, dt = state.x.device, state.x.dtype
    t = torch.as_tensor(t, device=dev).to(dt).reshape(-1)
    if t.numel() == 1:
        t = t.expand(b)
    if t.shape != (b,):
        raise SchemaError(f"t must be [B] = [{b}] or a scalar, got {tuple(t.shape)}")
    if cond is None:
        return t, state.x.new_zeros(b, net.cond_dim)
    cond = torch.as_tensor(cond, device=dev).to(dt)
    if cond.dim() == 1 and net.cond_dim == 1 and cond.shape[0] == b:
        cond = cond.unsqueeze(-1)
    if cond.dim() != 2 or cond.shape[-1] != net.cond_dim:
        cols = cond.shape[-1] if cond.dim() == 2 else f"shape {tuple(cond.shape)} and no"
        raise SchemaError(f"cond has {cols} columns, the model was built with cond_dim={net.cond_dim}")
    if cond.shape[0] != b:
        raise SchemaError(f"cond has {cond.shape[0]} rows, the batch has {b} graphs")
    return t, cond


def run_layers(layers, x: Tensor, e: Tensor, y: Tensor, extra, *, checkpoint: bool = False):
    """Apply ``layer(x, e, y, extra) -> (x, e, y)`` for each layer, optionally with activation checkpointing.

    With ``checkpoint`` and gradients enabled, each layer's activations are dropped after its forward pass and
    recomputed in the backward pass (``torch.utils.checkpoint``, non-reentrant): peak training memory falls to
    about one layer's activations for roughly one more forward pass of compute. Results are identical.
    """
    use = checkpoint and torch.is_grad_enabled()
    for layer in layers:
        if use:
            x, e, y = torch.utils.checkpoint.checkpoint(layer, x, e, y, extra, use_reentrant=False)
        else:
            x, e, y = layer(x, e, y, extra)
    return x, e, y
