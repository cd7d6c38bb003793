"""GDSS's pair of score networks (:mod:`graphdiff.nn.gdss`) behind the :class:`~graphdiff.state.GraphState`
interface: config keys checked against the networks' own arguments, the node and adjacency scores as one state,
and growth for fine-tuning on new atom types."""

from __future__ import annotations

import inspect

from torch import Tensor, nn

from ..checks import suggest
from ..errors import SchemaError
from ..state import GraphState
from .gdss import ScoreNetworkA, ScoreNetworkX, ScoreNetworkX_GMH

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
        adj_net: keyword arguments of :class:`ScoreNetworkA` (``in_dim`` is ``x_dim``). The attention networks
            take ``variant`` (``"gdss"``, the default, or ``"graphdiff-v1"``).
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

    def grow(self, *, node_new: int = 0, edge_new: int = 0, max_nodes: int | None = None,
             cond_dim: int | None = None) -> None:
        """Widen the networks for fine-tuning on data with ``node_new`` node categories appended after the old ones
        (see :mod:`graphdiff.nn.growth`): every layer that reads the node features gains input columns that start
        as the mean of the old ones, the node-score output gains rows with zero weights, and a time embedding's
        shift of the input gains zero rows; on inputs whose new channels are zero the old outputs are unchanged.
        ``max_nodes`` may grow (the networks do not depend on it). New bond types change the meaning of GDSS's
        continuous adjacency (bond orders as values) and are refused, as are condition columns.

        Raises:
            SchemaError: ``edge_new > 0`` or a ``cond_dim``.
        """
        if edge_new:
            raise SchemaError(f"a GDSS model cannot learn {edge_new} new bond type(s): its adjacency holds bond "
                              "orders as values; fine-tune on data with the base model's bond types")
        if cond_dim:
            raise SchemaError("a GDSS model is unconditional; it cannot be fine-tuned with conditions")
        if node_new:
            old = self.x_dim
            from .growth import grow_gdss_node_inputs

            for net in (self.x_net, self.adj_net):
                grow_gdss_node_inputs(net, old, node_new, node_score=net is self.x_net)
            self.x_dim = old + node_new
        if max_nodes is not None:
            self.max_nodes = max(self.max_nodes, int(max_nodes))

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
