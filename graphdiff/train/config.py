"""Training options: :class:`TrainConfig`, checked field by field with one-line errors."""

from __future__ import annotations

import dataclasses

import math
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from ..checks import suggest
from ..errors import ConfigError

LR_SCHEDULES = ("constant", "exponential", "cosine")
LR_HORIZONS = ("steps", "budget")

# what error messages name while TrainConfig.from_dict builds a config (plain construction names the class)
_WHERE: ContextVar[str] = ContextVar("train_config_where", default="TrainConfig")

# field -> (kind, lower bound, lower bound inclusive?, upper bound, upper inclusive?); kind is "int" or "float"
_NUMERIC: dict[str, tuple[str, float | None, bool, float | None, bool]] = {
    "batch_size": ("int", 1, True, None, True),
    "epochs": ("int", 1, True, None, True),
    "max_steps": ("int", 1, True, None, True),
    "max_minutes": ("float", 0, False, None, True),
    "lr": ("float", 0, False, None, True),
    "weight_decay": ("float", 0, True, None, True),
    "eps": ("float", 0, False, None, True),
    "warmup_steps": ("int", 0, True, None, True),
    "lr_gamma": ("float", 0, False, None, True),
    "grad_clip": ("float", 0, False, None, True),
    "ema_decay": ("float", 0, True, 1, False),
    "grad_accum": ("int", 1, True, None, True),
    "seed": ("int", 0, True, None, True),
    "log_every": ("int", 1, True, None, True),
    "ckpt_every": ("int", 0, True, None, True),
    "val_every": ("int", 0, True, None, True),
    "group_by_size": ("int", 0, True, None, True),
}
_OPTIONAL = {"max_steps", "max_minutes", "grad_clip", "ema_decay"}
_BOOLS = ("amp", "keep_last_good", "ema_warmup", "compile")


def _range_text(lo, lo_inc, hi, hi_inc) -> str:
    parts = []
    if lo is not None:
        parts.append(f"{'>=' if lo_inc else '>'} {lo:g}")
    if hi is not None:
        parts.append(f"{'<=' if hi_inc else '<'} {hi:g}")
    return " and ".join(parts)


def _check_number(key: str, value: Any, where: str) -> int | float | None:
    kind, lo, lo_inc, hi, hi_inc = _NUMERIC[key]
    optional = key in _OPTIONAL
    want = ("an integer" if kind == "int" else "a number") + (f" {_range_text(lo, lo_inc, hi, hi_inc)}")
    if optional:
        want += " or null"
    if value is None:
        if optional:
            return None
        raise ConfigError(f"{where}: {key} must be {want}, got null")
    orig = value
    if kind == "float" and isinstance(value, str):
        # a string that is a plain number ("1e-3" from Python callers; YAML files and --set go through
        # graphdiff.yamlio, which reads it as a float already)
        try:
            value = float(value)
        except ValueError:
            raise ConfigError(f"{where}: {key} must be {want}, got {value!r}") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{where}: {key} must be {want}, got {value!r} ({type(value).__name__})")
    if kind == "int":
        if isinstance(value, float):
            if not value.is_integer():
                raise ConfigError(f"{where}: {key} must be {want}, got {value!r}")
            value = int(value)
    else:
        value = float(value)
        if not math.isfinite(value):
            raise ConfigError(f"{where}: {key} must be {want}, got {value!r}")
    if lo is not None and (value < lo or (value == lo and not lo_inc)):
        raise ConfigError(f"{where}: {key} must be {want}, got {orig!r}")
    if hi is not None and (value > hi or (value == hi and not hi_inc)):
        raise ConfigError(f"{where}: {key} must be {want}, got {orig!r}")
    return value


@dataclass
class TrainConfig:
    """Options of :class:`graphdiff.train.Trainer`.

    Attributes:
        batch_size: graphs per (global) micro-batch; with several processes each takes a contiguous share.
        epochs: passes over the training set.
        max_steps: stop after this many optimizer steps (``None``: no limit).
        max_minutes: stop after this many minutes of one :meth:`~graphdiff.train.Trainer.fit` call.
        lr: peak learning rate of AdamW.
        weight_decay: AdamW's decoupled weight decay.
        betas: AdamW's moment coefficients.
        eps: AdamW's epsilon.
        warmup_steps: linear warm-up of the learning rate over this many optimizer steps.
        lr_schedule: ``"constant"``, ``"exponential"`` (times ``lr_gamma`` per epoch) or ``"cosine"`` (to 0 at
            the last planned step).
        lr_horizon: where the cosine ends: ``"steps"`` (default) at the last planned step (``epochs`` or
            ``max_steps``); ``"budget"`` at the last planned step or at the end of ``max_minutes``, whichever comes
            first, so that a run stopped by its minutes still decays its learning rate (the cosine's position is
            then the larger of the step and time fractions; the time fraction is rank 0's clock, and a resumed
            run spreads the rest of the decay over its new minutes). Without ``max_minutes`` the two agree.
        lr_gamma: per-epoch factor of the exponential schedule.
        grad_clip: clip the global gradient norm to this value (``None``: no clipping; the norm is still logged).
        ema_decay: decay of the exponential moving average of the parameters (``None``: no EMA).
        ema_warmup: the decay of step ``n`` is ``min(ema_decay, (1 + n) / (10 + n))`` (diffusers' schedule), so a
            short run's average is not mostly its initial weights; ``false``: ``ema_decay`` from the first step.
        grad_accum: micro-batches accumulated per optimizer step.
        amp: bf16 autocast of the training forward pass (CUDA and CPU; the weights, the optimizer and the loss
            stay float32). On a CPU it pays where the CPU computes in bf16 (AVX512-BF16 or AMX) and the network's
            time goes to wide tensors (``benchmarks/amp_speed.py``: 1.46-1.61x for PARD, 1.10x DiGress, 0.87x
            GDSS); without bf16 instructions it is emulated and slower (a warning says so). Sampling and
            validation run in float32.
        compile: train through ``torch.compile(model, dynamic=True)`` (fused kernels; one graph for all batch
            shapes). The first step pays the compilation (minutes on a CPU, cached between runs); checkpoints and
            the EMA hold the plain module. Needs a C++ compiler on CPU (Triton on CUDA).
        seed: seed of the initial weights (:meth:`GraphDiffusionPipeline.from_preset`), data order, noise and
            torch's global RNG.
        log_every: write a line to ``log.jsonl`` every this many steps.
        ckpt_every: write a checkpoint every this many steps (0: only when training stops).
        val_every: call the validation hook every this many epochs (0: never).
        group_by_size: 0 (default) keeps the epoch's random order; ``k >= 1`` sorts each run of ``k`` batches of it
            by graph size and shuffles the batches, so a batch pads to sizes close to its own graphs'
            (:mod:`graphdiff.train.batching`; worth it where sizes vary and the denoiser is dense).
        device: ``"auto"`` (CUDA when present), ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
        threads: torch threads on a CPU: ``"auto"`` (the cores other processes leave free, re-checked every 30 s,
            at most torch's own count; :mod:`graphdiff.train.threads`) or a fixed positive integer.
        keep_last_good: on a non-finite loss stop with :class:`~graphdiff.errors.TrainingError` and keep the last
            good checkpoint (``True``); ``False`` skips such steps with a warning instead (and still stops after
            10 in a row).
    """

    batch_size: int = 32
    epochs: int = 100
    max_steps: int | None = None
    max_minutes: float | None = None
    lr: float = 1e-3
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    warmup_steps: int = 0
    lr_schedule: str = "constant"
    lr_horizon: str = "steps"
    lr_gamma: float = 1.0
    grad_clip: float | None = 1.0
    ema_decay: float | None = 0.999
    ema_warmup: bool = True
    grad_accum: int = 1
    amp: bool = False
    compile: bool = False
    seed: int = 0
    log_every: int = 10
    ckpt_every: int = 200
    val_every: int = 0
    group_by_size: int = 0
    device: str = "auto"
    threads: int | str = "auto"
    keep_last_good: bool = True
    def __post_init__(self):
        where = _WHERE.get()
        for key in _NUMERIC:
            setattr(self, key, _check_number(key, getattr(self, key), where))
        for key in _BOOLS:
            v = getattr(self, key)
            if not isinstance(v, bool):
                raise ConfigError(f"{where}: {key} must be true or false, got {v!r}")
        b = self.betas
        if isinstance(b, str) or not hasattr(b, "__len__") or len(b) != 2:
            raise ConfigError(f"{where}: betas must be two numbers in [0, 1), got {b!r}")
        betas = []
        for v in b:
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v < 1:
                raise ConfigError(f"{where}: betas must be two numbers in [0, 1), got {list(b)!r}")
            betas.append(float(v))
        self.betas = (betas[0], betas[1])
        if self.lr_schedule not in LR_SCHEDULES:
            raise ConfigError(f"{where}: lr_schedule must be one of {', '.join(LR_SCHEDULES)}, got "
                              f"{self.lr_schedule!r}{suggest(self.lr_schedule, LR_SCHEDULES)}")
        if self.lr_horizon not in LR_HORIZONS:
            raise ConfigError(f"{where}: lr_horizon must be one of {', '.join(LR_HORIZONS)}, got "
                              f"{self.lr_horizon!r}{suggest(self.lr_horizon, LR_HORIZONS)}")
        t = self.threads
        if t != "auto" and (isinstance(t, bool) or not isinstance(t, int) or t < 1):
            raise ConfigError(f"{where}: threads must be 'auto' or a positive integer, got {t!r}")
        if not isinstance(self.device, str):
            raise ConfigError(f"{where}: device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {self.device!r}")
        if self.device != "auto":
            import torch

            try:
                torch.device(self.device)
            except (RuntimeError, ValueError):
                raise ConfigError(
                    f"{where}: device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {self.device!r}"
                ) from None

    @classmethod
    def keys(cls) -> list[str]:
        """The option names, in declaration order."""
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def from_dict(cls, d: dict | None, where: str = "training config") -> "TrainConfig":
        """Build a config from a mapping (e.g. the ``train:`` section of a YAML preset).

        Args:
            d: option name -> value; missing options keep their defaults.
            where: what to name in error messages (a file and section, say ``"run.yaml [train]"``).

        Raises:
            ConfigError: an unknown key (naming the closest valid one) or a value of the wrong type or range.
        """
        if d is None:
            d = {}
        if not isinstance(d, dict):
            raise ConfigError(f"{where}: training options must be a mapping, got {type(d).__name__}")
        valid = cls.keys()
        for key in d:
            if key not in valid:
                hint = suggest(key, valid) or f"; valid keys: {', '.join(valid)}"
                raise ConfigError(f"{where}: unknown training option {key!r}{hint}")
        token = _WHERE.set(where)
        try:
            return cls(**d)
        finally:
            _WHERE.reset(token)

    def to_dict(self) -> dict:
        """Plain, JSON-ready dict of all options (``from_dict(to_dict())`` gives an equal config)."""
        out = {k: getattr(self, k) for k in self.keys()}
        out["betas"] = list(self.betas)
        return out
