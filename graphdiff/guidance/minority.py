"""Minority guidance: steer a pretrained model toward the low-density part of its training distribution.

Um, Lee & Ye, "Don't Play Favorites: Minority Guidance for Diffusion Models" (ICLR 2024) observe that Tweedie's
clean-data estimate reconstructs typical samples well and unusual ones badly, so the reconstruction loss of a
noised sample, their *minority score*, measures how far into the low-density tail a sample lies. They train a
classifier of the (quantised) minority score on noisy inputs and guide sampling toward its top class.

Adapted to graph processes here:

- :func:`minority_scores`: a graph's minority score is the denoiser's clean-data cross entropy (nodes plus edges,
  each averaged over real entries) after noising it to the process's mid time (DiGress ``t = T / 2``, DeFoG
  ``t = 0.5``), averaged over ``draws`` noise draws. It needs nothing but the pretrained model.
- the guide is regressor guidance (:mod:`graphdiff.guidance.regressor`) with a regressor of that score
  (``graphdiff train-regressor --target minority``, a regression on the score instead of the paper's classifier
  over its quantiles) and the direction "max".

Evaluation (:func:`graphdiff.metrics.density.low_density_share`): the share of samples that fall in the training
set's lowest-density decile by a fixed feature-space density estimate.
"""

from __future__ import annotations

import numpy as np
import torch

from ..errors import ConfigError
from ..state import GraphState
from .regressor import CATEGORICAL, Regressor, noisy_states, regressor_guidance

TARGET = "minority"


@torch.no_grad()
def minority_scores(pipe, batch: GraphState, *, draws: int = 2, seed: int = 0) -> np.ndarray:
    """The minority score of each graph of the data ``batch`` under ``pipe`` (see the module docstring)."""
    from ..processes.categorical import categorical_ce

    process, denoiser = pipe.process, pipe.denoiser
    if process.name not in CATEGORICAL:
        raise ConfigError(f"minority scores are implemented for the processes {CATEGORICAL}, not {process.name!r}")
    if isinstance(draws, bool) or not isinstance(draws, int) or draws < 1:
        raise ConfigError(f"minority scores: draws must be a positive integer, got {draws!r}")
    batch = batch.to(pipe.device)
    x0, e0 = process.categories(batch)
    gen = torch.Generator(device=batch.device).manual_seed(seed)
    was = denoiser.training
    denoiser.eval()
    total = torch.zeros(batch.batch_size, dtype=torch.float64)
    for _ in range(draws):
        noisy, t_model = noisy_states(process, batch, gen, mid=True)
        log_px, log_pe = process.predict(denoiser, noisy, t_model)
        total += categorical_ce(log_px, log_pe, x0, e0, batch.mask, 1.0).double().cpu()
    denoiser.train(was)
    return (total / draws).numpy()


def minority_guidance(pipe, n: int, reward=None, *, regressor, scale: float = 1.0, **kwargs):
    """Regressor guidance toward high minority scores with a regressor trained on ``target="minority"``."""
    reg = regressor if isinstance(regressor, Regressor) else Regressor.load(regressor)
    if reg.target != TARGET:
        raise ConfigError(f"minority guidance needs a regressor of the minority score (graphdiff train-regressor "
                          f"--target minority); this one predicts {reg.target!r}")
    if kwargs.pop("target", None) is not None or kwargs.pop("direction", "max") != "max":
        raise ConfigError("minority guidance always raises the minority score (no target or direction)")
    return regressor_guidance(pipe, n, reward, regressor=reg, direction="max", scale=scale, **kwargs)


__all__ = ["minority_scores", "minority_guidance", "TARGET"]
