"""An exactly known denoiser for tests: data ``x ~ N(mu, Sigma)`` on a small fixed graph, whose ideal EDM denoiser is
``D(x; sigma) = mu + Sigma (Sigma + sigma^2 I)^-1 (x - mu)``; wrapped as a network F under EDM preconditioning."""

from __future__ import annotations

import torch
from torch import nn

from graphdiff.adapters import ImageGrid
from graphdiff.pipeline import GraphDiffusionPipeline
from graphdiff.processes import EDMProcess, PFGMPPProcess
from graphdiff.state import GraphState


class GaussianOracle(nn.Module):
    """``F`` such that ``c_skip x + c_out F = D_ideal(x; sigma)`` for the EDM preconditioning of ``process``."""

    def __init__(self, mu: torch.Tensor, cov: torch.Tensor, sigma_data: float):
        super().__init__()
        self.register_buffer("mu", mu)
        self.register_buffer("cov", cov)
        self.sd = sigma_data
        self.dummy = nn.Parameter(torch.zeros(1))

    def forward(self, state: GraphState, t, cond=None) -> GraphState:
        sigma = torch.exp(4 * t).double().reshape(-1, 1, 1)
        c_in = 1 / torch.sqrt(sigma**2 + self.sd**2)
        x = state.x.double().flatten(1).unsqueeze(-1) / c_in  # [B, N, 1]
        eye = torch.eye(len(self.mu), dtype=torch.float64)
        gain = self.cov.double() @ torch.linalg.inv(self.cov.double() + sigma**2 * eye)
        d = self.mu.double().reshape(1, -1, 1) + gain @ (x - self.mu.double().reshape(1, -1, 1))
        c_skip = self.sd**2 / (sigma**2 + self.sd**2)
        c_out = sigma * self.sd / torch.sqrt(sigma**2 + self.sd**2)
        f = ((d - c_skip * x) / c_out).reshape(state.x.shape)
        return GraphState(x=f.to(state.x.dtype), e=state.e, mask=state.mask, pos=state.pos)


def gaussian_pipeline(cov: torch.Tensor, mu: torch.Tensor | None = None, pfgm_D: float | None = None,
                      height: int = 2, width: int = 4, sigma_data: float = 0.5) -> GraphDiffusionPipeline:
    grid = ImageGrid(height, width, value_range=(-1, 1))
    schema = grid.schema(10)
    kw = {"sigma_max": 20.0, "sigma_data": sigma_data}
    process = EDMProcess(schema, **kw) if pfgm_D is None else PFGMPPProcess(schema, D=pfgm_D, **kw)
    mu = torch.zeros(grid.n_nodes) if mu is None else mu
    oracle = GaussianOracle(mu, cov, sigma_data)
    config = {"dataset": "digits", "process": process.to_dict(), "model": {"name": "grid_mpnn", "x_dim": 1,
              "max_nodes": grid.n_nodes}, "schema": schema.to_dict(), "sample": {"sampler": "heun", "steps": 12}}
    return GraphDiffusionPipeline(process, oracle, config)


def factor_cov(n: int, common: float = 0.8, own: float = 0.1) -> torch.Tensor:
    """``common^2 11^T + own^2 I``: every coordinate shares one factor, so seeing some reveals the rest."""
    return common**2 * torch.ones(n, n) + own**2 * torch.eye(n)
