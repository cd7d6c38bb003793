from rdkit import Chem

from graphdiff.convert import correct_valence, is_connected, is_valid_relaxed, is_valid_strict, largest_fragment


def build(atoms, bonds):
    rw = Chem.RWMol()
    for a in atoms:
        rw.AddAtom(Chem.Atom(a))
    for u, v, t in bonds:
        rw.AddBond(u, v, t)
    return rw.GetMol()


S, D, T = Chem.BondType.SINGLE, Chem.BondType.DOUBLE, Chem.BondType.TRIPLE


def test_strict_relaxed_differ_on_bad_small_fragment():
    # a valid propane and a separate over-valent O (O with three single bonds to carbons)
    mol = build(["C", "C", "C", "O", "C", "C", "C"], [(0, 1, S), (1, 2, S), (3, 4, S), (3, 5, S), (3, 6, S)])
    assert not is_valid_strict(mol)
    assert is_valid_relaxed(mol) is False  # largest fragment is the bad one (4 atoms)
    mol2 = build(["C", "C", "C", "C", "C", "O", "C", "C", "C"],
                 [(0, 1, S), (1, 2, S), (2, 3, S), (3, 4, S), (5, 6, S), (5, 7, S), (5, 8, S)])
    assert not is_valid_strict(mol2)
    assert is_valid_relaxed(mol2)
    assert not is_connected(mol2)
    assert largest_fragment(mol2).GetNumAtoms() == 5


def test_correct_valence_downgrades_highest_order_bond_and_strict_stays_false():
    mol = build(["C", "C", "C"], [(0, 1, T), (1, 2, D)])  # central carbon has valence 5
    assert not is_valid_strict(mol)
    fixed = correct_valence(mol)
    assert fixed is not None and is_valid_strict(fixed)
    assert Chem.MolToSmiles(fixed) == "C=C=C"
    assert not is_valid_strict(mol)  # the input is untouched


def test_valid_molecule_passes_everything_and_none_fails():
    mol = Chem.MolFromSmiles("CCO")
    assert is_valid_strict(mol) and is_valid_relaxed(mol) and is_connected(mol)
    assert not is_valid_strict(None) and not is_valid_relaxed(None) and correct_valence(None) is None
    assert not is_valid_strict(Chem.Mol())
