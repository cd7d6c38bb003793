"""train.threads: the thread count follows the cores other processes leave free, and the trainer says what it chose."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
import torch

from graphdiff.errors import ConfigError
from graphdiff.train import TrainConfig, Trainer
from graphdiff.train.threads import ThreadPolicy

from .toys import RUN_CONFIG, NoiseProcess, make_denoiser


@pytest.fixture
def two_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def test_choice_from_the_free_cores(two_threads):
    p = ThreadPolicy("auto")
    p.cores = 2
    assert [p.choose(x) for x in (0.0, 0.4, 0.6, 1.2, 3.0)] == [2, 2, 1, 1, 1]
    p.cap = 1  # OMP_NUM_THREADS / torch.set_num_threads lowered torch's count: never raised above it
    assert p.choose(0.0) == 1
    assert ThreadPolicy(3).choose(5.0) == 3  # a fixed count is kept whatever the load


def test_a_competing_process_is_seen_and_threads_drop(two_threads):
    p = ThreadPolicy("auto", interval=0.0)
    p.cores = 2
    p.start()
    p.threads = 2
    torch.set_num_threads(2)
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(1.5)
        line = p.poll()
    finally:
        busy.kill()
        busy.wait()
    assert line is not None and "other processes kept" in line
    assert p.threads == 1 and torch.get_num_threads() == 1
    p.restore()
    assert torch.get_num_threads() == 2


def test_trainer_prints_and_logs_its_threads(train_set, tmp_path, capsys):
    cfg = TrainConfig(batch_size=4, max_steps=3, log_every=1, ckpt_every=0, threads=1)
    out = Trainer(NoiseProcess(), make_denoiser(), train_set, cfg, tmp_path, run_config=RUN_CONFIG,
                  progress=False).fit()
    err = capsys.readouterr().err
    assert "torch threads: 1 (train.threads: " in err and "load average" in err
    assert out["threads"] == 1
    lines = [json.loads(x) for x in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert all(x["threads"] == 1 for x in lines if "loss" in x)


@pytest.mark.parametrize("value", [0, -1, "many", True, 1.5])
def test_bad_thread_settings_are_refused(value):
    with pytest.raises(ConfigError, match="threads must be 'auto' or a positive integer"):
        TrainConfig.from_dict({"threads": value})
