"""Medicinal-chemistry filters as MOSES defines them (``moses.metrics.utils.mol_passes_filters``).

A molecule passes when it has no ring of 8 or more atoms, no charged atom, only atoms from
``{C, N, S, O, F, Cl, Br, H}``, matches none of the MCF and PAINS SMARTS (matched on the molecule with explicit
hydrogens) and survives a SMILES round trip.

The SMARTS come from MOSES's own ``mcf.csv`` (22 MCF) and ``wehi_pains.csv`` (480 PAINS) inside the installed
``molsets`` wheel, located without importing ``moses`` (its imports need packages this project does not use).
Without ``molsets`` the RDKit ``FilterCatalog`` PAINS (A+B+C) catalogue is used instead, which has no MCF
patterns; :func:`filter_set_name` says which set is in use and every result records it.

Speed: a pattern is matched only when its RDKit pattern fingerprint is a subset of the molecule's (the screen
RDKit's ``SubstructLibrary`` relies on); the test suite checks that screening never changes an answer.
"""

from __future__ import annotations

import csv
import importlib.util
import os
from functools import lru_cache

import numpy as np
from rdkit import Chem
from rdkit.Chem import FilterCatalog, PatternFingerprint

ALLOWED_ATOMS = frozenset({"C", "N", "S", "O", "F", "Cl", "Br", "H"})


def _moses_dir() -> str | None:
    try:
        spec = importlib.util.find_spec("moses")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for loc in spec.submodule_search_locations:
        d = os.path.join(loc, "metrics")
        if os.path.isfile(os.path.join(d, "mcf.csv")) and os.path.isfile(os.path.join(d, "wehi_pains.csv")):
            return d
    return None


def _moses_smarts(d: str) -> list[str]:
    with open(os.path.join(d, "mcf.csv"), newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    header = [h.strip() for h in rows[0]]
    col = header.index("smarts")
    mcf = [r[col].strip() for r in rows[1:] if r]
    with open(os.path.join(d, "wehi_pains.csv"), newline="", encoding="utf-8") as fh:  # no header: smarts,names
        pains = [r[0].strip() for r in csv.reader(fh) if r]
    return mcf + pains


def _bits(fp) -> np.ndarray:
    return np.frombuffer(fp.ToBitString().encode("ascii"), dtype=np.uint8) == 49


class _SmartsSet:
    """SMARTS patterns with their RDKit pattern fingerprints: a pattern can only match a molecule whose pattern
    fingerprint holds all of the pattern's bits (the screen RDKit's SubstructLibrary uses), so only those
    candidates are matched."""

    def __init__(self, smarts: list[str]):
        self.patterns = [p for p in (Chem.MolFromSmarts(s) for s in smarts) if p is not None]
        self.bits = np.stack([_bits(PatternFingerprint(p)) for p in self.patterns])

    def __call__(self, mol_h: Chem.Mol, screen: bool = True) -> bool:
        if screen:
            cand = np.flatnonzero(~(self.bits & ~_bits(PatternFingerprint(mol_h))).any(1))
        else:
            cand = range(len(self.patterns))
        return any(mol_h.HasSubstructMatch(self.patterns[i]) for i in cand)


@lru_cache(maxsize=1)
def _catalog():
    d = _moses_dir()
    if d is not None:
        return f"moses (MCF + PAINS SMARTS from {d})", _SmartsSet(_moses_smarts(d))
    params = FilterCatalog.FilterCatalogParams()
    params.AddCatalog(FilterCatalog.FilterCatalogParams.FilterCatalogs.PAINS)
    name = "rdkit FilterCatalog PAINS A+B+C (molsets not installed: no MCF patterns)"
    return name, FilterCatalog.FilterCatalog(params).HasMatch


def filter_set_name() -> str:
    """Which filter set :func:`passes_filters` uses (MOSES's SMARTS or the RDKit PAINS fallback)."""
    return _catalog()[0]


def passes_filters(mol: Chem.Mol | None) -> bool:
    """MOSES ``mol_passes_filters`` for a sanitized molecule (``False`` for ``None``)."""
    if mol is None or mol.GetNumAtoms() == 0:
        return False
    ri = mol.GetRingInfo()
    if ri.NumRings() and any(len(r) >= 8 for r in ri.AtomRings()):
        return False
    for a in mol.GetAtoms():
        if a.GetFormalCharge() != 0 or a.GetSymbol() not in ALLOWED_ATOMS:
            return False
    if _catalog()[1](Chem.AddHs(mol)):
        return False
    smi = Chem.MolToSmiles(mol, isomericSmiles=False)
    return bool(smi) and Chem.MolFromSmiles(smi) is not None
