"""Schema: what the fields of a :class:`~graphdiff.state.GraphState` mean for one dataset.

Processes and converters read the schema; nothing else hard-codes a dataset. Marginals and the node-count
distribution are always derived from data (:meth:`Schema.from_graphs`), never typed by hand.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field, replace
from collections.abc import Iterable, Sequence

import numpy as np
import torch

from .errors import SchemaError

NO_EDGE = "none"
_TOKEN = re.compile(r"^([A-Z][a-z]?|\*)(?:([+-])(\d*))?$")


def atom_token(symbol: str, charge: int = 0) -> str:
    """Node category name of an atom: ``"C"``, ``"N+"``, ``"O-"``, ``"Fe+2"``."""
    if charge == 0:
        return symbol
    sign = "+" if charge > 0 else "-"
    mag = abs(charge)
    return f"{symbol}{sign}{mag if mag > 1 else ''}"


def parse_atom_token(token: str) -> tuple[str, int]:
    """Inverse of :func:`atom_token`; raises :class:`SchemaError` naming the token when malformed."""
    m = _TOKEN.match(token)
    if m is None:
        raise SchemaError(f"node category {token!r} is not an atom token like 'C', 'N+' or 'O-'")
    symbol, sign, mag = m.groups()
    if sign is None:
        return symbol, 0
    value = int(mag) if mag else 1
    return symbol, value if sign == "+" else -value


@dataclass(frozen=True)
class Schema:
    """Meaning of the GraphState fields for a dataset.

    Args:
        node_categories: names of the one-hot node channels (atom tokens for molecules).
        edge_categories: names of the one-hot edge channels; index 0 is always ``"none"`` (no edge).
        kind: ``"graph"`` or ``"molecule"``.
        max_nodes: the largest graph the schema admits (the N of padded tensors).
        node_count_hist: ``node_count_hist[n]`` = number of graphs with n nodes, n = 0..max_nodes.
        node_marginals: frequency of each node category over all real nodes (sums to one).
        edge_marginals: frequency of each edge category over all unordered pairs of distinct real nodes,
            ``"none"`` included (sums to one).
        node_continuous: names of continuous node channels appended after the one-hot ones.
        graph_features: names of the graph-level features in ``y``.
        explicit_h: for molecules, whether hydrogens are nodes.

    Shapes:
        x: ``[B, N, len(node_categories) + len(node_continuous)]``; e: ``[B, N, N, len(edge_categories)]``.
    """

    node_categories: tuple[str, ...]
    edge_categories: tuple[str, ...]
    kind: str = "graph"
    max_nodes: int = 0
    node_count_hist: tuple[int, ...] = ()
    node_marginals: tuple[float, ...] = ()
    edge_marginals: tuple[float, ...] = ()
    node_continuous: tuple[str, ...] = ()
    graph_features: tuple[str, ...] = ()
    explicit_h: bool = False
    extra: dict = field(default_factory=dict, compare=False)

    def __post_init__(self):
        if not self.edge_categories or self.edge_categories[0] != NO_EDGE:
            raise SchemaError(f"edge_categories must start with {NO_EDGE!r}, got {list(self.edge_categories)!r}")
        if self.kind not in ("graph", "molecule"):
            raise SchemaError(f"schema kind must be 'graph' or 'molecule', got {self.kind!r}")
        if len(set(self.node_categories)) != len(self.node_categories):
            raise SchemaError(f"duplicate node categories in {list(self.node_categories)!r}")
        if self.kind == "molecule":
            for tok in self.node_categories:
                parse_atom_token(tok)

    # ---- sizes -------------------------------------------------------------------------------------
    @property
    def num_node_types(self) -> int:
        return len(self.node_categories)

    @property
    def num_edge_types(self) -> int:
        return len(self.edge_categories)

    @property
    def node_dim(self) -> int:
        return len(self.node_categories) + len(self.node_continuous)

    # ---- lookups -----------------------------------------------------------------------------------
    def node_index(self, name: str) -> int:
        try:
            return self.node_categories.index(name)
        except ValueError:
            raise SchemaError(
                f"node category {name!r} is not in the schema {list(self.node_categories)!r}"
            ) from None

    def edge_index(self, name: str) -> int:
        try:
            return self.edge_categories.index(name)
        except ValueError:
            raise SchemaError(
                f"edge category {name!r} is not in the schema {list(self.edge_categories)!r}"
            ) from None

    # ---- distributions -----------------------------------------------------------------------------
    def node_count_probs(self) -> torch.Tensor:
        """Empirical distribution over the number of nodes, a tensor of length ``max_nodes + 1``."""
        h = torch.tensor(self.node_count_hist, dtype=torch.float64)
        if h.sum() <= 0:
            raise SchemaError("schema has no node-count histogram (built without data)")
        return h / h.sum()

    def sample_n_nodes(self, k: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Draw ``k`` graph sizes from the node-count distribution."""
        return torch.multinomial(self.node_count_probs(), k, replacement=True, generator=generator)

    # ---- growth ------------------------------------------------------------------------------------
    def extended(self, node_categories: Iterable[str] = (), edge_categories: Iterable[str] = ()) -> "Schema":
        """Return a schema that also knows the given categories (appended; existing indices keep their meaning).

        Marginals of new categories are zero; the node-count histogram is unchanged.
        """
        new_nodes = [c for c in dict.fromkeys(node_categories) if c not in self.node_categories]
        new_edges = [c for c in dict.fromkeys(edge_categories) if c not in self.edge_categories]
        if not new_nodes and not new_edges:
            return self
        nm = tuple(self.node_marginals) + (0.0,) * len(new_nodes) if self.node_marginals else ()
        em = tuple(self.edge_marginals) + (0.0,) * len(new_edges) if self.edge_marginals else ()
        return replace(
            self,
            node_categories=self.node_categories + tuple(new_nodes),
            edge_categories=self.edge_categories + tuple(new_edges),
            node_marginals=nm,
            edge_marginals=em,
        )

    def with_max_nodes(self, max_nodes: int) -> "Schema":
        hist = tuple(self.node_count_hist) + (0,) * max(0, max_nodes + 1 - len(self.node_count_hist))
        return replace(self, max_nodes=max(max_nodes, self.max_nodes), node_count_hist=hist)

    # ---- construction from data --------------------------------------------------------------------
    @classmethod
    def from_graphs(
        cls,
        node_types: Sequence[np.ndarray],
        edge_types: Sequence[np.ndarray],
        *,
        node_categories: Sequence[str],
        edge_categories: Sequence[str],
        kind: str = "graph",
        **kwargs,
    ) -> "Schema":
        """Derive max nodes, node-count histogram and marginals from per-graph category arrays.

        Args:
            node_types: per graph, an int array of node category indices (length n).
            edge_types: per graph, an int array of the category index (>= 1) of each undirected edge.
        """
        counts = np.array([len(t) for t in node_types], dtype=np.int64)
        n_edges = np.array([len(t) for t in edge_types], dtype=np.int64)
        all_nodes = np.concatenate([np.asarray(t, dtype=np.int64) for t in node_types]) if len(counts) else []
        all_edges = np.concatenate([np.asarray(t, dtype=np.int64) for t in edge_types]) if len(counts) else []
        return cls.from_counts(
            counts, n_edges, np.asarray(all_nodes, dtype=np.int64), np.asarray(all_edges, dtype=np.int64),
            node_categories=node_categories, edge_categories=edge_categories, kind=kind, **kwargs,
        )

    @classmethod
    def from_counts(
        cls,
        nodes_per_graph: np.ndarray,
        edges_per_graph: np.ndarray,
        node_types: np.ndarray,
        edge_types: np.ndarray,
        *,
        node_categories: Sequence[str],
        edge_categories: Sequence[str],
        kind: str = "graph",
        **kwargs,
    ) -> "Schema":
        """Like :meth:`from_graphs` but from flat arrays (the compact store's layout)."""
        nodes_per_graph = np.asarray(nodes_per_graph, dtype=np.int64)
        max_nodes = int(nodes_per_graph.max()) if len(nodes_per_graph) else 0
        hist = np.bincount(nodes_per_graph, minlength=max_nodes + 1)
        n_cat = np.bincount(np.asarray(node_types, dtype=np.int64), minlength=len(node_categories))
        if len(n_cat) > len(node_categories):
            raise SchemaError(f"node category index {len(n_cat) - 1} >= {len(node_categories)} categories")
        e_cat = np.bincount(np.asarray(edge_types, dtype=np.int64), minlength=len(edge_categories)).astype(float)
        if len(e_cat) > len(edge_categories):
            raise SchemaError(f"edge category index {len(e_cat) - 1} >= {len(edge_categories)} categories")
        pairs = float((nodes_per_graph * (nodes_per_graph - 1) // 2).sum())
        e_cat[0] = pairs - float(np.asarray(edges_per_graph).sum())
        node_marg = tuple(float(v) for v in n_cat / max(n_cat.sum(), 1))
        edge_marg = tuple(float(v) for v in e_cat / max(pairs, 1.0))
        return cls(
            node_categories=tuple(node_categories),
            edge_categories=tuple(edge_categories),
            kind=kind,
            max_nodes=max_nodes,
            node_count_hist=tuple(int(v) for v in hist),
            node_marginals=node_marg,
            edge_marginals=edge_marg,
            **kwargs,
        )

    # ---- serialisation -----------------------------------------------------------------------------
    def to_dict(self) -> dict:
        d = asdict(self)
        for k, v in d.items():
            if isinstance(v, tuple):
                d[k] = list(v)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Schema":
        known = set(cls.__dataclass_fields__)
        unknown = set(d) - known
        if unknown:
            raise SchemaError(f"unknown schema field {sorted(unknown)[0]!r}")
        kw = {k: (tuple(v) if isinstance(v, list) else v) for k, v in d.items()}
        return cls(**kw)

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_json(cls, s: str) -> "Schema":
        return cls.from_dict(json.loads(s))

    @classmethod
    def plain_graph(cls, max_nodes: int = 0) -> "Schema":
        """Schema of unlabelled graphs: one node category, edge categories ``none``/``edge``."""
        return cls(node_categories=("node",), edge_categories=(NO_EDGE, "edge"), max_nodes=max_nodes)
