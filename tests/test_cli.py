import subprocess
import sys

import pytest

from graphdiff.cli import main
from tests.conftest import shared_root


def test_list_shows_every_registered_dataset(capsys):
    from graphdiff.data import list_datasets

    assert main(["datasets", "list"]) == 0
    out = capsys.readouterr().out
    for name in list_datasets():
        assert name in out


def test_info_prints_counts_histogram_and_marginals(tmp_path, capsys):
    assert main(["datasets", "info", "synth_planar", "--root", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "graphs: 200" in out and "train 128, val 32, test 40" in out
    assert "node-count histogram" in out and "edge marginals:  none" in out
    assert "invalid rows skipped: 0" in out


def test_info_lists_invalid_rows(tmp_path, capsys):
    f = tmp_path / "m.smi"
    f.write_text("CC\nC1CC\n\nCCO\n")
    assert main(["datasets", "info", str(f), "--root", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "invalid rows skipped: 2" in out
    assert "m.smi:2: 'C1CC'" in out and "m.smi:3: ''" in out


def test_prepare_then_cached(tmp_path, capsys):
    assert main(["datasets", "prepare", "tree", "--root", str(tmp_path)]) == 0
    assert "processed in" in capsys.readouterr().out
    assert main(["datasets", "prepare", "tree", "--root", str(tmp_path)]) == 0
    assert "cache up to date" in capsys.readouterr().out


def test_draw_graphs_and_molecules(tmp_path):
    out = tmp_path / "g.png"
    assert main(["datasets", "draw", "synth_community_small", "-n", "4", "--out", str(out), "--root",
                 str(tmp_path)]) == 0
    assert out.stat().st_size > 1000 and out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    smi = tmp_path / "m.smi"
    smi.write_text("CCO\nc1ccccc1\n")
    mout = tmp_path / "m.png"
    assert main(["datasets", "draw", str(smi), "-n", "2", "--out", str(mout), "--root", str(tmp_path)]) == 0
    assert mout.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_errors_are_one_line_with_status_2(tmp_path, no_network):
    proc = subprocess.run([sys.executable, "-m", "graphdiff.cli", "datasets", "info", "planr"],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "did you mean 'planar'" in proc.stderr
    assert "Traceback" not in proc.stderr
    proc = subprocess.run([sys.executable, "-m", "graphdiff.cli", "datasets", "info", str(tmp_path / "none.smi")],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "none.smi: no such file" in proc.stderr


def test_missing_raw_file_message(tmp_path, capsys, no_network):
    assert main(["datasets", "info", "grid", "--root", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: raw file grid.pkl not found") and err.count("\n") == 1


def test_draw_standard_file(tmp_path):
    root = shared_root(tmp_path, "ego_small")
    out = tmp_path / "ego.png"
    assert main(["datasets", "draw", "ego_small", "--root", str(root), "-n", "3", "--out", str(out)]) == 0
    assert out.is_file()


@pytest.mark.parametrize("n", ["0", "-3"])
def test_draw_rejects_bad_n(tmp_path, capsys, n):
    assert main(["datasets", "draw", "tree", "-n", n, "--root", str(tmp_path)]) == 2
    assert "-n must be at least 1" in capsys.readouterr().err
