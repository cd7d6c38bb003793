"""`graphdiff bench run kernels`: on a CPU it runs the CPU comparisons only and says so, writes results.json and
results.md with the machine and load; the built-in routes it compares compute the reference's function."""

import json

import pytest
import torch

from graphdiff.bench.kernel_routes import attention_inputs, scatter_inputs, scatter_routes, sdpa_route
from graphdiff.cli import main
from graphdiff.kernels import edge_attention_reference


@pytest.mark.skipif(torch.cuda.is_available(), reason="the CPU form of the suite")
def test_cpu_run_writes_the_cpu_comparisons_and_says_so(tmp_path, capsys):
    out = tmp_path / "k"
    argv = ["bench", "run", "kernels", "--only", "message_scatter", "--out", str(out), "--quiet", "--set",
            "sizes=[4, 5]", "--set", "repeats=1", "--set", "routes=[reference, pyg]", "--set", "threads=1"]
    assert main(argv) == 0
    res = json.loads((out / "results.json").read_text())
    assert res["kind"] == "kernels" and res["settings"]["sizes"] == [4, 5] and "CPU only" in res["note"]
    assert {r["route"] for r in res["rows"]} == {"reference", "pyg"}
    assert {(r["variant"], r["n"]) for r in res["rows"]} == {(v, n) for v in ("segment", "gather") for n in (4, 5)}
    for r in res["rows"]:
        assert r["max_abs_diff"] < 1e-5 and r["forward_ms"] > 0 and r["train_ms"] > 0 and r["saved_mb"] >= 0
    md = (out / "results.md").read_text()
    assert "CPU only: the Triton routes need a CUDA device" in md and "load average" in md
    assert "## message_scatter (gather)" in md and "| float32 | 5 | pyg |" in md


def test_unknown_setting_is_one_line(tmp_path, capsys):
    assert main(["bench", "run", "kernels", "--out", str(tmp_path), "--set", "size=16"]) == 2
    assert "--set size: not a setting of the kernels suite" in capsys.readouterr().err


def test_sdpa_route_computes_the_reference():
    inp = attention_inputs(2, 7, 2, 8, 4, torch.float32, "cpu")
    names = ("q", "k", "v", "qe", "ke", "e", "mask", "w_mul", "b_mul", "w_add", "b_add", "w_out", "b_out")
    args = [inp[k] for k in names]
    for got, want in zip(sdpa_route(*args), edge_attention_reference(*args)):
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


def test_pyg_route_computes_the_reference():
    inp = scatter_inputs(2, 5, 3, torch.float32, "cpu")
    routes = scatter_routes(cuda=False)
    args = (inp["nodes"], inp["dst"], inp["num_nodes"], "sum", inp["src"], inp["weight"])
    torch.testing.assert_close(routes["pyg"](*args), routes["reference"](*args))
