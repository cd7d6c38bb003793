"""A series CSV as a training dataset: ``load_dataset`` and ``graphdiff train --dataset FILE.csv`` read a date-led CSV
without a SMILES column as windows on the path graph; molecule CSVs keep loading as molecules."""

import numpy as np
import pytest

from graphdiff.cli import main
from graphdiff.data import is_series_file, load_dataset
from graphdiff.data.series_windows import SeriesWindows
from graphdiff.errors import DataError
from tests.conftest import one_error_line


def _daily(path, n=120):
    days = np.datetime64("2021-03-01") + np.arange(n)
    path.write_text("date,sales,returns\n" + "".join(f"{d},{10 + 3 * np.sin(2 * np.pi * i / 7):.3f},{i % 3}\n"
                                                    for i, d in enumerate(days)))
    return path


def test_a_date_led_csv_loads_as_series_windows(tmp_path):
    ds = load_dataset(str(_daily(tmp_path / "shop.csv")), prediction_length=7, context_length=14, stride=7)
    assert isinstance(ds, SeriesWindows)
    assert ds.series.channels == ("sales", "returns") and ds.series.freq == "D"
    assert ds.task.prediction_length == 7 and ds.task.context_length == 14
    train = ds.split("train").arrays()
    assert train.shape[1:] == (21, 2) and len(train) > 0
    assert np.allclose(train[0, :, 0], 10 + 3 * np.sin(2 * np.pi * np.arange(21) / 7), atol=1e-3)


def test_molecule_csvs_stay_molecules(tmp_path):
    mols = tmp_path / "mols.csv"
    mols.write_text("smiles,logp\nCCO,0.1\nCCN,0.2\n")
    assert not is_series_file(str(mols))
    named = tmp_path / "named.csv"
    named.write_text("when,mol\n2020-01-01,CCO\n2020-01-02,CCN\n")
    assert is_series_file(str(named)) and not is_series_file(str(named), {"smiles_column": "mol"})
    odd = tmp_path / "odd.csv"
    odd.write_text("name,value\nethanol,CCO\n")
    with pytest.raises(DataError, match=r"no .smiles. column .*\(a time-series CSV starts each row with a date\)"):
        load_dataset(str(odd))


def test_train_on_a_series_csv_from_the_cli(tmp_path, capsys):
    csv = _daily(tmp_path / "shop.csv")
    run = tmp_path / "run"
    assert main(["train", "--preset", "edm-tsdiff-taylor", "--dataset", str(csv), "--out", str(run), "--quiet",
                 "--set", "train.max_steps=2", "--set", "train.warmup_steps=0", "--set", "model.hidden=8",
                 "--set", "model.levels=2", "--set", "model.blocks=1",
                 "--set", "dataset_options.prediction_length=7", "--set", "dataset_options.context_length=14"]) == 0
    capsys.readouterr()
    out = tmp_path / "f.csv"
    assert main(["forecast", "--model", str(run), "--context", str(csv), "--horizon", "7", "--samples", "2",
                 "--steps", "2", "--out", str(out)]) == 0
    lines = out.read_text().splitlines()
    assert len(lines) == 1 + 7 * 2  # a header, then 7 dates x 2 channels
    rc = main(["train", "--preset", "edm-tsdiff-taylor", "--dataset", str(csv), "--out", str(tmp_path / "r2"),
               "--set", "dataset_options.strde=2"])
    assert rc == 2 and "did you mean 'stride'" in one_error_line(capsys)
