"""GDSS: score-based generation of graphs through a system of SDEs over node features X and adjacency A.

Jo, Lee & Hwang, "Score-based Generative Modeling of Graphs via the System of Stochastic Differential Equations",
ICML 2022. X and A diffuse under separate SDEs; one network scores each, both read the pair (X_t, A_t)
(eq. 3-4); training is the sum of two denoising score-matching losses (eq. 7); noise on A is symmetric.

Encoding of a data batch (one-hot :class:`GraphState`) into the continuous pair:
  * X: the schema's one-hot node categories (``node_features="types"``, molecules) or a one-hot of the node
    degree capped at ``max_feat_num - 1`` (``"degree"``, GDSS's ``init: deg`` for unlabelled graphs).
  * A: the edge category index as a number (0 = none; bond order 1, 2, 3 for kekulized molecules), times
    ``adj_scale``. Decoding rounds A / adj_scale to the nearest category (GDSS's quantisation: 0.5 threshold for
    plain graphs, 0.5 / 1.5 / 2.5 for bond orders) and takes the argmax of X (``node_decoding="argmax"``), or, as
    the authors' molecule sampler does (``"threshold"``), the first category whose value exceeds 0.5, dropping a
    node whose values are all at most 0.5 (its slot becomes padding).
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..errors import ConfigError, SchemaError
from ..schema import Schema
from ..state import GraphState, pair_mask
from .sde import SDE, _bc, build_sde
from ..samplers.noise import SampleNoise, symmetric_randn

NODE_FEATURES = ("auto", "types", "degree")
NODE_DECODINGS = ("argmax", "threshold")


class GDSSProcess:
    """The GDSS system of SDEs.

    Args:
        schema: the dataset schema (categories, max nodes, node-count histogram).
        sde_x: spec of the SDE on X, e.g. ``{"type": "VP", "beta_min": 0.1, "beta_max": 1.0}``.
        sde_adj: spec of the SDE on A.
        node_features: ``"types"``, ``"degree"`` or ``"auto"`` (types when the schema has more than one node
            category or is a molecule schema, degree otherwise).
        max_feat_num: width of the degree one-hot (``"degree"`` only); degrees at or above it share the last bin.
        adj_scale: factor from edge category index to the value of A.
        eps: smallest diffusion time drawn in training.
        node_decoding: ``"argmax"`` or ``"threshold"`` (GDSS's molecule decoding: first category above 0.5, nodes
            with none dropped); ``"types"`` features only.

    Shapes:
        continuous state: ``x [B, N, x_dim]``, ``e [B, N, N, 1]`` (A), ``mask [B, N]``.
    """

    name = "gdss"

    def __init__(self, schema: Schema, *, sde_x: dict | None = None, sde_adj: dict | None = None,
                 node_features: str = "auto", max_feat_num: int | None = None, adj_scale: float = 1.0,
                 eps: float = 1e-5, node_decoding: str = "argmax"):
        if node_features not in NODE_FEATURES:
            raise ConfigError(f"process.node_features: {node_features!r} is not one of {NODE_FEATURES}")
        if node_features == "auto":
            node_features = "types" if (schema.kind == "molecule" or schema.num_node_types > 1) else "degree"
        if node_features == "degree":
            if schema.num_node_types > 1:
                raise ConfigError(
                    f"process.node_features='degree' cannot generate the schema's {schema.num_node_types} node "
                    "categories; use 'types'")
            if max_feat_num is None or int(max_feat_num) < 2:
                raise ConfigError(f"process.max_feat_num must be >= 2 for degree features, got {max_feat_num}")
        if adj_scale <= 0:
            raise ConfigError(f"process.adj_scale must be > 0, got {adj_scale}")
        if not 0 < eps < 1:
            raise ConfigError(f"process.eps must be in (0, 1), got {eps}")
        if node_decoding not in NODE_DECODINGS:
            raise ConfigError(f"process.node_decoding: {node_decoding!r} is not one of {NODE_DECODINGS}")
        if node_decoding == "threshold" and node_features == "degree":
            raise ConfigError("process.node_decoding='threshold' needs node_features='types'")
        self.schema = schema
        self.sde_x: SDE = build_sde(sde_x or {"type": "VP", "beta_min": 0.1, "beta_max": 1.0}, "process.sde_x")
        self.sde_adj: SDE = build_sde(sde_adj or {"type": "VP", "beta_min": 0.1, "beta_max": 1.0},
                                      "process.sde_adj")
        self.node_features = node_features
        self.max_feat_num = int(max_feat_num) if node_features == "degree" else None
        self.adj_scale = float(adj_scale)
        self.eps = float(eps)
        self.node_decoding = node_decoding

    # ---- configuration -------------------------------------------------------------------------------
    @property
    def x_dim(self) -> int:
        return self.max_feat_num if self.node_features == "degree" else self.schema.num_node_types

    def denoiser_kwargs(self) -> dict:
        """Sizes the denoiser is built with (added to the preset's model section)."""
        return {"x_dim": self.x_dim, "max_nodes": self.schema.max_nodes}

    @property
    def sdes(self) -> dict[str, SDE]:
        return {"x": self.sde_x, "adj": self.sde_adj}

    def to_dict(self) -> dict:
        return {"name": self.name, "sde_x": self.sde_x.to_dict(), "sde_adj": self.sde_adj.to_dict(),
                "node_features": self.node_features, "max_feat_num": self.max_feat_num,
                "adj_scale": self.adj_scale, "eps": self.eps, "node_decoding": self.node_decoding}

    @staticmethod
    def resolve(spec: dict, schema: Schema, dataset=None) -> dict:
        """Fill data-dependent values of a process spec (``max_feat_num: auto`` = largest train degree + 1)."""
        spec = dict(spec)
        if spec.get("max_feat_num") == "auto":
            if dataset is None:
                raise ConfigError("process.max_feat_num: 'auto' needs the training data")
            import numpy as np

            deg = 0
            for i in range(len(dataset)):
                _, ei, _ = dataset.graph(i)
                if ei.size:
                    deg = max(deg, int(np.bincount(ei.reshape(-1)).max()))
            spec["max_feat_num"] = deg + 1
        return spec

    # ---- encoding ------------------------------------------------------------------------------------
    def encode(self, batch: GraphState) -> GraphState:
        """One-hot data batch -> continuous (X, A) state."""
        mask = batch.mask
        a = batch.edge_types().to(batch.x.dtype) * self.adj_scale
        if self.node_features == "degree":
            deg = (a > 0).sum(-1).clamp(max=self.max_feat_num - 1)
            x = torch.nn.functional.one_hot(deg, self.max_feat_num).to(batch.x.dtype)
        else:
            x = batch.x[..., : self.schema.num_node_types]
        x = x * mask.unsqueeze(-1)
        return GraphState(x=x, e=a.unsqueeze(-1), mask=mask, schema=self.schema)

    def decode(self, state: GraphState) -> GraphState:
        """Continuous (X, A) -> one-hot data state: round A to the nearest category; argmax X, or with
        ``node_decoding="threshold"`` the first category above 0.5 (nodes with none become padding)."""
        ke = self.schema.num_edge_types
        a = state.e[..., 0] / self.adj_scale
        a = (a + a.transpose(1, 2)) / 2
        et = torch.round(a).clamp(0, ke - 1).long()
        mask = state.mask
        if self.node_features == "degree":
            nt = torch.zeros(state.mask.shape, dtype=torch.long, device=state.device)
        elif self.node_decoding == "threshold":
            above = state.x > 0.5
            nt = above.to(torch.int8).argmax(-1)  # the first category above 0.5
            mask = mask & above.any(-1)
        else:
            nt = state.x.argmax(-1)
        return GraphState.from_types(nt, et, mask, self.schema)

    # ---- noise --------------------------------------------------------------------------------------
    def draw(self, name: str, noise: SampleNoise, mask: Tensor) -> Tensor:
        """Noise for component ``name`` (``"x"`` or ``"adj"``) from per-sample streams, masked."""
        full, n = self.schema.max_nodes, mask.shape[1]
        if name == "x":
            return noise.randn_nodes(full, n, self.x_dim) * mask.unsqueeze(-1)
        return noise.randn_symmetric(full, n) * pair_mask(mask)

    def prior(self, n_nodes: Tensor, schema: Schema | None = None, *, generator: SampleNoise) -> GraphState:
        """Continuous prior state for graphs of ``n_nodes`` nodes (slots ``0..n-1`` real)."""
        n = int(n_nodes.max()) if len(n_nodes) else 0
        mask = torch.arange(n, device=generator.device).unsqueeze(0) < n_nodes.to(generator.device).unsqueeze(1)
        x = self.draw("x", generator, mask) * self.sde_x.prior_std
        a = self.draw("adj", generator, mask) * self.sde_adj.prior_std
        return GraphState(x=x, e=a.unsqueeze(-1), mask=mask, schema=self.schema)

    # ---- the score ----------------------------------------------------------------------------------
    def components(self, state: GraphState) -> dict[str, Tensor]:
        return {"x": state.x, "adj": state.e[..., 0]}

    def assemble(self, comps: dict[str, Tensor], mask: Tensor) -> GraphState:
        return GraphState(x=comps["x"], e=comps["adj"].unsqueeze(-1), mask=mask, schema=self.schema)

    def scores(self, denoiser, comps: dict[str, Tensor], mask: Tensor, t: Tensor) -> dict[str, Tensor]:
        """Scores of X and A at time ``t`` ([B]); a VP/sub-VP network predicts -noise and is divided by std."""
        out = denoiser(self.assemble(comps, mask), t)
        res = {}
        for name, raw in (("x", out.x), ("adj", out.e[..., 0])):
            sde = self.sdes[name]
            if sde.scales_output():
                _, std = sde.marginal(raw, t)
                raw = -raw / _bc(std, raw)
            res[name] = raw
        res["x"] = res["x"] * mask.unsqueeze(-1)
        res["adj"] = res["adj"] * pair_mask(mask)
        return res

    # ---- training -----------------------------------------------------------------------------------
    def perturb(self, clean: GraphState, t: Tensor, generator: torch.Generator | None = None):
        """The SDEs' perturbation of the continuous state ``clean`` at times ``t`` ([B]): the noisy components,
        the standard-normal draws ``(zx, za)`` (``za`` symmetric) and the marginal stds ``(sx, sa)``."""
        mask, dev = clean.mask, clean.device
        gdev = generator.device if generator is not None else dev
        zx = torch.randn(clean.x.shape, generator=generator, device=gdev).to(dev) * mask.unsqueeze(-1)
        za = symmetric_randn(clean.e.shape[:3], generator=generator, device=dev) * pair_mask(mask)
        mx, sx = self.sde_x.marginal(clean.x, t)
        ma, sa = self.sde_adj.marginal(clean.e[..., 0], t)
        noisy = {"x": (mx + _bc(sx, mx) * zx) * mask.unsqueeze(-1),
                 "adj": (ma + _bc(sa, ma) * za) * pair_mask(mask)}
        return noisy, (zx, za), (sx, sa)

    def loss(self, denoiser, batch: GraphState, *, generator: torch.Generator | None = None) -> Tensor:
        """Per-graph denoising score-matching loss ``|s * std + z|^2`` summed over X and A entries (eq. 7)."""
        if batch.schema is not None and batch.schema.num_node_types != self.schema.num_node_types:
            raise SchemaError(f"batch has {batch.schema.num_node_types} node categories, the process was built "
                              f"for {self.schema.num_node_types}")
        clean = self.encode(batch)
        mask, dev = clean.mask, clean.device
        gdev = generator.device if generator is not None else dev
        t = (torch.rand(mask.shape[0], generator=generator, device=gdev) * (1.0 - self.eps) + self.eps).to(dev)
        noisy, (zx, za), (sx, sa) = self.perturb(clean, t, generator)
        s = self.scores(denoiser, noisy, mask, t)
        lx = (s["x"] * _bc(sx, zx) + zx).pow(2).sum((1, 2))
        la = (s["adj"] * _bc(sa, za) + za).pow(2).sum((1, 2))
        return lx + la
