"""The training loop, the same for every diffusion process.

The :class:`Trainer` only needs a *process* with ``process.loss(denoiser, batch, *, generator=None)`` returning one
loss per graph (``Tensor[B]``) and a ``name``, a *denoiser* ``nn.Module``, and a *dataset* with ``len(ds)`` and
``ds.batch(indices) -> GraphState``.

Runs are reproducible and resume exactly: the data order of epoch ``e`` is a permutation drawn from a generator
seeded with ``(seed, e)``; the generator handed to ``process.loss`` for micro-batch ``j`` of optimizer step ``s`` on
rank ``r`` is seeded with ``(seed, s, j, r)``; the learning rate is a function of step and epoch; and checkpoints
carry the optimizer state, torch's global RNG states and the position within the epoch. Training ``K`` steps at
once or ``K/2`` steps, then resuming to ``K``, gives identical parameters.
"""

from __future__ import annotations

import collections
import json
import math
import os
import signal
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterable
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import ConfigError, TrainingError
from . import distributed as D
from . import resume
from .amp import AutocastForward, cpu_has_bf16
from .batching import graph_sizes, group_by_size
from .checkpoint import save_checkpoint
from .config import TrainConfig
from .compile import compile_errors, compile_module
from .ema import EMA
from .schedule import LRSchedule, derive_seed
from .run_folder import check_fresh_run_folder, check_resume_or_overwrite, json_default
from .threads import ThreadPolicy

MAX_SKIPPED_IN_A_ROW = 10

Callback = Callable[["Trainer", str, dict], Any]


_UNTOUCHED = object()  # _catch_interrupt installed no handler


def _dataset_name(ds) -> str:
    from ..data.base import dataset_label

    name = dataset_label(ds)
    split = getattr(ds, "_split", None)
    if split is not None and not isinstance(split, str):  # a wrapper (fine-tuning's aligned split) around a split
        split = getattr(split, "_split", None)
    return f"{name!r}" + (f" (split {split!r})" if isinstance(split, str) else "")


class Trainer:
    """Trains a denoiser with a diffusion process's loss: AdamW, warm-up and schedule, clipping, EMA, gradient
    accumulation, bf16 autocast of the forward pass (CUDA or CPU), checkpoints, ``log.jsonl``, validation and DDP
    under ``torchrun``.

    One optimizer step accumulates ``grad_accum`` micro-batches of ``batch_size`` graphs each (across all processes
    together: each rank takes a contiguous share of every micro-batch). The loss minimised is the mean per-graph
    loss over all graphs of the step.

    Args:
        process: object with ``loss(denoiser, batch, *, generator=None) -> Tensor[B]`` and ``name``.
        denoiser: the network; moved to the training device.
        dataset: ``len(ds)`` graphs, ``ds.batch(indices) -> GraphState``.
        config: the training options.
        out_dir: run folder; gets ``checkpoint/`` and ``log.jsonl``.
        run_config: JSON-serialisable description of the run, stored in every checkpoint's ``config.json``;
            ``run_config["process"]["name"]`` is checked on resume.
        validate: ``validate(ema_module, step, epoch) -> dict`` called on rank 0 every ``val_every`` epochs.
        progress: show progress on rank 0 (a tqdm bar on a terminal, a line every 30 s in a log file).
        callbacks: ``cb(trainer, event, info)`` called after every optimizer step (``"step"``) and every written
            checkpoint (``"checkpoint"``, rank 0 only).

    Under ``torchrun`` the constructor joins the process group (:func:`~graphdiff.train.distributed.init_from_env`)
    and wraps the denoiser in ``DistributedDataParallel``; only rank 0 writes logs and checkpoints.

    Raises:
        TrainingError: an empty dataset.
        ConfigError: fewer graphs per batch than processes.
    """

    def __init__(
        self,
        process,
        denoiser: nn.Module,
        dataset,
        config: TrainConfig,
        out_dir: str | os.PathLike,
        *,
        run_config: dict,
        validate: Callable[[nn.Module, int, int], dict] | None = None,
        progress: bool = True,
        callbacks: Iterable[Callback] = (),
    ):
        if not isinstance(config, TrainConfig):
            raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
        self.process = process
        self.config = config
        self.out_dir = Path(out_dir)
        self.run_config = dict(run_config)
        self.validate = validate
        self.progress = progress
        self.callbacks = list(callbacks)
        self.dataset = dataset

        self.dist = D.init_from_env(config.device)
        self.device = self.dist.device
        self.rank, self.world_size = self.dist.rank, self.dist.world_size

        n = len(dataset)
        if n == 0:
            raise TrainingError(f"dataset {_dataset_name(dataset)} is empty (0 graphs); nothing to train on")
        bs = config.batch_size
        if bs > n:
            warnings.warn(
                f"batch_size {bs} is larger than dataset {_dataset_name(dataset)} ({n} graphs); using {n}",
                stacklevel=2,
            )
            bs = n
        if bs < self.world_size:
            raise ConfigError(
                f"batch_size {bs} is smaller than the {self.world_size} processes; every process needs a graph"
            )
        self.batch_size = bs
        self.num_graphs = n
        if config.max_steps is not None and config.warmup_steps > config.max_steps:
            warnings.warn(f"warmup_steps {config.warmup_steps} > max_steps {config.max_steps}: the learning rate "
                          f"stops at {config.max_steps / config.warmup_steps:.0%} of lr "
                          f"{config.lr:g}; lower the warm-up (train.warmup_steps, finetune.warmup_steps)", stacklevel=2)
        if config.amp and self.device.type == "cpu" and not cpu_has_bf16():
            warnings.warn("train.amp on a CPU without bf16 instructions (AVX512-BF16/AMX): bf16 is emulated and "
                          "likely slower than float32; set amp: false", stacklevel=2)
        micro = math.ceil(n / bs)
        tail = n % bs
        if self.world_size > 1 and tail and tail < self.world_size:
            micro -= 1  # a last micro-batch too small to give every process a graph is dropped
        self.micro_batches_per_epoch = micro
        self.steps_per_epoch = math.ceil(micro / config.grad_accum)
        total = config.epochs * self.steps_per_epoch
        if config.max_steps is not None:
            total = min(total, config.max_steps)
        self.total_steps = total
        self.schedule = LRSchedule(config, total)
        self._sizes = graph_sizes(dataset) if config.group_by_size else None

        self._model = denoiser.to(self.device)
        if self.world_size > 1:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self._train_module: nn.Module = nn.parallel.DistributedDataParallel(self._model, device_ids=ids)
        else:
            self._train_module = self._model
        # the loss runs through the compiled wrapper; the optimizer, EMA and checkpoints keep the plain module
        self._loss_module = compile_module(self._train_module) if config.compile else self._train_module
        if config.amp and self.device.type in ("cuda", "cpu"):  # the forward in bf16, the loss in float32
            self._loss_module = AutocastForward(self._loss_module, self.device.type)
        # after wrapping: DDP has broadcast rank 0's weights, so every rank's EMA starts from the same ones
        self._ema = EMA(self._model, config.ema_decay, warmup=config.ema_warmup) if config.ema_decay is not None \
            else None
        self.optimizer = torch.optim.AdamW(
            self._model.parameters(), lr=config.lr, betas=config.betas, eps=config.eps,
            weight_decay=config.weight_decay,
        )

        self.checkpoint_dir = self.out_dir / "checkpoint"
        self.log_path = self.out_dir / "log.jsonl"
        self.step = 0
        self.epoch = 0
        self.batch_in_epoch = 0
        self.last_checkpoint_step: int | None = None
        self.lr = self.schedule(0, 0)
        self._elapsed_before = 0.0
        self._time_fraction = 0.0  # share of the time budget used (lr_horizon: budget), carried across resumes
        self._time_fraction0 = 0.0
        self._t0 = time.monotonic()
        self._skipped_in_a_row = 0
        self._bar = None

    # ---- public views ------------------------------------------------------------------------------
    @property
    def model(self) -> nn.Module:
        """The trained model (never the DDP wrapper)."""
        return self._model

    @property
    def ema_model(self) -> nn.Module:
        """The EMA copy of the model (the model itself when EMA is off)."""
        return self._ema.module if self._ema is not None else self._model

    @property
    def ema(self) -> EMA | None:
        """The :class:`EMA` keeper, or ``None`` when EMA is off."""
        return self._ema

    @property
    def is_main(self) -> bool:
        """Whether this process is rank 0 (the one that writes logs and checkpoints)."""
        return self.rank == 0

    def elapsed(self) -> float:
        """Training seconds so far, including those before a resume."""
        return self._elapsed_before + (time.monotonic() - self._t0)

    # ---- the loop ----------------------------------------------------------------------------------
    def fit(self, resume: bool = False, overwrite: bool = False) -> dict:
        """Train until ``epochs``, ``max_steps`` or ``max_minutes`` (per call) is reached, then checkpoint.

        Args:
            resume: continue from ``out_dir/checkpoint`` (a missing checkpoint starts afresh with a warning).
            overwrite: start afresh in an ``out_dir`` that holds a run (its checkpoint and log are replaced);
                without it (or ``resume``) such a folder is refused before anything in it changes.

        Returns:
            ``{"steps", "epochs", "loss", "stopped_by", "seconds", "checkpoint", "threads", "batch_size"}``:
            optimizer steps and epochs done in total, the mean loss of the last ``log_every`` steps of this call
            (``None`` when none ran), why training stopped, the seconds of this call, the checkpoint folder, the
            CPU threads and the batch size used (the config's, capped at the dataset's size).

        Raises:
            TrainingError: a non-finite loss or gradient norm (the last good checkpoint is left as it was).
            CheckpointError: an unreadable checkpoint, or one trained with another process.
        """
        cfg = self.config
        call_start = time.monotonic()
        check_resume_or_overwrite(resume, overwrite)
        if not resume and not overwrite:
            check_fresh_run_folder(self.out_dir)
        if self.is_main:
            self.out_dir.mkdir(parents=True, exist_ok=True)
        D.barrier()
        resumed = self._resume() if resume else False
        if not resumed:
            self.step = self.epoch = self.batch_in_epoch = 0
            self._elapsed_before = 0.0
            self._time_fraction = 0.0
            torch.manual_seed(derive_seed(cfg.seed, "torch", self.rank))
            if self.is_main:
                self.log_path.write_text("")
        D.barrier()

        self._time_fraction0 = self._time_fraction
        start_step = self.step
        self._t0 = time.monotonic()
        self._recent: collections.deque[float] = collections.deque(maxlen=cfg.log_every)
        self._pending: list[float] = []
        self._pending_extra: dict[str, float] = {}
        stopped_by = None
        self._threads = ThreadPolicy(cfg.threads) if self.device.type == "cpu" else None
        if self._threads is not None:
            line = self._threads.start()
            if self.is_main:
                print(line, file=sys.stderr, flush=True)
        self._bar = self._make_bar()
        self._interrupted = False
        previous = self._catch_interrupt()
        try:
            while stopped_by is None:
                if self.epoch >= cfg.epochs:
                    stopped_by = "epochs"
                    break
                order = self._epoch_order(self.epoch)
                while self.batch_in_epoch < self.micro_batches_per_epoch:
                    stopped_by = self._stop_reason()
                    if stopped_by:
                        break
                    self._train_step(order)
                if stopped_by:
                    break
                self.epoch += 1
                self.batch_in_epoch = 0
                if cfg.val_every and self.epoch % cfg.val_every == 0:
                    self._validate()
            self._flush_log()
            self._checkpoint()
        finally:
            if previous is not _UNTOUCHED:
                signal.signal(signal.SIGINT, previous)
            if self._bar is not None:
                self._bar.close()
                self._bar = None
            if self._threads is not None:
                self._threads.restore()
        if self._interrupted:  # also a Ctrl-C during the last step's checkpoint or validation: not swallowed
            print(f"interrupted at step {self.step}: checkpoint saved to {self.checkpoint_dir} (--resume, "
                  "resume=True, continues from there)", file=sys.stderr, flush=True)
            raise KeyboardInterrupt
        D.barrier()
        return {
            "steps": self.step,
            "steps_this_call": self.step - start_step,
            "epochs": self.epoch,
            "loss": sum(self._recent) / len(self._recent) if self._recent else None,
            "stopped_by": stopped_by,
            "seconds": time.monotonic() - call_start,
            "checkpoint": str(self.checkpoint_dir),
            "threads": None if self._threads is None else self._threads.threads,
            "batch_size": self.batch_size,  # the one used: the config's, capped at the dataset's size
        }

    def _make_bar(self):
        if not (self.progress and self.is_main):
            return None
        from ..progress import progress

        return progress(total=self.total_steps, initial=min(self.step, self.total_steps), desc="train", unit="step",
                        dynamic_ncols=True)

    def _catch_interrupt(self):
        """On one process in the main thread, a first Ctrl-C (SIGINT) ends training at the next step boundary with
        a checkpoint of that step (then ``KeyboardInterrupt``), so an interrupted run loses nothing; a second one
        stops at once. A process that ignores SIGINT (started in the background) keeps ignoring it. Returns the
        handler to put back, or ``_UNTOUCHED`` where nothing was installed."""
        if self.world_size != 1 or threading.current_thread() is not threading.main_thread():
            return _UNTOUCHED
        current = signal.getsignal(signal.SIGINT)
        if current is signal.SIG_IGN or current is None:  # ignored, or a handler set outside Python: left alone
            return _UNTOUCHED

        def on_interrupt(signum, frame):
            if self._interrupted:
                raise KeyboardInterrupt
            self._interrupted = True
            print("\nstopping after this step with a checkpoint; Ctrl-C again to stop at once", file=sys.stderr,
                  flush=True)

        signal.signal(signal.SIGINT, on_interrupt)
        return current

    def _stop_reason(self) -> str | None:
        cfg = self.config
        if self._interrupted:
            return "interrupted"
        if cfg.max_steps is not None and self.step >= cfg.max_steps:
            return "max_steps"
        if cfg.max_minutes is not None:
            over = time.monotonic() - self._t0 >= cfg.max_minutes * 60.0
            if D.broadcast_flag(over):  # rank 0's clock decides, so that all ranks stop at the same step
                return "max_minutes"
        return None

    def _budget_fraction(self) -> float:
        """With ``lr_horizon: budget`` and ``max_minutes``, the share of the time budget used so far (a resumed
        run continues from its checkpoint's share and spreads the rest over its own minutes); else 0."""
        cfg = self.config
        if cfg.lr_horizon != "budget" or cfg.max_minutes is None:
            return 0.0
        used = min(1.0, (time.monotonic() - self._t0) / (cfg.max_minutes * 60.0))
        p0 = self._time_fraction0
        self._time_fraction = D.broadcast_float(p0 + (1.0 - p0) * used)  # rank 0's clock: one rate on all ranks
        return self._time_fraction

    def _epoch_order(self, epoch: int) -> torch.Tensor:
        """The epoch's permutation as one int64 tensor (no Python object per graph, even for MOSES)."""
        g = torch.Generator().manual_seed(derive_seed(self.config.seed, "epoch", epoch))
        order = torch.randperm(self.num_graphs, generator=g)
        if self._sizes is not None:
            order = group_by_size(order, self._sizes, self.batch_size, self.config.group_by_size, g)
        return order

    def _share(self, ids) -> list[int]:
        base, extra = divmod(len(ids), self.world_size)
        start = self.rank * base + min(self.rank, extra)
        part = ids[start:start + base + (1 if self.rank < extra else 0)]
        return part.tolist() if isinstance(part, torch.Tensor) else list(part)

    def _train_step(self, order: torch.Tensor) -> None:
        cfg, bs = self.config, self.batch_size
        first = self.batch_in_epoch
        micro = range(first, min(first + cfg.grad_accum, self.micro_batches_per_epoch))
        self.lr = lr = self.schedule(self.step, self.epoch, self._budget_fraction())
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self._loss_module.train()
        self.optimizer.zero_grad(set_to_none=True)

        global_batches = [order[m * bs:(m + 1) * bs] for m in micro]
        total = sum(len(ids) for ids in global_batches)
        scale = self.world_size / total  # DDP averages gradients over ranks: the result is the mean over `total`
        loss_sum = torch.zeros((), device=self.device)
        ddp = isinstance(self._train_module, nn.parallel.DistributedDataParallel)
        for j, ids in enumerate(global_batches):
            share = self._share(ids)
            batch = self.dataset.batch(share).to(self.device)
            gen = torch.Generator(device=self.device)
            gen.manual_seed(derive_seed(cfg.seed, "noise", self.step, j, self.rank))
            sync = self._train_module.no_sync() if ddp and j < len(global_batches) - 1 else nullcontext()
            with sync:
                with compile_errors(self.config.compile):
                    per_graph = self.process.loss(self._loss_module, batch, generator=gen)
                if not isinstance(per_graph, torch.Tensor) or tuple(per_graph.shape) != (len(share),):
                    got = tuple(per_graph.shape) if isinstance(per_graph, torch.Tensor) else type(per_graph).__name__
                    raise TrainingError(
                        f"process {getattr(self.process, 'name', '?')!r}: loss() must return one value per graph, "
                        f"shape ({len(share)},), got {got}"
                    )
                per_graph = per_graph.float()
                (per_graph.sum() * scale).backward()
            loss_sum += per_graph.detach().sum()

        loss = float(D.all_reduce_sum(loss_sum)) / total
        done = micro.stop
        if not math.isfinite(loss):
            self._non_finite("loss", loss, done)
            return
        max_norm = cfg.grad_clip if cfg.grad_clip is not None else float("inf")
        grad_norm = float(torch.nn.utils.clip_grad_norm_(self._model.parameters(), max_norm))
        if not math.isfinite(grad_norm):
            self._non_finite("gradient norm", grad_norm, done)
            return
        self.optimizer.step()
        if self._ema is not None:
            self._ema.update(self.step + 1)  # the step this update completes (restored on resume)
        self._skipped_in_a_row = 0
        self.batch_in_epoch = done
        self.step += 1
        self._after_step({"step": self.step, "epoch": self.epoch, "loss": loss, "lr": lr, "grad_norm": grad_norm})

    def _non_finite(self, what: str, value: float, done: int) -> None:
        """Stop with a TrainingError (keep_last_good, or too many in a row), else skip the step."""
        self.optimizer.zero_grad(set_to_none=True)
        self._skipped_in_a_row += 1
        msg = f"{what} became {value} at step {self.step + 1} (epoch {self.epoch})"
        if self.config.keep_last_good or self._skipped_in_a_row >= MAX_SKIPPED_IN_A_ROW:
            if self._skipped_in_a_row > 1:
                msg += f" after {self._skipped_in_a_row} skipped steps in a row"
            if self.last_checkpoint_step is not None:
                kept = f"last good checkpoint (step {self.last_checkpoint_step}) kept in {self.checkpoint_dir}"
            else:
                kept = "no checkpoint was written yet"
            raise TrainingError(f"{msg}; {kept}")
        warnings.warn(f"{msg}; step skipped (keep_last_good is off)", stacklevel=3)
        self._log({"step": self.step + 1, "epoch": self.epoch, "skipped": msg, "seconds": self.elapsed()})
        self.batch_in_epoch = done
        self.step += 1

    def _after_step(self, info: dict) -> None:
        cfg = self.config
        self._recent.append(info["loss"])
        self._pending.append(info["loss"])
        self._pending_extra = {"lr": info["lr"], "grad_norm": info["grad_norm"]}
        for cb in self.callbacks:
            cb(self, "step", info)
        if self._bar is not None:
            self._bar.update(1)
            self._bar.set_postfix(loss=f"{info['loss']:.4g}", refresh=False)
        if getattr(self, "_threads", None) is not None:
            line = self._threads.poll()
            if line and self.is_main:
                print(line, file=sys.stderr, flush=True)
        if self.step % cfg.log_every == 0:
            self._flush_log()
        if cfg.ckpt_every and self.step % cfg.ckpt_every == 0:
            self._checkpoint()

    # ---- logging, validation -----------------------------------------------------------------------
    def _log(self, record: dict) -> None:
        if not self.is_main:
            return
        with open(self.log_path, "a") as fh:
            fh.write(json.dumps(record, default=json_default) + "\n")

    def _flush_log(self) -> None:
        """Write one line for the steps since the last one: mean loss, and lr / grad norm of the latest step."""
        if not self._pending:
            return
        loss = sum(self._pending) / len(self._pending)
        threads = {} if getattr(self, "_threads", None) is None else {"threads": self._threads.threads}
        self._log({"step": self.step, "epoch": self.epoch, "loss": loss, **self._pending_extra,
                   "seconds": round(self.elapsed(), 3), **threads})
        self._pending = []

    def _validate(self) -> None:
        if self.validate is None:
            return
        if self.is_main:
            module = self.ema_model
            was_training = module.training
            module.eval()
            try:
                result = self.validate(module, self.step, self.epoch)
            finally:
                module.train(was_training)
            self._log({"step": self.step, "epoch": self.epoch, "val": result or {},
                       "seconds": round(self.elapsed(), 3)})
            if self._bar is not None and isinstance(result, dict):
                nums = {k: f"{v:.4g}" for k, v in result.items() if isinstance(v, (int, float))}
                if nums:
                    self._bar.write(f"epoch {self.epoch} step {self.step}: " +
                                    ", ".join(f"{k}={v}" for k, v in nums.items()))
        D.barrier()

    # ---- checkpoints -------------------------------------------------------------------------------
    def _checkpoint(self) -> None:
        rng_states = D.all_gather_object(resume.rng_state())  # every rank's RNG, written by rank 0
        if self.is_main:
            config = {"train": self.config.to_dict(), **self.run_config, "step": self.step, "epoch": self.epoch}
            save_checkpoint(
                self.checkpoint_dir, config=config, model=self._model,
                ema=self._ema.module if self._ema is not None else None,
                training_state=resume.training_state(self, rng_states),
            )
        self.last_checkpoint_step = self.step
        if self.is_main:
            for cb in self.callbacks:
                cb(self, "checkpoint", {"step": self.step, "epoch": self.epoch, "path": str(self.checkpoint_dir)})

    def _resume(self) -> bool:
        return resume.restore(self)
