"""3D molecule datasets: QM9 with DFT coordinates (``qm9_3d``), and what the 3D datasets share (GEOM-Drugs
conformers, ``geom_drugs``, are in :mod:`graphdiff.data.geom_drugs`).

Both are :class:`~graphdiff.data.base.GraphDataset` s whose store has ``pos`` (float32 Å, per atom, as in the raw
file, not centred). Nodes are atoms with **explicit hydrogens** and atom-token categories with the formal charge
folded in (``"C"``, ``"N+"``, ``"O-"``); edges are bonds with the categories of
``bond_categories(kekulize=False)`` (aromatic kept). Schema: ``kind="molecule"``, ``explicit_h=True``.

QM9 (``qm9_3d``): ``qm9_3d_qm9pack.npz`` holds atomic numbers, coordinates, properties and the GDB-17 SMILES of
130,831 molecules, and the EDM split. Bonds and formal charges are derived so that they agree with the
coordinates (:func:`derive_molecule`): the connectivity RDKit finds from the interatomic distances must be the
graph of the SMILES (with its hydrogens); bond orders and charges then come from the SMILES, and the canonical
SMILES of the result must equal the SMILES's. Molecules that fail are dropped and counted by reason
(``info["dropped"]``). Properties are kept as graph targets: :attr:`QM93D.properties` is ``[len, 16]`` in the
original QM9 units (names in :data:`PROPERTIES`); ``targets=("gap", ...)`` also puts the chosen ones, normalised
by the train split, into ``y`` as named conditions (:mod:`graphdiff.data.conditions`).
"""

from __future__ import annotations

import itertools
import logging
import multiprocessing as mp
import os
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from rdkit import Chem, RDLogger
from rdkit.Chem import rdDetermineBonds

from ..convert.rdkit import bond_categories
from ..errors import DataError
from . import conditions as C
from .base import GraphDataset, InvalidRows, RawFile, load_card, sha256_file
from .molecules import _assemble
from .store import SPLITS, GraphStore

RDLogger.DisableLog("rdApp.*")
log = logging.getLogger(__name__)

__all__ = ["QM93D", "PROPERTIES", "PROPERTY_UNITS", "COV_FACTORS", "derive_molecule"]

DERIVATION_VERSION = 1
CHUNK = 4000
# the npz's property arrays, in this column order; original QM9 units (no eV conversion, no atom references)
PROPERTY_UNITS = {"mu": "D", "alpha": "bohr^3", "homo": "Ha", "lumo": "Ha", "gap": "Ha", "r2": "bohr^2",
                  "zpve": "Ha", "U0": "Ha", "U": "Ha", "H": "Ha", "G": "Ha", "Cv": "cal/(mol K)", "A": "GHz",
                  "B": "GHz", "C": "GHz", "omega1": "cm^-1"}
PROPERTIES = tuple(PROPERTY_UNITS)
# RDKit covalent-radius factors tried in turn (van der Waals method of rdDetermineBonds): a molecule is kept when
# the distance graph at one of them is the SMILES graph. 1.15 fits almost all; the others admit strained rings
# (bonds up to 1.3 x the radii, RDKit's default) and compressed non-bonded contacts (down to 1.1).
COV_FACTORS = (1.15, 1.1, 1.2, 1.25, 1.3)
_BOND_CODE = {Chem.BondType.SINGLE: 1, Chem.BondType.DOUBLE: 2, Chem.BondType.TRIPLE: 3, Chem.BondType.AROMATIC: 4}

# reasons a QM9 molecule is dropped (keys of info["dropped"]["by_reason"])
R_SMILES = "SMILES not parsable"
R_ATOMS = "atoms differ from the SMILES with hydrogens"
R_GRAPH = "connectivity of the coordinates differs from the SMILES graph at every covalent factor"
R_SANITIZE = "bond orders and charges from the SMILES do not sanitize"
R_CANON = "canonical SMILES differs from the SMILES"


def _atoms_mol(z: np.ndarray, pos: np.ndarray) -> Chem.Mol:
    rw = Chem.RWMol()
    for a in z.tolist():
        atom = Chem.Atom(int(a))
        atom.SetNoImplicit(True)
        rw.AddAtom(atom)
    conf = Chem.Conformer(len(z))
    conf.SetPositions(np.ascontiguousarray(pos, dtype=np.float64))
    conf.Set3D(True)
    rw.AddConformer(conf, assignId=True)
    return rw.GetMol()


def derive_molecule(z: np.ndarray, pos: np.ndarray, smiles: str,
                    cov_factors: Sequence[float] = COV_FACTORS) -> tuple[Chem.Mol | None, str, float | None]:
    """Bonds and formal charges for atoms ``z`` at ``pos`` (file order kept) that agree with the coordinates and
    with ``smiles``: ``(mol, "ok", factor)`` or ``(None, reason, None)``.

    1. The SMILES with explicit hydrogens is the template; its elements must be those of the atoms.
    2. For each covalent factor in turn, RDKit's van der Waals connectivity (``rdDetermineBonds``) of the
       coordinates must be the template's graph (same bond count, and the template with all bonds single matches
       as a substructure: an isomorphism).
    3. The template's Kekulé bond orders and formal charges are copied through that atom map; RDKit sanitizes the
       result (aromaticity perceived anew) and its stereo-free canonical SMILES must be the template's.
    """
    tpl = Chem.MolFromSmiles(smiles)
    if tpl is None:
        return None, R_SMILES, None
    ref = Chem.MolToSmiles(tpl, isomericSmiles=False)
    tpl = Chem.AddHs(tpl)
    if tpl.GetNumAtoms() != len(z) or sorted(a.GetAtomicNum() for a in tpl.GetAtoms()) != sorted(z.tolist()):
        return None, R_ATOMS, None
    Chem.Kekulize(tpl, clearAromaticFlags=True)
    query = Chem.RWMol(tpl)
    for b in query.GetBonds():
        b.SetBondType(Chem.BondType.SINGLE)
    for a in query.GetAtoms():
        a.SetFormalCharge(0)
        a.SetNoImplicit(True)
    query = query.GetMol()
    query.UpdatePropertyCache(strict=False)
    base = _atoms_mol(z, pos)
    match, used, mol = (), None, None
    for f in cov_factors:
        mol = Chem.Mol(base)
        rdDetermineBonds.DetermineConnectivity(mol, useVdw=True, covFactor=float(f))
        if mol.GetNumBonds() != tpl.GetNumBonds():
            continue
        mol.UpdatePropertyCache(strict=False)
        match = mol.GetSubstructMatch(query)
        if match:
            used = float(f)
            break
    if not match:
        return None, R_GRAPH, None
    rw = Chem.RWMol(mol)
    for b in tpl.GetBonds():
        rw.GetBondBetweenAtoms(match[b.GetBeginAtomIdx()], match[b.GetEndAtomIdx()]).SetBondType(b.GetBondType())
    for a in tpl.GetAtoms():
        rw.GetAtomWithIdx(match[a.GetIdx()]).SetFormalCharge(a.GetFormalCharge())
    mol = rw.GetMol()
    try:
        Chem.SanitizeMol(mol)
    except Exception:  # RDKit's MolSanitizeException family
        return None, R_SANITIZE, None
    if Chem.MolToSmiles(Chem.RemoveHs(mol), isomericSmiles=False) != ref:
        return None, R_CANON, None
    return mol, "ok", used


def _mol_arrays(mol: Chem.Mol) -> tuple[list[int], list[int], list[int], list[int]]:
    """``(atom codes, bond begins, bond ends, bond category codes)``; atom code = ``Z * 256 + 128 + charge``."""
    codes = [a.GetAtomicNum() * 256 + 128 + a.GetFormalCharge() for a in mol.GetAtoms()]
    bonds = list(mol.GetBonds())
    return (codes, [b.GetBeginAtomIdx() for b in bonds], [b.GetEndAtomIdx() for b in bonds],
            [_BOND_CODE[b.GetBondType()] for b in bonds])


def _derive_chunk(z: np.ndarray, pos: np.ndarray, offsets: np.ndarray, smiles: Sequence[str], ids: np.ndarray,
                  cov_factors: Sequence[float]) -> dict:
    """Derive one chunk of QM9 molecules (runs in a worker process); flat arrays back, as molecules.py does."""
    ok = np.zeros(len(smiles), bool)
    buf, bad, used = _Buffer(), [], Counter()
    for k, smi in enumerate(smiles):
        a, b = int(offsets[k]), int(offsets[k + 1])
        mol, why, f = derive_molecule(z[a:b], pos[a:b], str(smi), cov_factors)
        if mol is None:
            bad.append((int(ids[k]), str(smi), why))
            continue
        buf.add(*_mol_arrays(mol))
        ok[k] = True
        used[f] += 1
    return {"ok": ok, **buf.arrays(), "bad": bad, "factors": used}


class _Buffer:
    """Per-molecule atom codes and bonds gathered into the flat chunk arrays :func:`_assemble` joins."""

    def __init__(self):
        self.n_atoms, self.n_bonds, self.codes, self.us, self.vs, self.types = [], [], [], [], [], []

    def __len__(self) -> int:
        return len(self.n_atoms)

    def add(self, codes, us, vs, types) -> None:
        self.n_atoms.append(len(codes))
        self.n_bonds.append(len(types))
        self.codes += codes
        self.us += us
        self.vs += vs
        self.types += types

    def arrays(self) -> dict:
        return {"n_atoms": np.asarray(self.n_atoms, np.int32), "n_bonds": np.asarray(self.n_bonds, np.int32),
                "codes": np.asarray(self.codes, np.int16),
                "pairs": np.stack([np.asarray(self.us, np.int16), np.asarray(self.vs, np.int16)], 1).reshape(-1, 2),
                "types": np.asarray(self.types, np.uint8)}


def _run(fn, tasks, workers: int):
    """Yield ``fn(*task)`` in order, in ``workers`` forked processes (at most ``2 * workers`` tasks in flight);
    one task or ``workers=1`` runs here."""
    tasks = iter(tasks)
    head = [t for t in (next(tasks, None), next(tasks, None)) if t is not None]
    if workers <= 1 or len(head) < 2:
        for t in itertools.chain(head, tasks):
            yield fn(*t)
        return
    ctx = mp.get_context("fork") if sys.platform.startswith("linux") else mp.get_context()
    with ctx.Pool(workers) as pool:
        pending = []
        for t in itertools.chain(head, tasks):
            pending.append(pool.apply_async(fn, t))
            if len(pending) >= 2 * workers:
                yield pending.pop(0).get()
        for p in pending:
            yield p.get()


def card_files(name: str, role: str) -> list[RawFile]:
    """The files of dataset card ``name`` with ``role``, in the order tried."""
    files = [RawFile.from_card(f) for f in load_card(name)["files"] if f.get("role") == role]
    if not files:
        raise DataError(f"dataset card {name}.yaml has no file with role {role!r}")
    return files


def _positive(name: str, v) -> int | None:
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
        raise DataError(f"{name} must be a positive integer, got {v!r}")
    return int(v)


def _explicit_h_only(name: str, explicit_h) -> None:
    if not explicit_h:
        raise DataError(f"{name}: 3D molecules have explicit hydrogens only (explicit_h=False is not offered)")


def _atom_stats(store: GraphStore, tokens: Sequence[str], invalid: InvalidRows) -> dict:
    n, m = store.num_nodes, store.num_edges
    return {"molecules": len(store),
            "splits": {k: int((np.asarray(store.split) == v).sum()) for k, v in SPLITS.items()},
            "atoms": {"min": int(n.min()), "max": int(n.max()), "mean": round(float(n.mean()), 4)},
            "bonds": {"min": int(m.min()), "max": int(m.max()), "mean": round(float(m.mean()), 4),
                      "total": int(m.sum())},
            "atom_tokens": dict(zip(tokens, np.bincount(store.node_type, minlength=len(tokens)).tolist())),
            "bond_types": dict(zip(bond_categories(False)[1:],
                                   np.bincount(store.edge_type, minlength=5)[1:].tolist())),
            "invalid": invalid.to_dict()}


class QM93D(GraphDataset):
    """QM9 with explicit hydrogens, DFT coordinates and properties (see the module docstring); EDM split
    100,000 / 17,748 / 13,083 before drops.

    Args (besides those of :class:`GraphDataset`):
        targets: property names (of :data:`PROPERTIES`) put into ``y`` as numeric conditions, normalised with the
            train split's mean and std (``schema.graph_features``, ``schema.extra["conditions"]``).
        limit: keep only the first ``limit`` molecules (QM9 order) of each split: quick tests; own cache.
        train_limit: keep at most this many train molecules (a seeded random choice, seed 0); val and test whole.
        cov_factors: covalent-radius factors tried when deriving connectivity (default :data:`COV_FACTORS`).
        workers: derivation processes (default ``os.cpu_count()``); does not change the result.
    """

    name = "qm9_3d"
    kind = "molecule"
    SPLIT_ARRAY = "edm_split"

    def __init__(self, root=None, split: str | None = None, *, download: bool = True, force_reload: bool = False,
                 targets: Sequence[str] | str = (), limit: int | None = None, train_limit: int | None = None,
                 cov_factors: Sequence[float] = COV_FACTORS, workers: int | None = None, explicit_h: bool = True):
        _explicit_h_only(self.name, explicit_h)
        targets = [targets] if isinstance(targets, str) else list(targets)
        for t in targets:
            if t not in PROPERTIES:
                from ..checks import suggest

                raise DataError(f"qm9_3d: unknown target {t!r}{suggest(t, PROPERTIES)}; choose from "
                                f"{', '.join(PROPERTIES)}")
        if len(set(targets)) != len(targets):
            raise DataError(f"qm9_3d: targets listed twice in {targets!r}")
        self.targets = tuple(targets)
        self.limit = _positive("qm9_3d: limit", limit)
        self.train_limit = _positive("qm9_3d: train_limit", train_limit)
        try:
            self.cov_factors = tuple(float(f) for f in cov_factors)
        except (TypeError, ValueError):
            raise DataError(f"qm9_3d: cov_factors must be numbers, got {cov_factors!r}") from None
        if not self.cov_factors or not all(0.5 < f < 2.0 for f in self.cov_factors):
            raise DataError(f"qm9_3d: cov_factors must be numbers between 0.5 and 2, got {cov_factors!r}")
        self.workers = (os.cpu_count() or 1) if workers is None else max(1, int(workers))
        super().__init__(root, split, download=download, force_reload=force_reload)
        self._properties = np.load(self.processed_dir / "properties.npy", mmap_mode="r", allow_pickle=False)
        self._gdb_index = np.load(self.processed_dir / "gdb_index.npy", mmap_mode="r", allow_pickle=False)

    # ---- cache ------------------------------------------------------------------------------------------------
    def _options(self, with_targets: bool = True) -> dict:
        out = {"limit": self.limit, "train_limit": self.train_limit, "cov_factors": list(self.cov_factors)}
        return {**out, "targets": list(self.targets)} if with_targets else out

    def variant(self) -> str:
        v = "explicit_h-aromatic"
        v += f"-limit{self.limit}" if self.limit is not None else ""
        v += f"-train{self.train_limit}" if self.train_limit is not None else ""
        v += "" if self.cov_factors == COV_FACTORS else "-cov" + "_".join(f"{f:g}" for f in self.cov_factors)
        return v + ("-y-" + "-".join(self.targets) if self.targets else "")

    def cache_key(self) -> dict:
        return {**super().cache_key(), "options": self._options(), "derivation": DERIVATION_VERSION}

    def _cache_ok(self, meta_f: Path) -> bool:
        return super()._cache_ok(meta_f) and all((meta_f.parent / f).is_file()
                                                 for f in ("properties.npy", "gdb_index.npy"))

    # ---- access -----------------------------------------------------------------------------------------------
    @property
    def properties(self) -> np.ndarray:
        """``[len, 16]`` float64 properties of this split's molecules, columns :attr:`property_names`."""
        return np.asarray(self._properties[self._idx])

    @property
    def property_names(self) -> tuple[str, ...]:
        return PROPERTIES

    @property
    def property_units(self) -> dict[str, str]:
        return dict(PROPERTY_UNITS)

    def property_values(self, name: str) -> np.ndarray:
        """One property column (``"gap"``, ...) of this split, in the units of :data:`PROPERTY_UNITS`."""
        if name not in PROPERTIES:
            raise DataError(f"qm9_3d: unknown property {name!r}; choose from {', '.join(PROPERTIES)}")
        return np.asarray(self._properties[self._idx, PROPERTIES.index(name)])

    @property
    def gdb_index(self) -> np.ndarray:
        """The 1-based QM9 id (``dsgdb9nsd_XXXXXX``) of each molecule of this split."""
        return np.asarray(self._gdb_index[self._idx])

    def summary_lines(self) -> list[str]:
        """Extra lines of ``graphdiff datasets info``: drops by reason, covalent factors, properties, targets."""
        d = self.info.get("dropped", {})
        out = [f"dropped (bonds not derivable): {d.get('count', 0)}"]
        out += [f"  {n}: {why}" for why, n in d.get("by_reason", {}).items()]
        out.append("covalent factor used: " + ", ".join(f"{f} {n}" for f, n in
                                                         self.info.get("cov_factor_used", {}).items()))
        out.append("properties (ds.properties): " + ", ".join(f"{p} [{u}]" for p, u in PROPERTY_UNITS.items()))
        if self.targets:
            out.append("targets in y: " + ", ".join(self.targets))
        return out

    # ---- processing -------------------------------------------------------------------------------------------
    def _select(self, split: np.ndarray) -> np.ndarray:
        """Row indices kept by ``limit`` (first rows of each split) and ``train_limit`` (seeded train subset)."""
        rows = np.arange(len(split))
        if self.limit is not None:
            rows = np.concatenate([np.flatnonzero(split == v)[:self.limit] for v in SPLITS.values()])
        if self.train_limit is not None:
            train = rows[split[rows] == SPLITS["train"]]
            chosen = np.random.default_rng(0).permutation(train)[:self.train_limit]
            rows = rows[(split[rows] != SPLITS["train"]) | np.isin(rows, chosen)]
        return np.sort(rows)

    def _write_extra(self, properties: np.ndarray, gdb_index: np.ndarray) -> None:
        d = self.processed_dir
        d.mkdir(parents=True, exist_ok=True)
        for name, arr in (("properties", properties), ("gdb_index", gdb_index)):
            tmp = d / f"{name}.tmp.npy"
            np.save(tmp, np.ascontiguousarray(arr), allow_pickle=False)
            os.replace(tmp, d / f"{name}.npy")

    def raw_choices(self, role: str) -> list[RawFile]:
        """The card's files for one role, in the order tried (tests override this for files they write)."""
        return card_files(self.name, role)

    def process(self):
        if self.targets:
            return self._process_targets()
        path = self.fetch(*self.raw_choices("npz"))
        need = ("charges", "positions", "atom_offsets", "smiles", "gdb_index", self.SPLIT_ARRAY, *PROPERTIES)
        try:
            with np.load(path, allow_pickle=False) as npz:
                missing = [k for k in need if k not in npz.files]
                if missing:
                    raise DataError(f"{path}: no array {missing[0]!r} (expected the qm9pack-derived npz)")
                raw = {k: npz[k] for k in need}
        except (OSError, ValueError, EOFError) as exc:
            raise DataError(f"{path}: not a readable .npz ({type(exc).__name__}: {str(exc)[:120]})") from None
        split_all = raw[self.SPLIT_ARRAY].astype(np.int8)
        rows = self._select(split_all)
        off = raw["atom_offsets"]
        tasks = []
        for c in range(0, len(rows), CHUNK):
            r = rows[c:c + CHUNK]
            starts, ends = off[r], off[r + 1]
            sel = np.concatenate([np.arange(a, b) for a, b in zip(starts, ends)])
            local = np.concatenate([[0], np.cumsum(ends - starts)])
            tasks.append((raw["charges"][sel], raw["positions"][sel], local, raw["smiles"][r].tolist(),
                          raw["gdb_index"][r], self.cov_factors))
        invalid = InvalidRows(keep=100)
        parts, reasons, factors = [], Counter(), Counter()
        for res in _run(_derive_chunk, tasks, self.workers):
            for gid, smi, why in res.pop("bad"):
                invalid.add(path.name, gid, smi, why)
                reasons[why] += 1
            factors.update(res.pop("factors"))
            parts.append(res)
        ok = np.concatenate([p.pop("ok") for p in parts]) if parts else np.zeros(0, bool)
        kept = rows[ok]
        if not len(kept):
            raise DataError(f"{self.name}: no molecule of {path.name} could be derived")
        store, tokens = _assemble(parts, split_all[kept], kekulize=False)
        store.pos = np.concatenate([raw["positions"][off[r]:off[r + 1]] for r in kept]).astype(np.float32)
        props = np.stack([raw[p].astype(np.float64) for p in PROPERTIES], 1)[kept]
        self._write_extra(props, raw["gdb_index"][kept].astype(np.int32))
        schema = store.schema(tokens, bond_categories(False), kind="molecule", explicit_h=True)
        info = {"raw_files": {path.name: sha256_file(path)}, "rows": int(len(split_all)), "selected": int(len(rows)),
                **_atom_stats(store, tokens, invalid),
                "dropped": {"count": int(len(rows) - len(kept)), "by_reason": dict(reasons)},
                "cov_factor_used": {f"{f:g}": int(factors.get(f, 0)) for f in self.cov_factors},
                "properties": list(PROPERTIES), "property_units": PROPERTY_UNITS,
                "split_rule": "EDM/cormorant: edm_split 0/1/2 = train/val/test (np.random.seed(0) permutation)",
                "options": self._options(), "rdkit": Chem.rdBase.rdkitVersion}
        return store, schema, info

    def _process_targets(self):
        """The variant without targets (built if needed), with ``y`` = the chosen properties, normalised."""
        base = type(self)(root=self.root, download=self.download, limit=self.limit, train_limit=self.train_limit,
                          cov_factors=self.cov_factors, workers=self.workers)
        props = np.asarray(base._properties)
        raw = props[:, [PROPERTIES.index(t) for t in self.targets]]
        split = np.asarray(base.store.split)
        stats = C.numeric_stats(raw[split == SPLITS["train"]] if (split == 0).any() else raw, self.targets)
        spec = {"numeric": {t: stats[t] for t in self.targets}}
        s = base.store
        store = GraphStore(np.asarray(s.node_ptr), np.asarray(s.node_type), np.asarray(s.edge_ptr),
                           np.asarray(s.edge_index), np.asarray(s.edge_type), split=split.copy(),
                           pos=np.asarray(s.pos), y=C.encode(spec, {}, raw))
        import dataclasses

        schema = dataclasses.replace(base.schema, graph_features=C.condition_columns(spec),
                                     extra={**base.schema.extra, "conditions": spec})
        self._write_extra(props, np.asarray(base._gdb_index))
        info = {**base.info, "options": self._options(), "targets": {t: {**stats[t], "unit": PROPERTY_UNITS[t]}
                                                                     for t in self.targets}}
        return store, schema, info
