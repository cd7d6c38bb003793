"""Shared pieces of the categorical processes (DiGress, DeFoG) on node and edge categories.

* Limit distributions ``m`` built from the schema: ``"uniform"``, ``"marginal"`` (the schema's node / edge
  marginals) and ``"absorbing"`` (nodes gain an extra [MASK] state, appended after the ``Kx`` data categories;
  edges are absorbed into ``"none"``, channel 0).
* Per-sample categorical sampling by inverse CDF from uniforms drawn at the schema's full size ``max_nodes`` (one
  per node, one per node pair) and sliced, so that a sample does not depend on the batch it is drawn in. Edges use
  the draws of the upper triangle and are mirrored; the diagonal and pairs that touch a padded slot are the
  one-hot of "none" (channel 0); padded node slots are all-zero.
* Graph-level conditions for classifier-free guidance (Ho & Salimans 2022): with ``Fy > 0`` graph features the
  denoiser's condition input is ``cat([y * keep, keep])`` (width ``Fy + 1``), ``keep = 0`` marking a dropped
  condition (training) or the unconditional branch (sampling).
* :class:`CategoricalProcess`, the base both processes share: sizes, encode / decode, prior, the (guided)
  denoiser call and the cross-entropy loss.

The process state is a :class:`GraphState` of one-hot noisy categories: ``x [B, N, Kx (+1 for [MASK])]``,
``e [B, N, N, Ke]``. The denoiser is called as ``denoiser(state_t, t, cond)`` with ``t [B]`` float and ``cond``
``[B, Fy + 1]`` (``None`` when the schema has no graph features) and returns a :class:`GraphState` of logits
``x [B, N, Kx]``, ``e [B, N, N, Ke]``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import ConfigError, SchemaError
from ..samplers.noise import SampleNoise
from ..schema import Schema
from ..state import GraphState, pair_mask

LIMITS = ("uniform", "marginal", "absorbing")


# ---- limit distributions -------------------------------------------------------------------------------
def _marginal(values, k: int, what: str, field: str) -> Tensor:
    if len(values) == 0:
        raise ConfigError(f"{field}: 'marginal' needs the schema's {what}, which are empty (schema built without data)")
    if len(values) != k:
        raise ConfigError(f"{field}: 'marginal' needs {k} {what}, the schema has {len(values)}")
    m = torch.tensor([float(v) for v in values], dtype=torch.float64).clamp(min=0.0)
    if float(m.sum()) <= 0:
        raise ConfigError(f"{field}: the schema's {what} sum to 0")
    return m / m.sum()


def limit_distributions(schema: Schema, limit: str, field: str = "process.limit") -> tuple[Tensor, Tensor]:
    """The limit (noise) distributions ``m_X`` and ``m_E`` of a categorical process.

    Args:
        schema: the dataset schema (categories and, for ``"marginal"``, the marginals).
        limit: ``"uniform"``, ``"marginal"`` or ``"absorbing"``.
        field: the config field named in errors.

    Returns:
        ``(m_X, m_E)`` float64 probability vectors.

    Shapes:
        m_X: ``[Kx]``, or ``[Kx + 1]`` for ``"absorbing"`` (the last state is [MASK]); m_E: ``[Ke]``.
    """
    kx, ke = schema.num_node_types, schema.num_edge_types
    if limit not in LIMITS:
        raise ConfigError(f"{field}: {limit!r} is not one of {LIMITS}")
    if limit == "uniform":
        return torch.full((kx,), 1.0 / kx, dtype=torch.float64), torch.full((ke,), 1.0 / ke, dtype=torch.float64)
    if limit == "marginal":
        return (_marginal(schema.node_marginals, kx, "node_marginals", field),
                _marginal(schema.edge_marginals, ke, "edge_marginals", field))
    # absorbing: all node mass on the appended [MASK] state, all edge mass on "none"
    m_x = torch.zeros(kx + 1, dtype=torch.float64)
    m_x[kx] = 1.0
    m_e = torch.zeros(ke, dtype=torch.float64)
    m_e[0] = 1.0
    return m_x, m_e


# ---- masks ----------------------------------------------------------------------------------------------
def upper_pair_mask(mask: Tensor) -> Tensor:
    """``[B, N, N]`` bool: real unordered pairs ``i < j``."""
    n = mask.shape[1]
    return pair_mask(mask) & torch.ones(n, n, dtype=torch.bool, device=mask.device).triu(1)


def mask_from_counts(n_nodes: Tensor, device) -> Tensor:
    """``[B, max(n)]`` bool mask with slots ``0..n-1`` real."""
    n = int(n_nodes.max()) if len(n_nodes) else 0
    return torch.arange(n, device=device).unsqueeze(0) < n_nodes.to(device).unsqueeze(1)


# ---- per-sample categorical sampling --------------------------------------------------------------------
def draw_uniforms(source, mask: Tensor, full: int) -> tuple[Tensor, Tensor]:
    """One uniform per node and per node pair.

    Args:
        source: a :class:`SampleNoise` (per-sample streams, drawn at ``[full]`` / ``[full, full]`` and sliced), a
            ``torch.Generator`` or ``None`` (the global generator; used in training).
        mask: ``[B, N]`` bool.
        full: the schema's ``max_nodes`` (raised to ``N`` if smaller).

    Shapes:
        returns ``u_X [B, N]`` and ``u_E [B, N, N]``, float64 on ``mask.device``.
    """
    b, n = mask.shape
    if isinstance(source, SampleNoise):
        full = max(int(full), n)
        u_x = source.rand(full)[:, :n]
        u_e = source.rand(full, full)[:, :n, :n]
    else:
        gdev = source.device if source is not None else mask.device
        u_x = torch.rand((b, n), generator=source, device=gdev)
        u_e = torch.rand((b, n, n), generator=source, device=gdev)
    return u_x.to(mask.device, torch.float64), u_e.to(mask.device, torch.float64)


def sample_categorical(probs: Tensor, u: Tensor) -> Tensor:
    """Inverse-CDF draw of a category index from (unnormalised) probabilities and one uniform per entry.

    Shapes:
        probs: ``[..., K]``; u: ``[...]`` in ``[0, 1)``; returns ``[...]`` long.
    """
    cdf = probs.to(torch.float64).clamp(min=0).cumsum(-1)
    total = cdf[..., -1:]
    idx = (cdf <= u.unsqueeze(-1) * total).sum(-1)
    return idx.clamp(max=probs.shape[-1] - 1)


def sample_nodes(probs: Tensor, u: Tensor, mask: Tensor, dtype=torch.float32) -> Tensor:
    """One-hot node categories drawn from ``probs``; padded slots all-zero.

    Shapes:
        probs: ``[B, N, K]``; u: ``[B, N]``; mask: ``[B, N]``; returns ``[B, N, K]``.
    """
    idx = sample_categorical(probs, u)
    return F.one_hot(idx, probs.shape[-1]).to(dtype) * mask.unsqueeze(-1).to(dtype)


def symmetric_indices(idx: Tensor, mask: Tensor) -> Tensor:
    """Mirror the upper triangle of ``idx`` and set the diagonal and padded pairs to 0 ("none").

    Shapes:
        idx: ``[B, N, N]`` long; returns ``[B, N, N]`` long.
    """
    n = idx.shape[1]
    up = torch.ones(n, n, dtype=torch.bool, device=idx.device).triu(1)
    idx = torch.where(up, idx, idx.transpose(1, 2))
    return torch.where(pair_mask(mask), idx, torch.zeros_like(idx))


def sample_edges(probs: Tensor, u: Tensor, mask: Tensor, dtype=torch.float32) -> Tensor:
    """Symmetric one-hot edge categories: the upper triangle is drawn, mirrored; diagonal and padding "none".

    Shapes:
        probs: ``[B, N, N, K]``; u: ``[B, N, N]``; mask: ``[B, N]``; returns ``[B, N, N, K]``.
    """
    idx = symmetric_indices(sample_categorical(probs, u), mask)
    return F.one_hot(idx, probs.shape[-1]).to(dtype)


# ---- conditions (classifier-free guidance) -------------------------------------------------------------
def check_condition(y: Tensor | None, schema: Schema, batch_size: int, field: str = "cond") -> Tensor | None:
    """Check a graph-level condition against the schema's ``graph_features``.

    Shapes:
        y: ``[B, Fy]`` (a ``[Fy]`` vector is broadcast to the batch) or ``None``; returns ``[B, Fy]`` or ``None``.
    """
    fy = len(schema.graph_features)
    if y is None:
        return None
    y = torch.as_tensor(y)
    if y.dim() == 1:
        y = y.unsqueeze(0).expand(batch_size, -1)
    if y.dim() != 2 or y.shape[1] != fy:
        got = tuple(y.shape)
        raise ConfigError(f"{field}: expected {fy} graph features {list(schema.graph_features)} per graph, "
                          f"got shape {got}")
    if y.shape[0] != batch_size:
        raise ConfigError(f"{field}: expected {batch_size} rows (one per graph), got {y.shape[0]}")
    return y


def condition_input(y: Tensor, keep: Tensor) -> Tensor:
    """The denoiser's condition input ``cat([y * keep, keep])`` (Ho & Salimans 2022, a null token per graph).

    Shapes:
        y: ``[B, Fy]``; keep: ``[B]`` (1 = conditioned, 0 = dropped / unconditional); returns ``[B, Fy + 1]``.
    """
    keep = keep.to(y.dtype).unsqueeze(-1)
    return torch.cat([y * keep, keep], dim=-1)


def drop_conditions(y: Tensor, cond_drop: float, generator: torch.Generator | None = None) -> Tensor:
    """Training condition input: each graph's condition is dropped with probability ``cond_drop``.

    Shapes:
        y: ``[B, Fy]``; returns ``[B, Fy + 1]``.
    """
    gdev = generator.device if generator is not None else y.device
    keep = (torch.rand(y.shape[0], generator=generator, device=gdev) >= cond_drop).to(y.device)
    return condition_input(y, keep)


def guided_log_probs(log_p_cond: Tensor, log_p_uncond: Tensor, w: float) -> Tensor:
    """Classifier-free guidance on categorical predictions, renormalised.

    Shapes:
        log_p_cond, log_p_uncond: ``[..., K]`` log-probabilities; returns ``[..., K]``.
    """
    # Ho & Salimans 2022, eq. 6 in log space: (1 + w) log p(x | y) - w log p(x)
    return torch.log_softmax((1.0 + w) * log_p_cond - w * log_p_uncond, dim=-1)


# ---- cross entropy -------------------------------------------------------------------------------------
def categorical_ce(logits_x: Tensor, logits_e: Tensor, x0: Tensor, e0: Tensor, mask: Tensor,
                   lambda_edge: float) -> Tensor:
    """Per-graph clean-data cross entropy: node CE averaged over real nodes plus ``lambda_edge`` times the edge CE
    averaged over real unordered pairs.

    Shapes:
        logits_x: ``[B, N, Kx]``; logits_e: ``[B, N, N, Ke]``; x0: ``[B, N]`` long; e0: ``[B, N, N]`` long;
        mask: ``[B, N]``; returns ``[B]``.
    """
    # DiGress eq. 2 (per graph): CE(x, p^X) + lambda CE(e, p^E)
    nll_x = -torch.log_softmax(logits_x.float(), -1).gather(-1, x0.unsqueeze(-1)).squeeze(-1)
    nll_e = -torch.log_softmax(logits_e.float(), -1).gather(-1, e0.unsqueeze(-1)).squeeze(-1)
    m, up = mask.float(), upper_pair_mask(mask).float()
    lx = (nll_x * m).sum(1) / m.sum(1).clamp(min=1)
    le = (nll_e * up).sum((1, 2)) / up.sum((1, 2)).clamp(min=1)
    return lx + lambda_edge * le


# ---- the shared process base ---------------------------------------------------------------------------
class CategoricalProcess:
    """Base of the categorical processes: sizes, encode / decode, prior, guided predictions, the loss tail.

    Args:
        schema: the dataset schema.
        limit: ``"uniform"``, ``"marginal"`` or ``"absorbing"``.
        lambda_edge: weight of the edge cross entropy.
        cond_drop: probability of dropping a graph's condition in training (classifier-free guidance).
        field: the config field that names ``limit`` in errors.

    Shapes:
        state: ``x [B, N, Kx (+1)]`` one-hot, ``e [B, N, N, Ke]`` one-hot (symmetric, "none" on the diagonal and
        padding), ``mask [B, N]``.
    """

    name = "categorical"

    def __init__(self, schema: Schema, *, limit: str, lambda_edge: float, cond_drop: float, field: str):
        if not isinstance(schema, Schema):
            raise ConfigError(f"process: schema must be a Schema, got {type(schema).__name__}")
        if not float(lambda_edge) >= 0:
            raise ConfigError(f"process.lambda_edge must be >= 0, got {lambda_edge}")
        if not 0.0 <= float(cond_drop) < 1.0:
            raise ConfigError(f"process.cond_drop must be in [0, 1), got {cond_drop}")
        self.schema = schema
        self.limit = limit
        self.m_x, self.m_e = limit_distributions(schema, limit, field)
        self.lambda_edge = float(lambda_edge)
        self.cond_drop = float(cond_drop)

    # ---- sizes ----------------------------------------------------------------------------------------
    @property
    def kx(self) -> int:
        """Data node categories (what the denoiser predicts)."""
        return self.schema.num_node_types

    @property
    def ke(self) -> int:
        return self.schema.num_edge_types

    @property
    def node_states(self) -> int:
        """Node channels of the process state (``Kx + 1`` with the absorbing [MASK] state)."""
        return self.kx + (1 if self.limit == "absorbing" else 0)

    @property
    def fy(self) -> int:
        return len(self.schema.graph_features)

    @property
    def mask_index(self) -> int | None:
        return self.kx if self.limit == "absorbing" else None

    def denoiser_kwargs(self) -> dict:
        """Sizes the denoiser is built with (added to the preset's model section)."""
        return {"node_dim": self.node_states, "edge_dim": self.ke, "node_out": self.kx, "edge_out": self.ke,
                "cond_dim": self.fy + 1 if self.fy else 0, "max_nodes": self.schema.max_nodes}

    @staticmethod
    def resolve(spec: dict, schema: Schema, dataset=None) -> dict:
        """Nothing data-dependent beyond the schema's marginals: the spec unchanged."""
        return dict(spec)

    # ---- encoding -------------------------------------------------------------------------------------
    def _remap(self, idx: Tensor, valid: Tensor, theirs, ours, what: str) -> Tensor:
        if theirs is None or tuple(theirs) == tuple(ours):
            return idx
        used = sorted(set(idx[valid].tolist()))
        unknown = [theirs[i] for i in used if i < len(theirs) and theirs[i] not in ours]
        if unknown:
            raise SchemaError(f"sample has {what} categories the schema does not know: {unknown}")
        table = torch.tensor([ours.index(c) if c in ours else 0 for c in theirs], dtype=torch.long,
                             device=idx.device)
        return table[idx.clamp(min=0)]

    def categories(self, batch: GraphState) -> tuple[Tensor, Tensor]:
        """Category indices of a data batch in the process's schema (``SchemaError`` on unknown categories).

        Shapes:
            returns ``x0 [B, N]`` long (0 at padded slots) and ``e0 [B, N, N]`` long (0 off the real pairs).
        """
        theirs = batch.schema
        if theirs is None and batch.e.shape[-1] != self.ke:
            raise SchemaError(f"batch edge channels: expected {self.ke} (schema {list(self.schema.edge_categories)}"
                              f"), got {batch.e.shape[-1]}")
        nt = batch.node_types(theirs if theirs is not None else self.schema)
        nt = torch.where(batch.mask, nt, torch.zeros_like(nt))
        et = batch.edge_types()
        nt = self._remap(nt, batch.mask, None if theirs is None else theirs.node_categories,
                         self.schema.node_categories, "node")
        et = self._remap(et, pair_mask(batch.mask), None if theirs is None else theirs.edge_categories,
                         self.schema.edge_categories, "edge")
        nt = torch.where(batch.mask, nt, torch.zeros_like(nt))
        return nt, symmetric_indices(et, batch.mask)

    def onehot(self, x_idx: Tensor, e_idx: Tensor, mask: Tensor, dtype=torch.float32, y=None) -> GraphState:
        """A process state from category indices (node channels ``node_states``; edges "none" off real pairs)."""
        x = F.one_hot(x_idx.clamp(min=0), self.node_states).to(dtype) * mask.unsqueeze(-1).to(dtype)
        e = F.one_hot(torch.where(pair_mask(mask), e_idx, torch.zeros_like(e_idx)), self.ke).to(dtype)
        return GraphState(x=x, e=e, mask=mask, y=y, schema=self.schema)

    def encode(self, batch: GraphState) -> GraphState:
        """One-hot data batch -> clean process state (``y`` carried along)."""
        x0, e0 = self.categories(batch)
        dtype = batch.x.dtype if batch.x.is_floating_point() else torch.float32
        return self.onehot(x0, e0, batch.mask, dtype, y=batch.y)

    def decode(self, state: GraphState) -> GraphState:
        """Process state -> one-hot data state (argmax over the ``Kx`` data channels: [MASK] never comes out)."""
        nt = state.x[..., : self.kx].argmax(-1)
        et = symmetric_indices(state.e.argmax(-1), state.mask)
        dtype = state.x.dtype if state.x.is_floating_point() else torch.float32
        return GraphState.from_types(nt, et, state.mask, self.schema, dtype=dtype)

    # ---- sampling states ------------------------------------------------------------------------------
    def sample_state(self, px: Tensor, pe: Tensor, mask: Tensor, source, dtype=torch.float32) -> GraphState:
        """Draw a process state from per-node ``px`` and per-pair ``pe`` probabilities (per-sample uniforms).

        Shapes:
            px: ``[B, N, node_states]``; pe: ``[B, N, N, Ke]``.
        """
        u_x, u_e = draw_uniforms(source, mask, self.schema.max_nodes)
        x = sample_nodes(px, u_x, mask, dtype)
        e = sample_edges(pe, u_e, mask, dtype)
        return GraphState(x=x, e=e, mask=mask, schema=self.schema)

    def prior(self, n_nodes: Tensor, schema: Schema | None = None, *, generator: SampleNoise) -> GraphState:
        """A state drawn from the limit distribution for graphs of ``n_nodes`` nodes (slots ``0..n-1`` real)."""
        device = generator.device if isinstance(generator, SampleNoise) else n_nodes.device
        mask = mask_from_counts(n_nodes, device)
        b, n = mask.shape
        px = self.m_x.to(device).expand(b, n, -1)
        pe = self.m_e.to(device).expand(b, n, n, -1)
        return self.sample_state(px, pe, mask, generator)

    # ---- predictions ----------------------------------------------------------------------------------
    def _call(self, denoiser, state: GraphState, t: Tensor, cond: Tensor | None) -> tuple[Tensor, Tensor]:
        out = denoiser(state, t, cond)
        lx = torch.log_softmax(out.x[..., : self.kx].float(), -1)
        le = out.e[..., : self.ke].float()
        le = torch.log_softmax(0.5 * (le + le.transpose(1, 2)), -1)
        return lx, le

    def predict(self, denoiser, state: GraphState, t: Tensor, *, cond: Tensor | None = None,
                guidance: float = 0.0) -> tuple[Tensor, Tensor]:
        """Clean-data log-probabilities ``log p_theta(x0 | x_t)`` (edge logits symmetrised), guided when asked.

        Args:
            cond: ``[B, Fy]`` graph-level conditions, or ``None`` (unconditional when the schema has features).
            guidance: the classifier-free guidance weight ``w`` (0: one network call, no guidance).

        Shapes:
            t: ``[B]``; returns ``log p_X [B, N, Kx]`` and ``log p_E [B, N, N, Ke]``.
        """
        b = state.batch_size
        if self.fy == 0:
            if cond is not None:
                check_condition(cond, self.schema, b)  # raises: the schema names no graph features
            if guidance:
                raise ConfigError(f"guidance: {guidance} needs graph features, the schema has none")
            return self._call(denoiser, state, t, None)
        y = check_condition(cond, self.schema, b)
        zeros = torch.zeros(b, self.fy, device=state.device, dtype=torch.float32)
        uncond_in = condition_input(zeros, torch.zeros(b, device=state.device))
        if y is None:
            if guidance:
                raise ConfigError(f"guidance: {guidance} needs a condition (cond), got None")
            return self._call(denoiser, state, t, uncond_in)
        y = y.to(state.device, torch.float32)
        lx, le = self._call(denoiser, state, t, condition_input(y, torch.ones(b, device=state.device)))
        if not guidance:
            return lx, le
        ux, ue = self._call(denoiser, state, t, uncond_in)
        return guided_log_probs(lx, ux, guidance), guided_log_probs(le, ue, guidance)

    def pad_x0(self, px0: Tensor) -> Tensor:
        """Node clean-data probabilities over the ``node_states`` channels (zero on [MASK])."""
        extra = self.node_states - px0.shape[-1]
        return F.pad(px0, (0, extra)) if extra else px0

    def fill_masks(self, state: GraphState, log_px: Tensor) -> GraphState:
        """Replace any [MASK] node left in ``state`` by the model's argmax (absorbing limit only)."""
        if self.mask_index is None:
            return state
        idx = state.x.argmax(-1)
        left = (idx == self.mask_index) & state.mask
        if not bool(left.any()):
            return state
        idx = torch.where(left, log_px.argmax(-1), idx)
        x = F.one_hot(idx, self.node_states).to(state.x.dtype) * state.mask.unsqueeze(-1).to(state.x.dtype)
        return GraphState(x=x, e=state.e, mask=state.mask, schema=self.schema)

    # ---- training -------------------------------------------------------------------------------------
    def _train_cond(self, batch: GraphState, generator) -> Tensor | None:
        if self.fy == 0:
            return None
        if batch.y is None:
            raise ConfigError(f"batch.y: the schema names {self.fy} graph features {list(self.schema.graph_features)}"
                              ", the batch has none")
        y = check_condition(batch.y, self.schema, batch.batch_size, "batch.y").float()
        return drop_conditions(y, self.cond_drop, generator)

    def _noisy_loss(self, denoiser, noisy: GraphState, t_in: Tensor, x0: Tensor, e0: Tensor,
                    cond: Tensor | None) -> Tensor:
        out = denoiser(noisy, t_in, cond)
        le = out.e[..., : self.ke]
        return categorical_ce(out.x[..., : self.kx], 0.5 * (le + le.transpose(1, 2)), x0, e0, noisy.mask,
                              self.lambda_edge)

    def to_dict(self) -> dict:  # pragma: no cover - overridden
        raise NotImplementedError
