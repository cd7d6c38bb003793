"""Progress in log files: training and sampling with progress on, stderr not a terminal, print a few compact lines
(no carriage returns), not a bar per step."""

from __future__ import annotations

from pathlib import Path

from graphdiff.pipeline import GraphDiffusionPipeline
from graphdiff.train import TrainConfig, Trainer

from .toys import RUN_CONFIG, NoiseProcess, make_denoiser

MODEL = Path(__file__).resolve().parents[1] / "fixtures" / "legacy_v1" / "gdss"


def test_training_progress_is_a_few_lines_in_a_log(train_set, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("GRAPHDIFF_PROGRESS_EVERY", "3600")
    cfg = TrainConfig(batch_size=4, max_steps=40, log_every=10, ckpt_every=0, threads=1)
    Trainer(NoiseProcess(), make_denoiser(), train_set, cfg, tmp_path, run_config=RUN_CONFIG, progress=True).fit()
    err = capsys.readouterr().err
    assert "\r" not in err
    lines = err.strip().splitlines()
    assert len(lines) <= 3 and any("train" in x and "40" in x for x in lines)  # the final line counts 40 steps


def test_sampling_progress_is_a_few_lines_in_a_log(capsys, monkeypatch):
    monkeypatch.setenv("GRAPHDIFF_PROGRESS_EVERY", "3600")
    GraphDiffusionPipeline.from_pretrained(MODEL).sample(3, steps=50, progress=True)
    err = capsys.readouterr().err
    assert "\r" not in err and 1 <= len(err.strip().splitlines()) <= 2
