"""What a checkpoint carries beyond the weights, and putting a :class:`~graphdiff.train.trainer.Trainer` back where
its checkpoint left it.

:func:`training_state` is the ``training_state.pt`` payload (optimizer, schedule, step, epoch, position within the
epoch, elapsed seconds, batch size, every rank's RNG states); :func:`restore` loads a run folder's checkpoint into a
trainer (weights, EMA, optimizer, position, this rank's RNG) and drops log lines written after it, so that training
``K`` steps at once or ``K/2`` steps then resuming gives identical parameters.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import torch

from ..errors import CheckpointError
from .checkpoint import MODEL, TRAINING_STATE, load_checkpoint, load_weights, resolve_checkpoint

STATE_VERSION = 1


def rng_state() -> dict:
    """This process's torch RNG states (CPU, and every CUDA device's when there is one)."""
    state = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = [s.cpu() for s in torch.cuda.get_rng_state_all()]
    return state


def training_state(trainer, rng_states: list[dict]) -> dict:
    """The resumable state of ``trainer`` beside its weights; ``rng_states``: one :func:`rng_state` per rank."""
    return {
        "version": STATE_VERSION,
        "optimizer": trainer.optimizer.state_dict(),
        "scheduler": trainer.schedule.state_dict(),
        "step": trainer.step,
        "epoch": trainer.epoch,
        "batch_in_epoch": trainer.batch_in_epoch,
        "elapsed": float(trainer.elapsed()),
        "lr_time_fraction": float(trainer._time_fraction),
        "batch_size": trainer.batch_size,
        "grad_accum": trainer.config.grad_accum,
        "world_size": trainer.world_size,
        "seed": trainer.config.seed,
        "rng": rng_states,
    }


def restore(trainer) -> bool:
    """Load the checkpoint in ``trainer.checkpoint_dir`` into ``trainer``; ``False`` (with a warning) when there
    is none. A checkpoint of another process, or whose optimizer state does not fit, is a one-line error."""
    try:
        folder = resolve_checkpoint(trainer.checkpoint_dir)
    except CheckpointError:
        warnings.warn(f"resume asked for but {trainer.out_dir} holds no checkpoint; starting from scratch",
                      stacklevel=4)
        return False
    ckpt = load_checkpoint(folder, map_location=trainer.device, training_state=True)
    theirs = ckpt.config.get("process")
    theirs = theirs.get("name") if isinstance(theirs, dict) else None
    ours = trainer.run_config.get("process")
    ours = ours.get("name") if isinstance(ours, dict) else getattr(trainer.process, "name", None)
    if theirs is not None and ours is not None and theirs != ours:
        raise CheckpointError(
            f"{folder / 'config.json'}: checkpoint was trained with process {theirs!r}, this run uses {ours!r}"
        )
    check_same_data(folder, ckpt.config, trainer.run_config)
    changed = train_diff(ckpt.config, {"train": trainer.config.to_dict()})
    if changed:
        warnings.warn(f"{folder}: resuming with other training settings than the run's: {changed}; repeat the "
                      "run's --set options to resume it exactly", stacklevel=4)
    try:
        load_weights(trainer._model, ckpt.model_state, str(folder / MODEL))
    except CheckpointError:
        diff = settings_diff(ckpt.config, trainer.run_config)
        if not diff:
            raise
        raise CheckpointError(f"{folder}: the checkpoint's network does not fit this run: it was trained with "
                              f"{diff}; resume with its settings, or start afresh with --overwrite "
                              "(overwrite=True)") from None
    ema = trainer._ema
    if ema is not None:
        if ckpt.ema_state is None:
            warnings.warn(f"{folder} has no EMA weights; the EMA restarts from the model", stacklevel=4)
            ema.module.load_state_dict(trainer._model.state_dict())
        else:
            ema.load_state_dict(ckpt.ema_state, str(folder / "ema.safetensors"))

    where = folder / TRAINING_STATE
    ts = ckpt.training_state
    missing = [k for k in ("optimizer", "step", "epoch", "batch_in_epoch") if k not in ts]
    if missing:
        raise CheckpointError(f"{where}: missing required key(s) {', '.join(repr(k) for k in missing)}")
    try:
        trainer.optimizer.load_state_dict(ts["optimizer"])
    except (ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(f"{where}: the optimizer state does not fit this model ({exc})") from None
    trainer.step, trainer.epoch = int(ts["step"]), int(ts["epoch"])
    position = int(ts["batch_in_epoch"])
    old_bs = int(ts.get("batch_size", trainer.batch_size))
    if old_bs != trainer.batch_size:
        warnings.warn(f"{where}: resuming with batch_size {trainer.batch_size} (checkpoint: {old_bs}); "
                      "the rest of the current epoch is approximate", stacklevel=4)
        position = (position * old_bs) // trainer.batch_size
    trainer.batch_in_epoch = min(position, trainer.micro_batches_per_epoch)
    trainer._elapsed_before = float(ts.get("elapsed", 0.0))
    trainer._time_fraction = float(ts.get("lr_time_fraction", 0.0))
    trainer.last_checkpoint_step = trainer.step

    rng = ts.get("rng")
    if isinstance(rng, list) and rng:
        mine = rng[trainer.rank] if trainer.rank < len(rng) else rng[0]
        torch.set_rng_state(mine["cpu"].cpu())
        cuda = mine.get("cuda")
        if cuda and torch.cuda.is_available():
            for i, s in enumerate(cuda[: torch.cuda.device_count()]):
                torch.cuda.set_rng_state(s.cpu(), i)
    if trainer.is_main:
        trim_log(trainer.log_path, trainer.step)
    return True


def check_same_data(folder: Path, theirs: dict, ours: dict) -> None:
    """A resume reads the channels by position: the run's data must have the checkpoint's node and edge categories
    and condition columns, in the same order (same shapes with other meanings would train without an error)."""
    old, new = theirs.get("schema") or {}, ours.get("schema") or {}
    for key in ("node_categories", "edge_categories", "graph_features"):
        if key in old and key in new and list(old[key]) != list(new[key]):
            raise CheckpointError(
                f"{folder}: trained on {theirs.get('dataset')!r} with {key.replace('_', ' ')} {list(old[key])}, "
                f"but this run's data ({ours.get('dataset')!r}) has {list(new[key])}; resume on the same data, "
                "fine-tune on new data (graphdiff finetune --from), or start afresh with --overwrite")


def _flat(d, prefix: str = "") -> dict:
    out = {}
    for k, v in (d or {}).items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _differences(a: dict, b: dict, form: str, limit: int = 4, skip=()) -> str:
    """The keys where the flat settings ``a`` (the checkpoint's) and ``b`` (this run's) differ, each as ``form``
    with ``{k}``, ``{a}`` and ``{b}``, at most ``limit`` of them; ``""`` when they agree."""
    keys = [k for k in dict.fromkeys([*a, *b]) if k not in skip and a.get(k) != b.get(k)]
    parts = [form.format(k=k, a=repr(a.get(k)), b=repr(b.get(k))) for k in keys[:limit]]
    return ", ".join(parts) + (f" and {len(keys) - limit} more" if len(keys) > limit else "")


def settings_diff(theirs: dict, ours: dict, limit: int = 4) -> str:
    """The dataset and model settings where a checkpoint's config (``theirs``) and a run's (``ours``) differ, as
    ``"model.n_layers=2 (this run: 3), ..."``; ``""`` when they agree."""
    def flat(c):
        return {"dataset": c.get("dataset"), **_flat(c.get("dataset_options"), "dataset_options."),
                **_flat(c.get("model"), "model.")}

    return _differences(flat(theirs), flat(ours), "{k}={a} (this run: {b})", limit)


# settings a resume may change without changing what the run learns (the budget, the machine, the bookkeeping)
_RESUME_FREE = ("max_minutes", "max_steps", "epochs", "threads", "device", "compile", "log_every", "ckpt_every",
                "val_every", "progress")


def train_diff(theirs: dict, ours: dict, limit: int = 4) -> str:
    """The ``train`` settings (but budget, machine and logging) where a checkpoint's run and this one differ."""
    return _differences(theirs.get("train") or {}, ours.get("train") or {}, "train.{k}={b} (the run's: {a})", limit,
                        skip=_RESUME_FREE)


def trim_log(path: Path, step: int) -> None:
    """Drop the lines of ``log.jsonl`` for steps after ``step`` (written by a run that died after its last
    checkpoint); lines cut short by a kill go too."""
    if not path.is_file():
        return
    keep = []
    for line in path.read_text().splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(rec, dict) and isinstance(rec.get("step"), int) and rec["step"] > step:
            continue
        keep.append(line)
    path.write_text("".join(s + "\n" for s in keep))
