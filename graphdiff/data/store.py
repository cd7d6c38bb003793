"""GraphStore: many graphs in a few flat numpy arrays (CSR-style), saved as ``.npy`` and memory-mapped.

No Python object per graph is kept: 1.58M MOSES molecules take a few tens of MB and open instantly. The files
are plain ``.npy`` read with ``allow_pickle=False``, so opening a cache never executes code.

Layout (G graphs, V nodes in total, M undirected edges in total):

| array | dtype | shape | meaning |
|---|---|---|---|
| node_ptr | int64 | [G+1] | graph g owns nodes ``node_ptr[g]:node_ptr[g+1]`` |
| node_type | uint8/int16 | [V] | node category index |
| edge_ptr | int64 | [G+1] | graph g owns edges ``edge_ptr[g]:edge_ptr[g+1]`` |
| edge_index | int16/int32 | [M, 2] | local node indices, ``i < j`` |
| edge_type | uint8 | [M] | edge category index (>= 1) |
| split | int8 | [G] | 0 train, 1 val, 2 test, -1 unassigned |
| pos | float32 | [V, 3] | optional coordinates |
| y | float32 | [G, Fy] | optional graph features |
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from collections.abc import Iterable, Sequence

import numpy as np
import torch

from ..errors import DataError, SchemaError
from ..schema import Schema
from ..state import GraphState

SPLITS = {"train": 0, "val": 1, "test": 2}
_ARRAYS = ("node_ptr", "node_type", "edge_ptr", "edge_index", "edge_type", "split")
_OPTIONAL = ("pos", "y")


def _small_int(max_value: int, signed: bool = False):
    if max_value < (127 if signed else 255):
        return np.int8 if signed else np.uint8
    if max_value < 32767:
        return np.int16
    return np.int32


class GraphStore:
    """A compact, read-mostly collection of graphs with categorical nodes and edges."""

    def __init__(self, node_ptr, node_type, edge_ptr, edge_index, edge_type, split=None, pos=None, y=None):
        self.node_ptr = node_ptr
        self.node_type = node_type
        self.edge_ptr = edge_ptr
        self.edge_index = edge_index
        self.edge_type = edge_type
        g = len(node_ptr) - 1
        self.split = split if split is not None else np.full(g, -1, dtype=np.int8)
        self.pos = pos
        self.y = y
        # optional per-node annotation aligned with node_type (PARD blocks, graphdiff.processes.order.dataset_blocks);
        # to_state hands it to the batch as GraphState.blocks
        self.node_blocks = None
        self.node_blocks_hops = None
        if len(edge_ptr) != len(node_ptr) or len(self.split) != g:
            raise DataError(
                f"GraphStore arrays disagree: {g} graphs, edge_ptr {len(edge_ptr)}, split {len(self.split)}"
            )

    # ---- construction ------------------------------------------------------------------------------
    @classmethod
    def from_lists(
        cls,
        node_types: Sequence[np.ndarray],
        edges: Sequence[np.ndarray],
        edge_types: Sequence[np.ndarray] | None = None,
        *,
        split: np.ndarray | None = None,
        pos: Sequence[np.ndarray] | None = None,
        y: np.ndarray | None = None,
    ) -> "GraphStore":
        """Build from per-graph arrays. ``edges[g]`` is ``[m, 2]`` local indices (either order, no duplicates)."""
        n = np.fromiter((len(t) for t in node_types), dtype=np.int64, count=len(node_types))
        m = np.fromiter((len(e) for e in edges), dtype=np.int64, count=len(edges))
        node_ptr = np.zeros(len(n) + 1, dtype=np.int64)
        np.cumsum(n, out=node_ptr[1:])
        edge_ptr = np.zeros(len(m) + 1, dtype=np.int64)
        np.cumsum(m, out=edge_ptr[1:])
        nt = np.concatenate([np.asarray(t, dtype=np.int64) for t in node_types]) if len(n) else np.zeros(0, np.int64)
        if len(edges) and edge_ptr[-1]:
            ei = np.concatenate([np.asarray(e, dtype=np.int64).reshape(-1, 2) for e in edges])
        else:
            ei = np.zeros((0, 2), np.int64)
        ei = np.sort(ei, axis=1)
        if edge_types is None:
            et = np.ones(len(ei), dtype=np.uint8)
        else:
            et = np.concatenate([np.asarray(t, dtype=np.int64) for t in edge_types]) if len(m) else np.zeros(0)
        maxn = int(n.max()) if len(n) else 0
        store = cls(
            node_ptr,
            nt.astype(_small_int(int(nt.max()) if len(nt) else 0)),
            edge_ptr,
            ei.astype(_small_int(maxn, signed=True) if maxn < 32767 else np.int32),
            np.asarray(et).astype(np.uint8),
            split=None if split is None else np.asarray(split, dtype=np.int8),
            pos=None if pos is None else np.concatenate([np.asarray(p, np.float32) for p in pos]),
            y=None if y is None else np.asarray(y, dtype=np.float32),
        )
        store.validate()
        return store

    @classmethod
    def concat(cls, stores: Sequence["GraphStore"]) -> "GraphStore":
        """Join stores end to end (used to merge chunks featurised in parallel)."""
        node_ptr = [np.zeros(1, np.int64)]
        edge_ptr = [np.zeros(1, np.int64)]
        off_n = off_e = 0
        for s in stores:
            node_ptr.append(np.asarray(s.node_ptr[1:]) + off_n)
            edge_ptr.append(np.asarray(s.edge_ptr[1:]) + off_e)
            off_n += int(s.node_ptr[-1])
            off_e += int(s.edge_ptr[-1])
        nt_dtype = np.result_type(*[s.node_type.dtype for s in stores])
        ei_dtype = np.result_type(*[s.edge_index.dtype for s in stores])
        return cls(
            np.concatenate(node_ptr),
            np.concatenate([s.node_type for s in stores]).astype(nt_dtype),
            np.concatenate(edge_ptr),
            np.concatenate([s.edge_index for s in stores]).astype(ei_dtype),
            np.concatenate([s.edge_type for s in stores]),
            split=np.concatenate([s.split for s in stores]),
            pos=None if stores[0].pos is None else np.concatenate([s.pos for s in stores]),
            y=None if stores[0].y is None else np.concatenate([s.y for s in stores]),
        )

    def validate(self) -> None:
        """Check structural invariants; raises :class:`DataError` naming the first bad graph."""
        n = self.num_nodes
        ei = np.asarray(self.edge_index)
        if len(ei) == 0:
            return
        owner = np.repeat(np.arange(len(self)), np.diff(self.edge_ptr))
        if (ei[:, 0] == ei[:, 1]).any():
            g = int(owner[np.argmax(ei[:, 0] == ei[:, 1])])
            raise DataError(f"graph {g} has a self-loop")
        bad = (ei.min(1) < 0) | (ei.max(1) >= n[owner])
        if bad.any():
            g = int(owner[np.argmax(bad)])
            raise DataError(f"graph {g} has an edge to a node index >= its {int(n[g])} nodes")
        if (np.asarray(self.edge_type) == 0).any():
            g = int(owner[np.argmax(np.asarray(self.edge_type) == 0)])
            raise DataError(f"graph {g} has an edge of category 0 ('none')")

    # ---- persistence -------------------------------------------------------------------------------
    def save(self, directory: str | os.PathLike) -> None:
        """Write all arrays atomically: into a temporary folder that is then renamed over ``directory``."""
        directory = Path(directory)
        directory.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=directory.name + ".", dir=directory.parent))
        try:
            for name in _ARRAYS + _OPTIONAL:
                arr = getattr(self, name)
                if arr is not None:
                    np.save(tmp / f"{name}.npy", np.ascontiguousarray(arr), allow_pickle=False)
            if directory.exists():
                old = directory.with_name(directory.name + ".old")
                shutil.rmtree(old, ignore_errors=True)
                directory.rename(old)
                tmp.rename(directory)
                shutil.rmtree(old, ignore_errors=True)
            else:
                tmp.rename(directory)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    @classmethod
    def load(cls, directory: str | os.PathLike, mmap: bool = True) -> "GraphStore":
        """Open a saved store (memory-mapped by default).

        Raises:
            DataError: a missing, truncated or corrupt array file, or arrays whose lengths disagree; the message
                names the file.
        """
        directory = Path(directory)
        mode = "r" if mmap else None
        arrays = {}
        for name in _ARRAYS + _OPTIONAL:
            f = directory / f"{name}.npy"
            if f.exists():
                try:
                    arrays[name] = np.load(f, mmap_mode=mode, allow_pickle=False)
                except (OSError, ValueError, EOFError) as exc:  # truncated header or data, not an .npy file
                    reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                    raise DataError(f"processed cache {f}: unreadable ({reason})") from None
            elif name in _ARRAYS:
                raise DataError(f"processed cache {directory} lacks {name}.npy; delete the folder to rebuild it")
        try:
            store = cls(**arrays)
        except DataError as exc:
            raise DataError(f"processed cache {directory}: {exc}") from None
        n_nodes = int(store.node_ptr[-1]) if len(store.node_ptr) else 0
        n_edges = int(store.edge_ptr[-1]) if len(store.edge_ptr) else 0
        sizes = {"node_type": (len(store.node_type), n_nodes), "edge_index": (len(store.edge_index), n_edges),
                 "edge_type": (len(store.edge_type), n_edges)}
        if store.pos is not None:
            sizes["pos"] = (len(store.pos), n_nodes)
        if store.y is not None:
            sizes["y"] = (len(store.y), len(store))
        for name, (have, want) in sizes.items():
            if have != want:
                raise DataError(f"processed cache {directory / (name + '.npy')}: {have} rows, the pointers say "
                                f"{want}")
        return store

    # ---- access ------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.node_ptr) - 1

    @property
    def num_nodes(self) -> np.ndarray:
        return np.diff(np.asarray(self.node_ptr))

    @property
    def num_edges(self) -> np.ndarray:
        return np.diff(np.asarray(self.edge_ptr))

    def graph(self, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(node_types [n], edge_index [m, 2], edge_types [m])`` of graph ``i``."""
        a, b = int(self.node_ptr[i]), int(self.node_ptr[i + 1])
        c, d = int(self.edge_ptr[i]), int(self.edge_ptr[i + 1])
        return (np.asarray(self.node_type[a:b], dtype=np.int64), np.asarray(self.edge_index[c:d], dtype=np.int64),
                np.asarray(self.edge_type[c:d], dtype=np.int64))

    def graph_pos(self, i: int) -> np.ndarray | None:
        if self.pos is None:
            return None
        return np.asarray(self.pos[int(self.node_ptr[i]):int(self.node_ptr[i + 1])])

    def iter_graphs(self) -> Iterable[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        for i in range(len(self)):
            yield self.graph(i)

    def indices(self, split: str | None) -> np.ndarray:
        if split is None:
            return np.arange(len(self))
        if split not in SPLITS:
            raise DataError(f"unknown split {split!r}; choose one of {sorted(SPLITS)}")
        return np.flatnonzero(np.asarray(self.split) == SPLITS[split])

    def subset(self, idx: Sequence[int]) -> "GraphStore":
        idx = np.asarray(idx, dtype=np.int64)
        graphs = [self.graph(int(i)) for i in idx]
        pos = [self.graph_pos(int(i)) for i in idx] if self.pos is not None else None
        return GraphStore.from_lists(
            [g[0] for g in graphs], [g[1] for g in graphs], [g[2] for g in graphs],
            split=np.asarray(self.split)[idx], pos=pos, y=None if self.y is None else np.asarray(self.y)[idx],
        )

    def to_state(self, idx: Sequence[int], schema: Schema, max_nodes: int | None = None) -> GraphState:
        """Dense one-hot :class:`GraphState` of the graphs ``idx``, padded to ``max_nodes`` (default: largest); with
        ``node_blocks`` set, the batch carries them as ``GraphState.blocks``."""
        idx = np.asarray(idx, dtype=np.int64)
        ptr = np.asarray(self.node_ptr)
        eptr = np.asarray(self.edge_ptr)
        n = ptr[idx + 1] - ptr[idx]
        nmax = int(n.max()) if len(n) else 0
        if max_nodes is not None:
            if nmax > max_nodes:
                g = int(idx[np.argmax(n)])
                raise SchemaError(f"graph {g} has {nmax} nodes, more than max_nodes={max_nodes}")
            nmax = max_nodes
        b = len(idx)
        node_t = torch.zeros(b, nmax, dtype=torch.long)
        mask = torch.arange(nmax).unsqueeze(0) < torch.as_tensor(n).unsqueeze(1)
        # global index of every real node of the batch, graph after graph (one gather per per-node array)
        node_idx = np.repeat(ptr[idx] - np.concatenate([[0], np.cumsum(n)[:-1]]), n) + np.arange(int(n.sum()))
        if b:
            node_t[mask] = torch.from_numpy(np.asarray(self.node_type[node_idx], dtype=np.int64))
        edge_t = torch.zeros(b, nmax, nmax, dtype=torch.long)
        m = eptr[idx + 1] - eptr[idx]
        if m.sum():
            ei = np.concatenate([np.asarray(self.edge_index[eptr[i]:eptr[i + 1]], dtype=np.int64) for i in idx])
            et = np.concatenate([np.asarray(self.edge_type[eptr[i]:eptr[i + 1]], dtype=np.int64) for i in idx])
            gb = torch.from_numpy(np.repeat(np.arange(b), m))
            u, v, t = torch.from_numpy(ei[:, 0]), torch.from_numpy(ei[:, 1]), torch.from_numpy(et)
            edge_t[gb, u, v] = t
            edge_t[gb, v, u] = t
        pos = None
        if self.pos is not None:
            pos = torch.zeros(b, nmax, 3)
            rows = [np.asarray(self.pos[ptr[i]:ptr[i + 1]]) for i in idx]
            if b:
                pos[mask] = torch.from_numpy(np.concatenate(rows)).float()
        y = None if self.y is None else torch.from_numpy(np.asarray(self.y)[idx]).float()
        blocks = None
        if self.node_blocks is not None:
            blocks = torch.full((b, nmax), -1, dtype=torch.long)
            if b:
                blocks[mask] = torch.from_numpy(np.asarray(self.node_blocks[node_idx], dtype=np.int64))
        return GraphState.from_types(node_t, edge_t, mask, schema, pos=pos, y=y, blocks=blocks)

    def schema(self, node_categories, edge_categories, kind="graph", **kwargs) -> Schema:
        """Schema with marginals and the node-count histogram derived from all graphs in the store."""
        return Schema.from_counts(
            self.num_nodes, self.num_edges, np.asarray(self.node_type), np.asarray(self.edge_type),
            node_categories=node_categories, edge_categories=edge_categories, kind=kind, **kwargs,
        )
