"""Per-molecule features of the molecule metrics (computed once per distinct canonical SMILES, in worker chunks).

Morgan fingerprints (radius 2, 1024 bits, as ``np.packbits`` rows), BRICS fragments, Bemis-Murcko scaffolds,
the four MOSES properties (QED, SA, logP, MW), the MOSES filters and the NSPDK feature vector. See
:mod:`graphdiff.metrics.molecules` for how each metric uses them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from rdkit import Chem, RDLogger
from rdkit.Chem import QED, Crippen, Descriptors, rdFingerprintGenerator
from rdkit.Chem.Scaffolds import MurckoScaffold

from . import nspdk as _nspdk
from .mol_validity import _canon

RDLogger.DisableLog("rdApp.*")

PROPERTIES = ("qed", "sa", "logp", "mw")
FP_RADIUS = 2
FP_BITS = 1024
SCAFFOLD_MIN_RINGS = 2
FEATURES = ("fp", "frag", "scaf", "props", "sa", "filters", "nspdk")

_FPGEN = None


def _fingerprint(mol) -> np.ndarray:
    global _FPGEN
    if _FPGEN is None:
        _FPGEN = rdFingerprintGenerator.GetMorganGenerator(radius=FP_RADIUS, fpSize=FP_BITS)
    return np.packbits(_FPGEN.GetFingerprintAsNumPy(mol).astype(bool))


def _fragments(mol) -> list[str]:
    return Chem.MolToSmiles(Chem.FragmentOnBRICSBonds(mol)).split(".")


def _scaffold(mol, min_rings: int) -> str | None:
    try:
        scaf = MurckoScaffold.GetScaffoldForMol(mol)
    except (ValueError, RuntimeError):
        return None
    smi = Chem.MolToSmiles(scaf)
    if not smi or scaf.GetRingInfo().NumRings() < min_rings:
        return None
    return smi


def _properties(mol) -> tuple[float, float, float, float]:
    from .sascore import sa_score

    def safe(f, *a, **k):
        try:
            return float(f(*a, **k))
        except Exception:
            return float("nan")  # internal only: dropped before any distance is computed

    try:  # QED's own property pass already holds Crippen logP and MolWt (same functions, H-free molecule)
        qp = QED.properties(mol)
        return safe(QED.qed, mol, qedProperties=qp), safe(sa_score, mol), float(qp.ALOGP), float(qp.MW)
    except Exception:
        return (safe(QED.qed, mol), safe(sa_score, mol), safe(Crippen.MolLogP, mol), safe(Descriptors.MolWt, mol))


def _sa(mol) -> float:
    """SA score alone (NaN where it fails), as in :func:`_properties`."""
    from .sascore import sa_score

    try:
        return float(sa_score(mol))
    except Exception:
        return float("nan")


@dataclass
class _Feat:
    fp: np.ndarray | None = None
    frags: list | None = None
    scaf: str | None = None
    props: tuple | None = None
    filt: bool | None = None
    nspdk: tuple | None = None
    sa: float | None = None


def _features_chunk(args):
    """``[_Feat or None]`` for canonical SMILES ``items`` (``None`` where a string does not parse)."""
    from .filters import passes_filters

    items, want, scaf_rings = args
    out = []
    for smi in items:
        mol = Chem.MolFromSmiles(smi)
        if mol is None:
            out.append(None)
            continue
        f = _Feat()
        if "fp" in want:
            f.fp = _fingerprint(mol)
        if "frag" in want:
            f.frags = _fragments(mol)
        if "scaf" in want:
            f.scaf = _scaffold(mol, scaf_rings)
        if "props" in want:
            f.props = _properties(mol)
        if "sa" in want:
            f.sa = _sa(mol)
        if "filters" in want:
            f.filt = passes_filters(mol)
        if "nspdk" in want:
            f.nspdk = _nspdk.compact_features(_nspdk.nspdk_features(*_nspdk.mol_to_arrays(mol)))
        out.append(f)
    return out


def _canon_chunk(args):
    """Canonical SMILES (or ``None``) of each string of ``items``."""
    items, isomeric = args
    out = []
    for s in items:
        m = Chem.MolFromSmiles(s) if isinstance(s, str) and s.strip() else None
        out.append(_canon(m, isomeric) if m is not None and m.GetNumAtoms() else None)
    return out


def _wanted(metrics: set) -> set:
    """The per-molecule features that ``metrics`` need."""
    want = set()
    if metrics & {"snn", "intdiv"}:
        want.add("fp")
    for m in ("frag", "scaf", "props", "filters", "nspdk"):
        if m in metrics:
            want.add(m)
    return want
