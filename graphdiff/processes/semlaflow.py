"""Few-step flow matching of 3D molecules: linear paths for coordinates, discrete flow for categories.

The SemlaFlow / FlowMol class (Irwin et al., "SemlaFlow", AISTATS 2025; Dunn & Koes, "Mixed continuous/categorical
flow matching for 3D de novo molecule generation", 2024). Time runs from ``t = 0`` (noise) to ``t = 1`` (data):

- coordinates: ``pos_t = t pos_1 + (1 - t) pos_0`` with ``pos_0`` a centred standard normal; with ``align`` the noise
  is first rotated onto the molecule (Kabsch), the per-molecule rotational part of SemlaFlow's equivariant optimal
  transport, which straightens the paths;
- atom types, charges and bonds: the discrete flow of Campbell et al. (2024) / DeFoG,
  ``p_t(x | x_1) = t delta(x, x_1) + (1 - t) m(x)`` towards the data marginals ``m``.

The denoiser predicts the clean molecule; the loss is the weighted sum of the coordinate error and the three cross
entropies (no time weighting). Sampling (:mod:`graphdiff.samplers.semlaflow`) takes Euler steps: coordinates along
the predicted velocity ``(pos_1_hat - pos_t) / (1 - t)``, categories by DeFoG's CTMC rates; 20 to 100 steps.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..state import GraphState
from .defog import conditional_path, distort, expected_rates, rate_table
from .mixed3d import Mixed3DProcess, centre


def kabsch_align(noise: Tensor, target: Tensor, mask: Tensor) -> Tensor:
    """Rotate each centred ``noise`` cloud onto the centred ``target`` (proper rotation, least squares).

    Shapes:
        noise, target: ``[B, N, 3]`` centred, zeros at padding; mask: ``[B, N]``; returns ``[B, N, 3]``.
    """
    h = noise.double().transpose(1, 2) @ target.double()  # [B, 3, 3] covariance
    u, _, vt = torch.linalg.svd(h)
    d = torch.sign(torch.linalg.det(u @ vt))
    fix = torch.diag_embed(torch.stack([torch.ones_like(d), torch.ones_like(d), d], -1))
    rot = u @ fix @ vt  # noise @ rot ~ target
    return (noise.double() @ rot).to(noise.dtype) * mask.unsqueeze(-1).to(noise.dtype)


class MolecularFlowMatching(Mixed3DProcess):
    """SemlaFlow-class mixed flow matching (see the module docstring).

    Args:
        schema: a molecule schema with explicit hydrogens.
        align: rotate the coordinate noise onto each training molecule (Kabsch) before interpolating.
        train_distortion: time distortion of the training times ``t = f(u)`` (see
            :data:`graphdiff.processes.defog.DISTORTIONS`).
        limit, lambda_*, cond_drop: see :class:`~graphdiff.processes.mixed3d.Mixed3DProcess`.
    """

    name = "semlaflow"

    def __init__(self, schema, *, align: bool = True, train_distortion: str = "identity", limit: str = "marginal",
                 lambda_pos: float = 3.0, lambda_atoms: float = 0.4, lambda_charges: float = 1.0,
                 lambda_bonds: float = 2.0, cond_drop: float = 0.1):
        super().__init__(schema, limit=limit, lambda_pos=lambda_pos, lambda_atoms=lambda_atoms,
                         lambda_charges=lambda_charges, lambda_bonds=lambda_bonds, cond_drop=cond_drop)
        distort(torch.zeros(1), train_distortion, "process.train_distortion")
        self.align = bool(align)
        self.train_distortion = train_distortion

    def to_dict(self) -> dict:
        return {**self._base_dict(), "align": self.align, "train_distortion": self.train_distortion}

    @staticmethod
    def time_grid(steps: int, time_distortion: str = "identity") -> list[float]:
        grid = torch.linspace(0.0, 1.0, steps + 1, dtype=torch.float64)
        return distort(grid, time_distortion, "sample.time_distortion").tolist()

    # ---- training -------------------------------------------------------------------------------------
    def loss(self, denoiser, batch: GraphState, *, generator: torch.Generator | None = None) -> Tensor:
        """Per-molecule weighted loss at ``t = f(u)``, ``u ~ U(0, 1)``.

        Shapes:
            returns ``[B]``.
        """
        a1, c1, e1 = self.categories(batch)
        mask, dev = batch.mask, batch.device
        dtype = batch.pos.dtype if batch.pos.is_floating_point() else torch.float32
        gdev = generator.device if generator is not None else dev
        u = torch.rand(batch.batch_size, generator=generator, device=gdev, dtype=torch.float64).to(dev)
        t = distort(u, self.train_distortion, "process.train_distortion")
        pos1 = centre(batch.pos.to(dtype), mask)
        pos0 = self.gaussian(mask, generator, dtype)
        if self.align:
            pos0 = kabsch_align(pos0, pos1, mask)
        tc = t.to(dtype).view(-1, 1, 1)
        pos_t = tc * pos1 + (1 - tc) * pos0
        pa, pc, pe = self.noisy_categories(a1, c1, e1, t, t)
        noisy = self.sample_state(pa, pc, pe, pos_t, mask, generator, dtype)
        out = denoiser(noisy, t.to(dtype), self._train_cond(batch, generator))
        return self.weighted(self.loss_terms(out, pos1, a1, c1, e1, mask))

    # ---- sampling steps -------------------------------------------------------------------------------
    def step_pos(self, pos_t: Tensor, pos1: Tensor, t: float, dt: float, mask: Tensor) -> Tensor:
        """Euler step of the coordinates along ``(pos_1_hat - pos_t) / (1 - t)``."""
        v = (pos1 - pos_t) / max(1.0 - t, 1e-6)
        return centre(pos_t + dt * v, mask)

    def step_categorical(self, p1: Tensor, xt: Tensor, m: Tensor, t: float, dt: float, *, eta: float = 0.0,
                         omega: float = 0.0) -> Tensor:
        """DeFoG's Euler step of one modality's CTMC (jump probabilities ``clip(R dt, 0, 1)``).

        Shapes:
            p1, xt: ``[..., K]``; returns ``[..., K]`` float64.
        """
        table = rate_table(t, m.to(xt.device), p1.shape[-1], eta, omega)
        jump = (expected_rates(p1, xt, table) * dt).clamp(0.0, 1.0)
        stay = (1.0 - jump.sum(-1, keepdim=True)).clamp(min=0.0)
        return jump + xt.to(torch.float64) * stay

    def final_categorical(self, p1: Tensor, xt: Tensor, m: Tensor, t: float) -> Tensor:
        """Last step: the predicted clean distribution restricted to categories that can produce ``x_t``."""
        P, _, _ = conditional_path(t, m.to(xt.device), p1.shape[-1])
        p = p1.to(torch.float64) * ((xt.to(torch.float64) @ P.T) > 0)
        return torch.where(p.sum(-1, keepdim=True) > 0, p, p1.to(torch.float64))
