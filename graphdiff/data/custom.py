"""Custom datasets from a user's own files or PyG dataset objects, with the schema derived automatically.

Supported inputs:
    - ``.smi`` / ``.txt`` (one SMILES per line, anything after the first whitespace ignored), ``.csv`` (a column
      named by ``smiles_column``, default the first column called ``smiles`` in any case);
    - ``.sdf`` (RDKit's ``ForwardSDMolSupplier``; coordinates kept with ``with_pos=True``). RDKit reads the
      records as bytes, so names and data fields in another encoding than UTF-8 are accepted (they are not used);
    - ``.xyz`` (single- or multi-frame): always 3D; bonds and formal charges derived from the coordinates
      (:func:`graphdiff.convert.rdkit3d.xyz_to_mol`, total charge from ``charge=Q`` in a frame's comment, else 0);
      a frame whose bonds cannot be derived is an invalid row.

3D input (``with_pos=True``, and every ``.xyz``) defaults to explicit hydrogens and aromatic bonds kept (the 3D
datasets' representation); a record without 3D coordinates, with NaN coordinates or (``.xyz``) with a coordinate
count that differs from its atom count is a one-line error naming the file and the record.
    - ``.jsonl``: one graph per line, ``{"num_nodes": n, "edges": [[i, j], ...], "node_labels": [...],
      "edge_labels": [...]}`` (labels optional);
    - any PyG dataset (an iterable of ``Data``) through :func:`from_pyg_dataset`.

Any of the files may be gzipped (recognised by content). Files are opened through :mod:`graphdiff.data.files`: a
missing, empty, binary, non-UTF-8 or truncated file is a one-line error naming it (and the line of a bad byte).

Invalid rows are skipped and counted (``info["invalid"]`` lists the first 10 with file, line, value and reason);
with ``strict=True`` the first one raises instead. The file itself is the raw file; the processed cache lives
under ``<root>/custom/<stem>-<sha256 prefix>/``.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from rdkit import Chem

from ..convert.rdkit import bond_categories, mol_to_arrays, smiles_to_arrays, sort_atom_tokens
from ..errors import DataError
from ..schema import NO_EDGE
from .base import GraphDataset, InvalidRows, sha256_file
from .files import check_file, open_binary, open_text
from .store import GraphStore

FILE_KINDS = ".smi, .txt, .csv, .sdf, .xyz or .jsonl"  # what a custom dataset file may be (any of them gzipped)
_EXPECTED = {".smi": "SMILES text (one per line)", ".txt": "SMILES text (one per line)",
             ".csv": "CSV text with a SMILES column", ".jsonl": "JSON lines (one graph per line)", ".sdf": "SDF text",
             ".xyz": "XYZ text"}


def _open_text(path: Path):
    return open_text(path, _EXPECTED.get(_base_suffix(path), "text"))


def _csv_rows(reader, path: Path):
    """The rows of a ``csv.reader``, a malformed row (an over-long field, a stray quote) a one-line error."""
    try:
        yield from reader
    except csv.Error as exc:
        raise DataError(f"{path}: line {reader.line_num}: malformed CSV ({exc})") from None


def _base_suffix(path: Path) -> str:
    return Path(path.stem).suffix.lower() if path.suffix == ".gz" else path.suffix.lower()


def iter_smiles(path: Path, smiles_column: str | None = None):
    """Yield ``(line number, SMILES text)`` for every data row of a .smi/.txt/.csv file (1-based lines)."""
    kind = _base_suffix(path)
    with _open_text(path) as fh:
        if kind == ".csv":
            reader = csv.reader(fh)
            rows = _csv_rows(reader, path)
            header = next(rows, None)
            if header is None:
                return
            if smiles_column is None:
                matches = [i for i, h in enumerate(header) if h.strip().lower() == "smiles"]
                if not matches:
                    raise DataError(f"{path}: line 1: no 'smiles' column in header {header!r}; name one with "
                                    "--smiles-column, or in Python load_dataset(..., smiles_column=) / "
                                    "dataset_options={'smiles_column': ...} (a time-series CSV starts each row with "
                                    "a date)")
                col = matches[0]
            elif smiles_column in header:
                col = header.index(smiles_column)
            else:
                raise DataError(f"{path}: line 1: column {smiles_column!r} not in header {header!r}")
            for k, row in enumerate(rows, start=2):
                yield k, (row[col] if col < len(row) else "")
        else:
            for k, line in enumerate(fh, start=1):
                parts = line.split()
                yield k, (parts[0] if parts else "")


def read_conditions(path: Path, columns, lines) -> np.ndarray:
    """Numeric graph-level columns of a .csv for the given (1-based) data lines, ``[len(lines), len(columns)]``.

    A column missing from the header or a value that is not a finite number is a one-line error naming the file,
    line, column and value."""
    with _open_text(path) as fh:
        rows = _csv_rows(csv.reader(fh), path)
        header = next(rows, None) or []
        cols = []
        for c in columns:
            if c not in header:
                raise DataError(f"{path}: line 1: condition column {c!r} not in header {header!r}")
            cols.append(header.index(c))
        want = set(lines)
        values = {}
        for k, row in enumerate(rows, start=2):
            if k not in want:
                continue
            vals = []
            for name, col in zip(columns, cols):
                text = row[col] if col < len(row) else ""
                try:
                    v = float(text)
                except ValueError:
                    v = float("nan")
                if not np.isfinite(v):
                    raise DataError(f"{path}: line {k}: column {name!r} must be a finite number, got {text!r}")
                vals.append(v)
            values[k] = vals
    return np.asarray([values[k] for k in lines], dtype=np.float32).reshape(len(lines), len(columns))


def featurize_smiles(rows, source: str, invalid: InvalidRows, *, explicit_h=False, kekulize=True, strict=False):
    """SMILES rows -> ``(tokens per molecule, edges, bond names, kept line numbers)``; bad rows go to ``invalid``."""
    toks, edges, bonds, lines = [], [], [], []
    for line, smi in rows:
        try:
            t, e, b = smiles_to_arrays(smi, explicit_h=explicit_h, kekulize=kekulize, where=f"{source}: line {line}")
        except DataError as exc:
            if strict:
                raise
            invalid.add(source, line, smi, str(exc).split(": ", 2)[-1])
            continue
        toks.append(t)
        edges.append(e)
        bonds.append(b)
        lines.append(line)
    return toks, edges, bonds, lines


def molecule_store(toks, edges, bonds, *, explicit_h: bool, kekulize: bool, split=None):
    """Per-molecule tokens / edges / bond names -> ``(GraphStore, Schema)`` with categories from the data."""
    cats = sort_atom_tokens(t for ts in toks for t in ts)
    nidx = {c: i for i, c in enumerate(cats)}
    ecats = bond_categories(kekulize)
    eidx = {c: i for i, c in enumerate(ecats)}
    node_types = [np.fromiter((nidx[t] for t in ts), dtype=np.int64, count=len(ts)) for ts in toks]
    edge_types = [np.fromiter((eidx[b] for b in bs), dtype=np.int64, count=len(bs)) for bs in bonds]
    store = GraphStore.from_lists(node_types, edges, edge_types, split=split)
    schema = store.schema(tuple(cats), ecats, kind="molecule", explicit_h=explicit_h)
    return store, schema


def random_split(n: int, ratios=(0.8, 0.1, 0.1), seed: int = 0) -> np.ndarray:
    """Split codes (0 train, 1 val, 2 test) for ``n`` items from a seeded permutation."""
    perm = np.random.default_rng(seed).permutation(n)
    n_train, n_val = int(round(ratios[0] * n)), int(round(ratios[1] * n))
    split = np.empty(n, dtype=np.int8)
    split[perm[:n_train]] = 0
    split[perm[n_train:n_train + n_val]] = 1
    split[perm[n_train + n_val:]] = 2
    return split


def _parse_jsonl_graph(obj, where: str):
    if not isinstance(obj, dict) or "num_nodes" not in obj or "edges" not in obj:
        raise DataError(f"{where}: expected an object with 'num_nodes' and 'edges'")
    n = obj["num_nodes"]
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise DataError(f"{where}: num_nodes must be a positive integer, got {n!r}")
    try:
        e = np.asarray(obj["edges"], dtype=np.int64).reshape(-1, 2)
    except (TypeError, ValueError):
        raise DataError(f"{where}: edges must be a list of [i, j] integer pairs") from None
    if len(e):
        if (e[:, 0] == e[:, 1]).any():
            k = int(np.argmax(e[:, 0] == e[:, 1]))
            raise DataError(f"{where}: self-loop at edge {k} {e[k].tolist()}")
        if e.min() < 0 or e.max() >= n:
            k = int(np.argmax((e < 0).any(1) | (e >= n).any(1)))
            raise DataError(f"{where}: edge {k} {e[k].tolist()} refers to a node outside 0..{n - 1}")
    uniq = np.unique(np.sort(e, 1), axis=0)
    nl, lab = jsonl_labels(obj, n, e, where)
    return n, uniq, nl, None if lab is None else [lab[(int(u), int(v))] for u, v in uniq]


def jsonl_labels(obj: dict, n: int, edges, where: str):
    """A ``.jsonl`` line's labels: ``node_labels`` as strings (or ``None``) and ``edge_labels`` as a mapping from
    each edge ``(min, max)`` to its label (or ``None``). A list of the wrong length, or an edge listed twice with two
    labels, is a one-line error naming ``where``."""
    e = np.asarray(edges, dtype=np.int64).reshape(-1, 2)
    nl, labels = obj.get("node_labels"), obj.get("edge_labels")
    if nl is not None and (not isinstance(nl, list) or len(nl) != n):
        got = len(nl) if isinstance(nl, list) else type(nl).__name__
        raise DataError(f"{where}: {got} node_labels for num_nodes={n}")
    if labels is None:
        return None if nl is None else [str(x) for x in nl], None
    if not isinstance(labels, list) or len(labels) != len(e):
        got = len(labels) if isinstance(labels, list) else type(labels).__name__
        raise DataError(f"{where}: {got} edge_labels for {len(e)} edges")
    lab: dict = {}
    for (u, v), t in zip(np.sort(e, 1).tolist(), labels):
        if lab.setdefault((u, v), str(t)) != str(t):
            raise DataError(f"{where}: edge {[u, v]} listed twice with labels {lab[(u, v)]!r} and {t!r}")
    return None if nl is None else [str(x) for x in nl], lab


class CustomDataset(GraphDataset):
    """A dataset built from one user file. See the module docstring for formats and options."""

    name = "custom"

    def __init__(self, path, root=None, split=None, *, smiles_column=None, condition_columns=(), explicit_h=None,
                 kekulize=None, with_pos=False, strict=False, split_ratios=(0.8, 0.1, 0.1), seed=0,
                 force_reload=False):
        self.path = check_file(path, f"a {FILE_KINDS} file")
        with_pos = bool(with_pos) or _base_suffix(self.path) == ".xyz"
        explicit_h = with_pos if explicit_h is None else bool(explicit_h)  # 3D input: explicit H, aromatic kept
        kekulize = (not with_pos) if kekulize is None else bool(kekulize)
        if isinstance(condition_columns, str):
            condition_columns = [condition_columns]
        if condition_columns and _base_suffix(self.path) != ".csv":
            raise DataError(f"{self.path}: condition_columns need a .csv file")
        if smiles_column is not None and _base_suffix(self.path) != ".csv":  # a name this file has no header for
            raise DataError(f"{self.path}: smiles_column {smiles_column!r} (--smiles-column) names a column of a .csv "
                            f"with a header; this file has none")
        self.options = {"smiles_column": smiles_column, "condition_columns": list(condition_columns),
                        "explicit_h": explicit_h, "kekulize": kekulize,
                        "with_pos": with_pos, "split_ratios": list(split_ratios), "seed": seed}
        self.strict = strict
        self._sha = sha256_file(self.path)
        self.name = f"custom/{self.path.name.split('.')[0]}-{self._sha[:12]}"
        super().__init__(root, split, download=False, force_reload=force_reload)

    def cache_key(self) -> dict:
        return {"file": str(self.path.resolve()), "sha256": self._sha, **self.options}

    def process(self):
        invalid = InvalidRows()
        src = self.path.name
        kind = _base_suffix(self.path)
        o = self.options
        if kind in (".smi", ".txt", ".csv"):
            toks, edges, bonds, lines = featurize_smiles(
                iter_smiles(self.path, o["smiles_column"]), src, invalid,
                explicit_h=o["explicit_h"], kekulize=o["kekulize"], strict=self.strict)
            self._require(len(toks), invalid)
            split = random_split(len(toks), o["split_ratios"], o["seed"])
            store, schema = molecule_store(toks, edges, bonds, explicit_h=o["explicit_h"], kekulize=o["kekulize"],
                                           split=split)
            if o["condition_columns"]:
                import dataclasses

                store.y = read_conditions(self.path, o["condition_columns"], lines)
                schema = dataclasses.replace(schema, graph_features=tuple(o["condition_columns"]))
        elif kind == ".sdf" and o["with_pos"]:
            store, schema = self._process_3d(invalid, "sdf")
        elif kind == ".xyz":
            store, schema = self._process_3d(invalid, "xyz")
        elif kind == ".sdf":
            store, schema = self._process_sdf(invalid)
        elif kind == ".jsonl":
            store, schema = self._process_jsonl(invalid)
        else:
            raise DataError(f"{self.path}: unsupported file type {kind!r} (use {FILE_KINDS})")
        n = store.num_nodes
        info = {"source": str(self.path), "sha256": self._sha, "graphs": len(store),
                "splits": {k: int((np.asarray(store.split) == v).sum()) for k, v in (("train", 0), ("val", 1),
                                                                                      ("test", 2))},
                "split_rule": f"seeded random permutation (seed {o['seed']}), ratios {o['split_ratios']}",
                "nodes": {"min": int(n.min()), "max": int(n.max()), "mean": round(float(n.mean()), 3)},
                "invalid": invalid.to_dict()}
        return store, schema, info

    def _require(self, kept: int, invalid: InvalidRows, unit: str = "line"):
        if kept == 0:
            first = invalid.examples[0] if invalid.examples else None
            detail = f"; first: {unit} {first['line']}: {first['reason']}" if first else ""
            raise DataError(f"{self.path}: no valid rows ({invalid.count} invalid{detail})")

    def _process_sdf(self, invalid):
        o = self.options
        toks, edges, bonds = [], [], []
        with open_binary(self.path, _EXPECTED[".sdf"], binary_ok=False) as fh:
            for k, mol in enumerate(Chem.ForwardSDMolSupplier(fh, removeHs=not o["explicit_h"]), start=1):
                where = f"{self.path.name}: record {k}"
                if mol is None:
                    if self.strict:
                        raise DataError(f"{where}: RDKit cannot read this record")
                    invalid.add(self.path.name, k, f"record {k}", "RDKit cannot read this record")
                    continue
                try:
                    t, e, b = mol_to_arrays(mol, explicit_h=o["explicit_h"], kekulize=o["kekulize"], where=where)
                except DataError as exc:
                    if self.strict:
                        raise
                    invalid.add(self.path.name, k, Chem.MolToSmiles(mol), str(exc).split(": ", 2)[-1])
                    continue
                toks.append(t), edges.append(e), bonds.append(b)
        self._require(len(toks), invalid, unit="record")
        split = random_split(len(toks), o["split_ratios"], o["seed"])
        return molecule_store(toks, edges, bonds, explicit_h=o["explicit_h"], kekulize=o["kekulize"], split=split)

    def _process_3d(self, invalid, fmt: str):
        """``.sdf`` with ``with_pos`` or ``.xyz``: molecules with coordinates (see :mod:`graphdiff.convert.rdkit3d`);
        coordinate problems raise, records RDKit cannot read or derive bonds for are invalid rows."""
        from ..convert import rdkit3d

        o = self.options
        name = self.path.name
        toks, edges, bonds, positions = [], [], [], []
        if fmt == "sdf":
            records = ((k, ln, block) for k, ln, block in rdkit3d.sdf_records(self.path, with_line=True))
        else:
            records = ((k, ln, (zs, xyz, c)) for k, ln, zs, xyz, c in rdkit3d.xyz_frames(self.path, with_line=True))
        for k, line, rec in records:
            where = f"{name}: record {k} (line {line})"
            try:
                if fmt == "sdf":
                    mol = rdkit3d.read_sdf_record(rec, where)
                    if mol is None:
                        raise DataError(f"{where}: RDKit cannot read this record")
                else:
                    zs, xyz, comment = rec
                    if not zs:
                        raise DataError(f"{where}: no atoms")
                    mol = rdkit3d.xyz_to_mol(zs, xyz, charge=rdkit3d.xyz_charge(comment), where=where)
                if mol.GetNumAtoms() == 0:
                    raise DataError(f"{where}: no atoms")
                mol = Chem.AddHs(mol, addCoords=True) if o["explicit_h"] else Chem.RemoveHs(mol, sanitize=False)
                t, e, b = mol_to_arrays(mol, explicit_h=False, kekulize=o["kekulize"], where=where)
                xyz = rdkit3d.mol_positions(mol, where)
            except rdkit3d.CoordinateError:  # a broken 3D file: always an error, never a skipped row
                raise
            except DataError as exc:
                if self.strict:
                    raise
                invalid.add(name, line, f"record {k}", str(exc).split(": ", 2)[-1])
                continue
            toks.append(t), edges.append(e), bonds.append(b), positions.append(xyz.astype(np.float32))
        self._require(len(toks), invalid, unit="record")
        split = random_split(len(toks), o["split_ratios"], o["seed"])
        store, schema = molecule_store(toks, edges, bonds, explicit_h=o["explicit_h"], kekulize=o["kekulize"],
                                       split=split)
        store.pos = np.concatenate(positions)
        return store, schema

    def _process_jsonl(self, invalid):
        graphs, lines = [], []  # the kept graphs and their (1-based) lines
        with _open_text(self.path) as fh:
            for k, line in enumerate(fh, start=1):
                where = f"{self.path.name}: line {k}"
                try:
                    if not line.strip():
                        raise DataError(f"{where}: empty line")
                    try:
                        obj = json.loads(line)
                    except json.JSONDecodeError as exc:
                        raise DataError(f"{where}: invalid JSON ({exc.msg} at column {exc.colno})") from None
                    graphs.append(_parse_jsonl_graph(obj, where))
                    lines.append(k)
                except DataError as exc:
                    if self.strict:
                        raise
                    invalid.add(self.path.name, k, line.strip(), str(exc).split(": ", 2)[-1])
        self._require(len(graphs), invalid)
        for what, col in (("node_labels", 2), ("edge_labels", 3)):
            lacking = [k for k, g in zip(lines, graphs) if g[col] is None and (col == 2 or len(g[1]))]
            if lacking and any(g[col] is not None for g in graphs):
                raise DataError(f"{self.path}: line {lacking[0]}: no {what} while other lines have them")
        ncats = sorted({x for g in graphs if g[2] for x in g[2]}) or ["node"]
        ecats = sorted({x for g in graphs if g[3] for x in g[3]}) or ["edge"]
        if NO_EDGE in ecats:
            raise DataError(f"{self.path}: edge label {NO_EDGE!r} is reserved for 'no edge'")
        ni = {c: i for i, c in enumerate(ncats)}
        ei = {c: i + 1 for i, c in enumerate(ecats)}
        node_types = [np.array([ni[x] for x in g[2]] if g[2] else np.zeros(g[0]), dtype=np.int64) for g in graphs]
        edge_types = [np.array([ei[x] for x in g[3]] if g[3] else np.ones(len(g[1])), dtype=np.int64)
                      for g in graphs]
        split = random_split(len(graphs), self.options["split_ratios"], self.options["seed"])
        store = GraphStore.from_lists(node_types, [g[1] for g in graphs], edge_types, split=split)
        return store, store.schema(tuple(ncats), (NO_EDGE, *ecats))


def load_custom(path, root=None, split=None, **options) -> CustomDataset:
    return CustomDataset(path, root=root, split=split, **options)


def from_pyg_dataset(dataset, name: str = "pyg", root=None, split=None, *, split_ratios=(0.8, 0.1, 0.1),
                     seed: int = 0, force_reload: bool = False) -> GraphDataset:
    """Wrap any PyG dataset (an iterable of ``Data``) as a :class:`GraphDataset`.

    Node categories come from ``x`` (argmax of a one-hot/float ``x``, or integer category indices), edge
    categories from ``edge_attr`` the same way (plain edges when absent). Graphs are cached under
    ``<root>/pyg/<name>``.
    """
    ds = _PyGWrapped.__new__(_PyGWrapped)
    ds.source, ds.name = dataset, f"pyg/{name}"
    ds.opts = {"split_ratios": list(split_ratios), "seed": seed, "n": len(dataset)}
    GraphDataset.__init__(ds, root, split, download=False, force_reload=force_reload)
    return ds


class _PyGWrapped(GraphDataset):
    def cache_key(self) -> dict:
        return {"name": self.name, **self.opts}

    def process(self):
        invalid = InvalidRows()
        node_types, edges, edge_types = [], [], []
        for k, d in enumerate(self.source):
            ei = d.edge_index.numpy() if d.edge_index is not None else np.zeros((2, 0), np.int64)
            if (ei[0] == ei[1]).any():
                invalid.add(self.name, k, f"graph {k}", "self-loop")
                continue
            x = d.x
            nt = np.zeros(d.num_nodes, np.int64) if x is None else (
                x.argmax(-1).numpy() if x.dim() == 2 and x.shape[-1] > 1 else x.view(-1).long().numpy())
            keep = ei[0] < ei[1]
            ea = d.edge_attr
            if ea is None:
                et = np.ones(int(keep.sum()), np.int64)
            else:
                et = (ea.argmax(-1).numpy() + 1 if ea.dim() == 2 and ea.shape[-1] > 1 else ea.view(-1).long().numpy())
                et = et[keep]
            node_types.append(nt)
            edges.append(ei[:, keep].T)
            edge_types.append(et)
        split = random_split(len(node_types), self.opts["split_ratios"], self.opts["seed"])
        store = GraphStore.from_lists(node_types, edges, edge_types, split=split)
        kn = int(store.node_type.max()) + 1 if len(store.node_type) else 1
        ke = int(store.edge_type.max()) + 1 if len(store.edge_type) else 2
        schema = store.schema(tuple(str(i) for i in range(kn)), (NO_EDGE, *(str(i) for i in range(1, ke))))
        return store, schema, {"graphs": len(store), "invalid": invalid.to_dict()}
