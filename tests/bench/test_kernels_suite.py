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


@pytest.mark.skipif(torch.cuda.is_available(), reason="the CPU form of the suite")
def test_tf32_rows_run_in_tf32_and_leave_torchs_precision_as_it_was(tmp_path, capsys, monkeypatch):
    from graphdiff.bench import kernel_routes

    seen = []
    reference = kernel_routes.attention_routes(False)["reference"]

    def spy(*args):
        seen.append((args[0].dtype, torch.get_float32_matmul_precision()))
        return reference(*args)

    monkeypatch.setattr(kernel_routes, "attention_routes", lambda cuda: {"reference": spy})
    torch.set_float32_matmul_precision("medium")
    try:
        argv = ["bench", "run", "kernels", "--only", "edge_attention", "--out", str(tmp_path), "--quiet", "--set",
                "sizes=[4]", "--set", "repeats=1", "--set", "dtypes=[tf32, float32]", "--set", "threads=1"]
        assert main(argv) == 0
        assert torch.get_float32_matmul_precision() == "medium"
    finally:
        torch.set_float32_matmul_precision("highest")
    assert {(torch.float32, "high"), (torch.float32, "highest")} == set(seen)
    assert "| tf32 | 4 | reference |" in (tmp_path / "results.md").read_text()
    assert main(["bench", "run", "kernels", "--out", str(tmp_path), "--set", "dtypes=[tf64]"]) == 2
    assert "--set dtypes: 'tf64' is not one of float32, bfloat16, tf32" in capsys.readouterr().err


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


def test_gpu_rows_are_written_with_memory_bandwidth_and_speedups():
    from graphdiff.bench.kernels import DEFAULTS, markdown

    row = dict(kernel="edge_attention", variant=None, n=256, batch=16, dtype="bfloat16", load_average=0.1)
    results = {"suite": "kernels", "description": "d", "command": "graphdiff bench run kernels", "note": "GPU: ...",
               "settings": DEFAULTS["cuda"], "started": "now", "machine": {
                   "graphdiff": "0", "git_commit": "abc", "torch": "2", "device": "NVIDIA H200", "cuda": True,
                   "torch_threads": 16, "cpu_count": 16, "load_average": [0.1]},
               "rows": [{**row, "route": "reference", "max_abs_diff": 0.0, "forward_ms": 6.0, "train_ms": 20.0,
                         "forward_peak_mb": 900.0, "train_peak_mb": 4000.0, "forward_bandwidth_fraction": 0.05},
                        {**row, "route": "triton", "max_abs_diff": 1e-3, "forward_ms": 2.0, "train_ms": 5.0,
                         "forward_peak_mb": 100.0, "train_peak_mb": 800.0, "forward_bandwidth_fraction": 0.4},
                        {**row, "route": "flex", "max_abs_diff": 1e-3, "forward_ms": 3.0,
                         "forward_peak_mb": 500.0, "train_error": "RuntimeError: no"},
                        {**row, "route": "compile", "error": "OutOfMemoryError: CUDA out of memory"}]}
    md = markdown(results)
    assert "| bfloat16 | 256 | triton | 2.0 | 3.00 | 5.0 | 4.00 | 100.0 | 800.0 | 5.00 | 40.0% | 1.00e-03 |" in md
    assert "| bfloat16 | 256 | flex | 3.0 | 2.00 | no backward [1] | - | 500.0 | - | - | - |" in md
    assert "OutOfMemoryError" in md and "[1] RuntimeError: no" in md


def test_end_to_end_rows_train_the_same_model_through_either_kernel_path(monkeypatch):
    """The end-to-end rows (GPU goal: training graphs/s with the kernels) on a tiny network: the reference and the
    Triton kernel (here through Triton's interpreter) start from the same weights and give the same first loss."""
    pytest.importorskip("triton")
    from graphdiff.bench.kernels import DEFAULTS
    from graphdiff.bench.kernels_e2e import end_to_end_rows, markdown_lines
    from graphdiff.bench.suites import TINY_MODELS

    monkeypatch.setenv("TRITON_INTERPRET", "1")
    settings = {**DEFAULTS["cpu"], "e2e_presets": ["defog-community_small"], "e2e_dataset": "synth_community_small",
                "e2e_batch": 3, "e2e_steps": 1, "e2e_amp": [False]}
    model = {**TINY_MODELS["graph_transformer"], "extra_features": []}
    rows = list(end_to_end_rows(torch, settings, torch.device("cpu"), overrides={"model": model}))
    assert [r["route"] for r in rows] == ["reference", "triton"] and not any("error" in r for r in rows)
    ref, tri = rows
    assert ref["parameters"] == tri["parameters"] and ref["batch"] == 3 and ref["graphs_per_s"] > 0
    assert abs(ref["first_loss"] - tri["first_loss"]) < 1e-4 * max(1.0, abs(ref["first_loss"]))
    table = "\n".join(markdown_lines(rows))
    assert "| defog-community_small | float32 | triton |" in table and "## end to end (training)" in table


def test_end_to_end_failure_is_a_row_not_a_crash():
    from graphdiff.bench.kernels import DEFAULTS
    from graphdiff.bench.kernels_e2e import end_to_end_rows

    settings = {**DEFAULTS["cpu"], "e2e_presets": ["defog-no_such_set"], "e2e_amp": [False]}
    rows = list(end_to_end_rows(torch, settings, torch.device("cpu"), modes=("reference",)))
    assert len(rows) == 1 and "error" in rows[0] and "\n" not in rows[0]["error"]
