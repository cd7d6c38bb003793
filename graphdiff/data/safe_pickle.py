"""A restricted unpickler for published graph pickles (GDSS, SPECTRE/ESGG).

Pickles are untrusted input: a plain ``pickle.load`` can run any code. This unpickler admits only the builtin
containers, the networkx graph classes and views, and the numpy scalar/dtype reconstructors that those files
need; anything else raises :class:`~graphdiff.errors.DataError` naming the file and the refused global.
"""

from __future__ import annotations

import io
import os
import pickle

from ..errors import DataError

ALLOWED: frozenset[tuple[str, str]] = frozenset({
    ("builtins", "dict"), ("builtins", "list"), ("builtins", "set"), ("builtins", "frozenset"),
    ("builtins", "tuple"), ("builtins", "int"), ("builtins", "float"), ("builtins", "str"), ("builtins", "bool"),
    ("collections", "OrderedDict"),
    ("networkx.classes.graph", "Graph"),
    ("networkx.classes.digraph", "DiGraph"),
    ("networkx.classes.coreviews", "FilterAtlas"),
    ("networkx.classes.coreviews", "FilterAdjacency"),
    ("networkx.classes.coreviews", "AtlasView"),
    ("networkx.classes.coreviews", "AdjacencyView"),
    ("networkx.classes.filters", "show_nodes"),
    ("networkx.classes.filters", "no_filter"),
    ("networkx.classes.function", "frozen"),
    ("networkx.classes.reportviews", "NodeView"),
    ("networkx.classes.reportviews", "EdgeView"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
})

_RENAMES = {"numpy.core.multiarray": "numpy._core.multiarray"}


class RestrictedUnpickler(pickle.Unpickler):
    """``pickle.Unpickler`` whose ``find_class`` admits only :data:`ALLOWED`."""

    def __init__(self, file, *, source: str = "<pickle>"):
        super().__init__(file)
        self.source = source

    def find_class(self, module: str, name: str):
        if (module, name) not in ALLOWED:
            raise DataError(f"{self.source}: refusing to unpickle global {module}.{name} (not a graph/builtin type)")
        if module in _RENAMES:
            try:
                return super().find_class(_RENAMES[module], name)
            except (ImportError, AttributeError):
                pass
        return super().find_class(module, name)


def safe_load(path: str | os.PathLike):
    """Unpickle ``path`` with :class:`RestrictedUnpickler`; a missing, empty or corrupt file gives a one-line
    :class:`~graphdiff.errors.GraphdiffError` naming it."""
    from .files import read_bytes

    return safe_loads(read_bytes(path, "a pickle of networkx graphs"), source=str(path))


def safe_loads(data: bytes, *, source: str = "<bytes>"):
    try:
        return RestrictedUnpickler(io.BytesIO(data), source=source).load()
    except DataError:
        raise
    except Exception as exc:
        from .files import describe

        raise DataError(f"{source}: not a readable graph pickle ({describe(exc)})") from None
