"""The on-disk form of reference statistics (:mod:`graphdiff.metrics.reference_stats`): one folder per reference
entry with a ``<part>.npz`` per part and ``settings.json``, each written atomically (a temporary file renamed into
place); a cache that cannot be written is skipped with a warning, and an unreadable file reads as missing so that
the part is recomputed. :func:`part_arrays` and :func:`set_part` translate between a part and its stored arrays."""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from ..progress import stage
from .mol_features import FP_BITS, PROPERTIES

def _atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """``write`` a temporary file, then rename it to ``path``; a cache that cannot be written is skipped (with a
    line on stderr): the figures do not depend on it."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write(tmp)
        os.replace(tmp, path)
    except OSError as exc:
        stage(f"warning: cannot write the metrics cache file {path} ({exc.strerror or exc}); continuing without it")
    finally:
        try:
            tmp.unlink()
        except OSError:
            pass


def _join(strings: Sequence[str]) -> np.ndarray:
    return np.frombuffer("\n".join(strings).encode("utf-8"), dtype=np.uint8)


def _split(data: np.ndarray) -> list[str]:
    text = data.tobytes().decode("utf-8")
    return text.split("\n") if text else []


class DiskParts:
    """One reference entry on disk: ``<part>.npz`` files in a folder, plus ``settings.json``."""

    def __init__(self, folder: Path, settings: dict):
        self.folder = Path(folder)
        self.settings = settings

    def load(self, part: str) -> dict | None:
        path = self.folder / f"{part}.npz"
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as z:
                return {k: z[k] for k in z.files}
        except Exception:  # truncated or foreign file: recompute
            return None

    def save(self, part: str, source: str, **arrays) -> None:
        arrays["source"] = _join([source])

        def write(path: Path) -> None:
            with open(path, "wb") as fh:
                np.savez(fh, **arrays)

        _atomic_write(self.folder / f"{part}.npz", write)
        settings = self.folder / "settings.json"
        if not settings.is_file():
            _atomic_write(settings, lambda p: p.write_text(json.dumps(self.settings, indent=1)))


def _counter_arrays(c: Counter) -> dict:
    return {"keys": _join(list(c)), "counts": np.fromiter(c.values(), dtype=np.int64, count=len(c))}


def _counter(d: dict) -> Counter:
    return Counter(dict(zip(_split(d["keys"]), d["counts"].tolist())))


def part_arrays(st, part: str) -> dict:
    """The arrays part ``part`` of ``st`` (a ``ReferenceStats``) is stored as."""
    if part == "fp":
        return {"fps": np.stack(st.fps) if st.fps else np.zeros((0, FP_BITS // 8), np.uint8)}
    if part in ("frag", "scaf"):
        return _counter_arrays(getattr(st, part))
    if part == "props":
        vals = np.stack([st.props[p][0] for p in PROPERTIES], 1)
        return {"values": vals, "weights": st.props[PROPERTIES[0]][1]}
    if part == "nspdk":
        return {"mean": st.nspdk_mean}
    if part == "chemnet":
        return {"mu": st.chemnet[0], "sigma": st.chemnet[1]}
    raise KeyError(part)


def set_part(st, part: str, d: dict) -> None:
    """Install a part of ``st`` (a ``ReferenceStats``) given as its stored arrays (see :func:`part_arrays`)."""
    if part == "fp":
        st.fps = list(d["fps"])
    elif part in ("frag", "scaf"):
        setattr(st, part, _counter(d))
    elif part == "props":
        st.props = {p: (d["values"][:, k], d["weights"]) for k, p in enumerate(PROPERTIES)}
    elif part == "nspdk":
        st.nspdk_mean = d["mean"]
    elif part == "chemnet":
        st.chemnet = (d["mu"], d["sigma"])
    else:
        raise KeyError(part)
    if part != "chemnet":
        st.want.add(part)


__all__ = ["DiskParts", "part_arrays", "set_part"]
