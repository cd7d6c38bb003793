"""Converters between GraphState and networkx, PyG and RDKit (each both ways)."""

from .networkx import from_networkx, to_networkx
from .pyg import from_pyg, to_pyg
from .rdkit import from_mol, from_smiles, graph_to_mol, to_mol, to_smiles
from .validity import correct_valence, is_connected, is_valid_relaxed, is_valid_strict, largest_fragment

__all__ = [
    "from_networkx", "to_networkx", "from_pyg", "to_pyg", "from_mol", "to_mol", "from_smiles", "to_smiles",
    "graph_to_mol", "is_valid_strict", "is_valid_relaxed", "is_connected", "correct_valence", "largest_fragment",
]
