"""What ``graphdiff models pack`` measures for a model on a fixed graph: time series (path) and images (grid).

* A time-series model forecasts the rolling test windows of the series it was trained on (every member of a pool,
  :mod:`graphdiff.data.series_pool`) by TSDiff self-guidance, beside seasonal naive and statsmodels ETS on the same
  windows (:func:`graphdiff.forecast.evaluate.evaluate_forecaster`). The guidance scale is chosen once per model,
  as TSDiff reports one per dataset: the lowest mean CRPS over the members' validation windows (the windows just
  before the test part, :func:`graphdiff.bench.timeseries.validation_series`), and it is stored as the model's
  default (``sample.self_guidance``), so ``graphdiff forecast --model NAME`` uses it unless ``--scale`` says
  otherwise.
* An image model samples as many images as the test split holds; on the digits the card gives the Frechet distance
  to the test split in the feature space of the digits classifier (:mod:`graphdiff.metrics.images`), with the
  classifier's test accuracy and the distance of training images to the test split as the floor; a class-conditional
  model also samples the ten classes in turn (classifier-free guidance weight 1) for its class accuracy. A grid of 64
  samples goes into the model folder (``samples.png``).

Each measure returns ``{"table": [markdown lines], "line": what was run, "data": the data line, "metrics": {...}}``
and, when it has files for the model folder, ``"write": write(folder)``, called once the model is saved.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np

from .errors import ConfigError


# how a series model's windows are normalised (dataset_options.scaling), in the card's words
SCALING_WORDS = {"mean": "each window over its context's mean absolute value, TSDiff's scaling",
                 "std": "each window standardised by its context",
                 "diff": "first differences over the context's mean absolute difference",
                 "sdiff": "seasonal differences over the context's mean absolute seasonal difference"}


def series_members(pipe, dataset: str) -> list:
    """The series a time-series model is scored on: a pool's members (its ``dataset_options.series`` when the model
    swapped them), else the dataset itself (a built-in series or a ``.csv``), each with the model's window
    lengths."""
    from .adapters import adapter_from_schema
    from .data.series import load_series
    from .data.series_pool import pool_members

    path = adapter_from_schema(pipe.schema)
    from .data import model_data_options

    options = model_data_options(pipe.config, dataset)
    names = list(options.get("series") or pool_members(dataset) or [dataset])
    out = []
    for name in names:
        ts = load_series(name)
        task = ts.task
        if task is None or (task.prediction_length, task.context_length) != (path.prediction_length,
                                                                              path.context_length):
            ts = ts.with_task(prediction_length=path.prediction_length, context_length=path.context_length)
        out.append(ts)
    return out


def measure_series(pipe, *, dataset: str, samples: int, scales, plots=None, variants=("quantile",)) -> dict:
    """Self-guided forecasts against seasonal naive and ETS on each member's test windows (module docstring);
    sets ``pipe.config.sample.self_guidance`` to the chosen scale and variant (``variants``: self-guidance
    variants as ``graphdiff bench run timeseries`` names them, ``quantile``, ``mse``, ``quantile+replace``, ...;
    every scale is tried with every variant)."""
    from .bench.timeseries import validation_series, validation_windows
    from .forecast.diffusion import DiffusionForecaster
    from .forecast.evaluate import evaluate_forecaster
    from .guidance.self_guidance import VARIANT_SPECS, variant_options

    scales = [float(s) for s in scales]
    if not scales or any(not s > 0 for s in scales):
        raise ConfigError(f"--scales: positive guidance scales, got {scales}")
    variants = list(variants)
    if not variants or any(v not in VARIANT_SPECS for v in variants) or len(set(variants)) < len(variants):
        raise ConfigError(f"--variants: distinct self-guidance variants out of {list(VARIANT_SPECS)}, got {variants}")
    members = series_members(pipe, dataset)
    steps = pipe.config.sample.steps
    t0 = time.perf_counter()
    by_choice = {}
    for v in variants:
        for s in scales:
            fc = DiffusionForecaster(pipe, scale=s, steps=steps, **variant_options(v))
            crps = [evaluate_forecaster(fc, validation_series(ts), num_samples=samples)["summary"]["crps"]
                    for ts in members]
            by_choice[(v, s)] = sum(crps) / len(crps)
    variant, chosen = min(by_choice, key=by_choice.get) if len(by_choice) > 1 else (variants[0], scales[0])
    opts = variant_options(variant)
    stored = {"scale": chosen, "variant": opts["variant"], **({"replace": True} if opts["replace"] else {})}
    pipe.config = pipe.config.replace(sample=dataclasses.replace(pipe.config.sample, self_guidance=stored))
    by_scale = ({s: v for (_, s), v in by_choice.items()} if len(variants) == 1
                else {f"{k[0]} {k[1]:g}": v for k, v in by_choice.items()})
    how = f"{opts['variant']} self-guidance{' with replacement' if opts['replace'] else ''}"
    fc = DiffusionForecaster(pipe, steps=steps)
    rows = []
    for ts in members:
        res = evaluate_forecaster(fc, ts, num_samples=samples, keep_samples=plots is not None)
        base = {b: evaluate_forecaster(b, ts, num_samples=samples)["summary"] for b in ("seasonal_naive", "ets")}
        s, t = res["summary"], res["task"]
        rows.append({"series": ts.name, "windows": t["test_windows"], "horizon": t["prediction_length"],
                     "crps": s["crps"], "mase": s["mase"], "seasonal_naive_crps": base["seasonal_naive"]["crps"],
                     "ets_crps": base["ets"]["crps"], "x_ets": s["crps"] / base["ets"]["crps"]})
        if plots is not None:
            from .bench.timeseries import plot_last_window

            plot_last_window(ts, res, Path(plots) / f"{ts.name}.png", f"{how}, scale {chosen:g}")
    seconds = time.perf_counter() - t0
    table = ["| series | test windows x H | seasonal naive CRPS | ETS CRPS | self-guided CRPS | x ETS | MASE |",
             "|---|---|---:|---:|---:|---:|---:|",
             *[f"| {r['series']} | {r['windows']} x {r['horizon']} | {r['seasonal_naive_crps']:.4f} | "
               f"{r['ets_crps']:.4f} | {r['crps']:.4f} | {r['x_ets']:.2f} | {r['mase']:.3f} |" for r in rows],
             "", "Mean validation CRPS by guidance scale (the lowest is the model's default): "
             + ", ".join(f"{s if isinstance(s, str) else format(s, 'g')}: {v:.4f}" for s, v in by_scale.items())
             + "."]
    line = (f"{samples} sample paths per window (seed 0 + window), the {pipe.config.sample.sampler or 'default'} "
            f"sampler at {steps} steps, {how} at scale {chosen:g} (chosen on the validation "
            f"windows, the {len(members)} series' {sum(validation_windows(ts) for ts in members)} windows "
            f"before their test parts), CRPS normalised by sum |y| (properscoring), {seconds:.0f} s in all")
    names = ", ".join(ts.name for ts in members)
    from .adapters import adapter_from_schema

    scaling = SCALING_WORDS.get(adapter_from_schema(pipe.schema).scaling, "?")
    return {"table": table, "line": line,
            "data": f"training windows of {names} ({scaling}), cut before the test windows",
            "metrics": {"kind": "timeseries", "guidance_scale": chosen, "guidance_variant": variant,
                        "validation_crps_by_scale": by_scale, "series": rows, "samples": samples, "steps": steps,
                        "seconds": round(seconds, 1)}}


def measure_images(pipe, *, dataset: str, samples: int | None, root=None) -> dict:
    """Samples against the test split (digits: classifier Frechet distance); its ``write(folder)`` draws 64 of them
    to ``samples.png`` in the packed model's folder."""
    import torch

    from .adapters import adapter_from_schema, save_image_grid
    from .data import load_model_data

    grid = adapter_from_schema(pipe.schema)
    data = load_model_data(pipe.config, dataset, root)
    test_x = grid.to_state(torch.from_numpy(data.split("test").arrays()[0])).x
    n = samples or len(test_x)
    steps = pipe.config.sample.steps
    t0 = time.perf_counter()
    state = pipe.sample(n, seed=0, progress=False)
    secs = time.perf_counter() - t0
    x = state.x.clamp(-1, 1)
    shown = grid.from_state(state)[:64]

    def write(folder: Path) -> None:
        save_image_grid(shown, Path(folder) / "samples.png", value_range=grid.value_range)

    line = (f"{n:,} samples (seed 0) with the {pipe.config.sample.sampler or 'default'} sampler at {steps} steps in "
            f"{secs:.1f} s ({n / secs:.1f} images/s); 64 of them in `samples.png`")
    metrics = {"kind": "images", "samples": n, "steps": steps, "sample_seconds": round(secs, 2)}
    if dataset != "digits":
        return {"table": [f"No pinned image metric for `{dataset}` (the Frechet distance here uses the digits "
                          "classifier)."], "line": line, "data": f"`{dataset}` train split", "metrics": metrics,
                "write": write}
    from .metrics.images import classifier_fd, classifier_fd_floor, digits_classifier

    clf = digits_classifier(seed=0, root=root)
    train_x = grid.to_state(torch.from_numpy(data.split("train").arrays()[0])).x
    fd, floor = classifier_fd(x, test_x, clf)["fd"], classifier_fd_floor(train_x, test_x, clf, n)
    floor, floor_n = floor["fd"], floor["samples"]
    metrics.update(fd=fd, fd_floor_train_vs_test=floor, classifier_accuracy=clf.accuracy, test_images=len(test_x))
    table = ["| metric | value |", "|---|---:|",
             f"| Frechet distance to the test split ({len(test_x)} images), classifier features | {fd:.1f} |",
             f"| the same for {floor_n} training images (floor) | {floor:.1f} |",
             f"| classifier test accuracy (seed 0) | {clf.accuracy:.3f} |"]
    if getattr(pipe.process, "cond_dim", 0) == 10:  # class-conditional: digits asked for by class, CFG weight 1
        from .metrics.images import class_accuracy

        want = np.arange(n) % 10
        cond = torch.nn.functional.one_hot(torch.as_tensor(want), 10).float()
        xc = pipe.sample(n, seed=0, progress=False, cond=cond, guidance=1.0).x.clamp(-1, 1)
        acc, fd_c = class_accuracy(xc, want, clf), classifier_fd(xc, test_x, clf)["fd"]
        metrics.update(class_accuracy=acc, fd_conditional=fd_c, cfg_guidance=1.0)
        table += [f"| class-conditional samples (classes 0..9 in turn, guidance 1): class accuracy | {acc:.3f} |",
                  f"| the same samples: Frechet distance to the test split | {fd_c:.1f} |"]
    return {"table": table, "line": line, "data": "`digits` train split (scikit-learn's 8x8 digits)",
            "metrics": metrics, "write": write}


__all__ = ["measure_images", "measure_series", "series_members"]
