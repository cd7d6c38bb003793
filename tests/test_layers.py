"""The package's import graph is layered: no module imports (even lazily, inside a function) a module that imports
it back, directly or through others.

Run as a script to print the counts for any checkout: ``python tests/test_layers.py [PATH/TO/graphdiff]``.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "graphdiff"


def import_graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    """module -> the package modules it imports (top-level and inside functions; ``from . import x`` resolved)."""
    mods = {}
    for f in package.rglob("*.py"):
        parts = list(f.relative_to(package.parent).with_suffix("").parts)
        pkg = parts[:-1]
        if parts[-1] == "__init__":
            parts = pkg = parts[:-1]
        mods[".".join(parts)] = (f, pkg)
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for m, (f, pkg) in mods.items():
        for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
            targets = []
            if isinstance(node, ast.ImportFrom):
                base = ".".join(pkg[: len(pkg) - node.level + 1] + ([node.module] if node.module else [])) \
                    if node.level else (node.module or "")
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base for a in node.names]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            for t in targets:
                while t and t not in mods:
                    t = t.rpartition(".")[0]
                if t and t != m:
                    graph[m].add(t)
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Groups of modules that import each other (strongly connected components of more than one module)."""
    index, low, stack, on, out = {}, {}, [], set(), []
    sys.setrecursionlimit(max(10_000, sys.getrecursionlimit()))

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def back_edges(graph: dict[str, set[str]]) -> list[tuple[str, str]]:
    """Edges that close a cycle in a depth-first walk in name order (0 exactly when there are no circles)."""
    state, out = {}, []

    def walk(v):
        state[v] = 1
        for w in sorted(graph[v]):
            if state.get(w) == 1:
                out.append((v, w))
            elif w not in state:
                walk(w)
        state[v] = 2

    for v in sorted(graph):
        if v not in state:
            walk(v)
    return out


def test_the_import_graph_has_no_circles():
    graph = import_graph()
    assert len(graph) > 50 and sum(map(len, graph.values())) > 100  # the walk found the package
    assert circles(graph) == [] and back_edges(graph) == []


def test_the_walk_finds_a_circle_when_there_is_one():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert circles(graph) == [["a", "b", "c"]] and back_edges(graph) == [("c", "a")]


if __name__ == "__main__":
    g = import_graph(Path(sys.argv[1]) if len(sys.argv) > 1 else PACKAGE)
    cs, bs = circles(g), back_edges(g)
    print(f"{len(g)} modules, {sum(map(len, g.values()))} import edges, {len(cs)} circles, {len(bs)} back-edges")
    for c in cs:
        print("  circle:", " <-> ".join(c))
    for a, b in bs:
        print(f"  back-edge: {a} -> {b}")
