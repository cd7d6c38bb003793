"""Checkpoint folders: written atomically, read back with one-line errors.

A checkpoint is a folder::

    checkpoint/
        config.json          the run config plus "step", "epoch", "format", "graphdiff_version", "checkpoint_files"
        model.safetensors    the model's weights
        ema.safetensors      the EMA weights (when EMA is on)
        training_state.pt    optimizer, schedule, RNG states and the position in the data (for resuming)

:func:`save_checkpoint` writes everything into a sibling temporary folder, syncs it to disk and swaps it in with
two renames (``checkpoint`` -> ``.checkpoint.old``, temporary -> ``checkpoint``) before deleting the old one, so
a process killed at any moment leaves a loadable checkpoint: the old one, the new one, or the old one under
``.checkpoint.old``, which :func:`resolve_checkpoint` moves back.

``training_state.pt`` holds only plain containers, numbers, strings and tensors, and is read with
``torch.load(..., weights_only=True)``, so loading a checkpoint never runs pickled code.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import safetensors
import safetensors.torch
import torch
from torch import nn

from ..errors import CheckpointError

FORMAT = 1
CONFIG = "config.json"
MODEL = "model.safetensors"
EMA = "ema.safetensors"
TRAINING_STATE = "training_state.pt"
REQUIRED_KEYS = ("format", "step", "epoch")


def _version() -> str:
    try:
        from .._version import __version__

        return str(__version__)
    except ImportError:  # pragma: no cover - partial installs
        return "unknown"


# ---- writing ---------------------------------------------------------------------------------------
def _fsync_file(path: Path) -> None:
    with open(path, "rb+") as fh:
        fh.flush()
        os.fsync(fh.fileno())


def _fsync_dir(path: Path) -> None:
    if os.name != "posix":  # directories cannot be opened for fsync on Windows
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _plain_state(module_or_state: nn.Module | dict) -> dict[str, torch.Tensor]:
    if isinstance(module_or_state, nn.parallel.DistributedDataParallel):
        module_or_state = module_or_state.module
    sd = module_or_state.state_dict() if isinstance(module_or_state, nn.Module) else module_or_state
    # own contiguous CPU copies: safetensors refuses tensors that share memory (tied weights) or are strided
    return {k: v.detach().to("cpu", copy=True).contiguous() for k, v in sd.items() if isinstance(v, torch.Tensor)}


def _old_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.old")


def _tmp_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp")


def _finish_interrupted_swap(path: Path) -> None:
    """Repair what a swap killed half-way left: move ``.NAME.old`` back, or remove it when ``NAME`` is complete."""
    old = _old_path(path)
    if not old.exists():
        return
    if (path / CONFIG).is_file():
        shutil.rmtree(old, ignore_errors=True)  # the new checkpoint is in place; only the clean-up was cut short
    elif (old / CONFIG).is_file():
        if path.exists():
            shutil.rmtree(path)  # not a checkpoint (no config.json): cannot be the product of a finished swap
        os.replace(old, path)
        _fsync_dir(path.parent)


_OWN_FILES = frozenset({CONFIG, MODEL, EMA, TRAINING_STATE})


def check_replaceable(path: Path, resumable: bool = False) -> list[Path]:
    """What of an existing ``path`` the new checkpoint must keep: the entries that are not checkpoint files (a
    model card, metrics, a run's log), which are copied into the new folder. ``path`` may be missing, an empty
    folder or a checkpoint folder (a ``config.json`` with a ``"format"``); anything else is refused, so that
    saving never deletes a user's files. A training checkpoint (one with ``training_state.pt``) is replaced only by
    another (``resumable=True``, what a trainer writes): a model saved over it would end the run's resumability."""
    if not path.exists() and not path.is_symlink():
        return []
    if not path.is_dir():
        raise CheckpointError(f"{path} exists and is not a folder; choose another path for the checkpoint")
    entries = sorted(path.iterdir())
    if all(e.name.startswith(".") for e in entries):  # empty, or only hidden files (.gitkeep, .DS_Store): kept
        return entries
    try:
        meta = json.loads((path / CONFIG).read_text())
    except (OSError, ValueError):
        meta = None
    if not isinstance(meta, dict) or "format" not in meta:
        shown = ", ".join(e.name for e in entries[:3]) + (", ..." if len(entries) > 3 else "")
        raise CheckpointError(f"{path} is a folder that holds no checkpoint ({shown}); saving there would replace "
                              f"its files: choose a new or empty folder")
    if not resumable and (path / TRAINING_STATE).is_file():
        raise CheckpointError(f"{path} holds a training run's checkpoint (with {TRAINING_STATE}); a model saved "
                              "there would replace it and the run could not be resumed: choose another folder")
    return [e for e in entries if e.name not in _OWN_FILES]


def save_checkpoint(
    path: str | os.PathLike,
    *,
    config: dict,
    model: nn.Module | dict,
    ema: nn.Module | dict | None = None,
    training_state: dict | None = None,
) -> Path:
    """Write a checkpoint folder atomically.

    Args:
        path: the checkpoint folder (created or replaced; its parent is created when missing). An existing
            checkpoint folder is replaced, keeping its files that are not checkpoint files (a model card, a run
            log); an existing file or a non-empty folder that holds no checkpoint is refused.
        config: JSON-serialisable run config; ``"format"``, ``"graphdiff_version"`` and ``"checkpoint_files"``
            are added, ``"step"`` and ``"epoch"`` default to 0.
        model: the model (or its ``state_dict``) for ``model.safetensors``.
        ema: the EMA module (or its ``state_dict``) for ``ema.safetensors``; omitted when ``None``.
        training_state: plain data (dicts, lists, tensors, numbers, strings) for ``training_state.pt``.

    Returns:
        The checkpoint folder.

    Raises:
        CheckpointError: ``config`` is not JSON-serialisable; ``path`` is a file or a folder of other files.
    """
    path = Path(path)
    if path.parent.exists() and not path.parent.is_dir():
        raise CheckpointError(f"{path.parent} is a file, not a folder; choose another path for the checkpoint")
    resumable = training_state is not None
    if not _old_path(path).exists():
        check_replaceable(path, resumable)  # refused before any folder is made
    path.parent.mkdir(parents=True, exist_ok=True)
    _finish_interrupted_swap(path)
    keep = check_replaceable(path, resumable)
    files = [MODEL] + ([EMA] if ema is not None else []) + ([TRAINING_STATE] if training_state is not None else [])
    meta = dict(config)
    meta.setdefault("step", 0)
    meta.setdefault("epoch", 0)
    meta.update(format=FORMAT, graphdiff_version=_version(), checkpoint_files=files)
    try:
        config_text = json.dumps(meta, indent=1, sort_keys=False)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{path / CONFIG}: the run config is not JSON-serialisable ({exc})") from None

    tmp = _tmp_path(path)
    if tmp.exists():
        shutil.rmtree(tmp)  # left by a process killed while writing
    tmp.mkdir()
    try:
        safetensors.torch.save_file(_plain_state(model), str(tmp / MODEL), metadata={"format": "pt"})
        if ema is not None:
            safetensors.torch.save_file(_plain_state(ema), str(tmp / EMA), metadata={"format": "pt"})
        if training_state is not None:
            torch.save(training_state, tmp / TRAINING_STATE)
        for entry in keep:  # copies: the old folder stays whole until the swap
            if entry.is_dir():
                shutil.copytree(entry, tmp / entry.name, symlinks=True)
            else:
                shutil.copy2(entry, tmp / entry.name, follow_symlinks=False)
        (tmp / CONFIG).write_text(config_text)  # written last: a folder with config.json is complete
        mode = (tmp / CONFIG).stat().st_mode & 0o777  # what the umask gives; safetensors writes owner-only files
        for f in (MODEL, EMA):
            if (tmp / f).exists():
                os.chmod(tmp / f, mode)
        for f in files + [CONFIG]:
            _fsync_file(tmp / f)
        _fsync_dir(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)  # the old checkpoint has not been touched
        raise

    old = _old_path(path)
    if path.exists():
        os.replace(path, old)
    os.replace(tmp, path)
    _fsync_dir(path.parent)
    shutil.rmtree(old, ignore_errors=True)
    return path


# ---- reading ---------------------------------------------------------------------------------------
def resolve_checkpoint(path: str | os.PathLike) -> Path:
    """The checkpoint folder for ``path``: the folder itself, ``path/checkpoint`` for a run folder, or
    ``path/model`` for a fine-tune folder (:mod:`graphdiff.finetune`).

    A swap interrupted after the old checkpoint was moved aside is repaired (``.checkpoint.old`` is moved back).
    Meant for folders that no process is writing to at the same time.

    Raises:
        CheckpointError: neither holds a checkpoint.
    """
    path = Path(path)
    # a fine-tune folder's final model/ first (merged weights; its checkpoint/ is for resuming), then a run
    # folder's checkpoint/ (the run folder may hold a config.json of its own)
    if (path / "model" / CONFIG).is_file() and (path / "checkpoint").exists():
        return path / "model"
    candidates = [path / "checkpoint", path]
    for cand in candidates:
        if (cand / CONFIG).is_file():
            if _old_path(cand).exists():
                try:
                    _finish_interrupted_swap(cand)
                except OSError:
                    pass
            return cand
    for cand in candidates:
        old = _old_path(cand)
        if (old / CONFIG).is_file():
            try:
                _finish_interrupted_swap(cand)
            except OSError:
                return old  # read-only folder: read the old one where it lies
            if (cand / CONFIG).is_file():
                return cand
    raise CheckpointError(f"{path} holds no checkpoint (no {CONFIG})")


@dataclass
class Checkpoint:
    """A loaded checkpoint.

    Attributes:
        path: the checkpoint folder.
        config: ``config.json`` (the run config plus step, epoch, format, graphdiff_version).
        model_state: the model's ``state_dict``.
        ema_state: the EMA ``state_dict`` or ``None`` when the checkpoint has none.
        training_state: the contents of ``training_state.pt`` when asked for, else ``None``.
    """

    path: Path
    config: dict
    model_state: dict[str, torch.Tensor]
    ema_state: dict[str, torch.Tensor] | None = None
    training_state: dict | None = None

    @property
    def step(self) -> int:
        """Optimizer steps done when the checkpoint was written."""
        return int(self.config.get("step", 0))

    @property
    def epoch(self) -> int:
        """Epochs completed when the checkpoint was written."""
        return int(self.config.get("epoch", 0))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def _read_safetensors(folder: Path, name: str, device: str) -> dict[str, torch.Tensor]:
    f = folder / name
    if not f.is_file():
        raise CheckpointError(f"{folder}: missing {name} (the checkpoint is incomplete)")
    try:
        return safetensors.torch.load_file(str(f), device=device)
    except Exception as exc:  # SafetensorError, OSError, ... : any failure means the file is unusable
        raise CheckpointError(f"{f}: unreadable or corrupted safetensors file ({_first_line(exc)})") from None


def read_config(folder: str | os.PathLike) -> dict:
    """``config.json`` of a checkpoint folder, checked for the required keys and the format version."""
    folder = Path(folder)
    f = folder / CONFIG
    if not f.is_file():
        raise CheckpointError(f"{folder} holds no checkpoint (no {CONFIG})")
    try:
        config = json.loads(f.read_text())
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{f}: invalid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{f}: unreadable ({_first_line(exc)})") from None
    if not isinstance(config, dict):
        raise CheckpointError(f"{f}: expected a JSON object, got {type(config).__name__}")
    missing = [k for k in REQUIRED_KEYS if k not in config]
    if missing:
        raise CheckpointError(f"{f}: missing required key(s) {', '.join(repr(k) for k in missing)}")
    if config["format"] != FORMAT:
        raise CheckpointError(
            f"{f}: checkpoint format {config['format']!r} is not one this graphdiff ({_version()}) reads ({FORMAT})"
        )
    return config


def load_checkpoint(
    path: str | os.PathLike, *, map_location: str | torch.device = "cpu", training_state: bool = False
) -> Checkpoint:
    """Read a checkpoint folder (or the ``checkpoint/`` of a run folder).

    Args:
        path: checkpoint folder or run folder.
        map_location: device the tensors are loaded onto.
        training_state: also read ``training_state.pt`` (needed to resume training).

    Raises:
        CheckpointError: a missing or corrupted file, invalid ``config.json``, or missing required keys; the
            message names the folder and the file.
    """
    folder = resolve_checkpoint(path)
    config = read_config(folder)
    device = str(torch.device(map_location))
    files = config.get("checkpoint_files")
    model_state = _read_safetensors(folder, MODEL, device)
    ema_state = None
    if (isinstance(files, list) and EMA in files) or (folder / EMA).exists():
        ema_state = _read_safetensors(folder, EMA, device)
    state = None
    if training_state:
        f = folder / TRAINING_STATE
        if not f.is_file():
            raise CheckpointError(f"{folder}: missing {TRAINING_STATE} (needed to resume training)")
        try:
            state = torch.load(f, map_location=device, weights_only=True)
        except Exception as exc:  # truncated zip, disallowed pickle global, ...
            raise CheckpointError(f"{f}: unreadable or corrupted training state ({_first_line(exc)})") from None
        if not isinstance(state, dict):
            raise CheckpointError(f"{f}: expected a dict, got {type(state).__name__}")
    return Checkpoint(path=folder, config=config, model_state=model_state, ema_state=ema_state, training_state=state)


def load_weights(module: nn.Module, state_dict: dict[str, Any], where: str) -> None:
    """Load ``state_dict`` into ``module`` strictly, with a one-line error on the first mismatch.

    A ``DistributedDataParallel`` wrapper is unwrapped, and a ``module.`` prefix on every key (weights saved
    from a wrapped model) is dropped.

    Args:
        module: the module to fill.
        state_dict: parameter and buffer tensors by name.
        where: what to name in errors (say ``"run/checkpoint/model.safetensors"``).

    Raises:
        CheckpointError: a missing or unexpected key, or a shape that differs, naming the first such key.
    """
    if isinstance(module, nn.parallel.DistributedDataParallel):
        module = module.module
    if state_dict and all(k.startswith("module.") for k in state_dict):
        state_dict = {k[len("module."):]: v for k, v in state_dict.items()}
    own = module.state_dict()
    for key, value in own.items():
        if key not in state_dict:
            raise CheckpointError(f"{where}: key {key!r} of the model is missing (shape {tuple(value.shape)})")
        got = state_dict[key]
        if tuple(got.shape) != tuple(value.shape):
            raise CheckpointError(
                f"{where}: {key!r} has shape {tuple(got.shape)} in the checkpoint but {tuple(value.shape)} in the model"
            )
    for key, value in state_dict.items():
        if key not in own:
            raise CheckpointError(
                f"{where}: unexpected key {key!r} (shape {tuple(value.shape)}); the model has no such entry"
            )
    module.load_state_dict(state_dict, strict=True)


def flush_subnormal_(module: nn.Module) -> int:
    """Set the subnormal entries of ``module``'s floating-point parameters and buffers (``0 < |w| <
    torch.finfo(dtype).tiny``, about 1.2e-38 in float32) to zero, in place; returns how many there were.

    Weights that training decayed toward zero can end up subnormal (the GDSS authors' checkpoints hold thousands;
    ``graphdiff import-checkpoint`` counts them). They change no output beyond float rounding, but every product
    with them is subnormal too, and x86 CPUs compute those in microcode (what flushing is worth on the authors' QM9
    checkpoint: ``benchmarks/gdss_authors_speed.py``). Loading for sampling
    (:meth:`GraphDiffusionPipeline.from_pretrained`) calls this; resuming training does not (a resumed run stays
    bit-identical to an uninterrupted one).
    """
    n = 0
    with torch.no_grad():
        for t in (*module.parameters(), *module.buffers()):
            tiny = subnormal_mask(t)
            k = int(tiny.sum()) if tiny is not None else 0
            if k:
                t.masked_fill_(tiny, 0.0)
                n += k
    return n


def subnormal_mask(t: torch.Tensor) -> torch.Tensor | None:
    """Where ``t`` is subnormal (nonzero, below ``torch.finfo(t.dtype).tiny`` in magnitude); ``None`` for
    tensors that are not floating point."""
    if not t.is_floating_point():
        return None
    return (t != 0) & (t.abs() < torch.finfo(t.dtype).tiny)


def count_subnormal(tensors) -> tuple[int, int]:
    """``(subnormal entries, floating-point entries)`` over an iterable of tensors (a state dict's values)."""
    n = total = 0
    for t in tensors:
        mask = subnormal_mask(t)
        if mask is not None:
            n, total = n + int(mask.sum()), total + t.numel()
    return n, total
