"""RDKit ``Mol`` / SMILES <-> GraphState.

Nodes are atoms, categories are atom tokens (element + formal charge: ``"C"``, ``"N+"``, ``"O-"``). Edges are
bonds with categories ``none, SINGLE, DOUBLE, TRIPLE`` (kekulized, the default) or with ``AROMATIC`` added when
``kekulize=False``. Hydrogens are implicit by default (RDKit recomputes them from valence and charge when
decoding); ``explicit_h=True`` makes every hydrogen a node. Stereochemistry and isotopes are not represented.

Decoding never raises: :func:`graph_to_mol` returns ``None`` for a graph that is not a molecule.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
from rdkit import Chem, RDLogger

from ..errors import DataError, SchemaError
from ..schema import NO_EDGE, Schema, atom_token, parse_atom_token
from ..state import GraphState

RDLogger.DisableLog("rdApp.*")

KEKULE_BONDS = ("SINGLE", "DOUBLE", "TRIPLE")
_BOND_TYPE = {
    "SINGLE": Chem.BondType.SINGLE,
    "DOUBLE": Chem.BondType.DOUBLE,
    "TRIPLE": Chem.BondType.TRIPLE,
    "AROMATIC": Chem.BondType.AROMATIC,
}
_PT = Chem.GetPeriodicTable()


def parse_smiles(smiles: str, *, where: str = "SMILES") -> Chem.Mol:
    """``Chem.MolFromSmiles`` that raises a one-line :class:`DataError` naming ``where`` and the value."""
    if not isinstance(smiles, str) or not smiles.strip():
        raise DataError(f"{where}: empty SMILES")
    mol = Chem.MolFromSmiles(smiles.strip())
    if mol is None:
        raise DataError(f"{where}: RDKit cannot parse SMILES {smiles.strip()!r}")
    if mol.GetNumAtoms() == 0:
        raise DataError(f"{where}: SMILES {smiles.strip()!r} has no atoms")
    return mol


def mol_to_arrays(
    mol: Chem.Mol, *, explicit_h: bool = False, kekulize: bool = True, where: str = "molecule"
) -> tuple[list[str], np.ndarray, list[str]]:
    """``(atom tokens [n], bond index [m, 2], bond type names [m])`` of a molecule in atom order."""
    mol = Chem.AddHs(mol) if explicit_h else Chem.Mol(mol)
    if kekulize:
        try:
            Chem.Kekulize(mol, clearAromaticFlags=True)
        except Exception as exc:  # RDKit raises KekulizeException
            raise DataError(f"{where}: cannot kekulize ({type(exc).__name__})") from None
    tokens = [atom_token(a.GetSymbol(), a.GetFormalCharge()) for a in mol.GetAtoms()]
    m = mol.GetNumBonds()
    edges = np.empty((m, 2), dtype=np.int64)
    names = []
    for k, b in enumerate(mol.GetBonds()):
        edges[k, 0] = b.GetBeginAtomIdx()
        edges[k, 1] = b.GetEndAtomIdx()
        name = str(b.GetBondType())
        if name not in _BOND_TYPE:
            raise DataError(f"{where}: bond type {name} between atoms {edges[k, 0]} and {edges[k, 1]} is not supported")
        names.append(name)
    return tokens, edges, names


def smiles_to_arrays(smiles: str, *, explicit_h: bool = False, kekulize: bool = True, where: str = "SMILES"):
    """:func:`parse_smiles` then :func:`mol_to_arrays`; raises :class:`DataError` naming ``where``."""
    return mol_to_arrays(parse_smiles(smiles, where=where), explicit_h=explicit_h, kekulize=kekulize, where=where)


def _token_key(tok: str):
    sym, chg = parse_atom_token(tok)
    z = _PT.GetAtomicNumber(sym) if sym != "*" else 0
    return (z, abs(chg), -chg)


def sort_atom_tokens(tokens: Iterable[str]) -> list[str]:
    """Atom tokens in a stable chemical order: by atomic number, then neutral, +, -."""
    return sorted(set(tokens), key=_token_key)


def bond_categories(kekulize: bool = True) -> tuple[str, ...]:
    return (NO_EDGE, *KEKULE_BONDS) if kekulize else (NO_EDGE, *KEKULE_BONDS, "AROMATIC")


def molecule_schema(node_types, edge_types, tokens: Sequence[str], *, explicit_h=False, kekulize=True) -> Schema:
    """Molecule schema with marginals derived from per-molecule category index arrays."""
    return Schema.from_graphs(node_types, edge_types, node_categories=tuple(tokens),
                              edge_categories=bond_categories(kekulize), kind="molecule", explicit_h=explicit_h)


def _encode_mols(parsed, schema, extend, explicit_h, kekulize):
    if schema is None:
        toks = sort_atom_tokens(t for p in parsed for t in p[0])
        base = Schema(node_categories=tuple(toks), edge_categories=bond_categories(kekulize), kind="molecule",
                      explicit_h=explicit_h)
    else:
        if schema.kind != "molecule":
            raise SchemaError(f"schema kind is {schema.kind!r}; molecules need a 'molecule' schema")
        base = schema
        if extend:
            base = base.extended(sort_atom_tokens(t for p in parsed for t in p[0]),
                                 [n for p in parsed for n in p[2]])
    nidx = {t: i for i, t in enumerate(base.node_categories)}
    eidx = {t: i for i, t in enumerate(base.edge_categories)}
    node_types, edge_types = [], []
    for k, (toks, _, bonds) in enumerate(parsed):
        try:
            node_types.append(np.array([nidx[t] for t in toks], dtype=np.int64))
        except KeyError as exc:
            raise SchemaError(f"molecule {k}: atom {exc.args[0]!r} is not in the schema "
                              f"{list(base.node_categories)!r} (pass extend=True to add it)") from None
        try:
            edge_types.append(np.array([eidx[b] for b in bonds], dtype=np.int64))
        except KeyError as exc:
            raise SchemaError(f"molecule {k}: bond {exc.args[0]!r} is not in the schema "
                              f"{list(base.edge_categories)!r}") from None
    if schema is None:
        base = molecule_schema(node_types, edge_types, base.node_categories, explicit_h=explicit_h,
                               kekulize=kekulize)
    return node_types, edge_types, base


def from_mol(
    mols: Chem.Mol | Sequence[Chem.Mol],
    schema: Schema | None = None,
    *,
    explicit_h: bool | None = None,
    kekulize: bool = True,
    extend: bool = False,
    max_nodes: int | None = None,
) -> GraphState:
    """Encode RDKit molecules as a batched one-hot :class:`GraphState` (``state.schema`` is set).

    Args:
        schema: categories to encode with; derived from the molecules when ``None``.
        explicit_h: hydrogens as nodes (default: the schema's setting, else ``False``).
        extend: add atom tokens the schema lacks instead of raising :class:`SchemaError`.
    """
    from .networkx import arrays_to_state

    if isinstance(mols, Chem.Mol):
        mols = [mols]
    if explicit_h is None:
        explicit_h = schema.explicit_h if schema is not None else False
    parsed = []
    for i, m in enumerate(mols):
        if m is None:
            raise DataError(f"molecule {i}: is None")
        parsed.append(mol_to_arrays(m, explicit_h=explicit_h, kekulize=kekulize, where=f"molecule {i}"))
    node_types, edge_types, schema = _encode_mols(parsed, schema, extend, explicit_h, kekulize)
    return arrays_to_state(node_types, [p[1] for p in parsed], edge_types, schema, max_nodes=max_nodes)


def from_smiles(
    smiles: str | Sequence[str],
    schema: Schema | None = None,
    *,
    explicit_h: bool | None = None,
    kekulize: bool = True,
    extend: bool = False,
    max_nodes: int | None = None,
) -> GraphState:
    """Encode SMILES strings as a batched :class:`GraphState`; an unparsable one raises a one-line
    :class:`DataError` naming its position and value."""
    if isinstance(smiles, str):
        smiles = [smiles]
    mols = [parse_smiles(s, where=f"SMILES {i}") for i, s in enumerate(smiles)]
    return from_mol(mols, schema, explicit_h=explicit_h, kekulize=kekulize, extend=extend, max_nodes=max_nodes)


def graph_to_mol(node_types, edge_index, edge_types, schema: Schema, *, sanitize: bool = True) -> Chem.Mol | None:
    """Build a molecule from one graph's category arrays. Never raises.

    Returns ``None`` when a category is unknown, the graph is empty or (with ``sanitize=True``) RDKit cannot
    sanitize the molecule. With ``sanitize=False`` the raw molecule is returned for validity checks.
    """
    try:
        rw = Chem.RWMol()
        for t in np.asarray(node_types).tolist():
            sym, chg = parse_atom_token(schema.node_categories[int(t)])
            a = Chem.Atom(sym)
            a.SetFormalCharge(chg)
            if schema.explicit_h:
                a.SetNoImplicit(True)
            rw.AddAtom(a)
        if rw.GetNumAtoms() == 0:
            return None
        for (u, v), t in zip(np.asarray(edge_index).reshape(-1, 2).tolist(), np.asarray(edge_types).tolist()):
            name = schema.edge_categories[int(t)]
            if name == NO_EDGE:
                continue
            rw.AddBond(int(u), int(v), _BOND_TYPE[name])
            if name == "AROMATIC":
                b = rw.GetBondBetweenAtoms(int(u), int(v))
                b.SetIsAromatic(True)
                rw.GetAtomWithIdx(int(u)).SetIsAromatic(True)
                rw.GetAtomWithIdx(int(v)).SetIsAromatic(True)
        mol = rw.GetMol()
        if sanitize:
            Chem.SanitizeMol(mol)
        return mol
    except Exception:  # never raise on decode: invalid graphs are data, not errors
        return None


def _state_graphs(state: GraphState, schema: Schema | None):
    schema = schema if schema is not None else state.schema
    if schema is None:
        raise SchemaError("decoding molecules needs a schema: pass schema=... or use a state from from_smiles")
    nt = state.node_types(schema).cpu()
    et = state.edge_types().cpu()
    for b in range(state.batch_size):
        real = state.mask[b].cpu().nonzero().flatten()
        sub = et[b][real][:, real]
        iu = np.triu_indices(len(real), 1)
        t = sub.numpy()[iu]
        keep = t > 0
        yield nt[b][real].numpy(), np.stack(iu, 1)[keep], t[keep], schema


def to_mol(state: GraphState, schema: Schema | None = None, *, sanitize: bool = True) -> list[Chem.Mol | None]:
    """One molecule (or ``None``) per graph of the batch."""
    return [graph_to_mol(n, e, t, s, sanitize=sanitize) for n, e, t, s in _state_graphs(state, schema)]


def mol_to_smiles(mol: Chem.Mol | None) -> str | None:
    """Canonical SMILES with hydrogens implicit, or ``None`` (never raises)."""
    if mol is None:
        return None
    try:
        return Chem.MolToSmiles(Chem.RemoveHs(mol))
    except Exception:
        return None


def to_smiles(state: GraphState, schema: Schema | None = None) -> list[str | None]:
    """Canonical SMILES per graph; ``None`` where the graph is not a valid molecule (strict: no correction)."""
    return [mol_to_smiles(m) for m in to_mol(state, schema, sanitize=True)]


def canonical_smiles(smiles: str, *, isomeric: bool = False) -> str | None:
    """RDKit canonical form of a SMILES (``None`` if unparsable); non-isomeric by default, as graphs carry no
    stereochemistry."""
    mol = Chem.MolFromSmiles(smiles)
    if mol is None:
        return None
    return Chem.MolToSmiles(mol, isomericSmiles=isomeric)
