"""Dataset plumbing shared by every loader: data root, dataset cards, raw-file fetching, processed caching.

Datasets follow PyG's habit: ``<root>/<name>/raw`` holds the files as published (used as they are when present,
downloaded otherwise and checked against the sha256 of the dataset card), ``<root>/<name>/processed/<variant>``
holds the compact :class:`~graphdiff.data.store.GraphStore` plus ``meta.json``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import urllib.request
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any
from collections.abc import Sequence

import numpy as np
import torch

from .. import yamlio
from ..errors import ChecksumError, DataError, MissingFileError
from ..schema import Schema
from ..state import GraphState
from .store import GraphStore

CACHE_VERSION = 1
log = logging.getLogger(__name__)


def data_root(root: str | os.PathLike | None = None) -> Path:
    """The dataset root: ``root`` if given, else ``$GRAPHDIFF_DATA``, else ``~/.cache/graphdiff``.

    Raises:
        DataError: an empty root, or one that exists and is not a folder.
    """
    where = "--root"
    if root is None:
        env = os.environ.get("GRAPHDIFF_DATA")
        root, where = (env, "$GRAPHDIFF_DATA") if env else (Path.home() / ".cache" / "graphdiff", "the cache")
    if not str(root).strip():
        raise DataError(f"{where}: the dataset root is empty; give a folder")
    path = Path(root).expanduser()
    if path.exists() and not path.is_dir():
        raise DataError(f"{where} {path}: not a folder (the dataset root holds one folder per dataset)")
    return path


# ---- dataset cards ---------------------------------------------------------------------------------
def _cards_dir():
    return resources.files("graphdiff.data") / "cards"


@cache
def load_card(name: str) -> dict:
    """The dataset card ``datasets/<name>.yaml`` (shipped inside the package as ``graphdiff/data/cards``)."""
    f = _cards_dir() / f"{name}.yaml"
    if not f.is_file():
        raise DataError(f"no dataset card {name}.yaml in {_cards_dir()}")
    return yamlio.load(f.read_text())


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while True:
            b = fh.read(chunk)
            if not b:
                break
            h.update(b)
    return h.hexdigest()


@dataclass(frozen=True)
class RawFile:
    """One raw file of a dataset card: a name in ``raw/``, where to download it, and its sha256."""

    name: str
    url: str | None = None
    sha256: str | None = None

    @classmethod
    def from_card(cls, d: dict) -> "RawFile":
        return cls(name=d["name"], url=d.get("url"), sha256=d.get("sha256"))


def _download(url: str, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=dest.name + ".", suffix=".part", dir=dest.parent)
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=60) as resp:  # noqa: S310
            shutil.copyfileobj(resp, out)
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def fetch(raw_dir: Path, choices: Sequence[RawFile], *, download: bool = True) -> Path:
    """Return the path of the first of ``choices`` present in ``raw_dir`` (checksum-verified), downloading the
    first downloadable one when none is present.

    Raises:
        ChecksumError: a present or downloaded file whose sha256 differs from the card.
        MissingFileError: nothing present and the download failed or was disabled.
    """
    for rf in choices:
        p = raw_dir / rf.name
        if p.is_file():
            _verify(p, rf)
            return p
    for rf in choices:
        p = raw_dir / rf.name
        if p.exists():  # not a file: downloading over it would fail or destroy it
            raise DataError(f"{p}: is a directory (or not a regular file), expected the raw file {rf.name}")
    names = " or ".join(dict.fromkeys(rf.name for rf in choices))  # a file with two URLs is named once
    if not download:
        raise MissingFileError(f"raw file {names} not found in {raw_dir} (downloads disabled)")
    errors = []
    for rf in choices:
        if not rf.url:
            continue
        p = raw_dir / rf.name
        try:
            _download(rf.url, p)
        except Exception as exc:  # network errors of many kinds
            errors.append(f"{rf.url}: {type(exc).__name__}: {exc}")
            continue
        try:
            _verify(p, rf)
        except ChecksumError:
            bad = p.with_name(p.name + ".bad")
            os.replace(p, bad)
            raise
        return p
    detail = "; ".join(errors) if errors else "no download URL in the card"
    raise MissingFileError(f"raw file {names} not found in {raw_dir} and could not be downloaded ({detail})")


def _verify(path: Path, rf: RawFile) -> None:
    if not rf.sha256:
        return
    got = sha256_file(path)
    if got != rf.sha256:
        raise ChecksumError(f"{path}: sha256 {got[:16]}... does not match the dataset card's {rf.sha256[:16]}...")


# ---- invalid-row bookkeeping -----------------------------------------------------------------------
class InvalidRows:
    """Counts skipped input rows and keeps the first few (file, line, value, reason) for reports."""

    def __init__(self, keep: int = 10):
        self.keep = keep
        self.count = 0
        self.examples: list[dict] = []

    def add(self, file: str, line: int, value: Any, reason: str) -> None:
        self.count += 1
        if len(self.examples) < self.keep:
            self.examples.append({"file": str(file), "line": int(line), "value": str(value)[:200], "reason": reason})

    def merge(self, other: "InvalidRows") -> None:
        self.count += other.count
        self.examples.extend(other.examples[: max(0, self.keep - len(self.examples))])

    def to_dict(self) -> dict:
        return {"count": self.count, "examples": self.examples}


def note_invalid_rows(ds) -> None:
    """Print one line to stderr when ``ds`` skipped input rows: training on a file says how much of it
    it did not read, with the first reason (``graphdiff datasets info`` lists them)."""
    import os
    import sys

    invalid = (getattr(ds, "info", None) or {}).get("invalid") or {}
    if not invalid.get("count") or int(os.environ.get("RANK", "0")) != 0:  # under torchrun rank 0 says it
        return
    first = (invalid.get("examples") or [{}])[0]
    where = f" (first: line {first['line']}, {first['reason']})" if "line" in first and "reason" in first else ""
    print(f"note: {ds.name}: {invalid['count']:,} invalid row(s) skipped{where}; graphdiff datasets info lists "
          "them", file=sys.stderr)


# ---- the dataset base class ------------------------------------------------------------------------
class GraphDataset(torch.utils.data.Dataset):
    """A dataset of graphs cached as a :class:`GraphStore`; items are single-graph :class:`GraphState` s.

    Subclasses set ``name`` and implement :meth:`process` (raw files -> store, schema kwargs, info).

    Args:
        root: dataset root (see :func:`data_root`).
        split: ``"train"``, ``"val"``, ``"test"`` or ``None`` (all graphs).
        download: allow downloading missing raw files.
        force_reload: rebuild the processed cache even when it is up to date.
    """

    name: str = ""
    kind: str = "graph"

    def __init__(self, root=None, split: str | None = None, *, download: bool = True, force_reload: bool = False):
        self.root = data_root(root)
        self.download = download
        self._split = split
        self.processed_now = False
        path = self.processed_dir
        meta_f = path / "meta.json"
        store = None
        if not force_reload and self._cache_ok(meta_f):
            try:
                store = GraphStore.load(path / "store")
            except DataError as exc:  # a damaged cache is rebuilt, not trusted
                log.warning("%s; rebuilding it", exc)
        if store is None:
            self._build(meta_f)
            store = GraphStore.load(path / "store")
        meta = json.loads(meta_f.read_text(encoding="utf-8"))
        self.schema = Schema.from_dict(meta["schema"])
        self.info: dict = meta["info"]
        self.store = store
        self._idx = self.store.indices(split)

    def _build(self, meta_f: Path) -> None:
        """Process the raw files into ``<processed>/store`` and ``meta.json``.

        An error while processing (a bad raw file) leaves the previous cache as it was. Only then is ``meta.json``
        removed; the store is replaced atomically and ``meta.json`` written last, so a build killed while writing
        leaves a folder without ``meta.json``, which the next load rebuilds instead of trusting."""
        store, schema, info = self.process()
        meta = {"version": CACHE_VERSION, "key": self.cache_key(), "schema": schema.to_dict(), "info": info}
        meta_f.unlink(missing_ok=True)
        store.save(meta_f.parent / "store")
        tmp = meta_f.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(meta, indent=1), encoding="utf-8")
        os.replace(tmp, meta_f)
        self.processed_now = True

    # ---- paths and cache ---------------------------------------------------------------------------
    @property
    def raw_dir(self) -> Path:
        return self.root / self.name / "raw"

    @property
    def processed_dir(self) -> Path:
        return self.root / self.name / "processed" / self.variant()

    def variant(self) -> str:
        """Folder name under ``processed/`` for the options that change processing (default ``"default"``)."""
        return "default"

    def cache_key(self) -> dict:
        """Everything processing depends on; a cache whose key differs is rebuilt."""
        return {"name": self.name, "variant": self.variant()}

    def _cache_ok(self, meta_f: Path) -> bool:
        if not meta_f.is_file() or not (meta_f.parent / "store" / "node_ptr.npy").is_file():
            return False
        try:
            meta = json.loads(meta_f.read_text(encoding="utf-8"))
        except (OSError, ValueError):  # unreadable, not UTF-8, not JSON
            return False
        return (isinstance(meta, dict) and meta.get("version") == CACHE_VERSION and meta.get("key") == self.cache_key()
                and isinstance(meta.get("schema"), dict) and isinstance(meta.get("info"), dict))

    def fetch(self, *choices: RawFile) -> Path:
        return fetch(self.raw_dir, choices, download=self.download)

    def process(self) -> tuple[GraphStore, Schema, dict]:
        raise NotImplementedError

    # ---- torch Dataset API -------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._idx)

    def __getitem__(self, i: int) -> GraphState:
        if not -len(self) <= i < len(self):
            raise IndexError(f"{self.name}: index {i} out of range for {len(self)} graphs")
        return self.store.to_state([int(self._idx[i])], self.schema)

    def batch(self, indices: Sequence[int], max_nodes: int | None = None) -> GraphState:
        """Dense batch of graphs ``indices`` (positions within this split)."""
        return self.store.to_state(self._idx[np.asarray(indices, dtype=np.int64)], self.schema, max_nodes)

    def split(self, split: str) -> "GraphDataset":
        """The same dataset restricted to one split (shares the memory-mapped store); ``"all"``: every graph."""
        view = object.__new__(type(self))
        view.__dict__.update(self.__dict__)
        view._split = split
        view._idx = self.store.indices(None if split == "all" else split)
        return view

    def split_sizes(self) -> dict[str, int]:
        s = np.asarray(self.store.split)
        return {k: int((s == v).sum()) for k, v in (("train", 0), ("val", 1), ("test", 2))}

    def num_nodes(self) -> np.ndarray:
        return self.store.num_nodes[self._idx]

    def graph(self, i: int):
        """``(node_types, edge_index, edge_types)`` numpy arrays of graph ``i`` in this split."""
        return self.store.graph(int(self._idx[i]))

    def to_networkx(self, indices: Sequence[int] | None = None) -> list:
        from ..convert.networkx import arrays_to_networkx

        idx = range(len(self)) if indices is None else indices
        return [arrays_to_networkx(*self.graph(i), self.schema) for i in idx]

    def loader(self, batch_size: int = 32, shuffle: bool = True, generator: torch.Generator | None = None,
               drop_last: bool = False):
        """A ``DataLoader`` yielding dense :class:`GraphState` batches padded to the batch's largest graph."""
        return torch.utils.data.DataLoader(
            range(len(self)), batch_size=batch_size, shuffle=shuffle, generator=generator, drop_last=drop_last,
            collate_fn=lambda ids: self.batch(ids),
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, split={self._split!r}, graphs={len(self)})"


def dataset_label(ds) -> str:
    """How messages name a dataset: a file of the user's own by its path (not the cache's ``custom/<stem>-<sha>``),
    else the dataset's name."""
    path = getattr(ds, "path", None)
    return str(path) if isinstance(path, (str, os.PathLike)) else str(getattr(ds, "name", "") or type(ds).__name__)


def train_schema(ds):
    """The dataset's schema with the node-count histogram of its train split (what sampling draws sizes from)."""
    import dataclasses

    train = ds.split("train")
    hist = np.bincount(train.num_nodes(), minlength=ds.schema.max_nodes + 1)
    return dataclasses.replace(ds.schema, node_count_hist=tuple(int(v) for v in hist))
