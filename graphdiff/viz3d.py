"""Pictures of 3D molecules: a grid of matplotlib 3D panels (atoms by element, bonds by order), saved as PNG.

Atoms are spheres coloured by element (CPK-like colours, hydrogens small and white with a grey rim); bonds are
lines: single one line, double two parallel lines, triple three, aromatic one solid line beside a dotted one;
formal charges are written beside their atoms. A legend names the elements present and the bond styles. Each
panel is drawn with equal axis scales, so bond lengths and angles look as they are.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

__all__ = ["draw_molecules_3d", "ELEMENT_COLOURS"]

ELEMENT_COLOURS = {"H": "#f4f4f4", "C": "#404040", "N": "#3050f8", "O": "#ff0d0d", "F": "#70d050", "P": "#ff8000",
                   "S": "#d4c422", "Cl": "#1ff01f", "Br": "#a62929", "I": "#940094", "B": "#ffb5b5",
                   "Si": "#f0c8a0"}
_OTHER = "#d070d0"
_SIZE = {"H": 30.0}


def _perpendicular(v: np.ndarray, view: np.ndarray) -> np.ndarray:
    """A unit vector perpendicular to bond ``v`` and, where possible, to the viewing direction (offsets of
    double/triple lines then show side by side on screen)."""
    p = np.cross(v, view)
    if np.linalg.norm(p) < 1e-6 * max(np.linalg.norm(v), 1e-12):
        p = np.cross(v, [1.0, 0.0, 0.0] if abs(v[0]) < 0.9 * np.linalg.norm(v) else [0.0, 1.0, 0.0])
    return p / (np.linalg.norm(p) or 1.0)


def _view_direction(elev: float, azim: float) -> np.ndarray:
    e, a = math.radians(elev), math.radians(azim)
    return np.array([math.cos(e) * math.cos(a), math.cos(e) * math.sin(a), math.sin(e)])


def _draw_one(ax, mol, elev: float, azim: float, gap: float) -> set[str]:
    xyz = np.asarray(mol.GetConformer().GetPositions(), dtype=np.float64)
    view = _view_direction(elev, azim)
    for b in mol.GetBonds():
        i, j = b.GetBeginAtomIdx(), b.GetEndAtomIdx()
        a, c = xyz[i], xyz[j]
        kind = str(b.GetBondType())
        off = _perpendicular(c - a, view) * gap
        if kind == "DOUBLE":
            lines = [(-0.5, "-"), (0.5, "-")]
        elif kind == "TRIPLE":
            lines = [(-1.0, "-"), (0.0, "-"), (1.0, "-")]
        elif kind == "AROMATIC":
            lines = [(-0.5, "-"), (0.5, ":")]
        else:
            lines = [(0.0, "-")]
        for k, style in lines:
            p, q = a + k * off, c + k * off
            ax.plot([p[0], q[0]], [p[1], q[1]], [p[2], q[2]], color="#606060", lw=1.3, ls=style, zorder=1)
    symbols = [a.GetSymbol() for a in mol.GetAtoms()]
    colours = [ELEMENT_COLOURS.get(s, _OTHER) for s in symbols]
    sizes = [_SIZE.get(s, 70.0) for s in symbols]
    ax.scatter(xyz[:, 0], xyz[:, 1], xyz[:, 2], c=colours, s=sizes, edgecolors="#303030", linewidths=0.5,
               depthshade=False, zorder=2)
    for atom, p in zip(mol.GetAtoms(), xyz):
        q = atom.GetFormalCharge()
        if q:
            label = ("+" if q > 0 else "\u2212") + (str(abs(q)) if abs(q) > 1 else "")
            ax.text(p[0], p[1], p[2] + 0.25, label, fontsize=9, fontweight="bold", ha="center", va="bottom",
                    color="#b00000", zorder=3)
    centre = xyz.mean(0)
    half = max(float(np.abs(xyz - centre).max()), 1.0) + 0.3
    ax.set_xlim(centre[0] - half, centre[0] + half)
    ax.set_ylim(centre[1] - half, centre[1] + half)
    ax.set_zlim(centre[2] - half, centre[2] + half)
    ax.set_box_aspect((1, 1, 1), zoom=1.35)
    return set(symbols)


def draw_molecules_3d(mols: Sequence, path: str | Path, *, ncols: int = 4, titles: Sequence[str] | None = None,
                      size: float = 3.0, elev: float = 20.0, azim: float = -60.0, dpi: int = 100) -> Path:
    """Draw molecules with conformers in a grid of 3D panels and save a PNG.

    Args:
        mols: RDKit molecules with a conformer (``None`` or a molecule without one is an empty panel titled
            ``invalid``).
        path: the PNG to write (folders are created).
        ncols: panels per row.
        titles: one title per molecule (default: canonical SMILES without hydrogens).
        size: panel edge in inches.
        elev, azim: the viewing angles (degrees) of every panel.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from rdkit import Chem

    mols = list(mols)
    k = max(1, len(mols))
    ncols = max(1, min(int(ncols), k))
    nrows = math.ceil(k / ncols)
    fig = plt.figure(figsize=(size * ncols, size * nrows + 0.6))
    elements: set[str] = set()
    for i in range(k):
        ax = fig.add_subplot(nrows, ncols, i + 1, projection="3d")
        ax.view_init(elev=elev, azim=azim)
        ax.set_axis_off()
        mol = mols[i] if i < len(mols) else None
        ok = mol is not None and mol.GetNumAtoms() > 0 and mol.GetNumConformers() > 0
        if ok:
            elements |= _draw_one(ax, mol, elev, azim, gap=0.16)
        if titles is not None and i < len(titles):
            title = str(titles[i])
        elif ok:
            try:
                title = Chem.MolToSmiles(Chem.RemoveHs(mol, sanitize=False))
            except Exception:  # an unsanitizable sample: no SMILES, the panel still shows it
                title = f"{mol.GetNumAtoms()} atoms"
        else:
            title = "invalid"
        ax.set_title(title if len(title) <= 40 else title[:37] + "...", fontsize=8)
    order = ["C", "H", "N", "O", "F", "P", "S", "Cl", "Br", "I"]
    present = sorted(elements, key=lambda s: (order.index(s) if s in order else len(order), s))
    handles = [Line2D([], [], marker="o", ls="", markersize=7, markerfacecolor=ELEMENT_COLOURS.get(s, _OTHER),
                      markeredgecolor="#303030", label=s) for s in present]
    handles += [Line2D([], [], color="#606060", ls="-", label="single / double (2 lines) / triple (3 lines)"),
                Line2D([], [], color="#606060", ls=":", label="aromatic (solid + dotted)")]
    fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), 8), fontsize=7, frameon=False)
    fig.subplots_adjust(left=0.0, right=1.0, top=0.95, bottom=0.6 / (size * nrows + 0.6), wspace=0.0, hspace=0.1)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=dpi)
    plt.close(fig)
    return out
