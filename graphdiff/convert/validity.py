"""Named molecule validity definitions, kept apart so that no report mixes them.

- :func:`is_valid_strict`: the whole molecule, as decoded, sanitizes in RDKit (no correction; fragments allowed).
  This is "validity without correction" of GDSS / DiGress tables.
- :func:`is_valid_relaxed`: the largest fragment (by atom count) sanitizes.
- :func:`is_connected`: one fragment.
- :func:`correct_valence`: GDSS-style repair (lower the order of the highest-order bond at an over-valent atom
  until RDKit accepts the molecule). It returns a new molecule; it never feeds into strict validity.
"""

from __future__ import annotations

from rdkit import Chem

_DOWNGRADE = {
    Chem.BondType.TRIPLE: Chem.BondType.DOUBLE,
    Chem.BondType.DOUBLE: Chem.BondType.SINGLE,
    Chem.BondType.AROMATIC: Chem.BondType.SINGLE,
}


def _sanitized(mol: Chem.Mol | None) -> Chem.Mol | None:
    if mol is None or mol.GetNumAtoms() == 0:
        return None
    m = Chem.Mol(mol)
    try:
        Chem.SanitizeMol(m)
    except Exception:
        return None
    return m


def is_valid_strict(mol: Chem.Mol | None) -> bool:
    """True when the molecule sanitizes as decoded (no correction, no fragment selection)."""
    return _sanitized(mol) is not None


def largest_fragment(mol: Chem.Mol | None) -> Chem.Mol | None:
    """The fragment with the most atoms (first one on ties), unsanitized; ``None`` for ``None``/empty input."""
    if mol is None or mol.GetNumAtoms() == 0:
        return None
    try:
        frags = Chem.GetMolFrags(mol, asMols=True, sanitizeFrags=False)
    except Exception:
        return None
    return max(frags, key=lambda f: f.GetNumAtoms())


def is_valid_relaxed(mol: Chem.Mol | None) -> bool:
    """True when the largest fragment sanitizes."""
    return _sanitized(largest_fragment(mol)) is not None


def is_connected(mol: Chem.Mol | None) -> bool:
    if mol is None or mol.GetNumAtoms() == 0:
        return False
    return len(Chem.GetMolFrags(mol)) == 1


def correct_valence(
    mol: Chem.Mol | None, *, keep_largest_fragment: bool = True, max_iter: int = 200
) -> Chem.Mol | None:
    """Repair valence errors the way GDSS does and return a sanitized molecule (``None`` if impossible).

    While RDKit reports an atom with too high a valence, the highest-order bond at that atom is lowered by one
    order (a single bond is removed). With ``keep_largest_fragment`` the largest fragment is returned, as in
    GDSS's ``valid_mol_can_with_seg``.
    """
    if mol is None or mol.GetNumAtoms() == 0:
        return None
    rw = Chem.RWMol(mol)
    for _ in range(max_iter):
        try:
            rw.UpdatePropertyCache(strict=False)
            problems = Chem.DetectChemistryProblems(rw)
        except Exception:
            return None
        valence = [p for p in problems if p.GetType() == "AtomValenceException"]
        if not valence:
            break
        atom = rw.GetAtomWithIdx(valence[0].GetAtomIdx())
        bonds = sorted(atom.GetBonds(), key=lambda b: (-b.GetBondTypeAsDouble(), b.GetIdx()))
        if not bonds:  # an isolated atom over valence (e.g. a charge problem): cannot be fixed by bonds
            return None
        b = bonds[0]
        u, v, bt = b.GetBeginAtomIdx(), b.GetEndAtomIdx(), b.GetBondType()
        rw.RemoveBond(u, v)
        if bt in _DOWNGRADE:
            rw.AddBond(u, v, _DOWNGRADE[bt])
    out = rw.GetMol()
    if keep_largest_fragment:
        out = largest_fragment(out)
    return _sanitized(out)
