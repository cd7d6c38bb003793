"""GDSS's molecule decoding as a named validity (``validity_gdss_decoding``), beside our strict one.

The GDSS authors (Jo et al. 2022, github.com/harryjo97/GDSS, ``utils/mol_utils.py``) report "validity without
correction" after a decoding of their own, which differs from :func:`graphdiff.convert.validity.is_valid_strict`
in two ways:

1. Nodes whose features are all at most 0.5 are dropped and a node's element is the first one above 0.5 (the
   process option ``node_decoding: threshold`` of :class:`graphdiff.processes.GDSSProcess`).
2. Bonds are added one at a time, in the order of the pairs ``(i, j)``, ``i > j``, sorted by ``i`` then ``j``.
   After each bond RDKit's valence check runs (``SanitizeMol`` with ``SANITIZE_PROPERTIES`` only); when the first
   atom it rejects is N, O or S with exactly one bond order above its usual valence (3, 2, 2), that atom gets
   charge +1 (``[N+]``, ``[O+]``, ``[S+]``). A molecule is valid when the check passes once every bond is in.
   One atom is charged per bond, so the verdict can depend on the node order (a bond making two atoms
   over-valent, added last, leaves the second one uncharged).

Step 2 credits molecules such as ``C[O+](C)C`` or ``C=[N+](C)C`` that a strict decoding rejects; QM9 contains no
``[O+]`` at all (its charged atoms are ``[NH+]``, ``[N-]``, ``[O-]``, ``[C-]``), so the two figures are not
comparable and are always reported under their own names. One more difference: GDSS counts a sample whose
nodes were all dropped (an empty molecule) as valid; here a sample that decodes to no molecule (``None``) counts
as invalid; :func:`gdss_valid` on an empty graph follows GDSS.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from rdkit import Chem, RDLogger

from ..schema import parse_atom_token

RDLogger.DisableLog("rdApp.*")

# GDSS's ATOM_VALENCY for the elements its charge rule applies to
CHARGEABLE = {7: 3, 8: 2, 16: 2}
_BONDS = {1: Chem.BondType.SINGLE, 2: Chem.BondType.DOUBLE, 3: Chem.BondType.TRIPLE}
_ORDER = {Chem.BondType.SINGLE: 1, Chem.BondType.DOUBLE: 2, Chem.BondType.TRIPLE: 3}


def _first_overvalent(mol: Chem.RWMol) -> int | None:
    """Index of the first atom (in atom order, as SanitizeMol reports it) whose valence RDKit rejects."""
    for atom in mol.GetAtoms():
        try:
            atom.UpdatePropertyCache(strict=True)
        except Exception:  # AtomValenceException
            return atom.GetIdx()
    return None


def _valence(mol: Chem.RWMol, idx: int) -> int:
    return sum(_ORDER.get(b.GetBondType(), 1) for b in mol.GetAtomWithIdx(idx).GetBonds())


def gdss_valid(atoms: Sequence[str], bonds: Iterable[tuple[int, int, int]]) -> bool:
    """Whether GDSS's decoding accepts a molecular graph without correction.

    Args:
        atoms: atom tokens in node order (``"C"``, ``"N"``, ``"O+"``; a token's own charge is kept).
        bonds: ``(i, j, order)`` with order 1, 2 or 3, each unordered pair once.

    Returns:
        True when the molecule passes RDKit's valence check after GDSS's +1 charge rule (an empty graph is valid,
        as in GDSS).
    """
    mol = Chem.RWMol()
    for tok in atoms:
        sym, chg = parse_atom_token(tok)
        a = Chem.Atom(sym)
        a.SetFormalCharge(chg)
        mol.AddAtom(a)
    ordered = sorted((max(i, j), min(i, j), int(o)) for i, j, o in bonds)
    for i, j, order in ordered:
        mol.AddBond(i, j, _BONDS[order])
        bad = _first_overvalent(mol)
        if bad is None:
            continue
        atom = mol.GetAtomWithIdx(bad)
        usual = CHARGEABLE.get(atom.GetAtomicNum())
        if usual is not None and _valence(mol, bad) - usual == 1:
            atom.SetFormalCharge(1)
    return _first_overvalent(mol) is None


def mol_graph(mol: Chem.Mol) -> tuple[list[str], list[tuple[int, int, int]]]:
    """Atom tokens and ``(i, j, order)`` bonds of an (unsanitized) molecule; aromatic bonds count as order 1."""
    from ..schema import atom_token

    atoms = [atom_token(a.GetSymbol(), a.GetFormalCharge()) for a in mol.GetAtoms()]
    bonds = [(b.GetBeginAtomIdx(), b.GetEndAtomIdx(), _ORDER.get(b.GetBondType(), 1)) for b in mol.GetBonds()]
    return atoms, bonds


def gdss_decoding_validity(samples: Sequence[Chem.Mol | None]) -> float:
    """Fraction of samples valid under GDSS's decoding; ``samples`` are molecules as decoded, unsanitized
    (:func:`graphdiff.convert.rdkit.to_mol` with ``sanitize=False``), ``None`` counting as invalid."""
    if not samples:
        return 0.0
    ok = 0
    for mol in samples:
        if mol is not None and mol.GetNumAtoms():
            ok += gdss_valid(*mol_graph(mol))
    return ok / len(samples)


__all__ = ["gdss_valid", "gdss_decoding_validity", "mol_graph", "CHARGEABLE"]
