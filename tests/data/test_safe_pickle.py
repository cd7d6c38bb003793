import os
import pickle

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
