"""PFGM++: Poisson flow generative models with a finite augmented dimension D (Xu, Liu, Tian, Tegmark, Jaakkola,
"PFGM++: Unlocking the Potential of Physics-Inspired Generative Models", ICML 2023).

The data (N independent coordinates per graph) is embedded in N + D dimensions; the perturbation kernel at
augmented radius r is ``p_r(x | y) ∝ (|x - y|^2 + r^2)^(-(N + D) / 2)`` (eq. 4). With the alignment
``r = sigma sqrt(D)`` (Sec. 4) the network, its EDM preconditioning, the training distribution of sigma and the
sampling ODE are those of EDM; only the noise differs: its norm R is drawn by ``b ~ Beta(N/2, D/2)``,
``R = r sqrt(b / (1 - b))``, its direction uniformly on the sphere (Appendix; the same draw at ``r_max`` is the
prior). As D grows, ``R^2 -> sigma^2 chi^2_N``: the Gaussian kernel of EDM (Prop. 4.1). Runs on fixed graphs
(images, series) and on GDSS-style (X, A) alike, through :class:`~graphdiff.processes.edm.EDMProcess`.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from ..errors import ConfigError
from ..samplers.noise import SampleNoise
from ..schema import Schema
from .edm import EDMProcess, _bc


def _stream_seeds(generator, b: int) -> list[int]:
    """One integer seed per graph, drawn from the run's random stream(s) so that the Beta draws are reproducible."""
    if isinstance(generator, SampleNoise):
        return [int(torch.randint(0, 2**62, (1,), generator=g)) for g in generator.generators]
    dev = generator.device if generator is not None else "cpu"
    return [int(v) for v in torch.randint(0, 2**62, (b,), generator=generator, device=dev).cpu()]


def beta_radius(n_coords: Tensor, D: float, r: Tensor, generator=None) -> Tensor:
    """``R = r sqrt(b / (1 - b))`` with ``b ~ Beta(N/2, D/2)`` per graph (``[B]`` float64)."""
    seeds = _stream_seeds(generator, len(r))
    n = n_coords.detach().cpu().double().numpy()
    b = np.array([np.random.default_rng(s).beta(max(ni, 1.0) / 2, D / 2) for s, ni in zip(seeds, n)])
    return r.detach().cpu().double() * torch.from_numpy(np.sqrt(b / (1.0 - b)))


class PFGMPPProcess(EDMProcess):
    """PFGM++ with augmented dimension ``D`` (the preset chooses it; ``D -> inf`` is EDM).

    Args:
        D: augmented dimension (> 2 so that the kernel's second moment exists); the paper uses 128..2048 on images.
        other arguments: as :class:`~graphdiff.processes.edm.EDMProcess` (sigma is the aligned ``r / sqrt(D)``).
    """

    name = "pfgm"

    def __init__(self, schema: Schema, *, D: float = 128.0, sigma_min: float = 0.002, sigma_max: float = 80.0,
                 sigma_data: float = 0.5, rho: float = 7.0, P_mean: float = -1.2, P_std: float = 1.2,
                 cond_drop: float = 0.0, node_features: str = "auto", max_feat_num: int | None = None,
                 adj_scale: float = 1.0):
        if isinstance(D, bool) or not isinstance(D, (int, float)) or not float(D) > 2:
            raise ConfigError(f"process.D (augmented dimension) must be a number > 2, got {D!r}")
        super().__init__(schema, sigma_min=sigma_min, sigma_max=sigma_max, sigma_data=sigma_data, rho=rho,
                         P_mean=P_mean, P_std=P_std, cond_drop=cond_drop, node_features=node_features,
                         max_feat_num=max_feat_num, adj_scale=adj_scale)
        self.D = float(D)

    def to_dict(self) -> dict:
        return {**super().to_dict(), "D": self.D}

    def perturbation(self, z: dict[str, Tensor], sigma: Tensor, mask: Tensor, uniform=None) -> dict[str, Tensor]:
        """Noise of the PFGM++ kernel at ``r = sigma sqrt(D)``: a Beta-drawn radius times the direction of ``z``."""
        sq = z["x"].pow(2).sum((1, 2))
        if "adj" in z:
            sq = sq + 0.5 * z["adj"].pow(2).sum((1, 2))  # each unordered pair once
        r = sigma.double() * self.D**0.5
        radius = beta_radius(self.n_coords(mask), self.D, r, uniform).to(sigma.device, z["x"].dtype)
        scale = radius / sq.sqrt().clamp(min=1e-12)
        return {k: _bc(scale, v) * v for k, v in z.items()}


__all__ = ["PFGMPPProcess", "beta_radius"]
