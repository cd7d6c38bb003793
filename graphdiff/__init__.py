"""graphdiff: diffusion-based generative modelling of graphs and molecules."""

from .errors import DataError, GraphdiffError, SchemaError
from .schema import Schema
from .state import GraphState

__version__ = "0.1.0"

__all__ = ["GraphState", "Schema", "GraphdiffError", "DataError", "SchemaError", "__version__"]
