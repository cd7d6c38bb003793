"""GraphState: the dense, padded batch of graphs that every process, denoiser and sampler computes on."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from collections.abc import Sequence

import torch
from torch import Tensor

from .checks import as_integer
from .errors import SchemaError
from .schema import Schema



def pair_mask(mask: Tensor, include_diagonal: bool = False) -> Tensor:
    """``[B, N, N]`` bool: both endpoints of the pair are real nodes of ``mask [B, N]`` (and the pair is off the
    diagonal unless ``include_diagonal``). The one pair mask of the package."""
    m = mask.unsqueeze(-1) & mask.unsqueeze(-2)
    if not include_diagonal:
        m = m & ~torch.eye(mask.shape[-1], dtype=torch.bool, device=mask.device)
    return m

@dataclass
class GraphState:
    """A batch of graphs as dense padded tensors (the form GDSS, DiGress, PARD and MiDi compute in).

    Categorical edge features are one-hot with channel 0 meaning "no edge". The diagonal and every pair that
    touches a padded slot are all-zero after :meth:`masked`.

    Shapes:
        x: ``[B, N, Fx]`` node features (one-hot categories, then continuous channels).
        e: ``[B, N, N, Fe]`` edge features, symmetric for undirected graphs.
        mask: ``[B, N]`` bool, which slots are real nodes.
        pos: ``[B, N, 3]`` coordinates or ``None``.
        y: ``[B, Fy]`` graph-level features or ``None``.
        blocks: ``[B, N]`` long or ``None``: each node's block in a structural order (PARD,
            :mod:`graphdiff.processes.order`), -1 at padded slots. An annotation: node operations (permute, pad,
            index, cat, compact) carry it along, but it is not recomputed when edges change.

    ``schema`` optionally travels with the state (set by the converters) so that decoders such as
    :func:`graphdiff.convert.to_smiles` know what the channels mean.
    """

    x: Tensor
    e: Tensor
    mask: Tensor
    pos: Tensor | None = None
    y: Tensor | None = None
    schema: Schema | None = field(default=None, compare=False, repr=False)
    blocks: Tensor | None = field(default=None, compare=False, repr=False)

    def __post_init__(self):
        if self.x.dim() != 3 or self.e.dim() != 4 or self.mask.dim() != 2:
            raise SchemaError(
                f"GraphState wants x [B,N,Fx], e [B,N,N,Fe], mask [B,N]; got x {tuple(self.x.shape)}, "
                f"e {tuple(self.e.shape)}, mask {tuple(self.mask.shape)}"
            )
        b, n = self.mask.shape
        if self.x.shape[:2] != (b, n) or self.e.shape[:3] != (b, n, n):
            raise SchemaError(
                f"GraphState shapes disagree: mask {tuple(self.mask.shape)}, x {tuple(self.x.shape)}, "
                f"e {tuple(self.e.shape)}"
            )
        if self.pos is not None and self.pos.shape != (b, n, 3):
            raise SchemaError(f"GraphState pos must be [B,N,3] = {(b, n, 3)}, got {tuple(self.pos.shape)}")
        if self.y is not None and (self.y.dim() != 2 or self.y.shape[0] != b):
            raise SchemaError(f"GraphState y must be [B,Fy] with B={b}, got {tuple(self.y.shape)}")
        if self.blocks is not None and (self.blocks.shape != (b, n) or self.blocks.is_floating_point()):
            raise SchemaError(f"GraphState blocks must be integer [B,N] = {(b, n)}, got {tuple(self.blocks.shape)} "
                              f"{self.blocks.dtype}")
        if self.mask.dtype != torch.bool:
            self.mask = self.mask.bool()

    # ---- sizes -------------------------------------------------------------------------------------
    @property
    def batch_size(self) -> int:
        return self.mask.shape[0]

    @property
    def max_nodes(self) -> int:
        return self.mask.shape[1]

    @property
    def n_nodes(self) -> Tensor:
        """Number of real nodes per graph, ``[B]`` long."""
        return self.mask.sum(dim=1)

    @property
    def device(self) -> torch.device:
        return self.x.device

    def __len__(self) -> int:
        return self.batch_size

    # ---- construction ------------------------------------------------------------------------------
    @classmethod
    def from_types(
        cls,
        node_types: Tensor,
        edge_types: Tensor,
        mask: Tensor,
        schema: Schema,
        *,
        pos: Tensor | None = None,
        y: Tensor | None = None,
        dtype: torch.dtype = torch.float32,
        blocks: Tensor | None = None,
    ) -> "GraphState":
        """Build a one-hot state from category indices.

        Args:
            node_types: ``[B, N]`` long node category indices (ignored at padded slots).
            edge_types: ``[B, N, N]`` long edge category indices, 0 = no edge.
            mask: ``[B, N]`` bool.
        """
        kx, ke = schema.num_node_types, schema.num_edge_types
        real = node_types[mask.bool()]
        if real.numel() and int(real.max()) >= kx:
            raise SchemaError(f"node category index {int(real.max())} is outside the schema's {kx} node categories")
        if edge_types.numel() and int(edge_types.max()) >= ke:
            bad = int(edge_types.max())
            raise SchemaError(f"edge category index {bad} is outside the schema's {ke} edge categories")
        x = torch.nn.functional.one_hot(node_types.clamp(min=0).long(), kx).to(dtype)
        if schema.node_continuous:
            b, n = mask.shape
            x = torch.cat([x, torch.zeros(b, n, len(schema.node_continuous), dtype=dtype, device=x.device)], -1)
        e = torch.nn.functional.one_hot(edge_types.clamp(min=0).long(), ke).to(dtype)
        return cls(x=x, e=e, mask=mask.bool(), pos=pos, y=y, schema=schema, blocks=blocks).masked()

    # ---- masking and symmetry ----------------------------------------------------------------------
    def pair_mask(self, include_diagonal: bool = False) -> Tensor:
        """``[B, N, N]`` bool: both endpoints real (and off-diagonal unless asked); :func:`pair_mask`."""
        return pair_mask(self.mask, include_diagonal)

    def masked(self) -> "GraphState":
        """Zero padded slots, pairs touching them and the diagonal of ``e``; centre ``pos`` under the mask."""
        nm = self.mask.unsqueeze(-1).to(self.x.dtype)
        em = self.pair_mask().unsqueeze(-1).to(self.e.dtype)
        pos = self.pos
        if pos is not None:
            w = self.mask.unsqueeze(-1).to(pos.dtype)
            centre = (pos * w).sum(1, keepdim=True) / w.sum(1, keepdim=True).clamp(min=1)
            pos = (pos - centre) * w
        return replace(self, x=self.x * nm, e=self.e * em, pos=pos)

    def symmetrized(self, mode: str = "upper") -> "GraphState":
        """Make ``e`` symmetric: ``"upper"`` mirrors the upper triangle, ``"mean"`` averages both."""
        e = self.e
        if mode == "mean":
            e = 0.5 * (e + e.transpose(1, 2))
        elif mode == "upper":
            upper = torch.triu(torch.ones(self.max_nodes, self.max_nodes, dtype=torch.bool, device=e.device), 1)
            up = upper.view(1, *upper.shape, 1)
            e = torch.where(up, e, e.transpose(1, 2))
        else:
            raise ValueError(f"symmetrized mode must be 'upper' or 'mean', got {mode!r}")
        return replace(self, e=e).masked()

    def is_symmetric(self, atol: float = 0.0) -> bool:
        return bool(torch.allclose(self.e, self.e.transpose(1, 2), atol=atol))

    # ---- permutation -------------------------------------------------------------------------------
    def permute(self, perm: Tensor) -> "GraphState":
        """Relabel nodes: output slot ``i`` holds input slot ``perm[i]`` (``perm`` is ``[N]`` or ``[B, N]``)."""
        if perm.dim() == 1:
            perm = perm.unsqueeze(0).expand(self.batch_size, -1)
        b = torch.arange(self.batch_size, device=perm.device).unsqueeze(1)
        x = self.x[b, perm]
        mask = self.mask[b, perm]
        e = self.e[b.unsqueeze(2), perm.unsqueeze(2), perm.unsqueeze(1)]
        pos = self.pos[b, perm] if self.pos is not None else None
        blocks = self.blocks[b, perm] if self.blocks is not None else None
        return replace(self, x=x, e=e, mask=mask, pos=pos, blocks=blocks)

    # ---- devices and dtypes ------------------------------------------------------------------------
    def to(self, *args, **kwargs) -> "GraphState":
        def mv(t, keep_dtype=False):
            if t is None:
                return None
            if keep_dtype:
                dev = [a for a in args if isinstance(a, (str, torch.device))]
                return t.to(*dev, **{k: v for k, v in kwargs.items() if k == "device"})
            return t.to(*args, **kwargs)

        return replace(self, x=mv(self.x), e=mv(self.e), mask=mv(self.mask, True), pos=mv(self.pos), y=mv(self.y),
                       blocks=mv(self.blocks, True))

    def clone(self) -> "GraphState":
        c = lambda t: None if t is None else t.clone()  # noqa: E731
        return replace(self, x=c(self.x), e=c(self.e), mask=c(self.mask), pos=c(self.pos), y=c(self.y),
                       blocks=c(self.blocks))

    # ---- indexing, splitting, concatenation --------------------------------------------------------
    def __getitem__(self, idx) -> "GraphState":
        if isinstance(idx, bool):
            raise IndexError("a GraphState is indexed by graph numbers, not by a bool")
        one = as_integer(idx)  # an int, a numpy integer or a 0-d integer tensor
        if one is not None:
            idx = one  # one graph, kept as a batch of one; out of range ends iteration
            b = self.batch_size
            if not -b <= idx < b:
                raise IndexError(f"graph index {idx} out of range for a batch of {b}")
            idx = idx % b
            idx = slice(idx, idx + 1)
        return replace(
            self, x=self.x[idx], e=self.e[idx], mask=self.mask[idx],
            pos=None if self.pos is None else self.pos[idx], y=None if self.y is None else self.y[idx],
            blocks=None if self.blocks is None else self.blocks[idx],
        )

    def compact(self) -> "GraphState":
        """Move real nodes to the front of each graph (stable) and trim padding to the largest graph."""
        order = torch.argsort((~self.mask).to(torch.int8), dim=1, stable=True)
        out = self.permute(order)
        n = int(out.n_nodes.max()) if out.batch_size else 0
        return out.pad_to(n)

    def pad_to(self, n: int) -> "GraphState":
        """Pad (or trim empty trailing slots) to ``n`` node slots."""
        cur = self.max_nodes
        if n == cur:
            return self
        if n < cur:
            if bool(self.mask[:, n:].any()):
                raise SchemaError(f"cannot trim to {n} slots: a graph has {int(self.n_nodes.max())} nodes")
            return replace(
                self, x=self.x[:, :n], e=self.e[:, :n, :n], mask=self.mask[:, :n],
                pos=None if self.pos is None else self.pos[:, :n],
                blocks=None if self.blocks is None else self.blocks[:, :n],
            )
        d = n - cur
        f = torch.nn.functional.pad
        return replace(
            self, x=f(self.x, (0, 0, 0, d)), e=f(self.e, (0, 0, 0, d, 0, d)), mask=f(self.mask, (0, d)),
            pos=None if self.pos is None else f(self.pos, (0, 0, 0, d)),
            blocks=None if self.blocks is None else f(self.blocks, (0, d), value=-1),
        )

    def split(self) -> list["GraphState"]:
        """One single-graph state per graph, real nodes first, trimmed to its own size."""
        out = []
        for i in range(self.batch_size):
            g = self[i].compact()
            out.append(g)
        return out

    @staticmethod
    def cat(states: Sequence["GraphState"]) -> "GraphState":
        """Concatenate along the batch, padding every state to the largest N."""
        if not states:
            raise ValueError("GraphState.cat needs at least one state")
        n = max(s.max_nodes for s in states)
        padded = [s.pad_to(n) for s in states]
        has_pos = [s.pos is not None for s in padded]
        has_y = [s.y is not None for s in padded]
        if len(set(has_pos)) > 1 or len(set(has_y)) > 1:
            raise SchemaError("GraphState.cat: some states have pos/y and others do not")
        has_blocks = all(s.blocks is not None for s in padded)  # an annotation: kept only when every state has it
        return GraphState(
            x=torch.cat([s.x for s in padded]),
            e=torch.cat([s.e for s in padded]),
            mask=torch.cat([s.mask for s in padded]),
            pos=torch.cat([s.pos for s in padded]) if has_pos[0] else None,
            y=torch.cat([s.y for s in padded]) if has_y[0] else None,
            schema=padded[0].schema,
            blocks=torch.cat([s.blocks for s in padded]) if has_blocks else None,
        )

    # ---- categorical views -------------------------------------------------------------------------
    def node_types(self, schema: Schema | None = None) -> Tensor:
        """``[B, N]`` argmax over the one-hot node channels (-1 at padded slots)."""
        schema = schema if schema is not None else self.schema
        k = schema.num_node_types if schema is not None else self.x.shape[-1]
        t = self.x[..., :k].argmax(-1)
        return torch.where(self.mask, t, torch.full_like(t, -1))

    def edge_types(self) -> Tensor:
        """``[B, N, N]`` argmax over edge channels; 0 (no edge) off the real pairs."""
        if self.e.shape[-1] == 1:
            t = (self.e[..., 0] > 0.5).long()
        else:
            t = self.e.argmax(-1)
        return torch.where(self.pair_mask(), t, torch.zeros_like(t))

    def adjacency(self) -> Tensor:
        """``[B, N, N]`` 0/1 float adjacency (any edge category other than "none")."""
        return (self.edge_types() > 0).to(self.x.dtype)

    # ---- PyG bridge (implemented once, in graphdiff.pyg_bridge) -------------------------------------
    def to_pyg(self, schema: Schema | None = None):
        """A PyG ``Batch``: one ``Data`` per graph, real nodes only (``graphdiff.convert.pyg`` conventions)."""
        from .pyg_bridge import pyg_from_dense

        return pyg_from_dense(self)

    @classmethod
    def from_pyg(cls, data, schema: Schema | None = None, max_nodes: int | None = None) -> "GraphState":
        """PyG ``Data`` / ``Batch`` / list of ``Data`` as a dense, masked GraphState."""
        from .pyg_bridge import dense_from_pyg

        return cls(**dense_from_pyg(data, schema=schema, max_nodes=max_nodes)).masked()
