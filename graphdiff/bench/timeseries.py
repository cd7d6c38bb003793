"""``graphdiff bench run timeseries``: probabilistic forecasts of the built-in series on their rolling test windows.

Per series (entries are named after them; ``--only taylor wineind``):

* baseline rows: seasonal naive, statsmodels ETS and ARIMA (:mod:`graphdiff.forecast.baselines`) on the card's
  test windows, fitted on the card's ``baseline_history`` before each window;
* a diffusion row (the entry's ``edm-tsdiff-<series>`` preset): one unconditional model trained for ``--minutes``
  on the training windows (or loaded from ``--model DIR/<series>``), forecasting by TSDiff self-guided sampling
  (quantile variant). The guidance scale is chosen per series, as TSDiff reports it, by the lowest CRPS on the
  validation windows (the last ``min(2, test_windows)`` windows before the test part) over :data:`SCALES`;
  those windows are part of the model's training data unless ``--set holdout=true`` trains it without them
  (``dataset_options.holdout``, :class:`graphdiff.data.series_windows.SeriesWindows`), so that the scale and
  the chosen row below are picked out of sample, at the cost of the most recent training windows;
  ``--set diffusion=false`` leaves the diffusion rows out (baselines only), ``--set scales=[2.0]`` fixes the grid,
  ``--set 'variants=[quantile,mse]'`` searches both of TSDiff's self-guidance variants (each scale with each) on the
  same validation windows; a variant with ``+replace`` (``quantile+replace``) also feeds the network the context
  noised to each step's level (replacement, :mod:`graphdiff.guidance.self_guidance`), where scale 0 is replacement
  alone;
* a refinement row: the ETS sample paths refined by the path-graph model (TSDiff Sec. 3.2,
  :class:`graphdiff.forecast.diffusion.RefinedForecaster`, 20 MAP steps); ``--set refine=false`` leaves it out;
  ``--set 'ladders=[[2,0.1],[8,0.4]]'`` chooses its noise ladder (sigma_max, sigma_min in multiples of the model's
  sigma_data; default 2 to 0.1) on the validation windows;
* a "chosen" row: TSDiff's two uses of the one unconditional model, self-guided sampling and the refinement of
  ETS, compared on the validation windows; the test scores of the one with the lower validation CRPS (so no test
  window decides the choice). It needs both rows and a grid of several guidance scales (with one scale no
  validation CRPS is measured, and the row is left out);
* ``--set pooled=true``: the series of a built-in pool (:data:`POOLS`; ``monthly``: wineind, airpassengers,
  elec_equip) are forecast by one model of the pool's preset (``edm-tsdiff-monthly``), trained once per run for
  ``--minutes`` on every member's training windows (:class:`graphdiff.data.series_pool.SeriesPool`), as TSDiff
  trains one model per dataset of series (loaded from ``DIR/monthly`` with ``--model DIR``); the guidance scale
  is still chosen per series on that series' validation windows, or with ``--set scale_per=pool`` once per pool
  by the mean validation CRPS over its members (TSDiff reports one scale per dataset; the pool's three series
  give six validation windows instead of two);
* a 1-D convolution row beside it (the ``edm-tsdiff_cnn-<series>`` preset, :class:`graphdiff.nn.Conv1dDenoiser`):
  the same process, training minutes, scale selection and forecasting, with the width matched to the parameter count
  of the path-graph denoiser just trained (as ``bench run images`` matches its CNN); ``--set cnn=false`` leaves it
  out; with ``--model DIR`` it is loaded from ``DIR/<series>_cnn`` when that folder exists.

Scores (:mod:`graphdiff.metrics.forecast`): CRPS normalised by ``sum |y|`` (properscoring), mean weighted quantile
loss (levels 0.05..0.95) and MASE with the seasonal error of each window's history; ``--samples`` paths per window
(default 100). A plot of the last test window of each series (context, truth, median, 10-90% band) goes to
``<out>/plots/<series>.png`` (the refinement's: ``<series>_refined.png``).
"""

from __future__ import annotations

import time
from pathlib import Path


from ..config import merge
from ..errors import ConfigError
from .record import finish_results, header_lines, new_results, write_results

BASELINE_NAMES = ("seasonal_naive", "ets", "arima")
SCALES = (2.0, 4.0, 8.0, 16.0)
LADDERS = ((2.0, 0.1),)  # the refinement's noise ladder in multiples of sigma_data (1.0 to 0.05 at EDM's 0.5)
POOLS = ("monthly",)  # built-in series pools (graphdiff.data.series_pool) that --set pooled=true trains one model on


def validation_windows(ts) -> int:
    """How many windows before the test part the choices of a series are validated on: ``min(2, test_windows)``."""
    return min(2, ts.task.test_windows)


def validation_series(ts):
    """``ts`` cut before its test windows, with :func:`validation_windows` windows of its own to validate on."""
    from ..data.series_windows import holdout_series

    return holdout_series(ts, validation_windows(ts))


def _row(series: str, kind: str, res: dict, **extra) -> dict:
    return {"series": series, "kind": kind, "forecaster": res["forecaster"], **res["summary"],
            "seconds": res["seconds"], "task": res["task"], "windows_detail": res["windows"], **extra}


def plot_last_window(ts, res: dict, path: Path, label: str) -> str:
    """Draw the last test window of ``res`` (an :func:`evaluate_forecaster` result with ``keep_samples``): four
    horizons of context, the truth, the median and the 10-90% band."""
    from ..forecast.output import plot_forecast

    last = res["samples"][-1]
    start, h = last["start"], last["samples"].shape[1]
    ctx = ts.values[max(0, start - 4 * h):start]
    stamps = ts.timestamps
    ct = None if stamps is None else stamps[max(0, start - 4 * h):start]
    ft = None if stamps is None else stamps[start:start + h]
    plot_forecast(ctx, last["samples"], path, truth=last["target"], context_times=ct, future_times=ft,
                  title=f"{ts.name}: {label}, last test window")
    return str(path)


def cnn_preset(preset: str) -> str:
    """The 1-D convolution baseline of a path-graph preset: ``edm-tsdiff-X`` -> ``edm-tsdiff_cnn-X``."""
    return preset.replace("edm-tsdiff-", "edm-tsdiff_cnn-", 1)


def _matched(preset: str, overrides: dict, channels: int, length: int, target: int) -> dict:
    """``overrides`` with the model width whose parameter count is closest to ``target`` (windows of ``length``
    steps and ``channels`` channels)."""
    from ..config import load_preset
    from .images import match_width

    spec = {k: v for k, v in load_preset(preset, overrides).model.items() if k not in ("x_dim", "max_nodes")}
    return merge(overrides, {"model": match_width(spec, channels, length, target)})


def pool_of(series: str, pooled: bool) -> str | None:
    """The built-in pool (:data:`POOLS`) whose model forecasts ``series`` under ``--set pooled=true``, else None."""
    from ..data.series_pool import pool_members

    return next((p for p in POOLS if series in pool_members(p)), None) if pooled else None


def _diffusion(entry, ts, *, out: Path, minutes, overrides, model, samples, steps, scales, progress, root,
               preset=None, run=None, target_params=None, holdout: bool = False, variants=("quantile",),
               trained: dict | None = None, length: int | None = None, pool_scale: str | None = None,
               pool_validation: dict | None = None):
    """Self-guided forecasts of ``ts`` by the model of ``preset`` (trained, loaded from ``model``, or taken from
    ``trained[run]`` when an earlier entry of the run trained it: a pool's model serves each of its series).
    ``pool_scale``: the name of the pool whose members' validation windows choose the scale together (the mean of
    their CRPS), cached per model in ``pool_validation``; else ``ts``'s own validation windows choose it."""
    from ..forecast.diffusion import DiffusionForecaster
    from ..forecast.evaluate import evaluate_forecaster
    from ..guidance.self_guidance import variant_options
    from ..pipeline import GraphDiffusionPipeline

    preset, run = preset or entry.preset, run or ts.name
    t0 = time.perf_counter()
    if trained is not None and run in trained:
        pipe, train = trained[run]
        train = {**train, "shared": True}
    elif model is not None:
        src = Path(model) / run if (Path(model) / run).is_dir() else Path(model)
        pipe = GraphDiffusionPipeline.from_pretrained(src)
        train = {"loaded_from": str(src), "train_steps": getattr(pipe, "trained_steps", None)}
    else:
        over = merge(overrides, {"train": {"ckpt_every": 0}})
        if holdout:  # the validation windows stay out of training: the scale is chosen out of sample
            over = merge(over, {"dataset_options": {"holdout": validation_windows(ts)}})
        if target_params:  # equal parameters: the baseline's width is matched to the path-graph denoiser
            task = ts.task
            over = _matched(preset, over, ts.values.shape[1], length or task.context_length + task.prediction_length,
                            target_params)
        pipe = GraphDiffusionPipeline.fit(None, preset=preset, out=out / "runs" / run, overrides=over,
                                          max_minutes=minutes, root=root, progress=progress, overwrite=True)
        train = {"minutes": minutes, "train_steps": int(pipe.summary["steps"]),
                 "final_loss": pipe.summary.get("loss"), "holdout_windows": validation_windows(ts) if holdout else 0}
    if "train_seconds" not in train:
        train["train_seconds"] = round(time.perf_counter() - t0, 1)
    if trained is not None:
        trained.setdefault(run, (pipe, train))
    grid = [(v, s) for v in variants for s in scales]
    (variant, chosen), val_crps, judge, pool_extra = grid[0], {}, {}, {}
    if len(grid) > 1:
        if pool_scale:  # one scale for the pool, as TSDiff reports one per dataset: every member's windows judge
            from ..data.series import load_builtin
            from ..data.series_pool import pool_members

            key, cache = (run, tuple(grid)), pool_validation if pool_validation is not None else {}
            if key not in cache:
                cache[key] = {m: _validation_crps(pipe, ts if m == ts.name else load_builtin(m), grid, variants,
                                                  steps, samples) for m in pool_members(pool_scale)}
            by_series = cache[key]
            val_crps = by_series[ts.name]
            judge = {k: round(sum(v[k] for v in by_series.values()) / len(by_series), 5) for k in val_crps}
            pool_extra = {"scale_per": "pool", "validation_crps_pool_mean": judge,
                          "validation_series": list(by_series)}
        else:
            val_crps = judge = _validation_crps(pipe, ts, grid, variants, steps, samples)
        variant, chosen = grid[list(judge.values()).index(min(judge.values()))]
    fc = DiffusionForecaster(pipe, scale=chosen, steps=steps, **variant_options(variant))
    res = evaluate_forecaster(fc, ts, num_samples=samples, keep_samples=True)
    params = sum(p.numel() for p in pipe.denoiser.parameters())
    return res, {"preset": preset, "network": pipe.config.model["name"], "guidance_scale": chosen,
                 "guidance_variant": variant, "validation_key": _choice_key(variant, chosen, variants),
                 "validation_crps_by_scale": val_crps,
                 "network_calls_per_sample": fc.last_cost.get("network_calls_per_sample"),
                 "sampling_steps": steps or pipe.config.sample.steps, "parameters": params, **pool_extra, **train}, pipe


def _validation_crps(pipe, ts, grid, variants, steps, samples) -> dict:
    """CRPS on ``ts``'s validation windows of each (variant, scale) of ``grid``, keyed by :func:`_choice_key`."""
    from ..forecast.diffusion import DiffusionForecaster
    from ..forecast.evaluate import evaluate_forecaster
    from ..guidance.self_guidance import variant_options

    val, out = validation_series(ts), {}
    for v, s in grid:
        fc = DiffusionForecaster(pipe, scale=s, steps=steps, **variant_options(v))
        r = evaluate_forecaster(fc, val, num_samples=samples)
        out[_choice_key(v, s, variants)] = round(r["summary"]["crps"], 5)
    return out


def _choice_key(variant: str, scale: float, variants) -> float | str:
    """Key of a (variant, scale) pair in ``validation_crps_by_scale``: the scale alone when one variant is searched
    (as before variants were), else ``"variant scale"``."""
    return scale if len(variants) == 1 else f"{variant} {scale:g}"


def _refined(pipe, ts, *, samples: int, base: str = "ets", iterations: int = 20, ladders=LADDERS):
    """The refinement row: ``base``'s sample paths refined by the trained path-graph model (TSDiff Sec. 3.2), with
    its CRPS on the validation windows. ``ladders``: noise ladders ``(sigma_max, sigma_min)`` in multiples of the
    model's ``sigma_data``; with several, the one with the lowest validation CRPS refines the test windows."""
    from ..forecast.diffusion import RefinedForecaster
    from ..forecast.evaluate import evaluate_forecaster

    sd = float(getattr(pipe.process, "sigma_data", 0.5))
    val_by, fcs = {}, {}
    for hi, lo in ladders:
        key = f"{hi:g} to {lo:g}"
        fcs[key] = RefinedForecaster(pipe, base=base, iterations=iterations, sigma_max=hi * sd, sigma_min=lo * sd)
        val = evaluate_forecaster(fcs[key], validation_series(ts), num_samples=samples)["summary"]["crps"]
        val_by[key] = round(val, 5)
    key = min(val_by, key=val_by.get)
    fc = fcs[key]
    res = evaluate_forecaster(fc, ts, num_samples=samples, keep_samples=True)
    if len(val_by) > 1:
        res["forecaster"] += f", ladder {key} sigma_data"
    return res, {"network": pipe.config.model["name"], "refines": base, "iterations": iterations,
                 "validation_crps": val_by[key], "ladder_sigma_data": key,
                 "ladder": [round(fc.sigma_max, 6), round(fc.sigma_min, 6)],
                 "validation_crps_by_ladder": val_by if len(val_by) > 1 else {},
                 "network_calls_per_sample": fc.last_cost.get("network_calls_per_sample"),
                 "parameters": sum(p.numel() for p in pipe.denoiser.parameters())}


def chosen_row(guided: dict, refined: dict) -> dict | None:
    """The row of whichever of the self-guided and the refinement rows of one series has the lower validation CRPS
    (the self-guided one's at its chosen scale); its test scores are that row's. ``None`` when the self-guided row
    has no validation CRPS (a single guidance scale, so none was measured)."""
    val_g = guided["validation_crps_by_scale"].get(guided.get("validation_key", guided["guidance_scale"]))
    val_r = refined["validation_crps"]
    if val_g is None:
        return None
    pick = refined if val_r < val_g else guided
    variant = f"{guided['guidance_variant']}, " if guided.get("guidance_variant", "quantile") != "quantile" else ""
    which = "refinement of ETS" if pick is refined else f"self-guided ({variant}scale {guided['guidance_scale']:g})"
    keep = ("series", "crps", "wql", "mase", "windows", "task", "seconds", "network", "parameters", "train_steps",
            "minutes", "network_calls_per_sample", "pool")
    return {**{k: pick[k] for k in keep if k in pick}, "kind": "chosen", "forecaster": f"TSDiff, chosen: {which}",
            "choice": "refinement" if pick is refined else "self-guided",
            "validation_crps": {"self-guided": val_g, "refinement": val_r}}


def run_timeseries(suite, *, out, minutes: float | None = None, samples: int | None = None,
                   overrides: dict | None = None, model=None, root=None, only=None, progress: bool = False,
                   command: str | None = None, steps=None, **_ignored) -> dict:
    """Baseline and diffusion rows for every entry (module docstring); writes ``results.json`` and ``results.md``."""
    from ..data.series import load_builtin
    from ..forecast.baselines import fallbacks, get_forecaster
    from ..forecast.evaluate import evaluate_forecaster

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    over = dict(overrides or {})
    with_diffusion = bool(over.pop("diffusion", True))
    with_cnn = bool(over.pop("cnn", True)) and with_diffusion
    with_refine = bool(over.pop("refine", True)) and with_diffusion
    scales = tuple(float(s) for s in over.pop("scales", SCALES))
    variants = tuple(over.pop("variants", ("quantile",)))
    from ..guidance.self_guidance import VARIANT_SPECS

    if not variants or any(v not in VARIANT_SPECS for v in variants) or len(set(variants)) < len(variants):
        raise ConfigError(f"--set variants: a list of distinct self-guidance variants out of "
                          f"{list(VARIANT_SPECS)}, got {list(variants)}")
    try:
        ladders = tuple((float(hi), float(lo)) for hi, lo in over.pop("ladders", LADDERS))
    except (TypeError, ValueError):
        ladders = ()
    if not ladders or any(not 0 < lo <= hi for hi, lo in ladders):
        raise ConfigError("--set ladders: a list of [sigma_max, sigma_min] pairs in multiples of sigma_data, "
                          "0 < sigma_min <= sigma_max, e.g. '[[2,0.1],[8,0.4]]'")
    if not scales or any(s < 0 for s in scales) or (0 in scales and not all("+replace" in v for v in variants)):
        raise ConfigError(f"--set scales: a list of guidance scales, positive (0, no guidance, only with +replace "
                          f"variants), got {list(scales)}")
    holdout = bool(over.pop("holdout", False))
    pooled = bool(over.pop("pooled", False))
    scale_per = str(over.pop("scale_per", "series"))
    if scale_per not in ("series", "pool"):
        raise ConfigError(f"--set scale_per: 'series' (each series' validation windows choose its scale) or 'pool' "
                          f"(with pooled=true, the pool's members choose one scale together), got {scale_per!r}")
    if scale_per == "pool" and not pooled:
        raise ConfigError("--set scale_per=pool chooses one scale per pool: it needs --set pooled=true")
    if holdout and model is not None:
        raise ConfigError("--set holdout=true trains the models without the validation windows; it does not apply "
                          "to models loaded with --model")
    n = int(samples or 100)
    names = [e.name for e in suite.entries]
    for o in only or ():
        if o not in names:
            raise ConfigError(f"--only {o!r} is not an entry of suite timeseries; entries: {', '.join(names)}")
    step = (steps or [None])[0]
    settings = {"samples": n, "minutes": minutes, "steps": step, "diffusion": with_diffusion, "cnn": with_cnn,
                "refine": with_refine, "holdout": holdout, "pooled": pooled, "scale_per": scale_per,
                "scales": list(scales), "variants": list(variants), "ladders": [list(v) for v in ladders],
                "overrides": over,
                "model": None if model is None else str(model),
                "only": list(only or [])}
    results = new_results(suite, command or "graphdiff bench run timeseries", settings)
    t_start = time.time()
    trained: dict = {}  # run name -> (pipeline, training record): a pool's models are trained once per run
    pool_validation: dict = {}  # (run, grid) -> {member: validation CRPS by scale} with scale_per=pool
    for entry in suite.entries:
        if only and entry.name not in only:
            continue
        ts = load_builtin(entry.name)
        print(f"== timeseries: {ts.name} ({len(ts)} points, H {ts.task.prediction_length}, "
              f"{ts.task.test_windows} test windows)", flush=True)
        best = None
        for b in BASELINE_NAMES:
            res = evaluate_forecaster(get_forecaster(b), ts, num_samples=n, keep_samples=True)
            results["rows"].append(_row(ts.name, "baseline", res))
            print(f"  {b}: CRPS {res['summary']['crps']:.4f}, MASE {res['summary']['mase']:.3f} "
                  f"({res['seconds']}s)", flush=True)
            if b == "ets":
                best = (res, "ETS", results["rows"][-1])
        if with_diffusion:
            pool = pool_of(ts.name, pooled)
            kw = dict(out=out, minutes=minutes if minutes is not None else entry.minutes, overrides=over, model=model,
                      samples=n, steps=step, scales=scales, progress=progress, root=root, holdout=holdout,
                      variants=variants, trained=trained, length=_pool_length(pool),
                      pool_scale=pool if scale_per == "pool" else None, pool_validation=pool_validation)
            preset, run = (f"edm-tsdiff-{pool}", pool) if pool else (entry.preset, ts.name)
            res, extra, pipe = _diffusion(entry, ts, preset=preset, run=run, **kw)
            if pool:
                extra["pool"] = pool
            results["rows"].append(_row(ts.name, "diffusion", res, **extra))
            best = (res, f"self-guided diffusion ({extra['guidance_variant']}, scale {extra['guidance_scale']:g})",
                    results["rows"][-1])
            print(f"  diffusion ({extra['network']}, {extra['parameters']:,} parameters): CRPS "
                  f"{res['summary']['crps']:.4f}, MASE {res['summary']['mase']:.3f}, scale "
                  f"{extra['guidance_scale']:g}, {extra['guidance_variant']} ({res['seconds']}s sampling)", flush=True)
            if with_cnn and (model is None or (Path(model) / f"{run}_cnn").is_dir()):
                res_c, extra_c, _ = _diffusion(entry, ts, preset=cnn_preset(preset), run=f"{run}_cnn",
                                               target_params=extra["parameters"], **kw)
                if pool:
                    extra_c["pool"] = pool
                row = _row(ts.name, "diffusion", res_c, **extra_c)
                row["plot"] = plot_last_window(ts, res_c, out / "plots" / f"{ts.name}_cnn.png",
                                    f"1-D CNN self-guided diffusion (scale {extra_c['guidance_scale']:g})")
                results["rows"].append(row)
                print(f"  diffusion ({extra_c['network']}, {extra_c['parameters']:,} parameters): CRPS "
                      f"{res_c['summary']['crps']:.4f}, MASE {res_c['summary']['mase']:.3f}, scale "
                      f"{extra_c['guidance_scale']:g} ({res_c['seconds']}s sampling)", flush=True)
            if with_refine:  # TSDiff's refinement of the ETS paths by the path-graph model
                res_r, extra_r = _refined(pipe, ts, samples=n, ladders=ladders)
                if pool:
                    extra_r["pool"] = pool
                row = _row(ts.name, "refinement", res_r, **extra_r)
                row["plot"] = plot_last_window(ts, res_r, out / "plots" / f"{ts.name}_refined.png",
                                    "ETS paths refined by the path-graph model")
                results["rows"].append(row)
                print(f"  refinement of ETS: CRPS {res_r['summary']['crps']:.4f}, MASE {res_r['summary']['mase']:.3f} "
                      f"({res_r['seconds']}s)", flush=True)
                guided = next(r for r in results["rows"] if r["series"] == ts.name and r["kind"] == "diffusion")
                chosen = chosen_row(guided, row)
                if chosen is not None:
                    results["rows"].append(chosen)
                    print(f"  chosen on validation: {chosen['choice']}", flush=True)
        best[2]["plot"] = plot_last_window(ts, best[0], out / "plots" / f"{ts.name}.png", best[1])
        results["baseline_fallbacks"] = fallbacks()
        _write(out, results)
    return finish_results(out, results, markdown, t_start)


def _pool_length(pool: str | None) -> int | None:
    """Window length (context + prediction) of a pool's model, from its card."""
    if pool is None:
        return None
    from ..data.base import load_card

    split = load_card(pool)["split"]
    return int(split["context_length"]) + int(split["prediction_length"])


def network_label(r: dict) -> str:
    """How a diffusion row's network is named in the tables: ``path graph``, ``1-D CNN``, ``(pool monthly)``."""
    net = {"grid_mpnn": "path graph", "cnn1d": "1-D CNN"}.get(r.get("network", "grid_mpnn"), r.get("network"))
    return net + (f" (pool {r['pool']})" if r.get("pool") else "")


def markdown(results: dict) -> str:
    lines = header_lines(results)
    lines += ["| series | forecaster | network | parameters | CRPS (normalised) | mean wQL | MASE | windows x H | "
              "guidance scale | seconds |", "|---|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results["rows"]:
        diff = r["kind"] in ("diffusion", "refinement", "chosen")
        scale = f"{r['guidance_scale']:g}" if "guidance_scale" in r else ""
        params = f"{r['parameters']:,}" if r.get("parameters") else ""
        lines.append(f"| {r['series']} | {r['forecaster']} | {network_label(r) if diff else ''} | {params} | "
                     f"{r['crps']:.4f} | {r['wql']:.4f} | {r['mase']:.3f} | {r['windows']} x "
                     f"{r['task']['prediction_length']} | {scale} | {r['seconds']} |")
    diff = [r for r in results["rows"] if r["kind"] in ("diffusion", "refinement", "chosen")]
    if diff:
        lines += ["", "| series | network | parameters | diffusion CRPS | x seasonal naive | x ETS | x ARIMA | "
                  "x path graph | train minutes | train steps | network calls per sample |",
                  "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for d in diff:
            base = {r["forecaster"]: r["crps"] for r in results["rows"] if r["series"] == d["series"]
                    and r["kind"] == "baseline"}
            ratio = [f"{d['crps'] / base[b]:.2f}" if base.get(b) else "-" for b in BASELINE_NAMES]
            graph = [r for r in diff if r["series"] == d["series"] and r.get("network", "grid_mpnn") == "grid_mpnn"
                     and r["kind"] == "diffusion"]
            vs = f"{d['crps'] / graph[0]['crps']:.2f}" if graph and graph[0]["crps"] else "-"
            net = network_label(d) + (f", refining {d['refines']}" if d["kind"] == "refinement" else "")
            net += f", chosen: {d['choice']}" if d["kind"] == "chosen" else ""
            lines.append(f"| {d['series']} | {net} | {d.get('parameters') or 0:,} | {d['crps']:.4f} | "
                         f"{' | '.join(ratio)} | {vs} | {d.get('minutes', '')} | {d.get('train_steps')} | "
                         f"{d.get('network_calls_per_sample')} |")
    s = results["settings"]
    lines += ["", f"{s['samples']} sample paths per window; CRPS = sum of properscoring's ensemble CRPS / sum |y| "
              "over every test point; wQL over the levels 0.05..0.95; MASE with the seasonal error of each window's "
              "history. Point forecasts (seasonal naive) have CRPS = normalised absolute error. Networks: the "
              "path-graph message-passing denoiser (grid_mpnn) and its dilated 1-D convolution baseline (cnn1d), each "
              "trained for the same minutes, the CNN's width matched to the graph denoiser's parameter count."]
    if s.get("holdout"):
        lines.append("The diffusion models were trained without the validation windows (`--set holdout=true`): "
                     "guidance scales and the chosen rows were picked out of sample.")
    if s.get("pooled"):
        from ..data.series_pool import pool_members

        pools = "; ".join(f"{p}: {', '.join(pool_members(p))}" for p in POOLS)
        lines.append(f"`--set pooled=true`: the series of a pool ({pools}) were forecast by one model trained for the "
                     "run's minutes on the pool's training windows (each series' own training part, at the pool's "
                     "context length), as TSDiff trains one model per dataset of series; the other series by their "
                     "own models." + (" One guidance scale per pool (`--set scale_per=pool`): the one with the "
                                      "lowest mean validation CRPS over the pool's series." if s.get("scale_per") ==
                                      "pool" else ""))
    if results.get("baseline_fallbacks"):
        lines.append(f"Baseline fits that fell back to seasonal naive: {results['baseline_fallbacks']}.")
    return "\n".join(lines) + "\n"


def _write(out: Path, results: dict) -> None:
    write_results(out, results, markdown(results))


__all__ = ["run_timeseries", "markdown", "chosen_row", "cnn_preset", "validation_series", "validation_windows",
           "pool_of", "SCALES", "BASELINE_NAMES", "POOLS"]
