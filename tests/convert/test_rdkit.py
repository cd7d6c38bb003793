import csv
import gzip

import numpy as np
import pytest
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st
from rdkit import Chem

from graphdiff import DataError, SchemaError
from graphdiff.convert import from_mol, from_smiles, graph_to_mol, to_mol, to_smiles
from graphdiff.convert.rdkit import canonical_smiles
from tests.assets_smiles import shipped_smiles
from tests.conftest import SHARED


def round_trip(smiles, **kw):
    state = from_smiles(smiles, **kw)
    return to_smiles(state)


def test_shipped_smiles_round_trip_exactly():
    smiles = shipped_smiles()
    out = round_trip(smiles)
    bad = [(s, o) for s, o in zip(smiles, out) if o != canonical_smiles(s)]
    assert not bad, bad[:5]


def test_explicit_hydrogens_round_trip_and_count():
    smiles = ["CCO", "c1ccccc1", "[NH3+]CC([O-])=O", "C#N"]
    state = from_smiles(smiles, explicit_h=True)
    assert "H" in state.schema.node_categories and state.schema.explicit_h
    assert state.n_nodes.tolist() == [Chem.AddHs(Chem.MolFromSmiles(s)).GetNumAtoms() for s in smiles]
    assert to_smiles(state) == [canonical_smiles(s) for s in smiles]


def test_kekulized_by_default_and_aromatic_on_request():
    s = from_smiles("c1ccccc1")
    assert s.schema.edge_categories == ("none", "SINGLE", "DOUBLE", "TRIPLE")
    counts = torch.bincount(s.edge_types()[0].flatten(), minlength=4)
    assert counts[1].item() == 6 and counts[2].item() == 6  # 3 single + 3 double, both directions
    a = from_smiles("c1ccccc1", kekulize=False)
    assert "AROMATIC" in a.schema.edge_categories
    assert to_smiles(a) == ["c1ccccc1"]


def test_formal_charges_are_node_categories():
    s = from_smiles("C[N+](=O)[O-]")
    assert {"N+", "O-"} <= set(s.schema.node_categories)


def test_schema_extends_to_any_parsable_element():
    base = from_smiles(["CCO", "CN"]).schema
    with pytest.raises(SchemaError, match="'Se'"):
        from_smiles("[Se]=C=[Se]", schema=base)
    ext = from_smiles(["[Se]=C=[Se]", "[Fe+2]", "[U]", "[O-][Cl+3]([O-])([O-])[O-]"], schema=base, extend=True)
    assert {"Se", "Fe+2", "U", "Cl+3"} <= set(ext.schema.node_categories)
    assert ext.schema.node_categories[:3] == base.node_categories  # old indices unchanged
    wanted = ["[Se]=C=[Se]", "[Fe+2]", "[U]", "[O-][Cl+3]([O-])([O-])[O-]"]
    assert to_smiles(ext) == [canonical_smiles(s) for s in wanted]


def test_bad_smiles_is_one_line_error_naming_value():
    with pytest.raises(DataError, match=r"SMILES 1: RDKit cannot parse SMILES 'C1CC'"):
        from_smiles(["CC", "C1CC"])
    with pytest.raises(DataError, match="empty"):
        from_smiles(["CC", ""])
    # it parses, but RDKit refuses the molecule: the reason, not "cannot parse"
    with pytest.raises(DataError, match=r"SMILES 0: SMILES 'C\(C\)\(C\)\(C\)\(C\)C' is not a valid molecule "
                                        r"\(Explicit valence for atom # 0 C, 5, is greater than permitted\)"):
        from_smiles(["C(C)(C)(C)(C)C"])


def test_graph_to_mol_never_raises():
    schema = from_smiles("CC=O").schema
    import numpy as np

    assert graph_to_mol(np.array([], dtype=int), np.zeros((0, 2), int), np.array([]), schema) is None
    # carbon with five bonds: invalid -> None when sanitizing, a Mol without
    nodes = np.zeros(6, dtype=int)
    edges = np.array([[0, i] for i in range(1, 6)])
    types = np.ones(5, dtype=int)
    assert graph_to_mol(nodes, edges, types, schema) is None
    assert graph_to_mol(nodes, edges, types, schema, sanitize=False) is not None
    assert graph_to_mol(np.array([99]), np.zeros((0, 2), int), np.array([]), schema) is None  # unknown category


def test_from_mol_matches_from_smiles():
    smiles = ["CCO", "c1ccncc1"]
    a = from_smiles(smiles)
    b = from_mol([Chem.MolFromSmiles(s) for s in smiles])
    assert torch.equal(a.x, b.x) and torch.equal(a.e, b.e)
    assert [Chem.MolToSmiles(m) for m in to_mol(b)] == [canonical_smiles(s) for s in smiles]


def test_qm9_round_trip_all_molecules():
    path = SHARED / "qm9" / "qm9_smiles.csv.gz"
    if not path.is_file():
        pytest.skip(f"{path} not present; the shipped SMILES test covers the converter")
    with gzip.open(path, "rt") as fh:
        rows = [r[0] for r in csv.reader(fh)][1:]
    assert len(rows) == 133_885
    bad = []
    chunk = 2048
    for i in range(0, len(rows), chunk):
        part = rows[i:i + chunk]
        out = round_trip(part)
        bad += [(i + k, s, o) for k, (s, o) in enumerate(zip(part, out)) if o != canonical_smiles(s)]
    assert not bad, f"{len(bad)} mismatches, first {bad[:3]}"


@st.composite
def random_molecular_graphs(draw):
    """Random graphs over C/N/O/F/N+/O- with kekulé bond orders; many are not molecules (decoded to None)."""
    import numpy as np

    n = draw(st.integers(1, 8))
    nodes = np.array(draw(st.lists(st.integers(0, 5), min_size=n, max_size=n)))
    pairs = [(i, j) for i in range(n) for j in range(i + 1, n)]
    chosen = draw(st.lists(st.sampled_from(pairs), unique=True, max_size=len(pairs))) if pairs else []
    types = np.array(draw(st.lists(st.integers(1, 3), min_size=len(chosen), max_size=len(chosen))), dtype=int)
    return nodes, np.array(chosen, dtype=int).reshape(-1, 2), types


@settings(max_examples=150, deadline=None)
@given(random_molecular_graphs())
@example((np.array([1, 0, 1]), np.array([[0, 2], [0, 1]]), np.array([3, 2])))  # C=N#N: sanitised to C=[N+]=[N-]
def test_random_graphs_decode_or_none_and_valid_ones_round_trip(graph):
    from graphdiff import Schema
    from graphdiff.convert.validity import is_valid_strict

    schema = Schema(node_categories=("C", "N", "O", "F", "N+", "O-"),
                    edge_categories=("none", "SINGLE", "DOUBLE", "TRIPLE"), kind="molecule")
    raw = graph_to_mol(*graph, schema, sanitize=False)
    mol = graph_to_mol(*graph, schema)  # never raises
    assert (mol is not None) == is_valid_strict(raw)
    if mol is not None:
        smi = Chem.MolToSmiles(mol)
        # RDKit's sanitisation may write a pentavalent N as charges (C=N#N -> C=[N+]=[N-]): a token the schema lacks
        again = to_smiles(from_smiles(smi, schema=schema, extend=True))[0]
        assert again == canonical_smiles(smi)
