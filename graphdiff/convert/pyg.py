"""PyG ``Data`` / ``Batch`` <-> GraphState (the conversion itself lives in :mod:`graphdiff.pyg_bridge`).

Conventions of the PyG side:
    - ``x``: ``[n, Fx]`` float (one-hot categories then continuous channels, as in the state), or ``[n]`` / ``[n, 1]``
      long category indices, or absent (plain graphs).
    - ``edge_index``: ``[2, 2m]`` with both directions of every undirected edge, no self-loops.
    - ``edge_attr``: ``[2m, Fe]`` one-hot including the "none" column (always 0 there), or ``[2m, Fe-1]`` without it,
      or ``[2m]`` long category indices, or absent (every edge is category 1).
    - ``pos``: ``[n, 3]``; ``y``: ``[1, Fy]`` per graph.
"""

from __future__ import annotations

from ..schema import Schema
from ..state import GraphState


def from_pyg(data, schema: Schema | None = None, max_nodes: int | None = None) -> GraphState:
    """Convert PyG graph(s) to a dense :class:`GraphState` with ``to_dense_batch`` / ``to_dense_adj``.

    Raises:
        DataError: self-loops or an edge list that is not symmetric (names the graph and the edge).
    """
    return GraphState.from_pyg(data, schema=schema, max_nodes=max_nodes)


def to_pyg(state: GraphState, schema: Schema | None = None):
    """Convert a :class:`GraphState` to a PyG ``Batch`` (one ``Data`` per graph, real nodes only)."""
    return state.to_pyg(schema)


__all__ = ["from_pyg", "to_pyg"]
