"""Sharded sampling from the command line: --shard i/K files, and torchrun with 2 processes (gloo), give the samples
of one single-process run with the same seed."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from graphdiff.cli import main

MODEL = Path(__file__).parent / "fixtures" / "legacy_v1" / "gdss"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _sample(out, *extra):
    assert main(["sample", "--model", str(MODEL), "-n", "7", "--steps", "3", "--seed", "5", "--quiet",
                 "--out", str(out), *extra]) == 0
    return out.read_text().splitlines()


def test_shard_files_concatenate_to_one_run(tmp_path, capsys):
    whole = _sample(tmp_path / "all.jsonl")
    parts = [_sample(tmp_path / f"part{i}.jsonl", "--shard", f"{i}/3") for i in range(3)]
    assert [len(p) for p in parts] == [3, 2, 2] and sum(parts, []) == whole
    assert "shard 1/3 of 7" in capsys.readouterr().out


@pytest.mark.parametrize("shard", ["3/3", "a/b", "1", "2/0"])
def test_bad_shard_is_one_line(tmp_path, capsys, shard):
    argv = ["sample", "--model", str(MODEL), "-n", "4", f"--shard={shard}", "--out", str(tmp_path / "x.jsonl")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --shard") and err.count("\n") == 1


def test_torchrun_two_processes_write_the_single_process_samples(tmp_path):
    if not torch.distributed.is_available():
        pytest.skip("torch.distributed is not available in this build")
    whole = _sample(tmp_path / "all.jsonl")
    out = tmp_path / "ddp.jsonl"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
           "--master_port", str(_free_port()), "-m", "graphdiff.cli", "sample", "--model", str(MODEL), "-n", "7",
           "--steps", "3", "--seed", "5", "--quiet", "--out", str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=240, env=env)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    assert out.read_text().splitlines() == whole
    assert proc.stdout.count("wrote 7 samples") == 1  # rank 0 writes, once


def test_workers_write_the_single_process_samples(tmp_path, capsys):
    """``--workers 2``: two one-thread processes, one file, the samples of one process (7 = shards of 4 and 3)."""
    whole = _sample(tmp_path / "all.jsonl")
    assert _sample(tmp_path / "workers.jsonl", "--workers", "2") == whole
    assert "wrote 7 samples" in capsys.readouterr().out
    for extra in (["--workers", "2", "--shard", "0/2"], ["--workers", "0"]):
        assert main(["sample", "--model", str(MODEL), "-n", "4", *extra, "--out", str(tmp_path / "x.jsonl")]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: --workers") and err.count("\n") == 1
    assert not (tmp_path / "x.jsonl").exists()


def test_pipe_sample_in_workers_matches_and_compiles_there(tmp_path):
    from graphdiff import GraphDiffusionPipeline
    from graphdiff.errors import ConfigError

    pipe = GraphDiffusionPipeline.from_pretrained(MODEL)
    one = pipe.sample(5, steps=3, seed=9, output="state", progress=False)
    # a compiled pipeline is compiled again in each worker with its options (the eager backend: no compile time)
    pipe.compile(backend="eager")
    two = pipe.sample(5, steps=3, seed=9, output="state", progress=False, workers=2)
    assert torch.equal(one.mask, two.mask) and torch.equal(one.x, two.x) and torch.equal(one.e, two.e)
    for kw in ({"workers": 0}, {"workers": 2, "shard": (0, 2)}, {"workers": 2, "callback": print},
               {"workers": 2.5}, {"workers": True}):
        with pytest.raises(ConfigError, match="workers"):
            pipe.sample(4, steps=2, progress=False, **kw)
