"""Molecule grids: an invalid sample is drawn as generated (atoms and bonds of the unsanitised molecule, legend
"invalid"), not as a blank cell."""

from __future__ import annotations

import numpy as np
from PIL import Image
from rdkit import Chem

from graphdiff.viz import draw_molecules


def _pentavalent_carbon() -> Chem.Mol:
    rw = Chem.RWMol()
    for sym in "CCCCCO":
        rw.AddAtom(Chem.Atom(sym))
    for i in range(5):
        rw.AddBond(i, i + 1, Chem.BondType.SINGLE)
    for j in (2, 3, 4):
        rw.AddBond(0, j, Chem.BondType.DOUBLE)
    return rw.GetMol()


def _ink(path, cell: int, size: int = 200) -> int:
    """Non-white pixels of one grid cell, legend rows cut off."""
    img = np.asarray(Image.open(path).convert("L"))
    return int((img[: size - 40, cell * size:(cell + 1) * size] < 200).sum())


def test_an_invalid_sample_is_drawn_as_built(tmp_path):
    raw = _pentavalent_carbon()
    assert Chem.SanitizeMol(Chem.Mol(raw), catchErrors=True) != Chem.SanitizeFlags.SANITIZE_NONE  # really invalid
    valid = Chem.MolFromSmiles("CCO")
    blank = draw_molecules([valid, None], tmp_path / "blank.png", ncols=2, size=200)
    drawn = draw_molecules([valid, None], tmp_path / "drawn.png", ncols=2, size=200, raw=[None, raw])
    assert _ink(blank, 1) == 0 and _ink(drawn, 1) > 200  # the invalid cell holds the molecule
    assert _ink(drawn, 0) > 0 and _ink(blank, 0) > 0  # the valid one is drawn either way
    # a raw molecule RDKit cannot lay out stays an empty cell instead of failing the grid
    draw_molecules([None], tmp_path / "empty.png", raw=[Chem.Mol()])


def test_sample_to_png_counts_the_valid_molecules(tmp_path, capsys):
    from graphdiff.cli import main

    png, smi = tmp_path / "s.png", tmp_path / "s.smi"
    for out in (png, smi):
        assert main(["sample", "--model", "qm9-defog", "-n", "6", "--steps", "2", "--seed", "1", "--out", str(out),
                     "--quiet"]) == 0
    said = capsys.readouterr().out.splitlines()
    valid = sum(bool(line) for line in smi.read_text().splitlines())  # the .smi has an empty line per invalid one
    assert said[0].endswith(f"{valid} of 6 are valid molecules (strict, no correction)") and said[0] == \
        said[1].replace(str(smi), str(png))


def test_labelled_graphs_are_drawn_in_one_colour_per_label(tmp_path):
    import networkx as nx

    from graphdiff.viz import draw_graphs

    g = nx.path_graph(4)
    plain = draw_graphs([g], tmp_path / "plain.png")
    nx.set_node_attributes(g, {0: "C", 1: "C", 2: "O", 3: "N"}, "label")
    nx.set_edge_attributes(g, {(0, 1): "SINGLE", (1, 2): "DOUBLE", (2, 3): "SINGLE"}, "label")
    labelled = draw_graphs([g], tmp_path / "labelled.png")

    def colours(path):
        img = np.asarray(Image.open(path).convert("RGB")).reshape(-1, 3)
        return {tuple(c) for c in img[(img.max(1) - img.min(1)) > 60]}  # saturated pixels only

    assert len(colours(labelled)) > len(colours(plain))  # three node colours (and a legend) instead of one
