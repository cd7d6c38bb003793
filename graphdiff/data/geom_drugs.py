"""GEOM-Drugs conformers (``geom_drugs``), split as MiDi splits them.

GEOM-Drugs (``geom_drugs``): the MiDi split files ``{train,val,test}_data.pickle`` (a list of ``(smiles, [RDKit
Mol with one conformer, ...])``), read by a restricted unpickler that admits only builtin containers and RDKit's
``Mol`` (rebuilt from RDKit's binary format: no code from the file runs). Each of the first ``conformers``
conformers of a molecule is one graph (MiDi keeps 5).

Nodes, edges, charges and the schema follow :mod:`graphdiff.data.molecules3d` (explicit hydrogens, charged atom
tokens, aromatic bonds kept).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from rdkit import Chem

from ..convert.rdkit import bond_categories
from ..convert.rdkit3d import mol_positions
from ..errors import DataError
from .base import GraphDataset, InvalidRows, RawFile, sha256_file
from .molecules import _assemble
from .molecules3d import (CHUNK, DERIVATION_VERSION, _atom_stats, _Buffer, _explicit_h_only, _mol_arrays, _positive,
                          card_files)
from .safe_pickle import RestrictedUnpickler

__all__ = ["GEOMDrugs", "load_conformer_pickle"]


class _MolUnpickler(RestrictedUnpickler):
    """The restricted unpickler, also admitting RDKit's ``Mol`` (rebuilt from its binary format)."""

    def find_class(self, module: str, name: str):
        if (module, name) == ("rdkit.Chem.rdchem", "Mol"):
            return Chem.Mol
        return super().find_class(module, name)


def load_conformer_pickle(path: Path) -> list:
    """A MiDi GEOM split file: a list of ``(smiles, [Mol, ...])``, read by :class:`_MolUnpickler`."""
    import io

    from .files import read_bytes

    data = read_bytes(path, "a GEOM-Drugs pickle (MiDi split file)")
    try:
        obj = _MolUnpickler(io.BytesIO(data), source=str(path)).load()
    except DataError:
        raise
    except Exception as exc:
        raise DataError(f"{path}: not a readable pickle ({type(exc).__name__}: {str(exc)[:120]})") from None
    if not isinstance(obj, list):
        raise DataError(f"{path}: expected a list of (smiles, [conformer Mol, ...]), got {type(obj).__name__}")
    for i, item in enumerate(obj):
        if not (isinstance(item, (tuple, list)) and len(item) == 2 and isinstance(item[0], str)
                and isinstance(item[1], (list, tuple)) and all(isinstance(m, Chem.Mol) for m in item[1])):
            raise DataError(f"{path}: item {i}: expected (smiles, [conformer Mol, ...]), got "
                            f"{type(item).__name__} {str(item)[:80]!r}")
    return obj


class GEOMDrugs(GraphDataset):
    """GEOM-Drugs as split by MiDi (``train_data.pickle``, ``val_data.pickle``, ``test_data.pickle``).

    Args (besides those of :class:`GraphDataset`):
        conformers: conformers kept per molecule, the first ones of each list (MiDi: 5).
        limit: read only the first ``limit`` molecules of each split file (quick runs); own cache.
    """

    name = "geom_drugs"
    kind = "molecule"
    ROLES = {"train": 0, "val": 1, "test": 2}

    def __init__(self, root=None, split: str | None = None, *, download: bool = True, force_reload: bool = False,
                 conformers: int = 5, limit: int | None = None, explicit_h: bool = True):
        _explicit_h_only(self.name, explicit_h)
        self.conformers = _positive("geom_drugs: conformers", conformers)
        self.limit = _positive("geom_drugs: limit", limit)
        super().__init__(root, split, download=download, force_reload=force_reload)

    def variant(self) -> str:
        return f"explicit_h-aromatic-conf{self.conformers}" + (f"-limit{self.limit}" if self.limit else "")

    def cache_key(self) -> dict:
        return {**super().cache_key(), "conformers": self.conformers, "limit": self.limit,
                "derivation": DERIVATION_VERSION}

    def raw_choices(self, role: str) -> list[RawFile]:
        return card_files(self.name, role)

    def process(self):
        invalid = InvalidRows(keep=100)
        parts, pos, split, buf = [], [], [], _Buffer()
        raw_files, counts = {}, {}
        for role, code in self.ROLES.items():
            path = self.fetch(*self.raw_choices(role))
            raw_files[path.name] = sha256_file(path)
            items = load_conformer_pickle(path)[:self.limit]
            counts[role] = {"molecules": len(items), "conformers": 0}
            for i, (smi, confs) in enumerate(items):
                for j, conf in enumerate(confs[:self.conformers]):
                    try:
                        mol = Chem.Mol(conf)
                        Chem.SanitizeMol(mol)
                        mol = Chem.AddHs(mol, addCoords=True)
                        xyz = mol_positions(mol, f"{path.name}: molecule {i} conformer {j}")
                        buf.add(*_mol_arrays(mol))
                    except KeyError as exc:
                        invalid.add(path.name, i, smi, f"conformer {j}: unsupported bond type {exc.args[0]}")
                        continue
                    except Exception as exc:  # DataError or an RDKit sanitization error: counted, skipped
                        reason = str(exc).split(": ")[-1] if isinstance(exc, DataError) else type(exc).__name__
                        invalid.add(path.name, i, smi, f"conformer {j}: {reason}")
                        continue
                    pos.append(xyz.astype(np.float32))
                    split.append(code)
                    counts[role]["conformers"] += 1
                    if len(buf) >= CHUNK:  # flat arrays every few thousand conformers: bounded Python objects
                        parts.append(buf.arrays())
                        buf = _Buffer()
            del items
        if len(buf):
            parts.append(buf.arrays())
        if not parts:
            raise DataError(f"{self.name}: no conformer could be read ({invalid.count} invalid)")
        store, tokens = _assemble(parts, np.asarray(split, np.int8), kekulize=False)
        store.pos = np.concatenate(pos)
        schema = store.schema(tokens, bond_categories(False), kind="molecule", explicit_h=True)
        info = {"raw_files": raw_files, "read": counts, **_atom_stats(store, tokens, invalid),
                "split_rule": "MiDi: train/val/test_data.pickle", "conformers_per_molecule": self.conformers,
                "options": {"conformers": self.conformers, "limit": self.limit}}
        return store, schema, info

