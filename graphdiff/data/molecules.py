"""Molecule datasets read from SMILES: QM9, ZINC250k and MOSES (cards ``datasets/{qm9,zinc250k,moses}.yaml``).

Atoms are nodes with atom-token categories (``"C"``, ``"N+"``, ...; hydrogens implicit unless ``explicit_h``),
bonds are edges with the categories of :func:`~graphdiff.convert.rdkit.bond_categories`. Every SMILES row that
cannot be featurised is skipped and counted with its file and 1-based line number in ``info["invalid"]``.

Featurisation runs in ``workers`` processes over chunks of rows; each chunk comes back as a few flat numpy arrays
(no Python object per molecule survives a chunk), featurised by the package's one SMILES featuriser,
:func:`graphdiff.convert.rdkit.smiles_graph` (the fast path of :func:`~graphdiff.convert.rdkit.smiles_to_arrays`).
"""

from __future__ import annotations

import importlib.util
import itertools
import json
import logging
import multiprocessing as mp
import os
import shutil
import sys
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
from rdkit import Chem

from ..convert.rdkit import ORDER_CODE, SmilesRowError, bond_categories, smiles_graph, sort_atom_tokens
from ..errors import DataError, MissingFileError
from ..schema import atom_token
from .base import GraphDataset, InvalidRows, RawFile, load_card, sha256_file
from .files import open_text, read_text
from .store import SPLITS, GraphStore

log = logging.getLogger(__name__)
_PERIODIC = Chem.GetPeriodicTable()

__all__ = ["QM9", "ZINC250k", "MOSES", "zinc_csv_index_to_line"]

FEATURISER_VERSION = 2
CHUNK_ROWS = 10_000
def _token(code: int) -> str:
    z, chg = divmod(int(code), 256)
    return atom_token(_PERIODIC.GetElementSymbol(z), chg - 128)


def _featurise_chunk(lines, line_numbers, col, ncols, explicit_h, kekulize) -> dict:
    """Featurise one chunk of raw lines into flat arrays (runs in a worker process)."""
    ok = np.zeros(len(lines), dtype=bool)
    n_atoms, n_bonds, zs, charged, us, vs, orders, bad = [], [], [], [], [], [], [], []
    for k, line in enumerate(lines):
        s = line.rstrip("\r\n")
        if ncols > 1:
            fields = s.split(",")
            s = fields[col] if len(fields) > col else ""
        try:
            z, c, u, v, o = smiles_graph(s, explicit_h, kekulize)
        except Exception as exc:  # _Invalid, or an RDKit error no check foresaw: a counted, skipped row either way
            why = str(exc) if isinstance(exc, SmilesRowError) else f"{type(exc).__name__}: {str(exc).strip()[:200]}"
            bad.append((int(line_numbers[k]), s, why))
            continue
        ok[k] = True
        if c:
            charged.extend((len(zs) + i, q) for i, q in c)
        n_atoms.append(len(z))
        n_bonds.append(len(o))
        zs.extend(z)
        us.extend(u)
        vs.extend(v)
        orders.extend(o)
    codes = np.asarray(zs, np.int16) * 256 + 128  # atom code: atomic number and formal charge
    if charged:
        idx, q = zip(*charged)
        codes[list(idx)] += np.asarray(q, np.int16)
    return {"ok": ok, "n_atoms": np.asarray(n_atoms, np.int32), "n_bonds": np.asarray(n_bonds, np.int32),
            "codes": codes, "pairs": np.stack([np.asarray(us, np.int16), np.asarray(vs, np.int16)], 1),
            "types": ORDER_CODE[(2 * np.asarray(orders, np.float64)).astype(np.int64)], "bad": bad}


def _run_chunks(tasks, workers: int):
    """Yield ``_featurise_chunk`` results in order, at most ``2 * workers`` chunks in flight; a single chunk or
    ``workers=1`` runs in this process."""
    tasks = iter(tasks)
    head = [t for t in (next(tasks, None), next(tasks, None)) if t is not None]
    if workers <= 1 or len(head) < 2:
        for t in itertools.chain(head, tasks):
            yield _featurise_chunk(*t)
        return
    # fork shares the imported modules with the workers (fast start); other platforms use their default
    ctx = mp.get_context("fork") if sys.platform.startswith("linux") else mp.get_context()
    with ctx.Pool(workers) as pool:
        pending: deque = deque()
        for t in itertools.chain(head, tasks):
            pending.append(pool.apply_async(_featurise_chunk, t))
            if len(pending) >= 2 * workers:
                yield pending.popleft().get()
        while pending:
            yield pending.popleft().get()


def zinc_csv_index_to_line(i, dropped_line: int = 234_299):
    """0-based row of the GDSS/MoFlow 249,455-row ``zinc250k.csv`` -> 0-based line of the 249,456-line ``.smi``.

    ``i`` if ``i < dropped_line`` else ``i + 1`` (works elementwise on arrays). The position of the one line
    missing from the CSV is an unverified assumption; see ``datasets/zinc250k.yaml``.
    """
    i = np.asarray(i, dtype=np.int64)
    out = np.where(i < dropped_line, i, i + 1)
    return int(out) if out.ndim == 0 else out


@dataclass
class _Source:
    """One raw SMILES file: header or not, the split code of each 0-based data row, rows left out (with why)."""

    path: Path
    header: bool
    split_of: Callable[[np.ndarray], np.ndarray]
    skip: dict = field(default_factory=dict)


class _SmilesDataset(GraphDataset):
    """Shared machinery of the SMILES datasets: card files by role, options, parallel featurisation, info.

    Args (besides those of :class:`GraphDataset`):
        explicit_h: hydrogens as nodes (category ``"H"``); implicit by default.
        kekulize: bonds SINGLE/DOUBLE/TRIPLE (default) or with AROMATIC kept.
        limit: read only the first ``limit`` data rows of each raw file (quick tests); own cache folder.
        workers: featurisation processes (default ``os.cpu_count()``); does not change the result.
    """

    kind = "molecule"

    def __init__(self, root=None, split: str | None = None, *, download: bool = True, force_reload: bool = False,
                 explicit_h: bool = False, kekulize: bool = True, limit: int | None = None,
                 workers: int | None = None):
        self.explicit_h = bool(explicit_h)
        self.kekulize = bool(kekulize)
        self.limit = None if limit is None else int(limit)
        self.workers = (os.cpu_count() or 1) if workers is None else max(1, int(workers))
        super().__init__(root, split, download=download, force_reload=force_reload)

    # ---- cache -------------------------------------------------------------------------------------
    def _options(self) -> dict:  # everything that changes processing; `workers` does not
        return {"explicit_h": self.explicit_h, "kekulize": self.kekulize, "limit": self.limit}

    def variant(self) -> str:
        v = ("explicit_h" if self.explicit_h else "implicit_h") + ("-kekule" if self.kekulize else "-aromatic")
        return v + (f"-limit{self.limit}" if self.limit is not None else "")

    def cache_key(self) -> dict:
        return {**super().cache_key(), "options": self._options(), "featuriser": FEATURISER_VERSION}

    # ---- raw files ---------------------------------------------------------------------------------
    def raw_choices(self, role: str) -> list[RawFile]:
        """The card's files for one role, in the order tried (tests override this for custom files)."""
        files = [RawFile.from_card(f) for f in load_card(self.name)["files"] if f.get("role") == role]
        if not files:
            raise DataError(f"dataset card {self.name}.yaml has no file with role {role!r}")
        return files

    def fetch_role(self, role: str) -> Path:
        return self.fetch(*self.raw_choices(role))

    def sources(self) -> tuple[list[_Source], dict]:
        raise NotImplementedError

    # ---- processing --------------------------------------------------------------------------------
    def process(self):
        sources, extra = self.sources()
        invalid = InvalidRows(keep=100)
        parts, splits, dropped, rows = [], [], [], {}
        for src in sources:
            src_splits: list = []
            tasks = self._tasks(src, src_splits, dropped, rows)
            for res in _run_chunks(tasks, self.workers):
                for line, value, reason in res.pop("bad"):
                    invalid.add(src.path.name, line, value, reason)
                parts.append(res)
            splits.append(np.concatenate(src_splits) if src_splits else np.zeros(0, np.int8))
            log.info("%s: %s rows read from %s", self.name, rows[src.path.name], src.path.name)
        ok = np.concatenate([p.pop("ok") for p in parts]) if parts else np.zeros(0, bool)
        split = np.concatenate(splits)[ok]
        store, tokens = _assemble(parts, split, self.kekulize)
        if len(store) == 0:
            raise DataError(f"{self.name}: no valid molecule in {[s.path.name for s in sources]}")
        schema = store.schema(tokens, bond_categories(self.kekulize), kind="molecule", explicit_h=self.explicit_h)
        n, m = store.num_nodes, store.num_edges
        info = {
            "raw_files": {s.path.name: sha256_file(s.path) for s in sources},
            "rows": rows, "molecules": len(store),
            "splits": {k: int((store.split == v).sum()) for k, v in SPLITS.items()},
            "atoms": {"min": int(n.min()), "max": int(n.max()), "mean": round(float(n.mean()), 4)},
            "bonds": {"min": int(m.min()), "max": int(m.max()), "mean": round(float(m.mean()), 4),
                      "total": int(m.sum())},
            "atom_tokens": dict(zip(tokens, np.bincount(store.node_type, minlength=len(tokens)).tolist())),
            "invalid": invalid.to_dict(), "dropped": dropped, "options": self._options(), **extra,
        }
        return store, schema, info

    def _tasks(self, src: _Source, src_splits: list, dropped: list, rows: dict):
        """Chunks of raw lines (with 1-based line numbers) for :func:`_featurise_chunk`; records each chunk's
        split codes, the rows left out and the number of data rows read (``limit`` caps it)."""
        with open_text(src.path, "SMILES text" + (" (CSV with a smiles column)" if src.header else "")) as fh:
            col, ncols, first = 0, 1, 1
            if src.header:
                head = [h.strip().lower() for h in fh.readline().rstrip("\r\n").split(",")]
                if "smiles" not in head:
                    raise DataError(f"{src.path.name}: line 1: no 'smiles' column in header {head!r}")
                col, ncols, first = head.index("smiles"), len(head), 2
            lines, data_rows, n = [], [], 0
            for r, line in enumerate(itertools.islice(fh, self.limit)):
                n = r + 1
                if r in src.skip:
                    dropped.append({"file": src.path.name, "line": r + first, "value": line.strip(),
                                    "reason": src.skip[r]})
                else:
                    lines.append(line)
                    data_rows.append(r)
                if len(lines) >= CHUNK_ROWS:
                    yield self._chunk(src, src_splits, lines, data_rows, first, col, ncols)
                    lines, data_rows = [], []
            if lines:
                yield self._chunk(src, src_splits, lines, data_rows, first, col, ncols)
            rows[src.path.name] = n

    def _chunk(self, src, src_splits, lines, data_rows, first, col, ncols):
        r = np.asarray(data_rows, np.int64)
        src_splits.append(src.split_of(r).astype(np.int8))
        return lines, r + first, col, ncols, self.explicit_h, self.kekulize


def _assemble(parts: list[dict], split: np.ndarray, kekulize: bool) -> tuple[GraphStore, list[str]]:
    """Join chunk arrays into one :class:`GraphStore` (emptying ``parts`` as it goes, to bound peak memory);
    atom codes become indices into the sorted atom tokens."""

    def cat(key, dtype):
        arrays = [p.pop(key) for p in parts]
        return np.concatenate(arrays).astype(dtype, copy=False) if arrays else np.zeros(0, dtype)

    n_atoms, n_bonds = cat("n_atoms", np.int64), cat("n_bonds", np.int64)
    codes = cat("codes", np.int16)
    uniq = np.unique(codes)
    tokens = sort_atom_tokens(_token(c) for c in uniq)
    lut = np.zeros(1 << 15, dtype=np.uint8 if len(tokens) < 255 else np.int16)
    lut[uniq] = [tokens.index(_token(c)) for c in uniq]
    node_type = lut[codes]
    del codes
    pairs = cat("pairs", np.int16).reshape(-1, 2)
    pairs.sort(axis=1)
    max_n = int(n_atoms.max()) if len(n_atoms) else 0
    edge_index = pairs.astype(np.int8 if max_n < 127 else np.int16)
    del pairs
    edge_type = cat("types", np.uint8)
    node_ptr = np.zeros(len(n_atoms) + 1, np.int64)
    np.cumsum(n_atoms, out=node_ptr[1:])
    edge_ptr = np.zeros(len(n_bonds) + 1, np.int64)
    np.cumsum(n_bonds, out=edge_ptr[1:])
    # GraphStore.validate() needs several int64 arrays per edge; these checks prove the same in O(graphs) memory
    has = n_bonds > 0
    top = np.maximum.reduceat(edge_index[:, 1], edge_ptr[:-1][has]) if has.any() else np.zeros(0, np.int64)
    if (len(edge_type) and (edge_type.min() < 1 or edge_type.max() >= len(bond_categories(kekulize)))) or (
            edge_index[:, 0] >= edge_index[:, 1]).any() or (top >= n_atoms[has]).any():
        raise DataError("internal error: featurised bonds out of range (self-loop, atom index or bond category)")
    return GraphStore(node_ptr, node_type, edge_ptr, edge_index, edge_type, split=split), tokens


def _test_index(ds: "_SmilesDataset", n_rows: int) -> np.ndarray:
    """The sorted test row indices of ``valid_idx_*.json``; with no ``limit`` they must lie in 0..n_rows-1."""
    path = ds.fetch_role("test_index")
    try:
        obj = json.loads(read_text(path, "a JSON list of test row indices"))
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: line {exc.lineno}: invalid JSON ({exc.msg} at column {exc.colno})") from None
    obj = next(iter(obj.values())) if isinstance(obj, dict) and len(obj) == 1 else obj
    try:
        index = np.asarray(sorted({int(v) for v in obj}), dtype=np.int64)
    except (TypeError, ValueError):
        raise DataError(f"{path.name}: expected a JSON list of integer row indices") from None
    if ds.limit is None and len(index) and (index[0] < 0 or index[-1] >= n_rows):
        raise DataError(f"{path.name}: row index {int(index[-1])} outside 0..{n_rows - 1}")
    return index


class QM9(_SmilesDataset):
    """QM9 (133,885 GDB-9 molecules, at most 9 heavy atoms) from its GDB-17 SMILES.

    Split (GDSS/MoFlow): ``test`` = the 13,082 rows of ``valid_idx_qm9.json``, ``train`` = every other row, no
    ``val``. Rows are in the standard ``dsgdb9nsd`` order.
    """

    name = "qm9"
    N_ROWS = 133_885

    def sources(self):
        smi, test = self.fetch_role("smiles"), _test_index(self, self.N_ROWS)
        src = _Source(smi, True, lambda r: np.where(np.isin(r, test), 2, 0))
        return [src], {"split_rule": "GDSS: test = valid_idx_qm9.json rows, train = the rest, no val",
                       "test_index_size": len(test)}


class ZINC250k(_SmilesDataset):
    """ZINC250k: the 249,455 molecules of the GDSS/MoFlow ``zinc250k.csv``, read from the 249,456-line ``.smi``.

    The ``.smi`` holds one line more than the CSV whose row indices ``valid_idx_zinc250k.json`` uses. Line
    :attr:`DROPPED_LINE` (0-based; the only 120-character SMILES) is assumed to be the missing one and is left
    out (listed in ``info["dropped"]``), so CSV row ``i`` is ``.smi`` line :func:`zinc_csv_index_to_line`.
    **Unverified assumption**: only the range 195,596..249,454 of that line is established.
    """

    name = "zinc250k"
    DROPPED_LINE = 234_299
    N_ROWS = 249_455  # rows of the CSV the test indices refer to

    def sources(self):
        smi, test = self.fetch_role("smiles"), _test_index(self, self.N_ROWS)
        drop = self.DROPPED_LINE
        src = _Source(smi, False, lambda r: np.where(np.isin(np.where(r < drop, r, r - 1), test), 2, 0),
                      {drop: "assumed absent from the GDSS/MoFlow zinc250k.csv (see card)"})
        note = (f"CSV index i -> .smi line i if i < {drop} else i+1 (0-based); .smi line {drop} dropped. "
                "UNVERIFIED: the dropped line is only known to lie in 195596..249454.")
        return [src], {"split_rule": "GDSS: test = valid_idx_zinc250k.json CSV rows, train = the rest, no val",
                       "test_index_size": len(test), "index_mapping": note, "unverified": [note]}


def _molsets_copy(name: str) -> Path | None:
    """A MOSES file shipped in the installed ``molsets`` wheel (found without importing ``moses``)."""
    try:
        spec = importlib.util.find_spec("moses")
    except (ImportError, ValueError):
        return None
    found = [Path(loc) / "dataset" / "data" / name for loc in ((spec and spec.submodule_search_locations) or [])]
    return next((p for p in found if p.is_file()), None)


class MOSES(_SmilesDataset):
    """MOSES (Polykovskiy et al. 2020): 1,584,663 training and 176,074 test molecules from ZINC Clean Leads.

    ``train`` = ``train.csv.gz``; ``test`` = ``test.csv.gz`` (default) or, with ``subset="test_scaffolds"``,
    ``test_scaffolds.csv.gz`` (176,225 molecules whose Bemis-Murcko scaffolds are absent from train). No ``val``.
    Raw files are copied from the installed ``molsets`` wheel when present, else downloaded.
    """

    name = "moses"
    SUBSETS = ("test", "test_scaffolds")

    def __init__(self, root=None, split: str | None = None, *, subset: str = "test", **kwargs):
        if subset not in self.SUBSETS:
            raise DataError(f"moses: unknown subset {subset!r}; choose one of {list(self.SUBSETS)}")
        self.subset = subset
        super().__init__(root, split, **kwargs)

    def _options(self) -> dict:
        return {**super()._options(), "subset": self.subset}

    def variant(self) -> str:
        return super().variant() + ("" if self.subset == "test" else f"-{self.subset}")

    def fetch_role(self, role: str) -> Path:
        for rf in self.raw_choices(role):
            src, dest = _molsets_copy(rf.name), self.raw_dir / rf.name
            if src is not None and not dest.exists() and (not rf.sha256 or sha256_file(src) == rf.sha256):
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src, dest.with_name(dest.name + ".part"))
                os.replace(dest.with_name(dest.name + ".part"), dest)
                break
        try:
            return super().fetch_role(role)
        except MissingFileError as exc:
            if _molsets_copy("train.csv.gz") is not None:
                raise
            raise MissingFileError(f"{exc}; offline, `pip install --no-deps molsets` puts MOSES's files on this "
                                   "machine (graphdiff copies them from the wheel)") from None

    def sources(self):
        train = self.fetch_role("train")
        test = self.fetch_role(self.subset)
        srcs = [_Source(train, True, lambda r: np.zeros(len(r), np.int8)),
                _Source(test, True, lambda r: np.full(len(r), 2, np.int8))]
        return srcs, {"split_rule": f"train = {train.name}, test = {test.name}, no val", "subset": self.subset}

