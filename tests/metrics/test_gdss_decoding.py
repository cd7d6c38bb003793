"""GDSS's molecule decoding as a named validity, and the GDSS process's threshold node decoding."""

import pytest
import torch
from rdkit import Chem

from graphdiff import GraphState
from graphdiff.convert.validity import is_valid_strict
from graphdiff.metrics.gdss_decoding import gdss_decoding_validity, gdss_valid, mol_graph
from graphdiff.processes import build_process
from graphdiff.schema import Schema

QM9 = Schema(node_categories=("C", "N", "O", "F"), edge_categories=("none", "SINGLE", "DOUBLE", "TRIPLE"),
             kind="molecule", max_nodes=5, node_count_hist=(0, 0, 0, 1, 1, 1))


def raw(smiles_atoms, bonds):
    """An unsanitized molecule with neutral atoms, as a decoder would build it."""
    rw = Chem.RWMol()
    for s in smiles_atoms:
        rw.AddAtom(Chem.Atom(s))
    for i, j, o in bonds:
        rw.AddBond(i, j, {1: Chem.BondType.SINGLE, 2: Chem.BondType.DOUBLE, 3: Chem.BondType.TRIPLE}[o])
    return rw.GetMol()


def test_an_over_valent_oxygen_is_valid_only_under_gdss_decoding():
    trimethyl_oxonium = raw("COCC", [(0, 1, 1), (1, 2, 1), (1, 3, 1)])  # C[O+](C)C once charged
    assert not is_valid_strict(trimethyl_oxonium)
    assert gdss_valid(*mol_graph(trimethyl_oxonium))
    iminium = raw("CNCC", [(0, 1, 2), (1, 2, 1), (1, 3, 1)])  # C=[N+](C)C
    assert not is_valid_strict(iminium) and gdss_valid(*mol_graph(iminium))
    assert gdss_valid(["C", "S", "C", "C"], [(0, 1, 1), (1, 2, 1), (1, 3, 1)])  # [S+]
    # the rule adds exactly one charge: two orders over, or an element outside N/O/S, stays invalid
    assert not gdss_valid(["N", "C", "C", "C", "C", "C"], [(0, 1, 2), (0, 2, 1), (0, 3, 1), (0, 4, 1)])
    assert not gdss_valid(["F", "C", "C"], [(0, 1, 1), (0, 2, 1)])
    assert not gdss_valid(["C"] * 6, [(0, k, 1) for k in range(1, 6)])
    assert gdss_valid([], [])  # GDSS counts an empty molecule as valid ...
    assert gdss_decoding_validity([None, raw("CC", [(0, 1, 1)])]) == 0.5  # ... a sample that decodes to None not


def test_one_charge_per_bond_to_the_first_atom_rdkit_rejects_as_in_gdss():
    # N bonded to three C and to O, O to two C: the N-O bond makes both over-valent by one. GDSS charges only the
    # first rejected atom after each bond, so whether both get charged depends on which bonds come later.
    early = ["N", "O"] + ["C"] * 5  # N-O is pair (1, 0), added first: N and O are charged at later bonds
    assert gdss_valid(early, [(0, 1, 1), (0, 2, 1), (0, 3, 1), (0, 4, 1), (1, 5, 1), (1, 6, 1)])
    late = ["C"] * 5 + ["O", "N"]  # N-O is pair (6, 5), added last: O (lower index) is charged, N never
    assert not gdss_valid(late, [(6, 0, 1), (6, 1, 1), (6, 2, 1), (5, 3, 1), (5, 4, 1), (6, 5, 1)])


def test_molecule_metrics_report_it_beside_strict_validity():
    from graphdiff.metrics.molecules import molecule_metrics

    mols = [raw("COCC", [(0, 1, 1), (1, 2, 1), (1, 3, 1)]), raw("CCO", [(0, 1, 1), (1, 2, 1)]), None]
    res = molecule_metrics(mols, ["CCO", "CCC"], metrics=(), n_jobs=1)
    assert res["validity_strict"] == pytest.approx(1 / 3)
    assert res["validity_gdss_decoding"] == pytest.approx(2 / 3)
    smi = molecule_metrics(["CCO", ""], ["CCO"], metrics=(), n_jobs=1)
    assert smi["validity_gdss_decoding"] is None and "SMILES" in smi["undefined"]["validity_gdss_decoding"]


def test_threshold_node_decoding_drops_nodes_and_takes_the_first_element_above_half():
    proc = build_process({"name": "gdss", "node_features": "types", "node_decoding": "threshold",
                          "sde_x": {"type": "VE", "beta_min": 0.1, "beta_max": 1.0},
                          "sde_adj": {"type": "VE", "beta_min": 0.1, "beta_max": 1.0}}, QM9)
    x = torch.tensor([[[0.6, 0.9, 0.0, 0.0],     # C (first above 0.5), not N (the argmax)
                       [0.2, 0.1, 0.5, 0.4],     # nothing above 0.5: dropped
                       [0.0, 0.0, 1.2, 0.0],     # O
                       [0.0, 0.0, 0.0, 0.0]]])   # padding
    a = torch.zeros(1, 4, 4)
    a[0, 0, 2] = a[0, 2, 0] = 1.2   # single bond C-O
    a[0, 0, 1] = a[0, 1, 0] = 2.0   # a double bond to the dropped node: gone with it
    state = GraphState(x=x, e=a.unsqueeze(-1), mask=torch.tensor([[True, True, True, False]]))
    out = proc.decode(state)
    assert out.mask.tolist() == [[True, False, True, False]]
    assert out.node_types(QM9)[0, [0, 2]].tolist() == [0, 2]
    from graphdiff.convert.rdkit import to_smiles

    assert to_smiles(out, QM9) == ["CO"]
    argmax = build_process({**proc.to_dict(), "node_decoding": "argmax"}, QM9).decode(state)
    assert argmax.mask.tolist() == [[True, True, True, False]] and int(argmax.node_types(QM9)[0, 0]) == 1
