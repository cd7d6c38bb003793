"""Valence tables behind the atom / molecule stability of 3D molecule generators, two named rules side by side.

Both rules look only at the molecular graph as generated (explicit hydrogens, bond orders, formal charges); no
sanitization, no implicit hydrogens. An atom is *stable* when its bonds fit its rule's table; a molecule is stable
when all its atoms are.

``"legacy"``: the rule of MiDi (Vignac et al. 2023) and EQGAT-diff (Le et al. 2024), as their code executes.
  Read in ``cvignac/MiDi`` ``midi/analysis/rdkit_functions.py`` (``allowed_bonds``, ``check_stability``) at commit
  ``775b731c38967a1e49615b2ad70ac6b5db24909a`` and in ``jule-c/eqgat_diff``
  ``eqgat_diff/experiments/sampling/utils.py`` (same table, same function) at commit
  ``98dce2f9c13ed5bb4d57a58789397d394fd51104``.

  - valence = sum of bond orders, single 1, double 2, triple 3 and **aromatic 1**. The code writes 1.5 for the
    aromatic class (4) into the *integer* bond-type tensor (``edge_types[edge_types == 4] = 1.5`` on a
    ``torch.long`` tensor, asserted long in their ``Molecule``), which stores 1: the intended 1.5 never reaches
    the sum. Nikitin et al. 2025 describe the same truncation (their ``bug_example/`` folder).
  - the allowed valences come from :data:`LEGACY_VALENCES`. An entry that names charges is looked up with the
    atom's formal charge and, when that charge is not listed, with charge 0 (so a C+2 is judged as a neutral C); an
    entry without charges ignores the charge. Notable leniencies of the table: neutral C with 3 bonds, N+ with 2 or
    3 bonds and neutral N with 2 bonds are all "stable".
  - an element missing from the table makes their code raise ``KeyError``; here the atom is unstable.

``"revisited"``: the corrected rule of Nikitin, Dunn, Koes & Isayev 2025, "GEOM-Drugs Revisited" (arXiv
  2505.00169). Read in ``isayevlab/geom-drugs-3dgen-evaluation`` ``geom_utils/molecule_stability.py``
  (``compute_molecules_stability_from_graph``) and ``geom_utils/geom_drugs_valency_table.py``
  (``geom_drugs_h_tuple_valencies``) at commit ``bfc5bed26c0ccfae0a2edba043735d50e3433c31``; the table is
  unchanged since its first commit ``f988bc2`` (2025-04-30).

  - the paper describes it as "aromatic bonds count 1.5 with a charge-aware valence table"; the code makes that
    exact by keeping aromatic bonds apart: an atom's state is the pair ``(number of aromatic bonds, integer sum of
    the orders of its other bonds)``, and the pair must be one listed for its element **and** formal charge in
    :data:`REVISITED_VALENCES`. A benzene carbon is ``(2, 1)``, a fused-ring carbon ``(3, 0)``, a pyrrole N-H
    ``(2, 1)``, a pyridine N ``(2, 0)``, a nitro N+ ``(0, 4)`` (one double, two single bonds).
  - an (element, charge) pair absent from the table is unstable (their code warns and says invalid): there is no
    fallback to the neutral entry.
  - without aromatic bonds (a kekulized molecule) every pair is ``(0, v)`` and the rule is the plain integer table
    ``geom_drugs_h_valencies`` of the same file (e.g. C 4; N 3, N+ 4, N- 2; O 2, O+ 3, O- 1).
  - the table was built from the cleaned GEOM-Drugs set; for QM9 (H, C, N, O, F) every element/charge that the
    QM9 SMILES use is listed.

The tables are data (element -> formal charge -> allowed values) written out here in our own form.
"""

from __future__ import annotations

#: rule name -> one-line summary, as reported beside the numbers
STABILITY_RULES: dict[str, str] = {
    "legacy": "MiDi/EQGAT-diff allowed_bonds as executed: aromatic counts 1 (1.5 truncated into an integer "
              "tensor), unlisted charge falls back to the neutral entry (cvignac/MiDi@775b731 "
              "midi/analysis/rdkit_functions.py; jule-c/eqgat_diff@98dce2f experiments/sampling/utils.py)",
    "revisited": "Nikitin et al. 2025 GEOM-Drugs Revisited: (n aromatic bonds, other valence) per element and "
                 "formal charge, unlisted charge unstable (isayevlab/geom-drugs-3dgen-evaluation@bfc5bed "
                 "geom_utils/geom_drugs_valency_table.py geom_drugs_h_tuple_valencies)",
}

#: bond order each RDKit bond type name adds to the legacy valence (aromatic: 1, as the legacy code executes)
LEGACY_BOND_ORDER: dict[str, int] = {"SINGLE": 1, "DOUBLE": 2, "TRIPLE": 3, "AROMATIC": 1}

#: bond order of the non-aromatic bond types in the revisited rule (aromatic bonds are counted apart)
REVISITED_BOND_ORDER: dict[str, int] = {"SINGLE": 1, "DOUBLE": 2, "TRIPLE": 3}

_ANY = None  # key of an entry that ignores the formal charge

#: MiDi / EQGAT-diff ``allowed_bonds``: element -> {formal charge (or ``None`` = any charge): allowed valences}
LEGACY_VALENCES: dict[str, dict[int | None, frozenset[int]]] = {
    "H": {0: frozenset({1}), 1: frozenset({0}), -1: frozenset({0})},
    "C": {0: frozenset({3, 4}), 1: frozenset({3}), -1: frozenset({3})},
    "N": {0: frozenset({2, 3}), 1: frozenset({2, 3, 4}), -1: frozenset({2})},
    "O": {0: frozenset({2}), 1: frozenset({3}), -1: frozenset({1})},
    "F": {0: frozenset({1}), -1: frozenset({0})},
    "B": {_ANY: frozenset({3})},
    "Al": {_ANY: frozenset({3})},
    "Si": {_ANY: frozenset({4})},
    "P": {0: frozenset({3, 5}), 1: frozenset({4})},
    "S": {0: frozenset({2, 6}), 1: frozenset({2, 3}), 2: frozenset({4}), 3: frozenset({5}), -1: frozenset({3})},
    "Cl": {_ANY: frozenset({1})},
    "As": {_ANY: frozenset({3})},
    "Br": {0: frozenset({1}), 1: frozenset({2})},
    "I": {_ANY: frozenset({1})},
    "Hg": {_ANY: frozenset({1, 2})},
    "Bi": {_ANY: frozenset({3, 5})},
    "Se": {_ANY: frozenset({2, 4, 6})},
}

#: GEOM-Drugs Revisited tuple table: element -> formal charge -> allowed (n aromatic bonds, other valence)
REVISITED_VALENCES: dict[str, dict[int, frozenset[tuple[int, int]]]] = {
    "H": {0: frozenset({(0, 1)})},
    "C": {0: frozenset({(0, 4), (2, 2), (2, 1), (3, 0)}),
          -1: frozenset({(0, 3), (2, 1), (3, 0)}),
          1: frozenset({(0, 3), (2, 1), (3, 0)})},
    "N": {0: frozenset({(0, 3), (2, 0), (2, 1), (3, 0)}),
          1: frozenset({(0, 4), (2, 0), (2, 1), (2, 2), (3, 0)}),
          -1: frozenset({(0, 2), (2, 0)}),
          -2: frozenset({(0, 1)})},
    "O": {0: frozenset({(0, 2), (2, 0)}), -1: frozenset({(0, 1)}), 1: frozenset({(0, 3)})},
    "F": {0: frozenset({(0, 1)})},
    "S": {0: frozenset({(0, 2), (0, 3), (0, 6), (2, 0)}),
          1: frozenset({(0, 3), (2, 0), (2, 1), (3, 0)}),
          2: frozenset({(0, 4), (2, 1), (2, 2)}),
          3: frozenset({(0, 2), (0, 5)}),
          -1: frozenset({(0, 1)})},
    "Cl": {0: frozenset({(0, 1)}), 1: frozenset({(0, 2)})},
    "Br": {0: frozenset({(0, 1)}), 1: frozenset({(0, 2)})},
    "I": {0: frozenset({(0, 1)}), 1: frozenset({(0, 2)}), 2: frozenset({(0, 3)})},
    "P": {0: frozenset({(0, 3), (0, 5)}), 1: frozenset({(0, 4)})},
    "Si": {0: frozenset({(0, 4)}), 1: frozenset({(0, 5)})},
    "B": {0: frozenset({(0, 3)}), -1: frozenset({(0, 4)})},
    "Bi": {0: frozenset({(0, 3)}), 2: frozenset({(0, 5)})},
}


def legacy_allowed(symbol: str, charge: int) -> frozenset[int]:
    """The valences the legacy rule accepts for an atom (empty for an element outside the table)."""
    entry = LEGACY_VALENCES.get(symbol)
    if entry is None:
        return frozenset()
    if _ANY in entry:
        return entry[_ANY]
    return entry.get(charge, entry[0])


def revisited_allowed(symbol: str, charge: int) -> frozenset[tuple[int, int]]:
    """The ``(n aromatic bonds, other valence)`` pairs the revisited rule accepts (empty when not listed)."""
    return REVISITED_VALENCES.get(symbol, {}).get(charge, frozenset())


def legacy_atom_stable(symbol: str, charge: int, bond_types: list[str]) -> bool:
    """Legacy stability of one atom from the RDKit type names of its bonds (``"SINGLE"``, ``"AROMATIC"``, ...).

    A bond type outside :data:`LEGACY_BOND_ORDER` (dative, zero-order, ...) makes the atom unstable.
    """
    try:
        valence = sum(LEGACY_BOND_ORDER[t] for t in bond_types)
    except KeyError:
        return False
    return valence in legacy_allowed(symbol, charge)


def revisited_atom_stable(symbol: str, charge: int, bond_types: list[str]) -> bool:
    """Revisited stability of one atom from the RDKit type names of its bonds.

    A bond type that is neither aromatic nor in :data:`REVISITED_BOND_ORDER` makes the atom unstable.
    """
    n_aromatic, other = 0, 0
    for t in bond_types:
        if t == "AROMATIC":
            n_aromatic += 1
        elif t in REVISITED_BOND_ORDER:
            other += REVISITED_BOND_ORDER[t]
        else:
            return False
    return (n_aromatic, other) in revisited_allowed(symbol, charge)


ATOM_STABLE = {"legacy": legacy_atom_stable, "revisited": revisited_atom_stable}
