"""Metrics of generated 3D molecules: pure functions over lists of RDKit molecules with a 3D conformer.

A sample is an RDKit ``Mol`` with explicit hydrogens and a conformer (as built, **not** sanitized: the bonds,
bond orders and formal charges are the generator's), or ``None`` for a sample that could not be built. ``None``
counts in every denominator that says "samples": it is neither valid nor stable. Geometry is read from the first
conformer. Every metric depends on the coordinates only through distances, angles and unsigned dihedrals, so it is
unchanged when a sample is rotated, reflected or translated (tested).

Stability (two named rules side by side; :mod:`graphdiff.metrics.valence3d` defines them with their sources):

- ``atom_stability_<rule>`` = stable atoms / atoms, over the atoms of the built samples (a ``None`` sample has no
  atoms to count); ``molecule_stability_<rule>`` = samples whose every atom is stable / samples.
- ``<rule>`` is ``legacy`` (the MiDi / EQGAT-diff table as their code runs: aromatic bonds count 1) and
  ``revisited`` (Nikitin et al. 2025: aromatic bonds counted apart, charge-aware table).

Validity (:mod:`graphdiff.convert.validity`): ``validity`` = the whole sample sanitizes in RDKit;
``validity_largest_fragment`` = its largest fragment sanitizes (MiDi's "validity"); ``connected`` = one fragment;
``valid_connected`` = both valid and connected. ``uniqueness`` = distinct canonical SMILES / valid samples, and
``novelty`` = distinct valid SMILES not in the training set / distinct valid SMILES, both over (whole-molecule)
valid samples, on RDKit canonical non-isomeric SMILES with hydrogens implicit (``None`` without ``train_smiles``).

Marginals, total variation ``0.5 * sum |p - q|`` against the reference molecules (all atoms, hydrogens included):
``atom_type_tv`` over elements, ``charge_tv`` over formal charge values, ``atom_token_tv`` over element with charge
(the node categories of a graphdiff 3D dataset: ``"C"``, ``"N+"``, ``"O-"``).

Geometry, Wasserstein-1 distances (``scipy.stats.wasserstein_distance``, exact on the empirical values, no
histogram) between samples and reference molecules, each per type and as a mean over types weighted by the
reference's frequency of the type (among the types both sides have; MiDi's weighting):

- ``bond_length_w1`` (Å) per bond type (``SINGLE``, ``DOUBLE``, ``TRIPLE``, ``AROMATIC``);
- ``bond_angle_w1`` (degrees) per element of the central atom (MiDi's grouping), every pair of bonds at an atom;
- ``torsion_w1`` (degrees) per type of the central bond: for every bond b-c and every a bonded to b, d bonded to
  c (a, b, c, d distinct), the unsigned dihedral a-b-c-d in [0, 180]; a dihedral with a bond angle above
  175 degrees (a near-linear, ill-defined torsion) is left out.

Samples enter the geometry with the bonds they carry, valid or not (MiDi does the same). ``per_type`` holds the
distance of each type; a type the samples lack has ``None`` there and leaves the weighted mean.

Relaxation (``relax=True``, off by default: seconds per hundred molecules): each valid sample that RDKit can type
with MMFF94 is minimised (``MMFFGetMoleculeForceField`` then ``Minimize(maxIts=2000)``);
``mmff_energy_drop_median`` is the median of E(start) - E(relaxed) in kcal/mol and ``mmff_heavy_rmsd_median`` the
median heavy-atom RMSD (Å) between start and relaxed geometry after optimal superposition (Kabsch).

A metric that cannot be computed is ``None`` and ``result["undefined"][name]`` says why; no NaN is returned.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from rdkit import Chem, RDLogger
from scipy.stats import wasserstein_distance

from ..convert.rdkit import canonical_smiles
from ..convert.validity import is_connected, is_valid_relaxed
from ..errors import DataError
from ..schema import atom_token
from ..convert.validity import _sanitized
from .valence3d import ATOM_STABLE, STABILITY_RULES

RDLogger.DisableLog("rdApp.*")  # sanitizing invalid samples is expected; as in graphdiff.convert.rdkit

#: bond types whose lengths (and, as central bond, torsions) are compared
BOND_TYPES = ("SINGLE", "DOUBLE", "TRIPLE", "AROMATIC")
#: a torsion whose bond angle at b or c exceeds this (degrees) is left out
LINEAR_ANGLE = 175.0
#: MMFF minimisation iterations with ``relax=True``
MMFF_MAX_ITERS = 2000


@dataclass
class _Graph:
    """What the metrics read from one molecule: atoms, bonds (as built) and the first conformer's positions."""

    symbols: list[str]
    charges: list[int]
    bonds: np.ndarray  # [B, 2] atom indices
    kinds: list[str]  # RDKit bond type name per bond
    pos: np.ndarray | None  # [N, 3] float64, None without a conformer

    @classmethod
    def of(cls, mol: Chem.Mol) -> _Graph:
        bonds = np.array([(b.GetBeginAtomIdx(), b.GetEndAtomIdx()) for b in mol.GetBonds()], dtype=np.int64)
        pos = mol.GetConformer().GetPositions().astype(np.float64) if mol.GetNumConformers() else None
        return cls(symbols=[a.GetSymbol() for a in mol.GetAtoms()],
                   charges=[a.GetFormalCharge() for a in mol.GetAtoms()],
                   bonds=bonds.reshape(-1, 2), kinds=[str(b.GetBondType()) for b in mol.GetBonds()], pos=pos)

    def neighbours(self) -> list[list[int]]:
        nb: list[list[int]] = [[] for _ in self.symbols]
        for i, j in self.bonds:
            nb[i].append(int(j))
            nb[j].append(int(i))
        return nb


def _check_samples(samples: Sequence, what: str = "samples") -> list[Chem.Mol | None]:
    out = list(samples)
    for i, m in enumerate(out):
        if m is not None and not isinstance(m, Chem.Mol):
            raise DataError(f"{what}[{i}]: expected an RDKit Mol or None, got {type(m).__name__}")
    return out


# ----------------------------------------------------------------------------------------------- stability


def atom_stability_flags(mol: Chem.Mol, rule: str = "revisited") -> np.ndarray:
    """Per-atom stability of one molecule under ``rule`` (``"legacy"`` or ``"revisited"``), a bool array."""
    if rule not in ATOM_STABLE:
        raise DataError(f"stability rule {rule!r} is not one of {sorted(ATOM_STABLE)}")
    g = _Graph.of(mol)
    kinds: list[list[str]] = [[] for _ in g.symbols]
    for (i, j), k in zip(g.bonds, g.kinds):
        kinds[i].append(k)
        kinds[j].append(k)
    ok = ATOM_STABLE[rule]
    return np.array([ok(s, q, kinds[a]) for a, (s, q) in enumerate(zip(g.symbols, g.charges))], dtype=bool)


def stability(samples: Sequence[Chem.Mol | None], rule: str = "revisited") -> dict:
    """Atom and molecule stability of ``samples`` under ``rule``.

    Returns ``{"atom_stability", "molecule_stability", "n_atoms", "n_stable_atoms", "n_stable_molecules"}``;
    a rate is ``None`` when its denominator is 0. ``None`` samples are unstable molecules with no atoms.
    """
    samples = _check_samples(samples)
    n_atoms = n_stable_atoms = n_stable_mols = 0
    for m in samples:
        if m is None:
            continue
        flags = atom_stability_flags(m, rule)
        n_atoms += len(flags)
        n_stable_atoms += int(flags.sum())
        n_stable_mols += int(len(flags) > 0 and bool(flags.all()))
    return {"atom_stability": n_stable_atoms / n_atoms if n_atoms else None,
            "molecule_stability": n_stable_mols / len(samples) if samples else None,
            "n_atoms": n_atoms, "n_stable_atoms": n_stable_atoms, "n_stable_molecules": n_stable_mols}


# ------------------------------------------------------------------------------------- validity and novelty


def _smiles(sanitized: Chem.Mol) -> str | None:
    """Canonical non-isomeric SMILES, hydrogens implicit. Stereo is removed first: RDKit keeps an explicit H
    that defines a double-bond stereo (``[H]N=C``), which would make the same molecule two SMILES."""
    try:
        m = Chem.Mol(sanitized)
        Chem.RemoveStereochemistry(m)
        return Chem.MolToSmiles(Chem.RemoveHs(m, sanitize=False), isomericSmiles=False)
    except Exception:
        return None


def validity_3d(samples: Sequence[Chem.Mol | None], train_smiles: Sequence[str] | None = None) -> dict:
    """``validity``, ``validity_largest_fragment``, ``connected``, ``valid_connected`` (fractions of samples),
    ``uniqueness`` and ``novelty`` (see the module docstring), ``n_valid``, ``n_unique`` and ``n_novel``."""
    samples = _check_samples(samples)
    n = len(samples)
    valid_smiles: list[str] = []
    n_relaxed = n_connected = n_valid_connected = 0
    for m in samples:
        s = _sanitized(m)
        smi = _smiles(s) if s is not None else None
        conn = is_connected(m)
        n_connected += conn
        if smi is not None:
            valid_smiles.append(smi)
            n_valid_connected += conn
        n_relaxed += is_valid_relaxed(m)
    unique = set(valid_smiles)
    out = {"validity": len(valid_smiles) / n if n else None,
           "validity_largest_fragment": n_relaxed / n if n else None,
           "connected": n_connected / n if n else None,
           "valid_connected": n_valid_connected / n if n else None,
           "uniqueness": len(unique) / len(valid_smiles) if valid_smiles else None,
           "novelty": None, "n_valid": len(valid_smiles), "n_unique": len(unique), "n_novel": None}
    if train_smiles is not None and unique:
        train = {c for c in (canonical_smiles(s) for s in train_smiles) if c is not None}
        novel = unique - train
        out["novelty"], out["n_novel"] = len(novel) / len(unique), len(novel)
    return out


# ------------------------------------------------------------------------------------------ distributions


@dataclass
class Geometry3D:
    """Pooled geometry of a set of molecules: values per type (see the module docstring for the types)."""

    bond_lengths: dict[str, np.ndarray] = field(default_factory=dict)
    bond_angles: dict[str, np.ndarray] = field(default_factory=dict)
    torsions: dict[str, np.ndarray] = field(default_factory=dict)


def _group(keys: list[str], values: np.ndarray) -> dict[str, np.ndarray]:
    if not keys:
        return {}
    k = np.asarray(keys)
    return {t: values[k == t] for t in sorted(set(keys))}


def _angle(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Angle in degrees between row vectors, as ``atan2(|u x v|, u . v)`` (accurate near 0 and 180, where
    ``arccos`` loses half the digits); ``nan`` where one has zero length."""
    zero = (np.linalg.norm(u, axis=-1) == 0) | (np.linalg.norm(v, axis=-1) == 0)
    a = np.degrees(np.arctan2(np.linalg.norm(np.cross(u, v), axis=-1), np.einsum("ij,ij->i", u, v)))
    a[zero] = np.nan
    return a


def geometry(graphs: Sequence[_Graph]) -> Geometry3D:
    """Bond lengths, bond angles and unsigned torsions of molecules with a conformer, grouped by type."""
    pos_all, bonds, bond_kind, angles, angle_centre, tors, tors_kind = [], [], [], [], [], [], []
    offset = 0
    for g in graphs:
        if g.pos is None or len(g.symbols) == 0:
            continue
        pos_all.append(g.pos)
        nb = g.neighbours()
        bonds.append(g.bonds + offset)
        bond_kind.extend(g.kinds)
        for b, ns in enumerate(nb):
            for x in range(len(ns)):
                for y in range(x + 1, len(ns)):
                    angles.append((ns[x] + offset, b + offset, ns[y] + offset))
                    angle_centre.append(g.symbols[b])
        for (b, c), kind in zip(g.bonds, g.kinds):
            for a in nb[b]:
                if a == c:
                    continue
                for d in nb[c]:
                    if d != b and d != a:
                        tors.append((a + offset, b + offset, c + offset, d + offset))
                        tors_kind.append(kind)
        offset += len(g.symbols)
    if not pos_all:
        return Geometry3D()
    pos = np.concatenate(pos_all)
    out = Geometry3D()
    bonds_arr = np.concatenate(bonds) if bonds else np.zeros((0, 2), dtype=np.int64)
    if len(bonds_arr):
        lengths = np.linalg.norm(pos[bonds_arr[:, 0]] - pos[bonds_arr[:, 1]], axis=-1)
        out.bond_lengths = _group(bond_kind, lengths)
    if angles:
        t = np.asarray(angles)
        vals = _angle(pos[t[:, 0]] - pos[t[:, 1]], pos[t[:, 2]] - pos[t[:, 1]])
        keep = ~np.isnan(vals)
        out.bond_angles = _group([k for k, ok in zip(angle_centre, keep) if ok], vals[keep])
    if tors:
        t = np.asarray(tors)
        p0, p1, p2, p3 = (pos[t[:, i]] for i in range(4))
        b0, b1, b2 = p1 - p0, p2 - p1, p3 - p2
        ang1 = _angle(-b0, b1)
        ang2 = _angle(-b1, b2)
        n1, n2 = np.cross(b0, b1), np.cross(b1, b2)
        keep = (ang1 <= LINEAR_ANGLE) & (ang2 <= LINEAR_ANGLE)
        keep &= (np.linalg.norm(n1, axis=-1) > 0) & (np.linalg.norm(n2, axis=-1) > 0)
        vals = _angle(n1[keep], n2[keep])  # unsigned dihedral in [0, 180]
        out.torsions = _group([k for k, ok in zip(tors_kind, keep) if ok], vals)
    return out


@dataclass
class Reference3D:
    """What the metrics compare samples with: marginals and pooled geometry of reference molecules.

    Build once with :func:`reference_3d` and pass it to :func:`evaluate_3d` for many sample sets.
    """

    n_molecules: int
    elements: Counter
    charges: Counter
    tokens: Counter
    geometry: Geometry3D


def _marginals(graphs: Sequence[_Graph]) -> tuple[Counter, Counter, Counter]:
    elements, charges, tokens = Counter(), Counter(), Counter()
    for g in graphs:
        elements.update(g.symbols)
        charges.update(g.charges)
        tokens.update(atom_token(s, q) for s, q in zip(g.symbols, g.charges))
    return elements, charges, tokens


def reference_3d(mols: Sequence[Chem.Mol]) -> Reference3D:
    """The :class:`Reference3D` of ``mols`` (``None`` entries and molecules without a conformer are skipped)."""
    mols = _check_samples(mols, "reference")
    graphs = [_Graph.of(m) for m in mols if m is not None and m.GetNumConformers()]
    if not graphs:
        raise DataError("reference: no molecule with a conformer to compare samples with")
    elements, charges, tokens = _marginals(graphs)
    return Reference3D(len(graphs), elements, charges, tokens, geometry(graphs))


def total_variation(p: Counter, q: Counter) -> float | None:
    """``0.5 * sum_k |p_k / |p| - q_k / |q||`` over the union of keys; ``None`` if either is empty."""
    sp, sq = sum(p.values()), sum(q.values())
    if not sp or not sq:
        return None
    return 0.5 * sum(abs(p.get(k, 0) / sp - q.get(k, 0) / sq) for k in set(p) | set(q))


def _w1_by_type(sample: dict[str, np.ndarray], ref: dict[str, np.ndarray]) -> tuple[float | None, dict]:
    """Per-type W1 and the mean over the types both sides have, weighted by the reference's counts."""
    per_type: dict[str, float | None] = {}
    num = den = 0.0
    for t in sorted(set(ref) | set(sample)):
        if len(sample.get(t, ())) and len(ref.get(t, ())):
            w = float(wasserstein_distance(sample[t], ref[t]))
            per_type[t] = w
            num += w * len(ref[t])
            den += len(ref[t])
        else:
            per_type[t] = None
    return (num / den if den else None), per_type


# ----------------------------------------------------------------------------------------------- relaxation


def _kabsch_rmsd(a: np.ndarray, b: np.ndarray) -> float:
    """RMSD between point sets after the optimal rotation and translation (no reflection)."""
    a = a - a.mean(0)
    b = b - b.mean(0)
    u, s, vt = np.linalg.svd(a.T @ b)
    d = np.sign(np.linalg.det(u @ vt))
    s[-1] *= d
    msd = max((np.sum(a * a) + np.sum(b * b) - 2.0 * s.sum()) / len(a), 0.0)
    return float(np.sqrt(msd))


def mmff_relaxation(samples: Sequence[Chem.Mol | None], *, max_iters: int = MMFF_MAX_ITERS) -> dict:
    """MMFF94 relaxation of the valid samples: median energy drop (kcal/mol) and heavy-atom RMSD (Å).

    Returns ``{"mmff_energy_drop_median", "mmff_heavy_rmsd_median", "mmff_relaxed", "mmff_not_typed"}``;
    ``mmff_relaxed`` counts the relaxed samples, ``mmff_not_typed`` the valid ones MMFF cannot type.
    """
    from rdkit.Chem import rdForceFieldHelpers as ff_helpers

    drops, rmsds, not_typed = [], [], 0
    for m in _check_samples(samples):
        s = _sanitized(m)
        if s is None or not s.GetNumConformers():
            continue
        props = ff_helpers.MMFFGetMoleculeProperties(s)
        if props is None:
            not_typed += 1
            continue
        ff = ff_helpers.MMFFGetMoleculeForceField(s, props)
        if ff is None:
            not_typed += 1
            continue
        start = np.asarray(ff.Positions()).reshape(-1, 3)
        e0 = ff.CalcEnergy()
        ff.Minimize(maxIts=max_iters)
        e1 = ff.CalcEnergy()
        end = np.asarray(ff.Positions()).reshape(-1, 3)
        heavy = np.array([a.GetAtomicNum() > 1 for a in s.GetAtoms()])
        drops.append(e0 - e1)
        rmsds.append(_kabsch_rmsd(start[heavy], end[heavy]) if heavy.any() else 0.0)
    return {"mmff_energy_drop_median": float(np.median(drops)) if drops else None,
            "mmff_heavy_rmsd_median": float(np.median(rmsds)) if rmsds else None,
            "mmff_relaxed": len(drops), "mmff_not_typed": not_typed}


# ------------------------------------------------------------------------------------------------ top level


def evaluate_3d(samples: Sequence[Chem.Mol | None], reference: Sequence[Chem.Mol] | Reference3D, *,
                train_smiles: Sequence[str] | None = None, relax: bool = False) -> dict:
    """Every 3D molecule metric of ``samples`` against ``reference`` (molecules, or a :class:`Reference3D`).

    Args:
        samples: RDKit molecules with explicit hydrogens and a conformer, as generated (unsanitized), or ``None``.
        reference: the molecules to compare marginals and geometry with (e.g. the test split).
        train_smiles: training SMILES for novelty (``None``: novelty is undefined).
        relax: also run the MMFF relaxation (slow).

    Returns:
        A flat dict of named metrics (module docstring), plus ``per_type`` (the W1 of each type), ``rules`` (what
        each stability rule is), ``n_samples``, ``n_built`` (not ``None``), ``n_with_conformer`` and
        ``undefined`` (name -> why a metric is ``None``).
    """
    samples = _check_samples(samples)
    ref = reference if isinstance(reference, Reference3D) else reference_3d(reference)
    graphs = [_Graph.of(m) for m in samples if m is not None]
    res: dict = {"n_samples": len(samples), "n_built": len(graphs),
                 "n_with_conformer": sum(g.pos is not None for g in graphs)}
    for rule in STABILITY_RULES:
        st = stability(samples, rule)
        res[f"atom_stability_{rule}"] = st["atom_stability"]
        res[f"molecule_stability_{rule}"] = st["molecule_stability"]
    res.update(validity_3d(samples, train_smiles))
    elements, charges, tokens = _marginals(graphs)
    res["atom_type_tv"] = total_variation(elements, ref.elements)
    res["charge_tv"] = total_variation(charges, ref.charges)
    res["atom_token_tv"] = total_variation(tokens, ref.tokens)
    geo = geometry(graphs)
    per_type = {}
    for name, mine, theirs in (("bond_length_w1", geo.bond_lengths, ref.geometry.bond_lengths),
                               ("bond_angle_w1", geo.bond_angles, ref.geometry.bond_angles),
                               ("torsion_w1", geo.torsions, ref.geometry.torsions)):
        res[name], per_type[name] = _w1_by_type(mine, theirs)
    if relax:
        res.update(mmff_relaxation(samples))
    else:
        res.update({"mmff_energy_drop_median": None, "mmff_heavy_rmsd_median": None})
    res["per_type"] = per_type
    res["rules"] = dict(STABILITY_RULES)
    res["undefined"] = _why_undefined(res, train_smiles is not None, relax)
    return res


def _why_undefined(res: dict, has_train: bool, relax: bool) -> dict:
    why = {}
    for k, v in res.items():
        if v is not None or k in ("n_novel",):
            continue
        if k.startswith("mmff_"):
            why[k] = "relax=False" if not relax else "no valid sample that MMFF can type"
        elif k == "novelty":
            why[k] = "no train_smiles given" if not has_train else "no valid sample"
        elif k == "uniqueness":
            why[k] = "no valid sample"
        elif k.endswith("_w1"):
            why[k] = "no geometry type shared by samples and reference"
        elif k.endswith("_tv"):
            why[k] = "no atom in the samples"
        else:
            why[k] = "no sample" if not res["n_samples"] else "no atom in the samples"
    return why


# ---------------------------------------------------------------------------------------------------- files


def read_sdf_samples(path: str | Path) -> tuple[list[Chem.Mol | None], list[int]]:
    """Samples from an ``.sdf`` file, as written (``removeHs=False``, ``sanitize=False``).

    Returns ``(samples, unreadable)``: a record RDKit cannot parse (e.g. NaN coordinates) is a ``None`` sample
    and its 1-based record number is listed in ``unreadable``. Raises :class:`DataError` naming the file (and the
    record) for a missing file, a file without a readable record, or a record without 3D coordinates (every
    coordinate zero in a molecule of several atoms, or a 2D conformer: a "2D" header, or no dimension in the header
    and every z zero, as RDKit reads it).
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such sample file")
    try:
        mols = list(Chem.SDMolSupplier(str(path), removeHs=False, sanitize=False))
    except Exception as e:  # an unreadable file, not one bad record
        raise DataError(f"{path}: not a readable .sdf file ({e})") from None
    unreadable = [i + 1 for i, m in enumerate(mols) if m is None]
    if not mols or len(unreadable) == len(mols):
        raise DataError(f"{path}: no readable molecule record in the file")
    for i, m in enumerate(mols):
        if m is None:
            continue
        if not m.GetNumConformers():
            raise DataError(f"{path}: record {i + 1} has no coordinates")
        conf = m.GetConformer()
        if m.GetNumAtoms() > 1 and not np.any(conf.GetPositions()):
            raise DataError(f"{path}: record {i + 1} has no coordinates (all zero)")
        if not conf.Is3D():
            raise DataError(f"{path}: record {i + 1} has 2D coordinates, not a 3D conformer")
    return mols, unreadable


def evaluate_sdf(path: str | Path, reference_mols: Sequence[Chem.Mol] | Reference3D, *,
                 train_smiles: Sequence[str] | None = None, relax: bool = False) -> dict:
    """:func:`evaluate_3d` of the samples in an ``.sdf`` file (read by :func:`read_sdf_samples`).

    The result adds ``file`` and ``unreadable_records`` (1-based numbers of records counted as ``None``).
    """
    samples, unreadable = read_sdf_samples(path)
    res = evaluate_3d(samples, reference_mols, train_smiles=train_smiles, relax=relax)
    return {"file": str(path), "unreadable_records": unreadable, **res}
