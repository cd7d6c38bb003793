"""The one place where settings are checked against what the code accepts, and the one "did you mean" helper.

Every module that rejects an unknown key, name or choice goes through :func:`suggest`, so a misspelt setting gets
the same one-line message wherever it is read (a preset, ``--set``, a keyword argument, a ``config.json``).
"""

from __future__ import annotations

import difflib
import inspect
import operator
import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import ConfigError

if TYPE_CHECKING:
    import torch


def suggest(value, choices: Iterable, *, cutoff: float = 0.5) -> str:
    """``"; did you mean 'x'?"`` naming the closest of ``choices`` to ``value``, or ``""`` when none is close."""
    close = difflib.get_close_matches(str(value), [str(c) for c in choices], n=1, cutoff=cutoff)
    return f"; did you mean {close[0]!r}?" if close else ""


def check_choice(value, choices: Iterable, what: str, *, error: type[Exception] = ConfigError):
    """``value`` if it is one of ``choices``; else ``error("WHAT: unknown 'v'; did you mean ..; choose from ..")``."""
    choices = list(choices)
    if value not in choices:
        raise error(f"{what}: unknown {value!r}{suggest(value, choices)}; choose from "
                    f"{', '.join(map(str, sorted(choices, key=str)))}")
    return value


def check_keys(d: dict, valid: Iterable, where: str, *, error: type[Exception] = ConfigError) -> None:
    """Reject keys of mapping ``d`` that are not in ``valid``, naming the closest valid key (or listing them)."""
    valid = list(valid)
    if not isinstance(d, dict):
        raise error(f"{where}: expected a mapping, got {type(d).__name__}")
    for k in d:
        if k not in valid:
            hint = suggest(k, valid) or f"; valid keys: {', '.join(sorted(map(str, valid)))}"
            raise error(f"{where}: unknown key {k!r}{hint}")


def accepted_kwargs(fn_or_cls, skip: Iterable[str] = ()) -> list[str]:
    """The keyword arguments a function (or a class's ``__init__``) accepts, minus ``skip``."""
    sig = inspect.signature(fn_or_cls.__init__ if inspect.isclass(fn_or_cls) else fn_or_cls)
    skip = set(skip) | {"self"}
    return [p.name for p in sig.parameters.values()
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name not in skip]


def check_kwargs(fn_or_cls, d: dict, where: str, skip: Iterable[str] = (), *,
                 error: type[Exception] = ConfigError) -> None:
    """Reject keys of ``d`` that ``fn_or_cls`` does not accept as keyword arguments."""
    check_keys(d, accepted_kwargs(fn_or_cls, skip), where, error=error)


__all__ = ["suggest", "check_choice", "check_keys", "check_kwargs", "accepted_kwargs", "check_output_file",
           "check_output_folder", "check_device", "as_integer"]


def as_integer(value) -> int | None:
    """``value`` as a Python int when it is one integer (an int, a numpy integer, a 0-d integer tensor; not a
    bool), else ``None``."""
    if isinstance(value, bool) or (hasattr(value, "dim") and (value.dim() != 0 or value.dtype.is_floating_point)):
        return None
    try:
        return operator.index(value)
    except TypeError:
        return None


def check_at_least(args, minimums: dict[str, int]) -> None:
    """One-line errors for integer options below their minimum: ``minimums`` maps an option as typed
    (``"--seed"``) to its least value (a seed 0, a count 1); an option left out (``None``) is not checked."""
    for flag, least in minimums.items():
        value = getattr(args, flag.lstrip("-").replace("-", "_"))
        if value is not None and value < least:
            raise ConfigError(f"{flag} must be at least {least}, got {value}")


def _check_parent(path: Path, what: str) -> None:
    for parent in path.parents:  # the nearest existing ancestor must be a writable folder
        if parent.exists() or parent.is_symlink():
            if not parent.is_dir():
                raise ConfigError(f"{what} {path}: {parent} is a file, not a folder")
            if not os.access(parent, os.W_OK | os.X_OK):
                raise ConfigError(f"{what} {path}: cannot write in {parent} (permission denied)")
            return


def check_output_file(path, what: str = "--out", suffixes: Iterable[str] | None = None,
                      inputs: dict | None = None) -> Path:
    """``path`` as a file to write, checked before any work: not an existing folder, one of ``suffixes`` (with
    the dot, any case) when given, not one of the command's ``inputs`` (``{"--samples": path, ...}``, so writing
    never replaces what is read), and under a writable folder (missing folders are created later)."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{what} {path} is a folder; give a file name")
    for name, source in (inputs or {}).items():
        if source is not None and Path(source).exists() and path.exists() and path.samefile(source):
            raise ConfigError(f"{what} {path} is the {name} file; write to another name")
    if suffixes is not None:
        suffixes = tuple(suffixes)
        if path.suffix.lower() not in suffixes:
            listed = suffixes[0] if len(suffixes) == 1 else f"{', '.join(suffixes[:-1])} or {suffixes[-1]}"
            raise ConfigError(f"{what} must end in {listed}, got {path.name!r}")
    _check_parent(path, what)
    return path


def check_output_folder(path, what: str = "--out") -> Path:
    """``path`` as a folder to create or fill, checked before any work: not an existing file, under a writable
    folder."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{what} {path} is a file, not a folder")
    if path.is_dir():  # an existing folder is written into, so it is the one that must be writable
        if not os.access(path, os.W_OK | os.X_OK):
            raise ConfigError(f"{what} {path}: cannot write in it (permission denied)")
    else:
        _check_parent(path, what)
    return path


def check_device(device) -> torch.device:
    """``device`` as a ``torch.device`` this machine has; one-line ``ConfigError`` otherwise."""
    import torch

    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ConfigError(f"device {device!r} is not a torch device ({str(exc).splitlines()[0]})") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"device {device!r}: CUDA is not available here (torch {torch.__version__})")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ConfigError(f"device {device!r}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    elif dev.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"device {device!r}: MPS is not available here")
    return dev
