"""Regressor guidance for EQGAT-diff: 3D coordinates plus atom-type, charge and bond categories.

The regressor ``g(z_t, t)`` (:class:`~graphdiff.nn.regressor.GraphRegressor`) reads a noisy 3D molecule through an
E(3)-invariant view: the element | charge one-hots as node features and, per atom pair, the bond one-hot followed
by a Gaussian radial basis of the interatomic distance (:func:`view_3d`). Its value is therefore unchanged by
rotations, reflections and translations of the coordinates, and its gradient with respect to them rotates with the
molecule and sums to zero over the atoms (no drift of the centre of mass).

Each reverse step of :func:`graphdiff.samplers.eqgat_diff.ancestral_3d` is guided on both kinds of variables, with
the losses of :mod:`graphdiff.guidance.regressor` (``(g - y)^2`` for a target, ``-g`` / ``g`` for a direction, in
the regressor's normalised units) and one ``scale``:

- categories (elements, charges, bonds): DiGress's first-order reweighting, ``p(z_s | z_t) exp(-scale dL/dz_t)``;
- coordinates: classifier guidance of the Gaussian posterior (Dhariwal & Nichol, NeurIPS 2021, Alg. 1): its mean
  moves by ``-scale Sigma grad_pos L``, ``Sigma`` the posterior variance of the step
  (:meth:`graphdiff.processes.eqgat_diff.EQGATDiffusion.posterior_variance`), centred over the real atoms. The last
  step returns the predicted clean coordinates, unguided (its variance is 0).

The noise streams are drawn in the unguided sampler's order, so a vanishing ``scale`` gives the model's own samples.
Cost per sample: the sampler's network calls plus one regressor forward and backward per step.
"""

from __future__ import annotations

import torch

from ..state import GraphState, pair_mask

N_RBF = 16
RBF_MAX = 8.0  # Angstrom: the radial basis covers 0..8 A (QM9's largest interatomic distances are about 10 A)


def rbf(d: torch.Tensor, n: int = N_RBF, top: float = RBF_MAX) -> torch.Tensor:
    """Gaussian radial basis of distances ``d``: ``n`` centres evenly spaced on ``[0, top]``, width the spacing.

    Shapes:
        d: any; returns ``d.shape + (n,)``.
    """
    centres = torch.linspace(0.0, top, n, device=d.device, dtype=d.dtype)
    width = top / (n - 1)
    return torch.exp(-(((d.unsqueeze(-1) - centres) / width) ** 2))


def view_3d(state: GraphState) -> GraphState:
    """What a 3D regressor reads: node one-hots, and per pair ``[bond one-hot, rbf(|pos_i - pos_j|)]`` (zero on the
    diagonal and on pairs touching padded slots); ``pos`` is kept for hand-made regressors.

    Shapes:
        state.x ``[B, N, Ka + Kc]``, state.e ``[B, N, N, Ke]``, state.pos ``[B, N, 3]``; returns e
        ``[B, N, N, Ke + N_RBF]``.
    """
    pos = state.pos
    diff = pos.unsqueeze(2) - pos.unsqueeze(1)
    d = (diff.pow(2).sum(-1) + 1e-8).sqrt()  # finite gradient at d = 0
    pm = pair_mask(state.mask).unsqueeze(-1).to(pos.dtype)
    e = torch.cat([state.e.to(pos.dtype), rbf(d) * pm], -1)
    return GraphState(x=state.x, e=e, mask=state.mask, pos=pos)


def noisy_3d(process, batch: GraphState, generator=None, *, mid: bool = False) -> tuple[GraphState, torch.Tensor]:
    """A noisy state of each molecule of the data ``batch`` at ``t ~ U{1..T}`` (as EQGAT-diff trains; ``mid``:
    ``t = T / 2``) and its network time ``t / T``."""
    b, dev = batch.batch_size, batch.device
    gdev = generator.device if generator is not None else dev
    t = (torch.full((b,), process.T // 2, dtype=torch.long) if mid
         else torch.randint(1, process.T + 1, (b,), generator=generator, device=gdev)).to(dev)
    noisy, _ = process.noisy(batch, t, generator)
    return noisy, t.float() / process.T


def ancestral_3d_guided(process, denoiser, state: GraphState, *, reg, goal, sign: float, scale: float, steps: int,
                        noise, cond=None, guidance: float = 0.0, progress: bool = False) -> GraphState:
    """EQGAT-diff's ancestral sampler with each step guided by the regressor ``reg`` (see the module docstring).

    Args:
        reg: a :class:`~graphdiff.guidance.regressor.Regressor` trained on this process.
        goal: the target in the regressor's normalised units, or ``None`` for a direction.
        sign: ``1`` to lower the prediction, ``-1`` to raise it (when ``goal`` is ``None``).
        scale: the guidance strength.

    Returns:
        the final process state.
    """
    from ..processes.mixed3d import centre
    from ..progress import maybe
    from .steps import guidance_gradients, reweighted

    times = process.timesteps(steps)
    b, mask = state.batch_size, state.mask
    ka, kc = process.ka, process.kc
    m = mask.unsqueeze(-1)
    for k in maybe(range(steps), progress, "regressor"):
        t, s = times[k], times[k + 1]
        tt = torch.full((b,), t / process.T, device=state.device, dtype=state.pos.dtype)
        with torch.no_grad():
            pos0, la, lc, le = process.predict(denoiser, state, tt, cond=cond, guidance=guidance)
        gx, ge, gp = guidance_gradients(reg, state, tt.float(), goal, sign)
        eps = process.gaussian(mask, noise, state.pos.dtype)
        pos = process.reverse_pos(state.pos, pos0.to(state.pos.dtype), t, s, mask, eps)
        if s > 0:  # Dhariwal & Nichol 2021, Alg. 1: the posterior mean moves by scale * Sigma * grad log p(y | x)
            shift = centre(gp.to(pos.dtype) * m.to(pos.dtype), mask)
            pos = centre(pos - scale * process.posterior_variance(t, s) * shift, mask)
        xa, xc = state.x[..., :ka], state.x[..., ka: ka + kc]
        with torch.no_grad():
            pa = process.reverse_categorical(la.exp(), xa, process.abar_x, process.m_a, t, s)
            pc = process.reverse_categorical(lc.exp(), xc, process.abar_x, process.m_c, t, s)
            pe = process.reverse_categorical(le.exp(), state.e, process.abar_e, process.m_e, t, s)
        pa = reweighted(pa, gx[..., :ka], scale)
        pc = reweighted(pc, gx[..., ka: ka + kc], scale)
        pe = reweighted(pe, ge, scale)
        state = process.sample_state(pa, pc, pe, pos.detach(), mask, noise, state.x.dtype)
    return state


__all__ = ["ancestral_3d_guided", "noisy_3d", "rbf", "view_3d"]
