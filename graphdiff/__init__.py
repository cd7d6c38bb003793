"""graphdiff: diffusion-based generative modelling of graphs and molecules."""

from .errors import DataError, GraphdiffError, SchemaError
from .schema import Schema
from .state import GraphState

from ._version import __version__



def __getattr__(name):  # the pipeline pulls in torch_geometric and rdkit lazily
    if name == "GraphDiffusionPipeline":
        from .pipeline import GraphDiffusionPipeline

        return GraphDiffusionPipeline
    raise AttributeError(f"module 'graphdiff' has no attribute {name!r}")


__all__ = ["GraphState", "Schema", "GraphdiffError", "DataError", "SchemaError", "GraphDiffusionPipeline",
           "__version__"]
