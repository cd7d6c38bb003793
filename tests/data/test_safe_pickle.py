import contextlib
import os
import pickle
import sys
import types

import networkx as nx
import pytest

from graphdiff import DataError
from graphdiff.data.safe_pickle import safe_load, safe_loads
from tests.conftest import SHARED


class Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned > /tmp/graphdiff_pwned",))


def test_refuses_code_execution(tmp_path):
    marker = "/tmp/graphdiff_pwned"
    if os.path.exists(marker):
        os.remove(marker)
    data = pickle.dumps([nx.path_graph(3), Evil()])
    with pytest.raises(DataError, match=r"refusing to unpickle global (posix|os)\.system"):
        safe_loads(data, source="evil.pkl")
    assert not os.path.exists(marker)


def test_refuses_builtins_eval_and_reports_file(tmp_path):
    class E:
        def __reduce__(self):
            return (eval, ("1+1",))

    p = tmp_path / "bad.pkl"
    p.write_bytes(pickle.dumps(E()))
    with pytest.raises(DataError, match=r"bad\.pkl: refusing to unpickle global builtins\.eval"):
        safe_load(p)


def test_loads_networkx_graphs_and_rejects_garbage(tmp_path):
    graphs = [nx.cycle_graph(4), nx.complete_graph(3)]
    out = safe_loads(pickle.dumps(graphs))
    assert [sorted(g.edges) for g in out] == [sorted(g.edges) for g in graphs]
    p = tmp_path / "trunc.pkl"
    p.write_bytes(pickle.dumps(graphs)[:20])
    with pytest.raises(DataError, match="trunc.pkl: not a readable graph pickle"):
        safe_load(p)


@pytest.mark.parametrize("rel,count", [("gdss/ENZYMES.pkl", 587), ("gdss/grid.pkl", 100), ("spectre/sbm.pkl", 3)])
def test_published_pickles_load(rel, count):
    path = SHARED / rel
    if not path.is_file():
        pytest.skip(f"{path} not present")
    assert len(safe_load(path)) == count


# ---- torch.save archives --------------------------------------------------------------------------------------
@contextlib.contextmanager
def fake_modules(**classes):
    """Classes registered under module names (``"omegaconf.nodes.AnyNode"``) while inside, so that pickle can
    name them; the modules are gone afterwards (the reader never imports them anyway)."""
    added = []
    for path, cls in classes.items():
        module, name = path.replace("__", ".").rsplit(".", 1)
        parts = module.split(".")
        for i in range(1, len(parts) + 1):
            mod = ".".join(parts[:i])
            if mod not in sys.modules:
                sys.modules[mod] = types.ModuleType(mod)
                added.append(mod)
        cls.__module__, cls.__qualname__ = module, name
        setattr(sys.modules[module], name, cls)
    try:
        yield
    finally:
        for mod in added:
            del sys.modules[mod]


def test_torch_archive_tensors_come_back_without_torch_load(tmp_path):
    import collections

    import torch

    from graphdiff.data.safe_pickle import safe_load_torch

    base = torch.arange(24, dtype=torch.float64).reshape(4, 6)

    class EasyDict(dict):  # what the GDSS configs are pickled as
        pass

    with fake_modules(easydict__EasyDict=EasyDict):
        cfg = EasyDict(data=EasyDict(max_node_num=9))
        cfg.data_attr = 1  # an attribute copy, as EasyDict keeps one
        obj = {"sd": collections.OrderedDict(w=base, view=base[:, 1::2], half=torch.ones(3, dtype=torch.float16),
                                             idx=torch.tensor([1, 2], dtype=torch.int64)),
               "cfg": cfg, "shared": [base, base]}
        torch.save(obj, tmp_path / "a.pth")
    got = safe_load_torch(tmp_path / "a.pth")
    assert torch.equal(got["sd"]["w"], base) and torch.equal(got["sd"]["view"], base[:, 1::2])
    assert got["sd"]["half"].dtype == torch.float16 and got["sd"]["idx"].tolist() == [1, 2]
    assert type(got["cfg"]).__name__ == "AttrDict" and got["cfg"]["data"]["max_node_num"] == 9
    assert torch.equal(got["shared"][1], base)


def test_torch_archive_refuses_code_and_reads_records_only_when_asked(tmp_path):
    import torch

    from graphdiff.data.safe_pickle import Record, plain, safe_load_torch

    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    torch.save({"w": torch.zeros(2), "x": Evil()}, tmp_path / "evil.pth")
    with pytest.raises(DataError, match=r"evil\.pth: refusing to unpickle global (posix|os)\.system"):
        safe_load_torch(tmp_path / "evil.pth", records=True)
    assert not marker.exists()

    class DictConfig:  # the shape of an omegaconf DictConfig: state with _content of value nodes
        def __init__(self, content):
            self._content = content

    class AnyNode:
        def __init__(self, val):
            self._val = val

    with fake_modules(omegaconf__dictconfig__DictConfig=DictConfig, omegaconf__nodes__AnyNode=AnyNode):
        torch.save({"hp": {"cfg": DictConfig({"n_layers": AnyNode(3)})}}, tmp_path / "cfg.ckpt")
    with pytest.raises(DataError, match="refusing to unpickle global omegaconf.dictconfig.DictConfig"):
        safe_load_torch(tmp_path / "cfg.ckpt")
    got = safe_load_torch(tmp_path / "cfg.ckpt", records=True)
    assert isinstance(got["hp"]["cfg"], Record) and plain(got["hp"]) == {"cfg": {"n_layers": 3}}


def test_torch_archive_damage_is_one_line(tmp_path):
    import torch

    from graphdiff.data.safe_pickle import safe_load_torch

    torch.save({"w": torch.zeros(100)}, tmp_path / "ok.pth")
    data = (tmp_path / "ok.pth").read_bytes()
    (tmp_path / "cut.pth").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError) as err:
        safe_load_torch(tmp_path / "cut.pth")
    assert "cut.pth" in str(err.value) and "\n" not in str(err.value)
