"""The GDSS authors' score networks written out independently for the tests: their parameter layout (names and
shapes, as their checkpoints hold them) and a plain functional forward pass over such a parameter dict.

Written from the GDSS paper (Jo et al. 2022, Sec. 3 and App. C) and the layout of the released checkpoints, not
from graphdiff's modules, so that agreement with :mod:`graphdiff.nn.gdss` is evidence and not a tautology.
"""

import math

import torch
import torch.nn.functional as F


# ---- layout ---------------------------------------------------------------------------------------------------
def _linear(out: dict, name: str, i: int, o: int, g: torch.Generator) -> None:
    out[f"{name}.weight"] = torch.randn(o, i, generator=g, dtype=torch.float64) / math.sqrt(i)
    out[f"{name}.bias"] = torch.randn(o, generator=g, dtype=torch.float64) * 0.1


def _mlp(out: dict, name: str, dims: list[int], g) -> None:
    if len(dims) == 2:
        _linear(out, f"{name}.linear", dims[0], dims[1], g)
    for j, (i, o) in enumerate(zip(dims[:-1], dims[1:])):
        if len(dims) > 2:
            _linear(out, f"{name}.linears.{j}", i, o, g)


def _gcn(out: dict, name: str, i: int, o: int, g) -> None:
    out[f"{name}.weight"] = torch.randn(i, o, generator=g, dtype=torch.float64) / math.sqrt(i)
    out[f"{name}.bias"] = torch.randn(o, generator=g, dtype=torch.float64) * 0.1


def _attention_layer(out, pre, *, nl, f_in, attn, nhid, c_in, c_out, conv, g):
    for c in range(c_in):
        for qk in ("gnn_q", "gnn_k"):
            if conv == "GCN":
                _gcn(out, f"{pre}.attn.{c}.{qk}", f_in, attn, g)
            else:
                _mlp(out, f"{pre}.attn.{c}.{qk}", [f_in, 2 * attn, attn], g)
        _gcn(out, f"{pre}.attn.{c}.gnn_v", f_in, nhid, g)
    hid = 2 * max(c_in, c_out)
    _mlp(out, f"{pre}.mlp", [2 * c_in] + [hid] * (nl - 1) + [c_out], g)
    _mlp(out, f"{pre}.multi_channel", [c_in * nhid, hid, nhid], g)


def _stack(out, *, nf, nhid, adim, layers, nl, c_init, c_hid, c_final, conv, g):
    for i in range(layers):
        first, last = i == 0, i == layers - 1
        _attention_layer(out, f"layers.{i}", nl=nl, f_in=nf if first else nhid, attn=nhid if first else adim,
                         nhid=nhid, c_in=c_init if first else c_hid, c_out=c_final if last else c_hid, conv=conv, g=g)


def layout_a(*, nf, nhid, num_layers, num_linears, c_init, c_hid, c_final, adim, num_heads=4, conv="GCN",
             seed=0) -> dict:
    """A random state dict of the authors' ScoreNetworkA."""
    g, out = torch.Generator().manual_seed(seed), {}
    _stack(out, nf=nf, nhid=nhid, adim=adim, layers=num_layers, nl=num_linears, c_init=c_init, c_hid=c_hid,
           c_final=c_final, conv=conv, g=g)
    fdim = c_init + c_hid * (num_layers - 1) + c_final
    _mlp(out, "final", [fdim, 2 * fdim, 2 * fdim, 1], g)
    return out


def layout_x_gmh(*, nf, depth, nhid, num_linears, c_init, c_hid, c_final, adim, num_heads=4, conv="GCN",
                 seed=0) -> dict:
    g, out = torch.Generator().manual_seed(seed), {}
    _stack(out, nf=nf, nhid=nhid, adim=adim, layers=depth, nl=num_linears, c_init=c_init, c_hid=c_hid,
           c_final=c_final, conv=conv, g=g)
    fdim = nf + depth * nhid
    _mlp(out, "final", [fdim, 2 * fdim, 2 * fdim, nf], g)
    return out


def layout_x(*, nf, depth, nhid, seed=0) -> dict:
    g, out = torch.Generator().manual_seed(seed), {}
    for i in range(depth):
        _gcn(out, f"layers.{i}", nf if i == 0 else nhid, nhid, g)
    fdim = nf + depth * nhid
    _mlp(out, "final", [fdim, 2 * fdim, 2 * fdim, nf], g)
    return out


# ---- forward ---------------------------------------------------------------------------------------------------
def _lin(p, name, x):
    return x @ p[f"{name}.weight"].T + p[f"{name}.bias"]


def mlp(p, name, x, act):
    if f"{name}.linear.weight" in p:
        return _lin(p, f"{name}.linear", x)
    j = 0
    while f"{name}.linears.{j + 1}.weight" in p:
        x = act(_lin(p, f"{name}.linears.{j}", x))
        j += 1
    return _lin(p, f"{name}.linears.{j}", x)


def gcn(p, name, x, adj):
    """Kipf-Welling GCN on a dense adjacency: self-loops of weight 1 replace the diagonal, degrees clamped to 1."""
    n = adj.shape[-1]
    eye = torch.eye(n, dtype=adj.dtype)
    a = adj * (1 - eye) + eye
    d = a.sum(-1).clamp(min=1) ** -0.5
    return (d[..., :, None] * a * d[..., None, :]) @ (x @ p[f"{name}.weight"]) + p[f"{name}.bias"]


def attention(p, name, x, adj, *, heads, value_dim, conv):
    if conv == "GCN":
        q, k = gcn(p, f"{name}.gnn_q", x, adj), gcn(p, f"{name}.gnn_k", x, adj)
    else:
        q, k = mlp(p, f"{name}.gnn_q", x, torch.tanh), mlp(p, f"{name}.gnn_k", x, torch.tanh)
    v = gcn(p, f"{name}.gnn_v", x, adj)
    d = q.shape[-1] // heads
    maps = [torch.tanh(q[..., h * d:(h + 1) * d] @ k[..., h * d:(h + 1) * d].transpose(-1, -2)
                       / math.sqrt(value_dim)) for h in range(heads)]
    s = torch.stack(maps).mean(0)
    return v, (s + s.transpose(-1, -2)) / 2


def layer(p, name, x, adjc, flags, *, heads, nhid, conv):
    vs, ss = [], []
    for c in range(adjc.shape[1]):
        v, s = attention(p, f"{name}.attn.{c}", x, adjc[:, c], heads=heads, value_dim=nhid, conv=conv)
        vs.append(v)
        ss.append(s)
    x_out = torch.tanh(mlp(p, f"{name}.multi_channel", torch.cat(vs, -1), F.elu) * flags[..., None])
    pair = torch.cat([torch.stack(ss, -1), adjc.permute(0, 2, 3, 1)], -1)
    a = mlp(p, f"{name}.mlp", pair, F.elu).permute(0, 3, 1, 2)
    a = (a + a.transpose(-1, -2)) * (flags[:, None, :, None] * flags[:, None, None, :])
    return x_out, a


def powers(adj, c):
    out = [adj]
    for _ in range(c - 1):
        out.append(out[-1] @ adj)
    return torch.stack(out, 1)


def forward_a(p, x, adj, flags, *, num_layers, c_init, heads, nhid, conv="GCN"):
    """The adjacency score: attention layers over A^1..A^c_init, a 3-layer MLP over every layer's channels."""
    adjc, chans = powers(adj, c_init), []
    chans.append(adjc)
    for i in range(num_layers):
        x, adjc = layer(p, f"layers.{i}", x, adjc, flags, heads=heads, nhid=nhid, conv=conv)
        chans.append(adjc)
    out = mlp(p, "final", torch.cat(chans, 1).permute(0, 2, 3, 1), F.elu)[..., 0]
    n = adj.shape[-1]
    return out * (1 - torch.eye(n, dtype=out.dtype)) * flags[:, :, None] * flags[:, None, :]


def forward_x_gmh(p, x, adj, flags, *, depth, c_init, heads, nhid, conv="GCN"):
    adjc, xs = powers(adj, c_init), [x]
    for i in range(depth):
        x, adjc = layer(p, f"layers.{i}", x, adjc, flags, heads=heads, nhid=nhid, conv=conv)
        x = torch.tanh(x)
        xs.append(x)
    return mlp(p, "final", torch.cat(xs, -1), F.elu) * flags[..., None]


def forward_x(p, x, adj, flags, *, depth):
    xs = [x]
    for i in range(depth):
        x = torch.tanh(gcn(p, f"layers.{i}", x, adj))
        xs.append(x)
    return mlp(p, "final", torch.cat(xs, -1), F.elu) * flags[..., None]
