"""Forecasting: classical baselines, the windowed evaluation harness, and quantile output.

``get_forecaster(name)`` gives a baseline by name (:mod:`graphdiff.forecast.baselines`); a forecaster maps a
history ``[T, C]`` to sample paths ``[S, H, C]``. :func:`graphdiff.forecast.evaluate.evaluate_forecaster` scores
one on the rolling test windows of a series (:mod:`graphdiff.data.series`).
"""

from .baselines import BASELINES, Forecaster, get_forecaster

__all__ = ["BASELINES", "Forecaster", "get_forecaster"]
