"""Neural networks for graph diffusion: shared dense layers, score networks/denoisers and a registry by name."""

from __future__ import annotations

from torch import nn

from ..errors import SchemaError
from .cnn import ConvDenoiser
from .cnn1d import Conv1dDenoiser
from .digress_transformer import DiGressTransformerDenoiser
from .e3nn_tp import E3nnTPDenoiser
from .eqgat import EQGATDenoiser
from .gdss import (
    AttentionLayer,
    GraphMultiHeadAttention,
    ScoreNetworkA,
    ScoreNetworkX,
    ScoreNetworkX_GMH,
    adjacency_powers,
)
from .gdss_denoiser import GDSSDenoiser
from .layers import MLP, DenseGCNConv, TimeEmbedding, timestep_embedding
from .grid import GridDenoiser
from .ppgn import PPGNTransformerDenoiser
from .transformer import GraphTransformerDenoiser

DENOISERS: dict[str, type[nn.Module]] = {"gdss": GDSSDenoiser, "graph_transformer": GraphTransformerDenoiser,
                                         "digress_transformer": DiGressTransformerDenoiser,
                                         "ppgn_transformer": PPGNTransformerDenoiser, "eqgat": EQGATDenoiser,
                                         "e3nn_tp": E3nnTPDenoiser,
                                         "grid_mpnn": GridDenoiser, "cnn": ConvDenoiser,
                                         "cnn1d": Conv1dDenoiser}


def build_denoiser(name: str, **kwargs) -> nn.Module:
    """Build a registered denoiser by name, e.g. ``build_denoiser("gdss", x_net=..., adj_net=..., x_dim=4,
    max_nodes=9)``.

    Raises:
        SchemaError: ``name`` is not in :data:`DENOISERS`.
    """
    try:
        cls = DENOISERS[name]
    except (KeyError, TypeError):
        raise SchemaError(f"unknown denoiser {name!r}; known: {', '.join(sorted(DENOISERS))}") from None
    return cls(**kwargs)


__all__ = [
    "DENOISERS",
    "build_denoiser",
    "GDSSDenoiser",
    "GraphTransformerDenoiser",
    "DiGressTransformerDenoiser",
    "PPGNTransformerDenoiser",
    "EQGATDenoiser",
    "E3nnTPDenoiser",
    "GridDenoiser",
    "ConvDenoiser",
    "Conv1dDenoiser",
    "ScoreNetworkX",
    "ScoreNetworkX_GMH",
    "ScoreNetworkA",
    "AttentionLayer",
    "GraphMultiHeadAttention",
    "adjacency_powers",
    "DenseGCNConv",
    "MLP",
    "TimeEmbedding",
    "timestep_embedding",
]
