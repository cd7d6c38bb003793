"""``SeriesPool``: one training set of several series' windows, each cut before that series' own test windows."""

import numpy as np
import pytest
import torch

from graphdiff.data.series import ForecastTask, TimeSeries, training_windows
from graphdiff.data.series_pool import SeriesPool, pool_members
from graphdiff.errors import DataError


def _ramp(name: str, n: int, offset: float, test_windows: int = 2, season: int = 4) -> TimeSeries:
    return TimeSeries(name, offset + np.arange(n, dtype=float), "D", task=ForecastTask(3, 6, test_windows, season))


def test_pool_holds_every_members_training_windows_and_none_of_their_test_values():
    a, b = _ramp("a", 40, 0.0), _ramp("b", 30, 1000.0, test_windows=3)
    pool = SeriesPool([a, b])
    assert pool.info["members"] == {"a": 40 - 6 - 9 + 1, "b": 30 - 9 - 9 + 1}
    train = pool.windows["train"][:, :, 0]
    assert np.array_equal(train, np.concatenate([training_windows(a)[:, :, 0], training_windows(b)[:, :, 0]]))
    # a's test part starts at 34, b's at 1000 + 21: no training window reaches either
    assert train[train < 1000].max() == 33 and train[train >= 1000].max() == 1020
    assert len(pool.windows["test"]) == 2 + 3 and pool.path.n_nodes == 9 and pool.name == "a+b"
    std = SeriesPool([a, b], scaling="std")
    assert std.path.scaling == "std" and std.path.schema(1).extra["fixed_graph"]["scaling"] == "std"
    x = std.batch(range(len(std))).x[:, :6, 0]  # every context standardised, the 1000 offset of b gone
    assert x.abs().max() < 2 and torch.allclose(x.mean(1), torch.zeros(len(std)), atol=1e-5)
    held = SeriesPool([a, b], holdout=1)
    assert held.split_sizes()["val"] == 2 and held.windows["train"][:, :, 0].max() == 1017


def test_pool_task_overrides_the_members_and_mismatches_are_one_line_errors():
    a, b = _ramp("a", 40, 0.0), _ramp("b", 40, 5.0)
    pool = SeriesPool([a, b], context_length=4, prediction_length=2)
    assert pool.path.n_nodes == 6 and pool.path.prediction_length == 2
    assert all(m.task.test_windows == 2 for m in pool.members)  # each member keeps its own test windows
    with pytest.raises(DataError, match="c has season 7 .* share both"):
        SeriesPool([a, _ramp("c", 40, 0.0, season=7)])
    with pytest.raises(DataError, match="listed twice"):
        SeriesPool([a, a])
    with pytest.raises(DataError, match="needs a list of series"):
        SeriesPool("wineind")
    with pytest.raises(DataError, match="no complete training window"):
        SeriesPool([_ramp("short", 12, 0.0)])


def test_the_monthly_pool_is_its_cards_members_at_the_cards_task(tmp_path):
    pytest.importorskip("pmdarima")
    from graphdiff.data import load_dataset

    assert pool_members("monthly") == ("wineind", "airpassengers", "elec_equip") and pool_members("wineind") == ()
    ds = load_dataset("monthly")
    assert ds.name == "monthly" and ds.path.n_nodes == 36 + 12 and ds.task.season == 12
    counts = ds.info["members"]
    assert set(counts) == {"wineind", "airpassengers", "elec_equip"} and len(ds.split("train")) == sum(counts.values())
    # elec_equip's card has context 48; in the pool it is cut to 36, so it gives 12 more windows than on its own
    assert counts["elec_equip"] == len(load_dataset("elec_equip").split("train")) + 12
    assert len(load_dataset("monthly", series=["wineind", "airpassengers"]).split("train")) == 105 + 73
    # a user's .csv joins the pool at the pool's task (its own test windows from the default task of its length)
    f = tmp_path / "mine.csv"
    f.write_text("date,v\n" + "".join(f"{1990 + i // 12}-{i % 12 + 1:02d}-01,{100 + i}\n" for i in range(120)))
    mine = load_dataset("monthly", series=["wineind", str(f)])
    assert mine.name == "monthly" and mine.info["series"] == ["wineind", "mine"] and mine.path.n_nodes == 48
    own = mine.windows["train"][-mine.info["members"]["mine"]:, :, 0]  # the members' windows, in member order
    assert own.max() == 100 + 120 - 12 * mine.info["test_windows"]["mine"] - 1
