"""Graph-level conditions by name: one-hot groups (the LGGM domain) and numeric graph statistics.

A dataset whose conditions have names records them in ``schema.extra["conditions"]``::

    {"categorical": {"domain": ["erdos_renyi", ..., "zinc250k_skeleton"]},
     "numeric": {"n_nodes": {"mean": 51.2, "std": 30.1}, "density": {...}}}

``y`` then holds, in this order, one column ``"<group>:<name>"`` per name of each categorical group (a linear
layer on them is a learned embedding of the group) and one column per numeric statistic, ``(value - mean) /
std``. ``schema.graph_features`` lists the columns. :func:`condition_tensor` turns ``{"domain": "planar",
"n_nodes": 64}`` into the ``[n, Fy]`` tensor the samplers take; a schema without that record (condition columns of
a CSV file) takes its column names with raw values.

Numeric statistics (:data:`STATISTICS`): ``n_nodes``; ``density`` = ``2 m / (n (n - 1))`` (0 for one node);
``clustering`` = the average local clustering coefficient, nodes of degree < 2 counting 0 (networkx's
``average_clustering``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch

from ..checks import suggest
from ..errors import ConfigError

STATISTICS = ("n_nodes", "density", "clustering")


def graph_statistics(n: int, edges: np.ndarray, names: Sequence[str] = STATISTICS) -> list[float]:
    """The statistics ``names`` of one graph with ``n`` nodes and the ``[m, 2]`` undirected edge list ``edges``."""
    edges = np.asarray(edges, dtype=np.int64).reshape(-1, 2)
    out = []
    for name in names:
        if name == "n_nodes":
            out.append(float(n))
        elif name == "density":
            out.append(2.0 * len(edges) / (n * (n - 1)) if n > 1 else 0.0)
        elif name == "clustering":
            a = np.zeros((n, n), dtype=np.float64)
            a[edges[:, 0], edges[:, 1]] = a[edges[:, 1], edges[:, 0]] = 1.0
            deg = a.sum(1)
            triangles = ((a @ a) * a).sum(1) / 2.0
            pairs = deg * (deg - 1) / 2.0
            local = np.divide(triangles, pairs, out=np.zeros(n), where=pairs > 0)
            out.append(float(local.mean()) if n else 0.0)
        else:
            raise ConfigError(f"unknown graph statistic {name!r}{suggest(name, STATISTICS)}; choose from "
                              f"{', '.join(STATISTICS)}")
    return out


def networkx_statistics(graphs, names: Sequence[str]) -> np.ndarray:
    """``[G, len(names)]``: :func:`graph_statistics` of each networkx graph, read as a simple undirected graph (any
    node labels; a ``DiGraph``'s edges in either direction count once, self-loops not at all)."""
    import networkx as nx

    rows = []
    for g in graphs:
        h = nx.convert_node_labels_to_integers(nx.Graph(g))
        h.remove_edges_from(list(nx.selfloop_edges(h)))
        rows.append(graph_statistics(h.number_of_nodes(), np.array(list(h.edges()), dtype=np.int64), names))
    return np.array(rows, dtype=np.float64).reshape(len(rows), len(names))


def statistics_by_size(graphs, names: Sequence[str], sizes: Sequence[int], k: int | None = None) -> dict:
    """Numeric conditions that follow the node count: for each node count in ``sizes``, the mean of each statistic
    in ``names`` over the ``k`` graphs of ``graphs`` (networkx) whose node counts are nearest it, and every other
    graph as near as the ``k``-th (so the order of the graphs never matters, and a set of one size gets its overall
    mean; default ``k``: the square root of the number of graphs, rounded, at least 1). Returns ``{name:
    [one value per size]}``, what ``pipe.sample(len(sizes), n_nodes=sizes, cond=...)`` takes; ``n_nodes`` is left
    out (the sizes are the node counts). Where a statistic moves with the size (SBM's density falls from about 0.15
    at 50 nodes to 0.06 at 180), one mean over all the graphs asks every sample for the density of a middle-sized
    graph; this asks each for that of graphs of its own size."""
    names = [n for n in names if n != "n_nodes"]
    graphs = list(graphs)
    if not graphs:
        raise ConfigError("statistics_by_size: no graphs to take the statistics from")
    if k is None:
        k = max(1, int(round(np.sqrt(len(graphs)))))
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ConfigError(f"statistics_by_size: k must be a positive integer, got {k!r}")
    counts = np.array([g.number_of_nodes() for g in graphs])
    values = networkx_statistics(graphs, names)
    out: dict = {name: [] for name in names}
    for size in sizes:
        distance = np.abs(counts - int(size))
        near = distance <= np.partition(distance, min(k, len(graphs)) - 1)[min(k, len(graphs)) - 1]
        for j, name in enumerate(names):
            out[name].append(round(float(values[near, j].mean()), 6))
    return out


def condition_adherence(graphs, asked: Mapping) -> dict:
    """How closely sampled graphs (networkx) meet the numeric conditions they were asked for.

    ``asked``: ``{name: one value for every graph, or one per graph in the graphs' order}``, the ``cond`` given to
    ``pipe.sample``. The statistics ``density`` and ``clustering`` are scored; ``n_nodes`` (which the sampler sets
    exactly) and names that are no statistic (a categorical group such as ``domain``) are left out. Graphs are read
    as simple undirected graphs (a ``DiGraph``'s edges in either direction count once, self-loops not at all; any
    node labels). Returns, per statistic, ``{"asked": mean ask, "got": mean of the graphs' own values, "ratio": got
    / asked (None for a zero mean ask), "mean_abs_error": mean |got - asked| over the graphs, "relative_error": that
    error over the mean ask (None for a zero mean ask), "correlation": Pearson's r of each graph's value against its
    ask (None where either side does not vary; with two graphs it is always +-1), "graphs": count}``. A ``density``
    ratio below 1 means sparser graphs than asked; a low correlation under asks that vary (by node count, say) means
    the model does not follow them.

    Raises:
        ConfigError: ``asked`` not a mapping, a name close to a statistic but misspelt, a wrong number of values.
    """
    if not isinstance(asked, Mapping):
        raise ConfigError(f"condition_adherence: asked must map condition names to values, got "
                          f"{type(asked).__name__}")
    for key in asked:
        if key not in STATISTICS and suggest(key, STATISTICS):
            raise ConfigError(f"condition_adherence: unknown statistic {key!r}{suggest(key, STATISTICS)}")
    graphs = list(graphs)
    names = [k for k in asked if k in STATISTICS and k != "n_nodes"]
    if not graphs or not names:
        return {}
    got = networkx_statistics(graphs, names)
    out = {}
    for j, name in enumerate(names):
        want = np.array([_number(v, name) for v in _per_sample(asked[name], len(graphs), name)])
        have = got[:, j]
        err = float(np.abs(have - want).mean())
        mean_want = float(want.mean())
        varies = want.std() > 1e-12 and have.std() > 1e-12
        out[name] = {"asked": round(mean_want, 6), "got": round(float(have.mean()), 6),
                     "ratio": round(float(have.mean()) / mean_want, 4) if mean_want else None,
                     "mean_abs_error": round(err, 6),
                     "relative_error": round(err / abs(mean_want), 4) if mean_want else None,
                     "correlation": round(float(np.corrcoef(want, have)[0, 1]), 4) if varies else None,
                     "graphs": len(graphs)}
    return out


def numeric_stats(values: np.ndarray, names: Sequence[str]) -> dict:
    """``{name: {"mean", "std"}}`` of the columns of ``values [G, len(names)]`` (a zero std is stored as 1)."""
    out = {}
    if not names:
        return out
    values = np.asarray(values, dtype=np.float64).reshape(-1, len(names))
    for k, name in enumerate(names):
        col = values[:, k]
        mean = float(col.mean()) if len(col) else 0.0
        std = float(col.std()) if len(col) else 1.0
        out[name] = {"mean": round(mean, 6), "std": round(std, 6) if std > 1e-9 else 1.0}
    return out


def condition_columns(spec: Mapping) -> tuple[str, ...]:
    """The ``y`` column names of a condition record (categorical groups first, then numeric statistics)."""
    cols = [f"{group}:{name}" for group, names in spec.get("categorical", {}).items() for name in names]
    return tuple(cols) + tuple(spec.get("numeric", {}))


def encode(spec: Mapping, categories: Mapping[str, np.ndarray], numeric: np.ndarray | None) -> np.ndarray:
    """``y [G, Fy]`` float32 from per-graph category indices of each group and raw numeric values ``[G, K]``."""
    parts = []
    for group, names in spec.get("categorical", {}).items():
        idx = np.asarray(categories[group], dtype=np.int64)
        parts.append(np.eye(len(names), dtype=np.float32)[idx])
    stats = spec.get("numeric", {})
    if stats:
        raw = np.asarray(numeric, dtype=np.float64).reshape(-1, len(stats))
        mean = np.array([s["mean"] for s in stats.values()])
        std = np.array([s["std"] for s in stats.values()])
        parts.append(((raw - mean) / std).astype(np.float32))
    return np.concatenate(parts, axis=1) if parts else np.zeros((0, 0), np.float32)


def _per_sample(value, n: int, key: str) -> list:
    if isinstance(value, (str, bytes)) or np.ndim(value) == 0:
        return [value] * n
    value = list(value.tolist() if isinstance(value, (np.ndarray, torch.Tensor)) else value)
    if len(value) != n:
        raise ConfigError(f"cond[{key!r}]: {len(value)} values for {n} samples (give one value or one per sample)")
    return value


def _number(v, key: str) -> float:
    try:
        x = float(v)
    except (TypeError, ValueError):
        raise ConfigError(f"cond[{key!r}]: expected a number, got {v!r}") from None
    if not np.isfinite(x):
        raise ConfigError(f"cond[{key!r}]: expected a finite number, got {v!r}")
    return x


def condition_tensor(schema, cond: Mapping, n: int = 1) -> torch.Tensor:
    """The ``[n, Fy]`` condition input for ``cond`` given by name, e.g. ``{"domain": "planar", "n_nodes": 64}``.

    Each value is one value for every sample or a sequence of ``n``. A categorical group (``domain``) must be given;
    numeric statistics left out get their training mean (normalised value 0). Without a condition record in the
    schema every one of ``schema.graph_features`` must be given, as a raw value.

    Raises:
        ConfigError: an unknown key or category (naming the closest), a missing group, a bad value.
    """
    if not isinstance(cond, Mapping):
        raise ConfigError(f"cond: expected a mapping of condition names to values, got {type(cond).__name__}")
    spec = schema.extra.get("conditions") if isinstance(schema.extra, dict) else None
    groups = dict(spec.get("categorical", {})) if spec else {}
    numeric = list(spec.get("numeric", {})) if spec else list(schema.graph_features)
    known = list(groups) + numeric
    if not known:
        raise ConfigError("cond: this model was trained without graph-level conditions")
    for key in cond:
        if key not in known:
            raise ConfigError(f"cond: unknown condition column {key!r}{suggest(key, known)}; this model takes "
                              f"{', '.join(known)}")
    need = list(groups) if spec else numeric
    for key in need:
        if key not in cond:
            raise ConfigError(f"cond: {key!r} missing; this model takes {', '.join(known)}")
    cats = {}
    for group, names in groups.items():
        picked = []
        for v in _per_sample(cond[group], n, group):
            if v not in names:
                raise ConfigError(f"cond[{group!r}]: unknown {group} {v!r}{suggest(v, names)}; choose from "
                                  f"{', '.join(names)}")
            picked.append(names.index(v))
        cats[group] = np.asarray(picked)
    raw = np.zeros((n, len(numeric)))
    for k, key in enumerate(numeric):
        if key in cond:
            raw[:, k] = [_number(v, key) for v in _per_sample(cond[key], n, key)]
        elif spec:
            raw[:, k] = spec["numeric"][key]["mean"]
    if not spec:
        return torch.from_numpy(raw.astype(np.float32))
    return torch.from_numpy(encode(spec, cats, raw))


def domain_condition(obj, domain, n: int | None = None, **numeric) -> torch.Tensor:
    """The condition tensor for ``domain`` (and numeric statistics such as ``n_nodes=64``) of a pipeline, a dataset
    or a schema: ``[Fy]``, or ``[n, Fy]`` when ``n`` is given."""
    schema = getattr(obj, "schema", obj)
    y = condition_tensor(schema, {"domain": domain, **numeric}, 1 if n is None else n)
    return y[0] if n is None else y


__all__ = ["STATISTICS", "graph_statistics", "networkx_statistics", "statistics_by_size", "condition_adherence",
           "numeric_stats", "condition_columns", "encode", "condition_tensor", "domain_condition"]
