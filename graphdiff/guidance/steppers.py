"""One reverse step as the per-step searches see it (SVDD, noise search): propose candidate next states from the
pretrained transition, and guess each candidate's clean sample for the reward. One stepper per process family, so
the searches are written once:

- :class:`DiscreteStepper` (DeFoG, DiGress): candidates are draws from the step's next-state probabilities; the
  clean guess is the argmax of the denoiser's clean prediction at the candidate.
- :class:`SDEStepper` (GDSS): the model's predictor-corrector step (Langevin corrector, then the reverse-diffusion or
  Euler predictor) with ``M`` draws of the predictor noise; the clean guess is Tweedie's estimate
  ``x0 = (x_t + std(t)^2 score(x_t, t)) / mean_coef(t)`` of each component, decoded as the process decodes samples.
  The last step returns the predictor's mean (GDSS's noise removal), which is the same for every candidate, so the
  last step costs no extra network call.
- :class:`EQGATStepper` (EQGAT-diff, 3D): candidates draw the coordinate posterior's noise and the categories of
  one reverse step; the clean guess is the denoiser's own clean prediction at the candidate (coordinates, and the
  argmax of atom types, charges and bonds), decoded as the process decodes samples.
"""

from __future__ import annotations

import torch

from ..processes.sde import _bc
from ..state import GraphState
from .steps import _clean_guess, _transition


class DiscreteStepper:
    """Per-step proposals of the discrete processes (see the module docstring)."""

    def __init__(self, process, denoiser, steps: int, times, knobs: dict):
        self.process, self.denoiser, self.steps, self.times, self.knobs = process, denoiser, steps, times, knobs
        self._log_px = self._t_model = None

    def prior(self, sizes: torch.Tensor, generator) -> GraphState:
        return self.process.prior(sizes, generator=generator)

    def propose(self, state: GraphState, k: int, rep: torch.Tensor, noise, path_noise=None) -> GraphState:
        """Candidates ``rep`` (indices of ``state``'s rows, one per candidate) of reverse step ``k``."""
        (px, pe), self._log_px, self._t_model = _transition(self.process, self.denoiser, state, k, self.times,
                                                            self.steps, self.knobs)
        self._rep = rep
        return self.process.sample_state(px[rep], pe[rep], state.mask[rep], noise, state.x.dtype)

    def clean(self, cands: GraphState, k: int) -> GraphState:
        """The decoded clean guess of each candidate of step ``k`` (the candidates themselves at the last step)."""
        if k == self.steps - 1:
            return self.process.decode(self.process.fill_masks(cands, self._log_px[self._rep]))
        return _clean_guess(self.process, self.denoiser, cands, self._t_model, self.knobs)

    def value_time(self, k: int) -> float:
        """The network time of the candidates of step ``k`` (for a value network)."""
        from .regressor import current_time

        return current_time(self.process, self.times, k + 1)


class SDEStepper:
    """Per-step proposals of GDSS's reverse SDE with the model's predictor-corrector settings (see the module
    docstring). ``knobs``: ``predictor`` (``reverse`` or ``euler``), ``snr``, ``scale_eps``, ``n_corrector``."""

    def __init__(self, process, denoiser, steps: int, times, knobs: dict):
        self.process, self.denoiser, self.steps, self.times = process, denoiser, steps, times
        self.predictor = knobs.get("predictor", "reverse")
        self.snr, self.scale_eps = float(knobs.get("snr", 0.2)), float(knobs.get("scale_eps", 0.7))
        self.n_corrector = int(knobs.get("n_corrector", 1))
        self._mean = None

    def prior(self, sizes: torch.Tensor, generator) -> GraphState:
        return self.process.prior(sizes, generator=generator)

    def _t(self, k: int, b: int, device) -> torch.Tensor:
        return torch.full((b,), float(self.times[k]), device=device)

    def propose(self, state: GraphState, k: int, rep: torch.Tensor, noise, path_noise=None) -> GraphState:
        from ..samplers.sde import _langevin

        process, mask = self.process, state.mask
        comps = process.components(state)
        h = float(self.times[k] - self.times[k + 1])
        vt = self._t(k, state.batch_size, state.device)
        for _ in range(self.n_corrector if path_noise is not None else 0):
            s = process.scores(self.denoiser, comps, mask, vt)
            comps = _langevin(process, comps, s, mask, vt, h, path_noise, self.snr, self.scale_eps)
        s = process.scores(self.denoiser, comps, mask, vt)
        means, cands, cmask = {}, {}, mask[rep]
        for name, sde in process.sdes.items():
            if self.predictor == "reverse":
                f, big_g = sde.discretize(comps[name], vt, h)
                means[name] = comps[name] - f + _bc(big_g**2, s[name]) * s[name]
            else:
                f, g = sde.sde(comps[name], vt)
                means[name] = comps[name] - (f - _bc(g**2, s[name]) * s[name]) * h
                big_g = g * h**0.5
            m = means[name][rep]
            cands[name] = m + _bc(big_g[rep], m) * process.draw(name, noise, cmask)
        self._mean = process.assemble({name: v[rep] for name, v in means.items()}, cmask)
        return process.assemble(cands, cmask)

    def clean(self, cands: GraphState, k: int) -> GraphState:
        process = self.process
        if k == self.steps - 1:  # noise removal: the predictor's mean
            return process.decode(self._mean)
        comps = process.components(cands)
        vt = self._t(k + 1, cands.batch_size, cands.device)
        s = process.scores(self.denoiser, comps, cands.mask, vt)
        clean = {}
        for name, sde in process.sdes.items():
            coef, std = sde.marginal(torch.ones_like(vt), vt)
            clean[name] = (comps[name] + _bc(std**2, s[name]) * s[name]) / _bc(coef, s[name])
        return process.decode(process.assemble(clean, cands.mask))

    def value_time(self, k: int) -> float:
        return float(self.times[k + 1])


class EQGATStepper:
    """Per-step proposals of EQGAT-diff's ancestral chain (:func:`graphdiff.samplers.eqgat_diff.ancestral_3d`; see
    the module docstring). ``knobs``: ``cond``, ``guidance``."""

    def __init__(self, process, denoiser, steps: int, times, knobs: dict):
        self.process, self.denoiser, self.steps, self.times, self.knobs = process, denoiser, steps, times, knobs

    def prior(self, sizes: torch.Tensor, generator) -> GraphState:
        return self.process.prior(sizes, generator=generator)

    def _predict(self, state: GraphState, t: float):
        tt = torch.full((state.batch_size,), t / self.process.T, device=state.device, dtype=state.pos.dtype)
        return self.process.predict(self.denoiser, state, tt, cond=self.knobs.get("cond"),
                                    guidance=self.knobs.get("guidance", 0.0))

    def propose(self, state: GraphState, k: int, rep: torch.Tensor, noise, path_noise=None) -> GraphState:
        process = self.process
        t, s = self.times[k], self.times[k + 1]
        pos0, la, lc, le = self._predict(state, t)
        ka, kc = process.ka, process.kc
        xa, xc = state.x[..., :ka], state.x[..., ka: ka + kc]
        pa = process.reverse_categorical(la.exp(), xa, process.abar_x, process.m_a, t, s)
        pc = process.reverse_categorical(lc.exp(), xc, process.abar_x, process.m_c, t, s)
        pe = process.reverse_categorical(le.exp(), state.e, process.abar_e, process.m_e, t, s)
        mask = state.mask[rep]
        eps = process.gaussian(mask, noise, state.pos.dtype)
        pos = process.reverse_pos(state.pos[rep], pos0.to(state.pos.dtype)[rep], t, s, mask, eps)
        return process.sample_state(pa[rep], pc[rep], pe[rep], pos, mask, noise, state.x.dtype)

    def clean(self, cands: GraphState, k: int) -> GraphState:
        process = self.process
        if k == self.steps - 1:  # the candidates are clean samples
            return process.decode(cands)
        pos0, la, lc, le = self._predict(cands, self.times[k + 1])
        guess = process.onehot(la.argmax(-1), lc.argmax(-1), le.argmax(-1), pos0, cands.mask, cands.pos.dtype)
        return process.decode(guess)

    def value_time(self, k: int) -> float:
        return self.times[k + 1] / self.process.T


STEPPERS = {"gdss": SDEStepper, "eqgat_diff": EQGATStepper, "defog": DiscreteStepper, "digress": DiscreteStepper}


def make_stepper(pipe, steps: int, times, knobs: dict):
    """The stepper of ``pipe``'s process (see the module docstring)."""
    return STEPPERS[pipe.process.name](pipe.process, pipe.denoiser, steps, times, knobs)


__all__ = ["DiscreteStepper", "SDEStepper", "EQGATStepper", "STEPPERS", "make_stepper"]
