"""RDKit ``Mol`` / SMILES <-> GraphState.

Nodes are atoms, categories are atom tokens (element + formal charge: ``"C"``, ``"N+"``, ``"O-"``). Edges are
bonds with categories ``none, SINGLE, DOUBLE, TRIPLE`` (kekulized, the default) or with ``AROMATIC`` added when
``kekulize=False``. Hydrogens are implicit by default (RDKit recomputes them from valence and charge when
decoding); ``explicit_h=True`` makes every hydrogen a node. Stereochemistry and isotopes are not represented.

Decoding never raises: :func:`graph_to_mol` returns ``None`` for a graph that is not a molecule.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

import numpy as np
from rdkit import Chem, RDLogger
from rdkit.Chem import rdMolDescriptors

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


def sanitize_error(mol: Chem.Mol) -> str:
    """RDKit's reason for refusing ``mol`` in sanitisation ("Explicit valence for atom # 1 C, 5, is greater than
    permitted"), or "sanitization failed"."""
    try:
        Chem.SanitizeMol(Chem.Mol(mol))
    except Exception as exc:  # noqa: BLE001 - RDKit raises several types; the message is what is wanted
        return str(exc).strip().splitlines()[0] if str(exc).strip() else "sanitization failed"
    return "sanitization failed"


def parse_smiles(smiles: str, *, where: str = "SMILES") -> Chem.Mol:
    """``Chem.MolFromSmiles`` that raises a one-line :class:`DataError` naming ``where`` and the value."""
    if not isinstance(smiles, str) or not smiles.strip():
        raise DataError(f"{where}: empty SMILES")
    mol = Chem.MolFromSmiles(smiles.strip())
    if mol is None:
        raw = Chem.MolFromSmiles(smiles.strip(), sanitize=False)
        if raw is not None:  # it parses, but is not a molecule RDKit accepts (a valence, an aromatic ring)
            raise DataError(f"{where}: SMILES {smiles.strip()!r} is not a valid molecule ({sanitize_error(raw)})")
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


def reference_smiles_to_arrays(smiles: str, *, explicit_h: bool = False, kekulize: bool = True,
                               where: str = "SMILES"):
    """:func:`parse_smiles` then :func:`mol_to_arrays` (RDKit all the way; what :func:`smiles_to_arrays` must
    equal); raises :class:`DataError` naming ``where``."""
    return mol_to_arrays(parse_smiles(smiles, where=where), explicit_h=explicit_h, kekulize=kekulize, where=where)


# ---- the fast SMILES featuriser ---------------------------------------------------------------------
_H_ATOM = re.compile(r"\[\d*H(?![a-z])")
_ATOM = re.compile(r"\[[^\]]*\]|Br|Cl|[BCNOPSFIbcnops*]")
_BRACKET = re.compile(r"\[\d*([A-Z][a-z]?|[a-z][a-z]?|\*)")
_CHARGED = Chem.MolFromSmarts("[!+0]")
_BOND_NAMES = ("SINGLE", "DOUBLE", "TRIPLE", "AROMATIC")  # category codes 1..4, as in bond_categories()
_ORDERS_KEKULE = frozenset((1.0, 2.0, 3.0))
_ORDERS_AROMATIC = frozenset((1.0, 2.0, 3.0, 1.5))
ORDER_CODE = np.zeros(8, dtype=np.uint8)
ORDER_CODE[[2, 4, 6, 3]] = [1, 2, 3, 4]  # indexed by 2 * bond order
_WEIGHT = [_PT.GetAtomicWeight(z) for z in range(119)]
_Bond = Chem.Bond


class SmilesRowError(Exception):
    """A SMILES row the featuriser rejects; the message says why (no file or line: the caller adds them)."""


class _AtomicNumbers(dict):
    """SMILES atom token (``"c"``, ``"Cl"``, ``"[nH+]"``) -> atomic number, filled on first use."""

    def __missing__(self, tok: str) -> int:
        m = _BRACKET.match(tok) if tok.startswith("[") else None
        sym = m.group(1) if m else tok
        z = 0 if sym == "*" else _PT.GetAtomicNumber(sym[0].upper() + sym[1:])  # RuntimeError if unknown
        self[tok] = z
        return z


_ZOF = _AtomicNumbers()


def _reference_graph(s: str, explicit_h: bool, kekulize: bool):
    """:func:`smiles_graph` through :func:`reference_smiles_to_arrays` (rows the fast path does not vouch for)."""
    try:
        tokens, edges, names = reference_smiles_to_arrays(s, explicit_h=explicit_h, kekulize=kekulize)
    except DataError as exc:
        raise SmilesRowError(str(exc).removeprefix("SMILES: ")) from None
    if kekulize and "AROMATIC" in names:
        raise SmilesRowError("aromatic bond left after kekulization")
    parsed = [parse_atom_token(t) for t in tokens]
    zs = [0 if sym == "*" else _PT.GetAtomicNumber(sym) for sym, _ in parsed]
    charged = [(i, chg) for i, (_, chg) in enumerate(parsed) if chg]
    orders = [(1.0, 2.0, 3.0, 1.5)[_BOND_NAMES.index(n)] for n in names]
    return zs, charged, edges[:, 0].tolist(), edges[:, 1].tolist(), orders


def smiles_graph(s: str, explicit_h: bool = False, kekulize: bool = True):
    """``(atomic numbers [n], [(atom, charge) for charged atoms], bond begins [m], bond ends [m], bond orders [m])``
    of one SMILES, in RDKit atom and bond order; raises :class:`SmilesRowError` with the reason.

    Same pipeline as :func:`reference_smiles_to_arrays` (parse, full sanitization, optional AddHs, Kekulize) minus
    the steps that cannot change atoms, charges or bonds (H removal when there are no H atoms, stereo perception
    when there are no stereo marks, a copy).
    Elements come from the SMILES atom tokens (RDKit keeps their order), checked against RDKit's heavy-atom
    weight; charges and bonds come from RDKit. Bond order 1.5 is ``AROMATIC`` (SMILES has no other 1.5 bond).
    """
    s = s.strip()
    if not s:
        raise SmilesRowError("empty SMILES")
    if ("H" in s and _H_ATOM.search(s)) or "->" in s or "<-" in s or " " in s or "\t" in s:
        return _reference_graph(s, explicit_h, kekulize)  # H atoms (MolFromSmiles removes them), dative bonds, CXSMILES
    mol = Chem.MolFromSmiles(s, sanitize=False)
    if mol is None:
        raise SmilesRowError("RDKit cannot parse SMILES")
    if mol.GetNumAtoms() == 0:
        raise SmilesRowError("SMILES has no atoms")
    if Chem.SanitizeMol(mol, catchErrors=True) != Chem.SanitizeFlags.SANITIZE_NONE:
        raise SmilesRowError(f"not a valid molecule ({sanitize_error(Chem.MolFromSmiles(s, sanitize=False))})")
    if "@" in s or "/" in s or "\\" in s:  # as MolFromSmiles does: stereo flags steer Kekulize's atom ranking
        Chem.AssignStereochemistry(mol, cleanIt=True, force=True)
    try:
        zs = list(map(_ZOF.__getitem__, _ATOM.findall(s)))
    except RuntimeError:
        return _reference_graph(s, explicit_h, kekulize)
    if len(zs) != mol.GetNumAtoms() or abs(sum(map(_WEIGHT.__getitem__, zs))
                                           - rdMolDescriptors._CalcMolWt(mol, True)) > 1e-3:
        return _reference_graph(s, explicit_h, kekulize)  # isotopes, unusual tokens: let RDKit decide
    if explicit_h:
        mol = Chem.AddHs(mol)
        zs.extend([1] * (mol.GetNumAtoms() - len(zs)))
    if kekulize:
        try:
            Chem.Kekulize(mol, clearAromaticFlags=True)
        except Exception:  # RDKit raises KekulizeException
            raise SmilesRowError("cannot kekulize") from None
    charged = [(i, mol.GetAtomWithIdx(i).GetFormalCharge())
               for (i,) in mol.GetSubstructMatches(_CHARGED, maxMatches=mol.GetNumAtoms())]
    bonds = list(map(mol.GetBondWithIdx, range(mol.GetNumBonds())))  # much cheaper than mol.GetBonds()
    orders = list(map(_Bond.GetBondTypeAsDouble, bonds))
    if not (_ORDERS_KEKULE if kekulize else _ORDERS_AROMATIC).issuperset(orders):
        b = next(b for b, o in zip(bonds, orders) if o not in (_ORDERS_KEKULE if kekulize else _ORDERS_AROMATIC))
        raise SmilesRowError(f"bond type {b.GetBondType()} between atoms {b.GetBeginAtomIdx()} and "
                       f"{b.GetEndAtomIdx()} is not supported")
    return zs, charged, list(map(_Bond.GetBeginAtomIdx, bonds)), list(map(_Bond.GetEndAtomIdx, bonds)), orders


def smiles_to_arrays(smiles: str, *, explicit_h: bool = False, kekulize: bool = True, where: str = "SMILES"):
    """``(atom tokens [n], bond index [m, 2], bond type names [m])`` of a SMILES: the package's one SMILES
    featuriser, used by :func:`from_smiles` and every dataset. Gives exactly what
    :func:`reference_smiles_to_arrays` (parse, sanitize, Kekulize in RDKit) gives, at about half its cost (tested
    on the QM9, ZINC250k and MOSES files); rows it cannot vouch for go through the reference itself, and a row the
    reference rejects raises its one-line :class:`DataError` naming ``where``."""
    try:
        zs, charged, u, v, orders = smiles_graph(smiles, explicit_h, kekulize)
    except SmilesRowError:
        return reference_smiles_to_arrays(smiles, explicit_h=explicit_h, kekulize=kekulize, where=where)
    chg = dict(charged)
    tokens = [atom_token(_PT.GetElementSymbol(z), chg.get(i, 0)) for i, z in enumerate(zs)]
    names = [_BOND_NAMES[int(ORDER_CODE[int(2 * o)]) - 1] for o in orders]
    return tokens, np.stack([np.asarray(u, np.int64), np.asarray(v, np.int64)], 1).reshape(-1, 2), names


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
    from .networkx import arrays_to_state

    if isinstance(smiles, str):
        smiles = [smiles]
    if explicit_h is None:
        explicit_h = schema.explicit_h if schema is not None else False
    parsed = [smiles_to_arrays(s, explicit_h=explicit_h, kekulize=kekulize, where=f"SMILES {i}")
              for i, s in enumerate(smiles)]
    node_types, edge_types, schema = _encode_mols(parsed, schema, extend, explicit_h, kekulize)
    return arrays_to_state(node_types, [p[1] for p in parsed], edge_types, schema, max_nodes=max_nodes)


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
