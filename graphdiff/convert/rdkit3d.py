"""3D molecules: GraphState with coordinates <-> RDKit ``Mol`` with a conformer, ``.sdf`` and ``.xyz`` files.

A 3D state is a dataset-form :class:`~graphdiff.state.GraphState`: one-hot atom tokens (``"C"``, ``"N+"``),
one-hot bonds, ``pos [B, N, 3]`` in Ångström, with explicit hydrogens (``schema.explicit_h``). :func:`to_mols3d`
turns each graph into a molecule carrying its coordinates as a 3D conformer; :func:`from_mols3d` goes back.

Files:
    - ``.sdf``: :func:`write_sdf` writes one record per molecule (Kekulé bonds when RDKit can kekulize them,
      aromatic bond type 4 otherwise); a ``None`` molecule is written as an empty record titled ``invalid`` so that
      record ``k`` stays sample ``k``. :func:`read_sdf3d` reads them back (``None`` for empty records).
    - ``.xyz``: :func:`write_xyz` writes frames (atom count, a comment line ``charge=Q`` plus the title, one
      ``Element x y z`` line per atom); :func:`read_xyz` reads single- and multi-frame files and derives bonds from
      the coordinates (RDKit ``rdDetermineBonds``, total charge from ``charge=Q`` in the comment, else 0).

Bad files are one-line :class:`~graphdiff.errors.DataError` naming file and record: a record without
coordinates (no conformer, or all coordinates zero), 2D coordinates, NaN coordinates, an xyz frame whose atom
lines differ from its atom count.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
from rdkit import Chem
from rdkit.Chem import rdDetermineBonds

from ..errors import DataError, SchemaError
from ..schema import Schema
from ..state import GraphState
from .rdkit import _state_graphs, from_mol, graph_to_mol

__all__ = ["CoordinateError", "to_mols3d", "from_mols3d", "mol_positions", "check_positions", "write_sdf",
           "read_sdf3d", "read_sdf_record", "sdf_records", "write_xyz", "read_xyz", "xyz_frames", "xyz_to_mol",
           "xyz_charge"]

_PT = Chem.GetPeriodicTable()
_CHARGE = re.compile(r"(?:^|\s)charge\s*[=:]\s*([+-]?\d+)(?:\.0*)?(?:\s|,|;|$)", re.IGNORECASE)
_NAN = re.compile(r"(?i)(?<![a-z])[+-]?(?:nan|inf)(?![a-z])")


class CoordinateError(DataError):
    """Coordinates that are missing, 2D, NaN, or do not match the atoms (a broken 3D file, not a bad molecule)."""


# ---- state <-> molecules ------------------------------------------------------------------------------------
def to_mols3d(state: GraphState, schema: Schema | None = None, *, sanitize: bool = True) -> list[Chem.Mol | None]:
    """One RDKit molecule with a 3D conformer per graph of ``state`` (``None`` where none can be built).

    Args:
        state: a batch with ``pos`` (dataset form: one-hot atom tokens, one-hot bonds).
        schema: the categories (default ``state.schema``); molecules keep the schema's explicit hydrogens.
        sanitize: return ``None`` for a molecule RDKit cannot sanitize (valence, kekulization); with ``False``
            the raw molecule (property cache updated leniently) is returned for such graphs.

    Raises:
        SchemaError: ``state.pos`` is missing or no schema is known.
    """
    if state.pos is None:
        raise SchemaError("to_mols3d needs a state with pos [B, N, 3] (coordinates)")
    pos = state.pos.detach().cpu().double()
    mask = state.mask.cpu()
    out: list[Chem.Mol | None] = []
    for b, (nt, ei, et, sch) in enumerate(_state_graphs(state, schema)):
        mol = graph_to_mol(nt, ei, et, sch, sanitize=sanitize)
        if mol is None:
            out.append(None)
            continue
        if not sanitize:
            mol.UpdatePropertyCache(strict=False)
        xyz = pos[b][mask[b]].numpy()
        if not np.isfinite(xyz).all():
            out.append(None)
            continue
        conf = Chem.Conformer(mol.GetNumAtoms())
        conf.SetPositions(np.ascontiguousarray(xyz))
        conf.Set3D(True)
        mol.AddConformer(conf, assignId=True)
        out.append(mol)
    return out


def mol_positions(mol: Chem.Mol, where: str = "molecule") -> np.ndarray:
    """The ``[n, 3]`` float64 coordinates of ``mol``'s first conformer, checked by :func:`check_positions`."""
    if mol.GetNumConformers() == 0:
        raise CoordinateError(f"{where}: no coordinates (the molecule has no conformer)")
    conf = mol.GetConformer()
    return check_positions(conf.GetPositions(), where, is_3d=conf.Is3D())


def check_positions(xyz: np.ndarray, where: str, *, n_atoms: int | None = None, is_3d: bool = True) -> np.ndarray:
    """``xyz`` as ``[n, 3]`` float64 after the checks every 3D reader makes; raises a one-line :class:`DataError`
    naming ``where`` for NaN/inf, all-zero (no coordinates), 2D (flat and not marked 3D) or a wrong count."""
    xyz = np.asarray(xyz, dtype=np.float64).reshape(-1, 3)
    if n_atoms is not None and len(xyz) != n_atoms:
        raise CoordinateError(f"{where}: {len(xyz)} coordinates for {n_atoms} atoms")
    bad = ~np.isfinite(xyz).all(1)
    if bad.any():
        k = int(np.argmax(bad))
        raise CoordinateError(f"{where}: atom {k + 1}: NaN or infinite coordinates {xyz[k].tolist()}")
    if len(xyz) > 1 and not xyz.any():
        raise CoordinateError(f"{where}: no coordinates (every atom at 0, 0, 0: a 0D record)")
    if not is_3d and len(xyz) > 2 and not xyz[:, 2].any():
        raise CoordinateError(f"{where}: 2D coordinates only (z = 0 for every atom and the record is not marked 3D)")
    return xyz


def from_mols3d(mols: Chem.Mol | Sequence[Chem.Mol], schema: Schema | None = None, *, extend: bool = False,
                max_nodes: int | None = None) -> GraphState:
    """Encode molecules with conformers as a 3D :class:`GraphState` (explicit hydrogens, aromatic bonds kept;
    hydrogens missing from a molecule are added with coordinates). ``pos`` is in the molecules' own frame."""
    if isinstance(mols, Chem.Mol):
        mols = [mols]
    full, positions = [], []
    for i, m in enumerate(mols):
        if m is None:
            raise DataError(f"molecule {i}: is None")
        mol_positions(m, f"molecule {i}")
        m = Chem.AddHs(m, addCoords=True)
        full.append(m)
        positions.append(m.GetConformer().GetPositions())
    if schema is not None and not schema.explicit_h:
        raise SchemaError("3D molecules have explicit hydrogens: the schema has explicit_h=False")
    state = from_mol(full, schema, explicit_h=True, kekulize=False, extend=extend, max_nodes=max_nodes)
    pos = torch.zeros(state.batch_size, state.max_nodes, 3)
    for b, p in enumerate(positions):
        pos[b, :len(p)] = torch.from_numpy(p).float()
    state.pos = pos
    return state


# ---- .sdf ----------------------------------------------------------------------------------------------------
def _mol_block(mol: Chem.Mol | None) -> str:
    if mol is None or mol.GetNumAtoms() == 0:
        return "invalid\n     graphdiff\n\n  0  0  0  0  0  0  0  0  0  0999 V2000\nM  END\n"
    # aromatic bonds stay aromatic (V2000 bond type 4, read back as aromatic by RDKit and Open Babel): a sample is
    # written with the bonds it was generated with, so that scoring the file scores the sample (a Kekule form
    # would change which valence rule counts what, and is not defined for an unsanitized sample)
    m = Chem.Mol(mol)
    m.UpdatePropertyCache(strict=False)
    return Chem.MolToMolBlock(m, kekulize=False)


def write_sdf(mols: Sequence[Chem.Mol | None], path: str | os.PathLike) -> Path:
    """Write molecules (with their first conformer) to ``path``, one record each; ``None`` -> empty record.
    Aromatic bonds are written as aromatic (bond type 4), not in a Kekule form."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    with open(tmp, "w", encoding="utf-8") as fh:
        for m in mols:
            fh.write(_mol_block(m))
            fh.write("$$$$\n")
    os.replace(tmp, path)
    return path


def sdf_records(path: str | os.PathLike, *, with_line: bool = False) -> Iterator[tuple]:
    """``(1-based record number, molblock text)`` of every record of an ``.sdf`` (gzip accepted); names and data
    fields in an encoding other than UTF-8 are tolerated (decoded as Latin-1). ``with_line=True`` adds the 1-based
    line where the record starts: ``(record, line, text)``."""
    from ..data.files import open_binary

    with open_binary(path, "SDF text", binary_ok=False) as fh:
        lines: list[bytes] = []
        k, start = 0, 1
        for i, line in enumerate(fh, start=1):
            if line.rstrip(b"\r\n") == b"$$$$":
                k += 1
                text = b"".join(lines).decode("latin-1")
                yield (k, start, text) if with_line else (k, text)
                lines, start = [], i + 1
            else:
                lines.append(line)
        if any(x.strip() for x in lines):
            text = b"".join(lines).decode("latin-1")
            yield (k + 1, start, text) if with_line else (k + 1, text)


def _nan_in_atom_block(block: str) -> bool:
    lines = block.splitlines()
    if len(lines) < 4:
        return False
    try:
        n = int(lines[3][:3])
    except ValueError:
        return False
    return any(_NAN.search(x[:30]) for x in lines[4:4 + n])


def read_sdf_record(block: str, where: str, *, sanitize: bool = True) -> Chem.Mol | None:
    """One molblock as a molecule with hydrogens kept (``None`` when RDKit cannot read it); raises
    :class:`DataError` naming ``where`` for NaN coordinates and for records without 3D coordinates."""
    mol = Chem.MolFromMolBlock(block, sanitize=sanitize, removeHs=False)
    if mol is None:
        if _nan_in_atom_block(block):
            raise CoordinateError(f"{where}: NaN coordinates")
        return None
    if mol.GetNumAtoms() == 0:
        return mol
    mol_positions(mol, where)
    return mol


def read_sdf3d(path: str | os.PathLike, *, sanitize: bool = True) -> list[Chem.Mol | None]:
    """The molecules of an ``.sdf`` with their conformers, hydrogens kept, in file order.

    ``None`` stands for an empty record (what :func:`write_sdf` writes for ``None``) and a record RDKit cannot
    read (or, with ``sanitize=True``, sanitize).

    Raises:
        DataError: ``FILE: record K: ...`` for a record without 3D coordinates or with NaN coordinates.
    """
    name = Path(path).name
    out: list[Chem.Mol | None] = []
    for k, block in sdf_records(path):
        mol = read_sdf_record(block, f"{name}: record {k}", sanitize=sanitize)
        out.append(mol if mol is not None and mol.GetNumAtoms() else None)
    return out


# ---- .xyz ----------------------------------------------------------------------------------------------------
def write_xyz(mols: Sequence[Chem.Mol | None], path: str | os.PathLike) -> Path:
    """Write molecules as a multi-frame ``.xyz`` (``None`` -> a frame with 0 atoms); the comment line holds
    ``charge=Q`` (the total formal charge, which :func:`read_xyz` uses to derive bonds) and the title."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    with open(tmp, "w", encoding="utf-8") as fh:
        for m in mols:
            if m is None or m.GetNumAtoms() == 0:
                fh.write("0\ninvalid\n")
                continue
            xyz = mol_positions(m)
            title = m.GetProp("_Name") if m.HasProp("_Name") else ""
            fh.write(f"{m.GetNumAtoms()}\ncharge={Chem.GetFormalCharge(m)} {title}".rstrip() + "\n")
            for a, (x, y, z) in zip(m.GetAtoms(), xyz.tolist()):
                fh.write(f"{a.GetSymbol():<2s} {x:14.8f} {y:14.8f} {z:14.8f}\n")
    os.replace(tmp, path)
    return path


def _element(sym: str) -> int:
    try:
        z = int(sym)
    except ValueError:
        z = None
    if z is not None:
        if not 1 <= z <= 118:
            raise ValueError(sym)
        return z
    s = sym[:1].upper() + sym[1:].lower()
    try:
        return _PT.GetAtomicNumber(s)
    except RuntimeError:
        raise ValueError(sym) from None


def xyz_frames(path: str | os.PathLike, *, with_line: bool = False) -> Iterator[tuple]:
    """``(1-based frame number, atomic numbers, coordinates [n, 3], comment line)`` of each frame of an ``.xyz``;
    ``with_line=True`` adds the 1-based line where the frame starts after the frame number.

    Raises:
        DataError: ``FILE: record K (line L): ...`` for a bad atom count, a frame with fewer atom lines than its
            count, an unknown element, a coordinate that is not a number, NaN coordinates.
    """
    from ..data.files import open_text

    name = Path(path).name
    with open_text(path, "XYZ text", newline=None) as fh:
        lines = fh.read().split("\n")
    i, k = 0, 0
    while i < len(lines):
        if not lines[i].strip():
            i += 1
            continue
        k += 1
        where = f"{name}: record {k} (line {i + 1})"
        head = lines[i].split()
        try:
            n = int(head[0])
            if n < 0 or len(head) > 1:
                raise ValueError
        except ValueError:
            raise CoordinateError(f"{where}: expected the atom count, got {lines[i].strip()[:60]!r}") from None
        comment = lines[i + 1].strip() if i + 1 < len(lines) else ""
        body = lines[i + 2:i + 2 + n]
        atoms = [x for x in body if x.strip()]
        if len(atoms) < n or len(body) < n:
            raise CoordinateError(f"{where}: {len(atoms)} coordinate lines for {n} atoms")
        zs, xyz = [], np.empty((n, 3), np.float64)
        for j, line in enumerate(body):
            parts = line.split()
            at = f"{where}: atom {j + 1} (line {i + 3 + j})"
            if len(parts) < 4:
                raise CoordinateError(f"{at}: expected 'Element x y z', got {line.strip()[:60]!r}")
            try:
                zs.append(_element(parts[0]))
            except ValueError:
                raise CoordinateError(f"{at}: unknown element {parts[0]!r}") from None
            try:
                xyz[j] = [float(v) for v in parts[1:4]]
            except ValueError:
                raise CoordinateError(f"{at}: coordinates {' '.join(parts[1:4])!r} are not numbers") from None
        nxt = lines[i + 2 + n] if i + 2 + n < len(lines) else ""
        if nxt.strip() and len(nxt.split()) >= 4 and not _is_count(nxt):
            raise CoordinateError(f"{where}: more coordinate lines than its {n} atoms (line {i + 3 + n} is "
                            f"{nxt.strip()[:40]!r})")
        if n:
            check_positions(xyz, where)
        yield (k, i + 1, zs, xyz, comment) if with_line else (k, zs, xyz, comment)
        i += 2 + n


def _is_count(line: str) -> bool:
    parts = line.split()
    return len(parts) == 1 and parts[0].isdigit()


def xyz_to_mol(zs: Sequence[int], xyz: np.ndarray, *, charge: int = 0, bond_orders: bool = True,
               where: str = "xyz") -> Chem.Mol:
    """A molecule from atomic numbers and coordinates: connectivity from the distances, then (``bond_orders``)
    bond orders and formal charges for the total ``charge`` (RDKit ``rdDetermineBonds``); sanitized.

    Raises:
        DataError: naming ``where`` when RDKit finds no bond orders and charges that fit.
    """
    rw = Chem.RWMol()
    for z in zs:
        rw.AddAtom(Chem.Atom(int(z)))
    conf = Chem.Conformer(len(zs))
    conf.SetPositions(np.ascontiguousarray(np.asarray(xyz, np.float64).reshape(-1, 3)))
    conf.Set3D(True)
    rw.AddConformer(conf, assignId=True)
    mol = rw.GetMol()
    try:
        if bond_orders:
            rdDetermineBonds.DetermineBonds(mol, charge=int(charge))
        else:
            rdDetermineBonds.DetermineConnectivity(mol)
        Chem.SanitizeMol(mol)
    except Exception as exc:  # RDKit raises ValueError / RuntimeError / MolSanitizeException
        msg = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:120]
        raise DataError(f"{where}: cannot derive bonds from the coordinates (charge {charge}): {msg}") from None
    return mol


def xyz_charge(comment: str, default: int = 0) -> int:
    """The total charge written as ``charge=Q`` in an xyz comment line (also ``charge: Q``, ``Charge = +Q``,
    ``charge=Q.0``), else ``default``."""
    m = _CHARGE.search(comment)
    return int(m.group(1)) if m else default


def read_xyz(path: str | os.PathLike, *, charge: int | None = None) -> list[Chem.Mol | None]:
    """The frames of an ``.xyz`` as molecules with a conformer and bonds derived from the coordinates.

    ``None`` for a frame with 0 atoms or one whose bonds cannot be derived. The total charge is ``charge``, else
    ``charge=Q`` from the frame's comment line, else 0. Structural problems raise (see :func:`xyz_frames`).
    """
    name = Path(path).name
    out: list[Chem.Mol | None] = []
    for k, zs, xyz, comment in xyz_frames(path):
        if not zs:
            out.append(None)
            continue
        q = xyz_charge(comment) if charge is None else charge
        try:
            mol = xyz_to_mol(zs, xyz, charge=q, where=f"{name}: record {k}")
        except DataError:
            out.append(None)
            continue
        title = _CHARGE.sub(" ", comment).strip()
        if title:
            mol.SetProp("_Name", title)
        out.append(mol)
    return out

