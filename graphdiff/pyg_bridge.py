"""PyG ``Data`` / ``Batch`` <-> the dense tensors of a GraphState: the only place the dense/sparse conversion lives.

It sits below :mod:`graphdiff.state` (which builds its ``from_pyg`` / ``to_pyg`` on it) and knows nothing of
GraphState itself: :func:`dense_from_pyg` returns the fields, :func:`pyg_from_dense` reads them by name.

The conventions of the PyG side are listed in :mod:`graphdiff.convert.pyg`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch_geometric.data import Batch, Data
from torch_geometric.utils import is_undirected, to_dense_adj, to_dense_batch

from .errors import DataError, SchemaError
from .schema import Schema


def _as_batch(data) -> Batch:
    if isinstance(data, Batch):
        return data
    if isinstance(data, Data):
        return Batch.from_data_list([data])
    if isinstance(data, Sequence):
        return Batch.from_data_list(list(data))
    raise DataError(f"from_pyg expects a Data, a Batch or a list of Data, got {type(data).__name__}")


def _node_features(batch: Batch, schema: Schema | None) -> tuple[torch.Tensor, Schema]:
    x = batch.x
    n = batch.num_nodes
    if x is None:
        schema = schema or Schema.plain_graph()
        return torch.nn.functional.one_hot(torch.zeros(n, dtype=torch.long), schema.num_node_types).float(), schema
    if not torch.is_floating_point(x):
        idx = x.view(-1).long() if x.dim() == 1 or x.shape[-1] == 1 else None
        if idx is None:
            raise DataError(f"Data.x: integer features must be [n] or [n, 1] category indices, got {tuple(x.shape)}")
        if schema is None:
            k = int(idx.max()) + 1 if idx.numel() else 1
            schema = Schema(node_categories=tuple(str(i) for i in range(k)), edge_categories=("none", "edge"))
        if idx.numel() and int(idx.max()) >= schema.num_node_types:
            raise SchemaError(f"Data.x: node category {int(idx.max())} >= the schema's {schema.num_node_types}")
        return torch.nn.functional.one_hot(idx, schema.num_node_types).float(), schema
    if schema is None:
        schema = Schema(node_categories=tuple(str(i) for i in range(x.shape[-1])), edge_categories=("none", "edge"))
    if x.shape[-1] != schema.node_dim:
        raise SchemaError(f"Data.x has {x.shape[-1]} channels; the schema expects {schema.node_dim}")
    return x.float(), schema


def _edge_features(batch: Batch, schema: Schema) -> torch.Tensor:
    ea = batch.edge_attr
    ke = schema.num_edge_types
    m = batch.edge_index.shape[1]
    if ea is None:
        return torch.nn.functional.one_hot(torch.ones(m, dtype=torch.long), ke).float()
    if not torch.is_floating_point(ea):
        idx = ea.view(-1).long()
        if idx.numel() and (int(idx.min()) < 1 or int(idx.max()) >= ke):
            raise SchemaError(f"Data.edge_attr: edge category {int(idx.max())} outside 1..{ke - 1}")
        return torch.nn.functional.one_hot(idx, ke).float()
    if ea.dim() == 1:
        ea = ea.unsqueeze(-1)
    if ea.shape[-1] == ke - 1:
        ea = torch.cat([torch.zeros(m, 1, dtype=ea.dtype), ea], -1)
    if ea.shape[-1] != ke:
        raise SchemaError(f"Data.edge_attr has {ea.shape[-1]} channels; the schema has {ke} edge categories")
    return ea.float()


def dense_from_pyg(data, schema: Schema | None = None, max_nodes: int | None = None) -> dict:
    """PyG graph(s) as the dense fields of a GraphState (``x, e, mask, pos, y, schema``), by ``to_dense_batch`` /
    ``to_dense_adj``; not yet masked.

    Raises:
        DataError: self-loops or an edge list that is not symmetric (names the graph and the edge).
    """
    batch = _as_batch(data)
    ei = batch.edge_index
    if ei is None:
        ei = torch.zeros(2, 0, dtype=torch.long)
        batch.edge_index = ei
    loops = ei[0] == ei[1]
    if bool(loops.any()):
        k = int(loops.nonzero()[0])
        g = int(batch.batch[ei[0, k]])
        raise DataError(f"graph {g}: self-loop on node {int(ei[0, k] - batch.ptr[g])}")
    x, schema = _node_features(batch, schema)
    ea = _edge_features(batch, schema)
    if not is_undirected(ei, ea, num_nodes=batch.num_nodes):
        pairs = ei.T.tolist()
        key = set(map(tuple, pairs))
        missing = [(u, v) for u, v in pairs if (v, u) not in key]
        u, v = missing[0] if missing else pairs[0]
        g = int(batch.batch[u])
        raise DataError(f"graph {g}: edge list is not symmetric at ({u - int(batch.ptr[g])}, "
                        f"{v - int(batch.ptr[g])}) (missing reverse edge or different attributes)")
    b = batch.batch
    n_max = max_nodes
    xd, mask = to_dense_batch(x, b, max_num_nodes=n_max)
    n = xd.shape[1]
    e = to_dense_adj(ei, b, edge_attr=ea, max_num_nodes=n)
    none = (e.sum(-1) == 0).float()
    e[..., 0] = e[..., 0] + none
    pos = to_dense_batch(batch.pos.float(), b, max_num_nodes=n)[0] if getattr(batch, "pos", None) is not None else None
    y = batch.y.view(batch.num_graphs, -1).float() if getattr(batch, "y", None) is not None else None
    return {"x": xd, "e": e, "mask": mask, "pos": pos, "y": y, "schema": schema}


def pyg_from_dense(state) -> Batch:
    """A GraphState (anything with its fields and ``edge_types()``) as a PyG ``Batch``: one ``Data`` per graph,
    real nodes only."""
    et = state.edge_types()
    out = []
    for i in range(state.batch_size):
        real = state.mask[i].nonzero().flatten()
        sub = et[i][real][:, real]
        idx = (sub > 0).nonzero().T
        d = Data(
            x=state.x[i][real],
            edge_index=idx,
            edge_attr=state.e[i][real][:, real][idx[0], idx[1]],
            num_nodes=len(real),
        )
        if state.pos is not None:
            d.pos = state.pos[i][real]
        if state.y is not None:
            d.y = state.y[i : i + 1]
        out.append(d)
    return Batch.from_data_list(out)
