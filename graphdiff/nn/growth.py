"""Growing a trained network's input and output layers for new categories, without changing what it computes.

Fine-tuning on data with categories the base model never saw (an atom type, a bond type) widens the one-hot inputs
and the logit outputs. The helpers here return new :class:`~torch.nn.Linear` layers whose existing weights are
kept in place, so that on inputs whose new channels are zero the layer's output is unchanged:

- :func:`insert_inputs`: new input columns at a position, initialised to the mean of a range of old columns (a
  new category first looks like an average old one; the old-category inputs have zeros there, so their outputs
  are unchanged whatever the initialisation);
- :func:`append_outputs`: new output rows with zero weights and the mean old bias (a new category's logit starts
  at a typical level that does not depend on the input; the old logits are unchanged);
- :func:`replace_inputs`: a range of input columns replaced by zero-initialised ones (new condition columns);
- :func:`grow_gdss_node_inputs`: a GDSS score network widened for new node channels (every layer reading the node
  features, the node scores, and the final MLP's hidden units with zero outgoing weights).
"""

from __future__ import annotations

import torch
from torch import nn

from .layers import MLP, DenseGCNConv


def _copy_linear(out_features: int, in_features: int, like: nn.Linear) -> nn.Linear:
    new = nn.Linear(in_features, out_features, bias=like.bias is not None)
    return new.to(device=like.weight.device, dtype=like.weight.dtype)


@torch.no_grad()
def insert_inputs(linear: nn.Linear, at: int, n_new: int, like: tuple[int, int] | None = None) -> nn.Linear:
    """``linear`` with ``n_new`` input columns inserted before column ``at``; they start as the mean of old
    columns ``like = (lo, hi)`` (default: zeros)."""
    if n_new <= 0:
        return linear
    w = linear.weight
    init = (w[:, like[0]:like[1]].mean(1, keepdim=True).expand(-1, n_new) if like and like[1] > like[0]
            else w.new_zeros(w.shape[0], n_new))
    new = _copy_linear(w.shape[0], w.shape[1] + n_new, linear)
    new.weight.copy_(torch.cat([w[:, :at], init, w[:, at:]], 1))
    if linear.bias is not None:
        new.bias.copy_(linear.bias)
    return new


@torch.no_grad()
def append_outputs(linear: nn.Linear, n_new: int) -> nn.Linear:
    """``linear`` with ``n_new`` output rows appended: zero weights, the mean of the old biases."""
    if n_new <= 0:
        return linear
    w = linear.weight
    new = _copy_linear(w.shape[0] + n_new, w.shape[1], linear)
    new.weight.copy_(torch.cat([w, w.new_zeros(n_new, w.shape[1])], 0))
    if linear.bias is not None:
        b = linear.bias
        new.bias.copy_(torch.cat([b, b.mean().expand(n_new)]))
    return new


@torch.no_grad()
def replace_inputs(linear: nn.Linear, lo: int, hi: int, n_new: int) -> nn.Linear:
    """``linear`` with input columns ``lo:hi`` replaced by ``n_new`` zero-initialised columns."""
    if hi - lo == n_new and n_new == 0:
        return linear
    w = linear.weight
    new = _copy_linear(w.shape[0], w.shape[1] - (hi - lo) + n_new, linear)
    new.weight.copy_(torch.cat([w[:, :lo], w.new_zeros(w.shape[0], n_new), w[:, hi:]], 1))
    if linear.bias is not None:
        new.bias.copy_(linear.bias)
    return new


@torch.no_grad()
def scale_input(linear: nn.Linear, column: int, factor: float) -> None:
    """Multiply one input column's weights in place (an input re-normalised by ``1 / factor`` keeps its effect)."""
    linear.weight[:, column] *= factor


def grow_categories(net, node_new: int, edge_new: int,
                    layers: tuple[str, str, str, str] = ("in_x", "in_e", "out_x", "out_e")) -> None:
    """Widen a graph transformer for ``node_new`` / ``edge_new`` categories appended after the old ones, and update
    its ``node_dim`` / ``node_out`` / ``edge_dim`` / ``edge_out``. ``layers`` names its node and edge input MLPs
    (their first linear map reads the categories) and output MLPs (their third module writes the logits): graphdiff's
    transformer (DiGress / DeFoG, PARD) by default; the authors' DiGress transformer passes its own names."""
    in_x, in_e, out_x, out_e = (getattr(net, name) for name in layers)
    kx, ke = net.node_out, net.edge_out
    in_x[0] = insert_inputs(in_x[0], kx, node_new, like=(0, kx))
    in_e[0] = insert_inputs(in_e[0], ke, edge_new, like=(1, ke))
    out_x[2] = append_outputs(out_x[2], node_new)
    out_e[2] = append_outputs(out_e[2], edge_new)
    net.node_dim, net.node_out = net.node_dim + node_new, net.node_out + node_new
    net.edge_dim, net.edge_out = net.edge_dim + edge_new, net.edge_out + edge_new


# ---- GDSS score networks: new node channels -------------------------------------------------------------------

@torch.no_grad()
def _widen_reader(layer: nn.Module, old: int, n_new: int) -> nn.Module:
    """``layer`` (a dense GCN, an MLP or a linear map reading ``old`` node channels first) reading ``n_new`` more
    channels after them, initialised to the mean of the old ones."""
    if isinstance(layer, DenseGCNConv):  # weight [in, out]
        w = layer.weight
        layer.weight = nn.Parameter(torch.cat([w[:old], w[:old].mean(0, keepdim=True).expand(n_new, -1), w[old:]]))
        layer.in_dim += n_new
        return layer
    if isinstance(layer, MLP):
        layer.linears[0] = insert_inputs(layer.linears[0], old, n_new, like=(0, old))
        return layer
    return insert_inputs(layer, old, n_new, like=(0, old))


@torch.no_grad()
def grow_gdss_node_inputs(net: nn.Module, old: int, n_new: int, *, node_score: bool) -> None:
    """Widen one GDSS score network (:mod:`graphdiff.nn.gdss`) for ``n_new`` node channels after its ``old`` ones
    (see :meth:`~graphdiff.nn.gdss_denoiser.GDSSDenoiser.grow`); ``node_score``: a node-score network, whose final
    MLP reads the node features first and writes one score per channel."""
    first = net.layers[0]
    if isinstance(first, DenseGCNConv):  # ScoreNetworkX
        _widen_reader(first, old, n_new)
    else:  # an attention layer: every channel's queries, keys and values read the node features
        for attn in first.attn:
            for name in ("q", "k", "v"):
                if getattr(attn, name) is not None:
                    setattr(attn, name, _widen_reader(getattr(attn, name), old, n_new))
    if net.time is not None and not isinstance(first, DenseGCNConv):  # the input's shift: zero for new channels
        proj = net.time.proj[0]
        grown = append_outputs(proj, n_new)
        grown.bias[-n_new:] = 0.0
        net.time.proj[0] = grown
    if node_score:  # the input is the first block of the final MLP
        _widen_reader(net.final, old, n_new)
        _widen_hidden(net.final, 2 * n_new)  # its hidden width is twice its input width
        net.final.linears[-1] = append_outputs(net.final.linears[-1], n_new)
    net.in_dim = old + n_new


@torch.no_grad()
def _widen_hidden(mlp: MLP, n_new: int) -> None:
    """Add ``n_new`` units to every hidden layer of ``mlp``: random incoming weights (the scale of the old ones),
    zero outgoing weights, so the MLP computes the same function and the new units train."""
    lins = mlp.linears
    for i in range(len(lins) - 1):
        a, b = lins[i], lins[i + 1]
        w = a.weight
        grown_a = nn.Linear(w.shape[1], w.shape[0] + n_new).to(w)
        grown_a.weight.copy_(torch.cat([w, torch.randn(n_new, w.shape[1]).to(w) * w.std()]))
        grown_a.bias.copy_(torch.cat([a.bias, a.bias.new_zeros(n_new)]))
        lins[i] = grown_a
        wb = b.weight
        grown_b = nn.Linear(wb.shape[1] + n_new, wb.shape[0]).to(wb)
        grown_b.weight.copy_(torch.cat([wb, wb.new_zeros(wb.shape[0], n_new)], 1))
        grown_b.bias.copy_(b.bias)
        lins[i + 1] = grown_b
