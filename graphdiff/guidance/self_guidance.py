"""Observation self-guidance and refinement (TSDiff: Kollovieh et al., "Predict, Refine, Synthesize: Self-Guiding
Diffusion Models for Probabilistic Time Series Forecasting", NeurIPS 2023), generic over fixed-graph states.

One unconditional model completes partly observed data without retraining: forecasting (observed context, unknown
horizon) and image inpainting (observed pixels, unknown holes) are the same call,
``pipe.sample(n, guide="self", observed=values, observed_mask=known)``.

* Guided sampling (Sec. 3.1): at every denoiser evaluation the clean estimate ``D(x; sigma)`` is pulled toward the
  observation by the gradient of ``log p(y_obs | x) = -L(D(x; sigma), y_obs)`` through the network:
  ``D~ = D - scale sigma^2 grad_x L`` (the score shifts by ``scale grad log p``). ``variant="mse"``: L is the squared
  error on the observed entries (Gaussian likelihood); ``"quantile"``: the pinball loss at a quantile level (an
  asymmetric Laplace likelihood), level ``(i + 0.5) / n`` for sample ``i`` unless one ``quantile`` is given.
* Replacement (``replace=True``): before every denoiser evaluation the observed entries of the network's input are
  set to the observation noised to the current level, ``y_obs + sigma z``, as in the replacement method of
  imputation (Song et al., "Score-Based Generative Modeling through Stochastic Differential Equations", ICLR 2021;
  RePaint, Lugmayr et al. 2022, without its resampling): the network sees the context itself instead of the
  sampler's own noisy guess of it. It combines with the guidance gradient (taken through the same input, so it
  reaches the unobserved entries through the network) or runs alone at ``scale = 0`` (no gradient, no backward pass).
* Refinement (Sec. 3.2): a base prediction is improved by gradient (or Langevin, ``temperature > 0``) steps on the
  energy ``E(y) = |D(y + sigma z; sigma) - y|^2 + weight L(y, y_obs)``, with sigma running down a geometric ladder.

Values and masks live in state space (``x``; see :meth:`graphdiff.adapters.FixedGraphAdapter.observation`).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
from torch import Tensor

from ..errors import ConfigError
from ..samplers import SampleNoise, sampler_fn
from ..state import GraphState
from .search import CallCounter, GuidedSamples

VARIANTS = ("mse", "quantile")
VARIANT_SPECS = (*VARIANTS, *(f"{v}+replace" for v in VARIANTS))  # how benches and cards name a variant choice


def variant_options(spec: str) -> dict:
    """``{"variant", "replace"}`` of a variant choice named as in :data:`VARIANT_SPECS` (``"quantile+replace"``)."""
    if spec not in VARIANT_SPECS:
        raise ConfigError(f"self-guidance variant {spec!r}: choose from {list(VARIANT_SPECS)}")
    variant, _, extra = spec.partition("+")
    return {"variant": variant, "replace": extra == "replace"}


def observation_loss(pred: Tensor, observed: Tensor, known: Tensor, variant: str = "mse",
                     levels: Tensor | None = None) -> Tensor:
    """Per-sample ``[B]`` loss of ``pred`` against ``observed`` on the ``known`` entries (``[B, N, C]`` each):
    squared error, or the pinball loss ``max(q d, (q - 1) d)``, ``d = y - pred``, at per-sample levels ``q``."""
    d = (observed - pred) * known
    if variant == "mse":
        return d.pow(2).sum((1, 2))
    q = levels.reshape(-1, 1, 1).to(d.dtype)
    return torch.maximum(q * d, (q - 1) * d).sum((1, 2))


def _check_observation(process, n: int, observed, observed_mask) -> tuple[Tensor, Tensor]:
    if not hasattr(process, "denoise") or not getattr(process, "fixed", False):
        raise ConfigError(f"guide 'self' needs a continuous process on a fixed graph (edm, pfgm), got "
                          f"{process.name!r}")
    if observed is None or observed_mask is None:
        raise ConfigError("guide 'self' needs observed= (values [n, N, C]) and observed_mask= (bool, True = known)")
    nodes, c = process.schema.max_nodes, process.x_dim
    obs = torch.as_tensor(np.asarray(observed, dtype=np.float32) if not torch.is_tensor(observed) else observed)
    known = torch.as_tensor(observed_mask if torch.is_tensor(observed_mask) else np.asarray(observed_mask))
    if known.dim() == obs.dim() - 1:
        known = known.unsqueeze(-1)
    try:
        obs = obs.float().expand(n, nodes, c)
        known = known.bool().expand(n, nodes, c)
    except RuntimeError:
        raise ConfigError(f"observed must be [{n}, {nodes}, {c}] or [{nodes}, {c}] and observed_mask the same (or "
                          f"without C); got {list(obs.shape)} and {list(known.shape)}") from None
    if not torch.isfinite(obs[known]).all():
        raise ConfigError("observed holds NaN or infinite values at entries observed_mask marks as known")
    return torch.nan_to_num(obs), known


def _levels(n: int, variant: str, quantile: float | None) -> Tensor:
    if variant not in VARIANTS:
        raise ConfigError(f"guide 'self': variant must be one of {VARIANTS}, got {variant!r}")
    if quantile is not None and not 0 < float(quantile) < 1:
        raise ConfigError(f"guide 'self': quantile must lie in (0, 1), got {quantile!r}")
    if quantile is not None:
        return torch.full((n,), float(quantile))
    return (torch.arange(n, dtype=torch.float32) + 0.5) / n


def make_steer(observed: Tensor, known: Tensor, scale: float, variant: str = "mse", levels: Tensor | None = None,
               replace_noise: SampleNoise | None = None):
    """The sampler hook of guided sampling: ``steer(denoise, comps, sigma, mask) -> comps`` (module docstring).
    ``replace_noise``: the noise streams of replacement (``None``: no replacement)."""

    def steer(denoise, comps, sigma, mask):
        if replace_noise is not None:
            z = replace_noise.randn(*comps["x"].shape[1:]).to(comps["x"].dtype)
            noisy = observed + sigma.reshape(-1, 1, 1).to(z.dtype) * z
            comps = {**comps, "x": torch.where(known, noisy, comps["x"])}
        if scale == 0:
            return {k: v.detach() for k, v in denoise(comps).items()}
        with torch.enable_grad():
            x = comps["x"].detach().requires_grad_(True)
            den = denoise({**comps, "x": x})
            loss = observation_loss(den["x"], observed, known, variant, levels)
            grad, = torch.autograd.grad(loss.sum(), x)
        shift = scale * sigma.reshape(-1, 1, 1).to(grad.dtype) ** 2 * grad
        out = {k: v.detach() for k, v in den.items()}
        out["x"] = (out["x"] - shift) * mask.unsqueeze(-1)
        return out

    return steer


def self_guidance_defaults(pipe, variant: str | None = None, scale: float | None = None,
                           fallback: str = "mse", replace: bool | None = None) -> tuple[str, float, bool]:
    """``(variant, scale, replace)``: the given ones, else the model's ``sample.self_guidance``, else ``fallback``,
    1.0 and no replacement."""
    stored = pipe.config.sample.self_guidance
    variant = variant if variant is not None else stored.get("variant", fallback)
    scale = float(scale) if scale is not None else float(stored.get("scale", 1.0))
    replace = bool(replace) if replace is not None else bool(stored.get("replace", False))
    return variant, scale, replace


def self_guidance(pipe, n: int, reward=None, *, observed=None, observed_mask=None, variant: str | None = None,
                  scale: float | None = None, quantile: float | None = None, replace: bool | None = None, base=None,
                  keep_observed: bool = True,
                  steps: int | None = None, sampler: str | None = None, seed: int | None = None,
                  batch_size: int | None = None, cond=None, guidance: float | None = None, progress: bool = False,
                  callback=None, generator=None, n_nodes=None, num_steps: int | None = None,
                  **options) -> GuidedSamples:
    """``n`` completions of the observation (guided sampling), or refinements of ``base`` when given.

    Args:
        observed, observed_mask: ``[n, N, C]`` (or ``[N, C]``, shared) values and known-entry mask in state space.
        variant: ``"mse"`` or ``"quantile"``; scale: the guidance scale (0 = unguided sampling). When not given,
            the model's ``sample.self_guidance`` defaults (e.g. the scale chosen on validation windows when the
            model was packed), else ``"mse"`` and 1.0.
        quantile: one level for every sample (quantile variant); ``None`` spreads levels over the samples.
        replace: feed the network the observation noised to the current level at the observed entries (module
            docstring); default: the model's ``sample.self_guidance``, else no. Not used by ``base`` refinement.
        base: ``[n, N, C]`` base prediction: run :func:`refine` on it instead (``options`` go to it).
        keep_observed: paste the observed values into the returned states.
        other arguments: as :meth:`~graphdiff.pipeline.GraphDiffusionPipeline.sample`.

    Returns:
        :class:`~graphdiff.guidance.search.GuidedSamples`; ``rewards`` holds each sample's observation loss.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ConfigError(f"number of samples must be a positive integer, got {n!r}")
    process, den = pipe.process, pipe.denoiser
    obs, known = _check_observation(process, n, observed, observed_mask)
    cfg = pipe.config.sample
    variant, scale, replace = self_guidance_defaults(pipe, variant, scale, replace=replace)
    levels = _levels(n, variant, quantile)
    seed = cfg.seed if seed is None else int(seed)
    if generator is not None:
        seed = int(torch.randint(0, 2**62, (1,), generator=generator))
    if base is not None:
        res = refine(pipe, base, obs, known, seed=seed, variant=variant, levels=levels, cond=cond, **options)
        if res.state.batch_size != n:
            raise ConfigError(f"base holds {res.state.batch_size} items for {n} samples")
        if keep_observed:
            res.state = dataclasses.replace(res.state, x=torch.where(known, obs, res.state.x))
        return res
    steps = int(steps or num_steps or cfg.steps or 18)
    name = sampler or cfg.sampler or "heun"
    fn = sampler_fn(process, name)
    knobs = {k: v for k, v in cfg.knobs.items()}
    knobs.update(options)
    if guidance is not None:
        knobs["guidance"] = float(guidance)
    bs = int(batch_size or cfg.batch_size or 256)
    dev = pipe.device
    cond_t = None if cond is None else pipe._cond(cond, n, {"cond"}, name)
    parts, losses = [], []
    was_training = den.training
    den.eval()
    try:
        with CallCounter(den) as counter:
            for lo in range(0, n, bs):
                hi = min(n, lo + bs)
                noise = SampleNoise.for_run(seed, lo, hi - lo, dev)
                # replacement draws from streams of their own, so the sampler's noise is the same with or without
                swap = SampleNoise.for_run(seed + 1, lo, hi - lo, dev) if replace else None
                sizes = torch.full((hi - lo,), process.schema.max_nodes, dtype=torch.long)
                o, k, q = obs[lo:hi].to(dev), known[lo:hi].to(dev), levels[lo:hi].to(dev)
                state = process.prior(sizes, generator=noise)
                c = None if cond_t is None else cond_t[lo:hi].to(dev)
                steer = make_steer(o, k, scale, variant, q, swap)
                out = fn(process, den, state, steps=steps, noise=noise, steer=steer, cond=c, callback=callback,
                         progress=progress, **knobs)
                losses.append(observation_loss(out.x, o, k, variant, q).cpu())
                if keep_observed:
                    out = GraphState(x=torch.where(k, o, out.x), e=out.e, mask=out.mask, pos=out.pos, y=out.y,
                                     schema=out.schema)
                parts.append(out.to("cpu"))
    finally:
        den.train(was_training)
    cost = {"network_calls_per_sample": counter.graph_calls / n, "reward_calls_per_sample": 0.0, "scale": scale,
            "variant": variant, "replace": replace}
    return GuidedSamples(state=GraphState.cat(parts), rewards=torch.cat(losses).numpy(), cost=cost)



def refine(pipe, base, observed, observed_mask, *, iterations: int = 20, step_size: float = 0.05,
           weight: float = 1.0, temperature: float = 0.0, sigma_max: float | None = None,
           sigma_min: float | None = None, seed: int = 0, variant: str = "mse", levels: Tensor | None = None,
           cond=None) -> GuidedSamples:
    """TSDiff's refinement of a base prediction ``base [n, N, C]`` (state space): ``iterations`` steps of
    ``y <- y - step_size grad E(y) + sqrt(2 step_size temperature) xi`` on the energy of the module docstring,
    sigma going geometrically from ``sigma_max`` to ``sigma_min`` (default ``2`` and ``0.1`` times the process's
    ``sigma_data``: 1.0 and 0.05 for EDM's 0.5, so a model of data with a smaller spread is asked about noise of the
    data's own size); ``temperature = 0`` is MAP refinement."""
    process, den = pipe.process, pipe.denoiser
    if isinstance(base, GraphState):
        base = base.x
    base = torch.as_tensor(np.asarray(base, dtype=np.float32) if not torch.is_tensor(base) else base).float()
    n = base.shape[0]
    obs, known = _check_observation(process, n, observed, observed_mask)
    if base.shape != obs.shape:
        raise ConfigError(f"base must be shaped like observed {list(obs.shape)}, got {list(base.shape)}")
    if iterations < 1 or step_size <= 0 or temperature < 0:
        raise ConfigError(f"refine: need iterations >= 1, step_size > 0, temperature >= 0; got {iterations}, "
                          f"{step_size}, {temperature}")
    levels = _levels(n, variant, None) if levels is None else levels
    sd = float(getattr(process, "sigma_data", 0.5))
    sigma_max = 2.0 * sd if sigma_max is None else float(sigma_max)
    sigma_min = 0.1 * sd if sigma_min is None else float(sigma_min)
    if not 0 < sigma_min <= sigma_max:
        raise ConfigError(f"refine: need 0 < sigma_min <= sigma_max, got {sigma_min}, {sigma_max}")
    dev = pipe.device
    noise = SampleNoise.for_run(seed, 0, n, dev)
    mask = torch.ones(n, process.schema.max_nodes, dtype=torch.bool, device=dev)
    y = torch.where(known, obs, base).to(dev)
    o, k, q = obs.to(dev), known.to(dev), levels.to(dev)
    sig = np.geomspace(sigma_max, sigma_min, iterations)
    was_training = den.training
    den.eval()
    try:
        with CallCounter(den) as counter:
            for s in sig:
                sigma = torch.full((n,), float(s), device=dev)
                z = process.draw("x", noise, mask)
                with torch.enable_grad():
                    yy = y.detach().requires_grad_(True)
                    d = process.denoise(den, {"x": yy + float(s) * z}, mask, sigma, cond=cond)["x"]
                    energy = (d - yy).pow(2).sum((1, 2)) + weight * observation_loss(yy, o, k, variant, q)
                    grad, = torch.autograd.grad(energy.sum(), yy)
                y = y - step_size * grad
                if temperature > 0:
                    y = y + (2 * step_size * temperature) ** 0.5 * process.draw("x", noise, mask)
    finally:
        den.train(was_training)
    state = process.assemble({"x": y.detach()}, mask)
    losses = observation_loss(state.x, o, k, variant, q).cpu().numpy()
    cost = {"network_calls_per_sample": counter.graph_calls / n, "reward_calls_per_sample": 0.0,
            "iterations": iterations}
    return GuidedSamples(state=state.to("cpu"), rewards=losses, cost=cost)


__all__ = ["self_guidance", "refine", "make_steer", "observation_loss", "variant_options", "VARIANTS",
           "VARIANT_SPECS"]
