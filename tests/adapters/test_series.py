"""TimeSeriesPath: windows <-> fixed path-graph states, lag edges, mean scaling, masks."""

import numpy as np
import pytest
import torch

from graphdiff.adapters import adapter_from_schema
from graphdiff.adapters.series import TimeSeriesPath
from graphdiff.errors import DataError


def _windows():
    t = torch.arange(12, dtype=torch.float32)
    a = torch.stack([10 + t, 100 + 2 * t], -1)  # two channels of different scale
    b = torch.stack([5 - t, torch.full_like(t, 3.0)], -1)
    return torch.stack([a, b])  # [2, 12, 2]


def test_round_trip_with_mean_scaling_of_the_context():
    path = TimeSeriesPath(12, channels=2, season=4, prediction_length=3)
    w = _windows()
    scale = path.scale(w)
    # the scale is the mean |value| of the first 9 steps (the context), per window and channel
    torch.testing.assert_close(scale[0, 0], w[0, :9].abs().mean(0))
    torch.testing.assert_close(scale[1, 0], w[1, :9].abs().mean(0))
    state = path.to_state(w, scale=scale)
    assert state.x.shape == (2, 12, 2) and state.e.shape == (2, 12, 12, 3) and state.pos.shape == (2, 12, 3)
    torch.testing.assert_close(state.x, w / scale - 1)  # centred mean scaling
    torch.testing.assert_close(path.from_state(state, scale), w)
    # changing the forecast part does not change the scale (no leak from the future)
    w2 = w.clone()
    w2[:, 9:] *= 50
    torch.testing.assert_close(path.scale(w2), scale)


def test_lag_and_seasonal_edges_are_fixed_data():
    path = TimeSeriesPath(10, season=4)
    e = path.edges()
    assert path.edge_kinds == ("lag1", "lag4")
    kind = e.argmax(-1)
    assert kind[5, 4] == 1 and kind[4, 5] == 1 and kind[8, 4] == 2 and kind[4, 8] == 2 and kind[5, 7] == 0
    assert int((kind == 1).sum()) == 2 * 9 and int((kind == 2).sum()) == 2 * 6
    pos = path.positions()
    assert pos[0, 0] == -1 and pos[-1, 0] == 1 and torch.equal(pos[4, 1], pos[0, 1])  # same phase of the season


def test_missing_values_and_variable_lengths_are_masked():
    path = TimeSeriesPath(6, season=2, prediction_length=2)
    w = torch.tensor([[1.0, np.nan, 3.0, 4.0, 5.0, 6.0], [2.0, 2.0, 2.0, np.nan, np.nan, np.nan]])
    values, known = path.observation(w, lengths=[6, 3])
    assert known[:, :, 0].tolist() == [[True, False, True, True, True, True], [True, True, True, False, False, False]]
    state = path.to_state(w, lengths=[6, 3])
    assert state.mask.tolist() == [[True] * 6, [True] * 3 + [False] * 3]
    assert torch.isfinite(state.x).all() and state.x[1, 3:].abs().sum() == 0
    # window 0's scale skips the missing step: mean(|1|, |3|, |4|) over its 4 context steps
    assert path.scale(w)[0, 0, 0] == pytest.approx(8 / 3)
    back = path.from_state(state, path.scale(w, lengths=[6, 3]))
    assert torch.isnan(back[1, 3:]).all() and back[1, 0, 0] == pytest.approx(2.0)


def test_schema_rebuilds_the_adapter_and_bad_shapes_are_named():
    path = TimeSeriesPath(8, channels=1, season=4, lags=(1, 2, 4), prediction_length=2)
    again = adapter_from_schema(path.schema(5))
    assert isinstance(again, TimeSeriesPath) and again.to_dict() == path.to_dict()
    with pytest.raises(DataError, match=r"windows \[B, 8, 1\]"):
        path.to_state(torch.zeros(2, 7))
    with pytest.raises(DataError, match="lags must lie in"):
        TimeSeriesPath(8, lags=(1, 8))


def test_forecast_observation_marks_the_horizon_unknown():
    path = TimeSeriesPath(8, season=2, prediction_length=3)
    values, known, scale = path.forecast_observation(torch.arange(1.0, 6.0).reshape(1, 5, 1))
    assert known[0, :, 0].tolist() == [True] * 5 + [False] * 3 and scale.item() == pytest.approx(3.0)


def test_std_scaling_standardises_each_window_by_its_context():
    path = TimeSeriesPath(12, channels=2, season=4, prediction_length=3, scaling="std")
    w = _windows()
    s = path.scale(w)
    assert s.shape == (2, 2, 2)
    torch.testing.assert_close(s[:, 0], w[:, :9].mean(1))
    torch.testing.assert_close(s[0, 1], w[0, :9].std(0, unbiased=False))
    assert s[1, 1, 1] == 1.0  # a constant context: standard deviation 0 -> divisor 1
    x = path.to_state(w).x
    torch.testing.assert_close(x[0, :9].mean(0), torch.zeros(2), atol=1e-5, rtol=0)
    torch.testing.assert_close(x[0, :9].std(0, unbiased=False), torch.ones(2))
    torch.testing.assert_close(x[1, :, 1], w[1, :, 1] - 3.0)
    torch.testing.assert_close(path.from_state(path.to_state(w, scale=s), s), w)
    # a level shift leaves the standardised window unchanged (mean scaling would shrink its moves)
    torch.testing.assert_close(path.to_state(w + 1000.0).x, x, atol=1e-3, rtol=0)
    w2 = w.clone()
    w2[:, 9:] *= 50
    torch.testing.assert_close(path.scale(w2), s)  # the forecast part does not set the scale
    values, known, fs = path.forecast_observation(w[:1, :9])
    torch.testing.assert_close(fs, s[:1])
    torch.testing.assert_close(values[0, :9], x[0, :9])
    assert not known[0, 9:].any()
    again = adapter_from_schema(path.schema(3))
    assert again.scaling == "std" and again.to_dict() == path.to_dict()
    with pytest.raises(DataError, match=r"scaling must be one of \['mean', 'std', 'diff', 'sdiff'\], got 'z'"):
        TimeSeriesPath(12, scaling="z")


def test_diff_scaling_diffuses_differences_and_rebuilds_from_the_last_context_value():
    path = TimeSeriesPath(12, channels=2, season=4, prediction_length=3, scaling="diff")
    w = _windows()
    w[0, :, 0] = 10 + torch.arange(12.0) ** 1.5  # uneven steps
    s = path.scale(w)
    assert s.shape == (2, 3, 2)
    ctx_diff = w[:, 1:9] - w[:, :8]
    torch.testing.assert_close(s[0, 0], ctx_diff[0].abs().mean(0))
    assert s[1, 0, 0] == 1.0 and s[1, 0, 1] == 1.0  # a constant context: no move -> divisor 1
    torch.testing.assert_close(s[:, 1], w[:, 8])  # the anchor: the last context value ...
    assert s[:, 2].tolist() == [[8.0, 8.0], [8.0, 8.0]]  # ... at step 8
    x = path.to_state(w, scale=s).x
    assert x[:, 0].abs().sum() == 0
    torch.testing.assert_close(x[:, 1:], (w[:, 1:] - w[:, :-1]) / s[:, :1])
    torch.testing.assert_close(path.from_state(path.to_state(w, scale=s), s), w)
    # a level shift leaves the differences alone, and the forecast part does not set the scale
    torch.testing.assert_close(path.to_state(w + 1000.0).x, x, atol=1e-3, rtol=0)
    w2 = w.clone()
    w2[:, 9:] *= 50
    torch.testing.assert_close(path.scale(w2), s)
    # whatever the model makes of the context's differences, the forecast starts at the anchor
    state = path.to_state(w, scale=s)
    state.x[:, 1:9] += torch.randn(2, 8, 2)
    back = path.from_state(state, s)
    torch.testing.assert_close(back[:, 8:], w[:, 8:])
    assert not torch.allclose(back[:, :8], w[:, :8])
    again = adapter_from_schema(path.schema(3))
    assert again.scaling == "diff" and again.to_dict() == path.to_dict()


def test_diff_scaling_observes_a_difference_only_where_both_values_are_and_anchors_on_the_last_observed():
    path = TimeSeriesPath(8, season=2, prediction_length=3, scaling="diff")
    w = torch.tensor([[1.0, 2.0, np.nan, 4.0, np.nan, 9.0, 9.0, np.nan]])
    values, known = path.observation(w)
    assert known[0, :, 0].tolist() == [False, True, False, False, False, False, True, False]
    s = path.scale(w)
    assert s[0, :, 0].tolist() == [1.0, 4.0, 3.0]  # one observed difference (1); anchor 4.0 at step 3
    values, known, fs = path.forecast_observation(torch.tensor([[1.0, 3.0, 4.0, 8.0, 9.0]]).reshape(1, 5, 1))
    assert known[0, :, 0].tolist() == [False] + [True] * 4 + [False] * 3
    assert fs[0, :, 0].tolist() == [2.0, 9.0, 4.0]


def test_sdiff_scaling_diffuses_seasonal_differences_and_rebuilds_each_phase_from_the_context():
    path = TimeSeriesPath(12, season=4, prediction_length=4, scaling="sdiff")
    t = torch.arange(12.0)
    w = (20 + t + 5 * torch.sin(t * torch.pi / 2) + t ** 1.2).reshape(1, 12, 1)
    s = path.scale(w)
    assert s.shape == (1, 9, 1) and path.lag == 4
    torch.testing.assert_close(s[0, 0, 0], (w[0, 4:8, 0] - w[0, :4, 0]).abs().mean())
    torch.testing.assert_close(s[0, 1:5, 0], w[0, 4:8, 0])  # per phase, the last context value of that phase ...
    assert s[0, 5:, 0].tolist() == [4.0, 5.0, 6.0, 7.0]  # ... at its step
    state = path.to_state(w, scale=s)
    assert state.x[0, :4].abs().sum() == 0
    torch.testing.assert_close(state.x[0, 4:], (w[0, 4:] - w[0, :-4]) / s[0, :1])
    torch.testing.assert_close(path.from_state(state, s), w)
    # each forecast step is the value one season before it plus its own diffused change: moving one forecast
    # change moves that step alone, and the context's changes do not reach the forecast
    state.x[0, 9] += 1.0
    state.x[0, 4:8] += torch.randn(4, 1)
    back = path.from_state(state, s)
    torch.testing.assert_close(back[0, 9], w[0, 9] + s[0, 0])
    torch.testing.assert_close(back[0, [8, 10, 11]], w[0, [8, 10, 11]])
    values, known = path.observation(w)
    assert known[0, :, 0].tolist() == [False] * 4 + [True] * 8
    assert path.lag == 4 and TimeSeriesPath(12, season=4, scaling="diff").lag == 1 and TimeSeriesPath(12).lag == 0
    with pytest.raises(DataError, match=r"'sdiff' needs a context longer than one season \(8 steps\), got 8"):
        TimeSeriesPath(12, season=8, prediction_length=4, scaling="sdiff")


def test_sdiff_phase_without_an_observed_context_value_starts_from_the_last_observed_level():
    path = TimeSeriesPath(7, season=4, prediction_length=2, scaling="sdiff")
    w = torch.tensor([[100.0, 101.0, np.nan, 103.0, 104.0, 0.0, 0.0]])
    s = path.scale(w)
    assert s[0, 1:5, 0].tolist() == [104.0, 101.0, 104.0, 103.0]  # phase 2 has no value: the last level, 104
    assert s[0, 5:, 0].tolist() == [4.0, 1.0, 2.0, 3.0]
    state = path.to_state(w, scale=s)
    state.x.zero_()  # no change anywhere: each forecast step is its phase's anchor
    assert path.from_state(state, s)[0, 5:, 0].tolist() == [101.0, 104.0]
    # variable lengths: the context is each series' own first n - H steps
    path = TimeSeriesPath(10, season=4, prediction_length=2, scaling="sdiff")
    w = torch.arange(100.0, 110.0).reshape(1, 10, 1)
    s = path.scale(w, lengths=[8])
    assert s[0, 0, 0] == 4.0 and s[0, 1:5, 0].tolist() == [104.0, 105.0, 102.0, 103.0]
    back = path.from_state(path.to_state(w, scale=s, lengths=[8]), s)
    torch.testing.assert_close(back[0, :8], w[0, :8])
    assert torch.isnan(back[0, 8:]).all()
