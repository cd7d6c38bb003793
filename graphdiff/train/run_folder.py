"""A run folder's rules: what a run writes beside its checkpoint, when a folder may take a new run, and how
``log.jsonl`` records values that JSON does not know."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from ..errors import ConfigError, TrainingError

__all__ = ["RUN_FILES", "check_fresh_run_folder", "check_resume_or_overwrite", "json_default"]


def json_default(obj):
    """``json.dumps``'s ``default`` for ``log.jsonl``: tensors and numpy values as numbers or lists, the rest as
    strings."""
    if isinstance(obj, torch.Tensor):
        return obj.item() if obj.numel() == 1 else obj.tolist()
    if hasattr(obj, "tolist"):  # numpy arrays and scalars
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    return str(obj)


def check_resume_or_overwrite(resume: bool, overwrite: bool) -> None:
    """``resume`` and ``overwrite`` together contradict each other: one error, before any work, wherever asked."""
    if resume and overwrite:
        raise ConfigError("resume (--resume) continues the run in the folder and overwrite (--overwrite) starts it "
                          "afresh: give one of them")


RUN_FILES = ("log.jsonl", "command.txt")  # what a run writes beside its checkpoint


def check_fresh_run_folder(out_dir: Path) -> None:
    """Refuse a run folder that already holds a run (``checkpoint/config.json``), naming its step, or the files a
    run writes there (``log.jsonl``, ``command.txt``)."""
    ckpt = Path(out_dir) / "checkpoint" / "config.json"
    if ckpt.is_file():
        try:
            step = json.loads(ckpt.read_text()).get("step", "?")
        except (OSError, ValueError, AttributeError):
            step = "?"
        raise TrainingError(f"{out_dir} already holds a run (checkpoint at step {step}); --resume (resume=True) "
                            f"continues it, --overwrite (overwrite=True) starts it afresh, or choose another folder "
                            f"(nothing was changed)")
    found = [n for n in RUN_FILES if (Path(out_dir) / n).exists()]
    if found:  # a run stopped before its first checkpoint, or files of the user's own: a new run would replace them
        raise TrainingError(f"{out_dir} holds {' and '.join(found)} (a run's, with no checkpoint, or yours), which "
                            f"a new run would replace; --overwrite (overwrite=True) starts afresh there, or choose "
                            f"another folder (nothing was changed)")
