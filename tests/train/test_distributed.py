"""DDP: two CPU processes under torchrun (gloo) end with identical weights and one checkpoint."""

from __future__ import annotations

import json
import math
import os
import socket
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch

from graphdiff.train import all_reduce_mean, barrier, cleanup, init_from_env, is_main, load_checkpoint

HERE = Path(__file__).resolve().parent


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_single_process_helpers_are_no_ops(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    info = init_from_env("cpu")
    assert (info.rank, info.world_size, info.distributed) == (0, 1, False)
    assert is_main()
    t = torch.tensor([1.0, 2.0])
    out = all_reduce_mean(t)
    assert torch.equal(out, t) and out is not t
    barrier()
    cleanup()


def test_two_process_ddp_training(tmp_path, data_root):
    if not torch.distributed.is_available():
        pytest.skip("torch.distributed is not available in this build")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for attempt in (1, 2):
        out = tmp_path / f"run{attempt}"
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
               "--master_port", str(_free_port()), str(HERE / "ddp_script.py"), str(out), str(data_root)]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=240, env=env)
        except subprocess.TimeoutExpired:
            pytest.fail("torchrun with 2 processes did not finish in 240 s")
        # Gloo on a loaded 2-core machine has, rarely, aborted a rank in its C++ teardown after both ranks had
        # finished and written their records: one rerun for exactly that, with a warning that keeps its output; any
        # other failure, or a second one, fails the test
        finished = all((out / f"rank{r}.json").is_file() for r in (0, 1))
        teardown = "terminate called without an active exception" in proc.stdout + proc.stderr
        if proc.returncode == 0 or attempt == 2 or not (finished and teardown):
            break
        warnings.warn("torchrun: a rank aborted in Gloo's teardown after training; rerunning once:\n"
                      + (proc.stdout + proc.stderr)[-1500:], stacklevel=1)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]

    ranks = [json.loads((out / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["world_size"] for r in ranks] == [2, 2]
    assert ranks[0]["params"] == ranks[1]["params"]
    assert ranks[0]["ema"] == ranks[1]["ema"]
    assert ranks[0]["steps"] == ranks[1]["steps"] == 6
    # each rank computed on its half of every 8-graph micro-batch (2 micro-batches per step)
    assert ranks[0]["sizes"] == ranks[1]["sizes"] == [4] * 12

    ckpt = load_checkpoint(out, training_state=True)
    assert ckpt.step == 6 and ckpt.training_state["world_size"] == 2
    assert len(ckpt.training_state["rng"]) == 2  # both ranks' RNG states
    assert not (out / ".checkpoint.tmp").exists()
    recs = [json.loads(s) for s in (out / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in recs] == [2, 4, 6]  # written once, by rank 0
    assert all(math.isfinite(r["loss"]) for r in recs)
