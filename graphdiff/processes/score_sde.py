"""The VP / VE / sub-VP SDEs of Song et al. 2021 (:mod:`graphdiff.processes.sde`) on the node values of a fixed graph
(images, time series; :mod:`graphdiff.adapters`), sampled by the GDSS samplers (``em``, ``pc``, ``s4``, ``ode``).

The edges and positions are the adapter's fixed data; only ``x`` diffuses. Training is denoising score matching
``|s(x_t, t) std + z|^2`` (Song et al. eq. 7), as for GDSS's X; a VP / sub-VP network predicts ``-z`` (score =
output / std), a VE network the score itself.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..adapters import adapter_from_schema
from ..errors import ConfigError, SchemaError
from ..schema import Schema
from ..state import GraphState
from ..samplers.noise import SampleNoise
from .sde import SDE, _bc, build_sde


class FixedGraphSDE:
    """A score SDE on fixed-graph node values.

    Args:
        schema: a fixed-graph schema (``extra["fixed_graph"]``).
        sde: ``{"type": "VP"|"VE"|"subVP", "beta_min": .., "beta_max": ..}`` (VE: sigma_min, sigma_max).
        eps: smallest diffusion time drawn in training.
    """

    name = "score_sde"

    def __init__(self, schema: Schema, *, sde: dict | None = None, eps: float = 1e-5):
        if not 0 < eps < 1:
            raise ConfigError(f"process.eps must be in (0, 1), got {eps}")
        if not (schema.extra or {}).get("fixed_graph"):
            raise ConfigError("process score_sde runs on images / time series (a fixed-graph dataset); for graphs "
                              "use gdss")
        self.schema, self.adapter = schema, adapter_from_schema(schema)
        self.sde: SDE = build_sde(sde or {"type": "VP", "beta_min": 0.1, "beta_max": 20.0}, "process.sde")
        self.eps = float(eps)

    @property
    def x_dim(self) -> int:
        return self.adapter.channels

    @property
    def sdes(self) -> dict[str, SDE]:
        return {"x": self.sde}

    def denoiser_kwargs(self) -> dict:
        return {"x_dim": self.x_dim, "max_nodes": self.schema.max_nodes}

    def to_dict(self) -> dict:
        return {"name": self.name, "sde": self.sde.to_dict(), "eps": self.eps}

    @staticmethod
    def resolve(spec: dict, schema: Schema, dataset=None) -> dict:
        return dict(spec)

    def encode(self, batch: GraphState) -> GraphState:
        if batch.x.shape[-1] != self.x_dim:
            raise SchemaError(f"batch has {batch.x.shape[-1]} value channels, the process was built for {self.x_dim}")
        return batch

    def decode(self, state: GraphState) -> GraphState:
        return state

    def components(self, state: GraphState) -> dict[str, Tensor]:
        return {"x": state.x}

    def assemble(self, comps: dict[str, Tensor], mask: Tensor) -> GraphState:
        t = self.adapter.template(mask.sum(1), device=mask.device, dtype=comps["x"].dtype)
        return GraphState(x=comps["x"], e=t.e, mask=mask, pos=t.pos, schema=self.schema)

    def draw(self, name: str, noise: SampleNoise, mask: Tensor) -> Tensor:
        return noise.randn_nodes(self.schema.max_nodes, mask.shape[1], self.x_dim) * mask.unsqueeze(-1)

    def prior(self, n_nodes: Tensor, schema: Schema | None = None, *, generator: SampleNoise) -> GraphState:
        n = self.schema.max_nodes
        mask = torch.arange(n, device=generator.device).unsqueeze(0) < n_nodes.to(generator.device).unsqueeze(1)
        return self.assemble({"x": self.draw("x", generator, mask) * self.sde.prior_std}, mask)

    def scores(self, denoiser, comps: dict[str, Tensor], mask: Tensor, t: Tensor) -> dict[str, Tensor]:
        raw = denoiser(self.assemble(comps, mask), t).x
        if self.sde.scales_output():
            _, std = self.sde.marginal(raw, t)
            raw = -raw / _bc(std, raw)
        return {"x": raw * mask.unsqueeze(-1)}

    def loss(self, denoiser, batch: GraphState, *, generator: torch.Generator | None = None) -> Tensor:
        """Per-graph denoising score-matching loss, averaged over the graph's values."""
        x0, mask = self.encode(batch).x, batch.mask
        dev, b = x0.device, x0.shape[0]
        gdev = generator.device if generator is not None else dev
        t = (torch.rand(b, generator=generator, device=gdev) * (1.0 - self.eps) + self.eps).to(dev)
        z = torch.randn(x0.shape, generator=generator, device=gdev).to(dev) * mask.unsqueeze(-1)
        mean, std = self.sde.marginal(x0, t)
        s = self.scores(denoiser, {"x": mean + _bc(std, mean) * z}, mask, t)["x"]
        err = (s * _bc(std, z) + z).pow(2).sum((1, 2))
        return err / (mask.sum(1) * self.x_dim).clamp(min=1)


__all__ = ["FixedGraphSDE"]
