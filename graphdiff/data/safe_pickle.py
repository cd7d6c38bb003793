"""A restricted unpickler for published graph pickles (GDSS, SPECTRE/ESGG) and model checkpoints.

Pickles are untrusted input: a plain ``pickle.load`` can run any code. This unpickler admits only the builtin
containers, the networkx graph classes and views, and the numpy scalar/dtype reconstructors that those files
need; anything else raises :class:`~graphdiff.errors.DataError` naming the file and the refused global.

:func:`safe_load_torch` reads a ``torch.save`` zip archive (a GDSS ``.pth``, a Lightning ``.ckpt``) the same way:
tensors are rebuilt by our own function from the archive's raw storages (torch's rebuild functions are never
called), ``easydict.EasyDict`` becomes a plain ``dict``, and, when asked for, objects of named configuration and
project modules (``omegaconf``, Lightning, the DiGress/DeFoG sources) become inert :class:`Record` objects that
hold what the pickle gave them. Nothing from the file is imported or called.
"""

from __future__ import annotations

import io
import os
import pickle
import zipfile

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


def safe_loads(data: bytes, *, source: str = "<bytes>", what: str = "graph pickle"):
    try:
        return RestrictedUnpickler(io.BytesIO(data), source=source).load()
    except DataError:
        raise
    except Exception as exc:
        from .files import describe

        raise DataError(f"{source}: not a readable {what} ({describe(exc)})") from None


# ---- torch.save archives --------------------------------------------------------------------------------------
_STORAGE_DTYPES = {
    "FloatStorage": "float32", "DoubleStorage": "float64", "HalfStorage": "float16", "BFloat16Storage": "bfloat16",
    "LongStorage": "int64", "IntStorage": "int32", "ShortStorage": "int16", "CharStorage": "int8",
    "ByteStorage": "uint8", "BoolStorage": "bool",
}
# module roots whose objects a Lightning checkpoint's hyper-parameters may hold (configs, dataset infos):
# read as inert records when ``records=True``
RECORD_ROOTS = ("omegaconf", "typing", "pathlib", "pytorch_lightning", "lightning", "lightning_fabric", "src",
                "datasets", "diffusion", "models", "metrics", "analysis", "flow_matching", "diffusion_model",
                "diffusion_model_discrete", "graph_discrete_flow_model")


class AttrDict(dict):
    """What an ``easydict.EasyDict`` unpickles to: its items (the attribute copy the pickle also holds is
    dropped)."""

    def __setstate__(self, state):
        pass


class Record:
    """An object of a class the file names but that is never imported: the class name, the arguments and the
    state the pickle gave it."""

    cls = "?"

    def __new__(cls, *args, **kwargs):
        obj = object.__new__(cls)
        obj.args, obj.kwargs, obj.state, obj.items, obj.list = args, kwargs, None, {}, []
        return obj

    def __setstate__(self, state):
        self.state = state

    def __setitem__(self, key, value):
        self.items[key] = value

    def append(self, value):
        self.list.append(value)

    def extend(self, values):
        self.list.extend(values)

    def __repr__(self) -> str:
        return f"<{self.cls}>"


class _Storage:
    def __init__(self, dtype: str):
        self.dtype = dtype


class TorchUnpickler(RestrictedUnpickler):
    """:class:`RestrictedUnpickler` for the ``data.pkl`` of a ``torch.save`` archive."""

    def __init__(self, file, archive: zipfile.ZipFile, prefix: str, *, source: str, records: bool = False):
        super().__init__(file, source=source)
        self.archive, self.prefix, self.records, self._storages = archive, prefix, records, {}

    def find_class(self, module: str, name: str):
        import torch

        if module == "torch._utils" and name in ("_rebuild_tensor_v2", "_rebuild_tensor"):
            return self._rebuild_tensor
        if module == "torch._utils" and name == "_rebuild_parameter":
            return lambda data, requires_grad=False, hooks=None: data
        if module == "torch" and name in _STORAGE_DTYPES:
            return _Storage(_STORAGE_DTYPES[name])
        if module == "torch" and name == "Size":
            return torch.Size
        if module == "easydict" and name == "EasyDict":
            return AttrDict
        if self.records and module.split(".")[0] in RECORD_ROOTS:
            return type(name, (Record,), {"cls": f"{module}.{name}"})
        return super().find_class(module, name)

    def persistent_load(self, pid):
        import torch

        if not (isinstance(pid, tuple) and len(pid) >= 3 and pid[0] == "storage" and isinstance(pid[1], _Storage)):
            raise DataError(f"{self.source}: unknown persistent id {str(pid)[:80]!r} (not a tensor storage)")
        dtype, key = getattr(torch, pid[1].dtype), str(pid[2])
        if key not in self._storages:
            name = f"{self.prefix}/data/{key}"
            try:
                raw = bytearray(self.archive.read(name))
            except KeyError:
                raise DataError(f"{self.source}: the archive has no {name} (truncated checkpoint)") from None
            if len(raw) % torch.empty((), dtype=dtype).element_size():
                raise DataError(f"{self.source}: {name} holds {len(raw)} bytes, not whole {pid[1].dtype} values")
            self._storages[key] = torch.frombuffer(raw, dtype=dtype) if raw else torch.empty(0, dtype=dtype)
        return self._storages[key]

    def _rebuild_tensor(self, storage, offset, size, stride, *rest):
        import torch

        if not isinstance(storage, torch.Tensor):
            raise DataError(f"{self.source}: a tensor without a storage")
        try:
            return storage.as_strided(tuple(size), tuple(stride), int(offset)).clone()
        except (RuntimeError, TypeError, ValueError) as exc:
            raise DataError(f"{self.source}: a tensor of size {tuple(size)} does not fit its storage "
                            f"({str(exc).splitlines()[0][:120]})") from None


def safe_load_torch(path: str | os.PathLike, *, records: bool = False):
    """Read a ``torch.save`` zip archive with the restricted unpickler: containers, numbers, strings and tensors.

    Args:
        path: the ``.pth`` / ``.pt`` / ``.ckpt`` file.
        records: read objects of :data:`RECORD_ROOTS` modules as inert :class:`Record` objects (Lightning
            hyper-parameters) instead of refusing them.

    Raises:
        DataError: a missing, empty or non-archive file, a refused global (named), or a truncated archive.
    """
    from .files import open_binary

    source = str(path)
    with open_binary(path, "a torch checkpoint") as fh:
        data = fh.read()
    if not zipfile.is_zipfile(io.BytesIO(data)):
        if data[:4] == b"PK\x03\x04":  # a zip's first entry without its directory at the end: cut short
            raise DataError(f"{source}: a truncated torch checkpoint (a zip archive cut short after "
                            f"{len(data):,} bytes); copy or download it again")
        # a plain pickle (refused unless it is plain data)
        return safe_loads(data, source=source, what="torch checkpoint (neither a torch.save archive nor a pickle)")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        pkl = [n for n in archive.namelist() if n.endswith("/data.pkl") or n == "data.pkl"]
        if not pkl:
            raise DataError(f"{source}: a zip archive without data.pkl (not a torch.save file)")
        prefix = pkl[0][: -len("data.pkl")].rstrip("/")
        return TorchUnpickler(io.BytesIO(archive.read(pkl[0])), archive, prefix, source=source,
                              records=records).load()
    except DataError:
        raise
    except Exception as exc:
        from .files import describe

        raise DataError(f"{source}: not a readable torch checkpoint ({describe(exc)})") from None


def plain(obj):
    """``obj`` with :class:`AttrDict` and omegaconf/Lightning :class:`Record` containers turned into plain dicts
    and lists (a ``DictConfig``'s content, a node's value); other records stay as they are."""
    if isinstance(obj, Record):
        state = obj.state if isinstance(obj.state, dict) else {}
        content = state.get("_content", None)
        if isinstance(content, dict) or obj.cls.endswith("DictConfig"):
            return {k: plain(v) for k, v in (content or {}).items()}
        if isinstance(content, (list, tuple)) or obj.cls.endswith("ListConfig"):
            return [plain(v) for v in (content or [])]
        if "_val" in state:
            return plain(state["_val"])
        if obj.items:
            return {k: plain(v) for k, v in obj.items.items()}
        return obj
    if isinstance(obj, dict):
        return {k: plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(plain(v) for v in obj) if isinstance(obj, list) else tuple(plain(v) for v in obj)
    return obj
