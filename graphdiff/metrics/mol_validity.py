"""Per-sample validity (strict / relaxed / corrected), canonical SMILES, uniqueness and novelty.

See :mod:`graphdiff.metrics.molecules` for the definitions."""

from __future__ import annotations

import math
from collections.abc import Sequence

from rdkit import Chem, RDLogger

from ..convert.validity import correct_valence, is_valid_relaxed, is_valid_strict, largest_fragment
from ..errors import DataError

RDLogger.DisableLog("rdApp.*")

VALIDITY_DEFINITIONS = ("strict", "relaxed", "corrected")

# ---------------------------------------------------------------------------------------------------------------
# samples and validity
def _check_samples(samples, name: str = "generated") -> list:
    if isinstance(samples, (str, Chem.Mol)):
        raise DataError(f"{name}: expected a list of samples, got a single {type(samples).__name__}")
    out = list(samples)
    if not out:
        raise DataError(f"{name}: no samples")
    for i, x in enumerate(out):
        if x is None or isinstance(x, Chem.Mol):
            continue
        if isinstance(x, str):
            out[i] = x.strip() or None
        elif isinstance(x, float) and math.isnan(x):  # a missing value from pandas
            out[i] = None
        else:
            raise DataError(f"{name}: sample {i} is a {type(x).__name__}; expected a SMILES string, an RDKit Mol "
                            "or None")
    return out


def _canon(mol: Chem.Mol | None, isomeric: bool) -> str | None:
    if mol is None:
        return None
    try:
        if any(a.GetAtomicNum() == 1 for a in mol.GetAtoms()):
            mol = Chem.RemoveHs(mol)
        smi = Chem.MolToSmiles(mol, isomericSmiles=isomeric)
    except Exception:
        return None
    return smi or None


def _largest_sanitized(mol: Chem.Mol) -> Chem.Mol:
    frags = Chem.GetMolFrags(mol, asMols=True)  # sanitized fragments of a sanitized molecule
    return frags[0] if len(frags) == 1 else max(frags, key=lambda f: f.GetNumAtoms())


def sample_validity(x, definition: str = "strict", *, isomeric: bool = False):
    """``(strict, relaxed, corrected, canonical SMILES under definition or None)`` for one sample."""
    full = raw = None
    if isinstance(x, str):
        full = Chem.MolFromSmiles(x)
        if full is not None and full.GetNumAtoms() == 0:
            full = None
        if full is None:
            raw = Chem.MolFromSmiles(x, sanitize=False)
    elif isinstance(x, Chem.Mol):
        if is_valid_strict(x):
            full = Chem.Mol(x)
            Chem.SanitizeMol(full)
        else:
            raw = x
    if full is not None:
        mol = full if definition == "strict" else _largest_sanitized(full)
        return True, True, True, _canon(mol, isomeric)
    if raw is None or raw.GetNumAtoms() == 0:
        return False, False, False, None
    relaxed = is_valid_relaxed(raw)
    fixed = correct_valence(raw)
    mol = None
    if definition == "relaxed" and relaxed:
        mol = Chem.Mol(largest_fragment(raw))
        Chem.SanitizeMol(mol)
    elif definition == "corrected":
        mol = fixed
    return False, relaxed, fixed is not None, _canon(mol, isomeric)


def _validity_chunk(args):
    items, definition, isomeric = args
    return [sample_validity(x, definition, isomeric=isomeric) for x in items]


def _fraction(samples, k: int) -> float:
    samples = _check_samples(samples)
    flags = _validity_chunk((samples, "strict", False))
    return sum(f[k] for f in flags) / len(samples)


def fraction_valid_strict(samples) -> float:
    """Fraction of samples that sanitize as a whole (SMILES: ``MolFromSmiles`` succeeds with atoms)."""
    return _fraction(samples, 0)


def fraction_valid_relaxed(samples) -> float:
    """Fraction of samples whose largest fragment sanitizes."""
    return _fraction(samples, 1)


def fraction_valid_corrected(samples) -> float:
    """Fraction of samples that GDSS-style valence correction turns into a molecule."""
    return _fraction(samples, 2)


def canonical_valid(samples, definition: str = "strict", *, isomeric: bool = False) -> list[str | None]:
    """Canonical SMILES of each sample's molecule under ``definition`` (``None`` where invalid), same length."""
    _check_definition(definition)
    return [f[3] for f in _validity_chunk((_check_samples(samples), definition, isomeric))]


def _check_definition(definition: str) -> None:
    if definition not in VALIDITY_DEFINITIONS:
        raise DataError(f"validity must be one of {', '.join(VALIDITY_DEFINITIONS)}; got {definition!r}")


def fraction_unique(canonical: Sequence[str | None]) -> float | None:
    """#distinct / #valid over canonical SMILES (``None`` entries are invalid and not in the denominator);
    ``None`` when nothing is valid."""
    valid = [s for s in canonical if s]
    return len(set(valid)) / len(valid) if valid else None


def novelty(canonical: Sequence[str | None], train_canonical: set[str] | frozenset[str]) -> float | None:
    """#distinct valid not in ``train_canonical`` / #distinct valid (both sides canonicalised the same way)."""
    uniq = {s for s in canonical if s}
    return len(uniq - set(train_canonical)) / len(uniq) if uniq else None


