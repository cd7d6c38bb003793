"""networkx <-> GraphState.

Node categories are read from / written to the node attribute ``node_attr`` (default ``"label"``), edge
categories from / to the edge attribute ``edge_attr`` (default ``"label"``). Graphs without those attributes
map to the plain schema (one node category, edge categories ``none``/``edge``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import networkx as nx
import numpy as np
import torch

from ..errors import DataError, SchemaError
from ..schema import NO_EDGE, Schema
from ..state import GraphState


def _label_name(v) -> str:
    if isinstance(v, (np.integer,)):
        v = int(v)
    return str(v)


def networkx_to_arrays(
    g: nx.Graph, *, node_attr: str = "label", edge_attr: str = "label", where: str = "graph"
) -> tuple[list[str] | None, np.ndarray, list[str] | None]:
    """``(node labels or None, edge_index [m, 2], edge labels or None)`` with nodes relabelled 0..n-1 in
    ``g.nodes`` order. Raises :class:`DataError` for self-loops and directed or multi-graphs."""
    if g.is_directed():
        raise DataError(f"{where}: directed graphs are not supported (got {type(g).__name__})")
    if g.is_multigraph():
        raise DataError(f"{where}: multigraphs are not supported")
    index = {v: i for i, v in enumerate(g.nodes)}
    edges = np.array([(index[u], index[v]) for u, v in g.edges], dtype=np.int64).reshape(-1, 2)
    if len(edges) and (edges[:, 0] == edges[:, 1]).any():
        k = int(np.argmax(edges[:, 0] == edges[:, 1]))
        raise DataError(f"{where}: self-loop on node {list(g.nodes)[edges[k, 0]]!r}")
    nlab = None
    if g.number_of_nodes() and any(node_attr in d for _, d in g.nodes(data=True)):
        nlab = []
        for v, d in g.nodes(data=True):
            if node_attr not in d:
                raise DataError(f"{where}: node {v!r} lacks attribute {node_attr!r} that other nodes have")
            nlab.append(_label_name(d[node_attr]))
    elab = None
    if g.number_of_edges() and any(edge_attr in d for _, _, d in g.edges(data=True)):
        elab = []
        for u, v, d in g.edges(data=True):
            if edge_attr not in d:
                raise DataError(f"{where}: edge ({u!r}, {v!r}) lacks attribute {edge_attr!r} that other edges have")
            elab.append(_label_name(d[edge_attr]))
    return nlab, edges, elab


def schema_from_networkx(graphs: Sequence[nx.Graph], *, node_attr="label", edge_attr="label") -> Schema:
    """Derive a schema (categories sorted by name, marginals from data) from labelled or plain graphs."""
    return _encode(list(graphs), None, node_attr, edge_attr, extend=True)[1]


def _encode(graphs, schema, node_attr, edge_attr, extend):
    parsed = [networkx_to_arrays(g, node_attr=node_attr, edge_attr=edge_attr, where=f"graph {i}")
              for i, g in enumerate(graphs)]
    if schema is None:
        ncat = sorted({x for p in parsed if p[0] for x in p[0]}) or ["node"]
        ecat = sorted({x for p in parsed if p[2] for x in p[2]}) or ["edge"]
        if NO_EDGE in ecat:
            raise DataError(f"edge label {NO_EDGE!r} is reserved for 'no edge'")
        schema = Schema(node_categories=tuple(ncat), edge_categories=(NO_EDGE, *ecat))
        built = True
    else:
        built = False
        if extend:
            new_n = [x for p in parsed if p[0] for x in p[0]]
            new_e = [x for p in parsed if p[2] for x in p[2]]
            schema = schema.extended(new_n, new_e)
    node_types, edges, edge_types = [], [], []
    for i, (nl, ei, el) in enumerate(parsed):
        n = graphs[i].number_of_nodes()
        if nl is None:
            node_types.append(np.zeros(n, dtype=np.int64))
        else:
            node_types.append(np.array([_index(schema, "node", x, i) for x in nl], dtype=np.int64))
        if el is None:
            edge_types.append(np.ones(len(ei), dtype=np.int64) * (1 if schema.num_edge_types > 1 else 0))
        else:
            edge_types.append(np.array([_index(schema, "edge", x, i) for x in el], dtype=np.int64))
        edges.append(ei)
    if built:
        schema = Schema.from_graphs(node_types, edge_types, node_categories=schema.node_categories,
                                    edge_categories=schema.edge_categories)
    return node_types, schema, edges, edge_types


def _index(schema: Schema, what: str, name: str, graph: int) -> int:
    cats = schema.node_categories if what == "node" else schema.edge_categories
    try:
        return cats.index(name)
    except ValueError:
        raise SchemaError(f"graph {graph}: {what} label {name!r} is not in the schema {list(cats)!r}") from None


def from_networkx(
    graphs: nx.Graph | Iterable[nx.Graph],
    schema: Schema | None = None,
    *,
    node_attr: str = "label",
    edge_attr: str = "label",
    extend: bool = False,
    max_nodes: int | None = None,
) -> GraphState:
    """Convert one or many networkx graphs into a batched :class:`GraphState`.

    Args:
        schema: categories to encode with; derived from the graphs when ``None``.
        extend: add labels the schema lacks instead of raising :class:`SchemaError`.
        max_nodes: pad to this many slots (default: the largest graph).
    """
    if isinstance(graphs, nx.Graph):
        graphs = [graphs]
    graphs = list(graphs)
    node_types, schema, edges, edge_types = _encode(graphs, schema, node_attr, edge_attr, extend)
    return arrays_to_state(node_types, edges, edge_types, schema, max_nodes=max_nodes)


def arrays_to_state(node_types, edges, edge_types, schema: Schema, max_nodes: int | None = None) -> GraphState:
    """Batch per-graph ``(node_types, edge_index, edge_types)`` arrays into a one-hot :class:`GraphState`."""
    from ..data.store import GraphStore

    store = GraphStore.from_lists(node_types, edges, edge_types)
    return store.to_state(np.arange(len(store)), schema, max_nodes=max_nodes)


def arrays_to_networkx(node_types, edge_index, edge_types, schema: Schema | None = None, *,
                       node_attr: str = "label", edge_attr: str = "label") -> nx.Graph:
    """One graph's arrays to ``nx.Graph``; labels are category names when a schema is given."""
    g = nx.Graph()
    for i, t in enumerate(np.asarray(node_types)):
        if schema is None or schema.node_categories in ((), ("node",)):
            g.add_node(i)
        else:
            g.add_node(i, **{node_attr: schema.node_categories[int(t)]})
    plain = schema is None or schema.edge_categories == (NO_EDGE, "edge")
    for (u, v), t in zip(np.asarray(edge_index).reshape(-1, 2), np.asarray(edge_types)):
        if plain:
            g.add_edge(int(u), int(v))
        else:
            g.add_edge(int(u), int(v), **{edge_attr: schema.edge_categories[int(t)]})
    return g


def to_networkx(state: GraphState, schema: Schema | None = None, *, node_attr: str = "label",
                edge_attr: str = "label") -> list[nx.Graph]:
    """One ``nx.Graph`` per graph of the batch; real nodes are renumbered 0..n-1 in slot order. Continuous node
    channels (``schema.node_continuous``, e.g. a pixel's intensity) become float node attributes of their names, in
    the state's units (an image model's ``[-1, 1]``; :meth:`ImageGrid.from_state` gives pixel values)."""
    schema = schema if schema is not None else state.schema
    if schema is not None and schema.num_node_types == 0:
        nt = torch.zeros(state.mask.shape, dtype=torch.long)
    else:
        nt = state.node_types(schema).cpu()
    continuous = tuple(schema.node_continuous) if schema is not None else ()
    values = state.x[..., schema.num_node_types:].detach().float().cpu() if continuous else None
    et = state.edge_types().cpu()
    out = []
    for b in range(state.batch_size):
        real = torch.nonzero(state.mask[b].cpu()).flatten()
        sub = et[b][real][:, real]
        iu = torch.triu_indices(len(real), len(real), 1)
        t = sub[iu[0], iu[1]]
        keep = t > 0
        ei = iu[:, keep].T.numpy()
        g = arrays_to_networkx(nt[b][real].numpy(), ei, t[keep].numpy(), schema, node_attr=node_attr,
                               edge_attr=edge_attr)
        if continuous:
            for i, row in enumerate(values[b][real].tolist()):
                g.nodes[i].update(zip(continuous, row))
        out.append(g)
    return out
