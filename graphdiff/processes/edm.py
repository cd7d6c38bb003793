"""EDM: the preconditioned denoising diffusion of Karras et al., "Elucidating the Design Space of Diffusion-Based
Generative Models", NeurIPS 2022, on the continuous part of a GraphState.

Two kinds of state run through the same code:
  * a fixed graph (images, time series; :mod:`graphdiff.adapters`): only the node values ``x`` are diffused, the
    edges and positions are data copied from the adapter's template;
  * an ordinary graph, encoded as GDSS does (:class:`graphdiff.processes.gdss.GDSSProcess`: X one-hot types or
    degrees, A the adjacency): X and the symmetric A are diffused together.

``x_sigma = x_0 + sigma n`` (Table 1, "EDM" column); the network F sees ``c_in x`` and ``c_noise = ln(sigma) / 4``
and the denoiser is ``D = c_skip x + c_out F`` (eq. 7); training draws ``ln sigma ~ N(P_mean, P_std^2)`` and
weighs the squared error by ``lambda = (sigma^2 + sigma_data^2) / (sigma sigma_data)^2`` (eq. 8, Table 1).
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import torch
from torch import Tensor

from ..adapters import adapter_from_schema, fixed_graph_spec
from ..errors import ConfigError, SchemaError
from ..schema import Schema
from ..state import GraphState, pair_mask
from ..samplers.noise import SampleNoise, symmetric_randn


EDM_SIGMA_DATA, EDM_P_MEAN = 0.5, -1.2  # Karras et al. 2022, Table 1: the training noise centred for data of spread 0.5


def _bc(v: Tensor, like: Tensor) -> Tensor:
    return v.reshape(-1, *([1] * (like.dim() - 1)))


def resolve_data_scale(spec: dict, dataset=None) -> dict:
    """``spec`` with ``sigma_data: auto`` and ``P_mean: auto`` replaced by numbers measured on ``dataset`` (see
    :meth:`EDMProcess.resolve`)."""
    spec = dict(spec)
    if spec.get("sigma_data") == "auto":
        if dataset is None or not len(dataset):
            raise ConfigError("process.sigma_data: 'auto' needs the training data")
        idx = np.unique(np.linspace(0, len(dataset) - 1, min(len(dataset), 4096)).round().astype(int))
        batch = dataset.batch(idx)
        values = batch.x[batch.mask].double()
        sd = float(values.std()) if values.numel() > 1 else 0.0
        if not np.isfinite(sd) or sd <= 0:
            raise ConfigError(f"process.sigma_data: 'auto' measured {sd} on the training values; give a number")
        spec["sigma_data"] = float(f"{sd:.4g}")
    if spec.get("P_mean") == "auto":
        sd = spec.get("sigma_data", 0.5)
        if not isinstance(sd, (int, float)) or sd <= 0:
            raise ConfigError(f"process.P_mean: 'auto' needs a positive sigma_data, got {sd!r}")
        spec["P_mean"] = round(math.log(sd) + EDM_P_MEAN - math.log(EDM_SIGMA_DATA), 4)
    return spec


class EDMProcess:
    """EDM on fixed-graph node values or on GDSS-style (X, A).

    Args:
        schema: the dataset schema; ``extra["fixed_graph"]`` selects the fixed-graph mode.
        sigma_min, sigma_max, rho: the sampling noise levels and the Karras schedule exponent (eq. 5).
        sigma_data: the data standard deviation of the preconditioning (a preset may say ``auto``:
            :meth:`resolve` measures it on the training data).
        P_mean, P_std: the log-normal training distribution of sigma.
        cond_drop: probability of dropping a graph's condition ``y`` in training (classifier-free guidance).
        node_features, max_feat_num, adj_scale: the GDSS encoding of ordinary graphs (ignored on fixed graphs).

    Shapes:
        fixed graph: ``x [B, N, C]`` diffused, ``e``/``pos`` fixed; graph: ``x [B, N, x_dim]``, ``e [B, N, N, 1]``.
    """

    name = "edm"

    def __init__(self, schema: Schema, *, sigma_min: float = 0.002, sigma_max: float = 80.0, sigma_data: float = 0.5,
                 rho: float = 7.0, P_mean: float = -1.2, P_std: float = 1.2, cond_drop: float = 0.0,
                 node_features: str = "auto", max_feat_num: int | None = None, adj_scale: float = 1.0):
        for key, v in (("sigma_data", sigma_data), ("P_mean", P_mean)):
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise ConfigError(f"process.{key}: need a number, got {v!r} ('auto' is measured on the training "
                                  f"data when a preset is trained)")
        if not 0 < sigma_min < sigma_max:
            raise ConfigError(f"process: need 0 < sigma_min < sigma_max, got {sigma_min}, {sigma_max}")
        if sigma_data <= 0 or P_std <= 0 or rho <= 0:
            raise ConfigError(f"process: sigma_data, P_std and rho must be > 0, got {sigma_data}, {P_std}, {rho}")
        if not 0 <= cond_drop < 1:
            raise ConfigError(f"process.cond_drop must be in [0, 1), got {cond_drop}")
        self.schema = schema
        self.sigma_min, self.sigma_max, self.sigma_data = float(sigma_min), float(sigma_max), float(sigma_data)
        self.rho, self.P_mean, self.P_std, self.cond_drop = float(rho), float(P_mean), float(P_std), float(cond_drop)
        self.fixed = fixed_graph_spec(schema) is not None
        if self.fixed:
            self.adapter = adapter_from_schema(schema)
            self.gdss = None
        else:
            from .gdss import GDSSProcess

            self.adapter = None
            self.gdss = GDSSProcess(schema, node_features=node_features, max_feat_num=max_feat_num,
                                    adj_scale=adj_scale)
        self._graph_opts = {"node_features": node_features, "max_feat_num": max_feat_num, "adj_scale": adj_scale}

    # ---- configuration -------------------------------------------------------------------------------
    @property
    def x_dim(self) -> int:
        return self.adapter.channels if self.fixed else self.gdss.x_dim

    @property
    def cond_dim(self) -> int:
        return len(self.schema.graph_features)

    def denoiser_kwargs(self) -> dict:
        out = {"x_dim": self.x_dim, "max_nodes": self.schema.max_nodes}
        if self.fixed and self.cond_dim:
            out["cond_dim"] = self.cond_dim
        return out

    def to_dict(self) -> dict:
        out = {"name": self.name, "sigma_min": self.sigma_min, "sigma_max": self.sigma_max,
               "sigma_data": self.sigma_data, "rho": self.rho, "P_mean": self.P_mean, "P_std": self.P_std,
               "cond_drop": self.cond_drop}
        if not self.fixed:
            out.update(self._graph_opts, node_features=self.gdss.node_features, max_feat_num=self.gdss.max_feat_num)
        return out

    @staticmethod
    def resolve(spec: dict, schema: Schema, dataset=None) -> dict:
        """Fill data-dependent values. Fixed graphs: ``sigma_data: auto`` is the standard deviation of the
        training values (up to 4,096 graphs, evenly spaced), ``P_mean: auto`` is ``ln(sigma_data) + ln(2) - 1.2``
        (EDM's -1.2 for its 0.5, moved with the data's spread). Ordinary graphs: as GDSS."""
        if fixed_graph_spec(schema) is not None:
            return resolve_data_scale(spec, dataset)
        if "auto" in (spec.get("sigma_data"), spec.get("P_mean")):
            raise ConfigError("process.sigma_data / P_mean: 'auto' applies to fixed-graph data (images, time "
                              "series); give numbers for graphs")
        from .gdss import GDSSProcess

        return GDSSProcess.resolve(spec, schema, dataset)

    # ---- states <-> components ------------------------------------------------------------------------
    @property
    def keys(self) -> tuple[str, ...]:
        return ("x",) if self.fixed else ("x", "adj")

    def encode(self, batch: GraphState) -> GraphState:
        """Data batch -> the continuous state (fixed graph: the values; graph: GDSS's (X, A)); ``y`` kept."""
        if self.fixed:
            c = self.adapter.channels
            if batch.x.shape[-1] != c:
                raise SchemaError(f"batch has {batch.x.shape[-1]} value channels, the process was built for {c}")
            return replace(batch, x=batch.x * batch.mask.unsqueeze(-1))
        if batch.schema is not None and batch.schema.num_node_types != self.schema.num_node_types:
            raise SchemaError(f"batch has {batch.schema.num_node_types} node categories, the process was built "
                              f"for {self.schema.num_node_types}")
        return replace(self.gdss.encode(batch), y=batch.y)

    def decode(self, state: GraphState) -> GraphState:
        return state if self.fixed else self.gdss.decode(state)

    def components(self, state: GraphState) -> dict[str, Tensor]:
        return {"x": state.x} if self.fixed else {"x": state.x, "adj": state.e[..., 0]}

    def assemble(self, comps: dict[str, Tensor], mask: Tensor, y: Tensor | None = None) -> GraphState:
        if self.fixed:
            e, pos = self.fixed_graph(mask.device, comps["x"].dtype)
            b, n = mask.shape
            return GraphState(x=comps["x"], e=e[:n, :n].expand(b, -1, -1, -1), mask=mask,
                              pos=pos[:n].expand(b, -1, -1), y=y, schema=self.schema)
        return GraphState(x=comps["x"], e=comps["adj"].unsqueeze(-1), mask=mask, y=y, schema=self.schema)

    def fixed_graph(self, device, dtype) -> tuple[Tensor, Tensor]:
        """The adapter's edges ``[N, N, Fe]`` and positions ``[N, 3]`` (built once per device and dtype)."""
        cache = self.__dict__.setdefault("_graph_cache", {})
        key = (str(device), dtype)
        if key not in cache:
            cache[key] = (self.adapter.edges().to(device, dtype), self.adapter.positions().to(device, dtype))
        return cache[key]

    def n_coords(self, mask: Tensor) -> Tensor:
        """Independent coordinates per graph ``[B]`` (values under the mask; + upper-triangle pairs of A)."""
        n = mask.sum(1).to(torch.float64)
        out = n * self.x_dim
        return out if self.fixed else out + n * (n - 1) / 2

    # ---- noise --------------------------------------------------------------------------------------
    def draw(self, name: str, noise: SampleNoise, mask: Tensor) -> Tensor:
        """Standard normal noise for component ``name`` from per-sample streams (symmetric for A), masked."""
        full, n = self.schema.max_nodes, mask.shape[1]
        if name == "x":
            return noise.randn_nodes(full, n, self.x_dim) * mask.unsqueeze(-1)
        return noise.randn_symmetric(full, n) * pair_mask(mask)

    def gaussian(self, like: dict[str, Tensor], mask: Tensor, generator=None) -> dict[str, Tensor]:
        """Standard normal noise shaped like ``like`` from one torch generator (training), masked."""
        dev = mask.device
        gdev = generator.device if generator is not None else dev
        out = {"x": torch.randn(like["x"].shape, generator=generator, device=gdev).to(dev) * mask.unsqueeze(-1)}
        if "adj" in like:
            out["adj"] = symmetric_randn(like["adj"].shape, generator=generator, device=dev) * pair_mask(mask)
        return out

    def perturbation(self, z: dict[str, Tensor], sigma: Tensor, mask: Tensor, uniform=None) -> dict[str, Tensor]:
        """The noise added at level ``sigma`` given standard normal ``z``: ``sigma z`` (PFGM++ overrides)."""
        return {k: _bc(sigma, v) * v for k, v in z.items()}

    def prior(self, n_nodes: Tensor, schema: Schema | None = None, *, generator: SampleNoise) -> GraphState:
        """``N(0, sigma_max^2 I)`` on the graphs' coordinates (PFGM++ overrides the radius)."""
        n = self.schema.max_nodes if self.fixed else (int(n_nodes.max()) if len(n_nodes) else 0)
        mask = torch.arange(n, device=generator.device).unsqueeze(0) < n_nodes.to(generator.device).unsqueeze(1)
        z = {k: self.draw(k, generator, mask) for k in self.keys}
        sigma = torch.full((len(n_nodes),), self.sigma_max, device=generator.device)
        return self.assemble(self.perturbation(z, sigma, mask, uniform=generator), mask)

    # ---- the denoiser -------------------------------------------------------------------------------
    def sigmas(self, steps: int, device=None) -> Tensor:
        """Karras et al. eq. 5: ``steps`` levels from ``sigma_max`` to ``sigma_min``, then 0 (float64)."""
        return karras_sigmas(steps, self.sigma_min, self.sigma_max, self.rho).to(device)

    def denoise(self, denoiser, comps: dict[str, Tensor], mask: Tensor, sigma: Tensor, cond: Tensor | None = None,
                guidance: float = 0.0) -> dict[str, Tensor]:
        """``D(x; sigma)`` (eq. 7) for every component; ``guidance`` w mixes ``(1 + w) D(c) - w D(none)``."""
        sd, s = self.sigma_data, sigma.to(comps["x"].dtype)
        c_skip = sd**2 / (s**2 + sd**2)
        c_out = s * sd / torch.sqrt(s**2 + sd**2)
        c_in = 1.0 / torch.sqrt(s**2 + sd**2)
        state = self.assemble({k: _bc(c_in, v) * v for k, v in comps.items()}, mask, y=cond)
        c_noise = torch.log(s) / 4
        out = denoiser(state, c_noise, cond)
        if guidance and cond is not None:
            free = denoiser(replace(state, y=None), c_noise, torch.zeros_like(cond))
            out = replace(out, x=(1 + guidance) * out.x - guidance * free.x,
                          e=(1 + guidance) * out.e - guidance * free.e)
        res = {"x": (_bc(c_skip, comps["x"]) * comps["x"] + _bc(c_out, out.x) * out.x[..., : self.x_dim])
               * mask.unsqueeze(-1)}
        if "adj" in comps:
            f = out.e[..., 0]
            f = 0.5 * (f + f.transpose(1, 2))
            res["adj"] = (_bc(c_skip, f) * comps["adj"] + _bc(c_out, f) * f) * pair_mask(mask)
        return res

    # ---- training -----------------------------------------------------------------------------------
    def _train_cond(self, batch: GraphState, generator) -> Tensor | None:
        y = batch.y
        if y is None or not self.cond_dim:
            return None
        if self.cond_drop > 0:
            gdev = generator.device if generator is not None else y.device
            keep = torch.rand(y.shape[0], generator=generator, device=gdev).to(y.device) >= self.cond_drop
            y = y * keep.unsqueeze(-1).to(y.dtype)
        return y

    def loss(self, denoiser, batch: GraphState, *, generator: torch.Generator | None = None) -> Tensor:
        """Per-graph weighted denoising error ``lambda(sigma) |D(x_0 + noise; sigma) - x_0|^2``, averaged over the
        graph's independent coordinates (eq. 8 with the EDM choices of Table 1)."""
        clean = self.encode(batch)
        mask, dev = clean.mask, clean.device
        b = mask.shape[0]
        gdev = generator.device if generator is not None else dev
        sigma = torch.exp(self.P_mean + self.P_std * torch.randn(b, generator=generator, device=gdev)).to(dev)
        x0 = self.components(clean)
        z = self.gaussian(x0, mask, generator)
        delta = self.perturbation(z, sigma, mask, uniform=generator)
        noisy = {k: x0[k] + delta[k] for k in x0}
        den = self.denoise(denoiser, noisy, mask, sigma, cond=self._train_cond(batch, generator))
        weight = (sigma**2 + self.sigma_data**2) / (sigma * self.sigma_data) ** 2
        err = (den["x"] - x0["x"]).pow(2).sum((1, 2))
        if "adj" in x0:
            err = err + 0.5 * (den["adj"] - x0["adj"]).pow(2).sum((1, 2))  # each unordered pair once
        return weight * err / self.n_coords(mask).clamp(min=1).to(err.dtype)


def karras_sigmas(steps: int, sigma_min: float, sigma_max: float, rho: float = 7.0) -> Tensor:
    """The schedule of :meth:`EDMProcess.sigmas` as a free function (float64, ends with 0)."""
    i = torch.arange(steps, dtype=torch.float64)
    a, b = sigma_max ** (1 / rho), sigma_min ** (1 / rho)
    return torch.cat([(a + i / max(steps - 1, 1) * (b - a)) ** rho, torch.zeros(1, dtype=torch.float64)])


__all__ = ["EDMProcess", "karras_sigmas"]
