"""``graphdiff bench run timeseries``: the suite's windows, its baseline rows and its results files."""

import importlib.util
import json

import numpy as np
import pytest

from graphdiff.bench.suites import SUITES
from graphdiff.bench.timeseries import validation_series
from graphdiff.cli import main
from graphdiff.data.series import ForecastTask, TimeSeries, evaluation_windows, list_series

# the series are read from the pmdarima wheel's files (without importing it: its import takes seconds)
WHEEL_DATA = pytest.mark.skipif(importlib.util.find_spec("pmdarima") is None, reason="pmdarima not installed")


def test_validation_windows_lie_before_the_test_windows():
    ts = TimeSeries("ramp", np.arange(100.0), "D", task=ForecastTask(5, 10, 3, 7))
    val = validation_series(ts)
    assert len(val) == 85 and val.task.test_windows == 2
    assert [w.start for w in evaluation_windows(val)] == [75, 80]
    assert evaluation_windows(ts)[0].start == 85


def test_holdout_keeps_the_validation_windows_out_of_training():
    """``SeriesWindows(holdout=k)``: no training window reaches into the last k prediction lengths before the test
    part, and those windows are the val split, the same as the bench's validation windows."""
    from graphdiff.data.series_windows import SeriesWindows

    ts = TimeSeries("ramp", np.arange(100.0), "D", task=ForecastTask(5, 10, 3, 7))
    plain, held = SeriesWindows(ts), SeriesWindows(ts, holdout=2)
    assert held.split_sizes()["val"] == 2 and plain.split_sizes()["val"] == 0
    assert plain.windows["train"][:, -1].max() == 84 and held.windows["train"][:, -1].max() == 74  # ends at 85 / 75
    val = validation_series(ts)
    expect = [ts.values[w.start - 10:w.start + 5, 0] for w in evaluation_windows(val)]
    assert np.array_equal(held.windows["val"][:, :, 0], np.stack(expect))
    assert held.info["holdout"] == 2
    with pytest.raises(Exception, match="holdout must be an integer >= 0"):
        SeriesWindows(ts, holdout=-1)


def _wineind(hidden: int, levels: int, max_steps: int):
    """The wineind entry, its series and overrides for a tiny path-graph model trained ``max_steps`` steps."""
    from graphdiff.data.series import load_builtin

    entry = next(e for e in SUITES["timeseries"].entries if e.name == "wineind")
    over = {"model": {"hidden": hidden, "levels": levels, "blocks": 1},
            "train": {"max_steps": max_steps, "batch_size": 8, "warmup_steps": 0, "log_every": 1}}
    return entry, load_builtin("wineind"), over


@WHEEL_DATA
def test_bench_holdout_trains_without_the_validation_windows(tmp_path):
    from graphdiff.bench.timeseries import _diffusion

    entry, ts, over = _wineind(8, 1, 1)
    _, extra, pipe = _diffusion(entry, ts, out=tmp_path, minutes=1.0, overrides=over, model=None, samples=2,
                                steps=2, scales=(2.0,), progress=False, root=None, holdout=True)
    assert extra["holdout_windows"] == 2 and pipe.config.dataset_options["holdout"] == 2
    cfg = json.loads((tmp_path / "runs" / "wineind" / "checkpoint" / "config.json").read_text())
    assert cfg["dataset_options"]["holdout"] == 2
    assert main(["bench", "run", "timeseries", "--only", "wineind", "--model", str(tmp_path / "runs"), "--set",
                 "holdout=true", "--out", str(tmp_path / "x"), "--quiet"]) == 2


def test_suite_entries_are_the_series_with_presets_named_after_the_process():
    suite = SUITES["timeseries"]
    assert [e.name for e in suite.entries] == ["taylor", "wineind", "airpassengers", "sunspots", "msft",
                                               "elec_equip", "co2", "ausbeer", "woolyrnq"]
    assert all(e.preset == f"edm-tsdiff-{e.name}" for e in suite.entries)
    assert {e.name for e in suite.entries} == set(list_series())  # every built-in series is in the suite


@WHEEL_DATA
def test_baseline_rows_of_one_series(tmp_path, capsys):
    out = tmp_path / "ts"
    rc = main(["bench", "run", "timeseries", "--only", "airpassengers", "--set", "diffusion=false", "--samples",
               "8", "--out", str(out), "--quiet"])
    assert rc == 0
    res = json.loads((out / "results.json").read_text())
    rows = {r["forecaster"]: r for r in res["rows"]}
    assert set(rows) == {"seasonal_naive", "ets", "arima"} and res["settings"]["diffusion"] is False
    # seasonal naive is a point forecast: its CRPS is the normalised absolute error
    assert rows["seasonal_naive"]["crps"] == pytest.approx(rows["seasonal_naive"]["nd"])
    assert rows["ets"]["crps"] < rows["seasonal_naive"]["crps"]  # the trend of the series is caught
    assert all(r["windows"] == 2 and r["task"]["prediction_length"] == 12 for r in res["rows"])
    md = (out / "results.md").read_text()
    assert "| airpassengers | ets |" in md and "load average" in md
    assert (out / "plots" / "airpassengers.png").read_bytes()[:4] == b"\x89PNG"


@WHEEL_DATA
def test_cnn_rows_sit_beside_the_path_graph_rows_at_equal_parameters(tmp_path):
    from graphdiff.bench.record import machine
    from graphdiff.bench.timeseries import _diffusion, cnn_preset, markdown

    entry, ts, over = _wineind(16, 2, 3)
    kw = dict(out=tmp_path, minutes=1.0, overrides=over, model=None, samples=4, steps=2, scales=(2.0,),
              progress=False, root=None)
    rows, pipes = [], []
    for preset, run, target in ((entry.preset, "wineind", None), (cnn_preset(entry.preset), "wineind_cnn", True)):
        res, extra, pipe = _diffusion(entry, ts, preset=preset, run=run,
                                      target_params=rows[0]["parameters"] if target else None, **kw)
        rows.append({"series": "wineind", "kind": "diffusion", "forecaster": res["forecaster"], **res["summary"],
                     "seconds": res["seconds"], "task": res["task"], **extra})
        pipes.append(pipe)
    grid, cnn = rows
    assert (grid["network"], cnn["network"]) == ("grid_mpnn", "cnn1d")
    assert cnn["preset"] == "edm-tsdiff_cnn-wineind" and (tmp_path / "runs" / "wineind_cnn").is_dir()
    assert abs(cnn["parameters"] - grid["parameters"]) / grid["parameters"] < 0.1
    assert grid["train_steps"] == cnn["train_steps"] == 3 and 0 < cnn["crps"] < 10
    md = markdown({"suite": "timeseries", "description": "", "command": "c", "machine": machine(), "rows": rows,
                   "started": "now", "settings": {"samples": 4}})
    assert f"| wineind | 1-D CNN | {cnn['parameters']:,} |" in md
    assert f"| wineind | path graph | {grid['parameters']:,} |" in md
    assert f"| {cnn['crps'] / grid['crps']:.2f} |" in md  # the CNN's CRPS over the path graph's


def test_the_refinement_row_refines_the_ets_paths_with_the_trained_model(tmp_path):
    """TSDiff's refinement of ETS's sample paths: rows of their own, costed, beside the ETS row in the ratio
    table; with no refinement step budget the refined paths keep the base forecast's shape (the context pins it)."""
    import numpy as np

    from graphdiff.bench.record import machine
    from graphdiff.bench.timeseries import _diffusion, _refined, markdown
    from graphdiff.data.series import load_builtin
    from graphdiff.forecast.baselines import get_forecaster
    from graphdiff.forecast.diffusion import RefinedForecaster

    entry = next(e for e in SUITES["timeseries"].entries if e.name == "wineind")
    ts = load_builtin("wineind")
    over = {"model": {"hidden": 16, "levels": 2, "blocks": 1},
            "train": {"max_steps": 3, "batch_size": 8, "warmup_steps": 0, "log_every": 1}}
    _, _, pipe = _diffusion(entry, ts, out=tmp_path, minutes=1.0, overrides=over, model=None, samples=4, steps=2,
                            scales=(2.0,), progress=False, root=None)
    res, extra = _refined(pipe, ts, samples=4, iterations=2)
    assert extra["refines"] == "ets" and extra["network_calls_per_sample"] == 2  # one call per refinement step
    assert "refinement of ets" in res["forecaster"] and 0 < res["summary"]["crps"] < 10
    hist, h = ts.values[:-12], 12
    tiny = RefinedForecaster(pipe, base="ets", iterations=1, step_size=1e-9)
    base = get_forecaster("ets")(hist, h, season=12, num_samples=3, seed=0)
    assert np.allclose(tiny(hist, h, season=12, num_samples=3, seed=0), base, rtol=1e-4, atol=1e-3)
    rows = [{"series": "wineind", "kind": "baseline", "forecaster": "ets", "crps": 0.05, "wql": 0.05, "mase": 1.0,
             "windows": 2, "task": {"prediction_length": 12}, "seconds": 0.1},
            {"series": "wineind", "kind": "refinement", **res["summary"], "forecaster": res["forecaster"],
             "seconds": res["seconds"], "task": res["task"], **extra}]
    md = markdown({"suite": "timeseries", "description": "", "command": "c", "machine": machine(), "rows": rows,
                   "started": "now", "settings": {"samples": 4}})
    assert "path graph, refining ets" in md and f"| {res['summary']['crps'] / 0.05:.2f} |" in md
    # the chosen row: whichever of self-guided and refined has the lower validation CRPS, with its test scores
    assert extra["validation_crps"] > 0
    from graphdiff.bench.timeseries import chosen_row

    guided = {**rows[0], "kind": "diffusion", "forecaster": "tsdiff", "crps": 0.04, "guidance_scale": 4.0,
              "network": "grid_mpnn", "validation_crps_by_scale": {2.0: 0.01, 4.0: 2 * extra["validation_crps"]}}
    pick = chosen_row(guided, rows[1])
    assert pick["choice"] == "refinement" and pick["crps"] == res["summary"]["crps"] and pick["kind"] == "chosen"
    guided["validation_crps_by_scale"][4.0] = extra["validation_crps"] / 2
    pick = chosen_row(guided, rows[1])
    assert pick["choice"] == "self-guided" and pick["crps"] == 0.04 and "scale 4" in pick["forecaster"]
    md = markdown({"suite": "timeseries", "description": "", "command": "c", "machine": machine(),
                   "rows": rows + [pick], "started": "now", "settings": {"samples": 4}})
    assert "chosen: self-guided" in md
    guided["validation_crps_by_scale"] = {}  # one scale: nothing measured on validation, no choice
    assert chosen_row(guided, rows[1]) is None


@WHEEL_DATA
def test_variants_and_scales_are_chosen_together_on_the_validation_windows(tmp_path, capsys):
    from graphdiff.bench.timeseries import _diffusion, _refined, chosen_row

    entry, ts, over = _wineind(8, 1, 1)
    res, extra, pipe = _diffusion(entry, ts, out=tmp_path, minutes=1.0, overrides=over, model=None, samples=2,
                               steps=2, scales=(2.0, 8.0), progress=False, root=None,
                               variants=("quantile", "mse", "quantile+replace"))
    val = extra["validation_crps_by_scale"]
    assert set(val) == {"quantile 2", "quantile 8", "mse 2", "mse 8", "quantile+replace 2", "quantile+replace 8"}
    assert len(set(val.values())) > 1  # the variants forecast differently
    best = min(val, key=val.get)
    assert extra["validation_key"] == best == f"{extra['guidance_variant']} {extra['guidance_scale']:g}"
    variant, _, replace = extra["guidance_variant"].partition("+")
    assert f"self-guidance {variant}, scale {extra['guidance_scale']:g}" in res["forecaster"]
    assert ("replacement" in res["forecaster"]) == (replace == "replace")
    refined = {"validation_crps": 10.0, "crps": 1.0, "series": "wineind", "forecaster": "r"}
    guided = {**extra, "series": "wineind", "crps": 0.5, "forecaster": res["forecaster"]}
    assert chosen_row(guided, refined)["validation_crps"]["self-guided"] == val[best]
    # the refinement's noise ladder, in multiples of sigma_data, chosen on the same validation windows
    _, ref = _refined(pipe, ts, samples=2, iterations=1, ladders=((2.0, 0.1), (8.0, 0.4)))
    by = ref["validation_crps_by_ladder"]
    assert set(by) == {"2 to 0.1", "8 to 0.4"} and ref["ladder_sigma_data"] == min(by, key=by.get)
    hi, lo = map(float, ref["ladder_sigma_data"].split(" to "))
    assert ref["ladder"] == pytest.approx([hi * 0.5, lo * 0.5])  # the preset's sigma_data is 0.5
    for bad in ("variants=[l1]", "variants=[mse,mse]", "variants=[mse+paste]", "scales=[0]", "ladders=[[0.1,2]]",
                "ladders=[3]"):
        assert main(["bench", "run", "timeseries", "--only", "wineind", "--set", bad, "--out",
                     str(tmp_path / "x"), "--quiet"]) == 2
        err = capsys.readouterr().err.strip()
        last = err.splitlines()[-1]
        assert "Traceback" not in err and last.startswith("error: --set ") and bad.split("=")[0] in last


@WHEEL_DATA
def test_pooled_trains_one_monthly_model_that_forecasts_each_member(tmp_path):
    """``--set pooled=true``: the monthly series share one model of ``edm-tsdiff-monthly`` trained once on the
    pooled windows; a series outside the pool keeps its own; ``--model`` loads the pool's folder."""
    out = tmp_path / "p"
    args = ["bench", "run", "timeseries", "--only", "wineind", "airpassengers", "--samples", "2", "--steps", "2",
            "--set", "pooled=true", "--set", "cnn=false", "--set", "refine=false", "--set", "scales=[2.0]",
            "--set", "model.hidden=8", "--set", "model.levels=1", "--set", "model.blocks=1",
            "--set", "train.max_steps=2", "--set", "train.batch_size=8", "--set", "train.warmup_steps=0",
            "--quiet"]
    assert main(args + ["--out", str(out)]) == 0
    res = json.loads((out / "results.json").read_text())
    rows = [r for r in res["rows"] if r["kind"] == "diffusion"]
    assert [(r["series"], r["pool"], r["preset"]) for r in rows] == [
        ("wineind", "monthly", "edm-tsdiff-monthly"), ("airpassengers", "monthly", "edm-tsdiff-monthly")]
    assert sorted(p.name for p in (out / "runs").iterdir()) == ["monthly"]  # trained once
    assert "shared" not in rows[0] and rows[1]["shared"] is True and rows[0]["train_steps"] == 2
    cfg = json.loads((out / "runs" / "monthly" / "checkpoint" / "config.json").read_text())
    assert cfg["dataset"] == "monthly"
    md = (out / "results.md").read_text()
    assert "| wineind | path graph (pool monthly) |" in md and "`--set pooled=true`" in md
    loaded = tmp_path / "q"
    assert main(args + ["--model", str(out / "runs"), "--out", str(loaded)]) == 0
    again = [r for r in json.loads((loaded / "results.json").read_text())["rows"] if r["kind"] == "diffusion"]
    assert [r["loaded_from"] for r in again] == [str(out / "runs" / "monthly")] * 2
    assert again[0]["crps"] == pytest.approx(rows[0]["crps"])  # the same model, the same seeds
    # one scale per pool: the mean validation CRPS over the pool's three series chooses it for each member
    one = tmp_path / "r"
    pool_args = [a if a != "scales=[2.0]" else "scales=[2.0,8.0]" for a in args]
    assert main(pool_args + ["--model", str(out / "runs"), "--set", "scale_per=pool", "--out", str(one)]) == 0
    res = json.loads((one / "results.json").read_text())
    pooled = [r for r in res["rows"] if r["kind"] == "diffusion"]
    assert res["settings"]["scale_per"] == "pool" and len({r["guidance_scale"] for r in pooled}) == 1
    for r in pooled:
        assert r["validation_series"] == ["wineind", "airpassengers", "elec_equip"] and r["scale_per"] == "pool"
        mean = r["validation_crps_pool_mean"]
        assert r["guidance_scale"] == float(min(mean, key=mean.get))
    assert pooled[0]["validation_crps_pool_mean"] == pooled[1]["validation_crps_pool_mean"]
    assert "One guidance scale per pool" in (one / "results.md").read_text()
    assert main(args[:-1] + ["--set", "scale_per=pool", "--set", "pooled=false", "--out", str(one), "--quiet"]) == 2


@WHEEL_DATA
def test_std_scaling_is_a_dataset_option_the_saved_model_forecasts_with(tmp_path):
    from graphdiff.adapters import adapter_from_schema
    from graphdiff.bench.timeseries import _diffusion
    from graphdiff.pipeline import GraphDiffusionPipeline

    entry, ts, over = _wineind(8, 1, 1)
    over["dataset_options"] = {"scaling": "std"}
    res, extra, pipe = _diffusion(entry, ts, out=tmp_path, minutes=1.0, overrides=over, model=None, samples=2,
                                  steps=2, scales=(2.0,), progress=False, root=None)
    loaded = GraphDiffusionPipeline.from_pretrained(tmp_path / "runs" / "wineind")
    assert adapter_from_schema(loaded.schema).scaling == "std" and loaded.config.dataset_options["scaling"] == "std"
    paths = res["samples"][-1]["samples"]
    # forecasts are in the data's units: wine sales in the tens of thousands, not standardised values near 0
    assert np.isfinite(paths).all() and np.median(paths) > 1000


# ---- bench compare over repeated runs --------------------------------------------------------------------------
def _results(rows, seed=0):
    return {"suite": "timeseries", "command": "graphdiff bench run timeseries", "wall_minutes": 1.0,
            "settings": {"overrides": {"train": {"seed": seed}}}, "rows": rows}


def _table(text):
    """``{(series, forecaster): cells}`` of a compare table."""
    out = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if line.startswith("| ") and len(cells) > 3 and cells[0] not in ("series",):
            out[(cells[0], cells[1])] = cells[2:]
    return out


def test_compare_averages_repeated_runs_and_counts_wins_against_ets():
    from graphdiff.bench.timeseries_compare import compare_timeseries

    def rows(sg, ets):
        return [{"series": "s", "kind": "baseline", "forecaster": "ets", "crps": ets},
                {"series": "s", "kind": "diffusion", "network": "grid_mpnn", "forecaster": "diffusion(scale 8)",
                 "crps": sg}]

    text = compare_timeseries([("a", _results(rows(0.9, 1.0))), ("b", _results(rows(1.3, 1.0), seed=1))])
    cells = _table(text)[("s", "self-guided (path graph)")]
    assert cells[:5] == ["0.9000", "1.3000", "1.1000", f"{np.std([0.9, 1.3], ddof=1):.4f}", "1.10"]
    assert cells[5] == "1 of 2"  # below ETS in one run, above it on the mean
    assert "- self-guided (path graph): 0 of 1" in text and "training seed 1" in text
    text = compare_timeseries([("a", _results(rows(0.9, 1.0))), ("b", _results(rows(1.0, 1.05)))])
    assert "- self-guided (path graph): 1 of 1 (s)" in text


def test_compare_reads_committed_timeseries_runs_as_the_files_hold_them(capsys):
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2] / "benchmarks" / "results"
    a, b = repo / "timeseries-cpu-chosen", repo / "timeseries-cpu-refine"
    assert main(["bench", "compare", str(a), str(b)]) == 0
    table = _table(capsys.readouterr().out)
    ra, rb = (json.loads((d / "results.json").read_text())["rows"] for d in (a, b))
    for series in ("taylor", "sunspots", "elec_equip"):
        want = [next(r["crps"] for r in rows if r["series"] == series and r["kind"] == "diffusion"
                     and r.get("network", "grid_mpnn") == "grid_mpnn") for rows in (ra, rb)]
        cells = table[(series, "self-guided (path graph)")]
        assert cells[2] == f"{np.mean(want):.4f}"
    # the 1-D CNN ran in the first run only: compared over that run alone
    assert table[("taylor", "self-guided (1-D CNN)")][1] == "-" and table[("taylor", "self-guided (1-D CNN)")][-1]\
        .endswith("of 1")


@pytest.mark.parametrize("folders, match", [
    (["timeseries-cpu-chosen"], "at least two timeseries results folders"),
    (["timeseries-cpu-chosen", "qm9-cpu"], "compare timeseries folders with timeseries folders"),
])
def test_compare_of_timeseries_folders_refuses_one_or_mixed(folders, match, capsys):
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2] / "benchmarks" / "results"
    assert main(["bench", "compare", *[str(repo / f) for f in folders]]) == 2
    err = capsys.readouterr().err
    assert match in err and err.count("\n") == 1


def test_compare_leaves_out_nan_and_partial_runs_and_warns_on_other_settings():
    from graphdiff.bench.timeseries_compare import compare_timeseries

    ets = {"series": "s", "kind": "baseline", "forecaster": "ets", "crps": 1.0}
    sg = {"series": "s", "kind": "diffusion", "network": "grid_mpnn", "forecaster": "d", "crps": float("nan")}
    ref = {"series": "s", "kind": "refinement", "network": "grid_mpnn", "forecaster": "r", "crps": 0.8}
    a, b = _results([ets, sg, ref]), _results([ets, {**sg, "crps": 0.5}], seed=1)
    b["settings"]["minutes"] = 9
    text = compare_timeseries([("a", a), ("b", b)])
    cells = _table(text)[("s", "self-guided (path graph)")]
    assert cells[:3] == ["-", "0.5000", "0.5000"] and cells[-1] == "1 of 1"  # NaN is a missing run
    assert "- self-guided (path graph): 0 of 0; not in every run on s (left out)" in text
    assert "- ETS refined (path graph): 0 of 0; not in every run on s (left out)" in text
    assert "Warning: the runs differ in more than the training seed (minutes: - / 9)" in text
    assert "Warning" not in compare_timeseries([("a", _results([ets])), ("b", _results([ets], seed=2))])


def test_compare_reads_a_run_split_over_folders_by_only_as_one_run(tmp_path, capsys):
    def write(name, rows, seed=0, **settings):
        res = _results(rows, seed)
        res["settings"].update(settings)
        (tmp_path / name).mkdir()
        (tmp_path / name / "results.json").write_text(json.dumps(res))
        return str(tmp_path / name)

    def rows(series, sg, ets=1.0):
        return [{"series": series, "kind": "baseline", "forecaster": "ets", "crps": ets},
                {"series": series, "kind": "diffusion", "network": "grid_mpnn", "forecaster": "d", "crps": sg}]

    a = write("a", rows("s", 0.5), only=["s"])
    b = write("b", rows("t", 2.0), only=["t"])
    c = write("c", rows("s", 0.7) + rows("t", 1.5), seed=1)  # a whole run: its `only` differs and is no setting
    assert main(["bench", "compare", f"{a}+{b}", c]) == 0
    out = capsys.readouterr().out
    table = _table(out)
    assert table[("s", "self-guided (path graph)")][:3] == ["0.5000", "0.7000", "0.6000"]
    assert table[("t", "self-guided (path graph)")][:3] == ["2.0000", "1.5000", "1.7500"]
    assert "- self-guided (path graph): 1 of 2 (s)" in out and "Warning" not in out
    assert "2.0 min, summed over its parts" in out  # the split run's minutes are its parts' sum
    # parts of one run hold their own series and share every setting
    d = write("d", rows("s", 0.6), only=["s"])
    assert main(["bench", "compare", f"{a}+{d}", c]) == 2
    assert "s is in both" in capsys.readouterr().err
    e = write("e", rows("t", 2.0), minutes=9, only=["t"])
    assert main(["bench", "compare", f"{a}+{e}", c]) == 2
    err = capsys.readouterr().err
    assert "is not the same run as" in err and err.count("\n") == 1
