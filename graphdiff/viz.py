"""Pictures of graphs and molecules: a grid of networkx drawings or an RDKit molecule grid, saved as PNG."""

from __future__ import annotations

import math
from pathlib import Path
from collections.abc import Sequence

import networkx as nx


def draw_graphs(graphs: Sequence[nx.Graph], out: str | Path, *, ncols: int | None = None, titles=None,
                node_size: float | None = None, seed: int = 0) -> Path:
    """Draw graphs in a grid (planar layout when the graph is planar, else spring) and save a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    k = max(1, len(graphs))
    ncols = ncols or math.ceil(math.sqrt(k))
    nrows = math.ceil(k / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3 * ncols, 3 * nrows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    # labelled graphs (molecules as graphs, a labelled .jsonl): one colour per node label and per edge label
    node_labels = sorted({str(d["label"]) for g in graphs for _, d in g.nodes(data=True) if "label" in d})
    edge_labels = sorted({str(d["label"]) for g in graphs for *_, d in g.edges(data=True) if "label" in d})
    palette = plt.get_cmap("tab10").colors
    node_labels = node_labels if len(node_labels) > 1 else []  # one label ("node") is no information
    edge_labels = edge_labels if len(edge_labels) > 1 else []
    node_color = {lab: palette[j % len(palette)] for j, lab in enumerate(node_labels)}
    edge_color = {lab: ("#555555", "#c0392b", "#27ae60", "#8e44ad", "#d4a017")[j % 5]
                  for j, lab in enumerate(edge_labels)}
    for i, g in enumerate(graphs):
        ax = axes.flat[i]
        if g.number_of_nodes() <= 400 and nx.check_planarity(g)[0] and g.number_of_nodes() > 2:
            try:
                pos = nx.kamada_kawai_layout(g) if g.number_of_nodes() <= 150 else nx.planar_layout(g)
            except Exception:
                pos = nx.spring_layout(g, seed=seed)
        else:
            pos = nx.spring_layout(g, seed=seed)
        size = node_size or max(4.0, 300.0 / math.sqrt(max(g.number_of_nodes(), 1)))
        nodes = [node_color.get(str(d.get("label")), "#3b6ea8") for _, d in g.nodes(data=True)]
        edges = [edge_color.get(str(d.get("label")), "#555555") for *_, d in g.edges(data=True)]
        nx.draw_networkx(g, pos=pos, ax=ax, node_size=size, with_labels=False, width=1.2 if edge_labels else 0.6,
                         node_color=nodes or "#3b6ea8", edge_color=edges or "#555555")
        ax.set_title(titles[i] if titles else f"n={g.number_of_nodes()} m={g.number_of_edges()}", fontsize=8)
    if 0 < len(node_labels) + len(edge_labels) <= 24:
        from matplotlib.lines import Line2D

        handles = [Line2D([], [], marker="o", ls="", color=c, label=lab) for lab, c in node_color.items()]
        if edge_labels:
            handles += [Line2D([], [], color=c, lw=2, label=lab) for lab, c in edge_color.items()]
        fig.legend(handles=handles, loc="lower center", ncol=min(8, len(handles)), fontsize=7, frameon=False)
        fig.tight_layout(rect=(0, 0.06, 1, 1))
    else:
        fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def _drawable(raw):
    """An unsanitised molecule (an invalid sample) prepared so that RDKit draws it as built, or ``None``."""
    from rdkit import Chem
    from rdkit.Chem.Draw import rdMolDraw2D

    if raw is None or raw.GetNumAtoms() == 0:
        return None
    try:
        m = Chem.Mol(raw)
        m.UpdatePropertyCache(strict=False)
        Chem.FastFindRings(m)
        return rdMolDraw2D.PrepareMolForDrawing(m, kekulize=False)
    except Exception:  # noqa: BLE001 - a graph RDKit cannot even lay out stays an empty cell
        return None


def draw_molecules(mols, out: str | Path, *, ncols: int = 4, legends=None, size: int = 250, raw=None) -> Path:
    """RDKit grid image of molecules saved as PNG. A ``None`` entry (an invalid sample) is drawn from ``raw``
    (the same samples built without sanitisation: the atoms and bonds as generated) with the legend "invalid", or
    as an empty cell when there is none."""
    from rdkit import Chem
    from rdkit.Chem import Draw

    raw = list(raw) if raw is not None else [None] * len(mols)
    drawn, auto = [], []
    for m, r in zip(mols, raw + [None] * (len(mols) - len(raw))):
        if m is not None:
            drawn.append(m)
            auto.append(Chem.MolToSmiles(m) if m.GetNumAtoms() else "invalid")
        else:
            drawn.append(_drawable(r) or Chem.Mol())
            auto.append("invalid")
    mols = drawn
    if not mols:  # RDKit's drawer fails on an empty grid: one empty cell that says so
        mols, legends = [Chem.Mol()], ["no molecules"]
    legends = legends or auto
    img = Draw.MolsToGridImage(mols, molsPerRow=ncols, subImgSize=(size, size), legends=[str(x) for x in legends])
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if hasattr(img, "save"):
        img.save(str(out))
    else:  # IPython Image in notebooks
        out.write_bytes(img.data)
    return out
