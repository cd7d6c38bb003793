"""The training loop: exact resume, kills during checkpointing, NaN handling, schedules, accumulation, EMA, logs."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from graphdiff.errors import CheckpointError, ConfigError, GraphdiffError, TrainingError
from graphdiff.train import EMA, LRSchedule, TrainConfig, Trainer, load_checkpoint, resolve_checkpoint

from .toys import (
    RUN_CONFIG,
    EmptyDataset,
    NaNAfter,
    NoiseProcess,
    RegressionProcess,
    SlowProcess,
    make_denoiser,
    resume_config,
)

HERE = Path(__file__).resolve().parent


def _trainer(train_set, out, config, *, process=None, dropout=0.1, **kw):
    return Trainer(process or NoiseProcess(), make_denoiser(dropout=dropout), train_set, config, out,
                   run_config=RUN_CONFIG, progress=False, **kw)


def _assert_same_state(a: Trainer, b: Trainer):
    for (name, p), q in zip(a.model.named_parameters(), b.model.parameters()):
        assert torch.equal(p, q), f"model parameter {name} differs"
    for (name, p), q in zip(a.ema_model.named_parameters(), b.ema_model.parameters()):
        assert torch.equal(p, q), f"EMA parameter {name} differs"
    sa, sb = a.optimizer.state_dict(), b.optimizer.state_dict()
    assert sa["param_groups"] == sb["param_groups"]
    assert sa["state"].keys() == sb["state"].keys()
    for k in sa["state"]:
        for field, value in sa["state"][k].items():
            assert torch.equal(value, sb["state"][k][field]), f"optimizer state {k}/{field} differs"


def _rng_validate(module, step, epoch):
    # consumes torch's global RNG, as sampling would: a resume must restore the RNG to stay identical
    return {"score": float(torch.rand(()))}


# ---- exact resume ----------------------------------------------------------------------------------
@pytest.mark.parametrize("batch_size, grad_accum, k", [(8, 1, 16), (6, 2, 12)])
def test_resume_is_exact(train_set, tmp_path, batch_size, grad_accum, k):
    opts = dict(batch_size=batch_size, grad_accum=grad_accum, val_every=1)
    full = _trainer(train_set, tmp_path / "full", resume_config(max_steps=k, **opts), validate=_rng_validate)
    summary = full.fit()
    assert summary["steps"] == k and summary["stopped_by"] == "max_steps"

    half = _trainer(train_set, tmp_path / "split", resume_config(max_steps=k // 2, **opts), validate=_rng_validate)
    assert half.fit()["steps"] == k // 2
    assert 0 < half.batch_in_epoch < half.micro_batches_per_epoch  # the split falls inside an epoch
    again = _trainer(train_set, tmp_path / "split", resume_config(max_steps=k, **opts), validate=_rng_validate)
    assert again.step == 0
    torch.manual_seed(12345)  # as in a new process: the RNG state must come from the checkpoint
    summary2 = again.fit(resume=True)
    assert summary2["steps"] == k and summary2["epochs"] == summary["epochs"]
    _assert_same_state(full, again)

    # the logs agree too, including the validation scores drawn from the global RNG
    def lines(run):
        recs = [json.loads(s) for s in (tmp_path / run / "log.jsonl").read_text().splitlines()]
        return [(r["step"], r.get("val"), round(r.get("loss", 0.0), 6)) for r in recs]

    assert lines("full") == lines("split")



def test_ctrl_c_checkpoints_the_step_it_reached_and_the_resume_is_exact(train_set, tmp_path, monkeypatch, capsys):
    import os
    import signal

    k = 12
    full = _trainer(train_set, tmp_path / "full", resume_config(max_steps=k))
    full.fit()
    cut = _trainer(train_set, tmp_path / "cut", resume_config(max_steps=k, ckpt_every=0))  # no periodic checkpoint
    step = Trainer._train_step

    def interrupt_at_five(self, order):
        step(self, order)
        if self.step == 5:
            os.kill(os.getpid(), signal.SIGINT)  # as Ctrl-C: the step in progress finishes first

    monkeypatch.setattr(Trainer, "_train_step", interrupt_at_five)
    # Python's own Ctrl-C handler, also where pytest runs as a background job (which starts with SIGINT ignored)
    outer = signal.signal(signal.SIGINT, signal.default_int_handler)
    handler = signal.getsignal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt):
        cut.fit()
    assert signal.getsignal(signal.SIGINT) is handler  # put back
    assert "interrupted at step 5: checkpoint saved" in capsys.readouterr().err
    monkeypatch.setattr(Trainer, "_train_step", step)
    again = _trainer(train_set, tmp_path / "cut", resume_config(max_steps=k, ckpt_every=0))
    summary = again.fit(resume=True)
    assert summary["steps"] == k and summary["steps_this_call"] == k - 5
    _assert_same_state(full, again)
    # a process started with SIGINT ignored (a background job) keeps ignoring it
    monkeypatch.setattr(Trainer, "_train_step", interrupt_at_five)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        ignored = _trainer(train_set, tmp_path / "ignored", resume_config(max_steps=k, ckpt_every=0)).fit()
        assert ignored["steps"] == k and signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, outer)

def test_resume_changes_nothing_when_a_run_already_finished(train_set, tmp_path):
    cfg = resume_config(max_steps=6)
    first = _trainer(train_set, tmp_path, cfg)
    first.fit()
    again = _trainer(train_set, tmp_path, cfg)
    summary = again.fit(resume=True)
    assert summary["steps"] == 6 and summary["stopped_by"] == "max_steps" and summary["loss"] is None
    _assert_same_state(first, again)


def test_kill_while_writing_second_checkpoint_then_resume(train_set, data_root, tmp_path):
    out = tmp_path / "run"
    proc = subprocess.run([sys.executable, str(HERE / "kill_script.py"), str(out), str(data_root)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == -9, proc.stderr[-2000:]
    assert (out / "written_once").exists()  # the first checkpoint was complete before the kill
    assert (out / ".checkpoint.tmp").is_dir()  # killed half-way through the second one
    ckpt = load_checkpoint(out, training_state=True)
    assert ckpt.step == 4 and ckpt.training_state["step"] == 4

    cfg = resume_config(max_steps=10)
    resumed = _trainer(train_set, out, cfg)
    assert resumed.fit(resume=True)["steps"] == 10
    assert not (out / ".checkpoint.tmp").exists()
    full = _trainer(train_set, tmp_path / "full", cfg)
    full.fit()
    _assert_same_state(full, resumed)


# ---- failures --------------------------------------------------------------------------------------
def test_nan_loss_stops_and_keeps_last_good_checkpoint(train_set, tmp_path):
    cfg = resume_config(max_steps=20, ckpt_every=3)
    tr = _trainer(train_set, tmp_path, cfg, process=NaNAfter(NoiseProcess(), 5))
    with pytest.raises(TrainingError) as err:
        tr.fit()
    msg = str(err.value)
    assert "\n" not in msg
    assert "loss became nan at step 5 (epoch 0)" in msg
    assert "last good checkpoint (step 3)" in msg and str(tmp_path) in msg
    assert tr.step == 4  # no optimizer step was taken with the NaN loss
    assert all(torch.isfinite(p).all() for p in tr.model.parameters())
    assert load_checkpoint(tmp_path).step == 3


def test_nan_before_any_checkpoint_says_so(train_set, tmp_path):
    tr = _trainer(train_set, tmp_path, resume_config(max_steps=20), process=NaNAfter(NoiseProcess(), 1))
    with pytest.raises(TrainingError, match=r"at step 1 .*no checkpoint was written yet"):
        tr.fit()
    with pytest.raises(CheckpointError, match="holds no checkpoint"):
        resolve_checkpoint(tmp_path)


def test_nan_steps_are_skipped_when_keep_last_good_is_off(train_set, tmp_path):
    class NaNOnce(NoiseProcess):
        calls = 0

        def loss(self, denoiser, batch, *, generator=None):
            self.calls += 1
            out = super().loss(denoiser, batch, generator=generator)
            return out * float("nan") if self.calls == 2 else out

    tr = _trainer(train_set, tmp_path, resume_config(max_steps=4, keep_last_good=False), process=NaNOnce())
    with pytest.warns(UserWarning, match="loss became nan at step 2"):
        summary = tr.fit()
    assert summary["steps"] == 4 and math.isfinite(summary["loss"])
    assert all(torch.isfinite(p).all() for p in tr.model.parameters())


def test_empty_dataset_is_a_training_error(tmp_path):
    with pytest.raises(TrainingError, match="dataset 'nothing_here' is empty"):
        _trainer(EmptyDataset(), tmp_path, resume_config())


def test_batch_size_larger_than_dataset_is_clamped(train_set, tmp_path):
    with pytest.warns(UserWarning, match=f"batch_size 1000 is larger than dataset .* \\({len(train_set)} graphs\\)"):
        tr = _trainer(train_set, tmp_path, resume_config(batch_size=1000, max_steps=2))
    assert tr.batch_size == len(train_set) and tr.steps_per_epoch == 1
    assert tr.fit()["steps"] == 2


def test_a_warm_up_longer_than_the_step_budget_is_a_warning(train_set, tmp_path):
    with pytest.warns(UserWarning, match=r"warmup_steps 8 > max_steps 2: the learning rate stops at 25% of lr"):
        tr = _trainer(train_set, tmp_path, resume_config(warmup_steps=8, max_steps=2))
    assert tr.fit()["steps"] == 2
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a warm-up inside the budget is silent
        _trainer(train_set, tmp_path / "b", resume_config(warmup_steps=2, max_steps=2))  # lr reached at the last step


def test_loss_of_wrong_shape_is_reported(train_set, tmp_path):
    class MeanOnly(NoiseProcess):
        def loss(self, denoiser, batch, *, generator=None):
            return super().loss(denoiser, batch, generator=generator).mean()

    with pytest.raises(TrainingError, match=r"one value per graph, shape \(8,\), got \(\)"):
        _trainer(train_set, tmp_path, resume_config(max_steps=2), process=MeanOnly()).fit()


def test_resume_with_another_process_is_refused(train_set, tmp_path):
    _trainer(train_set, tmp_path, resume_config(max_steps=2)).fit()
    other = Trainer(RegressionProcess(), make_denoiser(), train_set, resume_config(max_steps=4), tmp_path,
                    run_config={"process": {"name": "toy_regression"}}, progress=False)
    with pytest.raises(CheckpointError, match="trained with process 'toy_noise', this run uses 'toy_regression'"):
        other.fit(resume=True)


def test_resume_without_checkpoint_starts_fresh_with_warning(train_set, tmp_path):
    tr = _trainer(train_set, tmp_path, resume_config(max_steps=2))
    with pytest.warns(UserWarning, match="holds no checkpoint; starting from scratch"):
        assert tr.fit(resume=True)["steps"] == 2


def test_resume_into_a_different_model_names_the_key(train_set, tmp_path):
    _trainer(train_set, tmp_path, resume_config(max_steps=2)).fit()
    wider = Trainer(NoiseProcess(), make_denoiser(hidden=16), train_set, resume_config(max_steps=4), tmp_path,
                    run_config=RUN_CONFIG, progress=False)
    with pytest.raises(CheckpointError, match=r"model.safetensors: '0.weight' has shape \(32, 2\) in the checkpoint"):
        wider.fit(resume=True)


# ---- learning rate, accumulation, EMA --------------------------------------------------------------
def test_lr_schedule_values():
    lr = 1e-3
    warm = LRSchedule(TrainConfig(lr=lr, warmup_steps=4), total_steps=100)
    assert [warm(s, 0) for s in range(6)] == pytest.approx([lr / 4, lr / 2, 3 * lr / 4, lr, lr, lr])
    expo = LRSchedule(TrainConfig(lr=lr, lr_schedule="exponential", lr_gamma=0.5, warmup_steps=2), 100)
    assert expo(0, 0) == pytest.approx(lr / 2)
    assert [expo(50, e) for e in range(3)] == pytest.approx([lr, lr / 2, lr / 4])
    cos = LRSchedule(TrainConfig(lr=lr, lr_schedule="cosine", warmup_steps=10), total_steps=110)
    assert cos(9, 0) == pytest.approx(lr)
    assert cos(10, 0) == pytest.approx(lr)
    assert cos(60, 0) == pytest.approx(lr / 2)
    assert 0 < cos(109, 0) < 1e-3 * lr
    values = [cos(s, 0) for s in range(10, 110)]
    assert all(a > b for a, b in zip(values, values[1:]))


def test_trainer_applies_the_schedule(train_set, tmp_path):
    seen = []

    def record(trainer, event, info):
        if event == "step":
            seen.append((info["lr"], trainer.optimizer.param_groups[0]["lr"], info["epoch"]))

    cfg = resume_config(batch_size=40, max_steps=5, warmup_steps=2, lr=1e-2, lr_gamma=0.5)  # 2 steps per epoch
    _trainer(train_set, tmp_path, cfg, callbacks=[record]).fit()
    assert [s[0] for s in seen] == pytest.approx([5e-3, 1e-2, 5e-3, 5e-3, 2.5e-3])
    assert [s[1] for s in seen] == [s[0] for s in seen]
    assert [s[2] for s in seen] == [0, 0, 1, 1, 2]


def test_budget_horizon_takes_the_larger_of_step_and_time_fractions():
    lr = 1e-3
    steps = LRSchedule(TrainConfig(lr=lr, lr_schedule="cosine", warmup_steps=10), total_steps=110)
    budget = LRSchedule(TrainConfig(lr=lr, lr_schedule="cosine", warmup_steps=10, lr_horizon="budget"), 110)
    assert steps(60, 0, 0.9) == pytest.approx(lr / 2)  # the step horizon ignores the clock
    assert budget(10, 0, 0.5) == pytest.approx(lr / 2)  # half the minutes used: half-way down the cosine
    assert budget(60, 0, 0.1) == pytest.approx(lr / 2)  # half the steps done, little time: the steps decide
    assert budget(60, 0, 1.0) == pytest.approx(0.0)
    assert budget(5, 0, 0.5) == pytest.approx(lr / 2 * 6 / 10)  # warm-up still applies
    constant = LRSchedule(TrainConfig(lr=lr, lr_horizon="budget"), 110)
    assert constant(50, 0, 0.7) == lr  # only the cosine has a horizon
    with pytest.raises(ConfigError, match="lr_horizon must be one of steps, budget, got 'time'"):
        TrainConfig(lr_horizon="time")


@pytest.mark.parametrize("horizon", ["steps", "budget"])
def test_budget_horizon_decays_a_run_stopped_by_its_minutes(train_set, tmp_path, horizon):
    seen = []

    def record(trainer, event, info):
        if event == "step":
            seen.append(info["lr"])

    cfg = resume_config(epochs=1000, max_minutes=1.0 / 60, ckpt_every=0, warmup_steps=0, lr=1e-2,
                        lr_schedule="cosine", lr_horizon=horizon)
    summary = _trainer(train_set, tmp_path, cfg, process=SlowProcess(0.02), callbacks=[record]).fit()
    assert summary["stopped_by"] == "max_minutes" and len(seen) >= 10
    assert seen[0] == pytest.approx(1e-2, rel=0.05)
    if horizon == "steps":  # 3,000 planned steps: a one-second run never leaves the top of the cosine
        assert min(seen) > 0.99e-2
    else:  # the minutes end the cosine: the last steps run at a small fraction of the peak rate
        assert seen[-1] < 0.1e-2
        assert all(a >= b for a, b in zip(seen, seen[1:]))
        state = torch.load(resolve_checkpoint(tmp_path) / "training_state.pt", weights_only=True)
        assert state["lr_time_fraction"] > 0.9


def test_budget_horizon_resumes_where_the_cosine_was(train_set, tmp_path):
    seen = []

    def record(trainer, event, info):
        if event == "step":
            seen.append(info["lr"])
            if len(seen) == 16:
                raise KeyboardInterrupt  # interrupted after the step-15 checkpoint, part-way through the budget

    cfg = resume_config(epochs=1000, max_minutes=2.0 / 60, ckpt_every=5, warmup_steps=0, lr=1e-2,
                        lr_schedule="cosine", lr_horizon="budget")
    with pytest.raises(KeyboardInterrupt):
        _trainer(train_set, tmp_path, cfg, process=SlowProcess(0.03), callbacks=[record]).fit()
    at_checkpoint = seen[14]
    assert 0.05e-2 < at_checkpoint < 0.99e-2  # part of the budget used: part-way down the cosine
    resumed = []
    again = _trainer(train_set, tmp_path, cfg, process=SlowProcess(0.03),
                     callbacks=[lambda t, e, i: resumed.append(i["lr"]) if e == "step" else None]).fit(resume=True)
    assert again["stopped_by"] == "max_minutes"
    assert abs(resumed[0] - at_checkpoint) < 0.5 * (1e-2 - at_checkpoint)  # no jump back to the peak rate
    assert resumed[-1] < 0.1e-2


def test_grad_accumulation_matches_one_big_batch(train_set, tmp_path):
    grads = {}

    def grab(name):
        def cb(trainer, event, info):
            if event == "step":
                grads[name] = [p.grad.clone() for p in trainer.model.parameters()]
        return cb

    common = dict(max_steps=1, grad_clip=None, ema_decay=None, ckpt_every=0)
    for name, bs, accum in (("big", 8, 1), ("accum", 4, 2), ("half", 4, 1)):
        cfg = resume_config(batch_size=bs, grad_accum=accum, **common)
        tr = _trainer(train_set, tmp_path / name, cfg, process=RegressionProcess(), dropout=0.0,
                      callbacks=[grab(name)])
        tr.fit()
    for a, b in zip(grads["big"], grads["accum"]):
        assert torch.allclose(a, b, rtol=1e-5, atol=1e-7)
    # the check has teeth: half the data gives another gradient
    assert not all(torch.allclose(a, b, rtol=1e-3, atol=1e-6) for a, b in zip(grads["big"], grads["half"]))


def test_amp_trains_under_bf16_autocast_on_cpu(train_set, tmp_path):
    seen = []

    def record(module, inputs, output):
        seen.append(output.dtype)

    def fit(amp):
        seen.clear()
        cfg = resume_config(batch_size=8, max_steps=3, amp=amp, ema_decay=None, ckpt_every=0)
        tr = _trainer(train_set, tmp_path / f"amp{amp}", cfg, process=RegressionProcess(), dropout=0.0)
        tr.model[0].register_forward_hook(record)
        tr.fit()
        return tr, list(seen)

    plain, dtypes = fit(False)
    assert set(dtypes) == {torch.float32}
    mixed, dtypes = fit(True)
    assert set(dtypes) == {torch.bfloat16}  # the forward pass ran in bf16 ...
    assert all(p.dtype == torch.float32 for p in mixed.model.parameters())  # ... the weights stay float32
    out = mixed._loss_module(torch.randn(3, 2))  # ... and the process computes its loss on float32 outputs
    assert out.dtype == torch.float32
    log = [json.loads(x) for x in (tmp_path / "ampTrue" / "log.jsonl").read_text().splitlines() if "loss" in x]
    assert log and all(math.isfinite(x["loss"]) for x in log)
    # bf16 changes the arithmetic: the weights after three steps differ from float32's, but only slightly
    diffs = [float((p - q).detach().abs().max()) for p, q in zip(plain.model.parameters(), mixed.model.parameters())]
    assert 0 < max(diffs) < 0.05


def test_amp_warns_on_a_cpu_that_emulates_bf16(train_set, tmp_path, monkeypatch):
    import graphdiff.train.trainer as trainer_module

    monkeypatch.setattr(trainer_module, "cpu_has_bf16", lambda: False)
    with pytest.warns(UserWarning, match="bf16 is emulated"):
        _trainer(train_set, tmp_path / "a", resume_config(amp=True))


def test_ema_update_math():
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    ema = EMA(model, decay=0.9)
    assert not ema.module.training and not any(p.requires_grad for p in ema.module.parameters())
    before = {k: v.clone() for k, v in ema.module.state_dict().items()}
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p))
        model[1].running_mean.fill_(3.0)
    ema.update()
    for (name, p), e in zip(model.named_parameters(), ema.module.parameters()):
        assert torch.allclose(e, 0.9 * before[name] + 0.1 * p, atol=1e-6), name
        assert not torch.allclose(e, p)
    assert torch.equal(ema.module[1].running_mean, torch.full((4,), 3.0))  # buffers are copied
    other = EMA(model, decay=0.5)
    other.load_state_dict(ema.state_dict())
    assert torch.equal(other.module[0].weight, ema.module[0].weight)
    fresh = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    ema.copy_to(fresh)
    assert torch.equal(fresh[0].weight, ema.module[0].weight)
    with pytest.raises(ValueError):
        EMA(model, decay=1.0)


def test_ema_warmup_schedule_follows_the_model_early():
    model = nn.Linear(3, 4)
    ema = EMA(model, decay=0.999, warmup=True)
    assert [round(ema.decay_at(n), 4) for n in (1, 2, 10, 100)] == [0.1818, 0.25, 0.55, 0.9182]
    assert ema.decay_at(20000) == 0.999 and EMA(model, decay=0.999).decay_at(1) == 0.999
    before = model.weight.detach().clone()
    with torch.no_grad():
        model.weight.add_(1.0)
    ema.update(1)
    assert torch.allclose(ema.module.weight, (2 / 11) * before + (9 / 11) * model.weight, atol=1e-6)
    # after 1,000 updates towards fixed weights, the warm-up average keeps a negligible share of the start; the
    # constant decay keeps 0.999 ** 1000 = 37% of it
    plain = EMA(model, decay=0.999)
    warm = EMA(model, decay=0.999, warmup=True)
    start = model.weight.detach().clone()
    with torch.no_grad():
        model.weight.add_(1.0)
    for n in range(1, 1001):
        plain.update()
        warm.update(n)
    share = lambda e: float(((model.weight - e.module.weight) / (model.weight - start)).mean())  # noqa: E731
    assert abs(share(plain) - 0.999**1000) < 1e-3 and share(warm) < 0.01
    with pytest.raises(ValueError, match="needs the update number"):
        warm.update()


def test_trainer_ema_follows_the_model(train_set, tmp_path):
    tr = _trainer(train_set, tmp_path, resume_config(max_steps=3, ema_decay=0.5, warmup_steps=0))
    start = [p.detach().clone() for p in tr.model.parameters()]
    tr.fit()
    for p0, p, e in zip(start, tr.model.parameters(), tr.ema_model.parameters()):
        assert not torch.equal(e, p0) and not torch.equal(e, p)
    off = _trainer(train_set, tmp_path / "off", resume_config(max_steps=1, ema_decay=None))
    assert off.ema_model is off.model and off.ema is None
    off.fit()
    assert not (tmp_path / "off" / "checkpoint" / "ema.safetensors").exists()


# ---- stopping, logging, callbacks ------------------------------------------------------------------
def test_max_minutes_stops_and_checkpoints(train_set, tmp_path):
    cfg = resume_config(epochs=1000, max_minutes=0.4 / 60, ckpt_every=0)
    summary = _trainer(train_set, tmp_path, cfg, process=SlowProcess(0.02)).fit()
    assert summary["stopped_by"] == "max_minutes"
    assert 1 <= summary["steps"] < 100
    assert summary["seconds"] < 5
    assert load_checkpoint(tmp_path).step == summary["steps"]


def test_log_jsonl_validation_and_callbacks(train_set, tmp_path):
    events = []
    calls = []

    def validate(module, step, epoch):
        calls.append((step, epoch, module.training))
        return {"score": torch.tensor(0.5)}

    cfg = resume_config(batch_size=20, epochs=2, log_every=3, ckpt_every=5, val_every=1)
    summary = _trainer(train_set, tmp_path, cfg, validate=validate,
                       callbacks=[lambda t, ev, info: events.append((ev, info["step"]))]).fit()
    assert summary["stopped_by"] == "epochs" and summary["steps"] == 8 and summary["epochs"] == 2
    assert calls == [(4, 1, False), (8, 2, False)]
    recs = [json.loads(s) for s in (tmp_path / "log.jsonl").read_text().splitlines()]
    train = [r for r in recs if "loss" in r]
    val = [r for r in recs if "val" in r]
    assert [r["step"] for r in train] == [3, 6, 8]
    for r in train:
        assert {"step", "epoch", "loss", "lr", "grad_norm", "seconds"} <= r.keys()
        assert math.isfinite(r["loss"]) and r["grad_norm"] > 0
    assert val == [{"step": 4, "epoch": 1, "val": {"score": 0.5}, "seconds": val[0]["seconds"]},
                   {"step": 8, "epoch": 2, "val": {"score": 0.5}, "seconds": val[1]["seconds"]}]
    assert [s for e, s in events if e == "step"] == list(range(1, 9))
    assert [s for e, s in events if e == "checkpoint"] == [5, 8]


def test_fresh_fit_truncates_log_and_resume_appends(train_set, tmp_path):
    _trainer(train_set, tmp_path, resume_config(max_steps=4, log_every=1)).fit()
    _trainer(train_set, tmp_path, resume_config(max_steps=6, log_every=1)).fit(resume=True)
    steps = [json.loads(s)["step"] for s in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4, 5, 6]
    with pytest.raises(TrainingError, match=r"already holds a run \(checkpoint at step 6\).*nothing was changed"):
        _trainer(train_set, tmp_path, resume_config(max_steps=2, log_every=1)).fit()  # a run is never dropped
    assert len((tmp_path / "log.jsonl").read_text().splitlines()) == 6
    _trainer(train_set, tmp_path, resume_config(max_steps=2, log_every=1)).fit(overwrite=True)
    steps = [json.loads(s)["step"] for s in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert steps == [1, 2]


# ---- configuration ---------------------------------------------------------------------------------
def test_unknown_key_names_the_closest_one():
    with pytest.raises(ConfigError) as err:
        TrainConfig.from_dict({"batch_sise": 4}, where="run.yaml [train]")
    assert str(err.value) == "run.yaml [train]: unknown training option 'batch_sise'; did you mean 'batch_size'?"
    assert isinstance(err.value, GraphdiffError)


@pytest.mark.parametrize("key, value, text", [
    ("batch_size", 0, "batch_size must be an integer >= 1, got 0"),
    ("batch_size", True, "batch_size must be an integer"),
    ("lr", 0, "lr must be a number > 0, got 0"),
    ("lr", "fast", "lr must be a number > 0, got 'fast'"),
    ("grad_accum", 0, "grad_accum must be an integer >= 1"),
    ("ema_decay", 1.5, "ema_decay must be a number >= 0 and < 1 or null"),
    ("lr_schedule", "cosin", "did you mean 'cosine'"),
    ("betas", [0.9], "betas must be two numbers"),
    ("device", "gpu", "device must be"),
    ("amp", "yes", "amp must be true or false"),
    ("epochs", None, "epochs must be an integer >= 1, got null"),
])
def test_bad_values_are_one_line_config_errors(key, value, text):
    with pytest.raises(ConfigError) as err:
        TrainConfig.from_dict({key: value}, where="run.yaml [train]")
    msg = str(err.value)
    assert msg.startswith("run.yaml [train]: ") and text in msg and "\n" not in msg


def test_config_round_trip_and_yaml_numbers():
    cfg = TrainConfig.from_dict({"lr": "1e-4", "betas": [0.8, 0.99], "max_steps": 10.0, "grad_clip": None})
    assert cfg.lr == 1e-4 and cfg.betas == (0.8, 0.99) and cfg.max_steps == 10 and cfg.grad_clip is None
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg
    assert json.loads(json.dumps(cfg.to_dict())) == cfg.to_dict()
    with pytest.raises(ConfigError, match="^TrainConfig: batch_size"):
        TrainConfig(batch_size=-1)


def test_progress_bar_runs(train_set, tmp_path, capsys):
    tr = Trainer(NoiseProcess(), make_denoiser(), train_set, resume_config(max_steps=3), tmp_path,
                 run_config=RUN_CONFIG, progress=True)
    tr.fit()
    assert "loss=" in capsys.readouterr().err



def test_a_resume_with_other_training_settings_says_which(train_set, tmp_path):
    _trainer(train_set, tmp_path, resume_config(max_steps=4)).fit()
    with pytest.warns(UserWarning, match=r"train\.lr=0\.001 \(the run's: 0\.003\); repeat the run's --set"):
        _trainer(train_set, tmp_path, resume_config(max_steps=6, lr=1e-3)).fit(resume=True)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a longer budget is not another setting
        _trainer(train_set, tmp_path, resume_config(max_steps=8, lr=1e-3)).fit(resume=True)
