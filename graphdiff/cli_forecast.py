"""``graphdiff forecast``: quantile forecasts of a series from a baseline or a trained diffusion model.

    graphdiff forecast --model DIR|NAME|seasonal_naive|ets|arima --context FILE.csv|SERIES --horizon H
                       [--samples S] --out forecast.csv [--plot forecast.png] [--holdout] [--season M] [--scale W]
                       [--variant quantile|mse] [--replace]

``--context`` is a CSV (a date column, then value columns; :func:`graphdiff.data.series.read_series_csv`) or a
built-in series name. ``--holdout`` forecasts the last H points from the points before them, draws them as the
truth and prints CRPS and MASE. With ``--model DIR`` (or a bundled model's name, ``graphdiff models list``, e.g.
``monthly-tsdiff``) the pipeline forecasts by self-guided sampling (``guide="self"``,
:mod:`graphdiff.forecast.diffusion`) at the model's stored guidance scale (``sample.self_guidance``, chosen on
validation windows when the model was packed) unless ``--scale`` gives one.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from .errors import ConfigError


def _forecaster(args):
    from .forecast.baselines import BASELINES, get_forecaster

    name = args.model.replace("-", "_")
    if name in BASELINES:
        return get_forecaster(name), name
    from .hub import REMOTE_PREFIXES, model_names

    names = model_names()
    if not (Path(args.model).exists() or args.model.startswith(REMOTE_PREFIXES) or args.model in names):
        from .checks import suggest

        raise ConfigError(f"--model {args.model!r} is neither a model folder, a model name nor a baseline"
                          f"{suggest(args.model, [*BASELINES, *names])}; baselines: {', '.join(BASELINES)}; "
                          f"models: {', '.join(names) or 'none bundled'}")
    from .forecast.diffusion import DiffusionForecaster

    fc = DiffusionForecaster(args.model, scale=args.scale, variant=args.variant, steps=args.steps,
                             replace=args.replace)
    return fc, fc.__name__


def cmd_forecast(args) -> int:
    from .data.series import load_series
    from .forecast.output import forecast_table, future_timestamps, plot_forecast, write_forecast_csv
    from .metrics.forecast import ForecastScores

    from .checks import check_at_least, check_output_file

    check_at_least(args, {"--horizon": 1, "--samples": 1, "--season": 1, "--seed": 0, "--steps": 1,
                          "--plot-context": 1})

    check_output_file(args.out, "--out", (".csv",), inputs={"--context": args.context})
    if args.plot:
        check_output_file(args.plot, "--plot", (".png", ".pdf", ".svg", ".jpg", ".jpeg"),
                          inputs={"--context": args.context, "--out": args.out})
    ts = load_series(args.context)
    season = args.season or ts.season
    values, stamps = ts.values, ts.timestamps
    truth = None
    if args.holdout:
        if len(values) <= args.horizon + 2:
            raise ConfigError(f"--holdout: {args.context} has {len(values)} points, too few to hold out "
                              f"{args.horizon}")
        values, truth = values[:-args.horizon], values[-args.horizon:]
        stamps = None if stamps is None else stamps[:-args.horizon]
    forecaster, label = _forecaster(args)
    samples = np.asarray(forecaster(values, args.horizon, season=season, num_samples=args.samples, seed=args.seed))
    future = future_timestamps(stamps, args.horizon)
    rows = forecast_table(samples, future, ts.channels)
    out = write_forecast_csv(rows, args.out)
    print(f"{label}: {args.horizon} steps x {len(ts.channels)} channel(s) from {len(values)} points of {ts.name} "
          f"(season {season}), {args.samples} samples -> {out}")
    model_season = getattr(getattr(forecaster, "path", None), "season", None)
    if model_season is not None and int(model_season) != int(season):
        print(f"note: the model was trained on series of season {model_season}; this one has season {season} "
              f"(its lags and windows are the model's), so expect a poor fit", file=sys.stderr)
    if truth is not None:
        scores = ForecastScores()
        scores.add(truth, samples, values, season)
        s = scores.summary()
        print(f"held-out {args.horizon} points: CRPS (normalised) {s['crps']:.4f}, mean wQL {s['wql']:.4f}, "
              f"MASE {s['mase']:.3f}")
    if args.plot:
        p = plot_forecast(values, samples, args.plot, truth=truth, context_times=stamps, future_times=future,
                          title=f"{ts.name}: {label}, {args.samples} samples", show_context=args.plot_context)
        print(f"plot -> {p}")
    return 0


def add_forecast_commands(sub) -> None:
    f = sub.add_parser("forecast", help="quantile forecasts of a series (baseline or diffusion model) to CSV")
    f.add_argument("--model", required=True,
                   help="a trained time-series model folder or name (graphdiff models list), or a baseline: "
                        "seasonal_naive, ets, arima")
    f.add_argument("--context", required=True, help="a CSV (date column, value columns) or a built-in series name")
    f.add_argument("--horizon", type=int, required=True, help="steps to forecast")
    f.add_argument("--samples", type=int, default=100, help="sample paths the quantiles are taken from")
    f.add_argument("--out", required=True, help="quantile table: date, series, mean, 0.1 ... 0.9")
    f.add_argument("--plot", default=None, help="also draw context, median and 10-90%% band to this PNG")
    f.add_argument("--plot-context", type=int, default=None, help="steps of context to draw (default all)")
    f.add_argument("--holdout", action="store_true",
                   help="forecast the last H points from the rest; draw them as truth, print CRPS and MASE")
    f.add_argument("--season", type=int, default=None, help="season length (default from the dates' frequency)")
    f.add_argument("--seed", type=int, default=0)
    f.add_argument("--scale", type=float, default=None,
                   help="diffusion model: self-guidance scale (default: the model's stored scale, else 1)")
    f.add_argument("--variant", default=None, choices=["quantile", "mse"],
                   help="diffusion model: self-guidance likelihood (default: the model's, else quantile)")
    f.add_argument("--replace", action=argparse.BooleanOptionalAction, default=None,
                   help="diffusion model: feed the network the context noised to each step's level (default: the "
                        "model's, else no)")
    f.add_argument("--steps", type=int, default=None, help="diffusion model: sampling steps (default the model's)")
    f.set_defaults(func=cmd_forecast)


__all__ = ["add_forecast_commands", "cmd_forecast"]
