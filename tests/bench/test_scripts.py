"""The scripts in benchmarks/: each one starts (``--help``), takes ``--set`` where it builds a pipeline from a preset,
and shares the package's tables and one helper module instead of keeping copies; the scripts that ``graphdiff
bench`` suites replaced stay gone."""

from __future__ import annotations

import ast
import importlib.util
import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BENCH = REPO / "benchmarks"
SCRIPTS = sorted(p for p in BENCH.glob("*.py") if not p.name.startswith("_"))
# replaced by suites: graphs-gdss / qm9 / zinc250k (gdss.py), graphs-spectre / qm9 (discrete.py), qm9 / zinc250k /
# moses and `graphdiff bench compare` (blockar.py), speed (gdss_speed.py); and the helpers now in graphdiff.bench
REMOVED = {"gdss.py", "discrete.py", "blockar.py", "gdss_speed.py", "_offline.py", "_timing.py", "_speed.py",
           "guidance_qed.py"}
# what lives in the package (graphdiff.bench.offline / timing / suites) and must not be defined again by a script
PACKAGE_NAMES = {"RAW", "CPU_MODELS", "CPU_BATCH", "link_raw", "default_raw_from", "time_train_steps", "rss_mb"}
# the last: a script that runs `graphdiff train --preset ...` builds from a preset too
PRESET_CALLS = ("timing_pipeline", "from_preset", "load_preset", "preset_overrides", '"--preset"')


def _help(script: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(script.relative_to(REPO)), "--help"], cwd=REPO, capture_output=True,
                          text=True, timeout=120)


@pytest.fixture(scope="module")
def helps() -> dict[str, subprocess.CompletedProcess]:
    with ThreadPoolExecutor(max_workers=4) as pool:
        return dict(zip((s.name for s in SCRIPTS), pool.map(_help, SCRIPTS)))


def _load_common():
    spec = importlib.util.spec_from_file_location("_bench_common", BENCH / "_common.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_the_scripts_are_the_expected_ones():
    names = {p.name for p in BENCH.glob("*.py")}
    assert not names & REMOVED, f"scripts replaced by graphdiff bench suites are back: {sorted(names & REMOVED)}"
    helpers = sorted(n for n in names if n.startswith("_"))
    assert helpers == ["_common.py"], f"one helper module for the scripts, found {helpers}"
    assert len(SCRIPTS) >= 10


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_every_script_answers_help(script, helps):
    res = helps[script.name]
    assert res.returncode == 0, f"{script.name} --help failed:\n{res.stderr[-2000:]}"
    usage = res.stdout
    assert f"benchmarks/{script.name}" in usage.splitlines()[0], usage.splitlines()[0]
    assert "--out" in usage
    src = script.read_text()
    builds_preset = any(call in src for call in PRESET_CALLS)
    assert ("--set" in usage) == builds_preset, (
        f"{script.name}: --set belongs exactly to the scripts that build a pipeline from a preset "
        f"(builds one: {builds_preset})")
    for flag in ("--cpu-model", "--amp", "--compile", "--checkpointing", "--json"):
        assert flag + " " not in usage and flag + "]" not in usage, f"{script.name} still takes {flag}"


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_every_script_documents_its_command_line(script):
    doc = ast.get_docstring(ast.parse(script.read_text()))
    assert doc and f"python benchmarks/{script.name}" in doc, f"{script.name}: no command line in its docstring"


def test_no_script_keeps_its_own_copy_of_a_package_table():
    for path in [*SCRIPTS, BENCH / "_common.py"]:
        tree = ast.parse(path.read_text())
        targets = [t for node in tree.body if isinstance(node, (ast.Assign, ast.AnnAssign))
                   for t in (node.targets if isinstance(node, ast.Assign) else [node.target])]
        defined = {t.id for t in targets if isinstance(t, ast.Name)}
        defined |= {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}
        assert not defined & PACKAGE_NAMES, f"{path.name} defines {sorted(defined & PACKAGE_NAMES)} again"
        model_tables = [node.lineno for node in ast.walk(tree) if isinstance(node, ast.Dict)
                        and any(isinstance(k, ast.Constant) and k.value == "n_layers" for k in node.keys)]
        assert not model_tables, f"{path.name}:{model_tables[0]} defines a network table (use CPU_MODELS)"


def test_pipelines_are_built_as_graphdiff_bench_builds_them_on_a_cpu():
    from graphdiff.bench.suites import CPU_BATCH, CPU_MODELS

    common = _load_common()
    pard = common.preset_overrides("pard-qm9")
    assert pard == {"train": {"batch_size": CPU_BATCH["qm9"]}, "model": CPU_MODELS["ppgn_transformer"]}
    assert common.preset_overrides("gdss-qm9") == {"train": {"batch_size": CPU_BATCH["qm9"]}}  # GDSS keeps its net
    user = common.preset_overrides("defog-planar", {"train": {"batch_size": 3, "amp": True}, "model": {"n_layers": 2}})
    assert user["train"] == {"batch_size": 3, "amp": True}
    assert user["model"] == {**CPU_MODELS["graph_transformer"], "n_layers": 2}


@pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated:DeprecationWarning")  # torch.compile's
def test_loss_module_follows_the_train_settings(tmp_path):
    from graphdiff.pipeline import GraphDiffusionPipeline
    from graphdiff.train.amp import AutocastForward

    common = _load_common()
    tiny = {"model": {"n_layers": 1, "hidden_x": 8, "hidden_e": 4, "hidden_y": 4, "n_heads": 2, "ff_x": 8, "ff_e": 4,
                      "ff_y": 4, "extra_features": []}}
    pipe = GraphDiffusionPipeline.from_preset("digress-community_small", dataset="synth_community_small",
                                              root=tmp_path, overrides=tiny)
    assert common.loss_module(pipe) is None and common.loss_module(pipe, {}) is None
    amp = common.loss_module(pipe, {"train": {"amp": True}})
    assert isinstance(amp, AutocastForward) and amp.module is pipe.denoiser and amp.device_type == "cpu"
    both = common.loss_module(pipe, {"train": {"amp": True, "compile": True}})
    assert isinstance(both, AutocastForward) and both.module is not pipe.denoiser  # compiled inside, autocast out
    assert common.loss_module(pipe, {"train": {"amp": False}}) is None


def test_results_record_the_command_and_the_machine(tmp_path, monkeypatch):
    common = _load_common()
    monkeypatch.setattr(sys, "argv", ["benchmarks/x.py", "--set", "train.amp=true"])

    class Args:
        out = str(tmp_path / "x-cpu")

    path = common.write_results(Args, "x", {"rows": [{"a": 1}]}, "| a |\n|---|\n| 1 |\n")
    data = json.loads(path.read_text())
    assert path == tmp_path / "x-cpu" / "x.json" and data["rows"] == [{"a": 1}]
    assert data["command"] == "python benchmarks/x.py --set train.amp=true"
    assert {"torch", "torch_threads", "load_average", "git_commit"} <= set(data["machine"])
    md = path.with_suffix(".md").read_text()
    assert md.startswith("| a |") and "`python benchmarks/x.py --set train.amp=true`" in md and "torch threads" in md
    assert common.out_dir(type("A", (), {"out": None}), "grouping") == REPO / "benchmarks" / "results" / "grouping-cpu"


def test_a_script_error_is_one_line_and_its_temporary_root_is_removed(tmp_path, capsys, monkeypatch):
    from types import SimpleNamespace

    from graphdiff.errors import MissingFileError

    common = _load_common()
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)
    made = []

    def main():
        made.append(common.data_root(SimpleNamespace(root=None, raw_from=str(tmp_path)), [], "t"))
        raise MissingFileError("train.csv.gz: not found")

    assert common.run(main) == 2
    assert capsys.readouterr().err == "error: train.csv.gz: not found\n"
    assert made and made[0].parent == tmp_path and not made[0].exists()
    assert common.run(lambda: None) == 0
    for script in SCRIPTS:  # every script ends through it
        assert "sys.exit(_common.run(main))" in script.read_text() or script.name == "gpu_attention_sweep.py", script
