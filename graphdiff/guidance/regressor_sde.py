"""Regressor guidance for the continuous process (GDSS): the regressor's gradient added to the score.

For a score-based model the conditional score is ``grad log p(x_t | y) = grad log p(x_t) + grad log p(y | x_t)``
(Song et al., ICLR 2021, Sec. 5, "controllable generation"). With a regressor ``g(x_t, t)`` trained on the
process's noisy states (:func:`graphdiff.guidance.regressor.train_regressor`) and ``p(y | x_t) ∝ exp(-scale L)``,
``L = (g - y)^2`` for a target value, ``-g`` for "more" and ``g`` for "less" (the same losses as the categorical
guidance, in the regressor's normalised units), every score the sampler asks for becomes

    s(x_t, t) - scale * grad_{x_t} L(g(x_t, t)),

for node features and adjacency alike (the adjacency gradient symmetrised, padded slots and the diagonal zero).
The model's own sampler (predictor-corrector, Euler-Maruyama, S4 or the probability flow) runs unchanged on a
process whose ``scores`` are guided, so the corrector steps are guided too. Cost per sample: the sampler's network
calls plus one regressor forward and backward per score evaluation (``regressor_calls``).
"""

from __future__ import annotations

import torch

from ..state import GraphState, pair_mask
from .search import GuidedSamples, counted_inference, reward_or_prediction


class GuidedScores:
    """A GDSS process whose :meth:`scores` include the regressor's gradient (everything else is the process's)."""

    def __init__(self, process, reg, goal: float | None, sign: float, scale: float):
        self.process, self.reg, self.goal, self.sign, self.scale = process, reg, goal, sign, float(scale)
        self.calls = 0

    def __getattr__(self, name):
        return getattr(self.process, name)

    def scores(self, denoiser, comps: dict, mask: torch.Tensor, t: torch.Tensor) -> dict:
        s = self.process.scores(denoiser, comps, mask, t)
        with torch.enable_grad():
            x = comps["x"].detach().float().requires_grad_(True)
            a = comps["adj"].detach().float().requires_grad_(True)
            g = self.reg.normalised(GraphState(x=x, e=a.unsqueeze(-1), mask=mask), t.float())
            loss = (g - self.goal) ** 2 if self.goal is not None else self.sign * g
            gx, ga = torch.autograd.grad(loss.sum(), (x, a), allow_unused=True)
        self.calls += int(mask.shape[0])
        out = dict(s)
        if gx is not None:
            out["x"] = s["x"] - self.scale * gx.to(s["x"].dtype) * mask.unsqueeze(-1).to(s["x"].dtype)
        if ga is not None:
            ga = 0.5 * (ga + ga.transpose(1, 2))
            out["adj"] = s["adj"] - self.scale * ga.to(s["adj"].dtype) * pair_mask(mask).to(s["adj"].dtype)
        return out


def sde_regressor_guidance(pipe, n: int, reward=None, *, reg, target: float | None, direction: str, scale: float,
                           steps: int | None = None, seed: int | None = None, batch_size: int | None = None,
                           progress: bool = False, **knobs) -> GuidedSamples:
    """GDSS sampling of ``n`` graphs with regressor guidance (see the module docstring; the arguments are
    :func:`graphdiff.guidance.regressor.regressor_guidance`'s, the regressor checked)."""
    from ..samplers import sample as run_sampler
    from ..samplers.noise import SampleNoise
    from .steps import search_setup

    import inspect

    from ..samplers import sampler_fn

    process, denoiser = pipe.process, pipe.denoiser
    cfg = pipe.config.sample
    eps = knobs.get("eps", cfg.knobs.get("eps"))
    steps, seed, knobs, _, sizes = search_setup(pipe, n, steps, seed, knobs, "regressor guidance")
    if eps is not None:  # search_setup takes it for its time grid; the sampler takes it itself
        knobs["eps"] = eps
    name = cfg.sampler or "pc"
    accepted = inspect.signature(sampler_fn(process, name)).parameters
    knobs = {k: v for k, v in knobs.items() if k in accepted}
    device = pipe.device
    reg.net.to(device).eval()
    goal = None if target is None else (float(target) - reg.mean) / reg.std
    guided = GuidedScores(process, reg, goal, 1.0 if direction == "min" else -1.0, scale)
    noise = SampleNoise.for_run(seed, 0, n, device)
    noise.node_counts(pipe.schema.node_count_probs())  # the streams as pipe.sample uses them
    chunk = int(batch_size or cfg.batch_size or 256)
    states = []
    with counted_inference(denoiser) as counter:
        for lo in range(0, n, chunk):
            hi = min(n, lo + chunk)
            states.append(run_sampler(guided, denoiser, sizes[lo:hi], steps=steps, sampler=name,
                                      noise=noise.subset(range(lo, hi)), progress=progress, **knobs))
    out = GraphState.cat(states)
    samples, values = reward_or_prediction(pipe, out, reward, reg, float(process.eps))  # GDSS's clean time
    cost = {"network_calls_per_sample": counter.graph_calls / n, "regressor_calls_per_sample": guided.calls / n,
            "reward_calls_per_sample": 1.0 if reward is not None else 0.0, "scale": float(scale),
            "target": target if target is not None else direction}
    return GuidedSamples(state=out, rewards=values, cost=cost, samples=samples)


__all__ = ["GuidedScores", "sde_regressor_guidance"]
