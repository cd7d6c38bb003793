"""FixedGraphAdapter: the base of adapters that carry regular data (images, time series) on a fixed graph.

The graph (which nodes exist, which edges join them, where each node sits) is data, not something diffused:
:meth:`FixedGraphAdapter.template` builds it once per batch and the processes only diffuse the continuous
values ``x``. The layout is described in :mod:`graphdiff.adapters`.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..errors import DataError, SchemaError
from ..schema import NO_EDGE, Schema
from ..state import GraphState


class FixedGraphAdapter:
    """Base class: a fixed graph of ``n_nodes`` nodes with ``channels`` continuous values per node.

    Subclasses set ``kind`` (the registry key), ``n_nodes``, ``channels``, ``edge_kinds`` and implement
    :meth:`edge_list` (``[M, 3]`` long rows ``(i, j, kind)`` with ``kind >= 1``), :meth:`positions`,
    :meth:`to_state`, :meth:`from_state`, :meth:`to_dict`.
    """

    kind = ""
    n_nodes: int
    channels: int
    edge_kinds: tuple[str, ...]

    # ---- geometry ------------------------------------------------------------------------------------
    def edge_list(self) -> Tensor:
        raise NotImplementedError

    def positions(self) -> Tensor:
        """``[N, 3]`` float node coordinates (the denoiser's positional features)."""
        raise NotImplementedError

    def edges(self) -> Tensor:
        """``[N, N, 1 + len(edge_kinds)]`` symmetric one-hot edge kinds, channel 0 = no edge."""
        n, k = self.n_nodes, 1 + len(self.edge_kinds)
        kinds = torch.zeros(n, n, dtype=torch.long)
        el = self.edge_list()
        kinds[el[:, 0], el[:, 1]] = el[:, 2]
        kinds[el[:, 1], el[:, 0]] = el[:, 2]
        return torch.nn.functional.one_hot(kinds, k).float()

    def template(self, n_nodes: Tensor | int, device=None, dtype=torch.float32) -> GraphState:
        """A state of zero values on the fixed graph, ``len(n_nodes)`` graphs (slots ``0..n-1`` real)."""
        if isinstance(n_nodes, int):
            n_nodes = torch.full((n_nodes,), self.n_nodes, dtype=torch.long)
        b, n = len(n_nodes), self.n_nodes
        if len(n_nodes) and int(n_nodes.max()) > n:
            raise SchemaError(f"{type(self).__name__}: {int(n_nodes.max())} nodes asked for a graph of {n}")
        mask = torch.arange(n, device=device).unsqueeze(0) < n_nodes.to(device).unsqueeze(1)
        e = self.edges().to(device=device, dtype=dtype).unsqueeze(0).expand(b, -1, -1, -1)
        pos = self.positions().to(device=device, dtype=dtype).unsqueeze(0).expand(b, -1, -1)
        x = torch.zeros(b, n, self.channels, device=device, dtype=dtype)
        return GraphState(x=x, e=e, mask=mask, pos=pos)

    # ---- schema and persistence ------------------------------------------------------------------------
    def channel_names(self) -> tuple[str, ...]:
        return tuple(f"value_{i}" for i in range(self.channels))

    def schema(self, count: int, graph_features: tuple[str, ...] = ()) -> Schema:
        """The schema of a dataset of ``count`` items on this graph (``extra["fixed_graph"]`` rebuilds it)."""
        hist = [0] * (self.n_nodes + 1)
        hist[self.n_nodes] = int(count)
        return Schema(node_categories=(), edge_categories=(NO_EDGE, *self.edge_kinds), kind="graph",
                      max_nodes=self.n_nodes, node_count_hist=tuple(hist), node_continuous=self.channel_names(),
                      graph_features=tuple(graph_features), extra={"fixed_graph": self.to_dict()})

    def to_dict(self) -> dict:
        raise NotImplementedError

    # ---- data ----------------------------------------------------------------------------------------
    def to_state(self, data, y: Tensor | None = None) -> GraphState:
        raise NotImplementedError

    def from_state(self, state: GraphState):
        raise NotImplementedError

    def observation(self, data, known: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Values in state space and which are observed: ``([B, N, C] float, [B, N, C] bool)``. A value is
        unobserved where ``data`` is NaN or ``known`` (broadcast to the native shape) is False."""
        data = torch.as_tensor(data, dtype=torch.float32)
        seen = ~torch.isnan(data)
        if known is not None:
            seen = seen & torch.as_tensor(known, dtype=torch.bool).expand_as(data)
        state = self.to_state(torch.nan_to_num(data))
        mask = self._nodes(seen.float()) > 0.5
        return state.x, mask

    def _nodes(self, data: Tensor) -> Tensor:
        """Native batch -> ``[B, N, C]`` node values, without scaling (subclasses)."""
        raise NotImplementedError


ADAPTERS: dict[str, type[FixedGraphAdapter]] = {}


def register_adapter(cls: type[FixedGraphAdapter]) -> type[FixedGraphAdapter]:
    """Add an adapter class to :data:`ADAPTERS` under ``cls.kind`` (usable as a decorator)."""
    ADAPTERS[cls.kind] = cls
    return cls


def fixed_graph_spec(schema: Schema | None) -> dict | None:
    """The schema's ``extra["fixed_graph"]`` mapping, or ``None`` for an ordinary graph schema."""
    if schema is None:
        return None
    spec = (schema.extra or {}).get("fixed_graph")
    return dict(spec) if spec else None


def adapter_from_schema(schema: Schema) -> FixedGraphAdapter:
    """Rebuild the adapter a fixed-graph schema was made with."""
    spec = fixed_graph_spec(schema)
    if spec is None:
        raise DataError(f"a {schema.kind} model, not an image or time-series model (its schema has no "
                        f"extra['fixed_graph'])")
    kind = spec.pop("adapter", None)
    if kind not in ADAPTERS:  # the package imports every adapter module, each registers itself
        raise DataError(f"schema extra['fixed_graph'].adapter {kind!r} is unknown; known: {sorted(ADAPTERS)}")
    return ADAPTERS[kind](**spec)
